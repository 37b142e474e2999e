"""The heads commitment's tree nodes in the database: read a version, write one.

Versions are the commitment entries' ``seq`` (0, 1, 2…). The node of a position as of version
``v`` is its row of the largest version ``<= v`` (docs/spec.md §14.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, func, select

from ..core import heads
from .db import insert_many
from .schema import heads_nodes

_CHUNK = 2000  # prefixes per query, under every engine's parameter limit (SQLite: 32,766)


def reader(conn: Connection, version: int) -> heads.Reader:
    """A :data:`ledger.core.heads.Reader` of the tree as of ``version``."""

    def read(depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, heads.Node]:
        out: dict[bytes, heads.Node] = {}
        wanted = sorted(set(prefixes))
        n = heads_nodes.c
        older = heads_nodes.alias("older")
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            # The newest row of each position as of ``version``: one primary-key probe each.
            newest = (
                select(func.max(older.c.version))
                .where(older.c.depth == n.depth, older.c.prefix == n.prefix, older.c.version <= version)
                .scalar_subquery()
            )
            query = select(n.prefix, n.hash, n.leaf_key, n.size, n.head).where(
                n.depth == depth, n.prefix.in_(chunk), n.version == newest
            )
            for prefix, digest, leaf_key, size, head in conn.execute(query):
                out[bytes(prefix)] = (
                    heads.Inner(bytes(digest))
                    if leaf_key is None
                    else heads.Leaf(bytes(leaf_key), int(size), bytes(head))
                )
        return out

    return read


def root_node(conn: Connection, version: int) -> heads.Node | None:
    """The root position's node as of ``version`` (``None``: the empty tree, or ``version < 0``)."""
    if version < 0:
        return None
    return reader(conn, version)(0, [heads.EMPTY]).get(heads.EMPTY)


def write(conn: Connection, version: int, writes: Mapping[heads.Position, heads.Node]) -> None:
    """Store the nodes :func:`ledger.core.heads.update` computed for ``version``."""
    rows = []
    for (depth, prefix), node in writes.items():
        if isinstance(node, heads.Leaf):
            rows.append(
                {"depth": depth, "prefix": prefix, "version": version, "hash": node.hash, "leaf_key": node.key,
                 "size": node.size, "head": node.head}
            )  # fmt: skip
        else:
            rows.append(
                {"depth": depth, "prefix": prefix, "version": version, "hash": node.hash, "leaf_key": None,
                 "size": None, "head": None}
            )  # fmt: skip
    if rows:
        insert_many(conn, heads_nodes, rows)


def prove(conn: Connection, version: int, key: bytes) -> heads.Proof:
    """The proof of ``key`` in the tree as of ``version``."""
    return heads.prove(root_node(conn, version), key, reader(conn, version))
