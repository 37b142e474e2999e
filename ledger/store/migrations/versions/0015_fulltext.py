"""Full-text search of tenders with each engine's own machinery: ``tender_index.search_text``
rewritten as the normalised words of ledger.procurement.fulltext (title, description, items,
buyer, suppliers; case, accents and apostrophe forms folded), then indexed: on SQLite an FTS5
table ``tender_search`` over it (external content, kept in step by triggers on ``tender_index``),
on PostgreSQL a GIN index on ``array_to_tsvector(string_to_array(search_text, ' '))``. And an
index of ``tender_suppliers`` by supplier, for the search's supplier filter and facet.

Descriptions and items come from the stored state (tenders projected after this version) or, for
imported tenders, from their compiled release.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from ledger.procurement import fulltext

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TRIGGERS = (
    "CREATE TRIGGER tender_search_ai AFTER INSERT ON tender_index BEGIN "
    "INSERT INTO tender_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER tender_search_ad AFTER DELETE ON tender_index BEGIN "
    "INSERT INTO tender_search(tender_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); END",
    "CREATE TRIGGER tender_search_au AFTER UPDATE OF search_text ON tender_index BEGIN "
    "INSERT INTO tender_search(tender_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); "
    "INSERT INTO tender_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
)


def _texts(state: dict[str, Any], compiled: dict[str, Any] | None) -> list[str | None]:
    tender = (compiled or {}).get("tender")
    tender = tender if isinstance(tender, dict) else {}
    description = state.get("description") or tender.get("description")
    items = state.get("items") or [i.get("description") for i in tender.get("items") or [] if isinstance(i, dict)]
    return [
        state.get("title"),
        description if isinstance(description, str) else None,
        *[i for i in items if isinstance(i, str)],
        state.get("buyer_name"),
        state.get("buyer_id"),
    ]


def upgrade() -> None:
    conn = op.get_bind()
    index = sa.table(
        "tender_index",
        sa.column("ocid", sa.String),
        sa.column("state", sa.Text),
        sa.column("suppliers", sa.Text),
        sa.column("search_text", sa.Text),
    )
    compiled = sa.table("ocds_compiled", sa.column("ocid", sa.String), sa.column("compiled", sa.Text))
    last = ""
    while True:
        rows = conn.execute(
            sa.select(index.c.ocid, index.c.state, index.c.suppliers, compiled.c.compiled)
            .select_from(index.outerjoin(compiled, compiled.c.ocid == index.c.ocid))
            .where(index.c.ocid > last)
            .order_by(index.c.ocid)
            .limit(2000)
        ).all()
        if not rows:
            break
        last = rows[-1].ocid
        updates = [
            {
                "key": row.ocid,
                "words": fulltext.document(
                    *_texts(json.loads(row.state), json.loads(row.compiled) if row.compiled else None),
                    *(row.suppliers or "").split("\n"),
                ),
            }
            for row in rows
        ]
        conn.execute(
            index.update().where(index.c.ocid == sa.bindparam("key")).values(search_text=sa.bindparam("words")),
            updates,
        )
    op.create_index("ix_tender_suppliers_supplier", "tender_suppliers", ["supplier"])
    if conn.dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_tender_index_search ON tender_index "
            "USING gin (array_to_tsvector(string_to_array(search_text, ' ')))"
        )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE tender_search USING fts5(search_text, content='tender_index', "
            f"content_rowid='rowid', tokenize=\"{fulltext.SQLITE_TOKENIZER}\")"
        )
        for trigger in _TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO tender_search(tender_search) VALUES ('rebuild')")


def downgrade() -> None:
    op.drop_index("ix_tender_suppliers_supplier", table_name="tender_suppliers")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_tender_index_search")
    else:
        for name in ("tender_search_au", "tender_search_ad", "tender_search_ai"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE tender_search")
