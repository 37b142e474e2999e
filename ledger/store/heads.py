"""The heads commitment's tree nodes in the database: read a version, write one.

Versions are the commitment entries' ``seq`` (0, 1, 2…). The node of a position as of version
``v`` is its row of the largest version ``<= v`` (docs/spec.md §14.4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, and_, func, select

from ..core import heads
from .db import insert_many
from .schema import heads_nodes

_CHUNK = 2000  # prefixes per query, under every engine's parameter limit (SQLite: 32,766)


def reader(conn: Connection, version: int) -> heads.Reader:
    """A :data:`ledger.core.heads.Reader` of the tree as of ``version``."""

    def read(depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, heads.Node]:
        out: dict[bytes, heads.Node] = {}
        wanted = sorted(set(prefixes))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            newest = (
                select(heads_nodes.c.prefix, func.max(heads_nodes.c.version).label("v"))
                .where(heads_nodes.c.depth == depth, heads_nodes.c.prefix.in_(chunk), heads_nodes.c.version <= version)
                .group_by(heads_nodes.c.prefix)
                .subquery()
            )
            rows = conn.execute(
                select(heads_nodes).join(
                    newest,
                    and_(
                        heads_nodes.c.depth == depth,
                        heads_nodes.c.prefix == newest.c.prefix,
                        heads_nodes.c.version == newest.c.v,
                    ),
                )
            )
            for row in rows:
                out[bytes(row.prefix)] = _node(row)
        return out

    return read


def _node(row: object) -> heads.Node:
    leaf_key = getattr(row, "leaf_key")  # noqa: B009 - a Row's column
    if leaf_key is None:
        return heads.Inner(bytes(getattr(row, "hash")))  # noqa: B009
    return heads.Leaf(bytes(leaf_key), int(getattr(row, "size")), bytes(getattr(row, "head")))  # noqa: B009


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
