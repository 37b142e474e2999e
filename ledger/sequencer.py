"""Sequencing (append) and integration, kept apart as in Tessera.

Internal to :mod:`ledger`: only the procurement layer appends (``ledger.procurement.record``
and its importer), after checking what may be recorded; nothing above it imports this module
(a contract of the layer check, ``lint-imports``). Integration is reached through
:class:`ledger.log.Log`.

* :func:`append` / :func:`append_many` fix an event's place in its tender's own
  history (``seq``, ``prev``) and make it durable. They MUST NOT return before
  the event is committed; they do not give it a log index.
* :func:`integrate` later gives pending events dense global indices, extends
  the tree's tiles and records the new tree head, one atomic transaction per
  batch, so a crash at any point leaves either the old head or the new one and
  running it again simply continues.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from .core import tiles as tile_math
from .core.canonical import sha256_hex
from .core.envelope import Envelope, check_event_type, check_ocid, format_timestamp, payload_bytes
from .core.errors import ConflictError, InvalidArgumentError, naming
from .core.merkle import leaf_hash
from .store.db import insert_columns, insert_many, insert_or_ignore, write_transaction
from .store.reader import TreeHead, tile_reader
from .store.schema import events, log_entries, log_state, pending, tenders, tiles, tree_heads
from .submission import Recorded, Submission, Unset

_CHUNK = 500  # ocids per locking query, well under every engine's parameter limit


def _prepare(item: Submission, position: str) -> tuple[bytes, str]:
    """Validate what can be validated before taking any lock; return the payload bytes and hash."""
    with naming(position):
        check_ocid(item.ocid)
        check_event_type(item.type)
        data = item.canonical if item.canonical is not None else payload_bytes(item.payload)
    return data, sha256_hex(data)


def append(engine: Engine, item: Submission, *, origin: str, now: datetime) -> Recorded:
    """Record one event. Returns only after the event is durably committed.

    Raises :class:`InvalidArgumentError` (naming the field) for bad input and
    :class:`ConflictError` if ``item.prev`` is given and is not the tender's
    head; in both cases nothing is written.
    """
    return append_many(engine, [item], origin=origin, now=now, _single=True)[0]


#: A check run inside :func:`append_many`'s transaction, after the inserts and before the commit.
Check = Callable[[Connection, Sequence["Submission"], list["Recorded"]], None]


def append_many(
    engine: Engine,
    items: Sequence[Submission],
    *,
    origin: str,
    now: datetime,
    check: Check | None = None,
    _single: bool = False,
) -> list[Recorded]:
    """Record ``items`` atomically, in order: all are committed or none is.

    Returns only after the commit. Events of the same tender chain on each
    other in the order given. Errors as :func:`append`, naming the item
    (``items[3].payload.x``) when there are several.

    ``check``, when given, is called with the transaction's connection, ``items``
    and what they became, after they are inserted and while every tender they
    touch is locked (so it sees and writes each tender's state alone); whatever it
    raises rolls the whole append back and propagates, and whatever it writes on
    the connection commits with the events.
    """
    if not items:
        return []
    prepared = [_prepare(item, "" if _single else f"items[{i}].") for i, item in enumerate(items)]
    with write_transaction(engine) as conn:
        return _append(conn, items, prepared, origin=origin, now=now, check=check, single=_single)


def append_in(
    conn: Connection, items: Sequence[Submission], *, origin: str, now: datetime, check: Check | None = None
) -> list[Recorded]:
    """As :func:`append_many`, inside the caller's write transaction (``db.write_transaction``):
    the events are committed with it, or not at all. For bulk writers that need several batches
    in one transaction (an all-or-nothing import)."""
    if not items:
        return []
    prepared = [_prepare(item, f"items[{i}].") for i, item in enumerate(items)]
    return _append(conn, items, prepared, origin=origin, now=now, check=check, single=False)


def _append(
    conn: Connection,
    items: Sequence[Submission],
    prepared: list[tuple[bytes, str]],
    *,
    origin: str,
    now: datetime,
    check: Check | None,
    single: bool,
) -> list[Recorded]:
    ocids = sorted({item.ocid for item in items})
    heads = _lock_heads(conn, ocids, now)
    stamp = format_timestamp(now)
    rows: list[dict[str, Any]] = []
    recorded: list[tuple[Envelope, bytes]] = []
    for i, (item, (data, digest)) in enumerate(zip(items, prepared, strict=True)):
        count, head = heads[item.ocid]
        with naming("" if single else f"items[{i}]."):
            if not isinstance(item.prev, Unset) and item.prev != head:
                raise ConflictError("prev", f"tender {item.ocid} head is {head!r}, not {item.prev!r}")
            envelope, leaf_data = _envelope(item, origin=origin, seq=count, prev=head, stamp=stamp, digest=digest)
        digest_leaf = leaf_hash(leaf_data)
        heads[item.ocid] = (count + 1, digest_leaf.hex())
        rows.append(
            {
                "ocid": item.ocid,
                "seq": count,
                "type": item.type,
                "recorded_at": now,
                "envelope": leaf_data,
                "payload": data,
                "leaf_hash": digest_leaf,
            }
        )
        recorded.append((envelope, digest_leaf))
    ids = conn.execute(insert(events).returning(events.c.id, sort_by_parameter_order=True), rows).scalars().all()
    insert_many(conn, pending, [{"event_id": event_id} for event_id in ids])
    conn.execute(
        update(tenders)
        .where(tenders.c.ocid == bindparam("o"))
        .values(event_count=bindparam("n"), head_hash=bindparam("h"), updated_at=now),
        [{"o": ocid, "n": heads[ocid][0], "h": heads[ocid][1]} for ocid in ocids],
    )
    result = [
        Recorded(event_id=event_id, envelope=envelope, leaf_hash=digest)
        for event_id, (envelope, digest) in zip(ids, recorded, strict=True)
    ]
    if check is not None:
        check(conn, items, result)
    return result


def _envelope(
    item: Submission, *, origin: str, seq: int, prev: str | None, stamp: str, digest: str
) -> tuple[Envelope, bytes]:
    """The envelope of ``item`` at ``seq`` after ``prev``, and its bytes (the leaf data); its errors
    name the submission's fields."""
    try:
        envelope = Envelope(
            origin=origin,
            ocid=item.ocid,
            seq=seq,
            prev=prev,
            type=item.type,
            recorded_at=stamp,
            payload_sha256=digest,
            submission=item.submission,
            signature=item.signature,
        )
        return envelope, envelope.canonical_bytes()
    except InvalidArgumentError as exc:
        raise exc.renamed(exc.field.removeprefix("envelope.")) from exc


def _lock_heads(conn: Connection, ocids: list[str], now: datetime) -> dict[str, tuple[int, str | None]]:
    """Create missing tenders and lock every tender row, in ocid order (no deadlocks)."""
    conn.execute(
        insert_or_ignore(conn, tenders, keys=["ocid"]),
        [{"ocid": o, "created_at": now, "updated_at": now, "event_count": 0, "head_hash": None} for o in ocids],
    )
    heads: dict[str, tuple[int, str | None]] = {}
    for start in range(0, len(ocids), _CHUNK):
        chunk = ocids[start : start + _CHUNK]
        query = (
            select(tenders.c.ocid, tenders.c.event_count, tenders.c.head_hash)
            .where(tenders.c.ocid.in_(chunk))
            .order_by(tenders.c.ocid)
            .with_for_update()
        )
        for ocid, count, head in conn.execute(query):
            heads[ocid] = (count, head)
    return heads


def integrate(engine: Engine, *, now: datetime, batch_size: int = 50_000) -> TreeHead:
    """Integrate up to ``batch_size`` pending events; return the (possibly new) tree head.

    One transaction: the entries, the tiles, the tree head and the queue are
    updated together or not at all. Integrators take turns on the ``log_state``
    row, so running several at once is safe. Idempotent.
    """
    if batch_size < 1:
        raise InvalidArgumentError("batch_size", f"must be >= 1, got {batch_size}")
    with write_transaction(engine) as conn:
        size, root = conn.execute(
            select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1).with_for_update()
        ).one()
        batch = conn.execute(
            select(pending.c.event_id, events.c.leaf_hash)
            .join(events, events.c.id == pending.c.event_id)
            .order_by(pending.c.event_id)
            .limit(batch_size)
        ).all()
        if not batch:
            return TreeHead(size, bytes(root))
        result = tile_math.integrate(size, [bytes(row.leaf_hash) for row in batch], tile_reader(conn))
        insert_columns(
            conn, log_entries, {"idx": range(size, size + len(batch)), "event_id": [row.event_id for row in batch]}
        )
        conn.execute(
            delete(pending).where(
                pending.c.event_id.in_(select(log_entries.c.event_id).where(log_entries.c.idx >= size))
            )
        )
        changed = [
            {"l": t.level, "i": t.index, "h": data} for t, data in result.tiles.items() if tile_math.tile_width(t, size)
        ]
        created = [
            {"level": t.level, "idx": t.index, "hashes": data}
            for t, data in result.tiles.items()
            if not tile_math.tile_width(t, size)
        ]
        if changed:
            conn.execute(
                update(tiles)
                .where(tiles.c.level == bindparam("l"), tiles.c.idx == bindparam("i"))
                .values(hashes=bindparam("h")),
                changed,
            )
        if created:
            conn.execute(insert(tiles), created)
        conn.execute(insert(tree_heads), {"size": result.size, "root": result.root, "integrated_at": now})
        conn.execute(update(log_state).where(log_state.c.id == 1).values(size=result.size, root=result.root))
    return TreeHead(result.size, result.root)


def integrate_all(engine: Engine, *, now: datetime, batch_size: int = 50_000) -> TreeHead:
    """Integrate batch after batch until no event is pending; return the last tree head."""
    while True:
        head = integrate(engine, now=now, batch_size=batch_size)
        with engine.connect() as conn:
            if conn.execute(select(pending.c.event_id).limit(1)).first() is None:
                return head
