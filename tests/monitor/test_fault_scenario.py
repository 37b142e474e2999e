"""Issue 17's end-to-end fault scenario on real processes: a server on PostgreSQL, a JSON-RPC chain
node (anvil, ``--prune-history``), two witnesses (``tenderproof witness serve``) and two monitors.

Faults: a witness down (anchoring goes on, the shortfall is reported), truncated and slow answers
(a proxy in front of one monitor), a monitor killed with kill -9 mid catch-up and resumed. Lies: a
fork shown to one monitor and not the other, an entry's payload changed and another withheld in the
server's database with its triggers disabled, a checkpoint re-signed for an inconsistent tree: each
found and named by the monitors (JSON lines, exit 1 with --once), refused by the witnesses.
(A server restarted mid catch-up: tests/monitor/test_monitor.py.)
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from anchoring import store
from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import AddCheckpoint, Cosigner
from ledger.core.note import Signer
from ledger.log import Log
from ledger.store.schema import pending
from ledger.submission import Submission
from tests.anchoring.nodes import CHAIN_ID, KEYS, ROOT, AnvilNode
from tests.cluster import AnchorDaemon, environment, free_port
from tests.monitor.test_monitor import ORIGIN, T0, Deployment, _blob, _event_id, _monitor, _serve, _tamper
from tests.recording import append_many
from tests.witness.test_witness import running_witness

PG = os.environ.get("TENDERPROOF_TEST_PG_URL")


class PrunedAnvil(AnvilNode):
    """anvil keeping no history (``--prune-history``): a node as a light operator runs it."""

    def command(self) -> list[str]:
        return [*super().command(), "--prune-history"]


class FaultyProxy:
    """An HTTP proxy in front of the server for one monitor: every ``truncate_every``-th answer is
    cut in half (the full Content-Length announced), each answer waits ``delay`` seconds, and
    ``note``, when set, replaces the signed checkpoint (a fork shown to this monitor only)."""

    def __init__(self, target: str, *, truncate_every: int = 2, delay: float = 0.02) -> None:
        self.target, self.truncate_every, self.delay = target, truncate_every, delay
        self.note: str | None = None
        self.count = self.truncated = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                time.sleep(proxy.delay)
                if proxy.note is not None and self.path.startswith("/api/v1/checkpoint/signed"):
                    status, body, kind = 200, proxy.note.encode(), "text/plain; charset=utf-8"
                else:
                    got = httpx.get(proxy.target + self.path, timeout=30)
                    status, body, kind = got.status_code, got.content, got.headers.get("content-type", "")
                proxy.count += 1
                cut = proxy.count % proxy.truncate_every == 0 and len(body) > 64
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if cut:
                    proxy.truncated += 1
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def _node() -> Iterator[PrunedAnvil]:
    node = PrunedAnvil(free_port())
    node.start()
    try:
        yield node
    finally:
        node.stop()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _wait_anchored(log: Log, *, after: int) -> int:
    """Wait for the anchoring daemon to anchor, final, every entry (a size beyond ``after``)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        listed = store.listing(log.engine, chain="local", limit=1)
        head = log.reader.tree_head().size
        if listed and listed[0].anchor.status == "final" and listed[0].anchor.tree_size == head > after:
            with log.engine.connect() as conn:
                if conn.execute(select(pending.c.event_id).limit(1)).first() is None:
                    return head
        time.sleep(0.3)
    raise AssertionError(f"the log (size {log.reader.tree_head().size}) was not anchored in 90 s")


def _mirrored(db: Path) -> int:
    """The entries a monitor's SQLite database holds as checked and committed."""
    import sqlite3

    if not db.exists():
        return 0
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        try:
            row = conn.execute("SELECT size FROM monitor_state WHERE id = 1").fetchone()
        except sqlite3.OperationalError:  # its tables not made yet
            return 0
    return 0 if row is None else int(row[0])


def _grow(log: Log, n: int, tag: str) -> None:
    append_many(
        log,
        [Submission(ocid=f"ocds-abc123-{tag}{i}", type="tender.amended", payload={"i": i, "t": tag}) for i in range(n)],
        now=T0,
    )


@pytest.mark.skipif(PG is None, reason="needs TENDERPROOF_TEST_PG_URL (the server runs on PostgreSQL)")
def test_faults_are_survived_and_lies_found_named_and_refused(tmp_path: Path) -> None:
    from tests.pg import scratch_database

    assert PG is not None
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    with scratch_database(PG) as url, _node() as node:
        log = Log.open(url, origin=ORIGIN)
        try:
            _scenario(log, url, node, signer, tmp_path)
        finally:
            log.close()


def _scenario(log: Log, url: str, node: PrunedAnvil, signer: Signer, tmp: Path) -> None:
    chain = {"name": "local", "rpc_url": node.url, "chain_id": CHAIN_ID, "key": KEYS[0], "confirmations": 1}
    with running_witness(tmp, "w1.example", str(signer.verifier)) as (w1, key1, _):
        w2_port = free_port()
        # ---- the second witness is down: anchoring goes on, the shortfall is reported.
        env = {
            **environment(),
            "TENDERPROOF_DATABASE_URL": url,
            "TENDERPROOF_ORIGIN": ORIGIN,
            "TENDERPROOF_CHAINS": json.dumps([chain]),
            "TENDERPROOF_LOG_SIGNING_KEY": signer.skey(),
        }
        deployed = _cli(env, "deploy", "--chain", "local")
        assert deployed.returncode == 0, deployed.stderr
        chain["contract"] = json.loads(deployed.stdout)["contract"]
        env["TENDERPROOF_CHAINS"] = json.dumps([chain])
        down_key = str(Cosigner("w2.example", secrets.token_bytes(32)).key)  # a witness that never comes up
        env["TENDERPROOF_WITNESSES"] = json.dumps(
            [{"url": w1, "key": str(key1)}, {"url": f"http://127.0.0.1:{w2_port}", "key": down_key}]
        )
        env["TENDERPROOF_WITNESS_QUORUM"] = "2"
        env.update({"TENDERPROOF_ANCHOR_THRESHOLD": "1", "TENDERPROOF_ANCHOR_INTERVAL": "0.5",
                    "TENDERPROOF_ANCHOR_POLL": "0.3"})  # fmt: skip
        daemon = AnchorDaemon(url, origin=ORIGIN, log_file=tmp / "anchor.log", env=env)
        daemon.start()
        try:
            anchored = 0
            for rnd in range(2):
                _grow(log, 120, f"r{rnd}-")
                anchored = _wait_anchored(log, after=anchored)
        finally:
            daemon.stop()
        said = (tmp / "anchor.log").read_text()
        assert "1 of 2 cosignatures wanted" in said and "w2.example" in said, said[-2000:]
        size = log.reader.tree_head().size
        assert size == anchored
        server_env = {k: v for k, v in env.items() if k.startswith("TENDERPROOF_") and k != "TENDERPROOF_DATABASE_URL"}
        with _serve(url, tmp / "server.log", server_env) as base:
            d = Deployment(log, base, str(signer.verifier), tmp)
            proxy = FaultyProxy(base)
            try:
                faulty = Deployment(log, proxy.url, str(signer.verifier), tmp)
                # ---- monitor A through truncated and slow answers: a clean log, no finding.
                code, findings, err = _monitor(faulty, "--page", "50", db="a.sqlite3")
                assert (code, findings) == (0, []), err
                assert proxy.truncated >= 3
                # ---- monitor B killed with kill -9 mid catch-up (some of its batches committed,
                # not all: read from its database while it runs), then resumed. A catch-up of 242
                # entries is quick: when the kill lands before the first commit or after the last,
                # B starts again from nothing.
                b_db = tmp / "b.sqlite3"
                for _attempt in range(10):
                    for leftover in (b_db, b_db.with_name("b.sqlite3-wal"), b_db.with_name("b.sqlite3-shm")):
                        leftover.unlink(missing_ok=True)
                    command = [sys.executable, "-m", "cli", "monitor", base, "--db", f"sqlite:///{b_db}",
                               "--log-key", d.vkey, "--page", "10", "--interval", "60"]  # fmt: skip
                    follower = subprocess.Popen(command, cwd=ROOT, env=environment(), stderr=subprocess.DEVNULL)
                    try:
                        deadline = time.monotonic() + 120
                        while follower.poll() is None and time.monotonic() < deadline:
                            if _mirrored(b_db) > 0:
                                break
                            time.sleep(0.002)
                    finally:
                        os.kill(follower.pid, signal.SIGKILL)
                        follower.wait()
                    if 0 < _mirrored(b_db) < size:
                        break
                assert 0 < _mirrored(tmp / "b.sqlite3") < size, "monitor B was never killed mid catch-up"
                code, findings, err = _monitor(d, "--page", "10", db="b.sqlite3")
                assert (code, findings) == (0, []), err
                assert f"catch-up: {size}/{size}" in err
                # ---- lie 1: a fork shown to monitor A only (a second root for the same size, signed by the log).
                forked = Checkpoint(origin=ORIGIN, size=size, root=secrets.token_bytes(32))
                proxy.note = signer.sign(forked.to_text())
                code_a, found_a, _ = _monitor(faulty, db="a.sqlite3")
                code_b, found_b, _ = _monitor(d, db="b.sqlite3")
                assert (code_a, [f["kind"] for f in found_a]) == (1, ["fork"]), found_a
                assert found_a[0]["size"] == size and found_a[0]["root"] == forked.root.hex()
                assert (code_b, found_b) == (0, [])
                refused = httpx.post(
                    f"{w1}/add-checkpoint",
                    content=AddCheckpoint(size, (), signer.sign(forked.to_text())).to_text(),
                )
                assert refused.status_code == 409, refused.text  # the witness cosigned the true root of that size
                proxy.note = None
                # ---- lie 2: a payload changed, another withheld, in the server's database.
                changed, withheld = _event_id(d, size - 40), _event_id(d, size - 7)
                forged = _blob(d, b'{"i":5,"t":"forged"}')
                _tamper(
                    d,
                    f"UPDATE payloads SET body = {forged} WHERE event_id = {changed}",
                    f"UPDATE payloads SET body = {_blob(d, b'null')} WHERE event_id = {withheld}",
                )
                code_b, found_b, _ = _monitor(d, "--page", "1000", db="b.sqlite3")
                assert code_b == 1
                assert sorted((f["kind"], f["index"]) for f in found_b) == [
                    ("payload_changed", size - 40), ("payload_withheld", size - 7)
                ], found_b  # fmt: skip
                # ---- lie 3: the next checkpoint re-signed for a tree the entries do not give.
                _grow(log, 20, "late-")
                head = log.integrate_all(now=T0)
                bogus = secrets.token_bytes(32)
                _tamper(d, f"UPDATE log_state SET root = {_blob(d, bogus)}")
                for name, target in (("a.sqlite3", faulty), ("b.sqlite3", d)):
                    code, found, err = _monitor(target, db=name)
                    assert code == 1, err
                    kinds = [(f["kind"], f.get("size")) for f in found]
                    assert ("checkpoint_inconsistent", head.size) in kinds, (name, found)
                proof = log.reader.consistency_proof(size, head.size)
                lie = signer.sign(Checkpoint(origin=ORIGIN, size=head.size, root=bogus).to_text())
                refused = httpx.post(f"{w1}/add-checkpoint", content=AddCheckpoint(size, tuple(proof), lie).to_text())
                assert refused.status_code == 422, refused.text
            finally:
                proxy.close()
