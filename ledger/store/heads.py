"""The heads commitment's tree nodes in the database: read a version, write one.

Versions are the commitment entries' ``seq`` (0, 1, 2…). The node of a position as of version
``v`` is its row of the largest version ``<= v`` (docs/spec.md §14.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from ..core import heads

_CHUNK = 2000  # prefixes per query, under every engine's parameter limit (SQLite: 32,766)


def _marker(conn: Connection) -> str:
    """The driver's positional parameter marker (SQLite's ``?``, psycopg's ``%s``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def reader(conn: Connection, version: int) -> heads.Reader:
    """A :data:`ledger.core.heads.Reader` of the tree as of ``version``.

    One statement per chunk of positions, driven by the positions: for each, one probe of the
    primary key finds its newest version ``<= version`` and reads that row, however many
    versions the position has (the upper levels get one per commitment). Raw driver SQL: the
    hot path of each commitment, where SQLAlchemy's per-value work would cost more than the
    database's.
    """
    m = _marker(conn)
    sqlite = conn.dialect.name == "sqlite"
    inner, stored = heads.Inner, heads.Leaf.stored

    def read(depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, heads.Node]:
        out: dict[bytes, heads.Node] = {}
        wanted = sorted(set(prefixes))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            values = ", ".join([f"({m})"] * len(chunk))
            newest = (
                f"FROM heads_nodes o WHERE o.depth = {m} AND o.prefix = wanted.p AND o.version <= {m}"
                " ORDER BY o.version DESC LIMIT 1"
            )
            if sqlite:  # the newest row's rowid: one probe of the key's index, one of the table
                sql = (
                    f"WITH wanted (p) AS (VALUES {values}) SELECT n.prefix, n.hash, n.leaf_key, n.size, n.head"
                    f" FROM wanted JOIN heads_nodes n ON n.rowid = (SELECT o.rowid {newest})"
                )
            else:  # PostgreSQL: one backward index scan per position, stopped at its first row
                sql = (
                    f"WITH wanted (p) AS (VALUES {values}) SELECT n.prefix, n.hash, n.leaf_key, n.size, n.head"
                    f" FROM wanted CROSS JOIN LATERAL (SELECT o.prefix, o.hash, o.leaf_key, o.size, o.head {newest}) n"
                )
            cursor = conn.connection.cursor()  # the transaction's own driver connection
            try:
                cursor.execute(sql, (*chunk, depth, version))
                rows = cursor.fetchall()
            finally:
                cursor.close()
            for prefix, digest, leaf_key, size, head in rows:
                out[bytes(prefix)] = (
                    inner(bytes(digest)) if leaf_key is None else stored(bytes(leaf_key), int(size), bytes(head))
                )
        return out

    return read


def root_node(conn: Connection, version: int) -> heads.Node | None:
    """The root position's node as of ``version`` (``None``: the empty tree, or ``version < 0``)."""
    if version < 0:
        return None
    return reader(conn, version)(0, [heads.EMPTY]).get(heads.EMPTY)


def write(conn: Connection, version: int, writes: Mapping[heads.Position, heads.Node]) -> None:
    """Store the nodes :func:`ledger.core.heads.update` computed for ``version`` (one executemany
    of raw driver SQL, for the reason :func:`reader` gives)."""
    rows = [
        (depth, prefix, version, node.hash, node.key, node.size, node.head)
        if type(node) is heads.Leaf
        else (depth, prefix, version, node.hash, None, None, None)
        for (depth, prefix), node in writes.items()
    ]
    if rows:
        m = _marker(conn)
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(
                "INSERT INTO heads_nodes (depth, prefix, version, hash, leaf_key, size, head)"
                f" VALUES ({', '.join([m] * 7)})",
                rows,
            )
        finally:
            cursor.close()


def prove(conn: Connection, version: int, key: bytes) -> heads.Proof:
    """The proof of ``key`` in the tree as of ``version``."""
    return heads.prove(root_node(conn, version), key, reader(conn, version))
