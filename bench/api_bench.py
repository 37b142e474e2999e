"""Benchmarks of the HTTP API against a real ``tenderproof serve --workers 2``. Prints its figures.

    python bench/api_bench.py                                   # SQLite; reads on a 1,000,000-entry log
    python bench/api_bench.py --engine both                     # what ``make bench-api`` runs
    python bench/api_bench.py --quick                           # a small run (50,000 entries, fewer requests)
    python bench/api_bench.py --database sqlite:///big.sqlite3  # build the big log once, reuse it later
    python bench/api_bench.py --write bench/RESULTS-api.md

Each measurement runs against the server as an operator starts it (``--no-anchoring``, rate
limit off, a concurrency limit no run reaches); its clients run in this process, on the same
machine, over loopback (``aiohttp`` + ``asyncio``: an ``httpx.AsyncClient`` shared by 32
connections costs ~3 ms of client CPU a request in its pool bookkeeping, aiohttp ~0.13 ms, and
on a small machine the clients' CPU is taken from the server's):

1. single-event writes: officers create tenders (``POST /api/v1/tenders``), then record
   ``tender.clarified`` and ``bid.committed`` events on them at random
   (``POST /api/v1/tenders/{ocid}/events``) from ``--clients`` concurrent clients;
2. bulk writes: whole tender histories, ``--batch`` events a request, through
   ``POST /api/v1/events/bulk`` from 4 concurrent clients;
3. reads on a log of ``--entries`` entries, all integrated and final on the embedded chain:
   a tender's page data (``GET /api/v1/tenders/{ocid}`` and ``.../events``) and its proof bundle
   (``.../bundle``), one request at a time, each for another tender picked at random; then the
   three mixed from 16 clients.

Every event goes through the tender rules and must be accepted; any failed request fails the
run. Writes go to a scratch database of their own. The big log is built (``Log.append_many``,
each tender's events spread over its cohort's stretch of the log, anchored five times, then the
projections rebuilt) in another scratch database, or in ``--database`` (whose engine replaces
``--engine``), which is kept and topped up to ``--entries`` if smaller. Scratch PostgreSQL
databases are made on the server at TENDERPROOF_TEST_PG_URL
(default: postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

# Run as a script: make the repository and the log benchmark's helpers importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from log_bench import database, machine, percentile

from anchoring.bundles import build_bundle, final_anchors
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from ledger.core.errors import NotFoundError
from ledger.log import Log
from ledger.procurement.project import rebuild
from ledger.procurement.rules import commitment_of
from ledger.store.db import normalize_url, open_engine, write_transaction
from ledger.store.schema import tender_index, tenders
from ledger.submission import Submission
from settings import ChainSettings
from tests.cluster import ApiServer, create_key, serve_api
from tests.recording import append_many

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "bench.tenderproof/api"
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)
WORKERS = 2
#: The server's environment: the default chain (the bundle route reads its final anchors from the
#: database), no rate limit, concurrency limits (per process and per client address) no run reaches.
SERVER_ENV = {
    "TENDERPROOF_CHAINS": json.dumps([{"name": CHAIN.name, "rpc_url": CHAIN.rpc_url, "confirmations": 1}]),
    "TENDERPROOF_RATE_LIMIT": "off",
    "TENDERPROOF_MAX_CONCURRENCY": "100000",
    "TENDERPROOF_MAX_CLIENT_REQUESTS": "100000",  # every client of the benchmark is on 127.0.0.1
}
BULK_CLIENTS = 4
LOADED_CLIENTS = 16
BUDGET = 300.0  # seconds at most for one batch of requests
#: Each tender of the big log: published, then sealed-bid commitments and clarifications in turn.
EVENTS_PER_TENDER = 10
COHORT = 10_000  # tenders whose events interleave in the big log
CHUNK = 1_000  # events per append while building
WORDS = ["road", "school", "hospital", "bridge", "water", "lighting", "furniture", "software", "cleaning", "fuel"]
GOALS = {
    "single-event writes (writes/s)": ">= 1,500",
    "write errors": "0",
    "bulk (events/s)": ">= 10,000",
    "ratio: single-event writes / floor, 32 clients": ">= 0.25",
    "ratio: bulk / executemany floor": ">= 0.2",
    "GET tender page data p95 (ms)": "<= 50",
    "GET tender bundle p95 (ms)": "<= 50",
    "read errors": "0",
}


# --- Payloads, valid for the tender rules while the tender period is open ---------------------------


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def published(n: int, opened: datetime) -> dict[str, Any]:
    """Tender ``n``, published with a period running a year from ``opened``."""
    return {
        "tender": {
            "id": f"T-{n}",
            "title": f"{WORDS[n % 10].title()} works lot {n} for district {n % 97}",
            "description": "Supply and installation as described in the technical specifications, lots 1 to 3.",
            "procurementMethod": ["open", "selective", "limited"][n % 3],
            "value": {"amount": float((n * 7919) % 5_000_000 + 10_000), "currency": "EUR"},
            "tenderPeriod": {"startDate": _stamp(opened), "endDate": _stamp(opened + timedelta(days=365))},
            "items": [{"id": "1", "description": "Asphalt mix AC16", "quantity": 1 + n % 900, "unit": {"name": "t"}}],
        },
        "buyer": {"id": f"BUYER-{n % 500}", "name": f"Municipality {n % 500}"},
    }


def clarified(n: int, k: int) -> dict[str, Any]:
    return {
        "tender": {
            "id": f"T-{n}",
            "enquiries": [
                {
                    "id": f"q{k}",
                    "title": f"Question {k} on lot {k % 3 + 1}",
                    "description": "Can the deliveries be split over two quarters?",
                    "answer": "Yes, provided each partial delivery is complete and invoiced separately.",
                }
            ],
        }
    }


def committed(n: int, k: int) -> dict[str, Any]:
    """Bidder ``k``'s sealed bid on tender ``n``: a real commitment (SHA-256 of the bid and a salt)."""
    bidder = {"id": f"ES-B{k:06d}", "name": f"Supplier {k} SL"}
    bid = {"id": f"bid-{k}", "tenderers": [bidder], "value": {"amount": 1000.0 + k, "currency": "EUR"}}
    return {"bidder": bidder, "commitment": commitment_of(bid, f"{n % 256:02x}{k % 256:02x}" * 8)}


def history(n: int, opened: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Tender ``n``'s ``EVENTS_PER_TENDER`` events (type, payload), in order."""
    events = [("tender.published", published(n, opened))]
    for k in range(1, EVENTS_PER_TENDER):
        events.append(("bid.committed", committed(n, k)) if k % 2 else ("tender.clarified", clarified(n, k)))
    return events


def ocid(n: int, prefix: str) -> str:
    return f"ocds-{prefix}-{n:07d}"


# --- The server -------------------------------------------------------------------------------------


@contextmanager
def serve(url: str, *, log_file: Path) -> Iterator[ApiServer]:
    """``tenderproof serve --workers 2 --no-anchoring`` on ``url`` (tests.cluster), until the block exits."""
    with serve_api(url, origin=ORIGIN, workers=WORKERS, log_file=log_file, env=SERVER_ENV) as server:
        yield server


def officer_key(url: str) -> str:
    return create_key(url, origin=ORIGIN, name="bench")


# --- The load ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    body: bytes | None = None
    expect: int = 200


@dataclass
class Run:
    """Latencies (ms) of the successful calls, the failures, the wall and CPU time they took."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies) + len(self.errors)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) if self.latencies else math.nan


async def _drive(base: str, calls: Sequence[Call], clients: int, headers: dict[str, str]) -> Run:
    run = Run()
    queue = iter(calls)
    deadline = time.monotonic() + BUDGET
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector, timeout=timeout) as session:

        async def one_client() -> None:
            for call in queue:  # shared: each call is sent once, by whichever client is free
                if time.monotonic() > deadline:
                    run.errors.append(f"{call.method} {call.path}: not sent, the {BUDGET:.0f} s budget is spent")
                    continue
                start = time.perf_counter()
                try:
                    async with session.request(call.method, call.path, data=call.body) as response:
                        body = await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    run.errors.append(f"{call.method} {call.path}: {type(exc).__name__} {exc}")
                    continue
                if response.status != call.expect:
                    run.errors.append(f"{call.method} {call.path}: {response.status} {body[:300]!r}")
                    continue
                run.latencies.append((time.perf_counter() - start) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        run.seconds = time.perf_counter() - start
    return run


def drive(server: ApiServer, calls: Sequence[Call], *, clients: int, key: str | None = None, name: str = "") -> Run:
    """Send ``calls`` from ``clients`` concurrent connections; time them; print a summary if named."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    run = asyncio.run(_drive(server.base, calls, clients, headers))
    run.server_cpu = server.cpu_seconds() - server_cpu
    run.client_cpu = time.process_time() - client_cpu
    if name:
        print(
            f"  {name}: {run.done:,} requests, {run.rate:,.0f}/s, p50 {run.p(0.5):.1f} ms, p95 {run.p(0.95):.1f} ms,"
            f" {len(run.errors)} errors; CPU: server {run.server_cpu:.1f} s, client {run.client_cpu:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        for error in run.errors[:3]:
            print(f"    {error}", file=sys.stderr, flush=True)
    return run


def _body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# --- 1 and 2: writes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    entries: int
    tenders: int  # created over HTTP before the single-event writes
    writes: int  # single-event writes
    bulk_events: int
    batch: int
    reads: int  # requests per read route (each for another tender)
    anchor_every: int  # entries between two anchors of the big log
    clients: int


def writes(url: str, sizes: Sizes, logs: Path) -> dict[str, float]:
    """Figures 1 and 2, on the scratch database ``url``."""
    key = officer_key(url)
    opened = datetime.now(UTC) - timedelta(days=1)
    rng = random.Random(2026)
    creates = [
        Call(
            "POST", "/api/v1/tenders", _body({"ocid": ocid(n, "bnchwr"), "type": "tender.published", "payload": p}), 201
        )
        for n, p in ((n, published(n, opened)) for n in range(sizes.tenders))
    ]
    bidders = [0] * sizes.tenders
    events = []
    for i in range(sizes.writes):
        n = rng.randrange(sizes.tenders)
        bidders[n] += 1
        kind, payload = ("bid.committed", committed(n, bidders[n])) if i % 2 else ("tender.clarified", clarified(n, i))
        path = f"/api/v1/tenders/{ocid(n, 'bnchwr')}/events"
        events.append(Call("POST", path, _body({"type": kind, "payload": payload}), 201))
    per_request = max(1, sizes.batch // EVENTS_PER_TENDER)  # whole histories in each request
    batches = []
    for b in range(math.ceil(sizes.bulk_events / (per_request * EVENTS_PER_TENDER))):
        items = [
            {"ocid": ocid(n, "bnchbk"), "type": kind, "payload": payload}
            for n in range(b * per_request, (b + 1) * per_request)
            for kind, payload in history(n, opened)
        ]
        batches.append(Call("POST", "/api/v1/events/bulk", _body({"events": items}), 201))
    size = per_request * EVENTS_PER_TENDER
    with serve(url, log_file=logs / "server-writes.log") as server:
        created = drive(server, creates, clients=sizes.clients, key=key, name="create tenders")
        alone = drive(server, events[: sizes.writes // 10], clients=1, key=key, name="record events, 1 client")
        recorded = drive(server, events[sizes.writes // 10 :], clients=sizes.clients, key=key, name="record events")
        bulk = drive(server, batches, clients=BULK_CLIENTS, key=key, name=f"bulk, {size} events a request")
    bulk_events = len(bulk.latencies) * size
    return {
        "single-event writes, 1 client (writes/s)": alone.rate,
        "single-event write p50, 1 client (ms)": alone.p(0.5),
        "single-event writes (writes/s)": recorded.rate,
        "single-event write p50 (ms)": recorded.p(0.5),
        "single-event write p95 (ms)": recorded.p(0.95),
        "single-event write p99 (ms)": recorded.p(0.99),
        "server CPU per single-event write (ms)": 1000 * recorded.server_cpu / recorded.done,
        "client CPU per single-event write (ms)": 1000 * recorded.client_cpu / recorded.done,
        "tender creations (writes/s)": created.rate,
        "write errors": float(len(created.errors) + len(alone.errors) + len(recorded.errors)),
        "bulk (events/s)": bulk_events / bulk.seconds,
        f"bulk request of {size} p50 (ms)": bulk.p(0.5),
        f"bulk request of {size} p95 (ms)": bulk.p(0.95),
        "server CPU per bulk event (ms)": 1000 * bulk.server_cpu / max(1, bulk_events),
        "bulk errors": float(len(bulk.errors)),
    }


# --- The floor: the same database doing the bare durable work -----------------------------------------

FLOOR_SECONDS = 5.0
#: A row as wide as a recorded event's (envelope + payload, ~1 KB).
FLOOR_ROW = b"x" * 1000


def floors(engine: str, *, clients: Sequence[int], batch: int) -> dict[str, float]:
    """What the database itself does, measured in this run on a scratch database of ``engine`` with
    the log's own configuration (``open_engine``: WAL, ``synchronous=FULL``, psycopg 3) and the log's
    write transactions (``write_transaction``: ``BEGIN IMMEDIATE`` on SQLite): one-row INSERT + COMMIT
    from each number of ``clients`` threads, and one executemany of ``batch`` rows per COMMIT."""
    out: dict[str, float] = {}
    with database(engine) as url:
        db_engine = open_engine(url, pool_size=max(clients) + 2)
        serial = "BIGSERIAL" if engine == "postgresql" else "INTEGER"
        blob = "BYTEA" if engine == "postgresql" else "BLOB"
        param = "%s" if engine == "postgresql" else "?"
        with write_transaction(db_engine) as conn:
            conn.exec_driver_sql(f"CREATE TABLE floor_rows (id {serial} PRIMARY KEY, ocid TEXT NOT NULL, data {blob})")
        sql = f"INSERT INTO floor_rows (ocid, data) VALUES ({param}, {param})"
        try:
            for n in clients:
                done = [0] * n
                stop = time.monotonic() + FLOOR_SECONDS

                def writer(i: int, done: list[int] = done, stop: float = stop) -> None:
                    while time.monotonic() < stop:
                        with write_transaction(db_engine) as conn:
                            conn.exec_driver_sql(sql, (f"ocds-floor-{i}", FLOOR_ROW))
                        done[i] += 1

                started = time.perf_counter()
                threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                out[f"floor: one-row INSERT + COMMIT, {n} clients (/s)"] = sum(done) / (time.perf_counter() - started)
            rows = [(f"ocds-floor-{i}", FLOOR_ROW) for i in range(batch)]
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < FLOOR_SECONDS:
                with write_transaction(db_engine) as conn:
                    conn.exec_driver_sql(sql, rows)
                count += batch
            out[f"floor: executemany of {batch} rows + COMMIT (rows/s)"] = count / (time.perf_counter() - started)
        finally:
            db_engine.dispose()
    return out


def ratios(figures: dict[str, float], clients: int, batch: int) -> dict[str, float]:
    """The product's figures over the floor's of the same run."""
    out: dict[str, float] = {}
    for n, metric in ((1, "single-event writes, 1 client (writes/s)"), (clients, "single-event writes (writes/s)")):
        floor = figures.get(f"floor: one-row INSERT + COMMIT, {n} clients (/s)")
        if floor and metric in figures:
            out[f"ratio: single-event writes / floor, {n} client{'s' if n > 1 else ''}"] = figures[metric] / floor
    floor = figures.get(f"floor: executemany of {batch} rows + COMMIT (rows/s)")
    if floor and "bulk (events/s)" in figures:
        out["ratio: bulk / executemany floor"] = figures["bulk (events/s)"] / floor
    return out


# --- 3: reads on a big, anchored log ----------------------------------------------------------------


def _anchor(log: Log, anchorer: ChainAnchorer) -> int:
    """Integrate everything pending and anchor it; return the final anchor's tree size."""
    log.integrate_all(now=datetime.now(UTC))
    result = anchorer.run_round(force=True)
    for _ in range(100):
        if result.settled:
            break
        result = anchorer.run_round()
    if result.anchor is None or result.anchor.status != "final":
        raise RuntimeError(f"anchoring on {CHAIN.name} did not become final: {result}")
    return result.anchor.tree_size


def build(log: Log, entries: int, *, anchor_every: int) -> float:
    """Top ``log`` up to ``entries`` entries of valid tender histories, anchored every ``anchor_every``
    entries and at the end; rebuild the projections; return the seconds it took (0.0 if nothing was
    missing)."""
    size = log.reader.tree_head().size + log.reader.pending_count()
    with log.engine.connect() as conn:
        first = int(conn.execute(select(func.count()).select_from(tenders)).scalar_one())
        indexed = int(conn.execute(select(func.count()).select_from(tender_index)).scalar_one())
    try:
        anchored = bool(final_anchors(log.engine, CHAIN.name).anchors)
    except NotFoundError:
        anchored = False
    if size >= entries and indexed and anchored:
        return 0.0
    start = time.perf_counter()
    anchorer = ChainAnchorer(log, CHAIN, dev=EmbeddedChain(), holder="api-bench")
    # A simulated clock, advancing through the build and staying in the past.
    clock = datetime.now(UTC) - timedelta(days=1)
    opened = clock - timedelta(days=30)
    n = first  # tenders are numbered on from those already there
    try:
        while size < entries:
            count = min(COHORT, math.ceil((entries - size) / EVENTS_PER_TENDER))
            lives = [history(m, opened) for m in range(n, n + count)]
            # Wave by wave: each tender's events are spread over the cohort's stretch of the log.
            items = [
                Submission(ocid=ocid(n + i, "bnchrd"), type=lives[i][k][0], payload=lives[i][k][1])
                for k in range(EVENTS_PER_TENDER)
                for i in range(count)
            ]
            for at in range(0, len(items), CHUNK):
                clock += timedelta(milliseconds=50)
                chunk = items[at : at + CHUNK]
                append_many(log, chunk, now=clock)
                before, size = size, size + len(chunk)
                if size // anchor_every > before // anchor_every:
                    _anchor(log, anchorer)
                if size // 100_000 > before // 100_000:
                    print(f"  appended and anchored {size:,}", file=sys.stderr, flush=True)
            n += count
        _anchor(log, anchorer)
    finally:
        anchorer.release()
    print(f"  rebuilding the projections ({time.perf_counter() - start:.0f} s so far)", file=sys.stderr, flush=True)
    refused = rebuild(log.engine)
    if refused:
        raise RuntimeError(f"the rules refused {len(refused)} of the bench's events, first: {refused[0]}")
    with log.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - start


READ_ROUTES = {"GET tender": "", "GET tender events": "/events", "GET tender bundle": "/bundle"}


def prepare(url: str, sizes: Sizes) -> tuple[dict[str, float], list[str]]:
    """Build (or top up) the big log at ``url``; its figures and ``sizes.reads`` tenders picked at random."""
    log = Log.open(url, origin=ORIGIN)
    try:
        built = build(log, sizes.entries, anchor_every=sizes.anchor_every)
        size = log.reader.tree_head().size
        target = final_anchors(log.engine, CHAIN.name)
        with log.engine.connect() as conn:
            count = int(conn.execute(select(func.count()).select_from(tender_index)).scalar_one())
            pick = select(tender_index.c.ocid).order_by(func.random()).limit(sizes.reads)
            sample = list(conn.execute(pick).scalars())
        # What the bundles hold: a tender's events proven against several anchors need consistency proofs too.
        per_bundle = statistics.median(len(build_bundle(log, o, target).anchors) for o in sample[:20])
    finally:
        log.close()
    print(
        f"  {size:,} entries, {count:,} tenders, {len(target.anchors)} final anchors ({built:.0f} s)", file=sys.stderr
    )
    figures = {"log entries": float(size), "tenders": float(count), "final anchors": float(len(target.anchors))}
    return figures | {"anchors per bundle (median)": float(per_bundle), "log build (s)": built}, sample


def reads(url: str, sample: list[str], logs: Path) -> dict[str, float]:
    """Figure 3: each read route for every tender of ``sample``, one request at a time; then mixed."""
    out: dict[str, float] = {}
    calls = {name: [Call("GET", f"/api/v1/tenders/{o}{tail}") for o in sample] for name, tail in READ_ROUTES.items()}
    with serve(url, log_file=logs / "server-reads.log") as server:
        drive(server, [c for listed in calls.values() for c in listed[:20]], clients=2)  # connections, caches
        runs = {name: drive(server, listed, clients=1, name=name) for name, listed in calls.items()}
        mixed = [c for trio in zip(*calls.values(), strict=True) for c in trio]
        loaded = drive(server, mixed, clients=LOADED_CLIENTS, name=f"mixed, {LOADED_CLIENTS} clients")
    # A tender's page data: its summary and its events, one after the other.
    page = [a + b for a, b in zip(runs["GET tender"].latencies, runs["GET tender events"].latencies, strict=False)]
    for name, run in runs.items():
        out[f"{name} p50 (ms)"] = run.p(0.5)
        out[f"{name} p95 (ms)"] = run.p(0.95)
        if name == "GET tender events":
            out["GET tender page data p50 (ms)"] = percentile(page, 0.5)
            out["GET tender page data p95 (ms)"] = percentile(page, 0.95)
    out[f"mixed reads, {LOADED_CLIENTS} clients (requests/s)"] = loaded.rate
    out[f"mixed reads, {LOADED_CLIENTS} clients p95 (ms)"] = loaded.p(0.95)
    out["server CPU per bundle (ms)"] = 1000 * runs["GET tender bundle"].server_cpu / runs["GET tender bundle"].done
    out["read errors"] = float(sum(len(r.errors) for r in [*runs.values(), loaded]))
    return out


# --- Report -----------------------------------------------------------------------------------------


def table(results: dict[str, dict[str, float]]) -> str:
    engines = list(results)
    metrics = list(dict.fromkeys(m for figures in results.values() for m in figures))
    lines = ["| metric | " + " | ".join(engines) + " | goal |", "|---|" + "---:|" * len(engines) + "---|"]
    for metric in metrics:
        cells = []
        for engine in engines:
            value = results[engine].get(metric, math.nan)
            cells.append(
                ""
                if math.isnan(value)
                else f"{value:.3f}"
                if metric.startswith("ratio") or "CPU per" in metric
                else f"{value:,.0f}"
                if value >= 100 or value.is_integer()
                else f"{value:,.1f}"
            )
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {GOALS.get(metric, '')} |")
    return "\n".join(lines)


def big_logs(database_url: str | None, engine: str) -> tuple[list[str], dict[str, AbstractContextManager[str]]]:
    """The engines to run and, per engine, the database of the big log: ``database_url`` (kept; its
    engine replaces ``engine``) or a scratch one per engine ("both": SQLite and PostgreSQL)."""
    if database_url:
        url = normalize_url(database_url)
        name = url.split(":", 1)[0].split("+")[0]
        return [name], {name: nullcontext(url)}
    engines = ["sqlite", "postgresql"] if engine == "both" else [engine]
    return engines, {name: database(name) for name in engines}


def load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmarks of the Tenderproof HTTP API.")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--entries", type=int, default=1_000_000, help="entries of the log read from")
    parser.add_argument("--quick", action="store_true", help="a small run: 50,000 entries, fewer requests")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients of the single-event writes")
    parser.add_argument("--batch", type=int, default=500, help="events per bulk request (default 500)")
    parser.add_argument(
        "--anchor-every",
        type=int,
        default=10_000,
        help="entries between two anchors of the log read from (default 10,000: TENDERPROOF_ANCHOR_THRESHOLD's"
        " default, where a busy log gets anchored)",
    )
    parser.add_argument("--database", help="read from (and keep) the log in this database URL, not a scratch one")
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    parser.add_argument(
        "--writes-only", action="store_true", help="measure the writes and their floor only (no big log, no reads)"
    )
    parser.add_argument("--writes", type=int, help="single-event writes (default 10,000; 3,000 with --quick)")
    args = parser.parse_args()
    quick = args.quick
    sizes = Sizes(
        entries=50_000 if quick else args.entries,
        tenders=300 if quick else 1_000,
        writes=args.writes or (3_000 if quick else 10_000),
        bulk_events=10_000 if quick else 100_000,
        batch=args.batch,
        reads=100 if quick else 500,
        anchor_every=args.anchor_every,
        clients=args.clients,
    )
    engines, big = big_logs(args.database, args.engine)
    results: dict[str, dict[str, float]] = {}
    started = load()
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        for engine in engines:
            print(f"[{engine}] writes", file=sys.stderr, flush=True)
            with database(engine) as url:
                results[engine] = writes(url, sizes, logs)
            print(f"[{engine}] the floor", file=sys.stderr, flush=True)
            results[engine] |= floors(engine, clients=sorted({1, sizes.clients}), batch=sizes.batch)
            results[engine] |= ratios(results[engine], sizes.clients, sizes.batch)
            if args.writes_only:
                print(table({engine: results[engine]}), file=sys.stderr, flush=True)
                continue
            print(f"[{engine}] the log to read from", file=sys.stderr, flush=True)
            with big[engine] as url:
                figures, sample = prepare(url, sizes)
                print(f"[{engine}] reads", file=sys.stderr, flush=True)
                results[engine] |= figures | reads(url, sample, logs)
            print(table({engine: results[engine]}), file=sys.stderr, flush=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = (
        f"HTTP API benchmarks, {stamp}: `tenderproof serve --workers {WORKERS}` and its clients on one machine;"
        f" {sizes.writes:,} single-event writes from {sizes.clients} clients, {sizes.bulk_events:,} events in bulk"
        f" from {BULK_CLIENTS}, reads of {sizes.reads:,} tenders of a {sizes.entries:,}-entry log one at a time\n"
        f"Machine: {machine()}; load average {started} at the start, {load()} at the end\n\n{table(results)}\n"
    )
    print(out)
    if args.write:
        args.write.write_text(out)
    failed = any(r.get(m) for r in results.values() for m in ("write errors", "bulk errors", "read errors"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
