"""OCDS import (one row per imported release) and red flags (per tender, buyer-supplier pairs and wins).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ocid(table: str, *, primary_key: bool) -> sa.Column[str]:
    return sa.Column(
        "ocid",
        sa.String(256),
        sa.ForeignKey("tenders.ocid", name=f"fk_{table}_ocid_tenders"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "ocds_releases",
        sa.Column(
            "event_id",
            Id,
            sa.ForeignKey("events.id", name="fk_ocds_releases_event_id_events"),
            primary_key=True,
            autoincrement=False,
        ),
        _ocid("ocds_releases", primary_key=False),
        sa.Column("release_id", sa.String(256), nullable=False),
        sa.Column("release_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_ocds_releases"),
        sa.UniqueConstraint("ocid", "release_id", name="uq_ocds_releases_ocid_release_id"),
    )
    op.create_index("ix_ocds_releases_release_date", "ocds_releases", ["release_date"])
    op.create_table(
        "tender_flags",
        _ocid("tender_flags", primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("ocid", "code", name="pk_tender_flags"),
    )
    op.create_index("ix_tender_flags_code", "tender_flags", ["code"])
    op.create_table(
        "tender_suppliers",
        _ocid("tender_suppliers", primary_key=True),
        sa.Column("supplier", sa.String(1024), primary_key=True),
        sa.Column("buyer_id", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("ocid", "supplier", name="pk_tender_suppliers"),
    )
    op.create_index("ix_tender_suppliers_buyer_id_supplier", "tender_suppliers", ["buyer_id", "supplier"])
    op.create_table(
        "supplier_wins",
        sa.Column("buyer_id", sa.String(256), primary_key=True),
        sa.Column("supplier", sa.String(1024), primary_key=True),
        sa.Column("wins", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("buyer_id", "supplier", name="pk_supplier_wins"),
    )
    op.create_index("ix_supplier_wins_wins", "supplier_wins", ["wins"])


def downgrade() -> None:
    op.drop_index("ix_supplier_wins_wins", table_name="supplier_wins")
    op.drop_table("supplier_wins")
    op.drop_index("ix_tender_suppliers_buyer_id_supplier", table_name="tender_suppliers")
    op.drop_table("tender_suppliers")
    op.drop_index("ix_tender_flags_code", table_name="tender_flags")
    op.drop_table("tender_flags")
    op.drop_index("ix_ocds_releases_release_date", table_name="ocds_releases")
    op.drop_table("ocds_releases")
