"""Integration: idempotent, batch-size independent, atomic under a fault at any statement,
and safe after a real SIGKILL or with several integrators at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.core.errors import InvalidArgumentError
from ledger.log import Log
from ledger.store.reader import TreeHead
from ledger.store.schema import tree_heads
from ledger.submission import Submission
from tests.conftest import ORIGIN, PG_ADMIN_URL, T0
from tests.pg import scratch_database
from tests.recording import append_many

from .helpers import EMPTY_ROOT, InjectedFault, check_log, in_background, snapshot, statements

STATE_TABLES = ("log_entries", "tiles", "tree_heads", "pending", "log_state", "events", "tenders")


def _fill(log: Log, n: int, start: int = 0) -> None:
    """Append events ``start .. start + n - 1`` (deterministic bytes: same input, same envelopes;
    so version 1, whose payload hash is not salted)."""
    for chunk in range(start, start + n, 2000):
        stop = min(chunk + 2000, start + n)
        append_many(
            log,
            [
                Submission(ocid=f"ocds-abc123-{i % 50:02d}", type="tender.amended", payload={"i": i}, version=1)
                for i in range(chunk, stop)
            ],
            now=T0,
        )


def _head_rows(log: Log) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tree_heads)).scalar_one())


def test_nothing_pending_keeps_the_head(log: Log) -> None:
    assert log.integrate(now=T0) == TreeHead(0, EMPTY_ROOT)
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert log.integrate_all(now=T0) == TreeHead(0, EMPTY_ROOT)
    assert _head_rows(log) == 1
    _fill(log, 10)
    head = log.integrate(now=T0)
    assert head.size == 10
    before = snapshot(log.engine)
    # Idempotent: nothing pending, nothing written (no new tree head row either), same head back.
    assert log.integrate(now=T0) == head
    assert log.integrate(now=T0, batch_size=1) == head
    assert log.integrate_all(now=T0) == head
    assert snapshot(log.engine) == before
    assert _head_rows(log) == 2
    check_log(log, expect_events=10)


def test_batch_size_must_be_positive(log: Log) -> None:
    _fill(log, 3)
    before = snapshot(log.engine)
    for bad in (0, -1):
        with pytest.raises(InvalidArgumentError) as err:
            log.integrate(now=T0, batch_size=bad)
        assert (err.value.field, err.value.reason) == ("batch_size", f"must be >= 1, got {bad}")
    assert snapshot(log.engine) == before


@contextmanager
def _fresh_urls(engine_name: str, tmp_path: Path, n: int) -> Iterator[list[str]]:
    if engine_name == "sqlite":
        yield [f"sqlite:///{tmp_path / f'batch{i}.sqlite3'}" for i in range(n)]
        return
    with ExitStack() as stack:
        yield [stack.enter_context(scratch_database(PG_ADMIN_URL)) for _ in range(n)]


BATCHES = (1, 7, 256, 1000)


@pytest.mark.parametrize("engine_name", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_root_and_tiles_do_not_depend_on_batch_size(engine_name: str, tmp_path: Path) -> None:
    """The same 700 events integrated 1, 7, 256 and 1000 at a time: same root, same tiles, byte for byte."""
    n = 700
    results = {}
    with _fresh_urls(engine_name, tmp_path, len(BATCHES)) as urls:
        for batch, url in zip(BATCHES, urls, strict=True):
            log = Log.open(url, origin=ORIGIN)
            try:
                _fill(log, n)
                head = log.integrate_all(now=T0, batch_size=batch)
                facts = check_log(log, expect_events=n)
                # One committed head per batch: sizes batch, 2*batch, ..., n.
                assert facts.head_sizes == [0, *range(batch, n, batch), n]
                results[batch] = (head, snapshot(log.engine, ("tiles", "log_entries")), facts.leaf_data)
            finally:
                log.close()
    heads = {batch: head for batch, (head, _, _) in results.items()}
    assert len(set(heads.values())) == 1, heads
    assert len({repr(stored) for _, stored, _ in results.values()}) == 1, "tiles or entries differ by batch size"
    assert len({tuple(data) for _, _, data in results.values()}) == 1


def _fault_scenario(log: Log) -> None:
    """300 entries integrated, 300 pending: the next integration updates two tiles and creates one."""
    _fill(log, 300)
    assert log.integrate(now=T0, batch_size=300).size == 300
    _fill(log, 300, start=300)


def test_a_fault_at_any_statement_leaves_the_log_as_it_was(log: Log) -> None:
    """Fail the 1st, 2nd, ... statement of one integrate call, then its commit: each time the head,
    the queue, the entries and the tiles are exactly as before; then a clean run gives the right root."""
    _fault_scenario(log)
    before = snapshot(log.engine, STATE_TABLES)
    fault_at = 0
    while True:
        fault_at += 1
        with statements(log.engine, fail_at=fault_at) as seen:
            try:
                log.integrate(now=T0)
            except InjectedFault as exc:
                assert str(exc).startswith(f"injected fault at statement {fault_at}:")
                assert snapshot(log.engine, STATE_TABLES) == before, (
                    f"partial integration after a fault at {seen[-1]!r}"
                )
                continue
        break
    # The loop ended with a clean run: the faults covered each of its statements.
    kinds = [" ".join(s.split()[:3]) for s in seen]
    assert len(kinds) == fault_at - 1
    for wanted in (
        "INSERT INTO log_entries",
        "DELETE FROM pending",
        "UPDATE tiles SET",
        "INSERT INTO tiles",
        "INSERT INTO tree_heads",
        "UPDATE log_state SET",
    ):
        assert wanted in kinds, f"the scenario never ran {wanted!r}: {kinds}"
    facts = check_log(log, expect_events=600)
    assert facts.head_sizes == [0, 300, 600]


def test_a_fault_at_commit_leaves_the_log_as_it_was(log: Log) -> None:
    _fault_scenario(log)
    before = snapshot(log.engine, STATE_TABLES)
    with statements(log.engine, fail_commit=True), pytest.raises(InjectedFault, match="at commit"):
        log.integrate(now=T0)
    assert snapshot(log.engine, STATE_TABLES) == before
    assert log.integrate(now=T0).size == 600
    check_log(log, expect_events=600)


_KILLED_INTEGRATOR = """
import sys
from datetime import datetime
from ledger.log import Log
log = Log.open(sys.argv[1], origin=sys.argv[2], migrate=False)
print("ready", flush=True)
log.integrate_all(now=datetime.fromisoformat(sys.argv[3]), batch_size=500)
print("finished", flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_integration_then_resume(db_url: str) -> None:
    total, batch = 30_000, 500
    log = Log.open(db_url, origin=ORIGIN)
    try:
        _fill(log, total)
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_INTEGRATOR, db_url, ORIGIN, T0.isoformat()],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 120
            while log.reader.tree_head().size < 4 * batch and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait()
        assert child.returncode == -signal.SIGKILL
        size = log.reader.tree_head().size
        assert 4 * batch <= size < total, f"the kill should land mid-way, tree size was {size}"
        # What the kill left: whole batches only, and the queue holds exactly the rest.
        facts_before = snapshot(log.engine, ("tree_heads", "log_entries"))
        sizes = [row[0] for row in facts_before["tree_heads"]]
        assert all(s % batch == 0 for s in sizes) and max(sizes) == size
        assert len(facts_before["log_entries"]) == size
        assert log.reader.pending_count() == total - size
        # Resume: the log finishes as if nothing had happened.
        assert log.integrate_all(now=T0, batch_size=batch).size == total
        facts = check_log(log, expect_events=total)
        assert facts.head_sizes == list(range(0, total + 1, batch))
    finally:
        log.close()


def test_concurrent_integrators_while_appending(log: Log) -> None:
    def append() -> None:
        for i in range(60):
            _fill(log, 25, start=i * 25)

    _, done = in_background(log, append, now=T0, integrators=4, readers=1, batch_size=97)
    # The background integrators integrated everything, several times, and readers verified proofs.
    assert done.integrations > 4 and len(done.sizes - {0}) >= 2, done
    assert done.proofs_checked > 0
    if log.engine.dialect.name == "postgresql":  # row locks queue fairly: integration overlaps appends
        assert done.sizes_during_work - {0}, done
    assert log.integrate_all(now=T0, batch_size=97).size == 1500
    facts = check_log(log, expect_events=1500)
    # Every head an integrator returned is one the log recorded (and check_log proved it is a prefix root).
    assert done.sizes <= set(facts.head_sizes)
