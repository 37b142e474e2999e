"""API keys: who may write through the HTTP API, and the FastAPI dependencies that check it.

A key looks like ``tp_<prefix>_<secret>``: ``prefix`` is 12 hex digits that identify the key
(shown in listings and logs, stored in clear), ``secret`` is 256 random bits in lowercase
base32. The plaintext is shown once, when the key is created; the database keeps only its
SHA-256 (see :func:`_digest` for why a fast hash is right here).

Roles: ``officer`` may record events; ``admin`` may do everything an officer may, and manage.
A key may name the officer (Ethereum address) it acts for.

Errors (all :class:`AuthError`, each with ``code``, ``field`` and ``reason``) and how
``api/errors.py`` maps them:

* :class:`AuthenticationError` -> 401, header ``WWW-Authenticate: <exc.www_authenticate>``,
  body ``{"error": {"code": exc.code, "message": str(exc), "field": exc.field}}``;
  ``code`` is ``unauthenticated`` (no key sent), ``invalid_api_key`` (malformed, unknown, or
  two different keys sent), ``api_key_revoked`` or ``api_key_expired``.
* :class:`PermissionDeniedError` -> 403, ``code`` ``forbidden``.

The dependencies use the application's log and clock (:mod:`api.deps`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, get_args

from eth_utils.address import is_checksum_address, to_checksum_address
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, RowMapping, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from api.deps import ClockDep, LogDep
from api.schema import api_keys
from ledger.core.errors import FieldError, InvalidArgumentError, InvariantError, NotFoundError
from ledger.store.db import read_transaction, write_transaction

Role = Literal["officer", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

#: Every key starts with this, so a leaked key is recognisable (e.g. by secret scanners).
KEY_PREFIX: Final = "tp_"
_KEY = re.compile(r"tp_([0-9a-f]{12})_([a-z2-7]{52})")
_MAX_PRESENTED = 256
#: ``last_used_at`` is written at most this often per key (every request would be a write).
TOUCH_INTERVAL: Final = timedelta(minutes=1)
REALM: Final = "tenderproof"
_log = logging.getLogger(__name__)
_NAME_MAX = 128


class AuthError(FieldError):
    """Root of the authentication and authorisation errors; ``code`` is stable, for clients."""

    code: str = "unauthenticated"

    def __init__(self, field: str, reason: str, *, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(field, reason)


class AuthenticationError(AuthError):
    """No usable credentials: missing, malformed, unknown or revoked key (HTTP 401)."""

    @property
    def www_authenticate(self) -> str:
        """The ``WWW-Authenticate`` challenge (RFC 6750 §3: no error code when nothing was sent)."""
        if self.code == "unauthenticated":
            return f'Bearer realm="{REALM}"'
        return f'Bearer realm="{REALM}", error="invalid_token"'


class PermissionDeniedError(AuthError):
    """Authenticated, but the key's role does not allow the operation (HTTP 403)."""

    code = "forbidden"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """A stored key, without its secret."""

    id: int
    name: str
    role: Role
    prefix: str
    officer: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Not revoked (it may still have expired: see :meth:`expired`)."""
        return self.revoked_at is None

    def expired(self, now: datetime) -> bool:
        """True from ``expires_at`` on."""
        return self.expires_at is not None and now >= self.expires_at

    def principal(self) -> Principal:
        """Who presents this key."""
        return Principal(id=self.id, name=self.name, role=self.role, prefix=self.prefix, officer=self.officer)

    def to_json(self) -> dict[str, Any]:
        """The key's record (never its secret), as ``tenderproof keys`` prints it."""
        moments = {
            name: None if value is None else value.isoformat()
            for name, value in (
                ("created_at", self.created_at),
                ("revoked_at", self.revoked_at),
                ("last_used_at", self.last_used_at),
                ("expires_at", self.expires_at),
            )
        }
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "prefix": self.prefix,
            "officer": self.officer,
            **moments,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is making an authenticated request."""

    id: int
    name: str
    role: Role
    prefix: str
    officer: str | None

    def allows(self, role: Role) -> bool:
        """True if this principal may act as ``role`` (an admin may act as an officer)."""
        return self.role == "admin" or self.role == role


def _digest(key: str) -> bytes:
    """What is stored of a key: its SHA-256.

    A slow, salted KDF (bcrypt, scrypt, Argon2) protects *low-entropy* secrets such as
    passwords against guessing. These keys are 256 uniformly random bits from the OS's
    CSPRNG: no guessing or precomputed table can find one, however fast the hash, so a
    plain SHA-256 is as strong as any KDF here, and it keeps authentication cheap on every
    request. (Each key is unique, so no salt is needed either.)
    """
    return hashlib.sha256(key.encode("ascii")).digest()


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise InvalidArgumentError("now", f"must be timezone-aware, got {now.isoformat()}")
    return now.astimezone(UTC)


def _record(row: RowMapping) -> ApiKey:
    created = _aware(row["created_at"])
    assert created is not None
    return ApiKey(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        prefix=row["prefix"],
        officer=row["officer"],
        created_at=created,
        revoked_at=_aware(row["revoked_at"]),
        last_used_at=_aware(row["last_used_at"]),
        expires_at=_aware(row["expires_at"]),
    )


def check_name(name: str) -> str:
    """Return ``name`` stripped; raise :class:`InvalidArgumentError` unless it is 1-128 printable characters."""
    stripped = name.strip()
    if not stripped or len(stripped) > _NAME_MAX or not stripped.isprintable():
        raise InvalidArgumentError("name", f"must be 1 to {_NAME_MAX} printable characters, got {name!r}")
    return stripped


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InvalidArgumentError("role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def check_officer(address: str) -> str:
    """Return the EIP-55 checksummed form of an Ethereum address.

    Raises :class:`InvalidArgumentError` unless it is ``0x`` and 40 hex digits, with a valid
    checksum when it mixes upper and lower case.
    """
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        raise InvalidArgumentError("officer", f"must be an Ethereum address (0x and 40 hex digits), got {address!r}")
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(address):
        raise InvalidArgumentError("officer", f"has a wrong EIP-55 checksum: {address}")
    return str(to_checksum_address(address))


def create_key(
    engine: Engine,
    *,
    name: str,
    role: str,
    now: datetime,
    officer: str | None = None,
    expires_in: timedelta | None = None,
) -> tuple[ApiKey, str]:
    """Create a key, valid for ``expires_in`` from ``now`` (default: until revoked); return its
    record and its plaintext, which is never available again.

    Raises :class:`InvalidArgumentError` naming ``name``, ``role``, ``officer`` or ``expires_in``.
    """
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidArgumentError("expires_in", f"must be positive, got {expires_in.total_seconds():g} s")
    values: dict[str, Any] = {
        "name": check_name(name),
        "role": check_role(role),
        "officer": None if officer is None else check_officer(officer),
        "created_at": _utc(now),
        "expires_at": None if expires_in is None else _utc(now) + expires_in,
    }
    for _attempt in range(3):  # a 48-bit prefix collides about never; the unique index makes sure
        prefix = secrets.token_hex(6)
        secret = base64.b32encode(secrets.token_bytes(32)).decode("ascii").rstrip("=").lower()
        plaintext = f"{KEY_PREFIX}{prefix}_{secret}"
        try:
            with write_transaction(engine) as conn:
                row = (
                    conn.execute(
                        insert(api_keys)
                        .values(**values, prefix=prefix, key_hash=_digest(plaintext))
                        .returning(*api_keys.c)
                    )
                    .mappings()
                    .one()
                )
        except IntegrityError:
            continue
        return _record(row), plaintext
    raise InvariantError("api_keys.prefix: three random prefixes in a row collided")


def list_keys(engine: Engine, *, include_revoked: bool = True) -> list[ApiKey]:
    """Every key (or only the active ones), oldest first; never their secrets."""
    query = select(*api_keys.c).order_by(api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    with read_transaction(engine) as conn:
        return [_record(row) for row in conn.execute(query).mappings()]


def get_key(engine: Engine, key_id: int) -> ApiKey:
    """The key with id ``key_id``; raises :class:`NotFoundError`."""
    with read_transaction(engine) as conn:
        row = conn.execute(select(*api_keys.c).where(api_keys.c.id == key_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"API key {key_id}: no such key")
    return _record(row)


def revoke_key(engine: Engine, key_id: int, *, now: datetime) -> ApiKey:
    """Revoke key ``key_id`` from ``now`` on; return its record.

    Revoking a revoked key changes nothing (it keeps its first ``revoked_at``).
    Raises :class:`NotFoundError` if there is no such key.
    """
    with write_transaction(engine) as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=_utc(now))
        )
        row = conn.execute(select(*api_keys.c).where(api_keys.c.id == key_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"API key {key_id}: no such key")
    return _record(row)


_INVALID = "is not a valid API key"
#: Compared against when the prefix is unknown, so that a miss costs what a hit costs.
_DUMMY = _digest(f"{KEY_PREFIX}{'0' * 12}_{'a' * 52}")


class KeyCache:
    """Keys authenticated in the last ``ttl`` seconds, reused without reading the database: a
    key revoked (or whose expiry is moved) is still accepted by a process that authenticated it
    less than ``ttl`` seconds before, never longer (``TENDERPROOF_API_KEY_CACHE_SECONDS``).

    Entries are found by the SHA-256 of the whole presented key, so only its holder gets one;
    an expired key is never served from here. At most ``size`` keys, least recently used
    evicted first; ``clock`` is monotonic seconds. Thread-safe.
    """

    def __init__(self, ttl: float, *, size: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0:
            raise InvalidArgumentError("ttl", f"must be >= 0 seconds, got {ttl}")
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[bytes, tuple[float, ApiKey]] = OrderedDict()

    def get(self, presented: str, *, now: datetime) -> Principal | None:
        """The principal of ``presented`` if it was authenticated less than ``ttl`` ago and has
        not expired at ``now``; else ``None`` (authenticate it again)."""
        if self.ttl == 0:
            return None
        digest = _digest(presented) if presented.isascii() else b""
        with self._lock:
            found = self._keys.get(digest)
            if found is None:
                return None
            at, key = found
            if self._clock() - at >= self.ttl or key.expired(_utc(now)):
                del self._keys[digest]
                return None
            self._keys.move_to_end(digest)
        return key.principal()

    def put(self, presented: str, key: ApiKey) -> None:
        if self.ttl == 0:
            return
        with self._lock:
            self._keys[_digest(presented)] = (self._clock(), key)
            self._keys.move_to_end(_digest(presented))
            while len(self._keys) > self.size:
                self._keys.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


def authenticate(
    engine: Engine,
    presented: str,
    *,
    now: datetime,
    field: str = "Authorization",
    touch: timedelta = TOUCH_INTERVAL,
    cache: KeyCache | None = None,
) -> Principal:
    """The principal whose key is ``presented``; records when the key was last used.

    The secret is compared in constant time. A malformed key, an unknown prefix and a wrong
    secret are refused alike (:class:`AuthenticationError` ``invalid_api_key``, naming
    ``field``, the header it came in); a revoked key is refused as ``api_key_revoked``, an
    expired one as ``api_key_expired``, said only to whoever presents its full secret.

    With ``cache``, a key it holds is accepted without reading the database (see
    :class:`KeyCache` for the bound on revocation), and a key accepted here is put in it.
    """
    if cache is not None and (principal := cache.get(presented, now=now)) is not None:
        return principal
    now = _utc(now)
    match = _KEY.fullmatch(presented) if len(presented) <= _MAX_PRESENTED else None
    with read_transaction(engine) as conn:
        row = None
        if match is not None:
            row = conn.execute(select(*api_keys.c).where(api_keys.c.prefix == match.group(1))).mappings().first()
    stored = _DUMMY if row is None else bytes(row["key_hash"])
    same = hmac.compare_digest(stored, _digest(presented) if match is not None else b"")
    if row is None or not same:
        raise AuthenticationError(field, _INVALID, code="invalid_api_key")
    key = _record(row)
    if key.revoked_at is not None:
        raise AuthenticationError(
            field, f"API key {key.prefix} was revoked at {key.revoked_at.isoformat()}", code="api_key_revoked"
        )
    if key.expired(now):
        assert key.expires_at is not None
        raise AuthenticationError(
            field, f"API key {key.prefix} expired at {key.expires_at.isoformat()}", code="api_key_expired"
        )
    if key.last_used_at is None or now - key.last_used_at >= touch:
        _touch(engine, key.id, now=now, touch=touch)
    if cache is not None:
        cache.put(presented, key)
    return key.principal()


def _touch(engine: Engine, key_id: int, *, now: datetime, touch: timedelta) -> None:
    """Record that key ``key_id`` was used at ``now``; best effort: a busy or failing database
    must not refuse a valid key (the next request tries again)."""
    try:
        with write_transaction(engine) as conn:
            conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < now - touch),
                )
                .values(last_used_at=now)
            )
    except OperationalError as exc:
        _log.warning("API key %d: could not record its use: %s", key_id, exc.orig)


# --- FastAPI ------------------------------------------------------------------------------------

bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer tp_...`")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: tp_...`")


async def current_principal(
    request: Request,
    log: LogDep,
    clock: ClockDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The authenticated caller, from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

    Raises :class:`AuthenticationError` when neither is sent, when ``Authorization`` uses
    another scheme, when both are sent with different keys, or as :func:`authenticate`.
    """
    authorization = request.headers.get("Authorization")
    if bearer is None and authorization is not None:
        raise AuthenticationError("Authorization", "must be 'Bearer <API key>'", code="invalid_api_key")
    if bearer is not None and api_key is not None and bearer.credentials != api_key:
        raise AuthenticationError("X-API-Key", "differs from the key in Authorization", code="invalid_api_key")
    if bearer is not None:
        presented, field = bearer.credentials, "Authorization"
    elif api_key is not None:
        presented, field = api_key, "X-API-Key"
    else:
        raise AuthenticationError(
            "Authorization", "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    presented, now = presented.strip(), clock()
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    if cache is not None and (principal := cache.get(presented, now=now)) is not None:
        return principal  # no database, no thread: the request's only hand-off is its route's
    return await run_in_threadpool(authenticate, log.engine, presented, now=now, field=field, cache=cache)


def _require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.allows(role):
            raise PermissionDeniedError(
                "role", f"API key {principal.prefix} ({principal.name}) has role {principal.role}; this needs {role}"
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


require_officer = _require("officer")
require_admin = _require("admin")

#: An authenticated officer or administrator.
OfficerDep = Annotated[Principal, Depends(require_officer)]
#: An authenticated administrator.
AdminDep = Annotated[Principal, Depends(require_admin)]
#: Any authenticated key, whatever its role.
PrincipalDep = Annotated[Principal, Depends(current_principal)]
