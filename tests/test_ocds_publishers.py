"""What publishers really publish, end to end (issue 18): real files from the ocdskit 1.7.0 sdist
(tests/assets/ocds/README.md) that are not release packages in UTF-8 — Mexico's federal record
package (SFP/SHCP, ocds-07smqs, a null inside submissionMethod), Mexico City's ISO-8859-1 file and
its record package with versioned releases, Paraguay's OCDS 1.0 release package, the OCP sample
gzip-compressed — through `tenderproof import` (default and --strict), anchoring on the in-process
EVM, each tender's proof bundle verified against the chain, and the record export's compiled
release equal to ocdsmerge's (SQLite and PostgreSQL)."""

from __future__ import annotations

import gzip
import html
import json
from pathlib import Path
from typing import Any

from babel.numbers import format_currency
from fastapi.testclient import TestClient
from ocdsmerge import Merger

from anchoring.bundles import build_bundle, final_anchors
from api.app import create_app
from cli import main
from ledger.core.bundle import load_bundle
from ledger.log import Log
from ledger.procurement import export, ocds
from settings import Settings
from tests.conftest import ORIGIN
from tests.embedded_anchor import anchored_once
from tests.explorer.test_imported import _compiled_on
from verifier.check import verify_bundle

ASSETS = Path(__file__).parent / "assets" / "ocds"
FEDERAL = ASSETS / "mexico-federal-record-package.json"
LATIN = ASSETS / "cdmx-iso-8859-1.json"
UTF8 = ASSETS / "cdmx-encoding-utf-8.json"
VERSIONED = ASSETS / "cdmx-versioned-record-package.json"
LINKED = ASSETS / "cdmx-linked-releases.json"
PARAGUAY_10 = ASSETS / "paraguay-ocds-1.0.json"
SAMPLE = ASSETS / "ocp-fictional-sample.json"


def _cli(db_url: str, *args: str) -> int:
    return main(["--database-url", db_url, "--origin", ORIGIN, *args])


def _releases(path: Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding=encoding))
    if "records" in data:
        return [r for record in data["records"] for r in record["releases"]]
    releases: list[dict[str, Any]] = data["releases"]
    return releases


def test_real_files_of_five_publishers_import_anchor_verify_and_export(db_url: str, tmp_path: Path) -> None:
    packed = tmp_path / "sample.json.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    # strict refuses the federal file (a null inside submissionMethod) and writes nothing
    assert _cli(db_url, "import", "--strict", str(FEDERAL)) == 2
    # default: recorded with its data-quality notes; linked releases cannot be imported (exit 1)
    assert _cli(db_url, "import", str(FEDERAL), str(LATIN), str(VERSIONED), str(PARAGUAY_10), str(packed)) == 0
    assert _cli(db_url, "import", "--strict", str(UTF8)) == 0  # the same releases in UTF-8: duplicates
    assert _cli(db_url, "import", str(LINKED)) == 1
    # the ISO-8859-1 file's releases are the UTF-8 file's, character for character
    assert _releases(LATIN, "iso-8859-1") == _releases(UTF8)
    sources = {
        path: _releases(path, "iso-8859-1" if path == LATIN else "utf-8")
        for path in (FEDERAL, LATIN, VERSIONED, PARAGUAY_10, SAMPLE)
    }
    log = Log.open(db_url, origin=ORIGIN)
    try:
        with anchored_once(log) as reader:
            ocids = sorted({r["ocid"] for releases in sources.values() for r in releases})
            assert len(ocids) == 7
            for ocid in ocids:
                bundle = build_bundle(log, ocid, final_anchors(log.engine, "dev")).to_json()
                assert bundle["completeness"] is not None  # the round committed the heads: the history is whole
                published = [r for releases in sources.values() for r in releases if r["ocid"] == ocid]
                for event in bundle["events"]:
                    assert event["payload"] in published  # recorded as published
                report = verify_bundle(load_bundle(json.loads(json.dumps(bundle))), chain=reader)
                assert report.valid, report.failures
        merger = Merger(schema=json.loads(ocds.RELEASE_SCHEMA.read_text()))
        for ocid, releases in export.iter_tenders(log.engine):
            record = export.record(ocid, releases)
            assert record["compiledRelease"] == merger.create_compiled_release(releases), ocid
        currencies = {
            award["value"]["currency"]
            for _, releases in export.iter_tenders(log.engine)
            for r in releases
            for award in r.get("awards") or []
            if isinstance(award.get("value"), dict) and "currency" in award["value"]
        }
        assert {"MXN", "USD", "GBP"} <= currencies, currencies
        # the explorer's compiled release is the export's, and every award's currency is shown
        settings = Settings(database_url=db_url, origin=ORIGIN, chains=[], rate_limit=None)
        with TestClient(create_app(settings, log=log)) as client:
            for ocid, releases in export.iter_tenders(log.engine):
                page = client.get(f"/tenders/{ocid}", params={"lang": "en"}).text
                assert _compiled_on(page) == export.record(ocid, releases)["compiledRelease"], ocid
                compiled = export.record(ocid, releases)["compiledRelease"]
                for award in compiled.get("awards") or []:
                    value = award.get("value") if isinstance(award.get("value"), dict) else {}
                    if isinstance(value.get("amount"), int | float) and value.get("currency"):
                        shown = format_currency(value["amount"], value["currency"], locale="en")
                        assert shown in html.unescape(page), (ocid, shown)
    finally:
        log.close()
