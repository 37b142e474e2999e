"""Buyer and supplier pages and their API answer, over the generated OCDS demo data set, on SQLite
and PostgreSQL: what an organisation won per currency, its tenders, the companies it bid against
(recomputed here from the compiled releases, not from the ``tender_parties`` projection), links from
the tender page, English and Spanish."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger.log import Log
from ledger.procurement import organisations, profiles, redflags
from ledger.store.schema import ocds_compiled
from tests.explorer.conftest import imported_client, imported_demo


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    with imported_demo(request.param, Path(tmp_path_factory.mktemp("orgs"))) as opened:
        yield opened


@pytest.fixture
def client(log: Log) -> Iterator[TestClient]:
    with imported_client(log) as test_client:
        yield test_client


def _compiled(log: Log) -> dict[str, dict[str, Any]]:
    with log.engine.connect() as conn:
        return {row.ocid: json.loads(row.compiled) for row in conn.execute(select(ocds_compiled))}


def _expected_suppliers(compiled: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per supplier key: the tenders it won, its total per currency, its name, and the competitors
    (other tenderers and suppliers) of the tenders where it bid or won, with their counts."""
    out: dict[str, dict[str, Any]] = {}
    for ocid, release in compiled.items():
        competing: set[str] = set()
        for award in redflags.live_awards(release):
            listed = [s for s in award.get("suppliers") or [] if isinstance(s, dict)]
            for supplier, key in zip(listed, organisations.key_each(release, listed), strict=True):
                if key is None:
                    continue
                competing.add(key)
                entry = out.setdefault(key, {"tenders": set(), "won": Counter(), "names": Counter()})
                entry["tenders"].add(ocid)
                entry["names"][supplier.get("name")] += 1
                value = award.get("value") or {}
                if isinstance(value.get("amount"), int | float) and value.get("currency"):
                    entry["won"][value["currency"]] += value["amount"]
        for role, key, _name in redflags.party_keys(release):
            if role == "tenderer":
                competing.add(key)
        for key in competing:
            if key in out:
                rivals = out[key].setdefault("rivals", Counter())
                rivals.update(competing - {key})
    return out


@pytest.fixture
def busiest(log: Log) -> tuple[str, dict[str, Any]]:
    """The supplier that won the most tenders, and what the releases say of it."""
    suppliers = _expected_suppliers(_compiled(log))
    key = max(sorted(suppliers), key=lambda k: len(suppliers[k]["tenders"]))
    assert len(suppliers[key]["tenders"]) >= 2
    return key, suppliers[key]


def test_api_answers_a_supplier_from_its_awards(client: TestClient, busiest: tuple[str, dict[str, Any]]) -> None:
    key, expected = busiest
    response = client.get("/api/v1/organisations", params={"key": key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key"] == key
    assert body["roles"]["supplier"] == len(expected["tenders"])
    assert {w["currency"]: w["amount"] for w in body["won"]} == pytest.approx(dict(expected["won"]))
    assert [w["amount"] for w in body["won"]] == sorted((w["amount"] for w in body["won"]), reverse=True)
    won = {t["ocid"] for t in body["tenders"] if "supplier" in t["roles"]}
    assert won == expected["tenders"] or (len(body["tenders"]) == 50 and won <= expected["tenders"])
    rivals = expected.get("rivals", Counter())
    assert {c["key"]: c["tenders"] for c in body["competitors"]} == {
        k: rivals[k] for k in (c["key"] for c in body["competitors"])
    }
    assert len(body["competitors"]) == min(20, len(rivals))
    if rivals:
        assert body["competitors"][0]["tenders"] == max(rivals.values())
    assert body["name"] in expected["names"]


def test_api_answers_a_buyer_with_its_awarded_totals(client: TestClient, log: Log) -> None:
    compiled = _compiled(log)
    buyers = Counter(organisations.buyer_key(release) for release in compiled.values())
    key, count = next((k, n) for k, n in buyers.most_common() if k is not None)
    totals: Counter[str] = Counter()
    for release in compiled.values():
        if organisations.buyer_key(release) == key:
            for award in redflags.live_awards(release):
                value = award.get("value") or {}
                if isinstance(value.get("amount"), int | float) and value.get("currency"):
                    totals[value["currency"]] += value["amount"]
    body = client.get("/api/v1/organisations", params={"key": key}).json()
    assert body["roles"]["buyer"] == count
    assert {b["currency"]: b["amount"] for b in body["bought"]} == pytest.approx(dict(totals))


def test_unknown_organisation_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/api/v1/organisations", params={"key": "XX-NONE/42"})
    assert response.status_code == 404
    assert "XX-NONE/42" in response.text
    assert client.get("/api/v1/organisations").status_code == 422
    page = client.get("/organisations/XX-NONE/42")
    assert page.status_code == 404
    assert "XX-NONE/42" in page.text


def test_page_shows_the_supplier_in_both_languages(client: TestClient, busiest: tuple[str, dict[str, Any]]) -> None:
    key, expected = busiest
    body = client.get("/api/v1/organisations", params={"key": key}).json()
    page = client.get("/organisations/" + quote(key, safe="/:"), params={"lang": "en"})
    assert page.status_code == 200, page.text
    assert f"<h1>{body['name']}</h1>" in page.text.replace("&amp;", "&")
    for ocid in list(expected["tenders"])[:3]:
        assert f'href="/tenders/{quote(ocid, safe="")}"' in page.text or len(body["tenders"]) == 50
    assert len(re.findall(r'data-won="[A-Z]{3}"', page.text)) == len(expected["won"])
    assert "Companies it bid against" in page.text or not body["competitors"]
    spanish = client.get("/organisations/" + quote(key, safe="/:"), params={"lang": "es"})
    assert "Sus licitaciones" in spanish.text
    assert "Its tenders" not in spanish.text


def test_name_links_resolve_to_the_organisation(client: TestClient, busiest: tuple[str, dict[str, Any]]) -> None:
    key, expected = busiest
    name = expected["names"].most_common(1)[0][0]
    response = client.get("/organisations", params={"name": name}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/organisations/" + quote(key, safe="/:")
    assert client.get("/organisations", params={"name": "No Such Company"}).status_code == 404
    ocid = sorted(expected["tenders"])[0]
    tender = client.get(f"/tenders/{quote(ocid, safe='')}")
    link = "/organisations?" + urlencode({"name": name})
    assert f'href="{link}"' in tender.text.replace("&amp;", "&")


def test_buyer_names_in_the_tenders_list_lead_to_their_pages(client: TestClient) -> None:
    """Every buyer named in the list links to its organisation page, beside the filter by that buyer."""
    listing = client.get("/tenders", params={"sort": "published_desc"})
    assert listing.status_code == 200
    links = re.findall(r'href="(/organisations\?name=[^"]+)">([^<]+)</a>', listing.text)
    assert links, "no buyer name links to an organisation page"
    for href, shown in links[:5]:
        page = client.get(href.replace("&amp;", "&"))
        assert page.status_code == 200, href
        assert html.unescape(shown) in html.unescape(page.text)
    assert "only this buyer" in listing.text


def test_its_tenders_page_by_page(client: TestClient, log: Log, busiest: tuple[str, dict[str, Any]]) -> None:
    """Every tender of an organisation, newest first, one page after another (``before``); a
    cursor that is not one gives 422 (API) or 400 (page) naming ``before``."""
    key, _ = busiest
    everything = client.get("/api/v1/organisations", params={"key": key}).json()
    assert everything["next_before"] is None  # fewer than 50 here
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(profiles, "TENDERS_SHOWN", 1)
        walked: list[str] = []
        before = None
        while True:
            body = client.get("/api/v1/organisations", params={"key": key, **({"before": before} if before else {})})
            assert body.status_code == 200, body.text
            walked += [t["ocid"] for t in body.json()["tenders"]]
            before = body.json()["next_before"]
            if before is None:
                break
            page = client.get("/organisations/" + quote(key, safe="/:"), params={"before": before})
            assert page.status_code == 200 and f"/tenders/{walked[-1]}" not in page.text  # older ones
        assert 'id="org-older"' in client.get("/organisations/" + quote(key, safe="/:")).text
    assert walked == [t["ocid"] for t in everything["tenders"]] and len(walked) >= 2
    bad = client.get("/api/v1/organisations", params={"key": key, "before": "not-a-cursor"})
    assert bad.status_code == 422 and "before" in bad.text
    page = client.get("/organisations/" + quote(key, safe="/:"), params={"before": "not-a-cursor"})
    assert page.status_code == 400 and "before" in page.text
