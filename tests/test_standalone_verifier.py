"""The auditor's verifier installed on its own (``pip install ./verifier``) in a fresh virtual
environment: few dependencies and none of the server's, and on a real bundle anchored on a real
JSON-RPC node (Hardhat) its command gives the same output and exit codes as ``tenderproof verify``:
valid (with and without the chain), tampered, not a bundle, chain unreachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.anchoring.nodes import CHAIN_ID, KEYS, ROOT, HardhatNode, hardhat_node

#: Distributions the auditor must never need (the server's stack).
SERVER_ONLY = {"fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "psycopg-binary", "eth-tester", "py-evm",
               "uvicorn", "web3", "apscheduler", "jinja2", "pydantic-settings"}  # fmt: skip
OCID = "ocds-abc123-standalone"


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only the verifier installed; its bin directory."""
    home = tmp_path_factory.mktemp("auditor") / "venv"
    venv.EnvBuilder(with_pip=True).create(home)
    installed = subprocess.run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT / "verifier")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return home / "bin"


@pytest.fixture(scope="module")
def node() -> Iterator[HardhatNode]:
    with hardhat_node() as started:
        yield started


def _tenderproof(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def bundle(node: HardhatNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A tender recorded through `tenderproof record`, anchored on the node, bundled by `tenderproof bundle`."""
    where = tmp_path_factory.mktemp("operator")
    chain = {"name": "local", "rpc_url": node.url, "chain_id": CHAIN_ID, "key": KEYS[0], "confirmations": 1}
    env = {
        **os.environ,
        "TENDERPROOF_DATABASE_URL": f"sqlite:///{where / 'log.db'}",
        "TENDERPROOF_CHAINS": json.dumps([chain]),
    }
    deployed = _tenderproof(env, "deploy", "--chain", "local")
    assert deployed.returncode == 0, deployed.stderr
    env["TENDERPROOF_CHAINS"] = json.dumps([{**chain, "contract": json.loads(deployed.stdout)["contract"]}])
    planned = {"planning": {"rationale": "Old lamps"}, "buyer": {"id": "MX-1", "name": "Municipio"}}
    payload = where / "planned.json"
    payload.write_text(json.dumps(planned))
    assert _tenderproof(env, "record", OCID, "tender.planned", str(payload)).returncode == 0
    anchored = _tenderproof(env, "anchor", "--timeout", "60")
    assert anchored.returncode == 0, anchored.stderr
    made = _tenderproof(env, "bundle", OCID)
    assert made.returncode == 0, made.stderr
    return dict(json.loads(made.stdout))


def test_installs_alone_with_few_dependencies(standalone: Path) -> None:
    python = str(standalone / "python")
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "tenderproof-verifier" in names
    assert names & SERVER_ONLY == set(), names & SERVER_ONLY
    assert "tenderproof" not in names
    probe = "import importlib.metadata as m; print(len(m.requires('tenderproof-verifier') or []))"
    declared = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    assert int(declared.stdout) <= 6
    helped = subprocess.run([str(standalone / "tenderproof-verify"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "--rpc" in helped.stdout


def test_gives_what_tenderproof_verify_gives(
    standalone: Path, bundle: dict[str, object], node: HardhatNode, tmp_path: Path
) -> None:
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(bundle))
    tampered = json.loads(json.dumps(bundle))
    tampered["events"][0]["payload"]["planning"]["rationale"] = "New lamps"  # type: ignore[index]
    changed = tmp_path / "tampered.json"
    changed.write_text(json.dumps(tampered))
    not_a_bundle = tmp_path / "other.json"
    not_a_bundle.write_text('{"format": "tenderproof-bundle/9"}')
    bare = {k: v for k, v in os.environ.items() if not k.startswith("TENDERPROOF_")}
    cases = [
        ([str(valid), "--rpc", node.url], 0),
        ([str(valid), "--json"], 0),
        ([str(changed), "--rpc", node.url], 1),
        ([str(changed), "--json"], 1),
        ([str(not_a_bundle)], 2),
        ([str(valid), "--rpc", "http://127.0.0.1:9"], 3),
    ]
    for args, expected in cases:
        ours = _tenderproof(bare, "verify", *args)
        theirs = subprocess.run(
            [str(standalone / "tenderproof-verify"), *args], env=bare, capture_output=True, text=True, timeout=120
        )
        assert (ours.returncode, theirs.returncode) == (expected, expected), (args, ours.stderr, theirs.stderr)
        assert theirs.stdout == ours.stdout, args
        assert theirs.stderr == ours.stderr, args
    checked = _tenderproof(bare, "verify", str(valid), "--rpc", node.url)
    assert "VERIFIED: 1 events, 0 pending" in checked.stdout and "NOT checked" not in checked.stdout
    assert "history: complete as of tree size" in checked.stdout
    refused = json.loads(_tenderproof(bare, "verify", str(changed), "--json").stdout)
    assert bundle["events"][0]["envelope"]["v"] == 2  # type: ignore[index]
    assert any("payload and disclosure commit to" in failure["reason"] for failure in refused["failures"])
