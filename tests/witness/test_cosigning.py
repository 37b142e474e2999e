"""The publishing round collects the witnesses' cosignatures (two real witness processes, one of
them down), anchoring goes on regardless, bundles carry the cosigned checkpoint, and the
verifier's witness policy (N of M keys) passes or names the shortfall."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from anchoring import store
from anchoring.bundles import build_bundle, final_anchors
from anchoring.cosigning import Cosigning, Witness
from anchoring.embedded import EmbeddedChain
from anchoring.schema import cosigned_checkpoints
from anchoring.service import AnchoringService, Policy
from ledger.core.cosignature import Cosigner, verified
from ledger.core.note import Signer
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings
from tests.cluster import ROOT, environment, free_port
from tests.recording import append_many
from tests.witness.test_witness import ORIGIN, T0, running_witness
from verifier.check import verify_bundle
from verifier.signed import checkpoint_check

CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)


def _anchor(service: AnchoringService, log: Log, size: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        service.tick()
        listed = store.listing(log.engine, chain="dev", limit=1)
        if listed and listed[0].anchor.tree_size == size and listed[0].anchor.status == "final":
            return
        time.sleep(0.05)
    raise AssertionError(f"tree size {size} not anchored")


def test_cosignatures_collected_anchoring_unstopped_bundles_carry_them(tmp_path: Path) -> None:
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    log = Log.open(f"sqlite:///{tmp_path / 'log.sqlite3'}", origin=ORIGIN)
    down_key = Cosigner("w2.example", secrets.token_bytes(32)).key
    try:
        with running_witness(tmp_path, "w1.example", str(signer.verifier)) as (url, key, _):
            witnesses = [Witness(url, key), Witness(f"http://127.0.0.1:{free_port()}", down_key)]  # the second is down
            cosigning = Cosigning(log, signer, witnesses, quorum=2, timeout=2)
            service = AnchoringService(
                log, [CHAIN], dev=EmbeddedChain(), cosigning=cosigning, policy=Policy(interval=3600, threshold=1)
            )
            try:
                for rnd in range(2):
                    append_many(
                        log,
                        [
                            Submission(ocid=f"ocds-abc123-{rnd}{i}", type="tender.published", payload={"i": i})
                            for i in range(3)
                        ],
                        now=T0,
                    )
                    size = 4 * (rnd + 1)  # 3 events and a heads commitment per round
                    _anchor(service, log, size)
                    outcome = cosigning.round(now=T0)
                    assert outcome is not None
                    assert (outcome.size, outcome.cosigned, list(outcome.failed), outcome.shortfall) == (
                        size, ["w1.example"], ["w2.example"], 1,
                    )  # fmt: skip
            finally:
                service.close()
        with log.engine.connect() as conn:
            rows = conn.execute(select(cosigned_checkpoints.c.size, cosigned_checkpoints.c.cosignatures)).all()
        assert sorted(rows) == [(4, 1), (8, 1)]
        bundle = build_bundle(log, "ocds-abc123-10", final_anchors(log.engine, "dev"), signer=signer)
        assert bundle.checkpoint is not None
        assert list(verified(bundle.checkpoint, [key, down_key])) == [str(key)]
        report = verify_bundle(
            bundle, check_checkpoint=checkpoint_check(str(signer.verifier), [str(key), str(down_key)], 1)
        )
        assert report.valid, report.to_json()
        assert "cosigned by 1 of 2 witnesses (w1.example; policy: 1)" in report.checkpoint
        strict = verify_bundle(
            bundle, check_checkpoint=checkpoint_check(str(signer.verifier), [str(key), str(down_key)], 2)
        )
        assert not strict.valid
        assert "1 of the 2 cosignatures required" in str(strict.to_json())
        assert "missing: w2.example" in str(strict.to_json())
        # The same policy from the command line.
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(bundle.to_json()))
        base = [sys.executable, "-m", "cli", "verify", str(path), "--log-key", str(signer.verifier)]
        keys = ["--witness", str(key), "--witness", str(down_key)]
        ok = subprocess.run(
            [*base, *keys, "--witness-quorum", "1"], cwd=ROOT, env=environment(), capture_output=True, text=True
        )
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "cosigned by 1 of 2 witnesses" in ok.stdout
        short = subprocess.run([*base, *keys], cwd=ROOT, env=environment(), capture_output=True, text=True)
        assert short.returncode == 1
        assert "missing: w2.example" in short.stdout
    finally:
        log.close()
