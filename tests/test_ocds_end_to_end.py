"""Real published OCDS data end to end: `tenderproof import` (the command), anchoring on an
in-process EVM, the tender's proof bundle, its verification against the chain, and
`tenderproof export` giving the releases back (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from anchoring.bundles import build_bundle, final_anchors
from cli import main
from ledger.core.bundle import load_bundle
from ledger.log import Log
from tests.conftest import ORIGIN
from tests.embedded_anchor import anchored_once
from tests.procurement.test_importer import CDMX, PARAGUAY, SAMPLE, _source
from verifier.check import verify_bundle


def _cli(db_url: str, *args: str) -> int:
    return main(["--database-url", db_url, "--origin", ORIGIN, *args])


def test_real_data_import_anchor_bundle_verify(db_url: str, tmp_path: Path) -> None:
    assert _cli(db_url, "import", str(PARAGUAY), str(SAMPLE)) == 0
    assert _cli(db_url, "import", "--json", str(PARAGUAY), str(SAMPLE)) == 0  # again: nothing new
    assert _cli(db_url, "import", "--strict", str(CDMX)) == 0  # upper-case ocids: kept as published
    assert _cli(db_url, "import", str(CDMX), str(SAMPLE)) == 0  # again: nothing new
    log = Log.open(db_url, origin=ORIGIN)
    try:
        with anchored_once(log) as reader:
            for path in (PARAGUAY, SAMPLE):
                ocid = _source(path)[0]["ocid"]
                bundle = build_bundle(log, ocid, final_anchors(log.engine, "dev")).to_json()
                assert bundle["completeness"] is not None
                assert [e["payload"] for e in bundle["events"]] == _source(path)
                report = verify_bundle(load_bundle(json.loads(json.dumps(bundle))), chain=reader)
                assert report.valid, report.failures
                assert [e.status for e in report.events] == ["valid"] * len(_source(path))
    finally:
        log.close()
    out = tmp_path / "releases.json"
    assert _cli(db_url, "export", "releases", "-o", str(out)) == 0
    assert json.loads(out.read_text())["releases"] == _source(PARAGUAY, SAMPLE, CDMX)
    assert _cli(db_url, "export", "records", "--ocid", "not-an-ocid") == 2
