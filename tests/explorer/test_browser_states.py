"""The four honest outcomes of the in-browser verifier, in a real Chromium against a real server and
chain (issue 15): the chain endpoint blocked, hanging or answering wrongly; the v1 mutations that
once passed (an anchored event rewritten and relabelled pending, every event pending, an empty
bundle); the visitor's own endpoint on /verify; Spanish texts.

- blocked or hanging endpoint: never a green badge: grey "not checked" with a retry, which then
  verifies once the endpoint answers;
- an endpoint answering another root (a 127.0.0.1 JSON-RPC stub in front of the real one): red.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from demo import tenders as demo
from ledger.core import commitment
from ledger.core.canonical import canonical_bytes
from tests.api.servers import threaded_server
from tests.explorer.browser import DESKTOP, PHONE, Watched
from tests.explorer.conftest import SIGNED, Ledger, app_for, recorded_ledger

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The length of the data of an eth_call to rootAt(uint64): "0x", selector, one word.
ROOT_AT_CALL = 2 + 8 + 64


@pytest.fixture(scope="module")
def embedded_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with recorded_ledger("sqlite", tmp_path_factory.mktemp("states")) as recorded:
        yield recorded


@pytest.fixture(scope="module")
def base(embedded_ledger: Ledger) -> Iterator[str]:
    with threaded_server(app_for(embedded_ledger)) as url:
        yield url


@contextmanager
def lying_rpc(upstream: str) -> Iterator[str]:
    """A JSON-RPC endpoint on 127.0.0.1 that forwards to ``upstream`` and answers every rootAt
    with another root (its first byte flipped); CORS open, as public endpoints are."""

    class Handler(BaseHTTPRequestHandler):
        def _cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "content-type")
            self.send_header("Access-Control-Allow-Methods", "POST")

        def do_OPTIONS(self) -> None:
            self.send_response(204)
            self._cors()
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            call = json.loads(body)
            forwarded = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(forwarded, timeout=10) as answer:
                result = json.loads(answer.read())
            params = call.get("params") or [{}]
            if call["method"] == "eth_call" and len(params[0].get("data", "")) == ROOT_AT_CALL:
                word = result["result"]
                result["result"] = word[:2] + format(int(word[2:4], 16) ^ 0xFF, "02x") + word[4:]
            out = json.dumps(result).encode()
            self.send_response(200)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def liar(base: str) -> Iterator[str]:
    with lying_rpc(f"{base}/rpc") as url:
        yield url


@pytest.fixture(params=["phone", "desktop"])
def page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Watched]:
    viewport = PHONE if request.param == "phone" else DESKTOP
    context = browser.new_context(viewport=viewport, locale="en-GB")
    watched = Watched(context.new_page())
    watched.page.set_default_timeout(20_000)
    try:
        yield watched
    finally:
        context.close()


def _statuses(p: Page) -> list[str]:
    p.wait_for_function(
        "() => [...document.querySelectorAll('[data-badge-seq]')].every((b) => b.dataset.status !== 'checking')"
    )
    statuses: list[str] = p.eval_on_selector_all("[data-badge-seq]", "(bs) => bs.map((b) => b.dataset.status)")
    return statuses


def _block(route: Route) -> None:
    route.abort("connectionrefused")


def _hang(route: Route) -> None:
    """Never answered: the request stays open until the page gives up on it."""


def test_blocked_endpoint_is_not_checked_never_green_then_retry_verifies(base: str, page: Watched) -> None:
    p = page.page
    p.route("**/rpc", _block)
    p.goto(f"{base}/tenders/{SIGNED}")
    statuses = _statuses(p)
    assert set(statuses) == {"unchecked"}
    assert p.locator(".badge-ok").count() == 0 and p.locator(".badge-failed").count() == 0
    expect(p.locator("[data-badge-seq='0']")).to_have_text("Not checked: the chain could not be asked")
    summary = p.locator("#verify-summary")
    expect(summary).to_have_attribute("data-result", "unchecked")
    expect(summary).to_contain_text("cannot be reached")
    expect(p.locator("#verified-means")).to_contain_text("not mean that the tender or the award was right")
    # The endpoint is back: the retry verifies, block and time as the chain says.
    p.unroute("**/rpc")
    summary.get_by_role("button", name="Try again").click()
    expect(summary).to_have_attribute("data-result", "verified")
    assert set(_statuses(p)) == {"verified"}
    expect(p.locator("[data-badge-seq='0']")).to_contain_text("Verified: anchored in block")
    # The page's own console errors are the refused requests only.
    assert all("ERR_CONNECTION_REFUSED" in e or "Failed to load resource" in e for e in page.errors)


def test_hanging_endpoint_times_out_to_not_checked(base: str, page: Watched) -> None:
    p = page.page
    p.route("**/rpc", _hang)
    started = time.monotonic()
    p.goto(f"{base}/tenders/{demo.SCHOOL}?rpc_timeout=0.5")
    statuses = _statuses(p)
    assert time.monotonic() - started < 10
    # The last event is integrated but not anchored: pending; the others could not be checked.
    assert statuses[-1] == "pending" and set(statuses[:-1]) == {"unchecked"}
    summary = p.locator("#verify-summary")
    expect(summary).to_have_attribute("data-result", "unchecked")
    expect(summary).to_contain_text("did not answer eth_chainId within 0.5 s")
    expect(summary.get_by_role("button", name="Try again")).to_be_visible()
    assert p.locator(".badge-ok").count() == 0


def test_hanging_endpoint_default_timeout_is_ten_seconds(base: str, browser: Browser) -> None:
    context = browser.new_context(viewport=DESKTOP)
    try:
        p = context.new_page()
        p.route("**/rpc", _hang)
        p.goto(f"{base}/tenders/{SIGNED}")
        summary = p.locator("#verify-summary")
        p.wait_for_timeout(8_000)
        expect(summary).to_have_attribute("data-result", "checking")  # still asking, nothing claimed
        expect(summary).to_have_attribute("data-result", "unchecked", timeout=6_000)
        expect(summary).to_contain_text("within 10 s")
    finally:
        context.close()


def test_endpoint_answering_another_root_is_red(embedded_ledger: Ledger, liar: str, page: Watched) -> None:
    with threaded_server(app_for(embedded_ledger, public_rpc_url=liar)) as url:
        p = page.page
        p.goto(f"{url}/tenders/{SIGNED}")
        statuses = _statuses(p)
        assert set(statuses) == {"invalid"}
        expect(p.locator("#verify-summary")).to_have_attribute("data-result", "invalid")
        expect(p.locator("[data-badge-seq='0']")).to_contain_text("the contract holds root")
        assert p.locator(".badge-ok").count() == 0


def test_verify_with_the_visitors_own_endpoint(base: str, liar: str, page: Watched) -> None:
    p = page.page
    p.goto(f"{base}/verify")
    expect(p.locator("#cli-command")).to_have_text(f"tenderproof-verify bundle.json --rpc {base}/rpc")
    p.get_by_label("Chain endpoint your browser asks").fill(liar)
    p.get_by_role("button", name="Use this endpoint").click()
    expect(p.locator("#cli-command")).to_have_text(f"tenderproof-verify bundle.json --rpc {liar}")
    p.reload()  # remembered by the browser
    expect(p.get_by_label("Chain endpoint your browser asks")).to_have_value(liar)
    p.get_by_label("Tender id (ocid)").fill(demo.ROAD)
    p.get_by_role("button", name="Fetch and verify").click()
    result = p.locator("#verify-result [data-result]")
    expect(result).to_have_attribute("data-result", "invalid")
    expect(p.locator("#verify-result .failures")).to_contain_text("the contract holds root")
    expect(p.locator("#verify-result .failures")).to_contain_text("The chain contradicts the bundle")
    # Back to the site's endpoint: the same bundle verifies.
    p.get_by_role("button", name="Use this site\u2019s endpoint").click()
    expect(p.locator("#cli-command")).to_have_text(f"tenderproof-verify bundle.json --rpc {base}/rpc")
    p.get_by_role("button", name="Fetch and verify").click()
    expect(result).to_have_attribute("data-result", "verified")
    assert page.errors == []


def test_verify_blocked_endpoint_says_not_checked_not_invalid(base: str, page: Watched) -> None:
    p = page.page
    p.route("**/rpc", _block)
    p.goto(f"{base}/verify?ocid={demo.ROAD}")
    result = p.locator("#verify-result [data-result]")
    expect(result).to_have_attribute("data-result", "unchecked")
    expect(result).to_contain_text("Not checked: the chain could not be asked")
    assert p.locator("#verify-result .failures").count() == 0
    assert p.locator("#verify-result .badge-ok").count() == 0
    p.unroute("**/rpc")
    result.get_by_role("button", name="Try again").click()
    expect(result).to_have_attribute("data-result", "verified")


def test_spanish_texts(base: str, liar: str, page: Watched) -> None:
    p = page.page
    p.route("**/rpc", _block)
    p.goto(f"{base}/tenders/{SIGNED}?lang=es")
    _statuses(p)
    expect(p.locator("[data-badge-seq='0']")).to_have_text("Sin comprobar: no se pudo consultar la cadena")
    expect(p.locator("#verify-summary")).to_contain_text("no se puede contactar con el punto de acceso RPC")
    expect(p.locator("#verify-summary").get_by_role("button")).to_have_text("Reintentar")
    expect(p.locator("#verified-means")).to_contain_text("No significa que la licitación o la adjudicación")
    p.unroute("**/rpc")
    p.goto(f"{base}/verify?lang=es")
    p.get_by_label("Punto de acceso de la cadena que consulta su navegador").fill(liar)
    p.get_by_role("button", name="Usar este punto de acceso").click()
    p.get_by_label("Id. de la licitación (ocid)").fill(demo.ROAD)
    p.get_by_role("button", name="Obtener y verificar").click()
    failures = p.locator("#verify-result .failures")
    expect(failures).to_contain_text("el contrato guarda la raíz")
    expect(failures).to_contain_text("anclaje del árbol de tamaño")
    expect(failures).to_contain_text("La cadena contradice el paquete")
    assert "the contract holds" not in failures.inner_text()


# --- The mutations of issue 15 that apply to v1 bundles ---------------------------------------


def _leaf(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(b"\x00" + canonical_bytes(envelope)).hexdigest()


def _rewritten_pending(bundle: dict[str, Any], first: int, *, drop_anchors: bool = False) -> dict[str, Any]:
    """``bundle`` with event ``first`` rewritten (its amount changed), it and every later event
    relabelled pending without inclusion proofs, every hash recomputed so the history still
    chains; with ``drop_anchors``, no anchor cited at all."""
    forged = copy.deepcopy(bundle)
    events = forged["events"]
    target = events[first]
    target["payload"] = {**target["payload"], "forged": True}
    for event in events[first:]:
        event["envelope"].pop("signature", None)
        event["envelope"].pop("submission", None)
        event["inclusion"] = None
        event["status"] = "pending"
    if target["envelope"]["v"] == 2:  # the forger re-commits with the disclosure served beside it
        target["envelope"]["payload_commitment"] = commitment.recompute(target["payload"], target["disclosure"])
    else:
        target["envelope"]["payload_sha256"] = hashlib.sha256(canonical_bytes(target["payload"])).hexdigest()
    for position in range(first, len(events)):
        if position > 0:
            events[position]["envelope"]["prev"] = events[position - 1]["leaf_hash"]
        events[position]["leaf_hash"] = _leaf(events[position]["envelope"])
    if drop_anchors:
        forged["anchors"] = []
        forged["consistency"] = []
    return forged


def _verify_pasted(p: Page, bundle: dict[str, Any]) -> str:
    p.get_by_label("…or paste its JSON").fill(json.dumps(bundle))
    p.get_by_role("button", name="Verify", exact=True).click()
    result = p.locator("#verify-result [data-result]")
    p.wait_for_function("() => !document.querySelector('#verify-result .notice:not([data-result])')")
    status: str = result.get_attribute("data-result") or ""
    return status


def test_v1_mutations_are_refused(base: str, page: Watched) -> None:
    p = page.page
    bundle = p.request.get(f"{base}/api/v1/tenders/{demo.ROAD}/bundle?format=1").json()
    assert bundle["format"] == "tenderproof-bundle/1"
    assert all(e["inclusion"] for e in bundle["events"])
    p.goto(f"{base}/verify")
    assert _verify_pasted(p, bundle) == "verified"
    failures = p.locator("#verify-result .failures")

    # An anchored event rewritten, it and the later ones relabelled pending, hashes recomputed.
    third = len(bundle["events"]) - 3
    assert _verify_pasted(p, _rewritten_pending(bundle, third)) == "invalid"
    expect(failures).to_contain_text(
        f"log index {bundle['events'][third]['index']} lies below tree size {bundle['anchors'][-1]['tree_size']}, "
        "which the bundle cites as anchored"
    )
    expect(failures).to_contain_text("it may have been rewritten")
    expect(p.locator("#verify-result tbody .badge-failed")).to_have_count(3)

    # The same with the anchors dropped: the contract's latest anchored size still covers them.
    assert _verify_pasted(p, _rewritten_pending(bundle, third, drop_anchors=True)) == "invalid"
    expect(failures).to_contain_text("the contract's latest anchor")

    # Every event relabelled pending (the first rewritten), with and without the anchors.
    assert _verify_pasted(p, _rewritten_pending(bundle, 0)) == "invalid"
    assert _verify_pasted(p, _rewritten_pending(bundle, 0, drop_anchors=True)) == "invalid"
    expect(p.locator("#verify-result tbody .badge-ok")).to_have_count(0)

    # An empty bundle.
    assert _verify_pasted(p, {**bundle, "events": []}) == "invalid"
    expect(failures).to_contain_text("the bundle holds no events")
    assert page.errors == []


def test_v1_mutation_with_the_chain_blocked_is_never_green(base: str, page: Watched) -> None:
    """Anchors dropped and the chain unreachable: the forgery cannot be refuted, nor confirmed."""
    p = page.page
    bundle = p.request.get(f"{base}/api/v1/tenders/{demo.ROAD}/bundle?format=1").json()
    assert bundle["format"] == "tenderproof-bundle/1"
    p.route("**/rpc", _block)
    p.goto(f"{base}/verify")
    assert _verify_pasted(p, _rewritten_pending(bundle, 0, drop_anchors=True)) == "unchecked"
    assert p.locator("#verify-result .badge-ok").count() == 0


def test_hostile_input_is_refused_with_a_message(base: str, page: Watched) -> None:
    """Deep nesting, huge and negative numbers, wrong types, lone surrogates: each refused as
    invalid with a named reason, in bounded time, no uncaught error."""
    p = page.page
    bundle = p.request.get(f"{base}/api/v1/tenders/{demo.ROAD}/bundle").json()
    p.goto(f"{base}/verify")
    deep = '{"format": "tenderproof-bundle/1", "events": ' + "[" * 100_000 + "]" * 100_000 + "}"
    first = bundle["events"][0]
    cases: list[str] = [
        deep,
        json.dumps({**bundle, "events": [{**first, "index": 10**30}]}),
        json.dumps({**bundle, "events": [{**first, "index": -1}]}),
        json.dumps({**bundle, "anchors": [{**bundle["anchors"][0], "tree_size": 2**64}]}),
        json.dumps({**bundle, "events": "all of them"}),
        json.dumps({**bundle, "events": [{**first, "inclusion": {"tree_size": "x", "path": 5}}]}),
        json.dumps({**bundle, "events": [{**first, "inclusion": {**first["inclusion"], "path": [7, None]}}]}),
        json.dumps({**bundle, "events": [{**first, "payload": {"text": "\ud800"}}]}),
        json.dumps({**bundle, "events": [{**first, "envelope": {**first["envelope"], "seq": 1e300}}]}),
        json.dumps({**bundle, "format": True}),
        "[1, 2, 3]",
        "null",
        "{" * 10 + "not json",
    ]
    for text in cases:
        started = time.monotonic()
        p.get_by_label("…or paste its JSON").fill(text)
        p.get_by_role("button", name="Verify", exact=True).click()
        p.wait_for_function("() => !document.querySelector('#verify-result .notice:not([data-result])')")
        assert time.monotonic() - started < 10, text[:80]
        result = p.locator("#verify-result [data-result]")
        expect(result).to_have_attribute("data-result", "invalid")
        assert p.locator("#verify-result .failures li").count() >= 1, text[:80]
    assert page.errors == []


def test_a_tender_with_nothing_anchored_is_pending_never_verified(
    embedded_ledger: Ledger, base: str, page: Watched
) -> None:
    """A tender recorded and integrated after the last anchor: every badge pending, the summary
    says nothing is anchored; not green."""
    from datetime import timedelta

    from tests.explorer.conftest import _record
    from tests.procurement import helpers

    ocid = "ocds-tpnew0-pending-1"
    log = embedded_ledger.log
    if not any(e.ocid == ocid for e in log.reader.entries(0, log.reader.tree_head().size)):
        when = helpers.at(200)
        planned = {"planning": {"rationale": "New roof"}, "buyer": helpers.BUYER}
        _record(log, [helpers.item("tender.planned", planned, ocid)], when)
        log.integrate_all(now=when + timedelta(seconds=1))
    p = page.page
    p.goto(f"{base}/tenders/{ocid}")
    assert _statuses(p) == ["pending"]
    summary = p.locator("#verify-summary")
    expect(summary).to_have_attribute("data-result", "pending")
    expect(summary).to_have_text("Nothing of this tender is anchored yet: every event is pending.")
    assert p.locator(".badge-ok").count() == 0


def test_v2_bundle_complete_then_tail_dropped_in_spanish(base: str, page: Watched, embedded_ledger: Ledger) -> None:
    """The server's version 2 bundle: verified, complete as of the newest anchor, each signer named
    as the registry records them; with its last event dropped: red, in the visitor's language."""
    p = page.page
    bundle = p.request.get(f"{base}/api/v1/tenders/{SIGNED}/bundle").json()
    assert bundle["format"] == "tenderproof-bundle/2" and bundle["completeness"] is not None
    p.goto(f"{base}/verify")
    assert _verify_pasted(p, bundle) == "verified"
    expect(p.locator("#verify-result [data-line='complete']")).to_contain_text(
        f"Complete as of tree size {embedded_ledger.anchored_size}, anchored at"
    )
    expect(p.locator("#verify-result tbody tr").nth(1)).to_contain_text("Ana Ruiz (0x")

    p.goto(f"{base}/verify?lang=es")
    dropped = {**bundle, "events": bundle["events"][:-1]}
    p.get_by_label("…o pegue su JSON").fill(json.dumps(dropped))
    p.get_by_role("button", name="Verificar", exact=True).click()
    result = p.locator("#verify-result [data-result]")
    expect(result).to_have_attribute("data-result", "invalid")
    failures = p.locator("#verify-result .failures")
    expect(failures).to_contain_text(f"el historial se detiene en seq {len(bundle['events']) - 2}")
    expect(failures).to_contain_text("El paquete omite parte del historial de la licitación")
    assert p.locator("#verify-result [data-line='complete']").count() == 0
