"""Phone first, for real, in a real Chromium against a real server, database and chain: every page
type at 320, 390, 768 and 1,366 px wide without sideways scrolling, axe-core clean; amounts never
broken across lines; a supplier page reached by clicking a name; the sharing tools (copy link, QR
code, printable certificate, link previews)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, expect

from demo import tenders as demo
from demo.ocds import import_demo
from tests.api.servers import threaded_server
from tests.explorer.browser import Watched, axe_violations, screenshot
from tests.explorer.conftest import SIGNED, Ledger, app_for, recorded_ledger

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (320, 390, 768, 1366)
#: A tender of the imported OCDS demo data set (awards to named suppliers, large amounts).
IMPORTED = "ocds-tp0dem-2025-1000"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with recorded_ledger("sqlite", tmp_path_factory.mktemp("phone")) as recorded:
        import_demo(recorded.log, now=datetime(2026, 11, 1, tzinfo=UTC))
        yield recorded


@pytest.fixture(scope="module")
def base(ledger: Ledger) -> Iterator[str]:
    with threaded_server(app_for(ledger)) as url:
        yield url


def _organisation(base: str) -> str:
    return "/organisations/" + quote("name:constructora aztlan", safe="/:")


PAGES = {
    "home": "/",
    "tenders": "/tenders",
    "tender": f"/tenders/{SIGNED}",
    "imported-tender": f"/tenders/{IMPORTED}",
    "event": f"/tenders/{demo.ROAD}/events/1",
    "verify": f"/verify?ocid={demo.ROAD}",
    "anchors": "/anchors",
    "anchor": "/anchors/dev/1",
    "data": "/data",
    "organisation": "/organisations/name:constructora%20aztlan",
    "about": "/about",
    "not-found": "/nowhere",
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_no_page_scrolls_sideways(base: str, browser: Browser, name: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800}, locale="en-GB")
    try:
        watched = Watched(context.new_page())
        p = watched.page
        response = p.goto(base + PAGES[name])
        assert response is not None and response.status == (404 if name == "not-found" else 200)
        if name == "verify":
            expect(p.locator("#verify-result [data-result]")).to_have_attribute("data-result", "verified")
        p.wait_for_load_state("networkidle")
        scroll, inner = p.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            screenshot(p, f"overflow-{name}-{width}")
        wide = p.evaluate(
            """(inner) => [...document.querySelectorAll('body *')]
                .filter((e) => e.getBoundingClientRect().right > inner + 0.5)
                .slice(0, 5).map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)""",
            inner,
        )
        assert scroll <= inner, f"{name} at {width}px is {scroll}px wide: {wide}"
        # no amount is broken across two lines
        broken = p.evaluate(
            """() => [...document.querySelectorAll('.amount')].filter((e) => {
                const rects = [...e.getClientRects()];
                return rects.length > 1 && new Set(rects.map((r) => Math.round(r.top))).size > 1;
            }).map((e) => e.textContent)"""
        )
        assert broken == []
        if width in (320, 1366):
            assert axe_violations(p) == []
        # a 404 page's own status is the only console error Chromium reports on it
        assert [e for e in watched.errors if not (name == "not-found" and "404" in e)] == []
    finally:
        context.close()


def test_supplier_page_reached_by_clicking_a_name(base: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    try:
        watched = Watched(context.new_page())
        p = watched.page
        p.goto(f"{base}/tenders/{IMPORTED}")
        link = p.locator("[data-org-link]").last
        name = link.inner_text()
        link.click()
        expect(p.locator("h1")).to_have_text(name)
        assert "/organisations/" in p.url
        expect(p.locator("table.cards tbody tr").first).to_be_visible()
        expect(p.locator(f"tr[data-ocid='{IMPORTED}']")).to_have_count(1)
        screenshot(p, "organisation-phone")
        assert axe_violations(p) == []
        assert watched.errors == []
    finally:
        context.close()


def test_share_a_tender_copy_its_link_and_see_its_qr_code(base: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    try:
        watched = Watched(context.new_page())
        p = watched.page
        p.goto(f"{base}/tenders/{SIGNED}")
        assert p.locator("meta[property='og:title']").get_attribute("content") == "Street lighting renewal"
        assert p.locator("meta[property='og:url']").get_attribute("content") == f"{base}/tenders/{SIGNED}"
        qr = p.locator("svg.qr")
        expect(qr).to_have_attribute("aria-label", "QR code of this page: Street lighting renewal")
        assert qr.bounding_box()["width"] >= 120  # type: ignore[index]
        p.get_by_role("button", name="Copy link").click()
        expect(p.locator("[data-copied]")).to_have_text("Link copied.")
        assert p.evaluate("navigator.clipboard.readText()") == f"{base}/tenders/{SIGNED}"
        p.locator("#event-1 h3 a").click()
        expect(p).to_have_url(f"{base}/tenders/{SIGNED}/events/1")
        expect(p.locator("#share-url")).to_have_value(f"{base}/tenders/{SIGNED}/events/1")
        assert axe_violations(p) == []
        assert watched.errors == []
    finally:
        context.close()


def test_verify_result_prints_as_a_certificate(base: str, browser: Browser, ledger: Ledger) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB")
    try:
        watched = Watched(context.new_page())
        p = watched.page
        p.goto(f"{base}/verify?ocid={demo.ROAD}")
        certificate = p.locator("[data-certificate='verified']")
        expect(certificate).to_contain_text(f"the proof bundle of tender {demo.ROAD}")
        expect(certificate.locator("dd").nth(3)).to_have_text(re.compile(r"^local development chain \(chain id \d+\)$"))
        contract = p.locator("[data-certificate] dd.mono").first.inner_text()
        assert contract.startswith("0x") and len(contract) == 42
        expect(certificate).to_contain_text("tenderproof-verify bundle.json --rpc http")
        # the status column is readable: each badge on one card, at least as wide as its text
        widths = p.eval_on_selector_all("table.verify-events td.status", "(cells) => cells.map((c) => c.offsetWidth)")
        assert widths and min(widths) >= 200
        p.emulate_media(media="print")
        expect(p.locator("header.site")).to_be_hidden()
        expect(p.locator("#ocid-form")).to_be_hidden()
        expect(certificate).to_be_visible()
        screenshot(p, "certificate-print")
        assert watched.errors == []
    finally:
        context.close()
