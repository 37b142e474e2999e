"""The read-routing layer in the server (api/replicas.py) over a real PostgreSQL primary whose one
replica is down: every read is served by the primary, every answer carries a position, a bad
position header is refused naming it. Standbys that do answer: tests/load/test_replicas.py."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.replicas import POSITION_COOKIE, POSITION_HEADER, SERVED_BY_HEADER
from ledger.log import Log
from ledger.store.replicas import parse_position
from tests.api.conftest import ORIGIN, settings_for
from tests.cluster import free_port

pytestmark = pytest.mark.postgres


def test_a_replica_down_leaves_reads_on_the_primary_with_positions(pg_url: str) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    settings = settings_for(pg_url, database_replica_urls=[down], replica_check_interval=0.1)
    log = Log.open(pg_url, origin=ORIGIN)
    try:
        with TestClient(create_app(settings, log=log)) as client:
            time.sleep(0.3)  # a few checks: the replica does not answer
            assert client.app.state.replicas.replicas[0].problem.startswith("does not answer")  # type: ignore[attr-defined]
            first = client.get("/api/v1/checkpoint")
            assert first.status_code == 200 and first.headers[SERVED_BY_HEADER] == "primary"
            given = parse_position(first.headers[POSITION_HEADER])
            assert given > 0 and client.cookies[POSITION_COOKIE] == first.headers[POSITION_HEADER]
            # a position from the future is kept (never lowered), the read served by the primary
            ahead = client.get("/api/v1/checkpoint", headers={POSITION_HEADER: "FFFF/0"})
            assert ahead.status_code == 200 and ahead.headers[POSITION_HEADER] == "FFFF/0"
            # the ops paths are left alone
            assert SERVED_BY_HEADER not in client.get("/healthz").headers

            bad = client.get("/api/v1/checkpoint", headers={POSITION_HEADER: "yesterday"})
            assert bad.status_code == 422
            error = bad.json()["error"]
            assert error["field"] == f"header.{POSITION_HEADER}" and "'yesterday'" in error["message"]
            client.cookies.set(POSITION_COOKIE, "garbage")  # a browser's cookie: ignored, not refused
            assert client.get("/api/v1/checkpoint").status_code == 200
    finally:
        log.close()


def test_without_replicas_answers_carry_no_position(pg_url: str) -> None:
    log = Log.open(pg_url, origin=ORIGIN)
    try:
        with TestClient(create_app(settings_for(pg_url), log=log)) as client:
            answer = client.get("/api/v1/checkpoint")
            assert answer.status_code == 200
            assert POSITION_HEADER not in answer.headers and SERVED_BY_HEADER not in answer.headers
            assert "set-cookie" not in answer.headers
    finally:
        log.close()
