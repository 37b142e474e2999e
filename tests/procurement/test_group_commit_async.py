"""Group commit awaited from an event loop (``GroupCommit.run_async``, ``record_async``), on SQLite
and PostgreSQL: coroutines share a batch with each other and with threads, each is answered only
once its event is committed, with its own event or its own error; a failed batch sends them back
to run alone; a caller cancelled while its batch runs leaves its event committed once.

Batches are formed deterministically, as in test_group_commit.py: the first batch is held open
(in the writer thread) until the others are queued behind it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from ledger import sequencer
from ledger.core.errors import ConflictError, LedgerError
from ledger.log import Log
from ledger.procurement.record import record, record_async
from ledger.store.schema import events
from ledger.submission import Recorded, Submission

from .helpers import CHAIN_ID, at, published

QUEUED_WAIT = 30.0  # seconds a held batch waits for the others to queue (never reached when it works)


def _published(ocid: str) -> Submission:
    return Submission(ocid=ocid, type="tender.published", payload=published())


def _clarified(ocid: str, n: int, **kwargs: Any) -> Submission:
    payload = {"tender": {"id": "T-1", "enquiries": [{"id": f"q{n}", "answer": f"Answer {n}."}]}}
    return Submission(ocid=ocid, type="tender.clarified", payload=payload, **kwargs)


def _event_count(log: Log) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def _stored(log: Log, event_id: int) -> bool:
    """Whether another connection sees the event (it is committed)."""
    with log.engine.connect() as conn:
        return conn.execute(select(events.c.id).where(events.c.id == event_id)).first() is not None


@contextmanager
def _held_first_batch(group: sequencer.GroupCommit) -> Iterator[tuple[threading.Event, Callable[[int], None]]]:
    """The group's first batch, once started (the event is set), waits until as many members as
    ``expect(n)`` said are queued behind it."""
    started = threading.Event()
    behind = [0]
    original = group._run_batch

    def held(batch: list[Any]) -> None:
        if not started.is_set():
            started.set()
            deadline = time.monotonic() + QUEUED_WAIT
            while len(group._queue) < behind[0]:
                if time.monotonic() > deadline:
                    raise AssertionError(f"only {len(group._queue)} of {behind[0]} members queued")
                time.sleep(0.005)
        original(batch)

    def expect(n: int) -> None:
        behind[0] = n

    group._run_batch = held  # type: ignore[method-assign]
    try:
        yield started, expect
    finally:
        del group._run_batch


async def _in_one_batch(
    log: Log, first: Callable[[], Awaitable[Any]], rest: list[Callable[[], Awaitable[Any]]]
) -> list[Any]:
    """Start ``first``, hold its batch until every one of ``rest`` is queued, then let them all
    run; each one's result or the exception it raised."""
    with _held_first_batch(log.group) as (started, expect):
        expect(len(rest))
        head = asyncio.ensure_future(first())
        deadline = time.monotonic() + QUEUED_WAIT
        while not started.is_set():
            if head.done() or time.monotonic() > deadline:
                raise AssertionError(f"the first write never reached a batch: {head!r}")
            await asyncio.sleep(0.005)
        tail = [asyncio.ensure_future(call()) for call in rest]
        return list(await asyncio.gather(head, *tail, return_exceptions=True))


def _writer(log: Log, item: Submission) -> Callable[[], Awaitable[list[Recorded]]]:
    """``record_async`` of ``item``, checking that its event is committed when it returns."""

    async def write() -> list[Recorded]:
        recorded = await record_async(log, [item], now=at(1), signatures="optional", chain_id=CHAIN_ID)
        assert _stored(log, recorded[0].event_id), "answered before its commit"
        return recorded

    return write


def test_coroutines_share_one_commit_each_with_its_own_event_or_error(log: Log) -> None:
    record(log, [_published("ocds-tptest-0001")], now=at(0), signatures="optional", chain_id=CHAIN_ID)
    before, count = (log.group.batches, log.group.members), _event_count(log)
    rest = [_writer(log, _clarified("ocds-tptest-0001", n)) for n in range(1, 9)]
    rest.insert(3, _writer(log, _clarified("ocds-tptest-0001", 90, prev="00" * 32)))  # not the head: 409
    rest.insert(6, _writer(log, _clarified("ocds-tptest-0099", 91)))  # no such tender: refused
    rest.append(_writer(log, _published("ocds-tptest-0002")))
    results = asyncio.run(_in_one_batch(log, _writer(log, _clarified("ocds-tptest-0001", 0)), rest))
    refused = {4: results[4], 7: results[7]}
    accepted = [r for i, r in enumerate(results) if i not in refused]
    assert all(isinstance(r, list) for r in accepted), results
    assert isinstance(refused[4], ConflictError) and refused[4].field == "prev", refused[4]
    assert isinstance(refused[7], LedgerError), refused[7]
    # The held first write's batch, then one for the other eleven, committed once each.
    assert (log.group.batches - before[0], log.group.members - before[1]) == (2, 12)
    assert _event_count(log) == count + 10
    seqs = sorted(r[0].envelope.seq for r in accepted if r[0].envelope.ocid == "ocds-tptest-0001")
    assert seqs == list(range(1, 10))
    assert len({r[0].event_id for r in accepted}) == 10


def test_threads_and_coroutines_share_a_batch(log: Log) -> None:
    """A thread's write (``record``, as an idempotent request makes) leads the first batch; the
    coroutines and another thread queued behind it are run by the writer thread, all answered."""
    record(log, [_published("ocds-tptest-0001")], now=at(0), signatures="optional", chain_id=CHAIN_ID)
    count = _event_count(log)

    def in_thread(item: Submission) -> Callable[[], Awaitable[list[Recorded]]]:
        return lambda: asyncio.to_thread(record, log, [item], now=at(1), signatures="optional", chain_id=CHAIN_ID)

    rest: list[Callable[[], Awaitable[Any]]] = [_writer(log, _clarified("ocds-tptest-0001", n)) for n in range(1, 5)]
    rest.insert(2, in_thread(_clarified("ocds-tptest-0001", 50)))
    results = asyncio.run(_in_one_batch(log, in_thread(_clarified("ocds-tptest-0001", 0)), rest))
    assert all(isinstance(r, list) for r in results), results
    assert _event_count(log) == count + 6
    assert sorted(r[0].envelope.seq for r in results) == [1, 2, 3, 4, 5, 6]


def test_a_failed_batch_sends_its_coroutines_to_run_alone(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    record(log, [_published("ocds-tptest-0001")], now=at(0), signatures="optional", chain_id=CHAIN_ID)
    count = _event_count(log)
    opened: list[int] = []
    failures: list[int] = []
    real = sequencer.write_transaction  # type: ignore[attr-defined]

    def failing_second(engine: Any) -> Any:
        manager = real(engine)
        opened.append(1)
        nth = len(opened)

        class Failing:
            def __enter__(self) -> Connection:
                return manager.__enter__()

            def __exit__(self, *exc: Any) -> bool | None:
                if nth == 2 and exc[0] is None:  # the batch of four, after the held first write's
                    failures.append(nth)
                    error = OperationalError("COMMIT", {}, Exception("disk I/O error"))
                    manager.__exit__(type(error), error, None)
                    raise error
                return manager.__exit__(*exc)

        return Failing()

    monkeypatch.setattr(sequencer, "write_transaction", failing_second)
    writes = [_writer(log, _clarified("ocds-tptest-0001", n)) for n in range(5)]
    results = asyncio.run(_in_one_batch(log, writes[0], writes[1:]))
    assert failures == [2]
    assert all(isinstance(r, list) for r in results), results
    assert sorted(r[0].envelope.seq for r in results) == [1, 2, 3, 4, 5]
    assert _event_count(log) == count + 5  # each once


def test_a_cancelled_caller_leaves_its_event_committed_once_and_its_neighbours_answered(log: Log) -> None:
    record(log, [_published("ocds-tptest-0001")], now=at(0), signatures="optional", chain_id=CHAIN_ID)
    count = _event_count(log)

    async def scenario() -> list[Any]:
        with _held_first_batch(log.group) as (started, expect):
            expect(3)
            head = asyncio.ensure_future(_writer(log, _clarified("ocds-tptest-0001", 0))())
            while not started.is_set():
                await asyncio.sleep(0.005)
            tail = [asyncio.ensure_future(_writer(log, _clarified("ocds-tptest-0001", n))()) for n in (1, 2, 3)]
            await asyncio.sleep(0)  # the three are queued
            tail[1].cancel()
            return list(await asyncio.gather(head, *tail, return_exceptions=True))

    results = asyncio.run(scenario())
    assert isinstance(results[2], asyncio.CancelledError), results
    assert all(isinstance(results[i], list) for i in (0, 1, 3)), results
    deadline = time.monotonic() + QUEUED_WAIT
    while log.group._leading and time.monotonic() < deadline:  # the writer finishes the batch
        time.sleep(0.01)
    assert _event_count(log) == count + 4
    assert [e.seq for e in log.reader.tender_events("ocds-tptest-0001")] == [0, 1, 2, 3, 4]


def test_alone_and_after_close(log: Log) -> None:
    """With ``max_batch`` 1 a coroutine's write runs alone in a worker thread; after ``close``
    the group starts a new writer thread for the next batch."""
    alone = Log(engine=log.engine, origin=log.origin, group_commit=1)
    recorded = asyncio.run(_writer(alone, _published("ocds-tptest-0001"))())
    assert recorded[0].envelope.seq == 0
    assert (alone.group.batches, alone.group.members) == (0, 0)
    asyncio.run(_writer(log, _clarified("ocds-tptest-0001", 1))())
    log.group.close()
    again = asyncio.run(_writer(log, _clarified("ocds-tptest-0001", 2))())
    assert again[0].envelope.seq == 2
    assert log.group.batches >= 2
