"""Page weight of the officers' desk's pages in Chromium (/usr/bin/chromium, Playwright): every byte
transferred (response headers and bodies, gzip where the server gzips) to load each page in a
fresh browser context (nothing cached), against the goal of issue 19 (<= 150 KB a page). The
floor, measured in the same run, is the explorer's home page loaded the same way.

    python bench/desk_bench.py --write bench/RESULTS-desk.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Browser

from api import auth
from api.app import create_app
from demo import tenders as demo
from ledger.log import Log
from ledger.procurement.record import record
from settings import ChainSettings, Settings
from tests.api.servers import threaded_server
from tests.explorer.browser import DESKTOP, chromium

GOAL = 150 * 1024
ORIGIN = "tenderproof.bench/desk"
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)


def weigh(browser: Browser, base: str, path: str, *, api_key: str | None) -> tuple[int, int]:
    """(bytes transferred, requests) to load ``path`` in a fresh context, signed in first with ``api_key``."""
    state: Any = None
    if api_key is not None:  # sign in in one context, then load the page in a fresh one with its cookies only
        signing_in = browser.new_context(viewport=DESKTOP)
        page = signing_in.new_page()
        page.goto(f"{base}/desk")
        page.fill("#api_key", api_key)
        page.click("button[type=submit]")
        page.wait_for_selector(".desk-bar")
        state = signing_in.storage_state()
        signing_in.close()
    context = browser.new_context(viewport=DESKTOP, storage_state=state)
    page = context.new_page()
    seen: list[Any] = []
    page.on("requestfinished", lambda request: seen.append(request))
    page.goto(f"{base}{path}")
    page.wait_for_load_state("networkidle")
    total = 0
    for request in seen:
        sizes = request.sizes()
        total += sizes["responseHeadersSize"] + sizes["responseBodySize"]
    context.close()
    return total, len(seen)


def run() -> str:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'desk.sqlite3'}"
        log = Log.open(url, origin=ORIGIN)
        try:
            moment, first = demo.timeline()[0]
            record(log, [first], now=moment, signatures="optional", chain_id=31337)
            _, key = auth.create_key(log.engine, name="Bench", role="officer", now=datetime.now(UTC))
            settings = Settings(database_url=url, origin=ORIGIN, chains=[CHAIN], rate_limit=None)
            pages = [
                ("explorer home (floor)", "/", None),
                ("sign-in", "/desk", None),
                ("desk home", "/desk", key),
                ("new tender form", "/desk/new?type=tender.published", key),
                ("event form (award)", f"/desk/record?ocid={first.ocid}&type=award.issued", key),
                ("entry status", f"/desk/entries/{first.ocid}/0", key),
            ]
            rows = []
            with threaded_server(create_app(settings, log=log)) as base, chromium() as browser:
                for name, path, api_key in pages:
                    rows.append((name, *weigh(browser, base, path, api_key=api_key)))
        finally:
            log.close()
    floor = rows[0][1]
    lines = [
        f"# Officers' desk: page weight, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "`python bench/desk_bench.py --write bench/RESULTS-desk.md`: each page loaded in a fresh Chromium"
        " context (nothing cached), every response's headers and body as transferred (static files gzipped).",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, /usr/bin/chromium.",
        "",
        "| page | transferred (KB) | requests | vs floor | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for name, size, requests in rows:
        lines.append(
            f"| {name} | {size / 1024:.1f} | {requests} | {size / floor:.2f}x | <= {GOAL // 1024} KB"
            f" ({'met' if size <= GOAL else 'NOT met'}) |"
        )
    lines += [
        "",
        "The desk's script (`explorer/static/desk.js`: EIP-712 signing, keystore decryption, status polling)"
        " is its own bundle; the public pages never load it, and the desk's pages never load explorer.js.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path, help="write the results to this Markdown file")
    args = parser.parse_args()
    text = run()
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
