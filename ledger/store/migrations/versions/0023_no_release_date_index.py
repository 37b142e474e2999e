"""Drop ``ix_ocds_releases_release_date``: no query reads it, and an import pays for it.

The only reader of ``ocds_releases.release_date`` is the OCDS export's date filter
(``ledger.procurement.export.iter_releases``), which walks events by id and filters on
``coalesce(release_date, recorded_at)``: an expression over two tables that no index of one
column serves (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL: neither plan names it). An
import writes releases in the order tenders come, not their dates', so each release put its
entry in a random leaf of the index: at 490,000 releases ~4 KB written a release of ~24
(bench/RESULTS-import.md, t33i), and 38 MB of a 1M-release database.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_ocds_releases_release_date", table_name="ocds_releases")


def downgrade() -> None:
    op.create_index("ix_ocds_releases_release_date", "ocds_releases", ["release_date"])
