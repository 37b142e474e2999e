"""Choosing a replica from what the health checks found (ledger/store/replicas.py), and the
positions that carry consistency. The checks themselves run against real standbys in
tests/load/test_replicas.py; here they are against a real primary and a server that is down."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from ledger.core.errors import InvalidArgumentError
from ledger.store.db import normalize_url
from ledger.store.replicas import (
    PositionProbe,
    Replica,
    Replicas,
    check,
    format_position,
    parse_position,
    position,
)
from tests.cluster import free_port


def replicas(count: int, *, max_lag: float) -> Replicas:
    engine = create_engine("sqlite://")
    return Replicas(
        primary=engine, replicas=[Replica(name=f"replica-{i}", engine=engine) for i in range(count)], max_lag=max_lag
    )


@pytest.mark.parametrize(
    ("text", "value"), [("0/0", 0), ("0/16B3748", 0x16B3748), ("16/B374D848", (0x16 << 32) | 0xB374D848)]
)
def test_positions_round_trip(text: str, value: int) -> None:
    assert parse_position(text) == value
    assert format_position(value) == text.upper()


@pytest.mark.parametrize("text", ["", "16B3748", "0/", "/1", "x/1", "1/2/3", "123456789/0", "0/-1"])
def test_a_malformed_position_is_refused_naming_it(text: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        parse_position(text)
    assert raised.value.field == "position" and repr(text) in str(raised.value)


def test_unchecked_replicas_serve_nothing() -> None:
    assert replicas(2, max_lag=5).pick() is None


def test_a_read_goes_only_where_its_position_was_replayed() -> None:
    found = replicas(2, max_lag=5)
    found.record(now=100.0, primary=500, replayed={"replica-0": 500, "replica-1": 300})
    assert all(found.pick(500).name == "replica-0" for _ in range(20))  # type: ignore[union-attr]
    assert {found.pick(300).name for _ in range(50)} == {"replica-0", "replica-1"}  # type: ignore[union-attr]
    assert found.pick(501) is None  # nobody has it: the primary


def test_lag_is_the_time_since_the_primary_first_had_what_the_replica_lacks() -> None:
    found = replicas(1, max_lag=5)
    found.record(now=100.0, primary=1000, replayed={"replica-0": 1000})
    found.record(now=101.0, primary=2000, replayed={"replica-0": 1000})  # stalled from t=101
    found.record(now=104.0, primary=3000, replayed={"replica-0": 1000})
    (replica,) = found.replicas
    assert replica.healthy and replica.lag == 3.0
    found.record(now=106.5, primary=3000, replayed={"replica-0": 1000})
    assert not replica.healthy and replica.lag == 5.5 and "5.5 s behind the primary" in str(replica.problem)
    assert found.pick() is None
    found.record(now=107.0, primary=3000, replayed={"replica-0": 2500})  # catching up: behind since t=104
    assert replica.healthy and replica.lag == 3.0
    found.record(now=108.0, primary=3000, replayed={"replica-0": 3000})
    assert replica.healthy and replica.lag == 0.0


def test_a_replica_that_fails_is_skipped_until_a_check_finds_it_well() -> None:
    found = replicas(1, max_lag=5)
    found.record(now=1.0, primary=10, replayed={"replica-0": 10})
    (replica,) = found.replicas
    found.skip(replica, "a read on it failed")
    assert found.pick() is None and replica.problem == "a read on it failed"
    found.record(now=2.0, primary=10, replayed={"replica-0": "does not answer: connection refused"})
    assert found.pick() is None and replica.problem == "does not answer: connection refused"
    found.record(now=3.0, primary=10, replayed={"replica-0": 10})
    assert found.pick() is replica


@pytest.mark.postgres
def test_check_against_a_primary_and_a_replica_that_is_down(pg_url: str) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    primary = create_engine(normalize_url(pg_url))
    found = Replicas.open(primary, [down, pg_url])
    try:
        check(found, now=1.0)
        dead, not_standby = found.replicas
        assert not dead.healthy and str(dead.problem).startswith("does not answer")
        # a primary listed as a replica (a promoted standby, say) is not used for reads
        assert not not_standby.healthy and "not a standby" in str(not_standby.problem)
        assert (position(primary, replica=False) or 0) > 0
        assert found.pick() is None
    finally:
        found.close()
        primary.dispose()


def test_a_probe_keeps_one_connection_and_replaces_one_the_server_ended(pg_url: str) -> None:
    engine = create_engine(normalize_url(pg_url), pool_pre_ping=True)
    probe = PositionProbe(engine, replica=False)
    try:
        first = probe()
        pid = probe._conn.driver_connection.info.backend_pid
        assert first is not None and first > 0
        with engine.connect() as conn:  # something is written: the position moves on
            conn.execute(text("CREATE TEMP TABLE probe_moves (x int)"))
            conn.execute(text("INSERT INTO probe_moves VALUES (1)"))
            conn.commit()
        second = probe()
        assert second is not None and second > first
        assert probe._conn.driver_connection.info.backend_pid == pid  # the same connection, no checkout
        with engine.connect() as conn:  # the server ends the probe's connection (a restart, say)
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        third = probe()
        assert third is not None and third >= second
        assert probe._conn.driver_connection.info.backend_pid != pid
    finally:
        probe.close()
        engine.dispose()
    assert probe._conn is None


def test_a_probe_of_a_server_that_is_down_raises(pg_url: str) -> None:
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres")
    try:
        with pytest.raises(SQLAlchemyError):
            PositionProbe(engine, replica=True)()
        assert PositionProbe(create_engine("sqlite://"), replica=False)() is None  # not PostgreSQL: no position
    finally:
        engine.dispose()


def test_replicas_must_be_postgresql() -> None:
    with pytest.raises(InvalidArgumentError, match="entry 0: replicas must be PostgreSQL"):
        Replicas.open(create_engine("sqlite://"), ["sqlite:///x.db"])
