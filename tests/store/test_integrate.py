"""Integration: idempotent, batch-size independent, atomic under a fault at any statement,
and safe after a real SIGKILL or with several integrators at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from ledger.log import Log
from ledger.sequencer import Submission
from tests.conftest import ORIGIN, T0

from .helpers import check_log, integrating_while


def _fill(log: Log, n: int, start: int = 0) -> None:
    for chunk in range(start, start + n, 1000):
        stop = min(chunk + 1000, start + n)
        log.append_many(
            [
                Submission(ocid=f"ocds-abc123-{i % 50}", type="tender.amended", payload={"i": i})
                for i in range(chunk, stop)
            ],
            now=T0,
        )


def _state(log: Log) -> dict[str, Any]:
    with log.engine.connect() as conn:
        return {
            table: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}")))
            for table in ("log_entries", "tiles", "tree_heads", "pending")
        } | {"head": tuple(conn.execute(text("SELECT size, root FROM log_state")).one())}


def test_nothing_pending_keeps_the_head(log: Log) -> None:
    empty = log.integrate(now=T0)
    assert (empty.size, empty.root.hex()) == (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    _fill(log, 10)
    head = log.integrate(now=T0)
    assert head.size == 10
    assert log.integrate(now=T0) == head
    assert log.integrate_all(now=T0) == head
    check_log(log, expect_events=10)


@pytest.mark.parametrize("batch", [1, 7, 256, 1000])
def test_root_does_not_depend_on_batch_size(db_url: str, batch: int) -> None:
    log = Log.open(db_url, origin=ORIGIN)
    try:
        _fill(log, 600)
        head = log.integrate_all(now=T0, batch_size=batch)
        assert head.size == 600
        check_log(log, expect_events=600)
        # Same events, same order of ids: the reference root over ids is batch independent.
        assert head.root == log.reader.root_at(600)
    finally:
        log.close()


@contextmanager
def _fail_at_statement(engine: Engine, n: int) -> Iterator[list[str]]:
    """Make the n-th SQL statement from now on fail, as a crashed connection would."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)
        if len(seen) == n:
            raise RuntimeError(f"injected fault at statement {n}: {statement.split()[0]}")

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@pytest.mark.parametrize("fault_at", range(1, 12))
def test_fault_injected_at_each_statement(db_url: str, fault_at: int) -> None:
    log = Log.open(db_url, origin=ORIGIN)
    try:
        _fill(log, 300)
        log.integrate(now=T0, batch_size=250)
        _fill(log, 100, start=300)
        before = _state(log)
        with _fail_at_statement(log.engine, fault_at) as seen:
            try:
                log.integrate(now=T0)
                faulted = False
            except RuntimeError as exc:
                assert f"injected fault at statement {fault_at}" in str(exc)
                faulted = True
        if faulted:
            assert _state(log) == before, f"partial integration after a fault at statement {fault_at}: {seen[-1]}"
        else:
            assert len(seen) < fault_at  # the run had fewer statements than the fault point
        head = log.integrate_all(now=T0)
        assert head.size == 400
        check_log(log, expect_events=400)
    finally:
        log.close()


_KILLED_INTEGRATOR = """
import sys
from datetime import UTC, datetime
from ledger.log import Log
log = Log.open(sys.argv[1], origin=sys.argv[2], migrate=False)
print("ready", flush=True)
log.integrate_all(now=datetime.now(UTC), batch_size=500)
print("finished", flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_integration_then_resume(db_url: str) -> None:
    log = Log.open(db_url, origin=ORIGIN)
    try:
        _fill(log, 30_000)
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_INTEGRATOR, db_url, ORIGIN], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while log.reader.tree_head().size < 2_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        size = log.reader.tree_head().size
        assert child.returncode == -signal.SIGKILL
        assert 0 < size < 30_000, f"the kill should land mid-way, tree size was {size}"
        assert size % 500 == 0, "a kill must leave a whole number of committed batches"
        assert log.integrate_all(now=T0).size == 30_000
        check_log(log, expect_events=30_000)
    finally:
        log.close()


def test_concurrent_integrators_while_appending(log: Log) -> None:
    def append() -> None:
        for i in range(60):
            _fill(log, 25, start=i * 25)

    integrating_while(log, append, now=T0, integrators=4, batch_size=97)
    log.integrate_all(now=T0)
    check_log(log, expect_events=1500)
