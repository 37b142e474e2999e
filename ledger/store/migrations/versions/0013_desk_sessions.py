"""The officers' desk: ``desk_sessions``, the sessions an API key was exchanged for (api.desk).
Only a SHA-256 of each session's secret is stored; a session ends at ``expires_at`` or when it is
revoked (signing out, or its key revoked).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "desk_sessions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column(
            "api_key_id", _ID, sa.ForeignKey("api_keys.id", name="fk_desk_sessions_api_key_id_api_keys"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_desk_sessions"),
        sa.UniqueConstraint("secret_hash", name="uq_desk_sessions_secret_hash"),
    )


def downgrade() -> None:
    op.drop_table("desk_sessions")
