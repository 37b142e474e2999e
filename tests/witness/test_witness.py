"""``tenderproof witness serve`` as a real process, fed checkpoints of a real log: it cosigns
per C2SP tlog-cosignature/v1 only with a valid consistency proof from the last checkpoint it
cosigned, answers every refusal with the status tlog-witness names, and keeps the evidence of a fork."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import AddCheckpoint, CosignerKey, check_quorum
from ledger.core.errors import VerificationError
from ledger.core.note import Signer
from ledger.log import Log
from ledger.submission import Submission
from tests.cluster import ROOT, environment, free_port, stop, wait_until_serving
from tests.recording import append_many

ORIGIN = "witness.test.example/log"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Setup:
    log: Log
    signer: Signer
    base: str
    key: CosignerKey
    db: Path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=60
    )


@contextmanager
def running_witness(tmp: Path, name: str, *log_keys: str) -> Iterator[tuple[str, CosignerKey, Path]]:
    """``tenderproof witness serve`` with a new key ``name`` (drawn by ``tenderproof witness key``)
    for the logs ``log_keys``: its URL, its cosigner key and its database, until the block exits."""
    made = _cli("witness", "key", name)
    assert made.returncode == 0, made.stderr
    skey, vkey = made.stdout.splitlines()
    key_file = tmp / f"{name.replace('/', '_')}.key"
    key_file.write_text(skey + "\n")
    port = free_port()
    db = tmp / f"{name.replace('/', '_')}.sqlite3"
    command = [sys.executable, "-m", "cli", "witness", "serve", "--db", f"sqlite:///{db}", "--key-file", str(key_file),
               *(a for k in log_keys for a in ("--log", k)), "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=environment(), stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_serving(base, process=process)
        except AssertionError as exc:
            said = process.stderr.read().decode() if process.poll() is not None and process.stderr else ""
            raise AssertionError(f"{exc}: {said}") from None
        yield base, CosignerKey.parse(vkey), db
    finally:
        stop(process)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    log = Log.open(f"sqlite:///{tmp_path / 'log.sqlite3'}", origin=ORIGIN)
    try:
        with running_witness(tmp_path, "witness.test.example/w1", str(signer.verifier)) as (base, key, db):
            yield Setup(log, signer, base, key, db)
    finally:
        log.close()


def _grow(log: Log, n: int) -> Checkpoint:
    append_many(
        log, [Submission(ocid=f"ocds-abc123-{i}", type="tender.amended", payload={"i": i}) for i in range(n)], now=T0
    )
    head = log.integrate_all(now=T0)
    return Checkpoint(origin=ORIGIN, size=head.size, root=head.root)


def _post(
    s: Setup, old: int, cp: Checkpoint, *, proof: list[bytes] | None = None, signer: Signer | None = None
) -> httpx.Response:
    if proof is None:
        proof = s.log.reader.consistency_proof(old, cp.size) if old else []
    note = (signer or s.signer).sign(cp.to_text())
    return httpx.post(f"{s.base}/add-checkpoint", content=AddCheckpoint(old, tuple(proof), note).to_text())


def test_cosigns_consistent_checkpoints_per_the_spec_bytes(setup: Setup) -> None:
    first = _grow(setup.log, 5)
    answer = _post(setup, 0, first)
    assert answer.status_code == 200, answer.text
    line = answer.text
    assert line.startswith("\u2014 witness.test.example/w1 ") and line.endswith("\n")
    # The bytes, checked by hand (hashlib + cryptography), not by the code under test.
    blob = base64.b64decode(line.split()[-1])
    key_id = hashlib.sha256(b"witness.test.example/w1\n\x04" + setup.key.public).digest()[:4]
    assert blob[:4] == key_id and len(blob) == 76
    timestamp = int.from_bytes(blob[4:12], "big")
    assert abs(timestamp - time.time()) < 60
    message = f"cosignature/v1\ntime {timestamp}\n".encode() + first.to_text().encode()
    Ed25519PublicKey.from_public_bytes(setup.key.public).verify(blob[12:], message)
    note = setup.signer.sign(first.to_text()) + line
    assert list(check_quorum(note, [setup.key], 1)) == [str(setup.key)]
    # The next checkpoint, with a proof from the one cosigned.
    second = _grow(setup.log, 4)
    assert _post(setup, first.size, second).status_code == 200
    # Resubmitting the same checkpoint is fine (old == size, same root).
    assert _post(setup, second.size, second).status_code == 200


def test_refusals_carry_the_status_the_spec_names(setup: Setup) -> None:
    first = _grow(setup.log, 5)
    assert _post(setup, 0, first).status_code == 200
    second = _grow(setup.log, 3)
    stale = _post(setup, 0, second)  # the witness has cosigned size 5 since
    assert (stale.status_code, stale.headers["content-type"], stale.text) == (
        409,
        "text/x.tlog.size",
        f"{first.size}\n",
    )
    assert _post(setup, first.size, second, proof=[secrets.token_bytes(32)]).status_code == 422
    stranger = Signer(ORIGIN, secrets.token_bytes(32))
    assert _post(setup, first.size, second, signer=stranger).status_code == 403
    other = Checkpoint(origin="other.example/log", size=1, root=bytes(32))
    assert (
        _post(setup, 0, other, proof=[], signer=Signer("other.example/log", secrets.token_bytes(32))).status_code == 404
    )
    assert httpx.post(f"{setup.base}/add-checkpoint", content="old x\n\n").status_code == 400
    assert _post(setup, second.size + 1, second, proof=[]).status_code == 400
    # Nothing refused moved the witness: the honest next step still works.
    assert _post(setup, first.size, second).status_code == 200


def test_a_fork_is_refused_and_its_evidence_kept(setup: Setup) -> None:
    first = _grow(setup.log, 6)
    assert _post(setup, 0, first).status_code == 200
    forked = Checkpoint(origin=ORIGIN, size=first.size, root=secrets.token_bytes(32))
    refused = _post(setup, first.size, forked, proof=[])
    assert (refused.status_code, refused.text) == (409, f"{first.size}\n")
    # A larger tree that does not extend the cosigned one: its proof cannot verify.
    bigger = Checkpoint(origin=ORIGIN, size=first.size + 2, root=secrets.token_bytes(32))
    assert _post(setup, first.size, bigger, proof=[secrets.token_bytes(32)] * 3).status_code == 422
    kept = _cli("witness", "evidence", "--db", f"sqlite:///{setup.db}")
    rows = [json.loads(line) for line in kept.stdout.splitlines()]
    assert [r["reason"].split(":")[0] for r in rows] == [
        "fork",
        f"consistency proof from {first.size} to {first.size + 2} fails",
    ]
    assert forked.root.hex() not in rows[0]["request"]  # the request as sent: base64 root
    assert base64.b64encode(forked.root).decode() in rows[0]["request"]
    assert rows[0]["latest_note"] == setup.signer.sign(first.to_text())


def test_the_quorum_check_names_the_shortfall(setup: Setup) -> None:
    first = _grow(setup.log, 2)
    line = _post(setup, 0, first).text
    other = CosignerKey.parse(_cli("witness", "key", "w2.example").stdout.splitlines()[1])
    note = setup.signer.sign(first.to_text()) + line
    assert len(check_quorum(note, [setup.key, other], 1)) == 1
    with pytest.raises(VerificationError, match=r"1 of the 2 cosignatures required .* missing: w2.example"):
        check_quorum(note, [setup.key, other], 2)
