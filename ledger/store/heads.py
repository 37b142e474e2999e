"""The heads commitment's tree in the database, one row per stratum: read a version, write one.

Storage, not format (docs/spec.md §14.4): the tree is cut into the strata of
:mod:`ledger.core.strata` (8 levels each); a row of ``heads_strata`` is a stratum's items:

- ``leaves``: the leaves lifted into the stratum, 72 bytes each: key (32), size (uint64
  big-endian, 8), head (32), in key order;
- ``inners``: the strata below it, 33 bytes each: the edge byte (key byte ``len(prefix)``), then
  the hash of that stratum's root, in edge byte order.

A leaf's hash is not stored: it is computed from the stored fields when the row is read, so a
stored value changed by hand shows in the next commitment (``tenderproof audit`` names it).

Versions are the commitment entries' ``seq`` (0, 1, 2…): a commitment writes one new row for each
stratum on its changed keys' paths, copy-on-write; a stratum as of version ``v`` is its row of
the largest version ``<= v``. For ``k`` changes over ``n`` random keys that is about ``k`` rows
(and ``256 + 1`` of them whole, the strata of the first two bytes), not ``k log n`` nodes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence

from sqlalchemy import Connection

from ..core import heads, strata

_CHUNK = 2000  # strata per query, under every engine's parameter limit (SQLite: 32,766)
_LEAF = struct.Struct(">32sQ32s")
_INNER = struct.Struct(">B32s")


def _marker(conn: Connection) -> str:
    """The driver's positional parameter marker (SQLite's ``?``, psycopg's ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def decode(prefix: bytes, inners: bytes, leaves: bytes) -> strata.Items:
    """A stored stratum's items. Raises ``struct.error`` on a column that is not whole records."""
    items: strata.Items = dict(_INNER.iter_unpack(inners))
    at, stored = len(prefix), heads.Leaf.stored
    for key, size, head in _LEAF.iter_unpack(leaves):
        items[key[at]] = stored(key, size, head)
    return items


def encode(items: Mapping[int, heads.Leaf | bytes]) -> tuple[bytes, bytes]:
    """The ``inners`` and ``leaves`` columns of a stratum's items (see the module's docstring)."""
    inners: list[bytes] = []
    leaves: list[bytes] = []
    pack_leaf, pack_inner = _LEAF.pack, _INNER.pack
    for b in sorted(items):
        item = items[b]
        if type(item) is bytes:
            inners.append(pack_inner(b, item))
        else:
            leaves.append(pack_leaf(item.key, item.size, item.head))  # type: ignore[union-attr]
    return b"".join(inners), b"".join(leaves)


def strata_reader(conn: Connection, version: int) -> strata.Reader:
    """A :data:`ledger.core.strata.Reader` of the tree as of ``version`` (nothing below 0).

    One statement per chunk of strata: for each, one probe of the primary key finds its newest
    version ``<= version``, however many versions it has (the root stratum gets one per
    commitment). Raw driver SQL: the hot path of each commitment, where SQLAlchemy's per-value
    work would cost more than the database's.
    """
    m = _marker(conn)
    sqlite = conn.dialect.name == "sqlite"
    newest = f"FROM heads_strata o WHERE o.prefix = wanted.p AND o.version <= {m} ORDER BY o.version DESC LIMIT 1"

    def read(prefixes: Sequence[bytes]) -> Mapping[bytes, strata.Items]:
        out: dict[bytes, strata.Items] = {}
        if version < 0:
            return out
        wanted = sorted(set(prefixes))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            values = ", ".join([f"({m})"] * len(chunk))
            if sqlite:  # the newest row's rowid: one probe of the key's index, one of the table
                sql = (
                    f"WITH wanted (p) AS (VALUES {values}) SELECT n.prefix, n.inners, n.leaves"
                    f" FROM wanted JOIN heads_strata n ON n.rowid = (SELECT o.rowid {newest})"
                )
            else:  # PostgreSQL: one backward index scan per stratum, stopped at its first row
                sql = (
                    f"WITH wanted (p) AS (VALUES {values}) SELECT n.prefix, n.inners, n.leaves"
                    f" FROM wanted CROSS JOIN LATERAL (SELECT o.prefix, o.inners, o.leaves {newest}) n"
                )
            cursor = conn.connection.cursor()  # the transaction's own driver connection
            try:
                cursor.execute(sql, (*chunk, version))
                rows = cursor.fetchall()
            finally:
                cursor.close()
            for prefix, inners, leaves in rows:
                p = bytes(prefix)
                out[p] = decode(p, bytes(inners), bytes(leaves))
        return out

    return read


def write(conn: Connection, version: int, writes: Mapping[bytes, strata.Items]) -> None:
    """Store the strata :func:`ledger.core.strata.update` computed for ``version`` (one
    executemany of raw driver SQL, for the reason :func:`strata_reader` gives)."""
    rows = [(prefix, version, *encode(items)) for prefix, items in writes.items()]
    if rows:
        m = _marker(conn)
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO heads_strata (prefix, version, inners, leaves) VALUES ({m}, {m}, {m}, {m})", rows
            )
        finally:
            cursor.close()


def update(conn: Connection, version: int, changes: Iterable[heads.Leaf]) -> strata.Update:
    """Write version ``version`` of the tree: version ``version - 1`` with ``changes`` (new or
    grown heads, distinct keys) applied. Returns the update (its root, the strata written)."""
    result = strata.update(changes, strata_reader(conn, version - 1))
    write(conn, version, result.writes)
    return result


def reader(conn: Connection, version: int) -> heads.Reader:
    """A :data:`ledger.core.heads.Reader` of the tree's nodes as of ``version``."""
    return strata.Nodes(strata_reader(conn, version))


def root_node(conn: Connection, version: int) -> heads.Node | None:
    """The root position's node as of ``version`` (``None``: the empty tree, or ``version < 0``)."""
    return strata.Nodes(strata_reader(conn, version)).root_node()


def prove(conn: Connection, version: int, key: bytes) -> heads.Proof:
    """The proof of ``key`` in the tree as of ``version``."""
    return strata.Nodes(strata_reader(conn, version)).prove(key)


def prover(conn: Connection, version: int) -> Callable[[bytes], heads.Proof]:
    """Proofs of many keys in the tree as of ``version``, each stratum read once."""
    return strata.Nodes(strata_reader(conn, version)).prove
