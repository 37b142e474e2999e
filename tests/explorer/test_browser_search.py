"""The journalist's questions answered by clicking, in a real Chromium against a real server and
database (issue 19): a search typed without accents finds the accented names, and either
apostrophe finds both spellings; awards above an amount and everything a supplier won, by
clicking; the red flag filter and /data's counts lead to the flagged
tenders, marked in the list; the CSV download of a search holds exactly the tenders listed; the
list never scrolls sideways from 320 to 1,366 px; no console error, axe-core clean."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from api.app import create_app
from ledger.log import Log
from ledger.procurement import importer
from tests.api.conftest import settings_for
from tests.api.servers import threaded_server
from tests.conftest import ORIGIN, T0
from tests.explorer.browser import Watched, axe_violations
from tests.procurement.test_fulltext import RELEASES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (320, 390, 768, 1366)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'tenderproof.sqlite3'}"
    log = Log.open(url, origin=ORIGIN)
    package = {"uri": "u", "version": "1.1", "publishedDate": "2026-03-01T00:00:00Z", "publisher": {"name": "p"}}
    raw = json.dumps({**package, "releases": RELEASES}).encode()
    importer.import_files(log, [("ft.json", io.BytesIO(raw))], now=T0)
    try:
        with threaded_server(create_app(settings_for(url), log=log)) as served:
            yield served
    finally:
        log.close()


@pytest.fixture(params=[390, 1366])
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(
        viewport={"width": request.param, "height": 900}, locale="en-GB", accept_downloads=True
    )
    watched = Watched(context.new_page())
    watched.page.set_default_timeout(20_000)
    try:
        yield watched
    finally:
        context.close()


def _search(page: Page, base: str, words: str) -> None:
    page.goto(f"{base}/tenders?lang=en")
    page.get_by_label("Search", exact=True).fill(words)
    page.get_by_label("Search", exact=True).press("Enter")
    page.wait_for_url(re.compile(r"/tenders\?q="))


def _listed(page: Page) -> list[str]:
    return page.locator("table.tenders tbody tr[data-ocid]").evaluate_all("(rows) => rows.map((r) => r.dataset.ocid)")


def test_search_without_accents_finds_the_accented_names(page: Watched, base: str) -> None:
    _search(page.page, base, "constructora aztlan")
    expect(page.page.locator("#result-count")).to_have_text("1 tender found")
    expect(page.page.locator("table.tenders tbody")).to_contain_text("Renovación del mercado")
    _search(page.page, base, "renovacion")
    assert _listed(page.page) == ["ocds-ft0000-1"]
    _search(page.page, base, "здоров'я")  # the ASCII apostrophe finds the typographic one too
    expect(page.page.locator("#result-count")).to_have_text("2 tenders found")
    expect(page.page.locator("table.tenders tbody")).to_contain_text("Закупівля для охорони здоров\u2019я")
    assert sorted(_listed(page.page)) == ["ocds-ft0000-2", "ocds-ft0000-4"]
    assert page.errors == []
    assert axe_violations(page.page) == []


def test_the_flag_filter_and_the_open_data_counts_lead_to_the_flagged_tenders(page: Watched, base: str) -> None:
    p = page.page
    p.goto(f"{base}/data?lang=en")
    p.locator('tr[data-flag="single_bidder"] td.num a').click()
    p.wait_for_url(re.compile(r"/tenders\?flag=single_bidder"))
    expect(p.locator("#result-count")).to_have_text("1 tender found")
    assert _listed(p) == ["ocds-ft0000-1"]
    expect(p.locator('tr[data-ocid="ocds-ft0000-1"] .tender-flag-marker')).to_contain_text("red flags")
    # the same through the form: unfold the filters, choose the flag, search
    p.goto(f"{base}/tenders?lang=en")
    assert p.locator("table.tenders .tender-flag-marker").count() == 1  # only tender 1 raises any
    p.get_by_text("More filters").click()
    p.get_by_role("combobox", name="Red flag").select_option("award_above_estimate")
    p.get_by_role("button", name="Search").click()
    p.wait_for_url(re.compile(r"flag=award_above_estimate"))
    assert _listed(p) == ["ocds-ft0000-1"]
    assert page.errors == []
    assert axe_violations(p) == []


def test_the_filtered_csv_holds_the_tenders_listed(page: Watched, base: str, tmp_path: Path) -> None:
    p = page.page
    _search(p, base, "aztlan")
    shown = _listed(p)
    assert sorted(shown) == ["ocds-ft0000-1", "ocds-ft0000-3", "ocds-ft0000-5"]
    with p.expect_download() as download:
        p.locator('a[data-export="tenders_csv"]').click()
    saved = tmp_path / "tenders.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(saved.open(encoding="utf-8")))
    assert sorted(r["ocid"] for r in rows) == sorted(shown)
    assert page.errors == []


def test_awards_above_an_amount_and_everything_a_supplier_won_by_clicking(page: Watched, base: str) -> None:
    """The journalist's "awards above an amount" filters on what was awarded, not on the estimate;
    "everything a supplier won" is a click on the supplier's count; the list says how many."""
    p = page.page
    p.goto(f"{base}/tenders?lang=en")
    p.get_by_text("More filters").click()
    p.get_by_label("Awarded value from").fill("600")
    p.get_by_role("button", name="Search").click()
    p.wait_for_url(re.compile(r"amin=600"))
    expect(p.locator("#result-count")).to_have_text("1 tender found")
    # tender 1 was awarded 2,000 EUR; tender 3 only 500, though its estimate is 900
    assert _listed(p) == ["ocds-ft0000-1"]
    p.get_by_label("Awarded value from").fill("")
    p.get_by_label("Estimated value from").fill("600")
    p.get_by_role("button", name="Search").click()
    p.wait_for_url(re.compile(r"min=600"))
    expect(p.locator("#result-count")).to_have_text("3 tenders found")
    assert sorted(_listed(p)) == ["ocds-ft0000-1", "ocds-ft0000-2", "ocds-ft0000-3"]
    # everything a supplier won: its count among the suppliers of the whole list, clicked
    p.goto(f"{base}/tenders?lang=en")
    p.get_by_text("Refine: counts by status").click()
    supplier = p.locator('a[data-facet="supplier"]', has_text="Constructora Aztlán SA")
    expect(supplier.locator("xpath=following-sibling::span[1]")).to_have_text("1")
    supplier.click()
    p.wait_for_url(re.compile(r"supplier="))
    expect(p.locator("#result-count")).to_have_text("1 tender found")
    assert _listed(p) == ["ocds-ft0000-1"]
    expect(p.locator('tr[data-ocid="ocds-ft0000-1"]')).to_contain_text("Renovación del mercado")
    assert page.errors == []
    assert axe_violations(p) == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_list_never_scrolls_sideways(browser: Browser, base: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800}, locale="es-ES")
    try:
        p = context.new_page()
        p.goto(f"{base}/tenders?q=aztlan&flag=any&amin=1")
        p.get_by_text("Más filtros").wait_for()
        for summary in p.locator("summary").all():  # with everything unfolded
            summary.click()
        wide = p.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{width} px: the page is {wide} px wider than the window"
    finally:
        context.close()
