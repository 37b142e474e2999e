"""``tenderproof monitor --rpc`` against a log anchored on a real JSON-RPC node (Hardhat): every
final anchor the log lists is checked against the contract and the anchoring transaction; an
anchor whose root or time the log misstates is named; entries left unanchored past the policy too."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.anchoring.nodes import CHAIN_ID, KEYS, ROOT, HardhatNode, hardhat_node
from tests.monitor.test_monitor import ORIGIN, _serve

OCID = "ocds-abc123-mon-1"


@pytest.fixture(scope="module")
def node() -> Iterator[HardhatNode]:
    with hardhat_node() as started:
        yield started


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _findings(done: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_anchors_are_checked_against_the_chain_and_misstatements_named(node: HardhatNode, tmp_path: Path) -> None:
    chain = {"name": "local", "rpc_url": node.url, "chain_id": CHAIN_ID, "key": KEYS[0], "confirmations": 1}
    db = tmp_path / "log.db"
    env = {
        **os.environ,
        "TENDERPROOF_DATABASE_URL": f"sqlite:///{db}",
        "TENDERPROOF_ORIGIN": ORIGIN,
        "TENDERPROOF_CHAINS": json.dumps([chain]),
    }
    deployed = _run(env, "deploy", "--chain", "local")
    assert deployed.returncode == 0, deployed.stderr
    env["TENDERPROOF_CHAINS"] = json.dumps([{**chain, "contract": json.loads(deployed.stdout)["contract"]}])
    payload = tmp_path / "planned.json"
    for n in range(2):
        payload.write_text(json.dumps({"planning": {"rationale": f"Lamps {n}"}, "buyer": {"id": "MX-1", "name": "M"}}))
        recorded = _run(env, "record", f"{OCID}{n}", "tender.planned", str(payload))
        assert recorded.returncode == 0, recorded.stderr
        anchored = _run(env, "anchor", "--timeout", "60")
        assert anchored.returncode == 0, anchored.stderr
    server_env = {k: v for k, v in env.items() if k.startswith("TENDERPROOF_") and k != "TENDERPROOF_DATABASE_URL"}
    with _serve(f"sqlite:///{db}", tmp_path / "server.log", server_env) as base:

        def monitor(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
            bare = {k: v for k, v in os.environ.items() if not k.startswith("TENDERPROOF_")}
            args = ["monitor", base, "--db", f"sqlite:///{tmp_path / name}", "--rpc", node.url, "--once", *extra]
            return _run(bare, *args)

        clean = monitor("clean.sqlite3", "--max-unanchored-seconds", "3600")
        assert (clean.returncode, _findings(clean)) == (0, []), clean.stderr
        with sqlite3.connect(tmp_path / "clean.sqlite3") as conn:
            assert conn.execute("SELECT count(*) FROM monitor_anchors").fetchone()[0] == 2

        # The log misstates its first anchor's time, and its second anchor's root.
        with sqlite3.connect(db) as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM anchors WHERE status = 'final' ORDER BY id")]
            conn.execute("UPDATE anchors SET block_timestamp = block_timestamp - 3600 WHERE id = ?", (ids[0],))
            conn.execute("UPDATE anchors SET root = ? WHERE id = ?", (bytes(32), ids[1]))
        lied = monitor("second.sqlite3")
        assert lied.returncode == 1
        named = sorted((str(f["kind"]), int(str(f["anchor"]))) for f in _findings(lied))
        assert named == [("anchor_disagrees", ids[1]), ("chain_disagrees", ids[0])], lied.stdout
        assert "the block's time" in next(str(f["message"]) for f in _findings(lied) if f["kind"] == "chain_disagrees")

        # A new event left unanchored past the watcher's policy.
        recorded = _run(env, "record", f"{OCID}9", "tender.planned", str(payload))
        assert recorded.returncode == 0, recorded.stderr
        assert _run(env, "integrate").returncode == 0  # in the log, never anchored (say the chain is down)
        late = monitor("clean.sqlite3", "--max-unanchored-seconds", "0")
        assert late.returncode == 1
        assert [f["kind"] for f in _findings(late)] == ["unanchored"], late.stdout
