"""Procurement: the tenders' search projection, the officers' registry, used submission ids.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tender_index",
        sa.Column(
            "ocid", sa.String(256), sa.ForeignKey("tenders.ocid", name="fk_tender_index_ocid_tenders"), primary_key=True
        ),
        sa.Column("title", sa.String(1024), nullable=True),
        sa.Column("buyer_id", sa.String(256), nullable=True),
        sa.Column("buyer_name", sa.String(1024), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=True),
        sa.Column("value_amount", sa.Float, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("tender_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tender_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("awarded_amount", sa.Float, nullable=True),
        sa.Column("suppliers", sa.Text, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("ocid", name="pk_tender_index"),
    )
    op.create_index("ix_tender_index_listed_at_ocid", "tender_index", ["listed_at", "ocid"])
    op.create_index("ix_tender_index_status_listed_at_ocid", "tender_index", ["status", "listed_at", "ocid"])
    op.create_index("ix_tender_index_buyer_id_listed_at_ocid", "tender_index", ["buyer_id", "listed_at", "ocid"])
    op.create_index("ix_tender_index_value_amount_ocid", "tender_index", ["value_amount", "ocid"])
    op.create_table(
        "officers",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("role", sa.String(256), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "registered_event",
            Id,
            sa.ForeignKey("events.id", name="fk_officers_registered_event_events"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "revoked_event", Id, sa.ForeignKey("events.id", name="fk_officers_revoked_event_events"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name="pk_officers"),
    )
    op.create_index("ix_officers_address_registered_at", "officers", ["address", "registered_at"])
    op.create_table(
        "submission_ids",
        sa.Column("submission_id", sa.String(128), nullable=False),
        sa.Column("event_id", Id, sa.ForeignKey("events.id", name="fk_submission_ids_event_id_events"), nullable=False),
        sa.Column("signer", sa.String(42), nullable=False),
        sa.PrimaryKeyConstraint("submission_id", name="pk_submission_ids"),
        sa.UniqueConstraint("event_id", name="uq_submission_ids_event_id"),
    )


def downgrade() -> None:
    op.drop_table("submission_ids")
    op.drop_index("ix_officers_address_registered_at", table_name="officers")
    op.drop_table("officers")
    for name in (
        "ix_tender_index_value_amount_ocid",
        "ix_tender_index_buyer_id_listed_at_ocid",
        "ix_tender_index_status_listed_at_ocid",
        "ix_tender_index_listed_at_ocid",
    ):
        op.drop_index(name, table_name="tender_index")
    op.drop_table("tender_index")
