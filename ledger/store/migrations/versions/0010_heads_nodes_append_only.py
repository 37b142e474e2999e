"""The heads commitment's tree nodes are append-only, like the log's own tables: a version's
nodes, once written, are never updated or deleted (docs/spec.md §14.4; the database refuses it).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

from ledger.store import guards

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


#: heads_nodes' primary key: a version's node of a position.
_KEY = (("depth", "prefix", "version"),)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in guards.immutable_rows_ddl(dialect, "heads_nodes"):
        op.execute(statement)
    if dialect == "sqlite":  # REPLACE deletes the row it collides with without firing DELETE triggers
        op.execute(guards.sqlite_no_replace_ddl("heads_nodes", _KEY))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS heads_nodes_no_replace")
    for statement in guards.drop_immutable_rows_ddl(dialect, "heads_nodes"):
        op.execute(statement)
