"""The pool's liveness check (ledger.store.db._check_liveness) against a real PostgreSQL: no
round trip on an ordinary checkout, a ping when the server ended the connection (what a restart
does to every session) or after an idle time, and a working connection handed out either way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from ledger.store.db import open_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def counted(pg_url: str) -> Iterator[tuple[Engine, list[Any]]]:
    """An engine (one pooled connection at most) and the list of the pings it made."""
    engine = open_engine(pg_url, pool_size=1, ping_after_idle=0.5)
    pings: list[Any] = []
    ping = engine.dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    engine.dialect.do_ping = do_ping  # type: ignore[method-assign]
    try:
        yield engine, pings
    finally:
        engine.dispose()


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_an_ordinary_checkout_makes_no_round_trip(counted: tuple[Engine, list[Any]]) -> None:
    engine, pings = counted
    pid = _backend(engine)
    for _ in range(20):
        assert _backend(engine) == pid  # the same pooled connection each time
    assert pings == []


def test_a_connection_the_server_ended_is_replaced_before_use(counted: tuple[Engine, list[Any]], pg_url: str) -> None:
    engine, pings = counted
    pid = _backend(engine)
    other = open_engine(pg_url, pool_size=1)
    try:
        with other.connect() as conn:  # as a restart does to every session: FATAL, then closed
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
            # pg_terminate_backend only signals the backend: wait until it has ended (its FATAL
            # sent, its socket closed), as a restart's sessions have before the server is back;
            # a session ended after the check fails its one statement (db._check_liveness)
            deadline = time.monotonic() + 10
            alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            while conn.execute(alive, {"pid": pid}).scalar_one() and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        other.dispose()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the backend's goodbye reaches the socket
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # never fails: the dead connection is not handed out
            new = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        if new != pid:
            break
    assert new != pid
    assert len(pings) == 1  # one ping, of the connection the server had ended


def test_a_connection_idle_long_is_pinged(counted: tuple[Engine, list[Any]]) -> None:
    engine, pings = counted
    pid = _backend(engine)
    time.sleep(0.6)  # longer than ping_after_idle
    assert _backend(engine) == pid  # alive: pinged and kept
    assert len(pings) == 1
    assert _backend(engine) == pid  # just used: no ping
    assert len(pings) == 1
