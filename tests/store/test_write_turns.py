"""SQLite writers of one process take the write lock in the order they asked for it
(``db.Turns``), instead of racing for it through SQLite's busy handler."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from ledger.store.db import Turns, open_engine, write_transaction

WAITERS = 6


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = open_engine(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE arrivals (n INTEGER NOT NULL)"))
    return engine


def _turns(engine: Engine) -> Turns:
    turns = engine.tenderproof_turns  # type: ignore[attr-defined]
    assert isinstance(turns, Turns)
    return turns


def _until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_sqlite_writers_take_the_lock_in_arrival_order(engine: Engine) -> None:
    turns = _turns(engine)
    release = threading.Event()

    def holder() -> None:
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO arrivals (n) VALUES (-1)"))
            release.wait()

    def writer(n: int) -> None:
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO arrivals (n) VALUES (:n)"), {"n": n})
            time.sleep(0.01)  # long enough for a late arrival to try to overtake

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    _until(lambda: _holding(engine))
    for n in range(WAITERS):
        thread = threading.Thread(target=writer, args=(n,))
        thread.start()
        threads.append(thread)
        _until(lambda n=n: turns.waiting == n + 1)  # type: ignore[misc]
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    with engine.connect() as conn:
        order = [row[0] for row in conn.execute(text("SELECT n FROM arrivals ORDER BY rowid"))]
    assert order == [-1, *range(WAITERS)]
    assert turns.waiting == 0


def _holding(engine: Engine) -> bool:
    """Whether another connection finds the database's write lock taken."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except Exception:
            return True
        conn.exec_driver_sql("ROLLBACK")
        conn.exec_driver_sql("PRAGMA busy_timeout=60000")
        return False


def test_a_failed_writer_hands_its_turn_on() -> None:
    turns = Turns()
    done: list[str] = []
    gate, holding = threading.Event(), threading.Event()

    def first() -> None:
        with pytest.raises(RuntimeError), turns.take():
            holding.set()
            gate.wait()
            raise RuntimeError("refused")

    def second() -> None:
        with turns.take():
            done.append("second")

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    _until(holding.is_set)
    b.start()
    _until(lambda: turns.waiting == 1)
    gate.set()
    a.join(timeout=30)
    b.join(timeout=30)
    assert done == ["second"]
    with turns.take():  # free again
        assert turns.waiting == 0


def test_a_thread_holding_its_turn_passes_through() -> None:
    turns = Turns()
    with turns.take(), turns.take():
        assert turns.waiting == 0
    other = threading.Thread(target=lambda: turns.take().__enter__())
    other.start()
    other.join(timeout=30)
    assert not other.is_alive()  # the turn was released by the outer block


def test_a_writer_gives_up_after_the_timeout_as_sqlite_would() -> None:
    turns = Turns(timeout=0.2)
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with turns.take():
            holding.set()
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(timeout=30)
    with pytest.raises(OperationalError, match="database is locked"), turns.take():
        pass
    assert turns.waiting == 0  # it left the queue
    release.set()
    thread.join(timeout=30)
    with turns.take():  # and the turn was not lost
        assert turns.waiting == 0
