"""Ledger-wide figures of the explorer (ledger.procurement.stats), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from demo import tenders as demo
from ledger.log import Log
from ledger.procurement import stats
from ledger.procurement.record import record
from tests.procurement.helpers import CHAIN_ID, history, item


def _fill(log: Log) -> None:
    for event_type, payload, when in history():
        record(log, [item(event_type, payload)], now=when, signatures="optional", chain_id=CHAIN_ID)
    demo.record_demo(log, chain_id=CHAIN_ID)


def test_empty_ledger(log: Log) -> None:
    assert stats.totals(log.engine) == stats.Totals(tenders=0, awarded=[])
    assert stats.spend_by_buyer(log.engine) == []
    assert stats.spend_by_month(log.engine, since=datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert stats.recent_events(log.reader, size=0) == []


def test_totals_and_spend(log: Log) -> None:
    _fill(log)
    totals = stats.totals(log.engine)
    assert totals.tenders == 3
    assert totals.awarded == [stats.Amount("MXN", 1_095_000.0), stats.Amount("EUR", 900.0)]
    buyers = stats.spend_by_buyer(log.engine)
    assert [(b.buyer_id, b.currency, b.amount, b.tenders) for b in buyers] == [
        ("MX-MUN-042", "MXN", 1_095_000.0, 1),
        ("ES-B-01", "EUR", 900.0, 1),
    ]
    assert buyers[0].buyer_name == "Municipio de San Isidro"
    assert stats.spend_by_buyer(log.engine, limit=1) == buyers[:1]
    months = stats.spend_by_month(log.engine, since=datetime(2026, 1, 1, tzinfo=UTC))
    assert [(m.month, m.currency, m.amount) for m in months] == [
        ("2026-03", "EUR", 900.0),
        ("2026-03", "MXN", 1_095_000.0),
    ]
    assert stats.spend_by_month(log.engine, since=datetime(2026, 4, 1, tzinfo=UTC)) == []


def test_recent_events_newest_first(log: Log) -> None:
    _fill(log)
    size = log.integrate_all(now=datetime(2026, 12, 1, tzinfo=UTC)).size
    recent = stats.recent_events(log.reader, size=size, limit=3)
    assert [r.index for r in recent] == [size - 1, size - 2, size - 3]
    last = log.reader.entries(size - 1, size)[0]
    assert (recent[0].ocid, recent[0].seq, recent[0].type) == (last.ocid, last.seq, last.type)
    assert recent[0].recorded_at.tzinfo is not None
    assert len(stats.recent_events(log.reader, size=size, limit=size + 5)) == size


def _mixed_currency_package() -> bytes:
    import json

    release = {
        "ocid": "ocds-abc123-mixed",
        "id": "r1",
        "date": "2026-03-01T00:00:00Z",
        "tag": ["award"],
        "initiationType": "tender",
        "buyer": {"id": "B", "name": "Port Authority"},
        "tender": {"id": "t", "value": {"amount": 1000, "currency": "MXN"}, "datePublished": "2026-02-01T00:00:00Z"},
        "awards": [
            {"id": "a1", "status": "active", "value": {"amount": 400, "currency": "MXN"}},
            {"id": "a2", "status": "active", "value": {"amount": 75, "currency": "USD"}},
            {"id": "a3", "status": "cancelled", "value": {"amount": 9999, "currency": "EUR"}},
        ],
    }
    package = {"uri": "u", "publishedDate": "2026-03-02T00:00:00Z", "version": "1.1", "releases": [release]}
    return json.dumps(package).encode()


def test_an_award_in_another_currency_than_the_tenders_is_counted_in_its_own(log: Log) -> None:
    import io

    from ledger.procurement import importer

    importer.import_files(log, [("mixed.json", io.BytesIO(_mixed_currency_package()))], now=datetime.now(UTC))
    assert stats.totals(log.engine).awarded == [stats.Amount("MXN", 400.0), stats.Amount("USD", 75.0)]
    spend = {(b.buyer_name, b.currency): b.amount for b in stats.spend_by_buyer(log.engine)}
    assert spend == {("Port Authority", "MXN"): 400.0, ("Port Authority", "USD"): 75.0}
    months = stats.spend_by_month(log.engine, since=datetime(2026, 1, 1, tzinfo=UTC))
    assert [(m.month, m.currency, m.amount) for m in months] == [("2026-02", "MXN", 400.0), ("2026-02", "USD", 75.0)]


def test_the_migration_fills_the_awarded_value_per_currency_of_existing_tenders(log: Log) -> None:
    import io

    from alembic import command
    from sqlalchemy import select

    from ledger.procurement import importer
    from ledger.store import db
    from ledger.store.schema import tender_awarded

    importer.import_files(log, [("mixed.json", io.BytesIO(_mixed_currency_package()))], now=datetime.now(UTC))
    with log.engine.begin() as conn:
        config = db.alembic_config(log.engine)
        config.attributes["connection"] = conn
        command.downgrade(config, "0011")
    db.migrate(log.engine)
    with log.engine.connect() as conn:
        rows = conn.execute(select(tender_awarded.c.ocid, tender_awarded.c.currency, tender_awarded.c.amount)).all()
    assert sorted(tuple(r) for r in rows) == [("ocds-abc123-mixed", "MXN", 400.0), ("ocds-abc123-mixed", "USD", 75.0)]
