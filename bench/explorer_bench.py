"""Benchmarks of the explorer site on a big log. Prints its figures.

    python bench/explorer_bench.py                                  # SQLite, 1,000,000 entries
    python bench/explorer_bench.py --engine both --write bench/RESULTS-explorer.md   # make bench-explorer
    python bench/explorer_bench.py --entries 50000                  # a quick run
    python bench/explorer_bench.py --database sqlite:///big.sqlite3 # build the big log once, reuse it

1. **Server time** of the home page, the tender list (first page, a status filter, a buyer filter,
   sorted by value) and a tender's page (another tender picked at random each time), against
   ``tenderproof serve --workers 2`` as an operator starts it, one request at a time over loopback:
   p50, p95 and max in milliseconds (the client's own time is negligible next to them). The home
   page's ledger-wide figures are recomputed at most every ``TENDERPROOF_EXPLORER_STATS_TTL``
   seconds (30 by default); their uncached cost is measured too, with the TTL at 0.
2. **Page weight** of a tender's page in Chromium (/usr/bin/chromium, Playwright): every request
   the page makes until its badges are settled, bytes transferred (headers + body, as sent), and
   the hosts asked. For the badges to verify, the big log is anchored once more on a fresh
   in-process chain served by an in-process server (whose /rpc is that chain).

The big log is built by bench/api_bench.py's ``build`` (10-event tender histories interleaved over
the log, anchored every 10,000 entries, projections rebuilt): the same log as the API benchmark.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench
from api_bench import CHAIN, ORIGIN, Server, big_logs, build, serve
from log_bench import machine, percentile

from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from api.app import create_app
from ledger.log import Log
from ledger.store.schema import tender_index
from settings import Settings
from tests.api.servers import threaded_server
from tests.explorer.browser import DESKTOP, chromium
from tests.explorer.conftest import anchor_final

GOALS = {"p95": "<= 50 ms", "weight": "<= 150 KB"}


@contextmanager
def _server(url: str, logs: Path, **env: str) -> Iterator[Server]:
    saved = dict(api_bench.SERVER_ENV)
    api_bench.SERVER_ENV.update(env)
    try:
        with serve(url, log_file=logs / f"serve-{len(env)}.log") as server:
            yield server
    finally:
        api_bench.SERVER_ENV.clear()
        api_bench.SERVER_ENV.update(saved)


def _times(client: httpx.Client, paths: list[str]) -> dict[str, float]:
    samples = []
    for path in paths:
        start = time.perf_counter()
        answer = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {answer.status_code}")
    return {"p50": statistics.median(samples), "p95": percentile(samples, 0.95), "max": max(samples)}


def server_times(url: str, sample: list[str], buyer: str, logs: Path, requests: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with _server(url, logs) as server, httpx.Client(base_url=server.base, timeout=60) as client:
        for path in ("/", "/tenders", f"/tenders/{sample[0]}"):  # warm both workers' caches and connections
            for _ in range(4):
                client.get(path)
        results["home"] = _times(client, ["/"] * requests)
        results["tenders, first page"] = _times(client, ["/tenders"] * requests)
        results["tenders, status=active"] = _times(client, ["/tenders?status=active"] * requests)
        results["tenders, one buyer"] = _times(client, [f"/tenders?buyer={buyer}"] * requests)
        results["tenders, by value"] = _times(client, ["/tenders?sort=value_desc"] * requests)
        picks = [random.choice(sample) for _ in range(requests)]
        results["tender page (random tender)"] = _times(client, [f"/tenders/{o}" for o in picks])
        results["open data page"] = _times(client, ["/data"] * requests)
    with (
        _server(url, logs, TENDERPROOF_EXPLORER_STATS_TTL="0") as server,
        httpx.Client(base_url=server.base, timeout=60) as client,
    ):
        client.get("/")
        results["home, figures uncached"] = _times(client, ["/"] * max(20, requests // 10))
        results["open data, charts uncached"] = _times(client, ["/data"] * max(20, requests // 10))
    return results


def page_weight(url: str, ocid: str) -> dict[str, Any]:
    """Anchor the log on a fresh in-process chain, serve it in-process, load the tender's page."""
    log = Log.open(url, origin=ORIGIN)
    dev = EmbeddedChain()
    try:
        anchor_final(ChainAnchorer(log, CHAIN, dev=dev, holder="explorer-bench"))
        settings = Settings(database_url=url, origin=ORIGIN, chains=[CHAIN], rate_limit=None)
        with threaded_server(create_app(settings, log=log, dev_chain=dev)) as base, chromium() as browser:
            context = browser.new_context(viewport=DESKTOP)
            page = context.new_page()
            seen: list[Any] = []
            page.on("requestfinished", lambda request: seen.append(request))
            page.goto(f"{base}/tenders/{ocid}")
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-badge-seq]')].every((b) => b.dataset.status !== 'unchecked')",
                timeout=120_000,
            )
            statuses = page.eval_on_selector_all("[data-badge-seq]", "(bs) => bs.map((b) => b.dataset.status)")
            rows = []
            for request in seen:
                sizes = request.sizes()
                rows.append((request.url, sizes["responseHeadersSize"] + sizes["responseBodySize"]))
            context.close()
    finally:
        log.close()
    origin = urlsplit(base).netloc
    kinds = {"page (HTML, CSS, JS, icon)": 0, "bundle (API)": 0, "RPC (/rpc)": 0}
    for address, size in rows:
        path = urlsplit(address).path
        key = (
            "bundle (API)"
            if path.endswith("/bundle")
            else "RPC (/rpc)"
            if path == "/rpc"
            else "page (HTML, CSS, JS, icon)"
        )
        kinds[key] += size
    return {
        "requests": len(rows),
        "hosts": sorted({urlsplit(a).netloc.replace(origin, "the server") for a, _ in rows}),
        "bytes": kinds,
        "total": sum(kinds.values()),
        "badges": {s: statuses.count(s) for s in sorted(set(statuses))},
    }


def prepare(url: str, entries: int) -> tuple[int, int, list[str], str]:
    log = Log.open(url, origin=ORIGIN)
    try:
        build(log, entries, anchor_every=10_000)
        size = log.reader.tree_head().size
        with log.engine.connect() as conn:
            count = int(conn.execute(select(func.count()).select_from(tender_index)).scalar_one())
            sample = list(conn.execute(select(tender_index.c.ocid).order_by(func.random()).limit(500)).scalars())
            buyer = conn.execute(select(tender_index.c.buyer_id).limit(1)).scalar_one()
    finally:
        log.close()
    return size, count, sample, str(buyer)


def table(engine: str, size: int, tenders: int, times: dict[str, dict[str, float]], weight: dict[str, Any]) -> str:
    lines = [
        f"### {engine}: {size:,} entries, {tenders:,} tenders",
        "",
        "| page | p50 (ms) | p95 (ms) | max (ms) | goal |",
        "|---|---:|---:|---:|---|",
    ]
    for name, t in times.items():
        lines.append(f"| {name} | {t['p50']:.1f} | {t['p95']:.1f} | {t['max']:.1f} | {GOALS['p95']} (p95) |")
    parts = ", ".join(f"{k} {v / 1024:.1f} KB" for k, v in weight["bytes"].items())
    lines += [
        "",
        f"Tender page in Chromium: {weight['total'] / 1024:.1f} KB transferred in {weight['requests']} requests"
        f" ({parts}; goal {GOALS['weight']}); hosts asked: {', '.join(weight['hosts'])}; badges: {weight['badges']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmarks of the Tenderproof explorer.")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300, help="requests per page measured (default 300)")
    parser.add_argument("--database", help="read from (and keep) the log in this database URL, not a scratch one")
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    args = parser.parse_args()
    engines, big = big_logs(args.database, args.engine)
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in engines:
            with big[engine] as url:
                print(f"[{engine}] building the log", file=sys.stderr, flush=True)
                size, tenders, sample, buyer = prepare(url, args.entries)
                print(f"[{engine}] server times", file=sys.stderr, flush=True)
                times = server_times(url, sample, buyer, Path(tmp), args.requests)
                print(f"[{engine}] page weight", file=sys.stderr, flush=True)
                weight = page_weight(url, sample[0])
                sections.append(table(engine, size, tenders, times, weight))
                print(sections[-1], file=sys.stderr, flush=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = (
        f"# Explorer benchmarks, {stamp}\n\n`python bench/explorer_bench.py --engine {args.engine}"
        f" --entries {args.entries}`; `tenderproof serve --workers 2` and its client on one machine, one request"
        f" at a time, {args.requests} requests per page.\nMachine: {machine()}\n\n" + "\n".join(sections)
    )
    print(out)
    if args.write:
        args.write.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
