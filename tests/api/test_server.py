"""`tenderproof serve`: a real uvicorn server on 127.0.0.1 in a subprocess, on SQLite and
PostgreSQL, with one worker and with several (the factory path), with the anchoring job."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import verifier.check as verifier
from anchoring.errors import ChainConfigError
from api.app import create_app
from api.server import reuseport_sockets
from ledger.core.bundle import load_bundle
from ledger.core.verify import verify_inclusion
from ledger.log import Log
from ledger.submission import Submission
from settings import Settings
from tests.api.conftest import LATE, record_history
from tests.api.servers import ROOT, cli_server
from tests.api.test_middleware import assert_secure
from tests.cluster import kill, serve_api
from tests.conftest import ORIGIN, T0
from tests.recording import append


def access_lines(log_file: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "api.access"]


def test_serve_answers_reads_over_real_http(db_url: str, tmp_path: Path) -> None:
    history = record_history(db_url)
    try:
        log_file = tmp_path / "server.log"
        with cli_server(db_url, "--no-anchoring", log_file=log_file, env={"TENDERPROOF_ORIGIN": ORIGIN}) as http:
            checkpoint = http.get("/api/v1/checkpoint")
            head = history.log.reader.tree_head()
            assert checkpoint.json()["tree_size"] == head.size == history.size
            assert checkpoint.json()["root_hash"] == head.root.hex()
            assert_secure(checkpoint)
            assert "server" not in checkpoint.headers

            proof = http.get("/api/v1/proofs/inclusion", params={"index": 4, "size": head.size}).json()
            path = [bytes.fromhex(p) for p in proof["path"]]
            verify_inclusion(4, head.size, bytes.fromhex(proof["leaf_hash"]), path, head.root)

            entries = http.get("/api/v1/entries", params={"start": 0, "end": 3}).json()["entries"]
            assert [e["leaf_hash"] for e in entries] == [h.hex() for h in history.log.reader.leaf_hashes(0, 3)]

            bundle = load_bundle(http.get(f"/api/v1/tenders/{LATE}/bundle").json())
            assert verifier.verify_bundle(bundle).valid

            assert http.get("/readyz").json()["status"] == "ready"
            missing = http.get("/api/v1/nothing")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
            assert_secure(missing)
            bad = http.get("/api/v1/proofs/consistency", params={"from": "one"})
            assert bad.json()["error"]["field"] == "query.from"
            assert 'route="/api/v1/proofs/inclusion",status="200"' in http.get("/metrics").text
        lines = access_lines(log_file)
        assert {(line["route"], line["status"]) for line in lines} >= {
            ("/api/v1/checkpoint", 200),
            ("<unmatched>", 404),
            ("/api/v1/proofs/consistency", 422),
        }
        assert all(line["client"] == "127.0.0.1" for line in lines)
    finally:
        history.log.close()


def test_serve_with_several_workers(sqlite_url: str, tmp_path: Path) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    append(log, Submission(ocid=LATE, type="tender.planned", payload={"tender": {"id": "x"}}), now=T0)
    log.integrate_all(now=T0)
    log.close()
    log_file = tmp_path / "server.log"
    env = {"TENDERPROOF_ORIGIN": ORIGIN, "TENDERPROOF_RATE_LIMIT": "off"}
    with cli_server(sqlite_url, "--workers", "2", "--no-anchoring", log_file=log_file, env=env) as http:
        sizes = {http.get("/api/v1/checkpoint").json()["tree_size"] for _ in range(20)}
        assert sizes == {1}
        assert http.get(f"/api/v1/tenders/{LATE}/events").json()["event_count"] == 1
    lines = access_lines(log_file)
    assert len([line for line in lines if line["route"] == "/api/v1/checkpoint"]) == 20
    # One access line per request: uvicorn's own access log stays off in the workers too.
    uvicorn_access = [line for line in log_file.read_text().splitlines() if '"uvicorn.access"' in line]
    assert uvicorn_access == []


def test_serve_runs_the_anchoring_job(sqlite_url: str, tmp_path: Path) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    append(log, Submission(ocid=LATE, type="tender.planned", payload={"tender": {"id": "x"}}), now=T0)
    env = {"TENDERPROOF_ORIGIN": ORIGIN, "TENDERPROOF_ANCHOR_POLL": "0.2", "TENDERPROOF_ANCHOR_THRESHOLD": "1"}
    try:
        with cli_server(sqlite_url, log_file=tmp_path / "server.log", env=env) as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                anchors = http.get("/api/v1/anchors").json()["anchors"]
                if anchors and anchors[0]["status"] == "final":
                    break
                time.sleep(0.2)
            else:
                pytest.fail("the server's anchoring job did not anchor within 60 s")
            assert anchors[0]["tree_size"] == 2  # the event and the round's heads commitment
            bundle = http.get(f"/api/v1/tenders/{LATE}/bundle").json()
            assert [e["status"] for e in bundle["events"]] == ["anchored"]
            assert verifier.verify_bundle(load_bundle(bundle)).valid
    finally:
        log.close()


def test_serve_refuses_to_start_without_a_signing_chain_id(sqlite_url: str, tmp_path: Path) -> None:
    """A JSON-RPC first chain without chain_id and no TENDERPROOF_SIGNING_CHAIN_ID: the server does
    not start (exit 2, the setting named), instead of answering every write with a 500."""
    chains = json.dumps([{"name": "l2", "rpc_url": "http://127.0.0.1:9/"}])
    env = {"TENDERPROOF_CHAINS": chains, "TENDERPROOF_ORIGIN": ORIGIN, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli", "--database-url", sqlite_url, "serve", "--port", "0"]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert b"error: TENDERPROOF_SIGNING_CHAIN_ID: must be set when the first chain ('l2'" in done.stderr
    # ... and starts with it (the app factory, as each worker builds it, asks too)
    with pytest.raises(ChainConfigError, match="TENDERPROOF_SIGNING_CHAIN_ID"):
        create_app(Settings(database_url=sqlite_url, origin=ORIGIN, chains=json.loads(chains)))
    assert create_app(Settings(database_url=sqlite_url, origin=ORIGIN, chains=json.loads(chains), signing_chain_id=10))


def test_each_worker_socket_gets_its_share_of_connections() -> None:
    """``serve --workers N`` gives each worker a listening socket of its own on one port
    (``SO_REUSEPORT``): the kernel spreads connections over them, where one shared socket let
    the first worker awake accept them all."""
    sockets = reuseport_sockets("127.0.0.1", 0, 2)
    clients: list[socket.socket] = []
    try:
        port = sockets[0].getsockname()[1]
        assert [s.getsockname()[1] for s in sockets] == [port, port]
        for sock in sockets:
            sock.listen(64)
            sock.setblocking(False)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        accepted = [0, 0]
        deadline = time.monotonic() + 10
        while sum(accepted) < len(clients) and time.monotonic() < deadline:
            for ready in select.select(sockets, [], [], 0.5)[0]:
                conn, _ = ready.accept()
                conn.close()
                accepted[sockets.index(ready)] += 1
        assert sum(accepted) == 32
        assert min(accepted) >= 4  # fewer on either under an even spread: p ~ 3e-6
    finally:
        for sock in [*clients, *sockets]:
            sock.close()


def test_worker_sockets_are_refused_on_a_port_already_taken() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(OSError):
            reuseport_sockets("127.0.0.1", taken.getsockname()[1], 2)
    finally:
        taken.close()


def test_a_killed_worker_takes_its_socket_with_it(sqlite_url: str, tmp_path: Path) -> None:
    """kill -9 of one of two workers: while its replacement starts, every new connection is
    answered by the other (none waits on the dead worker's socket), then both serve again."""
    Log.open(sqlite_url, origin=ORIGIN).close()
    env = {"TENDERPROOF_RATE_LIMIT": "off"}
    log_file = tmp_path / "server.log"
    with serve_api(sqlite_url, origin=ORIGIN, workers=2, log_file=log_file, env=env) as server:
        deadline = time.monotonic() + 120
        while log_file.read_text().count("Application startup complete") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # both workers serving
        first = server.workers()
        assert len(first) == 2
        assert kill(first[0])
        deadline = time.monotonic() + 10
        while first[0] in server.workers() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # the supervisor looks at its workers every 0.5 s
        for _ in range(24):  # a new connection each time
            assert httpx.get(f"{server.base}/healthz", timeout=5.0).status_code == 200
        deadline = time.monotonic() + 120
        while len(server.workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(server.workers()) == 2 and first[1] in server.workers()


def test_a_worker_leaves_its_startup_heap_out_of_the_garbage_collectors_scans(tmp_path: Path) -> None:
    # A full collection set off by a bulk request's allocations rescanned every object built at
    # startup (35-40 % of the server's CPU for bulk writes): the worker factory freezes them. And
    # the collector stays out of a request's way: the ~50,000 containers a bulk request of 500
    # events holds at once (parsed body, models, envelopes, rows), freed when it ends, set off no
    # collection (at Python's default threshold, ~70: 15-20 % of a bulk event's CPU).
    script = (
        "import gc, json\n"
        "from api.app import app_from_environment\n"
        "before = gc.get_freeze_count()\n"
        "app_from_environment()\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: runs.append(info['generation']) if phase == 'start' else None)\n"
        "request = [{'event': i, 'rows': [i]} for i in range(25_000)]\n"
        "del request\n"
        "print(json.dumps([before, gc.get_freeze_count(), len(gc.get_objects(2)), len(runs)]))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TENDERPROOF_DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        "TENDERPROOF_ORIGIN": ORIGIN,
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before, frozen, oldest, collections = json.loads(done.stdout.strip().splitlines()[-1])
    assert collections == 0
    assert before == 0
    assert frozen > 100_000  # the modules, the application, its schemas
    assert oldest < frozen // 10  # what a full collection still scans
