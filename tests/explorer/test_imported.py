"""Imported tenders read true on the explorer (issue 18), on SQLite and PostgreSQL: the compiled
release on a tender's page is the export's and ocdsmerge's, timelines show each release's own
date beside when it was recorded, awards / contracts / payments show supplier and amount in their
own currency, OCDS status codes are kept and filterable, schema problems show as data-quality notes."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ocdsmerge import Merger

from api.app import create_app
from ledger.log import Log
from ledger.procurement import export, importer, ocds
from settings import Settings
from tests.conftest import ORIGIN, T0

ASSETS = Path(__file__).parent.parent / "assets" / "ocds"
OCID = "ocds-abc123-mixed"


def _release(rid: str, date: str, tags: list[str], **extra: Any) -> dict[str, Any]:
    return {"ocid": OCID, "id": rid, "date": date, "tag": tags, "initiationType": "tender", **extra}


#: A tender estimated in MXN and awarded in USD, declared unsuccessful later, one null in a field;
#: its releases arrive out of date order (the older one last).
MIXED = [
    _release(
        "r2",
        "2026-02-01T00:00:00-06:00",
        ["award", "contract", "implementation"],
        awards=[
            {
                "id": "a1",
                "status": "active",
                "value": {"amount": 1500, "currency": "USD"},
                "suppliers": [{"id": "MX-RFC-XYZ", "name": "Proveedora del Norte"}],
            }
        ],
        contracts=[
            {
                "id": "c1",
                "awardID": "a1",
                "status": "active",
                "value": {"amount": 1500, "currency": "USD"},
                "implementation": {
                    "transactions": [
                        {
                            "id": "p1",
                            "value": {"amount": 700, "currency": "USD"},
                            "payee": {"name": "Proveedora del Norte"},
                        }
                    ]
                },
            }
        ],
    ),
    _release(
        "r3",
        "2026-03-01T00:00:00-06:00",
        ["tenderUpdate"],
        tender={"id": "t1", "status": "unsuccessful", "submissionMethod": [None]},
    ),
    _release(
        "r1",
        "2026-01-01T00:00:00-06:00",
        ["tender"],
        buyer={"id": "MX-DEP-1", "name": "Secretaría de Obras"},
        tender={
            "id": "t1",
            "title": "Puente peatonal",
            "status": "active",
            "value": {"amount": 20000, "currency": "MXN"},
        },
    ),
]


@pytest.fixture
def client(log: Log, db_url: str) -> Iterator[TestClient]:
    for path in sorted(ASSETS.glob("*.json")):
        with path.open("rb") as stream:
            importer.import_files(log, [(path.name, stream)], now=T0)
    for i, release in enumerate(MIXED):
        body = json.dumps({"releases": [release]}).encode()
        importer.import_files(log, [(f"mixed{i}.json", io.BytesIO(body))], now=T0)
    settings = Settings(database_url=db_url, origin=ORIGIN, chains=[], rate_limit=None)
    with TestClient(create_app(settings, log=log)) as test_client:
        yield test_client


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _compiled_on(page: str) -> dict[str, Any]:
    found = re.search(r'<pre class="json" tabindex="0">(.*?)</pre>', page, re.S)
    assert found is not None
    compiled: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return compiled


def test_the_compiled_release_on_every_tender_page_is_the_exports_and_ocdsmerges(client: TestClient, log: Log) -> None:
    merger = Merger(schema=json.loads(ocds.RELEASE_SCHEMA.read_text()))
    tenders = list(export.iter_tenders(log.engine))
    assert len(tenders) >= 5
    for ocid, releases in tenders:
        page = client.get(f"/tenders/{ocid}")
        assert page.status_code == 200, ocid
        shown = _compiled_on(page.text)
        assert shown == export.record(ocid, releases)["compiledRelease"], ocid
        assert shown == merger.create_compiled_release(releases), ocid
        with log.engine.connect() as conn:
            assert importer.compiled_release(conn, ocid) == shown, ocid
    mixed = _compiled_on(client.get(f"/tenders/{OCID}").text)
    # the older release arriving last does not win over the newer ones
    assert mixed["tender"]["status"] == "unsuccessful" and mixed["tender"]["title"] == "Puente peatonal"
    assert mixed["awards"][0]["suppliers"][0]["name"] == "Proveedora del Norte"
    assert mixed["buyer"]["name"] == "Secretaría de Obras" and mixed["date"] == "2026-03-01T00:00:00-06:00"


def test_timeline_shows_release_dates_suppliers_and_amounts_in_their_own_currency(client: TestClient) -> None:
    page = client.get(f"/tenders/{OCID}")
    text = _text(page.text)
    # each release's own date (UTC), and when it was recorded
    assert "Feb 1, 2026, 6:00:00 AM UTC" in text and "recorded" in text
    assert "recorded Nov 23, 2026" in text
    assert "Award (active) · to: Proveedora del Norte · $1,500.00" in text
    assert "Contract (active) · to: Proveedora del Norte · $1,500.00" in text
    assert "Payment · to: Proveedora del Norte · $700.00" in text
    assert "MX$20,000.00" in text  # the estimate, in its own currency
    assert "MX$1,500" not in text  # never the USD award in pesos
    # OCDS status kept
    assert "Unsuccessful" in text and "Cancelled" not in text.split("Timeline")[0]


def test_schema_problems_show_as_data_quality_notes(client: TestClient) -> None:
    text = _text(client.get(f"/tenders/{OCID}").text)
    assert "Data-quality notes" in text
    assert 'r3 · tender.submissionMethod[0] : null is not of type "string"' in text
    spanish = _text(client.get(f"/tenders/{OCID}", headers={"Accept-Language": "es"}).text)
    assert "Notas sobre la calidad de los datos" in spanish and "Desierta" in spanish


def test_unsuccessful_is_a_status_of_its_own(client: TestClient) -> None:
    api = client.get("/api/v1/tenders", params={"status": "unsuccessful"})
    assert api.status_code == 200, api.text
    assert [t["ocid"] for t in api.json()["items"]] == [OCID]
    assert OCID not in client.get("/api/v1/tenders", params={"status": "cancelled"}).text
    page = client.get("/tenders", params={"status": "unsuccessful"})
    assert page.status_code == 200 and f"/tenders/{OCID}" in page.text
