"""Count + facets read the sampled tenders' facet columns from an index, not their rows.

The facets of a search (ledger.procurement.query.facets) count the status, method, currency,
listing year and buyer of the newest 2,000 matching tenders. Their rows are wide (the full-text
words and the rules' state as JSON): reading 2,000 of them at random was most of a count's time at
1,000,000 tenders. Two indexes now hold those columns after their keys, so that the sample is
read from the index alone:

- ``ix_tender_index_ocid_facets`` (ocid, listed_at, status, method, currency, buyer_id), replacing
  ``ix_tender_index_ocid_listed_at`` (its first two columns, kept for its readers): the matches of
  words, found by ocid;
- ``ix_tender_index_buyer_id_facets`` (buyer_id, listed_at, ocid, status, method, currency),
  replacing ``ix_tender_index_buyer_id_listed_at_ocid`` (its first three): a buyer's tenders.

Nothing recorded changes; the indexes are built from the rows already there.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

FACETS = ["status", "method", "currency"]


def upgrade() -> None:
    op.create_index("ix_tender_index_ocid_facets", "tender_index", ["ocid", "listed_at", *FACETS, "buyer_id"])
    op.drop_index("ix_tender_index_ocid_listed_at", table_name="tender_index")
    op.create_index("ix_tender_index_buyer_id_facets", "tender_index", ["buyer_id", "listed_at", "ocid", *FACETS])
    op.drop_index("ix_tender_index_buyer_id_listed_at_ocid", table_name="tender_index")


def downgrade() -> None:
    op.create_index("ix_tender_index_buyer_id_listed_at_ocid", "tender_index", ["buyer_id", "listed_at", "ocid"])
    op.drop_index("ix_tender_index_buyer_id_facets", table_name="tender_index")
    op.create_index("ix_tender_index_ocid_listed_at", "tender_index", ["ocid", "listed_at"])
    op.drop_index("ix_tender_index_ocid_facets", table_name="tender_index")
