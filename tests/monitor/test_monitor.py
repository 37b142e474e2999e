"""``tenderproof monitor`` against a real ``tenderproof serve`` (SQLite; PostgreSQL when
TENDERPROOF_TEST_PG_URL is set): a clean log yields no finding, every lie injected in the
server's database is found and named, a monitor killed with kill -9 mid catch-up resumes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.core import heads as smt
from ledger.core.note import Signer
from ledger.log import Log
from ledger.store import guards
from ledger.submission import Submission
from tests.cluster import ROOT, cli, environment, free_port, stop, wait_until_serving
from tests.recording import append_many

ORIGIN = "monitor.test.example/log"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PG = os.environ.get("TENDERPROOF_TEST_PG_URL")


@dataclass
class Deployment:
    log: Log
    base: str
    vkey: str
    tmp: Path


def _fill(log: Log, tenders: int, rounds: int) -> None:
    """``rounds`` anchoring rounds' integrations, each ending in a heads commitment."""
    for r in range(rounds):
        append_many(
            log,
            [
                Submission(ocid=f"ocds-abc123-{i}", type="tender.amended", payload={"round": r, "i": i})
                for i in range(tenders)
            ],
            now=T0,
        )
        log.integrate_all(now=T0, commit_heads=True)


def _engines() -> list[str]:
    return ["sqlite", "postgresql"] if PG else ["sqlite"]


@pytest.fixture(params=_engines())
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    with database(request.param, tmp_path) as url:
        yield from _deploy(url, tmp_path)


@contextmanager
def database(engine: str, tmp: Path) -> Iterator[str]:
    """A fresh database URL on ``engine`` ("sqlite" in ``tmp``, or a scratch PostgreSQL database)."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp / 'log.sqlite3'}"
        return
    from tests.pg import scratch_database

    assert PG is not None
    with scratch_database(PG) as url:
        yield url


def _deploy(url: str, tmp: Path, *, tenders: int = 7) -> Iterator[Deployment]:
    """A log of ``tenders`` tenders over three rounds, served with a signing key."""
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    log = Log.open(url, origin=ORIGIN)
    try:
        _fill(log, tenders=tenders, rounds=3)
        env = {"TENDERPROOF_LOG_SIGNING_KEY": signer.skey()}
        with _serve(url, tmp / "server.log", env) as base:
            yield Deployment(log, base, str(signer.verifier), tmp)
    finally:
        log.close()


def _serve(url: str, log_file: Path, env: dict[str, str]) -> AbstractContextManager[str]:
    """``tenderproof serve --no-anchoring`` (one process) on ``url`` until the block exits."""
    return serving(lambda port: cli(url, ORIGIN, "serve", "--port", str(port), "--no-anchoring"), log_file, env)


@contextmanager
def serving(command: Callable[[int], list[str]], log_file: Path, env: dict[str, str]) -> Iterator[str]:
    """The server ``command(port)`` starts, its output in ``log_file``, from its first healthy
    answer until the block exits."""
    port = free_port()
    with log_file.open("ab") as output:
        process = subprocess.Popen(
            command(port),
            cwd=ROOT,
            env=environment(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                wait_until_serving(base, process=process)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {log_file.read_text()}") from None
            yield base
        finally:
            stop(process)


def _monitor(d: Deployment, *args: str, db: str = "monitor.sqlite3") -> tuple[int, list[dict[str, object]], str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "monitor",
            d.base,
            "--db",
            f"sqlite:///{d.tmp / db}",
            "--log-key",
            d.vkey,
            "--once",
            *args,
        ],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    findings = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, findings, done.stderr


def _tamper(d: Deployment, *statements: str) -> None:
    """Run ``statements`` on the server's database with its append-only triggers out of the way:
    dropped and put back on SQLite, disabled for the session on PostgreSQL (replica role)."""
    sqlite = d.log.engine.dialect.name == "sqlite"
    with d.log.engine.begin() as conn:
        if sqlite:
            for ddl in [*guards.sqlite_drop_ddl(), *guards.drop_payloads_ddl("sqlite")]:
                conn.execute(text(ddl))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            conn.execute(text(statement))
        if sqlite:
            for ddl in [*guards.sqlite_ddl(), *guards.payloads_ddl("sqlite")]:
                conn.execute(text(ddl))


def _blob(d: Deployment, data: bytes) -> str:
    """``data`` as an SQL literal of the server's engine."""
    return f"X'{data.hex()}'" if d.log.engine.dialect.name == "sqlite" else f"'\\x{data.hex()}'::bytea"


def _event_id(d: Deployment, index: int) -> int:
    with d.log.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT event_id FROM log_entries WHERE idx = {index}")).scalar_one())


def test_a_clean_log_is_mirrored_verified_and_gives_no_finding(deployment: Deployment) -> None:
    code, findings, err = _monitor(deployment)
    assert (code, findings) == (0, []), err
    size = deployment.log.reader.tree_head().size
    assert f"catch-up: {size}/{size} entries" in err
    db = sqlite3.connect(deployment.tmp / "monitor.sqlite3")
    assert db.execute("SELECT count(*), min(idx), max(idx) FROM monitor_entries").fetchone() == (size, 0, size - 1)
    assert db.execute("SELECT verified_size FROM monitor_state").fetchone() == (size,)
    # More entries: the next round mirrors only those, and the log's key is pinned.
    _fill(deployment.log, tenders=3, rounds=1)
    code, findings, err = _monitor(deployment)
    assert (code, findings) == (0, []), err
    new_size = deployment.log.reader.tree_head().size
    assert f"catch-up: {new_size}/{new_size} entries" in err
    assert db.execute("SELECT count(*) FROM monitor_entries").fetchone() == (new_size,)


def test_a_changed_entry_is_found_and_named_even_with_its_leaf_hash_rewritten(deployment: Deployment) -> None:
    target = 9
    event = _event_id(deployment, target)
    with deployment.log.engine.connect() as conn:
        envelope = json.loads(conn.execute(text(f"SELECT envelope FROM events WHERE id = {event}")).scalar_one())
    envelope["recorded_at"] = "2025-12-31T23:59:59Z"  # backdated
    import hashlib

    import rfc8785

    data = rfc8785.dumps(envelope)
    leaf = hashlib.sha256(b"\x00" + data).digest()
    _tamper(
        deployment,
        f"UPDATE events SET envelope = {_blob(deployment, data)}, leaf_hash = {_blob(deployment, leaf)} WHERE id = {event}",
    )
    code, findings, _ = _monitor(deployment)
    assert code == 1
    changed = [f for f in findings if f["kind"] == "entry_changed"]
    assert [f["index"] for f in changed] == [target], findings


def test_a_changed_payload_and_a_withheld_payload_are_found_and_named(deployment: Deployment) -> None:
    changed, withheld = _event_id(deployment, 3), _event_id(deployment, 12)
    blob, null = _blob(deployment, b'{"i":3,"round":99}'), _blob(deployment, b"null")
    _tamper(
        deployment,
        f"UPDATE payloads SET body = {blob} WHERE event_id = {changed}",
        f"UPDATE payloads SET body = {null} WHERE event_id = {withheld}",
    )
    code, findings, _ = _monitor(deployment)
    assert code == 1
    assert sorted((f["kind"], f["index"]) for f in findings) == [("payload_changed", 3), ("payload_withheld", 12)]


def test_a_checkpoint_signed_for_another_tree_is_found(deployment: Deployment) -> None:
    bogus = secrets.token_bytes(32)
    _tamper(deployment, f"UPDATE log_state SET root = {_blob(deployment, bogus)}")
    code, findings, _ = _monitor(deployment)
    assert code == 1
    assert [f["kind"] for f in findings] == ["checkpoint_inconsistent"]
    assert findings[0]["root"] == bogus.hex()


def test_a_past_rewritten_after_it_was_mirrored_is_found_on_the_re_read(deployment: Deployment) -> None:
    assert _monitor(deployment)[:2] == (0, [])
    blob = _blob(deployment, b'{"i":0,"round":7}')
    _tamper(deployment, f"UPDATE payloads SET body = {blob} WHERE event_id = {_event_id(deployment, 0)}")
    code, findings, _ = _monitor(deployment)
    assert code == 1
    assert [(f["kind"], f["index"]) for f in findings] == [("payload_changed", 0)]
    # Reported once; still on record: --once keeps failing.
    assert _monitor(deployment)[:2] == (1, [])


def test_a_lying_heads_commitment_is_found(deployment: Deployment) -> None:
    size = deployment.log.reader.tree_head().size
    lie = {"tree_size": size, "heads_root": "00" * 32, "tenders": 7}
    append_many(deployment.log, [Submission(ocid=smt.HEADS_OCID, type=smt.HEADS_TYPE, payload=lie)], now=T0)
    deployment.log.integrate_all(now=T0)
    code, findings, _ = _monitor(deployment)
    assert code == 1
    assert [(f["kind"], f["index"]) for f in findings] == [("commitment_lies", size)]
    assert findings[0]["expected"]["tenders"] == 7  # type: ignore[index]


def test_a_monitor_killed_mid_catch_up_resumes_where_it_stopped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    for d in _deploy(url, tmp_path):
        _fill(d.log, tenders=400, rounds=10)
        size = d.log.reader.tree_head().size
        db = d.tmp / "killed.sqlite3"
        command = [
            sys.executable,
            "-m",
            "cli",
            "monitor",
            d.base,
            "--db",
            f"sqlite:///{db}",
            "--log-key",
            d.vkey,
            "--once",
            "--page",
            "50",
        ]
        process = subprocess.Popen(command, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        mirrored = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and mirrored < 500:
            time.sleep(0.1)
            try:
                with sqlite3.connect(db) as conn:
                    mirrored = conn.execute("SELECT size FROM monitor_state").fetchone()[0]
            except (sqlite3.Error, TypeError):
                pass
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        with sqlite3.connect(db) as conn:
            stopped = conn.execute("SELECT size FROM monitor_state").fetchone()[0]
            assert 0 < stopped < size
            assert conn.execute("SELECT count(*) FROM monitor_entries").fetchone()[0] == stopped
        code, findings, err = _monitor(d, "--page", "500", "--parallel", "1", db="killed.sqlite3")
        assert (code, findings) == (0, []), err
        first = err.splitlines()[0]
        resumed_from = int(first.split()[1].split("/")[0]) - 500
        assert resumed_from == stopped, first
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*), max(idx) FROM monitor_entries").fetchone() == (size, size - 1)
            assert conn.execute("SELECT verified_size FROM monitor_state").fetchone()[0] == size


def test_follow_mode_posts_each_new_finding_to_the_webhook(deployment: Deployment) -> None:
    import http.server
    import threading

    received: list[dict[str, object]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    command = [sys.executable, "-m", "cli", "monitor", deployment.base, "--db", f"sqlite:///{deployment.tmp / 'follow.sqlite3'}",
               "--log-key", deployment.vkey, "--interval", "0.2", "--webhook", f"http://127.0.0.1:{hook.server_port}/"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        assert received == [] and process.poll() is None  # caught up, nothing to say, still following
        _tamper(
            deployment,
            f"UPDATE payloads SET body = {_blob(deployment, b'null')} WHERE event_id = {_event_id(deployment, 5)}",
        )
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # a few more rounds: the same finding is not sent twice
        assert [(f["kind"], f["index"]) for f in received] == [("payload_withheld", 5)]
    finally:
        process.terminate()
        process.wait(timeout=30)
        hook.shutdown()
    assert process.stdout is not None
    assert [json.loads(line)["kind"] for line in process.stdout.read().decode().splitlines()] == ["payload_withheld"]


def test_a_checkpoint_contradicting_one_verified_before_is_a_fork(deployment: Deployment) -> None:
    assert _monitor(deployment)[:2] == (0, [])
    # The log now signs, for a size the monitor verified, another root: a second history.
    other = secrets.token_bytes(32)
    _tamper(deployment, f"UPDATE log_state SET size = 10, root = {_blob(deployment, other)}")
    code, findings, _ = _monitor(deployment)
    assert code == 1
    assert [(f["kind"], f["size"], f["root"]) for f in findings] == [("fork", 10, other.hex())]
    assert "—" in str(findings[0]["note"])  # the signed note itself is kept: the evidence


@pytest.mark.postgres
@pytest.mark.skipif(PG is None, reason="needs TENDERPROOF_TEST_PG_URL")
def test_the_monitors_own_database_may_be_postgresql(tmp_path: Path) -> None:
    from tests.pg import scratch_database

    assert PG is not None
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    with scratch_database(PG) as scratch:
        monitor_db = scratch.replace("postgresql+psycopg://", "postgresql://")  # as a watcher would write it
        for d in _deploy(url, tmp_path):

            def run(d: Deployment = d) -> tuple[int, list[dict[str, object]]]:
                done = subprocess.run(
                    [sys.executable, "-m", "cli", "monitor", d.base, "--db", monitor_db, "--log-key", d.vkey, "--once"],
                    cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

            assert run() == (0, [])
            _tamper(d, f"UPDATE payloads SET body = {_blob(d, b'{}')} WHERE event_id = {_event_id(d, 2)}")
            code, findings = run()
            assert code == 1
            assert [(f["kind"], f["index"]) for f in findings] == [("payload_changed", 2)]


def test_a_server_restarted_mid_catch_up_is_waited_for(tmp_path: Path) -> None:
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    log = Log.open(url, origin=ORIGIN)
    try:
        _fill(log, tenders=400, rounds=8)
        size = log.reader.tree_head().size
        port = free_port()
        env = environment({"TENDERPROOF_LOG_SIGNING_KEY": signer.skey(), "TENDERPROOF_RATE_LIMIT": ""})
        command = cli(url, ORIGIN, "serve", "--port", str(port), "--no-anchoring")
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        db = tmp_path / "restart.sqlite3"
        monitor = None
        try:
            wait_until_serving(base, process=server)
            monitor = subprocess.Popen(
                [sys.executable, "-m", "cli", "monitor", base, "--db", f"sqlite:///{db}", "--log-key",
                 str(signer.verifier), "--once", "--page", "20"],
                cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            mirrored, deadline = 0, time.monotonic() + 120
            while mirrored < 300 and time.monotonic() < deadline:
                time.sleep(0.1)
                try:
                    with sqlite3.connect(db) as conn:
                        mirrored = conn.execute("SELECT size FROM monitor_state").fetchone()[0]
                except (sqlite3.Error, TypeError):
                    pass
            stop(server)  # mid catch-up: the monitor's requests fail until it is back
            assert monitor.poll() is None
            with sqlite3.connect(db) as conn:
                assert conn.execute("SELECT size FROM monitor_state").fetchone()[0] < size
            server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out, err = monitor.communicate(timeout=300)
            assert monitor.returncode == 0, err.decode()[-2000:]
            assert out == b""
            with sqlite3.connect(db) as conn:
                assert conn.execute("SELECT count(*), max(idx) FROM monitor_entries").fetchone() == (size, size - 1)
        finally:
            if monitor is not None and monitor.poll() is None:
                monitor.kill()
            stop(server)
    finally:
        log.close()


def test_a_payload_withheld_by_an_order_is_reported_not_alarmed(deployment: Deployment) -> None:
    """An order of the log withholds entry 3: the monitor reports payload_withheld_by_order, an
    informational finding (exit 0); entry 12 withheld in the database without an order is an alarm."""
    from ledger.procurement import withholding

    order = {"reference": "EXP-5/2026", "authority": "AEPD", "legal_basis": "GDPR art. 17", "targets": [{"index": 3}]}
    withholding.record_order(deployment.log, order, now=T0)
    code, findings, err = _monitor(deployment)
    assert code == 0, (findings, err)
    assert [(f["kind"], f["index"], f["reference"]) for f in findings] == [
        ("payload_withheld_by_order", 3, "EXP-5/2026")
    ]
    _tamper(deployment, f"UPDATE payloads SET body = NULL WHERE event_id = {_event_id(deployment, 12)}")
    code, findings, _ = _monitor(deployment, db="again.sqlite3")
    assert code == 1
    assert sorted((f["kind"], f["index"]) for f in findings) == [
        ("payload_withheld", 12),
        ("payload_withheld_by_order", 3),
    ]
