"""``db.insert_many`` (the driver's executemany) stores exactly what SQLAlchemy's insert stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import delete, insert, select

from ledger.log import Log
from ledger.store.db import insert_many, write_transaction
from ledger.store.schema import tender_index, tenders

_ROWS = [
    {
        "ocid": f"ocds-abc123-{i}",
        "created_at": datetime(2026, 11, 23, 10, 0, i, 123456, tzinfo=UTC),
        # Not UTC: the same value SQLAlchemy's insert would store, whatever the engine keeps of it.
        "updated_at": datetime(2026, 11, 23, 12, 0, i, tzinfo=timezone(timedelta(hours=2))),
        "event_count": 2**40 + i,
        "head_hash": None if i % 2 else "ab" * 32,
    }
    for i in range(5)
]


def _stored(log: Log) -> list[tuple[object, ...]]:
    with log.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(tenders).order_by(tenders.c.ocid))]


def test_stores_what_sqlalchemy_insert_stores(log: Log) -> None:
    with write_transaction(log.engine) as conn:
        conn.execute(insert(tenders), _ROWS)
    expected = _stored(log)
    with write_transaction(log.engine) as conn:
        conn.execute(delete(tenders))
    # Keys in another order than the table's columns: the parameters follow the statement's order.
    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, [dict(reversed(row.items())) for row in _ROWS])
    assert _stored(log) == expected
    assert len(expected) == 5 and expected[0][0] == "ocds-abc123-0"


def test_replace_on_updates_the_other_columns_of_an_existing_key(log: Log) -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, _ROWS[:2])
        row = {"ocid": "ocds-abc123-0", "status": "active", "suppliers": "", "search_text": "first"}
        insert_many(conn, tender_index, [{**row, "listed_at": now, "updated_at": now, "state": "{}"}])
        insert_many(
            conn,
            tender_index,
            [
                {**row, "search_text": "second", "listed_at": now, "updated_at": now, "state": "{}"},
                {**row, "ocid": "ocds-abc123-1", "listed_at": now, "updated_at": now, "state": "{}"},
            ],
            replace_on=("ocid",),
        )
    with log.engine.connect() as conn:
        texts = conn.execute(select(tender_index.c.ocid, tender_index.c.search_text).order_by(tender_index.c.ocid))
        assert [tuple(r) for r in texts] == [("ocds-abc123-0", "second"), ("ocds-abc123-1", "first")]


def test_nothing_to_insert_is_a_no_op(log: Log) -> None:
    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, [])
    assert _stored(log) == []
