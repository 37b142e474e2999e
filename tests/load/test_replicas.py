"""Reads on PostgreSQL hot standbys, and failing over to one (docs/operations.md, Read replicas).

Real processes only: a private primary cluster and hot standbys cloned from it with
``pg_basebackup -R`` (tests/cluster.py), ``tenderproof serve --workers 2`` reading from the
standbys, httpx clients that keep the server's cookies the way a browser does. Lag is made with
``pg_wal_replay_pause()`` on a standby; failure with ``pg_ctl stop -m immediate``; failover with
``pg_ctl promote``, as the documented procedure says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from api.replicas import POSITION_COOKIE, POSITION_HEADER, SERVED_BY_HEADER
from ledger.log import Log
from ledger.store.db import normalize_url
from tests.cluster import PrivatePostgres, clarify, create_key, private_postgres, publish_tender, serve_api

pytestmark = [pytest.mark.slow, pytest.mark.load]

ORIGIN = "tenderproof.test/replicas"


@dataclass
class Deployment:
    primary: PrivatePostgres
    standbys: list[PrivatePostgres]
    base: str
    key: str


def sql(url: str, statement: str) -> object:
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            result = conn.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def until(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


@contextmanager
def standby_of(primary: PrivatePostgres) -> Iterator[PrivatePostgres]:
    standby = PrivatePostgres()
    try:
        standby.clone_standby(primary)
        standby.start()
        yield standby
    finally:
        standby.stop()


@contextmanager
def deployment(tmp_path: Path, *, standbys: int, max_lag: float) -> Iterator[Deployment]:
    """A primary with ``standbys`` hot standbys and ``tenderproof serve --workers 2`` on them."""
    with ExitStack() as stack:
        primary = stack.enter_context(private_postgres())
        key = create_key(primary.url, origin=ORIGIN, name="officer")  # migrates the primary too
        clones = [stack.enter_context(standby_of(primary)) for _ in range(standbys)]
        env = {
            "TENDERPROOF_DATABASE_REPLICA_URLS": json.dumps([clone.url for clone in clones]),
            "TENDERPROOF_REPLICA_MAX_LAG": str(max_lag),
            "TENDERPROOF_REPLICA_CHECK_INTERVAL": "0.2",
            "TENDERPROOF_RATE_LIMIT": "off",
        }
        server = stack.enter_context(
            serve_api(primary.url, origin=ORIGIN, workers=2, log_file=tmp_path / "serve.log", env=env)
        )
        yield Deployment(primary=primary, standbys=clones, base=server.base, key=key)


def officer(dep: Deployment) -> httpx.Client:
    """An officer's client: keeps the server's cookies (the position among them), as a browser does."""
    return httpx.Client(base_url=dep.base, headers={"Authorization": f"Bearer {dep.key}"}, timeout=30)


def event_count(answer: httpx.Response) -> int:
    assert answer.status_code == 200, answer.text
    return len(answer.json()["events"])


def served_by(base: str, path: str) -> str:
    """Which database served a client without a position (a fresh client each time)."""
    answer = httpx.get(base + path, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.headers[SERVED_BY_HEADER]


def test_standbys_serve_reads_own_writes_are_seen_and_time_never_goes_back(tmp_path: Path) -> None:
    with deployment(tmp_path, standbys=2, max_lag=120.0) as dep:
        until("the standbys serve reads", lambda: served_by(dep.base, "/api/v1/checkpoint").startswith("replica"))
        with officer(dep) as client:
            # Read-your-writes, standbys replaying: every write is in the officer's next read.
            publish_tender(client, "ocds-tp0dev-r1")
            for n in range(10):
                written = clarify(client, "ocds-tp0dev-r1", n)
                assert POSITION_HEADER in written.headers and POSITION_COOKIE in client.cookies
                assert event_count(client.get("/api/v1/tenders/ocds-tp0dev-r1/events")) == n + 2

            # the position does not tie the officer to the primary: once replayed, standbys serve them
            until("the officer is served by a standby again", lambda: client.get(
                "/api/v1/tenders/ocds-tp0dev-r1/events"
            ).headers[SERVED_BY_HEADER].startswith("replica"))  # fmt: skip

            # replica-0 stops replaying; the officer's next write is not on it
            sql(dep.standbys[0].url, "SELECT pg_wal_replay_pause()")
            stalled = int(str(sql(dep.standbys[0].url, "SELECT pg_last_wal_replay_lsn() - '0/0'")))
            clarify(client, "ocds-tp0dev-r1", 10)
            for _ in range(10):
                mine = client.get("/api/v1/tenders/ocds-tp0dev-r1/events")
                assert event_count(mine) == 12 and mine.headers[SERVED_BY_HEADER] != "replica-0"
            # a client without a position may be served by the stalled standby (within the lag
            # bound), and then sees what it holds, nothing newer: the header tells the truth
            seen = {}
            for _ in range(30):
                answer = httpx.get(f"{dep.base}/api/v1/tenders/ocds-tp0dev-r1/events", timeout=30)
                seen[answer.headers[SERVED_BY_HEADER]] = event_count(answer)
            assert seen.get("replica-0", 11) == 11 and seen.get("primary", 12) == 12, seen
            assert "replica-0" in seen, seen  # the hazard the positions guard against is real

            # The log grows (integrated on the primary): a client that saw the new checkpoint
            # never sees an older one again, though replica-0 still serves the old one.
            log = Log.open(dep.primary.url, origin=ORIGIN)
            try:
                size = log.integrate_all(now=datetime.now(UTC)).size
            finally:
                log.close()
            assert size == 12
            until(
                "replica-1 replays the integration",
                lambda: (
                    (a := httpx.get(f"{dep.base}/api/v1/checkpoint", timeout=30)).headers[SERVED_BY_HEADER]
                    == "replica-1"
                    and a.json()["tree_size"] == size
                ),
            )
            # without positions, fresh clients see the log go back and forth
            fresh = {httpx.get(f"{dep.base}/api/v1/checkpoint", timeout=30).json()["tree_size"] for _ in range(40)}
            assert fresh == {0, size}, fresh
            # with them (the cookie), a client that was given size 12 is never given 0 again
            sizes = []
            with httpx.Client(base_url=dep.base, timeout=30) as reader:
                for _ in range(40):
                    answer = reader.get("/api/v1/checkpoint")
                    assert answer.status_code == 200, answer.text
                    sizes.append(answer.json()["tree_size"])
            assert size in sizes, sizes
            assert all(s == size for s in sizes[sizes.index(size) :]), sizes
            assert int(str(sql(dep.standbys[0].url, "SELECT pg_last_wal_replay_lsn() - '0/0'"))) == stalled

            # replica-0 down: reads go on (replica-1, the primary), no error
            dep.standbys[0].halt()
            for _ in range(20):
                assert httpx.get(f"{dep.base}/api/v1/tenders/ocds-tp0dev-r1", timeout=30).status_code == 200
            until("replica-0 is skipped", lambda: all(served_by(dep.base, "/api/v1/checkpoint") != "replica-0"
                                                       for _ in range(10)))  # fmt: skip


def test_a_lagging_standby_is_skipped_and_the_primary_fails_over(tmp_path: Path) -> None:
    with deployment(tmp_path, standbys=1, max_lag=1.0) as dep:
        standby = dep.standbys[0]
        until("the standby serves reads", lambda: served_by(dep.base, "/api/v1/checkpoint") == "replica-0")
        with officer(dep) as client:
            publish_tender(client, "ocds-tp0dev-f1")
            # the tender replayed on the standby first (a pause before that leaves a standby within
            # its lag bound that rightly answers 404 for it, as any reader without a position may see)
            until("the standby holds the tender", lambda: sql(
                standby.url, "SELECT count(*) FROM tenders WHERE ocid = 'ocds-tp0dev-f1'"
            ) == 1)  # fmt: skip
            # lagging beyond the bound: skipped, every reader served by the primary
            sql(standby.url, "SELECT pg_wal_replay_pause()")
            clarify(client, "ocds-tp0dev-f1", 1)
            until("the lagging standby is skipped", lambda: all(
                served_by(dep.base, "/api/v1/tenders/ocds-tp0dev-f1/events") == "primary" for _ in range(10)
            ))  # fmt: skip
            sql(standby.url, "SELECT pg_wal_replay_resume()")
            until("the standby serves again", lambda: served_by(dep.base, "/api/v1/checkpoint") == "replica-0")

            # Failover, as docs/operations.md says: synchronous replication on, so that every
            # acknowledged write is on the standby; the primary lost; the standby promoted; the
            # API pointed at it.
            sql(dep.primary.url, "ALTER SYSTEM SET synchronous_standby_names = '*'")
            sql(dep.primary.url, "SELECT pg_reload_conf()")
            until("the standby is synchronous", lambda: sql(
                dep.primary.url, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
            ) == 1)  # fmt: skip
            acknowledged = 2
            for n in range(2, 12):
                clarify(client, "ocds-tp0dev-f1", n)
                acknowledged += 1
        dep.primary.halt()
        standby.promote()
        until("the promoted standby accepts writes", lambda: sql(standby.url, "SELECT pg_is_in_recovery()") is False)
        env = {"TENDERPROOF_RATE_LIMIT": "off"}
        with (
            serve_api(standby.url, origin=ORIGIN, workers=2, log_file=tmp_path / "promoted.log", env=env) as server,
            httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {dep.key}"}, timeout=30) as client,
        ):
            assert event_count(client.get("/api/v1/tenders/ocds-tp0dev-f1/events")) == acknowledged
            clarify(client, "ocds-tp0dev-f1", 99)
            assert event_count(client.get("/api/v1/tenders/ocds-tp0dev-f1/events")) == acknowledged + 1
