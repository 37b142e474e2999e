"""The explorer's pages served by the application, on SQLite and PostgreSQL: what they show
without JavaScript, filters in the URL, 404s, languages, security headers, static files, and the
embedded chain's read-only JSON-RPC endpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from anchoring import store
from anchoring.bundles import final_anchors
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from api.app import create_app
from demo import tenders as demo
from explorer.catalog import message_ids
from explorer.i18n import catalog
from settings import ChainSettings
from tests.explorer.browser import ROOT
from tests.explorer.conftest import SIGNED, Ledger, anchor_final, app_for, recorded_ledger, settings_for
from tests.procurement import helpers


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_home_shows_the_ledger_in_figures(client: TestClient, ledger: Ledger) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = _text(page.text)
    assert f"Events in the log {ledger.size}" in text
    assert "Tenders 3" in text
    assert f"Last anchor {ledger.anchored_size} records in the log" in text
    assert "tree size" not in text
    # The chain in words, not by its number.
    assert "Chain: local development chain" in text
    # The latest event first, linked to its tender, named by its title.
    assert re.search(
        rf'Latest events.*?href="/tenders/{demo.SCHOOL}">Clarification published</a> · <span class="title">[^<]+</span>',
        page.text,
        re.S,
    )
    # Awarded value per currency (the demo awards in MXN, the signed tender in EUR).
    assert "€900.00" in text and "MX$1,095,000.00" in text


def test_tenders_filters_are_in_the_url(client: TestClient) -> None:
    everything = client.get("/tenders")
    assert all(f"/tenders/{ocid}" in everything.text for ocid in (SIGNED, demo.ROAD, demo.SCHOOL))
    found = client.get("/tenders", params={"q": "lighting", "status": "complete"})
    assert f"/tenders/{SIGNED}" in found.text and f"/tenders/{demo.ROAD}" not in found.text
    assert 'value="lighting"' in found.text and '<option value="complete" selected>' in found.text
    by_buyer = client.get("/tenders", params={"buyer": helpers.BUYER["id"]})
    assert f"/tenders/{SIGNED}" in by_buyer.text and f"/tenders/{demo.SCHOOL}" not in by_buyer.text
    dearest = client.get("/tenders", params={"sort": "value_desc", "currency": "MXN"}).text
    assert dearest.index(demo.ROAD) < dearest.index(demo.SCHOOL) or dearest.index(demo.SCHOOL) < dearest.index(
        demo.ROAD
    )
    none = client.get("/tenders", params={"min": "1e15"})
    assert "No tender matches these filters." in none.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"min": "abc"}, "min"),
        ({"from": "2026-13-01"}, "from"),
        ({"sort": "best"}, "sort"),
        ({"cursor": "zz"}, "cursor"),
    ],
)
def test_a_bad_filter_is_explained(client: TestClient, params: dict[str, str], field: str) -> None:
    page = client.get("/tenders", params=params)
    assert page.status_code == 400
    assert f"Please check the filter “{field}”" in page.text


def test_tender_page_without_javascript(client: TestClient, ledger: Ledger) -> None:
    page = client.get(f"/tenders/{SIGNED}")
    assert page.status_code == 200
    events = ledger.log.reader.tender_events(SIGNED)
    assert page.text.count('class="event"') == len(events)
    text = _text(page.text)
    assert "Street lighting renewal" in text and "Ayuntamiento de Villanueva" in text
    assert "Award issued" in text and "Supplier 1 SL" in text and "€900.00" in text
    assert text.count(helpers.OFFICER) == len(events)  # every event's signer
    first = final_anchors(ledger.log.engine, "dev").anchors[0]
    assert f"server says: anchored in block {first.block_number}" in text
    assert all(e.leaf_hash.hex() in page.text for e in events)
    assert "&#34;ocid&#34;: &#34;ocds-tptest-0001&#34;" in page.text  # the compiled OCDS release (escaped)
    assert f'href="/api/v1/tenders/{SIGNED}/bundle?chain=dev"' in page.text
    assert '<script type="application/json" id="tp-config">' in page.text
    assert re.search(r'<script type="module" src="/static/explorer\.[0-9a-f]{12}\.js">', page.text)


def test_pending_event_says_so(client: TestClient) -> None:
    text = _text(client.get(f"/tenders/{demo.SCHOOL}").text)
    assert "Pending: not yet anchored" in text


def test_unknown_pages_are_html_404s(client: TestClient) -> None:
    for path in (
        "/tenders/ocds-nothere-1",
        "/anchors/dev/999999",
        "/anchors/nochain/1",
        "/anchors/dev/x",
        "/static/x.js",
    ):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "<h1>Not found</h1>" in page.text


def test_paths_of_no_route_are_a_page_for_browsers_and_json_for_programs(client: TestClient) -> None:
    browser = client.get("/no/such/page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 404 and browser.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in browser.text and "/no/such/page" in browser.text
    program = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert program.status_code == 404 and program.json()["error"]["code"] == "not_found"
    api = client.get("/api/v1/no/such/route", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_anchors_and_their_batches(client: TestClient, ledger: Ledger) -> None:
    listing = client.get("/anchors")
    anchor = final_anchors(ledger.log.engine, "dev").anchors[0]
    assert anchor.root.hex() in listing.text
    link = re.search(r'href="(/anchors/dev/\d+)"', listing.text)
    assert link is not None
    detail = client.get(link.group(1))
    assert detail.status_code == 200
    text = _text(detail.text)
    assert f"entries 0 to {anchor.tree_size - 1} ({anchor.tree_size})" in text
    assert text.count("Officer registered") == 1
    assert ("0x" + anchor.tx_hash.hex()) in detail.text
    second = client.get(link.group(1), params={"from": 50})  # beyond the batch: back to its start
    assert second.status_code == 200 and "Officer registered" in second.text


def test_open_data_links_and_charts(client: TestClient) -> None:
    page = client.get("/data")
    for path in (
        "/api/v1/export/releases",
        "/api/v1/export/records",
        "/api/v1/export/tenders.csv",
        "/api/v1/export/awards.csv",
        "/api/v1/export/contracts.csv",
    ):
        assert f'href="{path}"' in page.text
    assert 'action="/api/v1/entries"' in page.text
    assert page.text.count("<svg") == 4  # by buyer and by month, in EUR and MXN
    assert "Municipio de San Isidro: MX$1,095,000.00" in page.text


def test_language_from_query_cookie_and_accept_language(client: TestClient) -> None:
    spanish = client.get("/tenders", params={"lang": "es"})
    assert spanish.headers["content-language"] == "es"
    assert '<html lang="es">' in spanish.text and "<h1>Licitaciones</h1>" in spanish.text
    assert "lang=es" in spanish.headers["set-cookie"]
    remembered = client.get("/")  # the TestClient keeps the cookie
    assert remembered.headers["content-language"] == "es" and "set-cookie" not in remembered.headers
    assert "Total adjudicado" in remembered.text and "1.095.000,00" in remembered.text
    client.cookies.clear()
    assert client.get("/", headers={"Accept-Language": "fr, es;q=0.8, en;q=0.5"}).headers["content-language"] == "es"
    assert client.get("/", headers={"Accept-Language": "fr"}).headers["content-language"] == "en"
    assert client.get("/", params={"lang": "xx"}).headers["content-language"] == "en"


def test_every_message_is_translated() -> None:
    spanish = catalog("es")
    missing = [msgid for msgid in message_ids() if msgid not in spanish]
    assert missing == []
    for msgid in message_ids():
        assert set(re.findall(r"\{\w+\}", msgid)) == set(re.findall(r"\{\w+\}", spanish[msgid])), msgid


def test_every_verifier_message_has_a_text() -> None:
    """Each message key the browser's scripts name (t("…"), msg("…"), their errors, the tables of
    headings and explanations) has an English text (JS_MESSAGES), hence a Spanish one (above)."""
    from explorer.pages import JS_MESSAGES

    source = "\n".join(path.read_text() for path in sorted(ROOT.joinpath("explorer", "js").glob("*.js")))
    named = set(re.findall(r"(?:\bt|\bmsg|Error|Unavailable)\(\"(\w+)\"", source))
    named |= set(re.findall(r"[:\[,]\s*\"((?:explain|bundle|col)_\w+)\"", source))
    named |= set(re.findall(r"key: \"(\w+)\"", source))
    named |= set(re.findall(r"noAnchor\s*[:=]\s*\"(\w+)\"", source))  # checkIncluded's refusal, given or default
    assert len(named) > 80
    assert sorted(named - set(JS_MESSAGES)) == []
    # Nothing left over either: every text is shown somewhere.
    assert sorted(set(JS_MESSAGES) - named) == []


def test_pages_carry_a_strict_policy(ledger: Ledger) -> None:
    with TestClient(app_for(ledger)) as client:
        csp = client.get("/").headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self';" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
    app = app_for(ledger, public_rpc_url="https://rpc.example.org/v1/key")
    with TestClient(app) as client:
        page = client.get(f"/tenders/{SIGNED}")
        assert "connect-src 'self' https://rpc.example.org;" in page.headers["content-security-policy"]
        assert '"rpcUrl": "https://rpc.example.org/v1/key"' in page.text
    # A real chain: browsers ask its RPC endpoint (its origin allowed), the app serves no /rpc.
    real = ChainSettings(name="real", rpc_url="http://127.0.0.1:9/rpc", chain_id=31337)
    with TestClient(app_for(ledger, chains=[real])) as client:
        page = client.get(f"/tenders/{SIGNED}")
        assert "connect-src 'self' http://127.0.0.1:9;" in page.headers["content-security-policy"]
        assert "Pending: not yet anchored" in page.text  # nothing anchored on that chain
        assert client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).status_code == 404


def test_static_files_are_content_hashed_and_cached(client: TestClient) -> None:
    url = re.search(r'href="(/static/site\.[0-9a-f]{12}\.css)"', client.get("/").text)
    assert url is not None
    plain = client.get(url.group(1), headers={"Accept-Encoding": "identity"})
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["content-type"] == "text/css; charset=utf-8"
    zipped = client.get(url.group(1), headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content  # httpx unzips
    assert int(zipped.headers["content-length"]) < len(plain.content)
    again = client.get(url.group(1), headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304


def test_rpc_serves_reads_of_the_embedded_chain(client: TestClient, ledger: Ledger) -> None:
    def call(method: str, *params: object) -> dict[str, object]:
        answer = client.post("/rpc", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)})
        assert answer.status_code == 200
        body: dict[str, object] = answer.json()
        return body

    assert ledger.dev is not None
    assert call("eth_chainId")["result"] == hex(ledger.dev.w3.eth.chain_id)
    target = final_anchors(ledger.log.engine, "dev")
    anchor = target.anchors[0]
    selector = ledger.dev.w3.keccak(text="rootAt(uint64)")[:4].hex()
    data = "0x" + selector + anchor.tree_size.to_bytes(32, "big").hex()
    result = call("eth_call", {"to": target.contract, "data": data}, "latest")["result"]
    assert isinstance(result, str) and result[2:66] == anchor.root.hex()
    receipt = call("eth_getTransactionReceipt", "0x" + anchor.tx_hash.hex())["result"]
    assert isinstance(receipt, dict) and receipt["blockNumber"] == hex(anchor.block_number)
    block = call("eth_getBlockByNumber", hex(anchor.block_number), False)["result"]
    assert isinstance(block, dict) and block["timestamp"] == hex(anchor.block_timestamp)
    assert call("eth_getBlockByNumber", "0xffffff", False)["result"] is None
    refused = call("eth_sendRawTransaction", "0x00")
    assert refused["error"] == {
        "code": -32601,
        "message": "method 'eth_sendRawTransaction' is not served (read-only: eth_chainId, eth_blockNumber,"
        " eth_call, eth_getBlockByNumber, eth_getTransactionReceipt)",
    }
    bad = call("eth_call", {"to": "nope"}, "latest")
    assert isinstance(bad["error"], dict) and bad["error"]["code"] == -32602
    assert client.post("/rpc", content=b"[1,2]").status_code == 400
    assert client.post("/rpc", content=b"{" + b" " * 20_000 + b"}").status_code == 413


def test_explorer_is_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [
        path
        for path in paths
        # the C2SP tlog-tiles read interface, and its payload and disclosure bundles beside it, sit at the root
        if not path.startswith(("/api/", "/tile/", "/payloads/", "/disclosures/"))
        and path not in ("/healthz", "/readyz", "/metrics", "/checkpoint", "/.well-known/tenderproof/checkpoint-key")
    ]


def test_the_default_app_serves_its_own_embedded_chain(ledger: Ledger) -> None:
    """Without ``dev_chain``, /rpc serves the process's embedded chain (the one `serve` anchors to)."""
    app = create_app(settings_for(ledger), log=ledger.log)
    with TestClient(app) as client:
        answer = client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        assert answer.json()["result"] == hex(EmbeddedChain().w3.eth.chain_id)


def test_qr_code_draws_the_library_matrix_of_the_page_url() -> None:
    """The inline SVG's dark modules are exactly the qrcode package's matrix of the URL."""
    import qrcode
    import qrcode.constants

    from explorer.share import qr_svg

    url = f"http://127.0.0.1:8000/tenders/{SIGNED}"
    svg = str(qr_svg(url, label="QR <code>"))
    assert 'aria-label="QR &lt;code&gt;"' in svg
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(url)
    code.make(fit=True)
    expected = code.get_matrix()
    size = len(expected)
    assert f'viewBox="0 0 {size} {size}"' in svg
    drawn = [[False] * size for _ in range(size)]
    for x, y, width in re.findall(r"M(\d+),(\d+)h(\d+)v1h-\d+z", svg):
        for column in range(int(x), int(x) + int(width)):
            drawn[int(y)][column] = True
    assert drawn == expected


def test_tender_and_event_pages_carry_link_previews_and_their_qr_code(client: TestClient) -> None:
    page = client.get(f"/tenders/{SIGNED}", params={"lang": "en"})
    assert '<meta property="og:title" content="Street lighting renewal">' in page.text
    assert f'<meta property="og:url" content="http://testserver/tenders/{SIGNED}">' in page.text
    assert '<meta name="twitter:card" content="summary">' in page.text
    assert 'aria-label="QR code of this page: Street lighting renewal"' in page.text
    event = client.get(f"/tenders/{SIGNED}/events/1", params={"lang": "es"})
    assert event.status_code == 200
    assert f'value="http://testserver/tenders/{SIGNED}/events/1"' in event.text
    assert "Código QR de esta página" in event.text
    missing = client.get(f"/tenders/{SIGNED}/events/999", params={"lang": "en"})
    assert missing.status_code == 404 and "event &#39;999&#39; of tender" in missing.text
    assert client.get(f"/tenders/{SIGNED}/events/x").status_code == 404
    assert client.get("/about").status_code == 200


def test_the_same_anchor_is_listed_once_after_demo_then_serve(tmp_path: Path) -> None:
    """`tenderproof demo` anchors on its process's embedded chain; `serve` starts a new one (a new
    instance) and anchors the same checkpoint again: the pages list the serving chain's anchor
    once, not the vanished chain's beside it."""
    with recorded_ledger("sqlite", tmp_path) as recorded:
        serving = EmbeddedChain()
        size = anchor_final(ChainAnchorer(recorded.log, recorded.chain, dev=serving, holder="serve"))
        assert len(store.listing(recorded.log.engine, chain=recorded.chain.name)) == 2  # both are recorded
        with TestClient(create_app(settings_for(recorded), log=recorded.log, dev_chain=serving)) as client:
            page = client.get("/anchors", params={"lang": "en"}).text
            home = client.get("/", params={"lang": "en"}).text
        assert len(re.findall(r'data-label="Records in the log"><a href="/anchors/dev/\d+">', page)) == 1
        assert f"{size} records</a>" in page
        assert len(re.findall(r'<li><a href="/anchors/dev/\d+">', home)) == 1


def test_every_name_link_of_a_tender_page_leads_to_its_organisation(client: TestClient) -> None:
    """Names the tender gives its buyer and suppliers link to their pages (a natively recorded
    buyer too, by its ledger id); names no organisation page holds are not links."""
    for ocid in (SIGNED, demo.ROAD, demo.SCHOOL):
        page = client.get(f"/tenders/{ocid}", params={"lang": "en"}).text
        links = sorted(set(re.findall(r'href="(/organisations\?name=[^"]+)"', page)))
        assert links, ocid
        for link in links:
            response = client.get(link.replace("&amp;", "&"), follow_redirects=False)
            assert response.status_code == 303, link
            assert client.get(response.headers["location"]).status_code == 200
    buyer = client.get(f"/tenders/{SIGNED}", params={"lang": "en"}).text
    assert '<a href="/organisations?name=Ayuntamiento+de+Villanueva" data-org-link>' in buyer
