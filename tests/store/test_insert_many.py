"""``db.insert_many`` (the driver's executemany) stores exactly what SQLAlchemy's insert stores."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.exc import DataError

from ledger.log import Log
from ledger.store.db import MANY_ROWS, insert_many, insert_rows, replace_sparing_indexes, write_transaction
from ledger.store.schema import tender_awarded, tender_index, tenders

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


def test_integers_and_floats_in_one_float_column_are_stored_as_sqlalchemy_stores_them(log: Log) -> None:
    # psycopg cannot send [1, 2.5] as one array: the integers travel as floats (PostgreSQL's unnest)
    awarded = [
        {"ocid": row["ocid"], "currency": "EUR", "amount": a}
        for row, a in zip(_ROWS, (1, 2.5, 3, 0, 2**40), strict=True)
    ]
    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, _ROWS)
        conn.execute(insert(tender_awarded), awarded)
    with log.engine.connect() as conn:
        expected = [tuple(r) for r in conn.execute(select(tender_awarded).order_by(tender_awarded.c.ocid))]
    with write_transaction(log.engine) as conn:
        conn.execute(delete(tender_awarded))
        insert_many(conn, tender_awarded, awarded)
    with log.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(select(tender_awarded).order_by(tender_awarded.c.ocid))] == expected
    assert [row[2] for row in expected] == [1.0, 2.5, 3.0, 0.0, 2.0**40]


def test_a_key_repeated_in_one_batch_keeps_the_later_row(log: Log) -> None:
    # one PostgreSQL statement cannot update a row twice: the earlier row is left out, as the
    # statement a row it replaces would have overwritten it
    now = datetime(2026, 11, 23, tzinfo=UTC)
    row = {"ocid": "ocds-abc123-0", "status": "active", "suppliers": "", "listed_at": now, "updated_at": now}
    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, _ROWS[:1])
        insert_many(
            conn,
            tender_index,
            [{**row, "search_text": "first", "state": "{}"}, {**row, "search_text": "second", "state": "{}"}],
            replace_on=("ocid",),
        )
    with log.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(select(tender_index.c.ocid, tender_index.c.search_text))] == [
            ("ocds-abc123-0", "second")
        ]


def test_postgresql_refuses_a_string_too_long_for_its_column_as_an_insert_does(log: Log) -> None:
    if log.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce a string column's length")
    too_long = {**_ROWS[0], "head_hash": "a" * 65}  # head_hash is VARCHAR(64)
    with pytest.raises(DataError, match="too long"), write_transaction(log.engine) as conn:
        insert_many(conn, tenders, [too_long, _ROWS[1]])
    assert _stored(log) == []


def test_ignore_on_leaves_a_row_already_there_as_it_is(log: Log) -> None:
    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, _ROWS[:1])
    first = _stored(log)
    changed = [{**row, "event_count": 7, "head_hash": None} for row in _ROWS[:3]]
    with write_transaction(log.engine) as conn:
        insert_rows(conn, tenders, changed, ignore_on=("ocid",))
    stored = _stored(log)
    assert stored[0] == first[0]  # not replaced
    assert [row[0] for row in stored] == ["ocds-abc123-0", "ocds-abc123-1", "ocds-abc123-2"]
    assert [row[3] for row in stored[1:]] == [7, 7]


def _many_tenders(count: int) -> list[dict[str, object]]:
    at = datetime(2026, 11, 23, tzinfo=UTC)
    return [
        {"ocid": f"ocds-abc123-{i:04}", "created_at": at + timedelta(seconds=i), "updated_at": at,
         "event_count": i, "head_hash": None if i % 3 else f"{i:064x}"}
        for i in range(count)
    ]  # fmt: skip


def _projected(rows: list[dict[str, object]], words: str) -> list[dict[str, object]]:
    at = datetime(2026, 11, 23, tzinfo=UTC)
    return [
        {"ocid": row["ocid"], "status": "active", "suppliers": "", "listed_at": at + timedelta(minutes=i),
         "updated_at": at, "state": "{}", "value_amount": i / 4 if i % 5 else None,
         "search_text": f"{words} w{i} {'even' if i % 2 == 0 else 'odd'}"}
        for i, row in enumerate(rows)
    ]  # fmt: skip


def _index(log: Log) -> list[tuple[object, ...]]:
    with log.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(tender_index).order_by(tender_index.c.ocid))]


def test_a_batch_of_several_statements_stores_every_row_in_order(log: Log) -> None:
    # 1,000 search rows: on SQLite (tender_index is marked MANY_ROWS), statements of 256, 256,
    # 256, 128, 64, 32 and 8 rows
    assert tender_index.info.get(MANY_ROWS)
    rows = _many_tenders(1000)
    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, rows)
        conn.execute(insert(tender_index), _projected(rows, "bridge"))
    expected = _index(log)
    with write_transaction(log.engine) as conn:
        conn.execute(delete(tender_index))
        insert_many(conn, tender_index, _projected(rows, "bridge"), replace_on=("ocid",))
    assert _index(log) == expected
    assert [row[0] for row in expected] == [row["ocid"] for row in rows]
    assert _stored(log)[999][0] == "ocds-abc123-0999"


def test_search_finds_every_row_of_a_batch_and_its_replacements(log: Log) -> None:
    # the search index (SQLite: FTS5 kept by triggers) holds each row written by a statement of
    # many rows, inserted or replaced, as it holds a row written alone
    from ledger.procurement.query import Filters, matching_ocids

    rows = _many_tenders(300)

    def found(q: str) -> list[str]:
        with log.engine.connect() as conn:
            return sorted(conn.execute(matching_ocids(conn, Filters(q=q))).scalars())

    with write_transaction(log.engine) as conn:
        insert_many(conn, tenders, rows)
        insert_many(conn, tender_index, _projected(rows, "bridge"), replace_on=("ocid",))
    assert found("bridge") == [row["ocid"] for row in rows]
    assert found("w299") == ["ocds-abc123-0299"]
    with write_transaction(log.engine) as conn:
        insert_many(conn, tender_index, _projected(rows, "tunnel")[::2], replace_on=("ocid",))
    assert found("tunnel") == [row["ocid"] for row in rows[::2]]
    assert found("bridge") == [row["ocid"] for row in rows[1::2]]
    assert found("bridge even") == []


def _rewritten(rows: list[dict[str, object]]) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The projection rows of ``rows`` written again: every one with another title and text, every
    third with another listing time and status, every fifth also with a value where it had none;
    then 50 new tenders. Returns (all rows, the rewritten ones)."""
    again = _projected(rows, "tunnel")
    for i, row in enumerate(again):
        row["title"] = f"t{i}"
        if i % 3 == 0:
            row["listed_at"] = datetime(2027, 1, 1, tzinfo=UTC) - timedelta(minutes=i)
            row["status"] = "complete"
        if i % 5 == 0:
            row["value_amount"] = 1.5
    fresh = _projected(_many_tenders(len(rows) + 50)[len(rows) :], "harbour")
    return again + [{**row, "title": "new"} for row in fresh], again


def _index_with_rowids(log: Log) -> list[tuple[object, ...]]:
    with log.engine.connect() as conn:
        if log.engine.dialect.name != "sqlite":
            return _index(log)
        return [tuple(row) for row in conn.execute(text("SELECT rowid, * FROM tender_index ORDER BY rowid"))]


def test_replace_sparing_indexes_stores_what_one_replace_stores(log: Log) -> None:
    # rows new, rewritten with their indexed columns as they were (NULL value included), and with
    # them changed: the same rows (SQLite: the same rowids) and the same search as one replace
    from ledger.procurement.query import Filters, matching_ocids

    rows = _many_tenders(300)
    written, stored = _rewritten(rows)

    def state() -> tuple[list[tuple[object, ...]], list[list[str]]]:
        with log.engine.connect() as conn:
            found = [
                sorted(conn.execute(matching_ocids(conn, Filters(q=q))).scalars())
                for q in ("bridge", "tunnel", "harbour", "odd")
            ]
        return _index_with_rowids(log), found

    outcomes = []
    for sparing in (False, True):
        with write_transaction(log.engine) as conn:
            conn.execute(delete(tender_index))
            conn.execute(delete(tenders))
            insert_many(conn, tenders, _many_tenders(350))
            insert_many(conn, tender_index, _projected(rows, "bridge"), replace_on=("ocid",))
        with write_transaction(log.engine) as conn:
            if sparing:
                replace_sparing_indexes(conn, tender_index, written, replace_on=("ocid",), stored=stored)
            else:
                insert_many(conn, tender_index, written, replace_on=("ocid",))
        outcomes.append(state())
    assert outcomes[1] == outcomes[0]
    index, found = outcomes[0]
    assert len(index) == 350 and found[0] == [] and len(found[1]) == 300 and len(found[2]) == 50


def test_replace_sparing_indexes_writes_no_index_page_whose_columns_keep_their_values(
    tmp_path: pathlib.Path,
) -> None:
    # SQLite: rows rewritten with their indexed columns unchanged dirty only their own pages: the
    # commit writes fewer WAL frames than one replace of every column, which rewrites an entry in
    # each of tender_index's indexes (their leaves, all over them, since the keys come unordered)
    frames = []
    for sparing in (False, True):
        log = Log.open(f"sqlite:///{tmp_path / f'{sparing}.sqlite3'}", origin="test/sparing")
        try:
            rows = _many_tenders(2000)
            projected = _projected(rows, "bridge")
            with write_transaction(log.engine) as conn:
                insert_many(conn, tenders, rows)
                insert_many(conn, tender_index, projected, replace_on=("ocid",))
            again = [{**row, "updated_at": datetime(2026, 12, 1, tzinfo=UTC), "state": '{"a": 1}'} for row in projected]
            with log.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            with write_transaction(log.engine) as conn:
                if sparing:
                    replace_sparing_indexes(conn, tender_index, again, replace_on=("ocid",), stored=again)
                else:
                    insert_many(conn, tender_index, again, replace_on=("ocid",))
            with log.engine.connect() as conn:
                frames.append(conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()[1])
        finally:
            log.close()
    # measured: 233 frames against 70 (the five indexes' leaves of 2,000 rows are the difference)
    assert frames[1] < frames[0] * 0.7, frames
