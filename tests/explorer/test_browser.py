"""End to end in a real Chromium against a real uvicorn server, a real database and a real chain
(the in-process EVM through the app's /rpc; and a real `hardhat node` below): search and open a
tender and see its badges turn verified in the browser, verify a dropped bundle, see a tampered one
fail with its reason, switch language; at a phone and a desktop width; no console errors; no
serious or critical accessibility violation (axe-core)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from anchoring.bundles import final_anchors
from demo import tenders as demo
from tests.anchoring.nodes import hardhat_node
from tests.api.servers import threaded_server
from tests.explorer.browser import DESKTOP, PHONE, ROOT, Watched, axe_violations, screenshot
from tests.explorer.conftest import SIGNED, Ledger, app_for, hardhat_chain, record_ledger, recorded_ledger

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}


@pytest.fixture(scope="module")
def embedded_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with recorded_ledger("sqlite", tmp_path_factory.mktemp("e2e")) as recorded:
        yield recorded


@pytest.fixture(scope="module")
def base(embedded_ledger: Ledger) -> Iterator[str]:
    with threaded_server(app_for(embedded_ledger)) as url:
        yield url


@pytest.fixture(params=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORTS[request.param], locale="en-GB", accept_downloads=True)
    watched = Watched(context.new_page())
    watched.page.set_default_timeout(20_000)
    watched.name = request.param  # type: ignore[attr-defined]
    try:
        yield watched
    finally:
        context.close()


def _clean(watched: Watched) -> None:
    assert watched.errors == []
    assert axe_violations(watched.page) == []


def layout_shift(page: Page) -> float:
    """The page's cumulative layout shift so far (Chromium's layout-shift entries)."""
    shift: float = page.evaluate(
        """() => new Promise((done) => {
            let total = 0;
            new PerformanceObserver((list) => {
                for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
            }).observe({type: 'layout-shift', buffered: true});
            setTimeout(() => done(total), 200);
        })"""
    )
    return shift


def _wait_badges(page: Page) -> list[str]:
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-badge-seq]')].every((b) => b.dataset.status !== 'checking')"
    )
    return page.eval_on_selector_all("[data-badge-seq]", "(bs) => bs.map((b) => b.dataset.status)")


def test_search_open_tender_and_see_its_events_verified(base: str, page: Watched, embedded_ledger: Ledger) -> None:
    p = page.page
    p.goto(f"{base}/tenders")
    p.get_by_label("Search", exact=True).fill("lighting")
    p.get_by_text("More filters").click()  # the filters beside the words are folded
    p.get_by_label("Status").select_option("complete")
    p.get_by_role("button", name="Search").click()
    expect(p).to_have_url(
        f"{base}/tenders?q=lighting&status=complete&flag=&buyer=&supplier=&method=&year=&from=&to=&min=&max="
        "&amin=&amax=&currency=&sort=relevance"
    )
    p.get_by_role("link", name="Street lighting renewal").click()
    expect(p).to_have_url(f"{base}/tenders/{SIGNED}")
    statuses = _wait_badges(p)
    events = embedded_ledger.log.reader.tender_events(SIGNED)
    assert statuses == ["verified"] * len(events)
    badge = p.locator("[data-badge-seq='0']")
    expect(badge).to_contain_text("Verified: anchored in block")
    summary = p.locator("#verify-summary")
    expect(summary).to_contain_text("Every anchored event was verified in your browser against the chain.")
    # A version 2 bundle: the history is proven whole as of the newest anchor, its time the chain's.
    expect(summary.locator("[data-line='complete']")).to_contain_text(
        f"Complete as of tree size {embedded_ledger.anchored_size}, anchored at"
    )
    # The signer of each event, as recorded (EIP-712 recovery happened in the browser too).
    # The badges turn without moving the page: a cumulative layout shift under 0.1 ("good").
    assert layout_shift(p) < 0.1
    officer = json.loads(events[1].envelope)["submission"]["officer"]
    expect(p.locator("#event-1 details dd code").first).to_have_text(officer)
    screenshot(p, f"tender-{page.name}")  # type: ignore[attr-defined]
    _clean(page)


def test_a_pending_event_stays_pending(base: str, page: Watched) -> None:
    p = page.page
    p.goto(f"{base}/tenders/{demo.SCHOOL}")
    statuses = _wait_badges(p)
    assert statuses[:-1] == ["verified"] * (len(statuses) - 1)
    assert statuses[-1] == "pending"
    expect(p.locator(f"[data-badge-seq='{len(statuses) - 1}']")).to_have_text("Pending: not yet anchored")
    _clean(page)


def test_verify_a_dropped_bundle_then_a_tampered_one(base: str, page: Watched, tmp_path: Path) -> None:
    p = page.page
    bundle = p.request.get(f"{base}/api/v1/tenders/{SIGNED}/bundle").json()
    p.goto(f"{base}/verify")
    # Drop the file on the drop zone, as a visitor would.
    text = json.dumps(bundle)
    transfer = p.evaluate_handle(
        """(text) => { const dt = new DataTransfer();
            dt.items.add(new File([text], 'bundle.json', {type: 'application/json'})); return dt; }""",
        text,
    )
    p.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    result = p.locator("#verify-result [data-result]")
    expect(result).to_have_attribute("data-result", "verified")
    expect(p.locator("#verify-result tbody tr")).to_have_count(len(bundle["events"]))
    expect(p.locator("#verify-result tbody tr").first).to_contain_text("Tender planned")
    screenshot(p, f"verify-valid-{page.name}")  # type: ignore[attr-defined]
    _clean(page)

    # Tampered: the awarded amount changed after the fact.
    award = next(e for e in bundle["events"] if e["envelope"]["type"] == "award.issued")
    award["payload"]["award"]["value"]["amount"] = 1.0
    p.get_by_label("…or paste its JSON").fill(json.dumps(bundle))
    p.get_by_role("button", name="Verify", exact=True).click()
    expect(result).to_have_attribute("data-result", "invalid")
    failures = p.locator("#verify-result .failures li")
    expect(failures).to_have_count(1)
    expect(failures.first).to_contain_text(f"event seq {award['envelope']['seq']}")
    expect(failures.first).to_contain_text("payload hashes to")
    expect(failures.first).to_contain_text("The event's content was changed")
    screenshot(p, f"verify-tampered-{page.name}")  # type: ignore[attr-defined]

    # Tampered signature: the submission claims another signing time than the officer signed.
    bundle = p.request.get(f"{base}/api/v1/tenders/{SIGNED}/bundle").json()
    signed = bundle["events"][1]
    signed["envelope"]["submission"]["signedAt"] += 1
    p.get_by_label("…or paste its JSON").fill(json.dumps(bundle))
    p.get_by_role("button", name="Verify", exact=True).click()
    expect(result).to_have_attribute("data-result", "invalid")
    # The envelope no longer hashes to its leaf (so neither its inclusion proof nor the next event's
    # prev hold), and the signature recovers someone else.
    texts = [t.split("\n")[0] for t in failures.all_inner_texts()]
    assert [t.split(":")[0] for t in texts] == ["event seq 1 (events[1])"] * 3 + ["event seq 2 (events[2])"]
    assert "envelope hashes to leaf" in texts[0] and "is not the leaf hash of the event before" in texts[3]
    assert "signature: recovers 0x" in texts[1] and "inclusion in tree size" in texts[2]
    expect(failures.nth(1)).to_contain_text("The officer's signature does not match")

    # Tampered inclusion path: the event is no longer shown to be in the anchored tree.
    bundle = p.request.get(f"{base}/api/v1/tenders/{SIGNED}/bundle").json()
    bundle["events"][0]["inclusion"]["path"][0] = "00" * 32
    p.get_by_label("…or paste its JSON").fill(json.dumps(bundle))
    p.get_by_role("button", name="Verify", exact=True).click()
    expect(result).to_have_attribute("data-result", "invalid")
    expect(failures.first).to_contain_text("inclusion in tree size")
    assert page.errors == []


def test_verify_by_ocid_and_language_switch(base: str, page: Watched) -> None:
    p = page.page
    p.goto(f"{base}/verify?ocid={demo.ROAD}")
    expect(p.locator("#verify-result [data-result]")).to_have_attribute("data-result", "verified")
    p.get_by_role("link", name="Español").click()
    expect(p.locator("html")).to_have_attribute("lang", "es")
    expect(p.get_by_role("heading", level=1)).to_have_text("Verificar un paquete de pruebas")
    expect(p.locator("#verify-result [data-result]")).to_have_attribute("data-result", "verified")
    expect(p.locator("#verify-result h2")).to_have_text("El paquete es válido")
    p.get_by_role("link", name="Licitaciones").click()  # remembered: no ?lang= on this link
    expect(p.locator("html")).to_have_attribute("lang", "es")
    expect(p.get_by_role("heading", level=1)).to_have_text("Licitaciones")
    screenshot(p, f"tenders-es-{page.name}")  # type: ignore[attr-defined]
    _clean(page)


@pytest.mark.parametrize("path", ["/", "/tenders", "/anchors", "/anchors/dev/1", "/data", "/verify", "/nowhere-tender"])
def test_every_page_is_clean(base: str, page: Watched, path: str) -> None:
    p = page.page
    target = f"/tenders/{demo.ROAD}" if path == "/nowhere-tender" else path
    response = p.goto(f"{base}{target}")
    assert response is not None and response.status == 200
    if target.startswith("/tenders/"):
        _wait_badges(p)
    screenshot(p, f"page{target.replace('/', '-') or '-home'}-{page.name}")  # type: ignore[attr-defined]
    _clean(page)


def test_keyboard_reaches_search_and_language(base: str, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        p = context.new_page()
        p.goto(f"{base}/tenders")
        p.keyboard.press("Tab")
        assert p.evaluate("document.activeElement.textContent") == "Skip to content"
        p.keyboard.press("Enter")
        focusable = []
        for _ in range(6):
            p.keyboard.press("Tab")
            focusable.append(p.evaluate("document.activeElement.id || document.activeElement.textContent"))
        assert focusable[:2] == ["q", "More filters"]
        p.locator("summary", has_text="More filters").focus()  # back to the fold
        p.keyboard.press("Enter")  # unfolds it
        unfolded = []
        for _ in range(3):
            p.keyboard.press("Tab")
            unfolded.append(p.evaluate("document.activeElement.id"))
        assert unfolded == ["status", "flag", "buyer"]
    finally:
        context.close()


def test_badges_against_a_real_json_rpc_node(browser: Browser, tmp_path: Path) -> None:
    """The same page with the chain a real `hardhat node`: the browser asks the node directly."""
    with hardhat_node() as node:
        ledger = record_ledger(f"sqlite:///{tmp_path / 'node.sqlite3'}", hardhat_chain(node.url))
        try:
            app = app_for(ledger, block_explorer_url="https://blocks.example.org")
            with threaded_server(app) as url:
                context = browser.new_context(viewport=DESKTOP)
                watched = Watched(context.new_page())
                p = watched.page
                rpc_requests: list[str] = []
                p.on("request", lambda r: rpc_requests.append(r.url) if r.url.startswith(node.url) else None)
                p.goto(f"{url}/tenders/{SIGNED}")
                statuses = _wait_badges(p)
                assert set(statuses) == {"verified"}
                assert rpc_requests, "the browser did not ask the node"
                first = final_anchors(ledger.log.engine, "local").anchors[0]
                link = p.locator("[data-badge-seq='0'] a")
                expect(link).to_have_attribute("href", f"https://blocks.example.org/block/{first.block_number}")
                assert watched.errors == []
                context.close()
        finally:
            ledger.log.close()


@pytest.fixture(scope="module")
def verifier_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    """explorer/js/verify.js bundled as a script defining the global ``TP`` (esbuild from node_modules)."""
    out = tmp_path_factory.mktemp("js") / "verify.js"
    subprocess.run(
        [
            "npx",
            "--no-install",
            "esbuild",
            "explorer/js/verify.js",
            "--bundle",
            "--format=iife",
            "--global-name=TP",
            f"--outfile={out}",
            "--log-level=warning",
        ],
        cwd=ROOT,
        check=True,
    )
    return out.read_text()


def test_rfc9162_vectors_in_the_browser(base: str, browser: Browser, verifier_module: str) -> None:
    """The in-browser RFC 9162 code against the project's test vectors (tests/assets/rfc9162):
    every valid proof accepted, every bad one (bit flips, wrong sizes, lengths) refused."""
    vectors = {
        name: json.loads((ROOT / "tests" / "assets" / "rfc9162" / f"{name}.json").read_text())["cases"]
        for name in ("inclusion", "consistency")
    }
    context = browser.new_context()
    try:
        p = context.new_page()
        p.goto(f"{base}/verify")  # a secure context (127.0.0.1): WebCrypto is there
        p.evaluate(verifier_module)
        wrong = p.evaluate(
            """async ({inclusion, consistency}) => {
                const h = TP.fromHex, wrong = [];
                const run = async (c, f) => {
                    let err = null;
                    try { await f(); } catch (e) { err = e.message; }
                    if ((err === null) !== (c.want_err === null)) wrong.push(`${c.desc}: got ${err}`);
                };
                for (const c of inclusion) await run(c, () => TP.verifyInclusion(
                    c.leaf_index, c.tree_size, h(c.leaf_hash), c.proof.map(h), h(c.root)));
                for (const c of consistency) await run(c, () => TP.verifyConsistency(
                    c.size1, c.size2, h(c.root1), h(c.root2), c.proof.map(h)));
                return [wrong, inclusion.length + consistency.length];
            }""",
            vectors,
        )
        assert wrong[0] == []
        assert wrong[1] == len(vectors["inclusion"]) + len(vectors["consistency"]) > 100
    finally:
        context.close()
