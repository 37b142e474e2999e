"""Real published OCDS data end to end: `tenderproof import` (the command), anchoring on an
in-process EVM, the tender's proof bundle, its verification against the chain, and
`tenderproof export` giving the releases back (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from anchoring import rpc as embedded_rpc
from anchoring.bundles import build_bundle, final_anchors
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from cli import main
from ledger.core.bundle import load_bundle
from ledger.log import Log
from settings import ChainSettings
from tests.conftest import ORIGIN, T0
from tests.procurement.test_importer import CDMX, PARAGUAY, SAMPLE, _source
from verifier.chain import RpcChainReader
from verifier.check import verify_bundle

CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)


def _cli(db_url: str, *args: str) -> int:
    return main(["--database-url", db_url, "--origin", ORIGIN, *args])


def test_real_data_import_anchor_bundle_verify(db_url: str, tmp_path: Path) -> None:
    assert _cli(db_url, "import", str(PARAGUAY), str(SAMPLE)) == 0
    assert _cli(db_url, "import", "--json", str(PARAGUAY), str(SAMPLE)) == 0  # again: nothing new
    assert _cli(db_url, "import", "--strict", str(CDMX)) == 0  # upper-case ocids: kept as published
    assert _cli(db_url, "import", str(CDMX), str(SAMPLE)) == 0  # again: nothing new
    log = Log.open(db_url, origin=ORIGIN)
    try:
        log.integrate_all(now=T0)
        dev = EmbeddedChain()
        anchorer = ChainAnchorer(log, CHAIN, dev=dev, holder="tests", clock=lambda: T0)
        result = anchorer.run_round(force=True)
        while not result.settled:
            result = anchorer.run_round()
        assert result.anchor is not None and result.anchor.status == "final"
        reader = RpcChainReader(embedded_rpc.transport(dev))
        for path in (PARAGUAY, SAMPLE):
            ocid = _source(path)[0]["ocid"]
            bundle = build_bundle(log, ocid, final_anchors(log.engine, "dev")).to_json()
            assert [e["payload"] for e in bundle["events"]] == _source(path)
            report = verify_bundle(load_bundle(json.loads(json.dumps(bundle))), chain=reader)
            assert report.valid, report.failures
            assert [e.status for e in report.events] == ["valid"] * len(_source(path))
        anchorer.release()
    finally:
        log.close()
    out = tmp_path / "releases.json"
    assert _cli(db_url, "export", "releases", "-o", str(out)) == 0
    assert json.loads(out.read_text())["releases"] == _source(PARAGUAY, SAMPLE, CDMX)
    assert _cli(db_url, "export", "records", "--ocid", "not-an-ocid") == 2
