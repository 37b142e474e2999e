"""Many writers, one log: chains never fork, indices stay dense, the root stays right.

8 threads append 500 events each, one by one, to 20 shared tenders while another
thread integrates and a reader verifies proofs at the moving head; on PostgreSQL,
2 processes do the same at once.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from ledger.core.errors import ConflictError
from ledger.log import Log
from ledger.submission import Submission
from tests.conftest import ORIGIN, T0
from tests.recording import append, append_many

from .helpers import check_log, in_background

THREADS = 8
PER_THREAD = 500
TENDERS = 20

#: what a writer saw for each append: (event_id, ocid, seq, leaf hash hex, worker, i)
Seen = tuple[int, str, int, str, str, int]


def _ocid(worker: str, i: int) -> str:
    return f"ocds-abc123-{(i * 7 + sum(map(ord, worker))) % TENDERS:03d}"


def _writer(log: Log, worker: str) -> list[Seen]:
    seen: list[Seen] = []
    for i in range(PER_THREAD):
        ocid = _ocid(worker, i)
        recorded = append(log, Submission(ocid=ocid, type="tender.amended", payload={"worker": worker, "i": i}), now=T0)
        env = recorded.envelope
        seen.append((recorded.event_id, ocid, env.seq, recorded.leaf_hash.hex(), worker, i))
        if i % 50 == 0:
            # Committed before append returned: any other connection sees the tender at least this far.
            assert log.reader.tender(ocid).event_count > env.seq
    return seen


def _run_writers(log: Log, prefix: str) -> list[Seen]:
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda n: _writer(log, f"{prefix}-{n}"), range(THREADS)))
    return [s for r in results for s in r]


def _check_writers_saw_the_log(log: Log, seen: list[Seen], workers: list[str]) -> None:
    """Each append happened exactly once, where its caller was told, in each caller's program order."""
    stored = {e.event_id: e for ocid in {s[1] for s in seen} for e in log.reader.tender_events(ocid)}
    assert len(stored) == len(seen) == len({s[0] for s in seen})
    payloads = set()
    for event_id, ocid, seq, leaf_hex, worker, i in seen:
        event = stored[event_id]
        assert (event.ocid, event.seq, event.leaf_hash.hex()) == (ocid, seq, leaf_hex)
        assert json.loads(event.payload) == {"worker": worker, "i": i}
        assert event.index is not None
        payloads.add((worker, i))
    assert payloads == {(w, i) for w in workers for i in range(PER_THREAD)}
    # A writer's later append to a tender comes later in the tender's chain.
    by_writer: dict[tuple[str, str], list[int]] = defaultdict(list)
    for _, ocid, seq, _, worker, _ in sorted(seen, key=lambda s: (s[4], s[5])):
        by_writer[(worker, ocid)].append(seq)
    for key, seqs in by_writer.items():
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), key


@pytest.mark.slow
def test_threads_on_one_log(log: Log) -> None:
    seen, done = in_background(log, lambda: _run_writers(log, "t"), now=T0, readers=1)
    assert done.integrations > 1 and done.proofs_checked > 0
    if log.engine.dialect.name == "postgresql":
        assert done.sizes_during_work - {0}, "integration never ran while appends did"
    log.integrate_all(now=T0)
    facts = check_log(log, expect_events=THREADS * PER_THREAD)
    assert facts.size == THREADS * PER_THREAD
    assert len(facts.per_tender) == TENDERS
    assert sum(facts.per_tender.values()) == THREADS * PER_THREAD
    _check_writers_saw_the_log(log, seen, [f"t-{n}" for n in range(THREADS)])


def _process_main(url: str, prefix: str) -> list[Seen]:
    log = Log.open(url, origin=ORIGIN, migrate=False)
    try:
        return _run_writers(log, prefix)
    finally:
        log.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_and_threads_on_postgresql(pg_url: str) -> None:
    log = Log.open(pg_url, origin=ORIGIN)
    try:
        context = multiprocessing.get_context("spawn")

        def two_processes() -> list[Seen]:
            with context.Pool(2) as pool:
                results = pool.starmap(_process_main, [(pg_url, "p0"), (pg_url, "p1")])
            return [s for r in results for s in r]

        seen, done = in_background(log, two_processes, now=T0, readers=1)
        assert done.sizes_during_work - {0}, "integration never ran while appends did"
        assert done.proofs_checked > 0
        log.integrate_all(now=T0)
        total = 2 * THREADS * PER_THREAD
        facts = check_log(log, expect_events=total)
        assert len(facts.per_tender) == TENDERS
        _check_writers_saw_the_log(log, seen, [f"p{p}-{n}" for p in range(2) for n in range(THREADS)])
    finally:
        log.close()


def test_stated_prev_lets_exactly_one_racer_win(log: Log) -> None:
    """Writers racing on the same head with ``prev`` set: one succeeds per round, the rest conflict."""
    ocid, racers, rounds = "ocds-abc123-race", 6, 15
    head: str | None = None
    barrier = threading.Barrier(racers, timeout=120)

    def race(n: int, expected: str | None) -> str | None:
        barrier.wait()
        try:
            got = append(log, Submission(ocid=ocid, type="tender.amended", payload={"racer": n}, prev=expected), now=T0)
        except ConflictError as exc:
            assert exc.field == "prev"
            return None
        except BaseException:
            barrier.abort()  # release the other racers instead of leaving them waiting
            raise
        return got.leaf_hash.hex()

    with ThreadPoolExecutor(racers) as pool:
        for _ in range(rounds):
            winners = [w for w in pool.map(lambda n, h=head: race(n, h), range(racers)) if w is not None]
            assert len(winners) == 1, f"{len(winners)} racers won the same head"
            head = winners[0]
    tender = log.reader.tender(ocid)
    assert (tender.event_count, tender.head_hash) == (rounds, head)
    log.integrate_all(now=T0)
    check_log(log, expect_events=rounds)


def test_append_many_over_overlapping_tenders(log: Log) -> None:
    """Batches touching several tenders, new and old, in random order: no deadlock, no fork."""
    tenders = [f"ocds-abc123-m{i:02d}" for i in range(30)]

    def writer(seed: int) -> int:
        rng = random.Random(seed)
        written = 0
        for b in range(40):
            picks = [rng.choice(tenders) for _ in range(rng.randint(1, 8))]
            append_many(
                log,
                [
                    Submission(ocid=o, type="tender.amended", payload={"w": seed, "b": b, "k": k})
                    for k, o in enumerate(picks)
                ],
                now=T0,
            )
            written += len(picks)
        return written

    def run() -> int:
        with ThreadPoolExecutor(6) as pool:
            return sum(pool.map(writer, range(6)))

    written, _ = in_background(log, run, now=T0, batch_size=50)
    assert log.integrate_all(now=T0).size == written
    facts = check_log(log, expect_events=written)
    assert set(facts.per_tender) <= set(tenders) and len(facts.per_tender) > 20


def test_concurrent_batches_creating_the_same_new_tenders(log: Log) -> None:
    """Each round, every writer creates the same new tenders in its own order (the lock order
    must not follow the caller's order, or PostgreSQL finds a deadlock)."""
    writers, rounds, width = 4, 12, 6
    barrier = threading.Barrier(writers, timeout=120)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for r in range(rounds):
                ocids = [f"ocds-abc123-r{r:02d}-{k}" for k in range(width)]
                rng.shuffle(ocids)
                barrier.wait()
                batch = [Submission(ocid=o, type="tender.planned", payload={"w": seed}) for o in ocids]
                append_many(log, batch, now=T0)
        except BaseException:
            barrier.abort()  # release the other writers instead of leaving them waiting
            raise

    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    assert log.integrate_all(now=T0).size == writers * rounds * width
    facts = check_log(log, expect_events=writers * rounds * width)
    assert set(facts.per_tender.values()) == {writers}
