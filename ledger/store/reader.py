"""The read side of the log: tree heads, proofs, entries and tender histories.

Every proof is O(log n) tile reads (see :mod:`ledger.core.tiles`), never a
recomputation over the log.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, Select, and_, func, or_, select

from ..core import jsonsafe, proof
from ..core import tiles as tile_math
from ..core.envelope import Envelope
from ..core.errors import FormatError, InvalidArgumentError, NotFoundError
from ..core.heads import HEADS_OCID
from .db import read_transaction
from .schema import events, log_entries, log_state, payloads, pending, tenders, tiles, tree_heads
from .tile_cache import TileRowCache

_CHUNK = 500
#: Most entries one call of :meth:`LogReader.entries` returns.
MAX_ENTRIES_PER_READ = 10_000
#: Deepest nesting of stored JSON a reader parses: more than any event accepted since input is
#: bounded (32 levels), far less than what could exhaust the stack when shown.
MAX_STORED_DEPTH = 64


@dataclass(frozen=True, slots=True)
class TreeHead:
    size: int
    root: bytes


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """An event as stored: its exact envelope bytes, payload bytes and, once integrated, its index.

    :attr:`parsed_envelope` and :attr:`parsed_payload` parse the stored bytes once, when first
    asked for; the bytes themselves are what is hashed and served. ``payload`` is ``None`` when
    the whole payload is withheld; ``withheld_by`` is the log index of the withholding order
    that withheld it (or some of its fields); ``disclosure`` the envelope v2 disclosure's bytes.
    """

    event_id: int
    ocid: str
    seq: int
    type: str
    envelope: bytes
    payload: bytes | None
    leaf_hash: bytes
    index: int | None
    disclosure: bytes | None = None
    withheld_by: int | None = None

    @property
    def withheld(self) -> bool:
        """True when the whole payload is withheld (by an order, or missing)."""
        return self.payload is None

    @cached_property
    def parsed_envelope(self) -> Envelope:
        """The envelope (raises :class:`~ledger.core.errors.InvalidArgumentError` if the stored
        bytes are not a valid envelope: only a tampered database holds such bytes)."""
        return Envelope.from_json(
            jsonsafe.loads(self.envelope, field=f"{self.ocid} seq {self.seq} envelope", max_depth=MAX_STORED_DEPTH)
        )

    @cached_property
    def parsed_payload(self) -> Any:
        """The payload; raises :class:`~ledger.core.errors.FormatError` (naming the event) if the
        stored bytes nest deeper than :data:`MAX_STORED_DEPTH` (recorded before input was bounded:
        entries are append-only, so readers show the rest and say what they could not).
        ``None`` when the whole payload is withheld."""
        if self.payload is None:
            return None
        return jsonsafe.loads(self.payload, field=f"{self.ocid} seq {self.seq} payload", max_depth=MAX_STORED_DEPTH)

    @cached_property
    def parsed_disclosure(self) -> dict[str, Any] | None:
        """The envelope v2 disclosure (docs/spec.md §2.5); ``None`` for a v1 entry."""
        if self.disclosure is None:
            return None
        value = jsonsafe.loads(self.disclosure, field=f"{self.ocid} seq {self.seq} disclosure", max_depth=8)
        if not isinstance(value, dict):
            raise FormatError(f"{self.ocid} seq {self.seq} disclosure", "is not a JSON object")
        return value

    @property
    def readable_payload(self) -> tuple[Any, str | None]:
        """(payload, None), or (None, why it cannot be shown) for a payload too deep to read or
        withheld."""
        if self.payload is None:
            return None, withheld_reason(self.withheld_by)
        try:
            return self.parsed_payload, None
        except FormatError as exc:
            return None, str(exc)

    def to_json(self) -> dict[str, Any]:
        """The entry as the read API and ``tenderproof entries`` serve it (to mirror the log):
        its index, leaf hash, the exact leaf data (base64), what the envelope says, the payload."""
        return (
            {
                "index": self.index,
                "leaf_hash": self.leaf_hash.hex(),
                "leaf_data": base64.b64encode(self.envelope).decode("ascii"),
                "ocid": self.ocid,
                "seq": self.seq,
                "type": self.type,
                "envelope": self.parsed_envelope.to_json(),
                "payload": self.parsed_payload,
            }
            | ({} if self.withheld_by is None else {"withheld_by": self.withheld_by})
            | ({} if self.disclosure is None else {"disclosure": self.parsed_disclosure})
        )


def withheld_reason(order: int | None) -> str:
    """Why a payload is not shown: the order's log index, or that none is known."""
    if order is None:
        return "payload missing (no withholding order names it)"
    return f"withheld under the order at log index {order}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TenderHead:
    ocid: str
    event_count: int
    head_hash: str | None


def tile_reader(conn: Connection) -> tile_math.TileReader:
    """A :data:`~ledger.core.tiles.TileReader` over ``conn``.

    Asks ``level = L AND idx IN (...)`` per level, ORed: both engines answer that from
    the primary key, where a row-value ``(level, idx) IN (...)`` makes SQLite scan the table.
    """

    def read(ids: Sequence[tile_math.TileID]) -> dict[tile_math.TileID, bytes]:
        by_level: dict[int, list[int]] = {}
        for tile in ids:
            by_level.setdefault(tile.level, []).append(tile.index)
        out: dict[tile_math.TileID, bytes] = {}
        for start in range(0, len(by_level), _CHUNK):
            levels = list(by_level.items())[start : start + _CHUNK]
            where = or_(*(and_(tiles.c.level == level, tiles.c.idx.in_(indices)) for level, indices in levels))
            for level, idx, data in conn.execute(select(tiles.c.level, tiles.c.idx, tiles.c.hashes).where(where)):
                out[tile_math.TileID(level, idx)] = bytes(data)
        return out

    return read


@dataclass(frozen=True, slots=True)
class Bundle:
    """What :meth:`LogReader.bundle` read: the tree's size, the withholding orders' count, each
    entry's ``(envelope, payload or None, disclosure or b"")`` and the level-0 tile's hashes."""

    size: int
    orders: int
    rows: list[tuple[bytes, bytes | None, bytes]]
    leaf_tile: bytes | None


def _orders(conn: Connection, ocid: str) -> int:
    found = conn.execute(select(tenders.c.event_count).where(tenders.c.ocid == ocid)).scalar()
    return 0 if found is None else int(found)


def current_head(conn: Connection) -> TreeHead:
    size, root = conn.execute(select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1)).one()
    return TreeHead(size, bytes(root))


class LogReader:
    """Reads the log. Thread-safe: each call runs in its own read transaction.

    Proofs and past roots read tree nodes through ``tile_cache`` (default: a
    :class:`~ledger.store.tile_cache.TileRowCache` of :data:`~ledger.store.tile_cache.DEFAULT_MAX_TILES`
    tiles): the nodes of tiles already read come from memory, since stored tiles never change.
    A proof for a tree size no larger than the largest this reader has seen in the database
    (the log only grows), whose nodes are all in the cache, is answered without asking the
    database; any other is checked and read in the database.
    """

    def __init__(self, engine: Engine, *, tile_cache: TileRowCache | None = None) -> None:
        self._engine = engine
        self.tile_cache = TileRowCache() if tile_cache is None else tile_cache
        self._rows = self.tile_cache if self.tile_cache.max_tiles else None  # 0 tiles: no cache at all
        #: The largest tree size read from the database so far (it only grows).
        self._seen_size = 0

    def tree_head(self) -> TreeHead:
        with read_transaction(self._engine) as conn:
            head = current_head(conn)
        self._seen_size = max(self._seen_size, head.size)
        return head

    def _from_memory(self, nodes: proof.ProofNodes, size: int) -> list[bytes] | None:
        """``nodes`` assembled from the tile cache alone, if ``size`` is known to exist and the
        cache holds every node; ``None`` otherwise (the caller asks the database)."""
        if self._rows is None or not 0 <= size <= self._seen_size:
            return None
        hashes = tile_math.cached_nodes(nodes.ids, self._rows)
        return None if hashes is None else nodes.assemble(hashes)

    def committed_size(self) -> int:
        """The tree size ending with the newest heads commitment (docs/spec.md §14.1): what an
        anchoring round anchors. The current size when the log holds no commitment yet."""
        with read_transaction(self._engine) as conn:
            newest = conn.execute(
                select(func.max(log_entries.c.idx))
                .join(events, events.c.id == log_entries.c.event_id)
                .where(events.c.ocid == HEADS_OCID)
            ).scalar()
            return current_head(conn).size if newest is None else int(newest) + 1

    def _check_size(self, conn: Connection, size: int, field: str) -> None:
        head = current_head(conn)
        self._seen_size = max(self._seen_size, head.size)
        if not 0 <= size <= head.size:
            raise InvalidArgumentError(field, f"must be between 0 and the log's size {head.size}, got {size}")

    def root_at(self, size: int) -> bytes:
        """The root of the tree when it had ``size`` leaves (any size up to the current one)."""
        if size > 0 and (memory := self._from_memory(proof.root(size), size)) is not None:
            return memory[0]
        with read_transaction(self._engine) as conn:
            self._check_size(conn, size, "tree_size")
            stored = conn.execute(select(tree_heads.c.root).where(tree_heads.c.size == size)).scalar()
            if stored is not None:
                return bytes(stored)
            nodes = proof.root(size)
            return nodes.assemble(tile_math.read_nodes(nodes.ids, tile_reader(conn), self._rows))[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` leaves.

        Requires ``0 <= index < size <= current size``; raises InvalidArgumentError otherwise.
        """
        if 0 <= index < size and (memory := self._from_memory(proof.inclusion(index, size), size)) is not None:
            return memory
        with read_transaction(self._engine) as conn:
            self._check_size(conn, size, "tree_size")
            if not 0 <= index < size:
                raise InvalidArgumentError("index", f"must be in [0, {size}) for tree size {size}, got {index}")
            nodes = proof.inclusion(index, size)
            return nodes.assemble(tile_math.read_nodes(nodes.ids, tile_reader(conn), self._rows))

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 consistency proof from tree size ``size1`` to ``size2``.

        Requires ``0 <= size1 <= size2 <= current size``.
        """
        if 0 <= size1 <= size2 and (memory := self._from_memory(proof.consistency(size1, size2), size2)) is not None:
            return memory
        with read_transaction(self._engine) as conn:
            self._check_size(conn, size2, "size2")
            if not 0 <= size1 <= size2:
                raise InvalidArgumentError("size1", f"must be in [0, {size2}], got {size1}")
            nodes = proof.consistency(size1, size2)
            return nodes.assemble(tile_math.read_nodes(nodes.ids, tile_reader(conn), self._rows))

    def entries(self, start: int, end: int) -> list[StoredEvent]:
        """Log entries ``[start, end)`` in index order, at most :data:`MAX_ENTRIES_PER_READ`."""
        if not 0 <= start <= end:
            raise InvalidArgumentError("start", f"needs 0 <= start <= end, got [{start}, {end})")
        if end - start > MAX_ENTRIES_PER_READ:
            raise InvalidArgumentError("end", f"at most {MAX_ENTRIES_PER_READ} entries per read, asked {end - start}")
        with read_transaction(self._engine) as conn:
            self._check_size(conn, end, "end")
            query = (
                _event_columns(log_entries.c.idx)
                .join(log_entries, log_entries.c.event_id == events.c.id)
                .where(log_entries.c.idx >= start, log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            )
            return [stored_event(row) for row in conn.execute(query)]

    def entry_bytes(self, start: int, end: int, *, payloads: bool = False, disclosures: bool = False) -> list[bytes]:
        """The exact stored bytes of entries ``[start, end)`` in index order: their envelopes (the
        leaf data), or with ``payloads`` their payloads, or with ``disclosures`` their envelope v2
        disclosures (``b""`` for a v1 entry); one narrow query, for the static bundles.
        Requires ``0 <= start <= end <= current size``, at most :data:`MAX_ENTRIES_PER_READ`."""
        if not 0 <= start <= end:
            raise InvalidArgumentError("start", f"needs 0 <= start <= end, got [{start}, {end})")
        if end - start > MAX_ENTRIES_PER_READ:
            raise InvalidArgumentError("end", f"at most {MAX_ENTRIES_PER_READ} entries per read, asked {end - start}")
        column = _payloads.c.disclosure if disclosures else _payloads.c.body if payloads else events.c.envelope
        missing = b"" if disclosures else b"null"
        with read_transaction(self._engine) as conn:
            self._check_size(conn, end, "end")
            query = (
                select(column)
                .select_from(EVENTS_FROM)
                .join(log_entries, log_entries.c.event_id == events.c.id)
                .where(log_entries.c.idx >= start, log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            )
            return [missing if data is None else bytes(data) for (data,) in conn.execute(query)]

    def bundle(self, start: int, end: int, *, orders_ocid: str) -> Bundle:
        """Everything the static bundles of entries ``[start, end)`` are made of, in one read:
        each entry's envelope, payload (``None``: withheld) and disclosure (``b""``: none), the
        level-0 tile holding them when they are one tile's (``None`` otherwise, or not stored), and
        the number of withholding orders (``orders_ocid``'s events) recorded when read. The
        orders' count is read before the payloads: payloads read later are at least that recent,
        so a copy kept with it is stale whenever the count has moved (see :meth:`orders`).
        Raises NotFoundError when the tree (its size, also returned) does not hold ``end`` yet."""
        if not 0 <= start <= end or end - start > MAX_ENTRIES_PER_READ:
            raise InvalidArgumentError("end", f"needs 0 <= start <= end <= start + {MAX_ENTRIES_PER_READ}")
        with read_transaction(self._engine) as conn:
            size = current_head(conn).size
            self._seen_size = max(self._seen_size, size)
            if end > size:
                raise NotFoundError(f"entries [{start}, {end}): the tree (size {size}) does not hold them yet")
            orders = _orders(conn, orders_ocid)
            query = (
                select(events.c.envelope, _payloads.c.body, _payloads.c.disclosure)
                .select_from(EVENTS_FROM)
                .join(log_entries, log_entries.c.event_id == events.c.id)
                .where(log_entries.c.idx >= start, log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            )
            # fetched at once (not row by row: ~30 % of this read's time on 256 rows)
            rows = [
                (
                    bytes(envelope),
                    None if body is None else bytes(body),
                    b"" if disclosure is None else bytes(disclosure),
                )
                for envelope, body, disclosure in conn.execute(query).all()
            ]
            tile = tile_math.TileID(0, start // tile_math.TILE_WIDTH)
            one_tile = end > start and (end - 1) // tile_math.TILE_WIDTH == tile.index
            leaf_tile = tile_reader(conn)([tile]).get(tile) if one_tile else None
        return Bundle(size=size, orders=orders, rows=rows, leaf_tile=leaf_tile)

    def orders(self, orders_ocid: str) -> int:
        """The number of events of ``orders_ocid`` (the withholding orders) recorded: a payload
        changes only in the transaction that records an order (ledger.procurement.withholding,
        and the database's guards allow no other change), so an unchanged count means unchanged
        payloads. One primary-key read, a statement of its own on a pooled driver connection
        (a transaction through SQLAlchemy cost ~15x more: the static payload and disclosure
        bundles ask this on every request)."""
        sql = f"SELECT event_count FROM {tenders.name} WHERE ocid = " + (
            "?" if self._engine.dialect.paramstyle == "qmark" else "%s"
        )
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, (orders_ocid,))
                found = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, which rolls back whatever the driver began
        return 0 if found is None else int(found[0])

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of entries ``[start, end)`` straight from the level-0 tiles.

        Requires ``0 <= start <= end <= current size``; raises InvalidArgumentError otherwise.
        """
        if not 0 <= start <= end:
            raise InvalidArgumentError("start", f"needs 0 <= start <= end, got [{start}, {end})")
        with read_transaction(self._engine) as conn:
            self._check_size(conn, end, "end")
            first, last = start // tile_math.TILE_WIDTH, (end - 1) // tile_math.TILE_WIDTH if end else -1
            ids = [tile_math.TileID(0, i) for i in range(first, last + 1)]
            got = tile_reader(conn)(ids)
        blob = b"".join(got[t] for t in ids)
        offset = first * tile_math.TILE_WIDTH
        return [blob[(i - offset) * 32 : (i - offset + 1) * 32] for i in range(start, end)]

    def tender(self, ocid: str) -> TenderHead:
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(tenders.c.ocid, tenders.c.event_count, tenders.c.head_hash).where(tenders.c.ocid == ocid)
            ).first()
        if row is None:
            raise NotFoundError(f"tender {ocid!r} not found")
        return TenderHead(ocid=row.ocid, event_count=row.event_count, head_hash=row.head_hash)

    def tender_events(self, ocid: str, *, from_seq: int = 0, limit: int | None = None) -> list[StoredEvent]:
        """A tender's events in ``seq`` order from ``from_seq`` (at most ``limit`` of them: a page),
        with their log index once integrated. Raises :class:`NotFoundError` for an unknown tender
        (a page past its last event is empty)."""
        with read_transaction(self._engine) as conn:
            query = (
                _event_columns(log_entries.c.idx)
                .outerjoin(log_entries, log_entries.c.event_id == events.c.id)
                .where(events.c.ocid == ocid, events.c.seq >= from_seq)
                .order_by(events.c.seq)
            )
            if limit is not None:
                query = query.limit(limit)
            rows = [stored_event(row) for row in conn.execute(query)]
            if not rows and (
                from_seq == 0 or not conn.execute(select(tenders.c.ocid).where(tenders.c.ocid == ocid)).first()
            ):
                raise NotFoundError(f"tender {ocid!r} not found")
        return rows

    def events_after(self, after: int, *, limit: int, ocid: str | None = None) -> list[StoredEvent]:
        """Up to ``limit`` events (of tender ``ocid`` only, when given) whose event id is greater
        than ``after``, in event id order, with their log index once integrated: a scan of the
        whole log in bounded memory (pass the last ``event_id`` read as the next ``after``)."""
        if limit < 1:
            raise InvalidArgumentError("limit", f"must be >= 1, got {limit}")
        with read_transaction(self._engine) as conn:
            query = (
                _event_columns(log_entries.c.idx)
                .outerjoin(log_entries, log_entries.c.event_id == events.c.id)
                .where(events.c.id > after)
                .order_by(events.c.id)
                .limit(limit)
            )
            if ocid is not None:
                query = query.where(events.c.ocid == ocid)
            return [stored_event(row) for row in conn.execute(query)]

    def tender_head(self, ocid: str) -> tuple[int, str | None]:
        """(events recorded, hex leaf hash of the last) of tender ``ocid``; :class:`NotFoundError` if unknown."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(tenders.c.event_count, tenders.c.head_hash).where(tenders.c.ocid == ocid)).first()
        if row is None:
            raise NotFoundError(f"tender {ocid!r} not found")
        return int(row.event_count), row.head_hash

    def pending_count(self) -> int:
        with read_transaction(self._engine) as conn:
            return int(conn.execute(select(func.count()).select_from(pending)).scalar_one())


_payloads = payloads

#: Events with their payloads (stored apart, migration 0017): what to select :data:`EVENT_COLUMNS` from.
EVENTS_FROM = events.join(payloads, payloads.c.event_id == events.c.id)

#: The columns of ``events`` and ``payloads`` a :class:`StoredEvent` is made of (see
#: :func:`stored_event`); select them from :data:`EVENTS_FROM`.
EVENT_COLUMNS: tuple[ColumnElement[Any], ...] = (
    events.c.id,
    events.c.ocid,
    events.c.seq,
    events.c.type,
    events.c.envelope,
    payloads.c.body.label("payload"),
    payloads.c.disclosure,
    payloads.c.withheld_by,
    events.c.leaf_hash,
)


def _event_columns(index_column: ColumnElement[Any]) -> Select[Any]:
    return select(*EVENT_COLUMNS, index_column).select_from(EVENTS_FROM)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPayload:
    """An event's stored payload: its body (None when withheld whole), its v2 disclosure's bytes
    (None for v1 entries) and the log index of the order that withheld (part of) it."""

    body: bytes | None
    disclosure: bytes | None
    withheld_by: int | None


def read_payload(conn: Connection, event_id: int) -> StoredPayload:
    """The stored payload of event ``event_id``: the one door through which payloads are read by
    id. Raises :class:`NotFoundError` if the event has no payload row."""
    row = conn.execute(
        select(payloads.c.body, payloads.c.disclosure, payloads.c.withheld_by).where(payloads.c.event_id == event_id)
    ).first()
    if row is None:
        raise NotFoundError(f"event {event_id} has no stored payload")
    return StoredPayload(
        body=None if row.body is None else bytes(row.body),
        disclosure=None if row.disclosure is None else bytes(row.disclosure),
        withheld_by=row.withheld_by,
    )


def stored_event(row: Row[Any]) -> StoredEvent:
    """The :class:`StoredEvent` of a row that has :data:`EVENT_COLUMNS` (and ``idx``, when known)."""
    mapping = row._mapping
    return StoredEvent(
        event_id=row.id,
        ocid=row.ocid,
        seq=row.seq,
        type=row.type,
        envelope=bytes(row.envelope),
        payload=None if row.payload is None else bytes(row.payload),
        leaf_hash=bytes(row.leaf_hash),
        index=mapping.get("idx"),
        disclosure=None if row.disclosure is None else bytes(row.disclosure),
        withheld_by=row.withheld_by,
    )
