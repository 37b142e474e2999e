"""The officers' desk end to end in a real Chromium, against a real uvicorn server, a real SQLite
log and the in-process EVM: an officer signs in with their API key and records a whole tender
(published, bids committed and revealed, award, contract, payment), each event signed in the
browser from an encrypted keystore file (JSON V3); the entries become anchored while the page
watches; ``tenderproof verify`` on the tender's bundle recovers the officer's address for every
event. Also: errors beside their fields in Spanish with the focus on the first, every page type of
the desk axe-core clean without horizontal scroll at 320, 390, 768 and 1,366 px, and Swagger UI at /api/docs rendering with every other
host unreachable."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import func, select

from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from api import auth
from api.app import create_app
from cli import main
from explorer.desk import FIRST_TYPES, FORMS
from ledger.core.canonical import canonical_bytes
from ledger.log import Log
from ledger.procurement.officers import REGISTRY_OCID
from ledger.procurement.record import record
from ledger.store.schema import events as events_table
from ledger.submission import Submission
from settings import Settings
from tests.api.servers import threaded_server
from tests.api.test_writes import Clock
from tests.conftest import ORIGIN
from tests.explorer.browser import Watched, assert_no_sideways_scroll, axe_violations
from tests.explorer.conftest import EMBEDDED, anchor_final
from tests.procurement.helpers import CHAIN_ID, item, published

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple"
OFFICER_KEY = "0x" + "7a" * 32
OFFICER = Account.from_key(OFFICER_KEY).address
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NARROW = {"width": 320, "height": 640}
WIDE = {"width": 1366, "height": 900}


@dataclass
class Site:
    base: str
    log: Log
    clock: Clock
    dev: EmbeddedChain
    api_key: str
    keystore: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("desk")
    url = f"sqlite:///{directory / 'desk.sqlite3'}"
    log = Log.open(url, origin=ORIGIN)
    registered = Submission(
        ocid=REGISTRY_OCID, type="officer.registered", payload={"address": OFFICER, "name": "Ana Ruiz"}
    )
    record(log, [registered], now=START, signatures="optional", chain_id=CHAIN_ID)
    _, api_key = auth.create_key(log.engine, name="Ana Ruiz", role="officer", now=START, officer=OFFICER)
    keystore = directory / "ana.json"
    # scrypt with a small cost: the browser derives it at each signature (a real keystore takes longer)
    keystore.write_text(json.dumps(Account.encrypt(OFFICER_KEY, PASSWORD, kdf="scrypt", iterations=2**12)))
    clock = Clock(START)
    dev = EmbeddedChain()
    settings = Settings(
        database_url=url,
        origin=ORIGIN,
        chains=[EMBEDDED],
        rate_limit=None,
        signing_chain_id=CHAIN_ID,
        require_signatures=True,
        desk_session_seconds=30 * 86_400,  # the test moves the server's clock past the tender's deadline
    )
    try:
        with threaded_server(create_app(settings, log=log, now=clock, dev_chain=dev)) as base:
            yield Site(base, log, clock, dev, api_key, keystore)
    finally:
        log.close()


def _page(browser: Browser, viewport: dict[str, int], locale: str = "en-GB") -> Watched:
    context = browser.new_context(viewport=viewport, locale=locale)
    watched = Watched(context.new_page())
    watched.page.set_default_timeout(30_000)
    return watched


def _clean(watched: Watched, *, refused: bool = False) -> None:
    """No console error and no serious accessibility violation; with ``refused``, the browser's
    report of the desk's own 422 answers to a form with errors (bad input is a 4xx) is expected."""
    errors = watched.errors
    if refused:
        errors = [e for e in errors if "status of 422" not in e or "/desk/" not in e]
    assert errors == []
    assert axe_violations(watched.page) == []


def _sign_in(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/desk")
    page.get_by_label(re.compile("API key|clave de API")).fill(site.api_key)
    page.get_by_role("button", name=re.compile("Sign in|Iniciar sesión")).click()
    expect(page.locator(".desk-bar")).to_contain_text("Ana Ruiz")


def _sign_and_record(page: Page, site: Site, fields: dict[str, str]) -> dict[str, str]:
    for name, value in fields.items():
        field = page.locator(f'[name="{name}"]')
        if field.evaluate("(e) => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.set_input_files("#keystore", str(site.keystore))
    page.fill("#keystore-password", PASSWORD)
    page.get_by_role("button", name="Sign and record").click()
    page.wait_for_url(re.compile(r"/desk/entries/"))
    status = page.locator("#desk-status")
    match = re.search(r"/desk/entries/([^/]+)/(\d+)$", page.url)
    assert match is not None
    return {"ocid": match.group(1), "seq": match.group(2), "status": str(status.get_attribute("data-status"))}


def _commitment(bid: dict[str, object], salt: str) -> str:
    return hashlib.sha256(canonical_bytes(bid) + bytes.fromhex(salt)).hexdigest()


def test_an_officer_records_a_whole_tender_signed_in_the_browser(
    site: Site, browser: Browser, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    watched = _page(browser, WIDE)
    page = watched.page
    _sign_in(page, site)
    _clean(watched)
    page.get_by_role("link", name="Tender published").click()
    deadline = START + timedelta(days=10)
    published = _sign_and_record(
        page,
        site,
        {
            "tender.id": "SI-OP-2026-090",
            "tender.title": "Alumbrado público del barrio norte",
            "tender.procurementMethod": "open",
            "tender.value.amount": "850000",
            "tender.value.currency": "MXN",
            "tender.tenderPeriod.startDate": START.strftime("%Y-%m-%dT%H:%M"),
            "tender.tenderPeriod.endDate": deadline.strftime("%Y-%m-%dT%H:%M"),
            "buyer.id": "MX-MUN-042",
            "buyer.name": "Municipio de San Isidro",
        },
    )
    assert published["seq"] == "0" and published["status"] == "pending"
    ocid = published["ocid"]
    _clean(watched)
    bid = {
        "id": "bid-1",
        "tenderers": [{"id": "MX-RFC-PAV020202CD2", "name": "Pavimentos del Norte"}],
        "value": {"amount": 799000, "currency": "MXN"},
    }
    salt = "5a" * 16
    page.goto(f"{site.base}/desk/record?ocid={ocid}&type=bid.committed")
    _sign_and_record(
        page,
        site,
        {
            "bidder.id": "MX-RFC-PAV020202CD2",
            "bidder.name": "Pavimentos del Norte",
            "commitment": _commitment(bid, salt),
        },
    )
    site.clock.moment = deadline + timedelta(hours=1)
    steps = [
        (
            "bid.revealed",
            {
                "bid.id": "bid-1",
                "bid.tenderers[0].id": "MX-RFC-PAV020202CD2",
                "bid.tenderers[0].name": "Pavimentos del Norte",
                "bid.value.amount": "799000",
                "bid.value.currency": "MXN",
                "salt": salt,
            },
        ),
        (
            "award.issued",
            {
                "award.id": "award-1",
                "award.status": "active",
                "award.suppliers[0].id": "MX-RFC-PAV020202CD2",
                "award.suppliers[0].name": "Pavimentos del Norte",
                "award.value.amount": "799000",
                "award.value.currency": "MXN",
            },
        ),
        (
            "contract.signed",
            {
                "contract.id": "contract-1",
                "contract.awardID": "award-1",
                "contract.value.amount": "799000",
                "contract.value.currency": "MXN",
            },
        ),
        (
            "contract.payment",
            {
                "contract.id": "contract-1",
                "transaction.id": "pay-1",
                "transaction.value.amount": "399500",
                "transaction.value.currency": "MXN",
            },
        ),
    ]
    for kind, fields in steps:
        expect(page.get_by_role("link", name="Record the next event of this tender")).to_be_visible()
        page.goto(f"{site.base}/desk/record?ocid={ocid}&type={kind}")
        last = _sign_and_record(page, site, fields)
    assert last["seq"] == "5"
    _clean(watched)
    assert_no_sideways_scroll(page)
    # The entry is integrated, then anchored, while its page watches (status polling).
    site.log.integrate_all(now=site.clock.moment, commit_heads=True)
    expect(page.locator("#desk-status")).to_have_attribute("data-status", "integrated", timeout=20_000)
    anchor_final(ChainAnchorer(site.log, EMBEDDED, dev=site.dev, holder="tests", clock=lambda: site.clock.moment))
    expect(page.locator("#desk-status")).to_have_attribute("data-status", "anchored", timeout=20_000)
    expect(page.locator("#desk-status [data-when=anchored]")).to_be_visible()
    # The auditor's check: every event recovers the officer.
    bundle = page.request.get(f"{site.base}/api/v1/tenders/{ocid}/bundle")
    assert bundle.ok
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle.body())
    capsys.readouterr()
    assert main(["verify", str(path), "--rpc", f"{site.base}/rpc"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"signed by {OFFICER}") == 6, out
    events = json.loads(bundle.body())["events"]
    assert [e["envelope"]["type"] for e in events] == [
        "tender.published",
        "bid.committed",
        "bid.revealed",
        "award.issued",
        "contract.signed",
        "contract.payment",
    ]
    page.context.close()


def test_errors_by_field_in_spanish_on_a_phone(site: Site, browser: Browser) -> None:
    watched = _page(browser, NARROW, locale="es-ES")
    page = watched.page
    _sign_in(page, site)
    assert_no_sideways_scroll(page)
    page.goto(f"{site.base}/desk/new?type=tender.published")
    assert_no_sideways_scroll(page)
    _clean(watched)
    page.fill('[name="tender.id"]', "X-1")
    page.fill('[name="tender.value.amount"]', "mucho")
    page.set_input_files("#keystore", str(site.keystore))
    page.fill("#keystore-password", PASSWORD)
    page.get_by_role("button", name="Firmar y registrar").click()
    page.wait_for_selector("#desk-errors")
    field = page.locator('[id="tender.value.amount"]')
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[id="tender.value.amount-error"]')).to_contain_text("debe ser un número")
    # every problem at once, each beside its field (the title left empty too); the focus on the
    # form's first field in error
    expect(page.locator('[id="tender.title-error"]')).to_have_text("es obligatorio")
    first_invalid = page.evaluate("() => document.querySelector('[aria-invalid=\"true\"]').id")
    assert first_invalid == "tender.title"
    assert page.evaluate("() => document.activeElement.id") == first_invalid
    assert_no_sideways_scroll(page)
    _clean(watched, refused=True)
    # a wrong keystore password is said in Spanish, and nothing is sent
    page.fill('[name="tender.value.amount"]', "1000")
    page.fill('[name="tender.value.currency"]', "MXN")
    page.fill('[name="tender.title"]', "Plaza")
    page.fill('[name="tender.tenderPeriod.endDate"]', "2027-01-10T12:00")
    page.fill('[name="buyer.id"]', "MX-1")
    page.fill('[name="buyer.name"]', "Municipio")
    page.set_input_files("#keystore", str(site.keystore))
    page.fill("#keystore-password", "wrong")
    page.get_by_role("button", name="Firmar y registrar").click()
    expect(page.locator("#signing-status")).to_have_text(
        "Contraseña incorrecta para este archivo de almacén de claves."
    )
    assert "/desk/entries/" not in page.url
    page.context.close()


@pytest.fixture(scope="module")
def tender_ocid(site: Site) -> str:
    """A tender already in the log, for the desk's record form and entry page."""
    ocid = "ocds-tptest-desk-widths"
    period = {"startDate": "2026-12-01T09:00:00Z", "endDate": "2027-01-30T00:00:00Z"}
    payload = published(title="Alumbrado del parque", tenderPeriod=period)
    record(site.log, [item("tender.published", payload, ocid)], now=START, signatures="optional", chain_id=CHAIN_ID)
    return ocid


@pytest.mark.parametrize("width", [320, 390, 768, 1366])
def test_every_desk_page_fits_every_width_and_is_clean(
    site: Site, browser: Browser, tender_ocid: str, width: int
) -> None:
    """Every page type of the desk (sign-in, home, the form of each event type, an entry's status,
    an unknown entry) at 320, 390, 768 and 1,366 px: no sideways scroll, no console error,
    axe-core clean."""
    watched = _page(browser, {"width": width, "height": 800})
    page = watched.page
    page.goto(f"{site.base}/desk")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert_no_sideways_scroll(page)
    _clean(watched)
    _sign_in(page, site)
    paths = [
        "/desk",
        *[f"/desk/new?type={kind}" for kind in FIRST_TYPES],
        *[f"/desk/record?ocid={tender_ocid}&type={kind}" for kind in FORMS if kind not in FIRST_TYPES],
        f"/desk/entries/{tender_ocid}/0",
    ]
    for path in paths:
        page.goto(site.base + path)
        expect(page.locator(".desk-bar")).to_contain_text("Ana Ruiz")
        if path.startswith("/desk/record"):
            expect(page.locator("form [aria-invalid='true']")).to_have_count(0)  # a form, not an error
        assert_no_sideways_scroll(page)
        _clean(watched)
    response = page.goto(f"{site.base}/desk/entries/{tender_ocid}/99")
    assert response is not None and response.status == 404
    assert_no_sideways_scroll(page)
    assert axe_violations(page) == []
    assert [e for e in watched.errors if "404" not in e] == []
    page.context.close()


def test_keyboard_only_sign_in(site: Site, browser: Browser) -> None:
    watched = _page(browser, WIDE)
    page = watched.page
    page.goto(f"{site.base}/desk")
    page.focus("#api_key")
    page.keyboard.type(site.api_key)
    page.keyboard.press("Enter")
    expect(page.locator(".desk-bar")).to_contain_text("Ana Ruiz")
    assert_no_sideways_scroll(page)
    page.set_viewport_size(NARROW)
    assert_no_sideways_scroll(page)
    _clean(watched)
    page.context.close()


def test_api_docs_render_with_every_other_host_unreachable(site: Site, browser: Browser) -> None:
    watched = _page(browser, WIDE)
    page = watched.page
    asked_elsewhere: list[str] = []

    def only_this_server(route: Route) -> None:
        if route.request.url.startswith(site.base):
            route.continue_()
        else:
            asked_elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{site.base}/api/docs")
    expect(page.locator(".swagger-ui .title")).to_contain_text("Tenderproof")
    operation = page.locator("#operations-writes-record_event_api_v1_tenders__ocid__events_post")
    operation.locator(".opblock-summary").click()
    examples = operation.locator("select.examples-select__select, .examples-select select").first
    expect(examples).to_be_visible()
    examples.select_option("award.issued")
    request_body = operation.locator(".opblock-section-request-body")
    expect(request_body).to_contain_text('"award.issued"')
    expect(request_body).to_contain_text('"suppliers"')
    assert "additionalProp1" not in request_body.inner_text()
    assert asked_elsewhere == []
    assert watched.errors == []
    page.context.close()


def _event_count(site: Site) -> int:
    with site.log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())


def test_a_browser_wallet_signs_when_no_keystore_is_chosen(site: Site, browser: Browser) -> None:
    """An EIP-1193 wallet (``window.ethereum``) signs the desk's typed data: the wallet here is
    eth-account's ``sign_typed_data`` on the JSON the page hands it (``eth_signTypedData_v4``), so
    the desk's typed data is checked by a library that is not the desk's own. A refusal by the
    wallet is said, and nothing is recorded."""
    asked: list[str] = []
    refuse = {"next": False}

    def wallet(method: str, params: str) -> str:
        asked.append(method)
        if method == "eth_requestAccounts":
            return json.dumps([OFFICER.lower()])
        if method == "eth_signTypedData_v4":
            if refuse["next"]:
                raise RuntimeError("User rejected the request.")
            address, typed = json.loads(params)
            assert address.lower() == OFFICER.lower()
            signed = Account.sign_typed_data(OFFICER_KEY, full_message=json.loads(typed))
            return json.dumps("0x" + bytes(signed.signature).hex())
        raise RuntimeError(f"unsupported method {method}")

    context = browser.new_context(viewport=WIDE, locale="en-GB")
    context.expose_function("__testWallet", wallet)
    context.add_init_script(
        "window.ethereum = {request: async ({method, params}) =>"
        " JSON.parse(await window.__testWallet(method, JSON.stringify(params || [])))};"
    )
    watched = Watched(context.new_page())
    page = watched.page
    page.set_default_timeout(30_000)
    _sign_in(page, site)
    page.goto(f"{site.base}/desk/new?type=tender.published")
    expect(page.locator("#wallet-note")).to_be_visible()
    start = site.clock.moment
    fields = {
        "tender.id": "SI-OP-2026-WALLET",
        "tender.title": "Mantenimiento de parques",
        "tender.value.amount": "120000",
        "tender.value.currency": "MXN",
        "tender.tenderPeriod.startDate": start.strftime("%Y-%m-%dT%H:%M"),
        "tender.tenderPeriod.endDate": (start + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M"),
        "buyer.id": "MX-MUN-042",
        "buyer.name": "Municipio de San Isidro",
    }
    for name, value in fields.items():
        page.fill(f'[name="{name}"]', value)
    before = _event_count(site)
    refuse["next"] = True
    page.get_by_role("button", name="Sign and record").click()
    expect(page.locator("#signing-status")).to_contain_text("The browser wallet did not sign")
    assert "/desk/entries/" not in page.url
    assert asked.count("eth_signTypedData_v4") == 1
    assert _event_count(site) == before
    refuse["next"] = False
    page.get_by_role("button", name="Sign and record").click()
    page.wait_for_url(re.compile(r"/desk/entries/"))
    match = re.search(r"/desk/entries/([^/]+)/(\d+)$", page.url)
    assert match is not None and match.group(2) == "0"
    # The server recorded it signed (require_signatures is on; the API key's officer is checked),
    # and the signature in the envelope is the wallet's, over the submission the desk built.
    events = page.request.get(f"{site.base}/api/v1/tenders/{match.group(1)}/events").json()["events"]
    envelope = events[0]["envelope"]
    assert envelope["submission"]["officer"] == OFFICER
    assert asked.count("eth_signTypedData_v4") == 2
    assert _event_count(site) == before + 1
    _clean(watched)
    context.close()
