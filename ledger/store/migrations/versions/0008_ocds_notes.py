"""OCDS import keeps what publishers publish: each imported release's schema problems
(``ocds_releases.notes``, a JSON array, null when none) and each imported tender's compiled
release as of its latest-dated release (``ocds_compiled``: the import merges new releases into it
instead of recompiling the tender's whole history every batch).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ocds_releases") as batch:
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "ocds_compiled",
        sa.Column(
            "ocid",
            sa.String(256),
            sa.ForeignKey("tenders.ocid", name="fk_ocds_compiled_ocid_tenders"),
            primary_key=True,
        ),
        sa.Column("compiled", sa.Text(), nullable=False),
        sa.Column("last_date", sa.String(64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ocds_compiled")
    with op.batch_alter_table("ocds_releases") as batch:
        batch.drop_column("notes")
