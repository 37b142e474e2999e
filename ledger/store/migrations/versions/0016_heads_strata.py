"""The heads commitment's tree stored in strata of 8 levels (table ``heads_strata``,
ledger.core.strata) instead of one row per node (``heads_nodes``, migrations 0007 and 0010): about
eight times fewer rows read and written per commitment (docs/spec.md §14.4; the roots and proofs
are unchanged).

Upgrade replays every stored version in order: its leaf rows (the changed heads, and the leaves
pushed down beside them) applied to the previous version's strata give that version's strata,
whose root MUST equal the root row ``heads_nodes`` kept for it, or the migration stops naming the version (a root
is the hash of every leaf and of the tree's shape, so an equal root is the same tree). Then
``heads_nodes`` goes. Downgrade writes every stratum's nodes back as ``heads_nodes`` rows.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.core import heads, strata
from ledger.store import guards
from ledger.store import heads as heads_store

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_NODES_KEY = (("depth", "prefix", "version"),)
_STRATA_KEY = (("prefix", "version"),)


def _create_nodes() -> None:
    op.create_table(
        "heads_nodes",
        sa.Column("depth", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("prefix", sa.LargeBinary(32), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("leaf_key", sa.LargeBinary(32), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("head", sa.LargeBinary(32), nullable=True),
        sa.PrimaryKeyConstraint("depth", "prefix", "version", name="pk_heads_nodes"),
    )


def _guard(dialect: str, table: str, key: tuple[tuple[str, ...], ...]) -> None:
    for statement in guards.immutable_rows_ddl(dialect, table):
        op.execute(statement)
    if dialect == "sqlite":  # REPLACE deletes the row it collides with without firing DELETE triggers
        op.execute(guards.sqlite_no_replace_ddl(table, key))


def _unguard(dialect: str, table: str) -> None:
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
    for statement in guards.drop_immutable_rows_ddl(dialect, table):
        op.execute(statement)


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    op.create_table(
        "heads_strata",
        sa.Column("prefix", sa.LargeBinary(32), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("inners", sa.LargeBinary, nullable=False),
        sa.Column("leaves", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("prefix", "version", name="pk_heads_strata"),
    )
    op.create_index("ix_heads_nodes_version_0016", "heads_nodes", ["version"])
    versions = conn.execute(sa.text("SELECT DISTINCT version FROM heads_nodes ORDER BY version")).scalars().all()
    for version in versions:
        leaves = conn.execute(
            sa.text(
                "SELECT leaf_key, size, head FROM heads_nodes WHERE version = :v AND leaf_key IS NOT NULL"
                " ORDER BY leaf_key"
            ),
            {"v": version},
        ).all()
        kept = conn.execute(
            sa.text("SELECT hash FROM heads_nodes WHERE depth = 0 AND version = :v"), {"v": version}
        ).scalar_one_or_none()
        changes = [heads.Leaf(bytes(k), int(n), bytes(h)) for k, n, h in leaves]
        result = heads_store.update(conn, int(version), changes)
        if kept is None or result.root != bytes(kept):
            said = "no root row" if kept is None else f"root {bytes(kept).hex()}"
            raise RuntimeError(
                f"heads_nodes version {version}: its leaves give the root {result.root.hex()}, the table kept {said};"
                " the stored tree was changed by hand (run tenderproof audit on a copy): not migrated"
            )
    op.drop_index("ix_heads_nodes_version_0016", "heads_nodes")
    _unguard(dialect, "heads_nodes")
    op.drop_table("heads_nodes")
    _guard(dialect, "heads_strata", _STRATA_KEY)


def downgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    _create_nodes()
    rows = conn.execute(sa.text("SELECT prefix, version, inners, leaves FROM heads_strata")).all()
    nodes = sa.table(
        "heads_nodes",
        *(sa.column(c) for c in ("depth", "prefix", "version", "hash", "leaf_key", "size", "head")),
    )
    for start in range(0, len(rows), 500):
        out = []
        for prefix, version, inners, leaves in rows[start : start + 500]:
            stratum = bytes(prefix)
            base = len(stratum)
            for h, node in strata.nodes(heads_store.decode(stratum, bytes(inners), bytes(leaves))).items():
                if h == 1 and base:  # a lower stratum's root is its parent's bottom edge
                    continue
                rel = h.bit_length() - 1
                position = (stratum + bytes([(h - (1 << rel)) << (8 - rel)]) if rel else stratum).ljust(32, b"\0")
                leaf = type(node) is heads.Leaf
                out.append(
                    {
                        "depth": base * 8 + rel,
                        "prefix": position,
                        "version": version,
                        "hash": node.hash,
                        "leaf_key": node.key if leaf else None,  # type: ignore[union-attr]
                        "size": node.size if leaf else None,  # type: ignore[union-attr]
                        "head": node.head if leaf else None,  # type: ignore[union-attr]
                    }
                )
        if out:
            conn.execute(nodes.insert(), out)
    _guard(dialect, "heads_nodes", _NODES_KEY)
    _unguard(dialect, "heads_strata")
    op.drop_table("heads_strata")
