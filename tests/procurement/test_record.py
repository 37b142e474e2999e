"""Recording through the rules on SQLite and PostgreSQL: all or nothing, signatures, concurrency."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select, update

from ledger import sequencer
from ledger.core.errors import ConflictError, InvalidArgumentError, LedgerError, SignatureError
from ledger.log import Log
from ledger.procurement import officers, query
from ledger.procurement import record as record_module
from ledger.procurement.officers import REGISTRY_OCID
from ledger.procurement.record import record
from ledger.store.db import write_transaction
from ledger.store.schema import events, log_config, submission_ids, tender_index, tenders
from ledger.store.schema import officers as officers_table
from ledger.submission import Recorded, Submission

from .helpers import (
    BUYER,
    CHAIN_ID,
    OCID,
    OFFICER,
    OTHER,
    OTHER_KEY,
    at,
    bid,
    commitment,
    history,
    item,
    published,
    signed,
)


def _record(log: Log, items: list[Submission], when: datetime, **kwargs: Any) -> list[Recorded]:
    kwargs.setdefault("signatures", "optional")
    return record(log, items, now=when, chain_id=CHAIN_ID, **kwargs)


def _counts(log: Log) -> dict[str, int]:
    with log.engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (events, tenders, tender_index, officers_table, submission_ids)
        }


def _register(log: Log, address: str, when: datetime) -> None:
    _record(log, [item("officer.registered", {"address": address, "name": "Ana Ruiz"}, REGISTRY_OCID)], when)


def test_valid_history_is_recorded_and_projected(log: Log) -> None:
    for event_type, payload, when in history():
        _record(log, [item(event_type, payload)], when)
    summary = query.tender_summary(log.engine, OCID)
    assert summary.to_json() == {
        "ocid": OCID,
        "title": "Street lighting renewal",
        "buyer_id": "ES-B-01",
        "buyer_name": "Ayuntamiento de Villanueva",
        "status": "complete",
        "procurement_method": "open",
        "value_amount": 50000.0,
        "currency": "EUR",
        "tender_start": "2026-03-02T00:00:00.000000Z",
        "tender_end": "2026-03-30T23:59:59.000000Z",
        "awarded_amount": 900.0,
        "suppliers": ["Supplier 1 SL"],
        "published_at": "2026-03-01T00:00:00.000000Z",
        "updated_at": "2026-05-31T00:00:00.000000Z",
        "events": 11,
    }
    assert query.tender_state(log.engine, OCID).contracts["c1"].paid == 450.0
    stored = log.reader.tender_events(OCID)
    assert [e.type for e in stored] == [h[0] for h in history()]
    assert json.loads(stored[1].envelope)["recorded_at"] == "2026-03-01T00:00:00.000000Z"


def test_a_rule_violation_records_nothing_and_names_the_item(log: Log) -> None:
    b, salt = bid(1)
    late = item("bid.committed", {"bidder": b["tenderers"][0], "commitment": commitment(b, salt)})
    with pytest.raises(InvalidArgumentError) as caught:
        _record(log, [item("tender.published", published()), late], at(40))
    assert caught.value.field == "items[0].payload.tender.tenderPeriod.endDate"
    assert _counts(log) == dict.fromkeys(("events", "tenders", "tender_index", "officers", "submission_ids"), 0)
    _record(log, [item("tender.published", published())], at(-1))
    before = _counts(log)
    clarify = item("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "q1"}]}})
    with pytest.raises(ConflictError) as conflict:
        _record(log, [clarify, late], at(40))
    assert conflict.value.field == "items[1].type"
    assert conflict.value.reason.startswith("the tender period closed at 2026-03-30T23:59:59Z: commitments are refused")
    assert _counts(log) == before
    assert query.tender_summary(log.engine, OCID).events == 1


def test_a_bad_payload_is_refused_before_anything_is_written(log: Log) -> None:
    bad = published()
    bad["tender"]["value"]["amount"] = "abc"
    with pytest.raises(InvalidArgumentError) as caught:
        _record(log, [item("tender.published", bad)], at(-1))
    assert (caught.value.field, caught.value.reason) == (
        "payload.tender.value.amount",
        "must be a number >= 0, got 'abc'",
    )
    assert _counts(log)["events"] == 0


@pytest.mark.parametrize(
    ("ocid", "event_type", "payload", "field"),
    [
        (REGISTRY_OCID, "tender.published", published(), "type"),
        (OCID, "officer.registered", {"address": OFFICER, "name": "A"}, "ocid"),
    ],
)
def test_registry_and_tenders_do_not_mix(log: Log, ocid: str, event_type: str, payload: Any, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        _record(log, [item(event_type, payload, ocid)], at(0))
    assert caught.value.field == field
    assert _counts(log)["events"] == 0


def test_naive_now_is_refused(log: Log) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        _record(log, [item("tender.published", published())], datetime(2026, 3, 1))
    assert caught.value.field == "now"
    assert _counts(log)["events"] == 0


def test_officer_events_come_in_batches_of_their_own(log: Log) -> None:
    mixed = [
        item("officer.registered", {"address": OFFICER, "name": "Ana"}, REGISTRY_OCID),
        item("tender.published", published()),
    ]
    with pytest.raises(InvalidArgumentError) as caught:
        _record(log, mixed, at(0))
    assert caught.value.field == "items"
    assert _counts(log)["events"] == 0


def test_signed_by_a_registered_officer_is_recorded_with_its_submission_id(log: Log) -> None:
    _register(log, OFFICER, at(-5))
    assert officers.is_registered(log.engine, OFFICER, at=at(-4))
    assert not officers.is_registered(log.engine, OFFICER, at=at(-6))
    [done] = _record(log, [signed(item("tender.published", published()), submission_id="s-1")], at(-1))
    assert done.envelope.submission is not None and done.envelope.submission["officer"] == OFFICER
    with log.engine.connect() as conn:
        row = conn.execute(select(submission_ids)).one()
    assert (row.submission_id, row.event_id, row.signer) == ("s-1", done.event_id, OFFICER)


def _refused(log: Log, make: Callable[[], list[Submission]], when: datetime, kind: type[LedgerError], **kw: Any) -> Any:
    before = _counts(log)
    with pytest.raises(kind) as caught:
        _record(log, make(), when, **kw)
    assert _counts(log) == before
    return caught.value


def test_signature_failures_record_nothing(log: Log) -> None:
    _register(log, OFFICER, at(-5))
    publish = item("tender.published", published())
    # Not a registered officer.
    error = _refused(log, lambda: [signed(publish, key=OTHER_KEY)], at(-1), SignatureError)
    assert (error.field, error.reason) == (
        "submission.officer",
        f"{OTHER} is not a registered officer at 2026-03-01T00:00:00.000000Z",
    )
    # Signed for another payload.
    good = signed(publish)
    tampered = Submission(
        ocid=OCID,
        type=good.type,
        payload=published(title="Other"),
        submission=good.submission,
        signature=good.signature,
    )
    error = _refused(log, lambda: [tampered], at(-1), SignatureError)
    assert (error.field, error.reason) == ("submission.payloadSha256", "is not the envelope's")
    # Signed for another chain.
    error = _refused(log, lambda: [signed(publish, chain_id=1)], at(-1), SignatureError)
    assert error.field == "submission.domain.chainId"
    # A signature by someone else than the officer it names.
    other = signed(publish, key=OTHER_KEY)
    forged = Submission(
        ocid=OCID,
        type=publish.type,
        payload=publish.payload,
        submission={**other.submission, "officer": OFFICER} if other.submission else None,
        signature=other.signature,
    )
    error = _refused(log, lambda: [forged], at(-1), SignatureError)
    # (the struct changed with its officer, so the signature recovers neither key)
    assert (error.field, error.reason, error.expected) == (
        "signature",
        "was not made by the officer the submission names",
        OFFICER,
    )
    assert error.got not in (OFFICER, OTHER)


def test_a_replayed_submission_id_is_refused(log: Log) -> None:
    _register(log, OFFICER, at(-5))
    _record(log, [signed(item("tender.published", published()), submission_id="same")], at(-1))
    again = signed(item("tender.published", published(), "ocds-tptest-0002"), submission_id="same")
    error = _refused(log, lambda: [again], at(-1), ConflictError)
    assert error.field == "submission.submissionId"
    assert error.reason.startswith("'same' was already recorded (event ")
    # Twice in one batch: the second is named.
    batch = [
        signed(item("tender.published", published(), "ocds-tptest-0003"), submission_id="dup"),
        signed(item("tender.published", published(), "ocds-tptest-0004"), submission_id="dup"),
    ]
    error = _refused(log, lambda: batch, at(-1), ConflictError)
    assert error.field == "items[1].submission.submissionId"


def test_a_revoked_officer_can_no_longer_sign(log: Log) -> None:
    _register(log, OFFICER, at(-5))
    _record(log, [item("officer.revoked", {"address": OFFICER, "reason": "Left"}, REGISTRY_OCID)], at(-3))
    assert officers.is_registered(log.engine, OFFICER, at=at(-4))
    assert not officers.is_registered(log.engine, OFFICER, at=at(-2))
    error = _refused(log, lambda: [signed(item("tender.published", published()))], at(-1), SignatureError)
    assert error.field == "submission.officer"
    error = _refused(
        log,
        lambda: [item("officer.revoked", {"address": OFFICER}, REGISTRY_OCID)],
        at(-1),
        ConflictError,
    )
    assert (error.field, error.reason) == ("payload.address", f"officer {OFFICER} is not registered")
    _register(log, OFFICER, at(-1))  # registered again: a new period
    assert officers.registered(log.engine, at=at(0)) == [
        {"address": OFFICER, "name": "Ana Ruiz", "role": None, "registered_at": at(-1)}
    ]


def test_signatures_required_refuses_unsigned_tender_events_only(log: Log) -> None:
    error = _refused(
        log, lambda: [item("tender.published", published())], at(-1), InvalidArgumentError, signatures="required"
    )
    assert (error.field, error.reason) == (
        "signature",
        "is required: this log records only submissions signed by an officer",
    )
    _register(log, OFFICER, at(-5))  # registry events come from administrators, unsigned
    _record(log, [signed(item("tender.published", published()))], at(-1), signatures="required")
    assert query.tender_summary(log.engine, OCID).status == "active"


def test_on_recorded_writes_in_the_same_transaction(log: Log) -> None:
    seen: list[list[int]] = []

    def keep(conn: Connection, recorded: list[Recorded]) -> None:
        seen.append([r.event_id for r in recorded])
        conn.execute(insert(log_config).values(key="idem:k1", value=str(recorded[0].event_id)))

    [done] = _record(log, [item("tender.published", published())], at(-1), on_recorded=keep)
    assert seen == [[done.event_id]]
    with log.engine.connect() as conn:
        assert conn.execute(select(log_config.c.value).where(log_config.c.key == "idem:k1")).scalar_one() == str(
            done.event_id
        )

    def fail(conn: Connection, recorded: list[Recorded]) -> None:
        conn.execute(insert(log_config).values(key="idem:k2", value="x"))
        raise ConflictError("idempotency_key", "used for another request")

    b, salt = bid(1)
    commit = item("bid.committed", {"bidder": b["tenderers"][0], "commitment": commitment(b, salt)})
    error = _refused(log, lambda: [commit], at(3), ConflictError, on_recorded=fail)
    assert error.field == "idempotency_key"
    with log.engine.connect() as conn:
        assert conn.execute(select(log_config.c.value).where(log_config.c.key == "idem:k2")).first() is None
    assert query.tender_state(log.engine, OCID).commitments == {}


def test_concurrent_writers_to_one_tender_keep_chain_and_projection_consistent(log: Log) -> None:
    _record(log, [item("tender.published", published())], at(-1))
    bids = [bid(n) for n in range(1, 13)]
    # Every bidder tries twice: exactly one commitment each may win.
    attempts = [
        item("bid.committed", {"bidder": b["tenderers"][0], "commitment": commitment(b, salt)}) for b, salt in bids
    ] * 2

    def attempt(one: Submission) -> str:
        try:
            _record(log, [one], at(3))
            return "ok"
        except ConflictError as exc:
            assert exc.reason.endswith("has already committed a bid")
            return "refused"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, attempts))
    assert outcomes.count("ok") == 12 and outcomes.count("refused") == 12
    stored = log.reader.tender_events(OCID)
    assert [e.seq for e in stored] == list(range(13))
    previous = None
    for event in stored:
        envelope = json.loads(event.envelope)
        assert envelope["prev"] == previous
        previous = event.leaf_hash.hex()
    assert log.reader.tender(OCID).head_hash == previous
    state = query.tender_state(log.engine, OCID)
    assert sorted(state.commitments) == sorted(b["tenderers"][0]["id"] for b, _ in bids)
    assert state.events == 13
    assert query.tender_summary(log.engine, OCID).events == 13
    log.integrate_all(now=at(4))
    assert log.reader.tree_head().size == 13


def test_a_batch_over_several_tenders_projects_each(log: Log) -> None:
    other = "ocds-tptest-0009"
    _record(
        log,
        [
            item("tender.published", published()),
            item("tender.published", published(title="Park benches", amount=700.0), other),
            item("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "q"}]}}),
        ],
        at(-1),
    )
    assert query.tender_summary(log.engine, OCID).events == 2
    assert query.tender_summary(log.engine, other).title == "Park benches"
    assert query.tender_summary(log.engine, other).updated_at == at(-1)


def test_a_bulk_over_stored_and_new_tenders_projects_as_one_by_one(log: Log, tmp_path: Path) -> None:
    """A batch reads the stored states of all its tenders at once and moves a copy of each:
    the projections it leaves are those that recording the same events one by one leaves."""
    other, fresh = "ocds-tptest-0009", "ocds-tptest-0010"
    first = [item("tender.published", published()), item("tender.published", published(title="Benches"), other)]
    b1, _ = bid(1)
    clarify = {"tender": {"id": "T-1", "enquiries": [{"id": "q"}]}}
    batch = [
        item("tender.clarified", clarify),
        item("bid.committed", {"bidder": b1["tenderers"][0], "commitment": commitment(*bid(1))}, other),
        item("tender.published", published(title="Lamps", amount=900.0), fresh),
        item("tender.clarified", clarify, other),
        item("bid.committed", {"bidder": b1["tenderers"][0], "commitment": commitment(*bid(1))}),
    ]
    _record(log, first, at(-2))
    _record(log, batch, at(1))
    alone = Log.open(f"sqlite:///{tmp_path / 'alone.sqlite3'}", origin=log.origin)
    try:
        for done, when in [*((i, at(-2)) for i in first), *((i, at(1)) for i in batch)]:
            _record(alone, [done], when)
        assert _states(log) == _states(alone)
    finally:
        alone.close()
    assert _states(log)[other]["events"] == 3 and _states(log)[fresh]["events"] == 1


def _states(log: Log) -> dict[str, Any]:
    with log.engine.connect() as conn:
        return {o: json.loads(s) for o, s in conn.execute(select(tender_index.c.ocid, tender_index.c.state))}


def test_demo_records_through_the_rules(log: Log) -> None:
    from demo import tenders as demo

    recorded = demo.record_demo(log, chain_id=CHAIN_ID)
    assert len(recorded) == len(demo.submissions())
    assert query.tender_summary(log.engine, demo.ROAD).status == "complete"
    assert query.tender_summary(log.engine, demo.SCHOOL).tender_end == datetime.fromisoformat(
        "2026-05-25T23:59:59+00:00"
    )
    assert query.tender_summary(log.engine, demo.ROAD).updated_at - at(0) > timedelta(days=100)


def test_the_log_heads_ocid_and_type_are_reserved(log: Log) -> None:
    """Only the log appends heads commitments (docs/spec.md §14.1): no client records under
    their ocid or type, and nothing is written."""
    heads_payload = {"tree_size": 1, "heads_root": "00" * 32, "tenders": 1}
    for ocid, kind, field in [
        ("ocds-tplog0-heads", "tender.published", "ocid"),
        ("ocds-abc123-x", "log.heads", "type"),
        ("ocds-tplog0-heads", "log.heads", "ocid"),
    ]:
        payload = published() if kind == "tender.published" else heads_payload
        with pytest.raises(InvalidArgumentError) as refused:
            _record(log, [item(kind, payload, ocid)], at(0))
        assert refused.value.field == field
    assert log.reader.tree_head().size == 0 and log.reader.pending_count() == 0


def test_new_events_are_v2_with_f_from_the_privacy_rules(log: Log) -> None:
    """Unsigned: envelope v2, the marked personal data committed field by field (docs/spec.md §2.5)."""
    payload = published(contactPoint={"name": "Ana Ruiz", "email": "ana@example.org"})
    [done] = _record(log, [item("tender.published", payload)], at(-1))
    assert done.envelope.v == 2 and done.disclosure is not None
    assert sorted(done.disclosure["fields"]) == ["/tender/contactPoint/email", "/tender/contactPoint/name"]
    (stored,) = log.reader.tender_events(OCID)
    assert stored.parsed_disclosure == done.disclosure
    assert (
        done.envelope.payload_binding(stored.parsed_payload, disclosure=done.disclosure) == done.envelope.payload_hash
    )


def test_signed_events_keep_what_their_officer_signed(log: Log) -> None:
    """Over the bare hash: recorded as v1. Over a v2 commitment: recorded as v2 with its disclosure,
    whose fields must be what the rules mark; a disclosure without a signature is refused."""
    _register(log, OFFICER, at(-5))
    payload = published(contactPoint={"name": "Ana Ruiz"})
    [bare] = _record(log, [signed(item("tender.published", payload), submission_id="s-1")], at(-1))
    assert bare.envelope.v == 1 and bare.disclosure is None

    def clarified(n: int) -> dict[str, Any]:
        return {
            "tender": {"id": "T-1", "enquiries": [{"id": f"q{n}", "answer": "LED"}], "contactPoint": {"name": "Ana"}}
        }

    committed = signed(item("tender.clarified", clarified(1)), submission_id="s-2", v2=True)
    assert committed.disclosure is not None and list(committed.disclosure["fields"]) == ["/tender/contactPoint/name"]
    [done] = _record(log, [committed], at(2))
    assert done.envelope.v == 2 and done.disclosure == committed.disclosure
    assert done.envelope.submission is not None
    assert done.envelope.submission["payloadSha256"] == done.envelope.payload_commitment
    # the disclosure's fields are not the rules' choice: refused, naming them, nothing recorded
    fewer = signed(item("tender.clarified", clarified(2)), submission_id="s-3", v2=True)
    assert fewer.disclosure is not None
    dodged = Submission(
        ocid=fewer.ocid,
        type=fewer.type,
        payload=fewer.payload,
        submission=fewer.submission,
        signature=fewer.signature,
        disclosure={"salt": fewer.disclosure["salt"], "fields": {}},
    )
    error = _refused(log, lambda: [dodged], at(3), InvalidArgumentError)
    assert error.field == "disclosure.fields" and "['/tender/contactPoint/name']" in error.reason
    unsigned = Submission(ocid=OCID, type="tender.clarified", payload=clarified(3), disclosure=fewer.disclosure)
    error = _refused(log, lambda: [unsigned], at(3), InvalidArgumentError)
    assert (error.field, error.reason) == ("disclosure", "only a signed submission brings its own disclosure")


# --- A bulk request computes its envelopes, rules and states before taking its tenders' locks ---------
# (on SQLite; on PostgreSQL only when told to, as these tests do: the code is the same on both)


def test_a_bulk_computes_before_its_locks_on_sqlite_only(log: Log) -> None:
    assert record_module._early(log) is (log.engine.dialect.name == "sqlite")


def _meanwhile(monkeypatch: pytest.MonkeyPatch, write: Callable[[], None]) -> None:
    """Run ``write`` after a batch has computed what it can before its locks (its envelopes from the
    heads, its rules and states from the stored states) and before it takes them."""
    monkeypatch.setattr(record_module, "_early", lambda _log: True)
    original = record_module._guess

    def guess_then_write(*args: Any, **kwargs: Any) -> Any:
        made = original(*args, **kwargs)
        write()
        return made

    monkeypatch.setattr(record_module, "_guess", guess_then_write)


def test_a_bulk_places_its_events_before_its_locks_once(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """Envelopes and leaf hashes are made before the tenders are locked, and used as made when
    the heads have not moved: one ``_chain`` per event, all before ``_lock_heads``."""
    _record(log, [item("tender.published", published())], at(-1))
    calls: list[str] = []
    chain, lock = sequencer._chain, sequencer._lock_heads

    def chained(one: Submission, *args: Any, **kwargs: Any) -> Any:
        calls.append(one.type)
        return chain(one, *args, **kwargs)

    def locked(*args: Any, **kwargs: Any) -> Any:
        calls.append("lock")
        return lock(*args, **kwargs)

    monkeypatch.setattr(sequencer, "_chain", chained)
    monkeypatch.setattr(sequencer, "_lock_heads", locked)
    monkeypatch.setattr(record_module, "_early", lambda _log: True)
    clarify = {"tender": {"id": "T-1", "enquiries": [{"id": "q"}]}}
    planned = {"planning": {"rationale": "Old lamps"}, "buyer": BUYER}
    done = _record(log, [item("tender.clarified", clarify), item("tender.planned", planned, "ocds-tptest-0009")], at(1))
    assert calls == ["tender.clarified", "tender.planned", "lock"]
    assert [d.envelope.seq for d in done] == [1, 0]
    assert log.reader.tender_events(OCID)[1].leaf_hash == done[0].leaf_hash
    assert _states(log)["ocds-tptest-0009"]["status"] == "planned"


def test_a_bulk_whose_tender_moved_before_its_locks_chains_after_the_new_event(
    log: Log, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An event recorded on the tender between the batch's early work and its locks: the batch is
    placed and checked again under the locks, after it, as if sent after it."""
    _record(log, [item("tender.published", published())], at(-1))
    b1, s1 = bid(1)
    between = item("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "between"}]}})
    _meanwhile(monkeypatch, lambda: _record(log, [between], at(1)))
    batch = [
        item("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "q"}]}}),
        item("bid.committed", {"bidder": b1["tenderers"][0], "commitment": commitment(b1, s1)}),
    ]
    done = _record(log, batch, at(1))
    stored = log.reader.tender_events(OCID)
    assert [e.type for e in stored] == ["tender.published", "tender.clarified", "tender.clarified", "bid.committed"]
    assert [d.envelope.seq for d in done] == [2, 3]
    assert done[0].envelope.prev == stored[1].leaf_hash.hex()
    assert [d.leaf_hash for d in done] == [e.leaf_hash for e in stored[2:]]
    alone = Log.open(f"sqlite:///{tmp_path / 'alone.sqlite3'}", origin=log.origin)
    try:
        monkeypatch.undo()
        for one, when in [
            (item("tender.published", published()), at(-1)),
            (between, at(1)),
            *((i, at(1)) for i in batch),
        ]:
            _record(alone, [one], when)
        assert _states(log) == _states(alone)
    finally:
        alone.close()


def test_a_bulk_is_refused_when_its_tender_was_cancelled_before_its_locks(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(log, [item("tender.published", published())], at(-1))
    cancel = item("tender.cancelled", {"tender": {"id": "T-1", "statusDetails": "Budget"}})
    _meanwhile(monkeypatch, lambda: _record(log, [cancel], at(1)))
    clarify = item("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "q"}]}})
    with pytest.raises(ConflictError) as refused:
        _record(log, [clarify, item("tender.published", published(), "ocds-tptest-0009")], at(2))
    assert refused.value.field == "items[0].type"
    assert [e.type for e in log.reader.tender_events(OCID)] == ["tender.published", "tender.cancelled"]
    assert set(_states(log)) == {OCID}


def test_a_bulk_checks_the_stored_state_again_even_when_the_heads_did_not_move(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state rewritten without a new event (a projection rebuilt, a payload withheld): the heads
    are those read early, but the rules are applied again to the state as stored under the locks."""
    _record(log, [item("tender.published", published())], at(-1))

    def rewrite() -> None:
        with write_transaction(log.engine) as conn:
            state = json.loads(conn.execute(select(tender_index.c.state)).scalar_one())
            state["status"] = "cancelled"
            conn.execute(update(tender_index).values(state=json.dumps(state)))

    _meanwhile(monkeypatch, rewrite)
    clarify = item("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "q"}]}})
    with pytest.raises(ConflictError) as refused:
        _record(log, [clarify, clarify], at(2))
    assert refused.value.field == "items[0].type" and "cancelled" in refused.value.reason
    assert [e.type for e in log.reader.tender_events(OCID)] == ["tender.published"]
