"""GroupCommit.submit: writes queued without a thread waiting for them (an event loop's single
writes) get what GroupCommit.run gives (their own result once committed, their own error, a
failed batch retried alone), answered once by the thread that led their batch; a member its
caller gave up on before a batch took it never runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection

from ledger import sequencer
from ledger.core.errors import ConflictError, InvalidArgumentError
from ledger.log import Log
from ledger.procurement.record import grouped, record
from ledger.submission import Recorded, Submission

from .helpers import CHAIN_ID, at, published
from .test_group_commit import (
    QUEUED_WAIT,
    _event_count,
    _hold_first_batch,
    _hold_until_queued,
    _second_commit_fails,
)


class _Answer:
    """Where a submitted member is answered: once, and on which thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, BaseException | None, str]] = []
        self.given = threading.Event()

    def __call__(self, result: Any, error: BaseException | None) -> None:
        self.calls.append((result, error, threading.current_thread().name))
        self.given.set()

    def outcome(self) -> Any:
        assert self.given.wait(QUEUED_WAIT), "never answered"
        ((result, error, _thread),) = self.calls  # answered once
        return result if error is None else error


def _item(ocid: str, n: int | None = None, **kwargs: Any) -> Submission:
    if n is None:
        return Submission(ocid=ocid, type="tender.published", payload=published(), **kwargs)
    payload = {"tender": {"id": "T-1", "enquiries": [{"id": f"q{n}", "answer": f"Answer {n}."}]}}
    return Submission(ocid=ocid, type="tender.clarified", payload=payload, **kwargs)


def _submit(log: Log, item: Submission) -> tuple[sequencer._Member[Any], _Answer]:
    plan = grouped(log, item, now=at(1), signatures="optional", chain_id=CHAIN_ID)
    assert plan is not None
    answer = _Answer()
    return log.group.submit(lambda: (plan.work, plan.key, plan.together), answer=answer), answer


def _held(log: Log, behind: int, gate: threading.Event | None = None) -> threading.Thread:
    """A thread's own write (``GroupCommit.run``) whose batch is held open until ``behind``
    members are queued behind it (and ``gate`` is set, if given)."""
    started = _hold_first_batch(log.group, behind, gate)
    first = _item("ocds-tptest-0009")
    thread = threading.Thread(
        target=lambda: record(log, [first], now=at(0), signatures="optional", chain_id=CHAIN_ID), name="held"
    )
    thread.start()
    assert started.wait(QUEUED_WAIT)
    return thread


def test_submitted_writes_are_answered_each_with_its_own_outcome(log: Log) -> None:
    record(log, [_item("ocds-tptest-0001")], now=at(0), signatures="optional", chain_id=CHAIN_ID)
    before = _event_count(log)
    thread = _held(log, 6)
    good = [_submit(log, _item("ocds-tptest-0001", n)) for n in range(3)]
    stale = _submit(log, _item("ocds-tptest-0001", 99, prev="00" * 32))  # not the head: 409
    exists = _submit(log, _item("ocds-tptest-0001", prev=None))  # the tender exists: 409
    good.append(_submit(log, _item("ocds-tptest-0002")))
    thread.join(QUEUED_WAIT)
    del log.group._run_batch
    recorded: list[Recorded] = []
    for _member, answer in good:
        result = answer.outcome()
        assert isinstance(result, list) and len(result) == 1, result
        recorded.append(result[0])
        # Answered by the batch's leader: the held thread, which led on (no thread of theirs).
        assert answer.calls[0][2] == "held"
    assert isinstance(stale[1].outcome(), ConflictError) and stale[1].outcome().field == "prev"
    assert isinstance(exists[1].outcome(), ConflictError)
    assert sorted(r.envelope.seq for r in recorded if r.envelope.ocid == "ocds-tptest-0001") == [1, 2, 3]
    assert _event_count(log) == before + 5  # the held write and four of the six submitted
    stored = {e.event_id: e.leaf_hash for e in log.reader.tender_events("ocds-tptest-0001")}
    assert all(stored[r.event_id] == r.leaf_hash for r in recorded if r.envelope.ocid == "ocds-tptest-0001")
    assert not log.group._leading


def test_with_no_batch_running_the_groups_own_thread_leads(log: Log) -> None:
    member, answer = _submit(log, _item("ocds-tptest-0001"))
    result = answer.outcome()
    assert result[0].envelope.seq == 0
    assert answer.calls[0][2] == "group-commit"
    assert member.taken and not log.group.withdraw(member)  # answered: not to be withdrawn
    # And again, once that lead has ended.
    assert _submit(log, _item("ocds-tptest-0001", 1))[1].outcome()[0].envelope.seq == 1


def test_a_member_withdrawn_before_its_batch_never_runs(log: Log) -> None:
    group = log.group
    ran: list[str] = []

    def work(name: str) -> Callable[[Connection], str]:
        def run(conn: Connection) -> str:
            ran.append(name)
            return name

        return run

    gate = threading.Event()
    thread = _held(log, 0, gate)
    gone_answer, kept = _Answer(), _Answer()
    gone = group.submit(lambda: (work("gone"), "a", None), answer=gone_answer)
    group.submit(lambda: (work("kept"), "b", None), answer=kept)
    _hold_until_queued(group, 2)
    assert group.withdraw(gone)  # queued behind the held batch: taken back
    gate.set()
    thread.join(QUEUED_WAIT)
    del group._run_batch
    assert kept.outcome() == "kept"
    assert ran == ["kept"]
    assert not gone_answer.calls and not gone.taken


def test_a_failed_batch_retries_its_submitted_members_alone_and_answers_each_once(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(log, [_item("ocds-tptest-0001")], now=at(0), signatures="optional", chain_id=CHAIN_ID)
    before = _event_count(log)
    opened, failures = _second_commit_fails(monkeypatch)  # the submitted members' batch, after the held one
    thread = _held(log, 4)
    submitted = [_submit(log, _item("ocds-tptest-0001", n)) for n in range(4)]
    thread.join(QUEUED_WAIT)
    del log.group._run_batch
    results = [answer.outcome() for _member, answer in submitted]
    assert all(isinstance(r, list) for r in results), results
    assert sorted(r[0].envelope.seq for r in results) == [1, 2, 3, 4]
    assert _event_count(log) == before + 5  # the held write, then each submitted one once
    assert failures == [True]
    assert len(opened) == 2 + 4  # the held batch, the failed one, each member alone


def test_submit_needs_a_group(log: Log) -> None:
    alone = Log(engine=log.engine, origin=log.origin, group_commit=1)
    with pytest.raises(InvalidArgumentError, match="max_batch"):
        alone.group.submit(lambda: (lambda conn: None, "", None), answer=_Answer())


def test_a_leader_that_fails_hands_its_lead_to_the_groups_own_thread(log: Log) -> None:
    group = log.group
    gate = threading.Event()
    original = group._run_batch
    failed: list[BaseException] = []
    started = threading.Event()

    def dying(batch: list[Any]) -> None:
        if not failed:
            started.set()
            assert gate.wait(QUEUED_WAIT)
            failed.append(RuntimeError("the leader's own failure"))
            raise failed[0]
        original(batch)

    group._run_batch = dying  # type: ignore[method-assign]
    outcome: list[Any] = []

    def first() -> None:
        try:
            record(log, [_item("ocds-tptest-0009")], now=at(0), signatures="optional", chain_id=CHAIN_ID)
        except RuntimeError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=first, name="held")
    thread.start()
    assert started.wait(QUEUED_WAIT)
    submitted = [_submit(log, _item(f"ocds-tptest-000{n}")) for n in range(1, 4)]
    _hold_until_queued(group, 3)
    gate.set()
    thread.join(QUEUED_WAIT)
    try:
        assert outcome == failed  # raised to its own caller, its write not committed
        for _member, answer in submitted:
            assert answer.outcome()[0].envelope.seq == 0
            assert answer.calls[0][2] == "group-commit"
    finally:
        del group._run_batch
    assert _event_count(log) == 3
