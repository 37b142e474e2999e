"""Idempotent officer writes: a retried request gets the original response, never a second event.

A client sends ``Idempotency-Key: <key>`` with a write. Per API key, the first request with
that key that succeeds stores its response *in the same database transaction* that records
its event, so there is never an event without its stored response nor the reverse, whatever
crashes. A later request with the same key and the same request (method, path, canonical
body: :func:`fingerprint`) gets that stored response back; one with a different request is
refused (:class:`IdempotencyKeyReusedError`, HTTP 409 ``idempotency_key_reused``). Only
successes are stored: a refused request leaves the key free. Keys expire after ``ttl``
(:data:`DEFAULT_TTL`); :func:`purge` deletes expired ones.

How a route uses it (``perform`` wraps it all; the pieces are public for other shapes)::

    outcome = idempotency.perform(
        engine, principal=principal, key=check_key(header), fingerprint=fingerprint("POST", path, body),
        now=now, ttl=ttl,
        action=lambda remember: procurement.record(..., on_recorded=lambda conn, rec: remember(conn, 201, to_json(rec))),
    )
    # outcome.response.status / .body; outcome.replayed says whether it is a stored response.

Concurrency: two requests with the same key may both miss :func:`lookup` and both start to
record. The primary key ``(api_key_id, key)`` decides: :func:`store` inserts with ``ON CONFLICT
DO NOTHING`` (PostgreSQL makes it wait for the other transaction to commit or roll back;
SQLite write transactions already run one at a time), and when the other request's row is
there it raises :class:`DuplicateRequestError`. That exception MUST propagate out of the
recording transaction, which rolls back (its event is gone), and the caller then calls
:func:`lookup` again in a new transaction and replays what it finds, as :func:`perform` does.
The loser may also fail earlier, with the domain's :class:`ConflictError` (e.g. its ``prev``
no longer the tender's head because the winner's event moved it on): :func:`perform` handles
that the same way, and re-raises it when no stored response explains it.

Error mapping for ``api/errors.py``: :class:`IdempotencyKeyReusedError` -> 409 with body
``{"error": {"code": "idempotency_key_reused", "message": str(exc), "field": "Idempotency-Key"}}``
(map it before the generic :class:`ConflictError`, which it subclasses); a malformed key is an
:class:`InvalidArgumentError` naming ``Idempotency-Key`` (422). :class:`DuplicateRequestError`
never reaches a client through :func:`perform`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, select, tuple_

from api.schema import idempotency_keys
from ledger.core.canonical import canonical_bytes
from ledger.core.errors import ConflictError, InvalidArgumentError, InvariantError, LedgerError
from ledger.store.db import insert_or_ignore, read_transaction, write_transaction

from .auth import Principal

HEADER: Final = "Idempotency-Key"
DEFAULT_TTL: Final = timedelta(hours=24)
MAX_KEY_LENGTH: Final = 128
#: Printable ASCII without spaces, quotes, commas or semicolons: UUIDs, ULIDs, base64 all fit.
_KEY = re.compile(rf"[A-Za-z0-9._~:/+=-]{{1,{MAX_KEY_LENGTH}}}")
_PURGE_BATCH = 1000


class IdempotencyKeyReusedError(ConflictError):
    """The key was already used, by this API key, for a different request (HTTP 409)."""

    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(HEADER, f"{key!r} was already used for a different request; use a new key for a new request")
        self.key = key


class DuplicateRequestError(LedgerError):
    """A concurrent request stored this key first: roll back, then replay its response."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{HEADER}: {key!r} was stored by a concurrent request")
        self.key = key


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredResponse:
    status: int
    body: Any
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    response: StoredResponse
    #: True when ``response`` is the stored response of an earlier (or concurrent) request.
    replayed: bool


def check_key(key: str) -> str:
    """Return ``key``; raise :class:`InvalidArgumentError` naming ``Idempotency-Key`` unless it is
    1-128 characters of ``A-Z a-z 0-9 . _ ~ : / + = -``."""
    if not _KEY.fullmatch(key):
        shown = key if len(key) <= 2 * MAX_KEY_LENGTH else key[: 2 * MAX_KEY_LENGTH] + "..."
        raise InvalidArgumentError(
            HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters of A-Z a-z 0-9 . _ ~ : / + = -, got {shown!r}"
        )
    return key


def fingerprint(method: str, path: str, body: Any) -> bytes:
    """SHA-256 of the request: the RFC 8785 bytes of ``[METHOD, path, body]``.

    ``path`` is the request's path and query as the client sent them; ``body`` the parsed
    JSON body (``None`` for none), so that key order and whitespace do not matter.
    Raises :class:`~ledger.core.errors.CanonicalizationError` for a body without RFC 8785 form.
    """
    return hashlib.sha256(canonical_bytes([method.upper(), path, body], field="body")).digest()


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise InvalidArgumentError("now", f"must be timezone-aware, got {now.isoformat()}")
    return now.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def lookup(
    conn: Connection, principal: Principal, key: str, fingerprint: bytes, *, now: datetime, ttl: timedelta = DEFAULT_TTL
) -> StoredResponse | None:
    """The response stored for ``key`` of ``principal``'s API key, or ``None`` (none, or expired).

    Raises :class:`IdempotencyKeyReusedError` if the key was stored for another request.
    """
    cutoff = _utc(now) - ttl
    row = conn.execute(
        select(
            idempotency_keys.c.fingerprint,
            idempotency_keys.c.status,
            idempotency_keys.c.body,
            idempotency_keys.c.created_at,
        ).where(idempotency_keys.c.api_key_id == principal.id, idempotency_keys.c.key == key)
    ).first()
    if row is None or _aware(row.created_at) < cutoff:
        return None
    if bytes(row.fingerprint) != fingerprint:
        raise IdempotencyKeyReusedError(key)
    return StoredResponse(status=row.status, body=json.loads(row.body), created_at=_aware(row.created_at))


def store(
    conn: Connection,
    principal: Principal,
    key: str,
    fingerprint: bytes,
    status: int,
    body: Any,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> StoredResponse:
    """Store the response to ``key``, in ``conn``'s transaction: the one that records the event.

    An expired row of the same key is replaced. Raises :class:`DuplicateRequestError` if another
    transaction stored the key (it waits for that transaction to end first); the caller's
    transaction must then roll back. Raises :class:`InvalidArgumentError` for a key of the wrong
    shape, a status outside 100-599 or a body that is not JSON.
    """
    check_key(key)
    if not 100 <= status <= 599:
        raise InvalidArgumentError("status", f"must be an HTTP status (100-599), got {status}")
    try:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("body", f"is not JSON: {exc}") from exc
    now = _utc(now)
    table = idempotency_keys
    conn.execute(
        delete(table).where(table.c.api_key_id == principal.id, table.c.key == key, table.c.created_at < now - ttl)
    )
    inserted = conn.execute(
        insert_or_ignore(conn, table, keys=["api_key_id", "key"])
        .values(api_key_id=principal.id, key=key, fingerprint=fingerprint, status=status, body=text, created_at=now)
        .returning(table.c.key)
    ).first()
    if inserted is None:
        raise DuplicateRequestError(key)
    return StoredResponse(status=status, body=json.loads(text), created_at=now)


#: What ``perform``'s action calls, inside its recording transaction: ``remember(conn, status, body)``.
Remember = Callable[[Connection, int, Any], None]


def perform(
    engine: Engine,
    *,
    principal: Principal,
    key: str,
    fingerprint: bytes,
    now: datetime,
    action: Callable[[Remember], object],
    ttl: timedelta = DEFAULT_TTL,
) -> Outcome:
    """Run ``action`` once per key: replay the stored response, or run it and store its response.

    ``action(remember)`` records the event in one transaction and, inside it, calls
    ``remember(conn, status, body)`` exactly once with the response to store (again only if that
    transaction, or the savepoint it was called in, was rolled back and the work run again). Its errors
    propagate (nothing is stored), except those a concurrent request with the same key
    explains (see the module docstring), which turn into that request's stored response.
    Raises :class:`IdempotencyKeyReusedError` if the key belongs to another request.
    """
    check_key(key)
    with read_transaction(engine) as conn:
        found = lookup(conn, principal, key, fingerprint, now=now, ttl=ttl)
    if found is not None:
        return Outcome(response=found, replayed=True)
    remembered: list[StoredResponse] = []
    scopes: list[Any] = []  # the (nested) transaction of the last call

    def remember(conn: Connection, status: int, body: Any) -> None:
        # Called again only when the transaction or savepoint of the earlier call was rolled back
        # and the work run again (a group commit's batch written one member at a time): the
        # response is the last call's. Twice in one live transaction is a mistake.
        if scopes and scopes[0].is_active:
            raise InvariantError(f"{HEADER}: remember() called twice for {key!r}")
        remembered[:] = [store(conn, principal, key, fingerprint, status, body, now=now, ttl=ttl)]
        scopes[:] = [conn.get_nested_transaction() or conn.get_transaction()]

    try:
        action(remember)
    except (DuplicateRequestError, ConflictError):
        with read_transaction(engine) as conn:
            found = lookup(conn, principal, key, fingerprint, now=now, ttl=ttl)
        if found is None:
            raise
        return Outcome(response=found, replayed=True)
    if not remembered:
        raise InvariantError(f"{HEADER}: the action returned without remembering its response for {key!r}")
    return Outcome(response=remembered[0], replayed=False)


def purge(engine: Engine, *, now: datetime, ttl: timedelta = DEFAULT_TTL) -> int:
    """Delete the keys stored before ``now - ttl``, in batches; return how many were deleted."""
    cutoff = _utc(now) - ttl
    table = idempotency_keys
    total = 0
    while True:
        with write_transaction(engine) as conn:
            batch = conn.execute(
                select(table.c.api_key_id, table.c.key).where(table.c.created_at < cutoff).limit(_PURGE_BATCH)
            ).all()
            if batch:
                conn.execute(
                    delete(table).where(
                        tuple_(table.c.api_key_id, table.c.key).in_([(row.api_key_id, row.key) for row in batch])
                    )
                )
        total += len(batch)
        if len(batch) < _PURGE_BATCH:
            return total
