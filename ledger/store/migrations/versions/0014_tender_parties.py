"""Every organisation of each tender in each of its roles (``tender_parties``), what the buyer and
supplier pages read, and an index of each tender's listing time by ocid (an organisation's latest
tenders). Derived, not recorded: it starts empty and fills as tenders are recorded;
migration 0018 fills it for the tenders recorded before (it rebuilds the projections from the log).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tender_parties",
        sa.Column(
            "ocid", sa.String(256), sa.ForeignKey("tenders.ocid", name="fk_tender_parties_ocid_tenders"), nullable=False
        ),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("name", sa.String(1024), nullable=True),
        sa.Column("amounts", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("ocid", "role", "key", name="pk_tender_parties"),
    )
    op.create_index("ix_tender_parties_key_role_ocid", "tender_parties", ["key", "role", "ocid"])
    op.create_index("ix_tender_parties_name", "tender_parties", ["name"])
    op.create_index("ix_tender_index_ocid_listed_at", "tender_index", ["ocid", "listed_at"])


def downgrade() -> None:
    op.drop_index("ix_tender_index_ocid_listed_at", table_name="tender_index")
    op.drop_index("ix_tender_parties_name", table_name="tender_parties")
    op.drop_index("ix_tender_parties_key_role_ocid", table_name="tender_parties")
    op.drop_table("tender_parties")
