"""Anchoring: targets (a contract on a chain instance), anchors, their signed transactions, leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.store import guards

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "anchor_targets",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("instance", sa.String(80), nullable=False),
        sa.Column("contract", sa.String(42), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "chain", "chain_id", "instance", "contract", name="uq_anchor_targets_chain_chain_id_instance_contract"
        ),
    )
    op.create_table(
        "anchors",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "target_id",
            Id,
            sa.ForeignKey("anchor_targets.id", name="fk_anchors_target_id_anchor_targets"),
            nullable=False,
        ),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("base_size", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("block_number", sa.BigInteger, nullable=True),
        sa.Column("block_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("block_timestamp", sa.BigInteger, nullable=True),
        sa.Column("anchor_id", sa.BigInteger, nullable=True),
        sa.Column("gas_used", sa.BigInteger, nullable=True),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(1024), nullable=True),
    )
    op.create_index("ix_anchors_target_id", "anchors", ["target_id"])
    op.create_table(
        "anchor_txs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("anchor_id", Id, sa.ForeignKey("anchors.id", name="fk_anchor_txs_anchor_id_anchors"), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("gas_limit", sa.BigInteger, nullable=False),
        sa.Column("max_fee", sa.String(80), nullable=False),
        sa.Column("priority_fee", sa.String(80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("anchor_id", "tx_hash", name="uq_anchor_txs_anchor_id_tx_hash"),
    )
    op.create_index("ix_anchor_txs_tx_hash", "anchor_txs", ["tx_hash"])
    op.create_table(
        "anchor_leases",
        sa.Column("name", sa.String(80), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    for statement in guards.immutable_rows_ddl(op.get_bind().dialect.name, "anchor_txs"):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_immutable_rows_ddl(op.get_bind().dialect.name, "anchor_txs"):
        op.execute(statement)
    op.drop_table("anchor_leases")
    op.drop_table("anchor_txs")
    op.drop_table("anchors")
    op.drop_table("anchor_targets")
