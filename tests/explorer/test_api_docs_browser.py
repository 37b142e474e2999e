"""/api/docs (Swagger UI, served by the application) in a real Chromium against a real uvicorn
server: once Swagger UI has rendered the operations, and again with one operation expanded (its
parameters, example body and responses shown), axe-core finds no violation of any impact, the page
does not scroll sideways and nothing is written to the console (a Content-Security-Policy refusal
would be); at 320 and 1,366 px. An operation opens from the keyboard, and "Try it out" reaches the
API under the page's policy; the Authorize dialog and a request body being edited are clean too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from api.app import create_app
from ledger.log import Log
from tests.api.conftest import settings_for
from tests.api.servers import threaded_server
from tests.explorer.browser import Watched, assert_no_sideways_scroll, axe_violations, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = {"narrow": {"width": 320, "height": 640}, "wide": {"width": 1366, "height": 900}}
OPERATION = "#operations-writes-record_event_api_v1_tenders__ocid__events_post"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'docs.sqlite3'}"
    log = Log.open(url, origin="tenderproof.test/log")
    try:
        with threaded_server(create_app(settings_for(url), log=log)) as served:
            yield served
    finally:
        log.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORTS[request.param], locale="en-GB")
    watched = Watched(context.new_page())
    watched.page.set_default_timeout(30_000)
    watched.name = request.param  # type: ignore[attr-defined]
    try:
        yield watched
    finally:
        context.close()


def test_api_docs_are_clean_rendered_and_with_an_operation_open(base: str, page: Watched) -> None:
    p = page.page
    response = p.goto(f"{base}/api/docs")
    assert response is not None and response.status == 200
    expect(p.locator("html")).to_have_attribute("lang", "en")
    expect(p.locator(".swagger-ui .title")).to_contain_text("Tenderproof")
    expect(p.locator(".opblock").first).to_be_visible()
    assert p.locator(".opblock").count() > 10  # every operation rendered, not only the first
    assert_no_sideways_scroll(p)
    assert axe_violations(p, every_impact=True) == []

    operation = p.locator(OPERATION)
    summary = operation.locator(".opblock-summary-control")
    expect(summary).to_have_attribute("aria-expanded", "false")
    summary.click()
    expect(summary).to_have_attribute("aria-expanded", "true")
    expect(operation.locator(".opblock-section-request-body")).to_contain_text('"type"')
    expect(operation.locator(".responses-wrapper")).to_be_visible()
    screenshot(p, f"api-docs-{page.name}")  # type: ignore[attr-defined]
    assert_no_sideways_scroll(p)
    assert axe_violations(p, every_impact=True) == []
    assert page.errors == []


def test_an_operation_opens_from_the_keyboard_and_runs_under_the_pages_policy(base: str, page: Watched) -> None:
    p = page.page
    p.goto(f"{base}/api/docs")
    summary = p.locator(OPERATION).locator(".opblock-summary-control")
    summary.focus()
    p.keyboard.press("Enter")
    expect(summary).to_have_attribute("aria-expanded", "true")
    expect(p.locator(OPERATION).locator(".opblock-body")).to_be_visible()
    p.keyboard.press("Enter")
    expect(summary).to_have_attribute("aria-expanded", "false")

    p.locator(".btn.authorize").first.click()
    dialog = p.locator(".modal-ux")  # a div: Swagger UI gives it no dialog role
    expect(dialog).to_be_visible()
    assert axe_violations(p, every_impact=True) == []
    dialog.locator(".close-modal").get_by_role("img", name="Close").click()  # the icon that was nameless
    expect(dialog).to_have_count(0)

    summary.click()
    p.locator(OPERATION).get_by_role("button", name="Try it out").click()
    expect(p.get_by_role("textbox", name="Request body")).to_be_visible()
    assert axe_violations(p, every_impact=True) == []

    health = p.locator("#operations-ops-healthz_healthz_get")
    health.locator(".opblock-summary-control").click()
    health.get_by_role("button", name="Try it out").click()
    health.get_by_role("button", name="Execute").click()
    expect(health.locator(".live-responses-table tr.response .response-col_status")).to_have_text("200")
    assert page.errors == []
