"""Many writers, one log: chains never fork, indices stay dense, the root stays right.

8 threads append 500 events each, one by one, to 20 shared tenders while another
thread integrates; on PostgreSQL, 2 processes do the same at once.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest

from ledger.log import Log
from ledger.sequencer import Submission
from tests.conftest import ORIGIN, T0

from .helpers import check_log, integrating_while

THREADS = 8
PER_THREAD = 500
TENDERS = 20


def _writer(log: Log, worker: str) -> int:
    for i in range(PER_THREAD):
        ocid = f"ocds-abc123-{(i * 7 + sum(map(ord, worker))) % TENDERS:03d}"
        log.append(Submission(ocid=ocid, type="tender.amended", payload={"worker": worker, "i": i}), now=T0)
    return PER_THREAD


def _run_writers(log: Log, prefix: str) -> int:
    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(lambda n: _writer(log, f"{prefix}-{n}"), range(THREADS)))


@pytest.mark.slow
def test_threads_on_one_log(log: Log) -> None:
    written = integrating_while(log, lambda: _run_writers(log, "t"), now=T0)
    log.integrate_all(now=T0)
    per_tender = check_log(log, expect_events=THREADS * PER_THREAD)
    assert written == THREADS * PER_THREAD
    assert len(per_tender) == TENDERS


def _process_main(url: str, prefix: str) -> int:
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

        def two_processes() -> int:
            with context.Pool(2) as pool:
                return sum(pool.starmap(_process_main, [(pg_url, "p0"), (pg_url, "p1")]))

        written = integrating_while(log, two_processes, now=T0)
        log.integrate_all(now=T0)
        assert written == 2 * THREADS * PER_THREAD
        per_tender = check_log(log, expect_events=2 * THREADS * PER_THREAD)
        assert len(per_tender) == TENDERS
    finally:
        log.close()
