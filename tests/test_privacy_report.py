"""Knowing where personal data is (docs/privacy.md): the import report's counts per rule,
`tenderproof privacy report` (text, --json, --ocid, streamed in batches) and the read API's
``personal_data`` of each event, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from cli import main
from ledger.core.errors import InvalidArgumentError
from ledger.log import Log
from ledger.procurement import importer
from tests.api.conftest import settings_for
from tests.conftest import ORIGIN, T0
from tests.procurement.test_importer import SAMPLE, _package
from tests.procurement.test_privacy import _contact_fields, _with_sole_trader

SAMPLE_OCID = "ocds-213czf-000-00001"
TRADER_OCID = "ocds-abc123-t1"


def _cli(db_url: str, *args: str) -> int:
    return main(["--database-url", db_url, "--origin", ORIGIN, *args])


@pytest.fixture
def imported(db_url: str, tmp_path: Path) -> str:
    """The OCP sample (contact points) and a tender awarded to a sole trader, imported."""
    trader = tmp_path / "trader.json"
    trader.write_text(_package(_with_sole_trader()), encoding="utf-8")
    assert _cli(db_url, "import", str(SAMPLE), str(trader)) == 0
    return db_url


def _report(capsys: pytest.CaptureFixture[str], db_url: str, *args: str) -> Any:
    capsys.readouterr()
    assert _cli(db_url, "privacy", "report", "--json", *args) == 0
    return json.loads(capsys.readouterr().out)


def test_the_import_report_counts_personal_data_per_rule(db_url: str, tmp_path: Path) -> None:
    trader = tmp_path / "trader.json"
    trader.write_text(_package(_with_sole_trader()), encoding="utf-8")
    log = Log.open(db_url, origin=ORIGIN)
    try:
        with SAMPLE.open("rb") as sample, trader.open("rb") as other:
            report = importer.import_files(log, [("sample.json", sample), ("trader.json", other)], now=T0)
    finally:
        log.close()
    releases = json.loads(SAMPLE.read_text(encoding="utf-8"))["releases"]
    assert report.personal_data == {
        "contact-point": sum(_contact_fields(r) for r in releases),
        "natural-person-party": 3,
        "natural-person-reference": 1,
    }
    assert report.to_json()["personal_data"] == report.personal_data


def test_the_report_lists_every_event_with_personal_data(imported: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _report(capsys, imported)
    assert doc["format"] == "tenderproof-privacy-report/1"
    assert doc["events_scanned"] == 7
    assert doc["events_with_personal_data"] == 7
    assert doc["fields_per_rule"] == {"contact-point": 40, "natural-person-party": 3, "natural-person-reference": 1}
    trader = [e for e in doc["events"] if e["ocid"] == TRADER_OCID]
    assert trader == [
        {
            "ocid": TRADER_OCID,
            "seq": 0,
            "index": None,  # imported, not yet integrated
            "type": "award.issued",
            "personal_data": [
                {"path": "$['parties'][1]['name']", "rule": "natural-person-party"},
                {"path": "$['parties'][1]['identifier']", "rule": "natural-person-party"},
                {"path": "$['parties'][1]['address']", "rule": "natural-person-party"},
                {"path": "$['awards'][0]['suppliers'][0]['name']", "rule": "natural-person-reference"},
            ],
        }
    ]
    sample = [e for e in doc["events"] if e["ocid"] == SAMPLE_OCID]
    assert [e["seq"] for e in sample] == [0, 1, 2, 3, 4, 5]
    # read a batch at a time: the same report, however small the batches
    assert _report(capsys, imported, "--batch-size", "2") == doc


def test_the_report_of_one_tender_and_as_text(imported: str, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _report(capsys, imported, "--ocid", TRADER_OCID)
    assert (doc["events_scanned"], [e["ocid"] for e in doc["events"]]) == (1, [TRADER_OCID])
    assert _cli(imported, "privacy", "report", "--ocid", TRADER_OCID) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{TRADER_OCID} seq 0 (pending, award.issued):",
        "  $['parties'][1]['name']  [natural-person-party]",
        "  $['parties'][1]['identifier']  [natural-person-party]",
        "  $['parties'][1]['address']  [natural-person-party]",
        "  $['awards'][0]['suppliers'][0]['name']  [natural-person-reference]",
        "1 of 1 events hold personal data; fields per rule: natural-person-party 3, natural-person-reference 1",
    ]


def test_the_report_follows_the_operators_rules(
    imported: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps({"format": "tenderproof-privacy-rules/1", "rules": [{"name": "emails", "each": "$..email"}]}),
        encoding="utf-8",
    )
    monkeypatch.setenv("TENDERPROOF_PRIVACY_RULES", str(rules))
    doc = _report(capsys, imported)
    assert doc["fields_per_rule"] == {"emails": 8}
    assert doc["events_with_personal_data"] == 6
    rules.write_text("{}", encoding="utf-8")
    assert _cli(imported, "privacy", "report") == 2
    assert "TENDERPROOF_PRIVACY_RULES" in capsys.readouterr().err


def test_the_report_refuses_an_unknown_or_malformed_ocid(imported: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _cli(imported, "privacy", "report", "--ocid", "ocds-abc123-none") == 1
    assert "not found" in capsys.readouterr().err
    assert _cli(imported, "privacy", "report", "--ocid", "not an ocid") == 2
    assert "--ocid" in capsys.readouterr().err


def test_the_scan_reads_a_bounded_batch(db_url: str) -> None:
    log = Log.open(db_url, origin=ORIGIN)
    try:
        with pytest.raises(InvalidArgumentError) as caught:
            log.reader.events_after(0, limit=0)
        assert (caught.value.field, caught.value.reason) == ("limit", "must be >= 1, got 0")
    finally:
        log.close()


def test_an_empty_log_holds_no_personal_data(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(capsys, db_url) == {
        "format": "tenderproof-privacy-report/1",
        "events": [],
        "events_scanned": 0,
        "events_with_personal_data": 0,
        "fields_per_rule": {},
    }


def test_the_read_api_gives_each_events_personal_data(imported: str) -> None:
    log = Log.open(imported, origin=ORIGIN)
    try:
        with TestClient(create_app(settings_for(imported), log=log, now=lambda: T0)) as client:
            trader = client.get(f"/api/v1/tenders/{TRADER_OCID}/events")
            sample = client.get(f"/api/v1/tenders/{SAMPLE_OCID}/events")
    finally:
        log.close()
    assert trader.status_code == 200, trader.text
    (event,) = trader.json()["events"]
    assert event["personal_data"][-1] == {
        "path": "$['awards'][0]['suppliers'][0]['name']",
        "rule": "natural-person-reference",
    }
    assert event["payload"]["awards"][0]["suppliers"][0]["name"] == "Juana Pérez García"
    marked = [e["personal_data"] for e in sample.json()["events"]]
    assert [len(m) for m in marked] == [_contact_fields(e["payload"]) for e in sample.json()["events"]]
    assert marked[0][0] == {"path": "$['parties'][0]['contactPoint']['name']", "rule": "contact-point"}
