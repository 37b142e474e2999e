"""Red team, slow clients (issue 16), against a real `tenderproof serve` process: 70 connections
that announce a 100,000-byte body and send nothing. Before, they held all 64 concurrency slots
and every other request got 503 while /healthz said 200. Now the concurrency limit applies once
a body has arrived, one client has at most `max_client_requests` requests in progress, a body
has `body_timeout` seconds to arrive, and /readyz says when the process is overloaded."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.servers import cli_server

pytestmark = pytest.mark.slow

SLOW = 70
PER_CLIENT = 16
BODY_TIMEOUT = 3.0
HEADER_TIMEOUT = 2.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[httpx.Client]:
    env = {
        "TENDERPROOF_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "TENDERPROOF_MAX_CLIENT_REQUESTS": str(PER_CLIENT),
        "TENDERPROOF_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    }
    with cli_server(
        f"sqlite:///{tmp_path / 'tenderproof.sqlite3'}", "--no-anchoring", log_file=tmp_path / "serve.log", env=env
    ) as client:
        yield client


def _status(conn: socket.socket) -> int | None:
    """The status of the answer waiting on ``conn``, or None if none came within its timeout."""
    try:
        head = conn.recv(65536)
    except TimeoutError:
        return None
    return int(head.split(b" ", 2)[1]) if head else None


def test_slow_bodies_do_not_starve_other_clients(server: httpx.Client) -> None:
    host, port = server.base_url.host, server.base_url.port
    slow = []
    for _ in range(SLOW):
        conn = socket.create_connection((host, port), timeout=0.5, source_address=("127.0.0.1", 0))
        conn.sendall(
            b"POST /api/v1/tenders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        slow.append(conn)
    try:
        time.sleep(0.5)
        # Another client is served at once, API and explorer, and the process says it is ready.
        other = httpx.Client(
            base_url=str(server.base_url), transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10
        )
        with other:
            for path in ("/api/v1/checkpoint", "/api/v1/tenders", "/", "/tenders"):
                assert other.get(path).status_code == 200, path
            ready = other.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert {"name": "capacity", "ok": True, "detail": None} in ready.json()["checks"]
        # The slow client itself: beyond its share, refused at once (429) ...
        for conn in slow:
            conn.settimeout(0.05)
        statuses = [_status(conn) for conn in slow]
        assert statuses.count(429) == SLOW - PER_CLIENT, statuses
        assert statuses.count(None) == PER_CLIENT  # ... the others wait for their bodies
        # ... which have BODY_TIMEOUT seconds to arrive: then 408, and the connection is closed.
        time.sleep(BODY_TIMEOUT)
        waiting = [conn for conn, status in zip(slow, statuses, strict=True) if status is None]
        for conn in waiting:
            conn.settimeout(5)
        late = [_status(conn) for conn in waiting]
        assert late == [408] * PER_CLIENT, late
    finally:
        for conn in slow:
            conn.close()
    assert server.get("/api/v1/checkpoint").status_code == 200


def test_a_body_sent_in_time_is_served(server: httpx.Client) -> None:
    answer = server.post("/api/v1/tenders", content=json.dumps({"x": 1}), headers={"Content-Type": "application/json"})
    assert answer.status_code in (401, 422)  # not 408: read in full, then judged (no key here)


def test_slowloris_heads_are_cut_off_and_others_are_served(server: httpx.Client) -> None:
    """Connections whose head trickles in (a byte now and then, never the blank line): uvicorn
    alone would wait for ever; `serve` answers 408 after `header_timeout` and closes them, and
    serves everyone else meanwhile, on a fresh connection or a kept-alive one."""
    host, port = server.base_url.host, server.base_url.port
    slow = [socket.create_connection((host, port), timeout=0.5) for _ in range(40)]
    kept = socket.create_connection((host, port), timeout=5)  # a kept-alive connection, then slow
    try:
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):
            answer += kept.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        for conn in [*slow, kept]:
            conn.sendall(b"GET /api/v1/checkpoint HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for _ in range(3):  # a header byte now and then: each resets no deadline
            time.sleep(0.4)
            for conn in [*slow, kept]:
                conn.sendall(b"X")
            assert server.get("/api/v1/checkpoint").status_code == 200  # others are served meanwhile
        for conn in [*slow, kept]:
            conn.settimeout(HEADER_TIMEOUT + 5)
        statuses = [_status(conn) for conn in [*slow, kept]]
        assert statuses == [408] * 41, statuses
        assert time.monotonic() - started < HEADER_TIMEOUT + 4
        for conn in slow:  # ... and closed
            assert conn.recv(1024) == b""
    finally:
        for conn in [*slow, kept]:
            conn.close()
    assert server.get("/readyz").status_code == 200
