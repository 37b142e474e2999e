"""The heads commitment's tree in the database, in strata: read a version, write one.

Storage, not format (docs/spec.md §14.4): the tree's roots and proofs are those of
:mod:`ledger.core.heads`; only the rows differ. As Trillian's map stores subtrees, the tree is cut
every :data:`HEIGHT` levels into **strata**: the stratum rooted at depth ``s`` (a multiple of 8)
and prefix ``P`` (the first ``s / 8`` bytes of its keys; the root stratum's is empty) holds the
positions of depths ``s + 1`` to ``s + 8`` below it (and, for the root stratum, the root itself).
A row keeps only what its nodes cannot be recomputed from:

- ``leaves``: every leaf lifted into the stratum, 73 bytes each: its depth relative to ``s``
  (one byte, 0 only for a lone leaf at the root), key (32), size (uint64 big-endian, 8), head (32);
- ``inners``: every inner node on the stratum's bottom edge (depth ``s + 8``, the root of the
  stratum below it), 33 bytes each: the key byte ``s / 8`` of its position, then its hash.

The inner nodes between are hashed again when a stratum is read (at most 255 per stratum). A
stratum exists where its root position holds an inner node (and the root stratum once the map
has a key).

Versions are the commitment entries' ``seq`` (0, 1, 2…): a commitment writes a new row for every
stratum it changes, copy-on-write; a stratum as of version ``v`` is its row of the largest version
``<= v``. An update of ``k`` random keys over ``n`` writes about ``k`` rows (not ``k log n``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence

from sqlalchemy import Connection

from ..core import heads

#: Levels per stratum; a stratum's prefix is whole bytes of the keys.
HEIGHT = 8
_CHUNK = 2000  # strata per query, under every engine's parameter limit (SQLite: 32,766)
_LEAF = struct.Struct(">B32sQ32s")
_INNER = struct.Struct(">B32s")
_EDGE = 1 << HEIGHT  # heap index of the first position on a stratum's bottom edge

#: A stratum's nodes by heap index: 1 its root, ``2h`` and ``2h + 1`` the children of ``h``, so
#: the position of relative depth ``r`` whose next ``r`` key bits read ``i`` is ``2**r + i``.
Stratum = dict[int, heads.Node]


def _marker(conn: Connection) -> str:
    """The driver's positional parameter marker (SQLite's ``?``, psycopg's ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def locate(depth: int, prefix: bytes) -> tuple[bytes, int]:
    """The stratum (its prefix) holding the position ``(depth, prefix)``, and the position's heap
    index in it. Requires ``0 <= depth <= 256``."""
    if not depth:
        return b"", 1
    top = (depth - 1) >> 3  # the stratum's depth / 8
    rel = depth - (top << 3)
    return prefix[:top], (1 << rel) | (prefix[top] >> (HEIGHT - rel))


def decode(stratum: bytes, inners: bytes, leaves: bytes) -> Stratum:
    """Every non-empty position of a stored stratum, its inner nodes hashed again from its leaves
    and bottom edge. Raises ``struct.error`` on a row whose lengths are not whole records."""
    byte = len(stratum)
    nodes: Stratum = {_EDGE | i: heads.Inner(h) for i, h in _INNER.iter_unpack(inners)}
    stored = heads.Leaf.stored
    for rel, key, size, head in _LEAF.iter_unpack(leaves):
        nodes[(1 << rel) | (key[byte] >> (HEIGHT - rel))] = stored(key, size, head)
    # The inner positions are the stored nodes' strict ancestors (a leaf is lifted to where it
    # is alone, so its parent holds two leaves or more); children have the larger heap indices.
    above: set[int] = set()
    for h in nodes:
        h >>= 1
        while h and h not in above:
            above.add(h)
            h >>= 1
    get, sha, empty = nodes.get, hashlib.sha256, heads.EMPTY
    inner = heads.Inner
    for h in sorted(above, reverse=True):
        left, right = get(2 * h), get(2 * h + 1)
        nodes[h] = inner(
            sha(b"\x01" + (empty if left is None else left.hash) + (empty if right is None else right.hash)).digest()
        )
    return nodes


def encode(nodes: Stratum) -> tuple[bytes, bytes]:
    """The ``inners`` and ``leaves`` columns of a stratum's nodes (see the module's docstring)."""
    inners: list[bytes] = []
    leaves: list[bytes] = []
    pack_leaf, pack_inner = _LEAF.pack, _INNER.pack
    for h in sorted(nodes):
        node = nodes[h]
        if type(node) is heads.Leaf:
            leaves.append(pack_leaf(h.bit_length() - 1, node.key, node.size, node.head))
        elif h >= _EDGE:
            inners.append(pack_inner(h & (_EDGE - 1), node.hash))
    return b"".join(inners), b"".join(leaves)


class Strata:
    """The strata of one version, read from the database on demand and kept (one per update or
    proof; the version never changes once written)."""

    def __init__(self, conn: Connection, version: int) -> None:
        self._conn = conn
        self.version = version
        self.loaded: dict[bytes, Stratum] = {}

    def load(self, prefixes: Iterable[bytes]) -> None:
        """Read the listed strata not read yet (an absent one is empty)."""
        wanted = sorted({p for p in prefixes if p not in self.loaded})
        if not wanted:
            return
        loaded = self.loaded
        for p in wanted:
            loaded[p] = {}
        if self.version < 0:
            return
        m = _marker(self._conn)
        newest = f"FROM heads_strata o WHERE o.prefix = wanted.p AND o.version <= {m} ORDER BY o.version DESC LIMIT 1"
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            values = ", ".join([f"({m})"] * len(chunk))
            if self._conn.dialect.name == "sqlite":  # the newest row's rowid: one probe of the key's index
                sql = (
                    f"WITH wanted (p) AS (VALUES {values}) SELECT n.prefix, n.inners, n.leaves"
                    f" FROM wanted JOIN heads_strata n ON n.rowid = (SELECT o.rowid {newest})"
                )
            else:  # PostgreSQL: one backward index scan per stratum, stopped at its first row
                sql = (
                    f"WITH wanted (p) AS (VALUES {values}) SELECT n.prefix, n.inners, n.leaves"
                    f" FROM wanted CROSS JOIN LATERAL (SELECT o.prefix, o.inners, o.leaves {newest}) n"
                )
            cursor = self._conn.connection.cursor()  # the transaction's own driver connection
            try:
                cursor.execute(sql, (*chunk, self.version))
                rows = cursor.fetchall()
            finally:
                cursor.close()
            for prefix, inners, leaves in rows:
                p = bytes(prefix)
                loaded[p] = decode(p, bytes(inners), bytes(leaves))

    def read(self, depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, heads.Node]:
        """A :data:`ledger.core.heads.Reader`: one query per depth whose strata are not read yet
        (each update reads about ``256 / HEIGHT`` times, not once per depth)."""
        located = [(p, *locate(depth, p)) for p in prefixes]
        loaded = self.loaded
        if any(s not in loaded for _, s, _ in located):
            self.load(s for _, s, _ in located)
        out: dict[bytes, heads.Node] = {}
        for p, s, h in located:
            node = loaded[s].get(h)
            if node is not None:
                out[p] = node
        return out

    def root_node(self) -> heads.Node | None:
        """The root position's node (``None``: the empty tree, or a version below 0)."""
        return self.read(0, [heads.EMPTY]).get(heads.EMPTY)

    def prove(self, key: bytes) -> heads.Proof:
        return heads.prove(self.root_node(), key, self.read)


def reader(conn: Connection, version: int) -> heads.Reader:
    """A :data:`ledger.core.heads.Reader` of the tree as of ``version``."""
    return Strata(conn, version).read


def root_node(conn: Connection, version: int) -> heads.Node | None:
    """The root position's node as of ``version`` (``None``: the empty tree, or ``version < 0``)."""
    return Strata(conn, version).root_node()


def write(conn: Connection, version: int, writes: Mapping[heads.Position, heads.Node], old: Strata) -> int:
    """Store the nodes :func:`ledger.core.heads.update` computed for ``version`` over ``old`` (the
    previous version's strata, as read by the update): one row for each stratum they change, in
    one executemany of raw driver SQL (the hot path of each commitment, where SQLAlchemy's
    per-value work would cost more than the database's). Returns the number of rows."""
    changed: dict[bytes, Stratum] = {}
    for (depth, prefix), node in writes.items():
        s, h = locate(depth, prefix)
        nodes = changed.get(s)
        if nodes is None:
            nodes = changed[s] = {}
        nodes[h] = node
    old.load(changed)  # a stratum the update did not read is new, or its root was a lone leaf
    rows = []
    for s, nodes in changed.items():
        merged = old.loaded[s] | nodes
        rows.append((s, version, *encode(merged)))
    if rows:
        m = _marker(conn)
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(f"INSERT INTO heads_strata (prefix, version, inners, leaves) VALUES ({m}, {m}, {m}, {m})", rows)
        finally:
            cursor.close()
    return len(rows)


def update(conn: Connection, version: int, changes: Iterable[heads.Leaf]) -> heads.Update:
    """Write version ``version`` of the tree: version ``version - 1`` with ``changes`` (new or
    grown heads, distinct keys) applied. Returns the update (its root and the changed positions)."""
    old = Strata(conn, version - 1)
    result = heads.update(old.root_node(), changes, old.read)
    write(conn, version, result.writes, old)
    return result


def prove(conn: Connection, version: int, key: bytes) -> heads.Proof:
    """The proof of ``key`` in the tree as of ``version``."""
    return Strata(conn, version).prove(key)


def prover(conn: Connection, version: int) -> Callable[[bytes], heads.Proof]:
    """Proofs of many keys in the tree as of ``version``, each stratum read once."""
    return Strata(conn, version).prove
