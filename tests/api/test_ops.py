"""Operators' endpoints: liveness, readiness (database and chains, with a short timeout),
Prometheus metrics, and the JSON access log."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from anchoring import store
from api.app import create_app
from api.logs import JsonFormatter
from ledger.log import Log
from settings import ChainSettings
from tests.api.conftest import CHAIN, History, settings_for
from tests.conftest import ORIGIN, PG_ADMIN_URL

UNREACHABLE = ChainSettings(name="down", rpc_url="http://127.0.0.1:9", confirmations=1)


def test_healthz(client: TestClient) -> None:
    got = client.get("/healthz")
    assert (got.status_code, got.json()) == (200, {"status": "ok"})


def test_readyz_when_everything_answers(client: TestClient) -> None:
    got = client.get("/readyz")
    assert got.status_code == 200
    assert got.json() == {
        "status": "ready",
        "checks": [
            {"name": "database", "ok": True, "detail": None},
            {"name": "chain:dev", "ok": True, "detail": None},
            {"name": "capacity", "ok": True, "detail": None},
        ],
    }


@pytest.fixture
def silent_node() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_readyz_names_the_chains_that_do_not_answer(history: History, silent_node: str) -> None:
    silent = ChainSettings(name="silent", rpc_url=silent_node, confirmations=1)
    settings = settings_for(history.url, chains=[CHAIN, UNREACHABLE, silent], ready_timeout=1.5)
    with TestClient(create_app(settings, log=history.log)) as client:
        got = client.get("/readyz")
    assert got.status_code == 503
    assert got.headers["retry-after"] == "5"
    assert got.json() == {
        "status": "unavailable",
        "checks": [
            {"name": "database", "ok": True, "detail": None},
            {"name": "chain:dev", "ok": True, "detail": None},
            {"name": "chain:down", "ok": False, "detail": "unreachable (ConnectError)"},
            {"name": "chain:silent", "ok": False, "detail": "no answer within 1.5 s"},
            {"name": "capacity", "ok": True, "detail": None},
        ],
    }
    assert "127.0.0.1" not in got.text  # endpoint URLs may hold API keys: never echoed


@pytest.mark.postgres
def test_readyz_fails_and_reads_are_503_when_the_database_is_gone(pg_url: str) -> None:
    log = Log.open(pg_url, origin=ORIGIN)
    try:
        with TestClient(create_app(settings_for(pg_url), log=log)) as client:
            assert client.get("/readyz").status_code == 200
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{make_url(pg_url).database}" WITH (FORCE)'))
            admin.dispose()
            ready = client.get("/readyz")
            assert ready.status_code == 503
            checks = {c["name"]: c for c in ready.json()["checks"]}
            assert checks["database"]["ok"] is False
            assert checks["database"]["detail"] == "unavailable (OperationalError)"
            assert checks["chain:dev"]["ok"] is True
            read = client.get("/api/v1/checkpoint")
            assert read.status_code == 503
            assert read.json() == {"error": {"code": "database_unavailable", "message": "the database is unreachable"}}
            assert read.headers["retry-after"] == "5"
            scraped = client.get("/metrics")
            assert scraped.status_code == 200
            assert "tenderproof_database_up 0.0" in scraped.text
    finally:
        log.close()


def test_lifespan_opens_migrates_and_closes_the_database(sqlite_url: str) -> None:
    app = create_app(settings_for(sqlite_url))
    assert app.state.log is None
    with TestClient(app) as client:
        assert app.state.log is not None
        assert client.get("/readyz").status_code == 200
        assert client.get("/api/v1/checkpoint").json()["tree_size"] == 0
    assert app.state.log is None


def samples(body: str, name: str) -> dict[str, float]:
    out = {}
    for line in body.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_metrics_by_route_template_and_status_with_the_logs_figures(history: History) -> None:
    final = store.latest_final(history.log.engine, "dev")
    assert final is not None and final.block_timestamp is not None
    now = datetime.fromtimestamp(final.block_timestamp + 90, UTC)
    with TestClient(create_app(settings_for(history.url), log=history.log, now=lambda: now)) as client:
        client.get("/api/v1/tenders/ocds-abc123-late01/events")
        client.get("/api/v1/tenders/ocds-abc123-late01/events")
        client.get("/api/v1/tenders/ocds-abc123-nothere/events")
        client.get("/api/v1/proofs/inclusion", params={"index": "x"})
        client.get("/no/such/path/123")
        got = client.get("/metrics")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/plain; version=")
    body = got.text
    requests = samples(body, "tenderproof_http_requests_total")
    route = 'method="GET",route="/api/v1/tenders/{ocid}/events"'
    assert requests[f'tenderproof_http_requests_total{{{route},status="200"}}'] == 2
    assert requests[f'tenderproof_http_requests_total{{{route},status="404"}}'] == 1
    assert requests['tenderproof_http_requests_total{method="GET",route="/api/v1/proofs/inclusion",status="422"}'] == 1
    assert requests['tenderproof_http_requests_total{method="GET",route="<unmatched>",status="404"}'] == 1
    assert not any("nothere" in key or "/no/such" in key for key in requests)  # no raw paths as labels
    count = samples(body, "tenderproof_http_request_duration_seconds_count")
    assert count[f"tenderproof_http_request_duration_seconds_count{{{route}}}"] == 3
    assert samples(body, "tenderproof_log_tree_size") == {"tenderproof_log_tree_size": history.size}
    assert samples(body, "tenderproof_log_pending_entries") == {"tenderproof_log_pending_entries": 1}
    assert samples(body, "tenderproof_anchor_tree_size") == {
        'tenderproof_anchor_tree_size{chain="dev"}': history.second_anchor
    }
    assert samples(body, "tenderproof_anchor_age_seconds") == {'tenderproof_anchor_age_seconds{chain="dev"}': 90.0}
    assert samples(body, "tenderproof_database_up") == {"tenderproof_database_up": 1.0}


def test_access_log_is_json_without_credentials_or_bodies(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    secret = "tp_live_abcdef0123456789"
    with caplog.at_level(logging.INFO, logger="api.access"):
        client.get("/api/v1/checkpoint", headers={"Authorization": f"Bearer {secret}", "X-API-Key": secret})
        client.post("/api/v1/checkpoint", content=json.dumps({"key": secret}))
    records = [r for r in caplog.records if r.name == "api.access"]
    assert len(records) == 2
    lines = [json.loads(JsonFormatter().format(record)) for record in records]
    first = lines[0]
    assert set(first) == {"time", "level", "logger", "message", "method", "route", "status", "duration_ms", "client"}
    assert (first["method"], first["route"], first["status"], first["client"]) == (
        "GET",
        "/api/v1/checkpoint",
        200,
        "testclient",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert first["duration_ms"] > 0
    assert (lines[1]["method"], lines[1]["status"]) == ("POST", 405)
    assert secret not in caplog.text
    assert all(secret not in JsonFormatter().format(r) for r in records)


def test_a_log_line_is_the_json_of_its_record() -> None:
    """The formatter's one encoder writes what ``json.dumps(..., default=str)`` writes: key order,
    separators, non-ASCII escaped, what JSON cannot hold as its ``str``."""
    record = logging.LogRecord("api.access", logging.INFO, "", 0, "%s %s %d", ("POST", "/api/v1/tenders", 201), None)
    record.created = 1_765_000_000.1234
    moment = datetime(2026, 12, 7, tzinfo=UTC)
    record.fields = {"route": "/api/v1/tenders", "status": 201, "duration_ms": 1.5, "note": "año", "at": moment}
    expected = {
        "time": "2025-12-06T05:46:40.123+00:00",
        "level": "info",
        "logger": "api.access",
        "message": "POST /api/v1/tenders 201",
        "route": "/api/v1/tenders",
        "status": 201,
        "duration_ms": 1.5,
        "note": "año",
        "at": moment,
    }
    assert JsonFormatter().format(record) == json.dumps(expected, default=str)
    assert JsonFormatter().format(record).endswith('"note": "a\\u00f1o", "at": "2026-12-07 00:00:00+00:00"}')
