"""The heads commitment's versioned sparse Merkle tree nodes (docs/spec.md §14.4).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_table("heads_nodes")
