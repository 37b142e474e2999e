"""Each tender's awarded value per currency (``tender_awarded``, filled from the projected
states), so that totals never drop an award in another currency than the tender's; and red flags computed over the whole ledger (Cardinal's R024 and R058 per tender; R025, R038,
R044, R048 and R055 per buyer, procuring entity and tenderer), stored with the last event id
they read: ``ledger_flags``, a derived table replaced whole at each refresh.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    awarded = op.create_table(
        "tender_awarded",
        sa.Column(
            "ocid", sa.String(256), sa.ForeignKey("tenders.ocid", name="fk_tender_awarded_ocid_tenders"), nullable=False
        ),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ocid", "currency", name="pk_tender_awarded"),
    )
    # the awards not cancelled of each projected state (TenderState JSON: awards -> status, amount, currency)
    conn = op.get_bind()
    index = sa.table("tender_index", sa.column("ocid", sa.String), sa.column("state", sa.Text))
    last = ""
    while True:
        rows = conn.execute(
            sa.select(index.c.ocid, index.c.state).where(index.c.ocid > last).order_by(index.c.ocid).limit(2000)
        ).all()
        out = []
        for ocid, text in rows:
            totals: dict[str, float] = {}
            for award in (json.loads(text).get("awards") or {}).values():
                if award.get("status") != "cancelled" and isinstance(award.get("currency"), str):
                    totals[award["currency"]] = totals.get(award["currency"], 0.0) + float(award.get("amount") or 0)
            out += [{"ocid": ocid, "currency": c[:3], "amount": a} for c, a in sorted(totals.items())]
        if out:
            conn.execute(sa.insert(awarded), out)
        if len(rows) < 2000:
            break
        last = rows[-1][0]
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
    op.drop_table("tender_awarded")
