"""The verifiable log: tenders, events, the integration queue, log entries, tiles, tree heads.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from ledger.store import guards

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "log_config",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(1024), nullable=False),
    )
    op.create_table(
        "tenders",
        sa.Column("ocid", sa.String(256), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_count", sa.BigInteger, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("ocid", sa.String(256), sa.ForeignKey("tenders.ocid"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.UniqueConstraint("ocid", "seq", name="uq_events_ocid_seq"),
    )
    op.create_table(
        "pending",
        sa.Column("event_id", Id, sa.ForeignKey("events.id"), primary_key=True, autoincrement=False),
    )
    op.create_table(
        "log_entries",
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", Id, sa.ForeignKey("events.id"), nullable=False, unique=True),
    )
    op.create_table(
        "tiles",
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
    )
    tree_heads = op.create_table(
        "tree_heads",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("integrated_at", sa.DateTime(timezone=True), nullable=False),
    )
    log_state = op.create_table(
        "log_state",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
    )
    empty_root = hashlib.sha256(b"").digest()
    op.bulk_insert(tree_heads, [{"size": 0, "root": empty_root, "integrated_at": datetime.now(UTC)}])
    op.bulk_insert(log_state, [{"id": 1, "size": 0, "root": empty_root}])
    for statement in guards.install_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_ddl(op.get_bind().dialect.name):
        op.execute(statement)
    for table in ("log_state", "tree_heads", "tiles", "log_entries", "pending", "events", "tenders", "log_config"):
        op.drop_table(table)
