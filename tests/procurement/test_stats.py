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
