"""SQLite: a tender's full-text entry is rewritten only when its words change.

The trigger ``tender_search_au`` (migration 0018) deleted and re-inserted a tender's entry of the
FTS5 index ``tender_search`` on every ``UPDATE OF search_text`` of ``tender_index``, and every
write of a tender's new state is such an update (``INSERT ... ON CONFLICT DO UPDATE`` sets every
column), though most events (a clarification, a bid, a payment) leave its words as they were:
~180 µs of CPU a tender for the index's delete and insert (its prefixes of 2, 3 and 4
characters included). It now runs only ``WHEN old.search_text IS NOT new.search_text``; the
index holds the same words for the same tenders, so every search finds what it found.

PostgreSQL is unchanged (its ``search_vector`` is a generated column).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_UPDATE = (
    "CREATE TRIGGER tender_search_au AFTER UPDATE OF search_text ON tender_index{when} BEGIN "
    "INSERT INTO tender_search(tender_search, rowid, search_text) "
    "SELECT 'delete', id, old.search_text FROM tender_search_keys WHERE ocid = old.ocid; "
    "INSERT INTO tender_search(rowid, search_text) "
    "SELECT id, new.search_text FROM tender_search_keys WHERE ocid = new.ocid; END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER tender_search_au")
    op.execute(_UPDATE.format(when=" WHEN old.search_text IS NOT new.search_text"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER tender_search_au")
    op.execute(_UPDATE.format(when=""))
