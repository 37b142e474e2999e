"""Red flags computed over the whole ledger (Cardinal's R024 and R058 per tender; R025, R038,
R044, R048 and R055 per buyer, procuring entity and tenderer), stored with the last event id
they read: ``ledger_flags``, a derived table replaced whole at each refresh.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_flags",
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(1024), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("through_event", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role", "subject", "code", name="pk_ledger_flags"),
    )
    op.create_index("ix_ledger_flags_code", "ledger_flags", ["code"])


def downgrade() -> None:
    op.drop_index("ix_ledger_flags_code", table_name="ledger_flags")
    op.drop_table("ledger_flags")
