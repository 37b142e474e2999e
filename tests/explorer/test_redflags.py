"""Red flags on the explorer: each tender's flags with what its data showed, and the ledger-wide
counts on the open data page, from the generated OCDS demo data set (which raises every flag), on
SQLite and PostgreSQL, in English and Spanish."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.numbers import format_currency
from fastapi.testclient import TestClient
from sqlalchemy import select

from explorer.i18n import catalog
from ledger.log import Log
from ledger.procurement import redflags
from ledger.store.schema import tender_flags, tender_index
from tests.explorer.conftest import imported_client, imported_demo


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Log]:
    with imported_demo(request.param, Path(tmp_path_factory.mktemp("flags"))) as opened:
        yield opened


@pytest.fixture
def client(log: Log) -> Iterator[TestClient]:
    with imported_client(log) as test_client:
        yield test_client


def _flagged(log: Log, code: str) -> str:
    with log.engine.connect() as conn:
        return str(conn.execute(select(tender_flags.c.ocid).where(tender_flags.c.code == code).limit(1)).scalar_one())


def _codes(html: str) -> list[str]:
    return re.findall(r'<li data-flag="([A-Za-z0-9_]+)"', html)


def test_a_tender_page_lists_its_flags_with_their_evidence(client: TestClient, log: Log) -> None:
    ocid = _flagged(log, "award_above_estimate")
    flags = redflags.tender_flags(log.engine, ocid)
    page = client.get(f"/tenders/{ocid}", params={"lang": "en"})
    assert page.status_code == 200
    assert _codes(page.text) == [flag["code"] for flag in flags]
    evidence = next(f["evidence"] for f in flags if f["code"] == "award_above_estimate")
    awarded = format_currency(evidence["awarded"], evidence["currency"], locale="en")
    estimate = format_currency(evidence["estimate"], evidence["currency"], locale="en")
    assert "Award value higher than the estimated value" in page.text
    assert f"Awarded {awarded} against an estimate of {estimate}" in page.text


def test_flags_speak_the_page_language(client: TestClient, log: Log) -> None:
    ocid = _flagged(log, "short_tender_period")
    spanish = client.get(f"/tenders/{ocid}", params={"lang": "es"}).text
    title = catalog("es")["Short time frame for bid submission"]
    assert title != "Short time frame for bid submission" and title in spanish
    assert "Se pudieron presentar ofertas durante" in spanish


def test_a_tender_without_flags_says_so(client: TestClient, log: Log) -> None:
    with log.engine.connect() as conn:
        flagged = select(tender_flags.c.ocid)
        quiet = conn.execute(
            select(tender_index.c.ocid).where(tender_index.c.ocid.not_in(flagged)).order_by(tender_index.c.ocid)
        ).scalars()
        ocid = next(o for o in quiet if redflags.tender_flags(log.engine, o) == [])
    page = client.get(f"/tenders/{ocid}", params={"lang": "en"})
    assert _codes(page.text) == []
    assert "raise none of the red flags" in page.text


def test_open_data_counts_every_flag(client: TestClient, log: Log) -> None:
    counts = redflags.flag_counts(log.engine)
    # the demo data set raises every flag of the first catalogue and Cardinal's R003 / R018 (it
    # publishes no bid details: R028, R030, R035, R036 need them)
    assert all(counts[code] > 0 for code in [*redflags.CODES[:5], "R003", "R018"]), counts
    page = client.get("/data", params={"lang": "en"}).text
    rows = re.findall(
        r'<tr data-flag="([A-Za-z0-9_]+)">.*?<td class="num">(?:<a href="([^"]+)"[^>]*>)?([\d,]+)', page, flags=re.S
    )
    assert {code: int(text.replace(",", "")) for code, _, text in rows} == counts
    # each count links to the list of the tenders raising that flag, which finds as many
    assert {code: href for code, href, _ in rows} == {
        code: f"/tenders?flag={code}" if n else "" for code, n in counts.items()
    }
    for code in ("single_bidder", "R003"):
        listed = client.get("/tenders", params={"flag": code, "lang": "en"}).text
        found = re.search(r'id="result-count">([\d,]+) tenders found', listed)
        assert found is not None and int(found.group(1).replace(",", "")) == counts[code]


def test_a_tender_page_shows_its_organisations_flags_and_the_evidence_download(client: TestClient, log: Log) -> None:
    """The demo data's direct awards add up past its smallest open tender (Cardinal's R055): the
    buyer and supplier are flagged, and each of their tenders' pages says so, in both languages."""
    with log.engine.connect() as conn:
        ocids = list(conn.execute(select(tender_index.c.ocid).order_by(tender_index.c.ocid)).scalars())
    ocid = next(o for o in ocids if redflags.tender_party_flags(log.engine, o))
    parties = redflags.tender_party_flags(log.engine, ocid)
    page = client.get(f"/tenders/{ocid}", params={"lang": "en"}).text
    shown = re.findall(r'<li data-party-flag="(\w+)" data-role="(\w+)">', page)
    assert shown == [(p["code"], p["role"]) for p in parties]
    assert "Awards adding up past the open-procedure amount (R055)" in page and "not proof of wrongdoing" in page
    assert f"/api/v1/tenders/{ocid}/redflags/evidence" in page
    download = client.get(f"/api/v1/tenders/{ocid}/redflags/evidence")
    assert download.status_code == 200 and download.json()["subject"] == {"ocid": ocid}
    spanish = client.get(f"/tenders/{ocid}", params={"lang": "es"}).text
    assert catalog("es")["Awards adding up past the open-procedure amount (R055)"] in spanish
    assert "Alertas de las organizaciones de esta licitación" in spanish
