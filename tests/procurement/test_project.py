"""Rebuilding the projections from the log gives what recording wrote, and names refused events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, text

from demo import tenders as demo
from ledger.log import Log
from ledger.procurement import project, query
from ledger.procurement.officers import REGISTRY_OCID
from ledger.procurement.record import record
from ledger.store import db
from ledger.store.schema import (
    officers,
    organisation_rivals,
    submission_ids,
    supplier_wins,
    tender_awarded,
    tender_flags,
    tender_index,
    tender_parties,
    tender_suppliers,
)
from tests.recording import append_many
from tests.store.helpers import snapshot

from .helpers import CHAIN_ID, OCID, OFFICER, at, history, item, published, signed


def _snapshot(log: Log) -> dict[str, Any]:
    with log.engine.connect() as conn:
        return {
            "tender_index": sorted(tuple(r) for r in conn.execute(select(tender_index))),
            "officers": sorted(tuple(r)[1:] for r in conn.execute(select(officers))),  # ids are not kept
            "submission_ids": sorted(tuple(r) for r in conn.execute(select(submission_ids))),
            # written event by event only when an event may move them (record._moved_flag_rows)
            **{
                table.name: sorted(tuple(r) for r in conn.execute(select(table)))
                for table in (
                    tender_awarded,
                    tender_flags,
                    tender_suppliers,
                    tender_parties,
                    supplier_wins,
                    organisation_rivals,
                )
            },
        }


def test_rebuild_gives_what_recording_wrote(log: Log) -> None:
    record(
        log,
        [item("officer.registered", {"address": OFFICER, "name": "Ana"}, REGISTRY_OCID)],
        now=at(-20),
        signatures="optional",
        chain_id=CHAIN_ID,
    )
    for n, (event_type, payload, when) in enumerate(history()):
        record(
            log,
            [signed(item(event_type, payload), submission_id=f"s{n}")],
            now=when,
            signatures="required",
            chain_id=CHAIN_ID,
        )
    demo.record_demo(log, chain_id=CHAIN_ID)
    before = _snapshot(log)
    assert len(before["tender_index"]) == 3 and len(before["submission_ids"]) == 11
    assert before["tender_awarded"] and before["tender_suppliers"] and before["tender_parties"]
    assert project.rebuild(log.engine, batch=4) == []
    assert _snapshot(log) == before


def test_events_appended_without_the_rules_are_projected_up_to_the_first_refusal(log: Log) -> None:
    # Appended directly (as before migration 0004): published, then a commitment far too late.
    events = history()
    append_many(log, [item("tender.published", published())], now=at(-1))
    append_many(log, [item(events[3][0], events[3][1])], now=at(60))
    append_many(log, [item("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "q"}]}})], now=at(61))
    refusals = project.rebuild(log.engine)
    assert [(r.ocid, r.seq, r.type, r.field) for r in refusals] == [(OCID, 1, "bid.committed", "type")]
    assert refusals[0].reason.startswith("the tender period closed at 2026-03-30T23:59:59Z")
    summary = query.tender_summary(log.engine, OCID)
    assert (summary.status, summary.events, summary.updated_at) == ("active", 3, at(-1))
    assert query.tender_state(log.engine, OCID).events == 1


def test_migration_0018_fills_in_what_tenders_recorded_before_it_lack(log: Log) -> None:
    """A database before 0018 whose tenders were recorded before 0014/0015 (no ``tender_parties``,
    only the title in the searched words): upgrading rebuilds them from the log, records untouched."""
    for event_type, payload, when in history():
        if event_type == "tender.published":
            payload = published(description="Farolas de bajo consumo", items=[{"id": "1", "description": "Bombillas"}])
        record(log, [item(event_type, payload)], now=when, signatures="optional", chain_id=CHAIN_ID)
    demo.record_demo(log, chain_id=CHAIN_ID)
    wanted = {
        name: _rows(log, name) for name in ("tender_index", "tender_parties", "organisation_rivals", "tender_flags")
    }
    assert wanted["tender_parties"]
    db.downgrade(log.engine, "0017")  # the revision before 0018 (0016 and 0017 do not touch these tables)
    with log.engine.begin() as conn:  # as tenders recorded before 0014 and 0015 left them
        conn.execute(delete(tender_parties))
        conn.execute(text("UPDATE tender_index SET search_text = lower(coalesce(title, ''))"))
        assert conn.execute(text("SELECT count(*) FROM tender_index WHERE search_text LIKE '%farolas%'")).scalar() == 0
    recorded = snapshot(log.engine, ("events", "log_entries", "tenders"))
    db.migrate(log.engine)
    assert {name: _rows(log, name) for name in wanted} == wanted
    assert [t.ocid for t in query.search_tenders(log.engine, q="farolas bombillas").items] == [OCID]
    assert snapshot(log.engine, ("events", "log_entries", "tenders")) == recorded


def _rows(log: Log, name: str) -> list[tuple[Any, ...]]:
    with log.engine.connect() as conn:
        return sorted((tuple(r) for r in conn.execute(text(f"SELECT * FROM {name}"))), key=repr)


def test_a_batch_of_many_tenders_stores_what_a_rebuild_gives(log: Log) -> None:
    """A bulk request's tenders are stored together (record._write_store): the projections, the
    awarded values, flags, pairs, parties and win counts are those each tender's events give."""
    ocids = [f"ocds-tptest-b{n:03d}" for n in range(3)]
    events = history()
    for moment, part in ((at(6), events[:5]), (at(40), events[5:])):
        items = [item(event_type, payload, ocid) for event_type, payload, _ in part for ocid in ocids]
        record(log, items, now=moment, signatures="optional", chain_id=CHAIN_ID)
    before = _snapshot(log)
    assert len(before["tender_index"]) == 3
    assert len(before["tender_awarded"]) == 3 and len(before["tender_suppliers"]) == 3
    assert len(before["tender_parties"]) >= 9 and before["supplier_wins"]
    assert project.rebuild(log.engine, batch=4) == []
    assert _snapshot(log) == before


def test_a_tender_whose_rows_move_after_its_award_stores_what_a_rebuild_gives(log: Log) -> None:
    """A contract amended soon after its award adds a flag to a tender that already has its
    buyer-supplier pair and parties stored: its rows are rewritten from those read with the flags
    (record._write_store hands them to redflags.store_rows), and the win counts and rivalries they
    move are those a rebuild gives."""
    events = [step for step in history() if step[0] not in ("contract.payment", "contract.completed")]
    amended = {"contract": {"id": "c1", "value": {"amount": 990.0, "currency": "EUR"}, "amendments": [{"id": "m1"}]}}
    for event_type, payload, when in [*events, ("contract.amended", amended, at(45))]:
        record(log, [item(event_type, payload)], now=when, signatures="optional", chain_id=CHAIN_ID)
    before = _snapshot(log)
    assert before["tender_suppliers"] and before["supplier_wins"]
    assert "contract_amended_soon_after_award" in {row[1] for row in before["tender_flags"]}
    assert project.rebuild(log.engine, batch=4) == []
    assert _snapshot(log) == before
