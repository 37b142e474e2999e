"""Which contract each chain anchors to over time (``anchor_switches``, append-only), so that an
operator can switch back to an earlier contract: a chain's newest row names its target now.
Existing targets get one row each, in the order they were created (the newest stays in use).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.store import guards

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "anchor_switches",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "target_id",
            Id,
            sa.ForeignKey("anchor_targets.id", name="fk_anchor_switches_target_id_anchor_targets"),
            nullable=False,
        ),
        sa.Column("switched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_anchor_switches_target_id", "anchor_switches", ["target_id"])
    op.execute(
        "INSERT INTO anchor_switches (target_id, switched_at) SELECT id, created_at FROM anchor_targets ORDER BY id"
    )
    for statement in guards.immutable_rows_ddl(op.get_bind().dialect.name, "anchor_switches"):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_immutable_rows_ddl(op.get_bind().dialect.name, "anchor_switches"):
        op.execute(statement)
    op.drop_index("ix_anchor_switches_target_id", table_name="anchor_switches")
    op.drop_table("anchor_switches")
