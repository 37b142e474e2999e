"""Group commit on SQLite and PostgreSQL: concurrent single-event writes share one transaction,
each caller gets its own event (or its own error) only once it is committed, and a refused
member never fails its neighbours.

Batches are formed deterministically: the first member's work waits until the others are
queued behind it, so they all land in the next batch together.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from ledger import sequencer
from ledger.core.envelope import format_timestamp
from ledger.core.errors import ConflictError, InvalidArgumentError, LedgerError, SignatureError
from ledger.log import Log
from ledger.procurement.officers import REGISTRY_OCID
from ledger.procurement.record import record
from ledger.store.schema import events, submission_ids, tenders
from ledger.submission import Recorded, Submission

from .helpers import CHAIN_ID, OCID, OFFICER, OTHER_KEY, at, history, item, published, signed

QUEUED_WAIT = 30.0  # seconds a held first member waits for the others to queue (never reached when it works)


def _hold_until_queued(group: sequencer.GroupCommit, behind: int) -> None:
    """Block (inside the running batch) until ``behind`` members are queued for the next one."""
    deadline = time.monotonic() + QUEUED_WAIT
    while len(group._queue) < behind:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(group._queue)} of {behind} members queued")
        time.sleep(0.005)


def _hold_first_batch(
    group: sequencer.GroupCommit, behind: int, gate: threading.Event | None = None
) -> threading.Event:
    """Hold the group's next batch open until ``behind`` members are queued behind it (and
    ``gate`` is set, if given); the event returned is set once that batch has started. Undone by
    ``del group._run_batch``."""
    started = threading.Event()
    original = group._run_batch

    def held(batch: list[Any]) -> None:
        if not started.is_set():
            started.set()
            _hold_until_queued(group, behind)
            if gate is not None and not gate.wait(QUEUED_WAIT):
                raise AssertionError("the gate was never opened")
        original(batch)

    group._run_batch = held  # type: ignore[method-assign]
    return started


def _in_one_batch(
    log: Log, first: Callable[[], Any], rest: list[Callable[[], Any]], *, ordered: bool = False
) -> list[Any]:
    """Run ``first`` (a write whose batch is held open until every one of ``rest`` is queued),
    then ``rest`` concurrently (``ordered``: each queued before the next starts); return each
    one's result or the exception it raised."""
    group = log.group
    started = _hold_first_batch(group, len(rest))

    def outcome(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:
            return exc

    try:
        with ThreadPoolExecutor(len(rest) + 1) as pool:
            head = pool.submit(outcome, first)
            if not started.wait(QUEUED_WAIT):
                raise AssertionError(f"the first write never reached a batch: {head.result()!r}")
            tail = []
            for queued, call in enumerate(rest, start=1):
                tail.append(pool.submit(outcome, call))
                if ordered and queued < len(rest):  # the last one queued releases the held batch at once
                    _hold_until_queued(group, queued)
            return [head.result(), *(f.result() for f in tail)]
    finally:
        del group._run_batch


def _create(log: Log, ocid: str, **kwargs: Any) -> Callable[[], list[Recorded]]:
    item = Submission(ocid=ocid, type="tender.published", payload=published(), **kwargs)
    return lambda: record(log, [item], now=at(0), signatures="optional", chain_id=CHAIN_ID)


def _clarify(log: Log, ocid: str, n: int, **kwargs: Any) -> Callable[[], list[Recorded]]:
    payload = {"tender": {"id": "T-1", "enquiries": [{"id": f"q{n}", "answer": f"Answer {n}."}]}}
    item = Submission(ocid=ocid, type="tender.clarified", payload=payload, **kwargs)
    return lambda: record(log, [item], now=at(1), signatures="optional", chain_id=CHAIN_ID)


def _event_count(log: Log) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_concurrent_writes_share_one_commit_and_each_gets_its_own_event(log: Log) -> None:
    _create(log, "ocds-tptest-0001")()
    before = (log.group.batches, log.group.members)
    writes = [_clarify(log, "ocds-tptest-0001", n) for n in range(12)] + [
        _create(log, f"ocds-tptest-{n:04d}") for n in range(2, 8)
    ]
    results = _in_one_batch(log, writes[0], writes[1:])
    assert all(isinstance(r, list) and len(r) == 1 for r in results), results
    recorded: list[Recorded] = [r[0] for r in results]
    # One batch for the held first write, one for the other 17, each committed once.
    assert (log.group.batches - before[0], log.group.members - before[1]) == (2, 18)
    # Each caller got its own event: distinct ids, a dense chain on the shared tender.
    assert len({r.event_id for r in recorded}) == 18
    seqs = sorted(r.envelope.seq for r in recorded if r.envelope.ocid == "ocds-tptest-0001")
    assert seqs == list(range(1, 13))
    stored = {e.event_id: e for e in log.reader.tender_events("ocds-tptest-0001")}
    for done in recorded:
        if done.envelope.ocid == "ocds-tptest-0001":
            assert stored[done.event_id].leaf_hash == done.leaf_hash
            assert stored[done.event_id].seq == done.envelope.seq
    # The chain links each event to the one before it.
    chain = sorted(stored.values(), key=lambda e: e.seq)
    for earlier, later in itertools.pairwise(chain):
        assert later.parsed_envelope.prev == earlier.leaf_hash.hex()
    with log.engine.connect() as conn:
        count = conn.execute(select(tenders.c.event_count).where(tenders.c.ocid == "ocds-tptest-0001")).scalar_one()
    assert count == 13
    # each event's payload stored with it and the event queued for the log once (on PostgreSQL all
    # of it one statement): every one of the 19 is integrated, in event order, and none is left
    questions = sorted(e.parsed_payload["tender"]["enquiries"][0]["id"] for e in chain if e.seq)
    assert questions == sorted(f"q{n}" for n in range(12))
    assert log.reader.pending_count() == 19
    assert log.integrate_all(now=at(2)).size == 19
    assert log.reader.pending_count() == 0
    indices = [e.index for e in sorted(log.reader.tender_events("ocds-tptest-0001"), key=lambda e: e.seq)]
    assert None not in indices and indices == sorted(indices)  # type: ignore[type-var]


def test_a_refused_member_does_not_fail_its_neighbours(log: Log) -> None:
    first = _create(log, "ocds-tptest-0001")()[0]
    before = _event_count(log)
    good = [_clarify(log, "ocds-tptest-0001", n) for n in range(4)]
    stale = _clarify(log, "ocds-tptest-0001", 99, prev="00" * 32)  # not the head: 409
    exists = _create(log, "ocds-tptest-0001", prev=None)  # the tender exists: 409
    other = _create(log, "ocds-tptest-0002")
    no_tender = _clarify(log, "ocds-tptest-0003", 1)  # the rules refuse it, inside the transaction
    results = _in_one_batch(log, good[0], [good[1], stale, good[2], exists, other, no_tender, good[3]])
    ok = [results[i] for i in (0, 1, 3, 7)] + [results[5]]
    assert all(isinstance(r, list) for r in ok), results
    assert isinstance(results[2], ConflictError) and results[2].field == "prev"
    assert isinstance(results[4], ConflictError) and results[4].field == "prev"
    assert isinstance(results[6], LedgerError) and not isinstance(results[6], list), results[6]
    assert _event_count(log) == before + 5
    events_now = log.reader.tender_events("ocds-tptest-0001")
    assert [e.seq for e in events_now] == [0, 1, 2, 3, 4]
    assert events_now[0].leaf_hash == first.leaf_hash
    with log.engine.connect() as conn:  # nothing of the refused member, not even its tender row
        assert conn.execute(select(tenders.c.ocid).where(tenders.c.ocid == "ocds-tptest-0003")).first() is None


def test_a_database_error_sends_the_member_back_to_run_alone(log: Log) -> None:
    group = log.group
    calls: list[str] = []

    def flaky(conn: Connection) -> str:
        calls.append("batch" if len(calls) == 0 else "alone")
        if len(calls) == 1:
            conn.exec_driver_sql("SELECT no_such_column FROM log_state")  # a database error, in the batch
        return "done"

    def plain(name: str) -> Callable[[], str]:
        return lambda: group.run(lambda conn: (conn.exec_driver_sql("SELECT 1"), name)[1], key=name)

    results = _in_one_batch(log, plain("a"), [lambda: group.run(flaky, key="b"), plain("c")])
    assert results == ["a", "done", "c"]
    assert calls == ["batch", "alone"]


def _second_commit_fails(monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], list[bool]]:
    """The second write transaction the group opens fails at its commit (rolled back); returns
    the list of transactions opened and that of failures, appended to as they happen."""
    failures: list[bool] = []
    opened: list[bool] = []
    real = sequencer.write_transaction  # type: ignore[attr-defined]

    def failing_once(engine: Any) -> Any:
        manager = real(engine)
        opened.append(True)
        nth = len(opened)

        class Failing:
            def __enter__(self) -> Connection:
                return manager.__enter__()

            def __exit__(self, *exc: Any) -> bool | None:
                if nth == 2 and exc[0] is None:
                    failures.append(True)
                    error = OperationalError("COMMIT", {}, Exception("disk I/O error"))
                    manager.__exit__(type(error), error, None)  # rolled back
                    raise error
                return manager.__exit__(*exc)

        return Failing()

    monkeypatch.setattr(sequencer, "write_transaction", failing_once)
    return opened, failures


def test_a_failed_batch_commits_nothing_and_retries_every_member_alone(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create(log, "ocds-tptest-0001")()
    before = _event_count(log)
    _opened, failures = _second_commit_fails(monkeypatch)  # the batch of four, after the held first write's
    writes = [_clarify(log, "ocds-tptest-0001", n) for n in range(5)]
    results = _in_one_batch(log, writes[0], writes[1:])
    assert failures == [True]
    assert all(isinstance(r, list) for r in results), results
    assert sorted(r[0].envelope.seq for r in results) == [1, 2, 3, 4, 5]
    assert _event_count(log) == before + 5  # each once


def test_max_batch_one_commits_each_write_alone(log: Log) -> None:
    alone = Log(engine=log.engine, origin=log.origin, group_commit=1)
    recorded = _create(alone, "ocds-tptest-0001")()
    assert recorded[0].envelope.seq == 0
    assert (alone.group.batches, alone.group.members) == (0, 0)
    with pytest.raises(InvalidArgumentError, match="max_batch"):
        sequencer.GroupCommit(log.engine, max_batch=0)


def test_red_flags_are_rewritten_only_when_their_rows_change(log: Log) -> None:
    """Along a whole history, recorded one event at a time: an event rewrites the red flags,
    buyer-supplier pairs and parties exactly when the rows its tender's figures give change, and
    after every event the stored flags and buyer-supplier rows are exactly what those figures
    give (as if recomputed each time)."""
    from sqlalchemy import event

    from ledger.procurement import redflags
    from ledger.procurement.query import tender_state
    from ledger.store.schema import tender_flags, tender_suppliers

    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    def rows(state: Any) -> redflags.Rows:
        compiled = redflags.compiled_of_state(state)
        return redflags.rows_of(state.ocid, state.buyer_id, compiled, buyer_name=state.buyer_name)

    rewritten: list[tuple[str, bool, bool]] = []  # (event type, rewritten, its rows changed)
    previous = None
    event.listen(log.engine, "before_cursor_execute", seen)
    try:
        for event_type, payload, when in history():
            statements.clear()
            record(log, [item(event_type, payload)], now=when, signatures="optional", chain_id=CHAIN_ID)
            wrote = any(
                table in s and not s.lstrip().upper().startswith("SELECT")
                for s in statements
                for table in ("tender_flags", "tender_suppliers", "tender_parties")
            )  # a table holding none of the tender's rows, before or after, is not written
            state = tender_state(log.engine, OCID)
            rewritten.append((event_type, wrote, previous is None or rows(previous) != rows(state)))
            previous = state
            compiled = redflags.compiled_of_state(state)
            with log.engine.connect() as conn:
                flags = {r.code for r in conn.execute(select(tender_flags.c.code).where(tender_flags.c.ocid == OCID))}
                pairs = sorted(
                    r.supplier
                    for r in conn.execute(select(tender_suppliers.c.supplier).where(tender_suppliers.c.ocid == OCID))
                )
            assert flags == set(redflags.evaluate(compiled)), event_type
            assert pairs == sorted(redflags.suppliers(compiled)), event_type
    finally:
        event.remove(log.engine, "before_cursor_execute", seen)
    assert all(wrote == changed for _, wrote, changed in rewritten), rewritten
    written = {t for t, wrote, _ in rewritten if wrote}
    # the first event, the bidders counted (one, then two: single_bidder raised, then cleared), the award's supplier
    assert {"tender.planned", "bid.committed", "award.issued"} <= written
    assert not written & {"tender.clarified", "bid.revealed", "contract.payment"}, rewritten
    assert "single_bidder" not in flags and pairs  # two bidders; the award's supplier is there


def _event_inserts(log: Log) -> tuple[list[str], Callable[[], None]]:
    """Record the statements run on ``log``'s engine that insert events (an executemany is one; on
    PostgreSQL, one statement inserts a batch's events with their payloads)."""
    from sqlalchemy import event

    seen: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "INSERT INTO EVENTS " in " ".join(statement.upper().split()):
            seen.append(statement)

    event.listen(log.engine, "before_cursor_execute", listener)
    return seen, lambda: event.remove(log.engine, "before_cursor_execute", listener)


def _write(log: Log, ocid: str, event_type: str, payload: dict[str, Any], when: Any) -> Callable[[], Any]:
    item = Submission(ocid=ocid, type=event_type, payload=payload)
    return lambda: record(log, [item], now=when, signatures="optional", chain_id=CHAIN_ID)


def test_unsigned_single_events_are_written_together_each_against_the_state_before_it(log: Log) -> None:
    """A batch of unsigned single events is one bulk append (one insert of events for all), yet
    each is checked against its tender's state as the members before it left it: an event after
    a cancellation in the same batch is refused alone, a new tender's later events are accepted
    after its creation, and each event keeps its own time."""
    _create(log, "ocds-tptest-0001")()
    before = _event_count(log)
    cancel = {"tender": {"id": "T-1", "statusDetails": "Budget cut"}}
    rest = [
        _clarify(log, "ocds-tptest-0001", 1),
        _write(log, "ocds-tptest-0001", "tender.cancelled", cancel, at(2)),
        _clarify(log, "ocds-tptest-0001", 2),  # after the cancellation: refused
        _create(log, "ocds-tptest-0002"),
        _write(log, "ocds-tptest-0002", "tender.clarified", _clarify_payload(3), at(3)),
        _clarify(log, "ocds-tptest-0009", 4),  # no such tender: refused, and no tender row left
    ]
    inserts, stop = _event_inserts(log)
    try:
        results = _in_one_batch(log, _clarify(log, "ocds-tptest-0001", 0), rest, ordered=True)
    finally:
        stop()
    assert len(inserts) == 2, inserts  # the held first write's, then one for the four accepted of the six
    accepted = [results[i] for i in (0, 1, 2, 4, 5)]
    assert all(isinstance(r, list) for r in accepted), results
    assert isinstance(results[3], ConflictError) and "cancelled" in str(results[3]), results[3]
    assert isinstance(results[6], LedgerError) and results[6].field == "type", results[6]
    assert _event_count(log) == before + 5
    cancelled = results[2][0].envelope
    assert (cancelled.seq, cancelled.recorded_at) == (3, format_timestamp(at(2)))
    later = results[5][0].envelope
    assert (later.ocid, later.seq, later.prev) == ("ocds-tptest-0002", 1, results[4][0].leaf_hash.hex())
    assert later.recorded_at == format_timestamp(at(3))
    from ledger.procurement.query import tender_state

    assert tender_state(log.engine, "ocds-tptest-0001").status == "cancelled"
    assert tender_state(log.engine, "ocds-tptest-0002").events == 2
    with log.engine.connect() as conn:
        assert conn.execute(select(tenders.c.ocid).where(tenders.c.ocid == "ocds-tptest-0009")).first() is None


def _clarify_payload(n: int) -> dict[str, Any]:
    return {"tender": {"id": "T-1", "enquiries": [{"id": f"q{n}", "answer": f"Answer {n}."}]}}


def test_a_database_error_in_the_written_together_batch_runs_its_members_one_by_one(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If writing the batch together fails in the database, nothing of it stays: each member
    runs in its own savepoint (of a new transaction: the batch was that one run, written without
    a savepoint), and each event is recorded once."""
    from ledger.procurement import record as record_module

    _create(log, "ocds-tptest-0001")()
    before = _event_count(log)
    counted = (log.group.batches, log.group.members)
    real = record_module._record_together
    failed: list[int] = []

    def failing(conn: Connection, singles: list[Any]) -> list[Any]:
        done = real(conn, singles)  # written, then the database fails
        failed.append(len(singles))
        conn.exec_driver_sql("SELECT no_such_column FROM log_state")
        return done

    monkeypatch.setattr(record_module, "_record_together", failing)
    writes = [_clarify(log, "ocds-tptest-0001", n) for n in range(5)]
    stale = _clarify(log, "ocds-tptest-0001", 99, prev="00" * 32)
    results = _in_one_batch(log, writes[0], [*writes[1:], stale])
    assert failed == [5]
    # committed by their batch (the held first write's batch, then the five one savepoint each),
    # not each retried alone after it (which would give the same events, uncounted)
    assert (log.group.batches - counted[0], log.group.members - counted[1]) == (2, 6)
    assert all(isinstance(r, list) for r in results[:5]), results
    assert isinstance(results[5], ConflictError) and results[5].field == "prev"
    assert sorted(r[0].envelope.seq for r in results[:5]) == [1, 2, 3, 4, 5]
    assert _event_count(log) == before + 5  # each once
    assert [e.seq for e in log.reader.tender_events("ocds-tptest-0001")] == [0, 1, 2, 3, 4, 5]


def test_a_batch_reads_its_tenders_stored_flag_rows_in_one_statement(log: Log) -> None:
    """A batch of events for several tenders compares their new red-flag rows with the stored
    ones in ONE read (not one per tender), reads nothing when no figure moved, and leaves each
    tender's flags exactly as its figures give them."""
    from sqlalchemy import event

    from ledger.procurement import redflags
    from ledger.procurement.query import tender_state
    from ledger.store.schema import tender_flags

    ocids = [f"ocds-tptest-01{n:02d}" for n in range(4)]
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "tender_flags" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    counted: dict[str, int] = {}
    event.listen(log.engine, "before_cursor_execute", seen)
    try:
        for event_type, payload, when in history()[:5]:
            reads.clear()
            batch = [item(event_type, payload, ocid) for ocid in ocids]
            record(log, batch, now=when, signatures="optional", chain_id=CHAIN_ID)
            counted[event_type] = max(counted.get(event_type, 0), len(reads))
            for ocid in ocids:
                compiled = redflags.compiled_of_state(tender_state(log.engine, ocid))
                with log.engine.connect() as conn:
                    stored = {
                        r.code for r in conn.execute(select(tender_flags.c.code).where(tender_flags.c.ocid == ocid))
                    }
                assert stored == set(redflags.evaluate(compiled)), (event_type, ocid)
    finally:
        event.remove(log.engine, "before_cursor_execute", seen)
    # the bidders counted move every tender's rows: one read for the four; a clarification moves nothing
    assert counted["bid.committed"] == 1 and counted["tender.published"] == 1, counted
    assert counted["tender.clarified"] == 0, counted


def _signed_write(log: Log, unsigned: Submission, when: Any, **sign: Any) -> Callable[[], Any]:
    one = signed(unsigned, **sign)
    return lambda: record(log, [one], now=when, signatures="optional", chain_id=CHAIN_ID)


def test_signed_single_events_are_written_together_each_checked_alone(log: Log) -> None:
    """Signed single events join the batch's one bulk append: each signature is verified, its
    officer's registration and its submission id checked, against the events before it; a bad
    signature, an unregistered signer, a submission id recorded before or earlier in the same
    batch are refused alone, and the others' submission ids are stored with their events."""
    record(log, [Submission(ocid=REGISTRY_OCID, type="officer.registered", payload={"address": OFFICER,
           "name": "Ana", "role": "procurement officer"})], now=at(-5), signatures="optional", chain_id=CHAIN_ID)  # fmt: skip
    [earlier] = record(
        log, [signed(item("tender.published", published()), submission_id="s-0")], now=at(0),
        signatures="optional", chain_id=CHAIN_ID,
    )  # fmt: skip
    before = _event_count(log)
    clarify = [item("tender.clarified", _clarify_payload(n)) for n in range(8)]
    good = signed(clarify[7], submission_id="s-bad")
    forged = Submission(  # the signature of another payload: it recovers some other address
        ocid=OCID, type="tender.clarified", payload=clarify[7].payload,
        submission=signed(clarify[6], submission_id="s-bad").submission, signature=good.signature,
    )  # fmt: skip
    rest = [
        _signed_write(log, clarify[1], at(1), submission_id="s-1"),
        _signed_write(log, clarify[2], at(1), submission_id="s-2", key=OTHER_KEY),  # not registered
        _signed_write(log, clarify[3], at(1), submission_id="s-1"),  # earlier in this batch
        _signed_write(log, clarify[4], at(1), submission_id="s-0"),  # recorded before
        lambda: record(log, [forged], now=at(1), signatures="optional", chain_id=CHAIN_ID),
        _clarify(log, OCID, 5),  # unsigned, in the same batch
        _signed_write(log, item("tender.published", published(), "ocds-tptest-0002"), at(1), submission_id="s-3",
                      v2=True),
    ]  # fmt: skip
    inserts, stop = _event_inserts(log)
    try:
        results = _in_one_batch(log, _signed_write(log, clarify[0], at(1), submission_id="s-held"), rest, ordered=True)
    finally:
        stop()
    assert len(inserts) == 2, inserts  # the held first write's, then one for the batch's accepted events
    assert all(isinstance(results[i], list) for i in (0, 1, 6, 7)), results
    assert isinstance(results[2], SignatureError) and results[2].field == "submission.officer", results[2]
    assert isinstance(results[3], ConflictError) and results[3].field == "submission.submissionId", results[3]
    assert isinstance(results[4], ConflictError) and f"(event {earlier.event_id})" in str(results[4]), results[4]
    assert isinstance(results[5], SignatureError), results[5]
    assert _event_count(log) == before + 4
    assert [e.seq for e in log.reader.tender_events(OCID)] == [0, 1, 2, 3]
    with log.engine.connect() as conn:
        stored = {r.submission_id: (r.event_id, r.signer) for r in conn.execute(select(submission_ids))}
    assert stored == {
        "s-0": (earlier.event_id, OFFICER),
        "s-held": (results[0][0].event_id, OFFICER),
        "s-1": (results[1][0].event_id, OFFICER),
        "s-3": (results[7][0].event_id, OFFICER),
    }
    assert results[7][0].envelope.v == 2 and results[1][0].envelope.submission is not None


def test_on_recorded_runs_in_the_batch_and_one_that_fails_is_refused_alone(log: Log) -> None:
    """Requests with an ``on_recorded`` (an idempotency key) are written together too, each one's
    ``on_recorded`` given its own event in the batch's transaction; when one of them fails (a
    concurrent request stored its key first) nothing of the batch written together is kept: each
    runs in a savepoint of its own, that one refused alone, every other event recorded once."""
    _create(log, "ocds-tptest-0001")()
    before = _event_count(log)
    seen: list[tuple[int, int]] = []  # (attempt, event seq) as each on_recorded is called
    attempts: list[int] = []

    def write(n: int, *, fails: bool = False) -> Callable[[], Any]:
        one = Submission(ocid="ocds-tptest-0001", type="tender.clarified", payload=_clarify_payload(n))

        def on_recorded(conn: Connection, recorded: list[Recorded]) -> None:
            conn.exec_driver_sql("SELECT 1")
            seen.append((n, recorded[0].envelope.seq))
            if fails:
                attempts.append(n)
                raise ConflictError("Idempotency-Key", "stored by a concurrent request")

        return lambda: record(log, [one], now=at(1), signatures="optional", chain_id=CHAIN_ID, on_recorded=on_recorded)

    inserts, stop = _event_inserts(log)
    try:
        together = _in_one_batch(log, write(0), [write(1), write(2), write(3)], ordered=True)
        apart = _in_one_batch(log, write(4), [write(5), write(6, fails=True), write(7)], ordered=True)
    finally:
        stop()
    assert all(isinstance(r, list) for r in together), together
    assert len(inserts) == 2 + 1 + 1 + 3, inserts  # held, together; held, the failed try, then alone
    assert [r[0].envelope.seq for r in together] == [1, 2, 3, 4]
    assert isinstance(apart[2], ConflictError) and apart[2].field == "Idempotency-Key", apart
    assert attempts == [6, 6]  # in the batch written together, then alone
    assert [apart[i][0].envelope.seq for i in (0, 1, 3)] == [5, 6, 7]
    assert _event_count(log) == before + 7
    assert [e.seq for e in log.reader.tender_events("ocds-tptest-0001")] == list(range(8))
    assert {n: seq for n, seq in seen if n != 6} == {n: n + 1 for n in range(6)} | {7: 7}


def test_an_event_refused_half_way_through_its_rule_leaves_its_tender_as_before(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's tender states are moved in place, event by event: a rule that changed the state
    before refusing its event leaves nothing of that change to the events after it, nor stored."""
    from ledger.procurement import rules
    from ledger.procurement.query import tender_state

    _create(log, "ocds-tptest-0001")()
    real = rules._RULES["tender.clarified"]

    def half_then_refuse(state: Any, model: Any, payload: Any, recorded_at: Any) -> None:
        real(state, model, payload, recorded_at)
        if payload["tender"]["enquiries"][0]["id"] == "q2":
            state.title = "Changed by a refused event"
            raise ConflictError("payload.tender", "refused after changing the state")

    monkeypatch.setitem(rules._RULES, "tender.clarified", half_then_refuse)
    writes = [_clarify(log, "ocds-tptest-0001", n) for n in range(4)]
    results = _in_one_batch(log, writes[0], writes[1:], ordered=True)
    assert isinstance(results[2], ConflictError), results
    assert [r[0].envelope.seq for r in (results[0], results[1], results[3])] == [1, 2, 3]
    state = tender_state(log.engine, "ocds-tptest-0001")
    assert state.title == "Street lighting renewal"
    assert state.events == 4  # the creation and the three accepted clarifications


def test_a_signed_single_events_signature_is_verified_before_its_batch_locks(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The secp256k1 recovery of a signed single event runs in its request's thread before the
    batch takes its tenders' locks (what it checks does not depend on where the event is placed);
    a refused signature is still raised at the event's turn, alone."""
    from ledger.procurement import record as record_module

    record(log, [Submission(ocid=REGISTRY_OCID, type="officer.registered", payload={"address": OFFICER,
           "name": "Ana", "role": "procurement officer"})], now=at(-5), signatures="optional", chain_id=CHAIN_ID)  # fmt: skip
    _create(log, OCID)()
    locked: list[bool] = []
    verified_while: list[bool] = []
    lock, verify = sequencer._lock_heads, record_module._signer

    def locking(*args: Any, **kwargs: Any) -> Any:
        locked.append(True)
        try:
            return lock(*args, **kwargs)
        finally:
            locked.pop()

    def verifying(*args: Any, **kwargs: Any) -> Any:
        verified_while.append(bool(group_running))
        return verify(*args, **kwargs)

    group_running: list[bool] = []
    run_batch = log.group._run_batch

    def running(batch: list[Any]) -> None:
        group_running.append(True)
        try:
            run_batch(batch)
        finally:
            group_running.pop()

    monkeypatch.setattr(sequencer, "_lock_heads", locking)
    monkeypatch.setattr(record_module, "_signer", verifying)
    monkeypatch.setattr(log.group, "_run_batch", running)
    clarify = [item("tender.clarified", _clarify_payload(n)) for n in range(2)]
    [done] = record(log, [signed(clarify[0], submission_id="s-1")], now=at(1), signatures="optional", chain_id=CHAIN_ID)
    with pytest.raises(SignatureError):
        record(log, [signed(clarify[1], submission_id="s-2", key=OTHER_KEY)], now=at(1), signatures="optional",
               chain_id=CHAIN_ID)  # fmt: skip
    assert done.envelope.seq == 1
    assert verified_while == [False, False]  # once each, neither inside a batch
