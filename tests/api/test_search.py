"""The search API on both engines: full text, filters, facets, and exports of exactly a search's
results (the same query parameters)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.log import Log
from ledger.procurement import importer
from tests.conftest import T0
from tests.procurement.test_fulltext import RELEASES

from .conftest import settings_for

APOSTROPHE = "\u2019"


@pytest.fixture
def client(log: Log, db_url: str) -> Iterator[TestClient]:
    package = {"uri": "u", "version": "1.1", "publishedDate": "2026-03-01T00:00:00Z", "publisher": {"name": "p"}}
    raw = json.dumps({**package, "releases": RELEASES}).encode()
    importer.import_files(log, [("ft.json", io.BytesIO(raw))], now=T0)
    with TestClient(create_app(settings_for(db_url), log=log)) as test_client:
        yield test_client


def _ocids(client: TestClient, **params: str) -> list[str]:
    response = client.get("/api/v1/tenders", params=params)
    assert response.status_code == 200, response.text
    return [t["ocid"] for t in response.json()["items"]]


def _n(*numbers: int) -> list[str]:
    return [f"ocds-ft0000-{n}" for n in numbers]


def test_full_text_search_without_accents_or_with_either_apostrophe(client: TestClient) -> None:
    assert _ocids(client, q="Constructora Aztlan") == _n(1)
    assert _ocids(client, q="renovacion") == _ocids(client, q="renovación") == _n(1)
    assert _ocids(client, q="здоров'я", sort="published_asc") == _n(2, 4)
    assert _ocids(client, q=f"здоров{APOSTROPHE}я", sort="published_asc") == _n(2, 4)
    assert _ocids(client, q="aztlan")[0] == "ocds-ft0000-1"  # relevance first by default with q


def test_filters_and_their_errors(client: TestClient) -> None:
    assert _ocids(client, awarded_min="1500") == _n(1)
    assert _ocids(client, flag="single_bidder") == _n(1)
    assert _ocids(client, supplier="XX-TEST/S-2") == _n(3)
    assert _ocids(client, year="2026", method="limited") == _n(2)
    # the bounds of `year` (1900-9999): 9999 has no next year to end at (a 500 found by schemathesis)
    assert _ocids(client, year="9999") == _ocids(client, year="1900") == []
    assert client.get("/api/v1/tenders/facets", params={"year": "9999"}).json()["total"] == 0
    assert _csv_ocids(client, "/api/v1/export/tenders.csv", year="9999") == []
    bad = client.get("/api/v1/tenders", params={"flag": "no_such_flag"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "query.flag"
    bad = client.get("/api/v1/tenders", params={"awarded_min": "5", "awarded_max": "1"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "query.awarded_max"
    bad = client.get("/api/v1/tenders", params={"sort": "relevance"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "query.sort"


def test_facets_count_the_results(client: TestClient) -> None:
    body = client.get("/api/v1/tenders/facets", params={"q": "aztlan"}).json()
    assert body["total"] == 3
    assert body["facets"]["buyer"] == [
        {"value": "B-1", "label": "Municipio de Aztlán", "count": 2},
        {"value": "B-4", "label": "Ciudad Norte", "count": 1},
    ]
    assert body["facets"]["flag"][0] == {"value": "any", "label": "any", "count": 1}
    assert client.get("/api/v1/tenders/facets").json()["total"] == 5


def _csv_ocids(client: TestClient, path: str, **params: str) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [row["ocid"] for row in csv.DictReader(io.StringIO(response.text))]


def test_exports_hold_exactly_the_searched_tenders(client: TestClient) -> None:
    searched = sorted(_ocids(client, q="aztlan"))
    assert searched == _n(1, 3, 5)
    assert _csv_ocids(client, "/api/v1/export/tenders.csv", q="aztlan") == searched  # in ocid order
    assert _csv_ocids(client, "/api/v1/export/awards.csv", q="aztlan") == _n(1, 3)  # 5 has no award
    assert _csv_ocids(client, "/api/v1/export/tenders.csv", flag="any") == _n(1)
    assert len(_csv_ocids(client, "/api/v1/export/tenders.csv")) == 5  # no filter: every tender
    records = client.get("/api/v1/export/records", params={"awarded_min": "1000"}).json()["records"]
    assert [r["ocid"] for r in records] == _n(1)
    releases = client.get("/api/v1/export/releases", params={"q": f"здоров{APOSTROPHE}я"}).json()["releases"]
    assert sorted(r["ocid"] for r in releases) == _n(2, 4)
    bad = client.get("/api/v1/export/tenders.csv", params={"flag": "nope"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "query.flag"


def test_an_estimated_count_and_a_cut_ranking_are_said_in_the_api_and_the_list(client: TestClient) -> None:
    from ledger.procurement import query

    exact = client.get("/api/v1/tenders/facets", params={"q": "aztlan"}).json()
    assert (exact["total"], exact["estimated"]) == (3, False)
    assert client.get("/api/v1/tenders", params={"q": "aztlan"}).json()["ranked_among"] is None
    listed = client.get("/tenders", params={"q": "aztlan"}).text
    assert ">3 tenders found<" in listed and 'id="ranked-among"' not in listed
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(query, "COUNT_EXACT_UP_TO", 2)
        patch.setattr(query, "RANK_AMONG", 2)
        body = client.get("/api/v1/tenders/facets", params={"q": "aztlan"}).json()
        assert body["estimated"] is True and body["total"] >= 3
        page = client.get("/api/v1/tenders", params={"q": "aztlan"}).json()
        assert page["ranked_among"] == 2 and len(page["items"]) == 2
        english = client.get("/tenders", params={"q": "aztlan"}).text
        assert f"About {body['total']} tenders found (an estimate)" in english
        assert "Sorted by relevance among the 2 newest of the tenders found." in english
        spanish = client.get("/tenders", params={"q": "aztlan", "lang": "es"}).text
        assert f"Unas {body['total']} licitaciones encontradas (una estimación)" in spanish
        assert "Ordenadas por relevancia entre las 2 más recientes" in spanish
