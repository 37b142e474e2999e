"""Buyer and supplier pages: the server time of ``GET /organisations/{key}`` at a large size.

    python bench/organisation_bench.py                                  # SQLite, 1,000,000 tenders
    python bench/organisation_bench.py --tenders 200000 --engine both --write bench/RESULTS-organisations.md

The projections the page reads (``tenders``, ``tender_index``, ``tender_awarded`` and
``tender_parties``) are filled directly with generated rows, as recording would leave them: each
tender has one of 2,000 buyers, 1-4 tenderers out of 20,000 companies drawn with a skew (a few
companies bid very often: the largest supplier wins thousands of tenders), one active award to
one of its tenderers in one of three currencies. Then, through the application (FastAPI's
TestClient, in this process): the page of 200 suppliers drawn like the bids (the busiest one
included) and of 50 buyers, each asked 3 times; p50 and p95.

The floor, in the same run: ``GET /about``, a page of the same site that reads one row (what any
page costs to route, render and send). The ratio is the page's p95 over the floor's p95.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from api.app import create_app  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.procurement.redflags import COMPETING, rival_pairs  # noqa: E402
from ledger.store.schema import organisation_rivals, tender_awarded, tender_index, tender_parties, tenders  # noqa: E402
from settings import ChainSettings, Settings  # noqa: E402

GOAL_MS = 50.0
COMPANIES = 20_000
BUYERS = 2_000
CURRENCIES = ("MXN", "EUR", "USD")
BATCH = 5_000


def _company(rng: random.Random) -> int:
    """A company, skewed: company 0 bids most often (about 0.7 % of all bids), most rarely."""
    return int(COMPANIES * rng.random() ** 2)


def fill(log: Log, count: int, seed: int = 7) -> set[int]:
    """Fill the projections with ``count`` generated tenders; the companies that won one."""
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    rows: dict[str, list[dict[str, object]]] = {"tenders": [], "index": [], "awarded": [], "parties": []}
    winners: set[int] = set()
    rivals: Counter[tuple[str, str]] = Counter()

    def flush() -> None:
        # what ledger.procurement.redflags.store adds to organisation_rivals for these tenders
        rivals.update(rival_pairs((r["ocid"], r["key"]) for r in rows["parties"] if r["role"] in COMPETING))
        with log.engine.begin() as conn:
            for table, key in (
                (tenders, "tenders"),
                (tender_index, "index"),
                (tender_awarded, "awarded"),
                (tender_parties, "parties"),
            ):
                if rows[key]:
                    conn.execute(insert(table), rows[key])
                    rows[key] = []

    for i in range(count):
        ocid = f"ocds-bench1-{i:08d}"
        when = start + timedelta(minutes=3 * i)
        buyer = i % BUYERS
        currency = CURRENCIES[i % 3]
        bidders = sorted({_company(rng) for _ in range(rng.randint(1, 4))})
        winner = rng.choice(bidders)
        winners.add(winner)
        amount = float(rng.randint(10_000, 5_000_000))
        rows["tenders"].append(
            {"ocid": ocid, "created_at": when, "updated_at": when, "event_count": 4, "head_hash": None}
        )
        rows["index"].append(
            {
                "ocid": ocid, "title": f"Works {i}", "buyer_id": f"XX-B/{buyer}", "buyer_name": f"Buyer {buyer}",
                "status": "complete", "method": "open", "value_amount": amount * 1.1, "currency": currency,
                "tender_start": when, "tender_end": when + timedelta(days=20), "awarded_amount": amount,
                "suppliers": f"Company {winner}", "search_text": f"works {i}", "published_at": when,
                "listed_at": when, "updated_at": when, "state": "{}",
            }
        )  # fmt: skip
        rows["awarded"].append({"ocid": ocid, "currency": currency, "amount": amount})
        rows["parties"].append(
            {
                "ocid": ocid,
                "role": "buyer",
                "key": f"XX-B/{buyer}",
                "name": f"Buyer {buyer}",
                "amounts": None,
                "listed_at": when,
            }
        )
        for company in bidders:
            rows["parties"].append(
                {
                    "ocid": ocid,
                    "role": "tenderer",
                    "key": f"XX-C/{company}",
                    "name": f"Company {company}",
                    "amounts": None,
                    "listed_at": when,
                }
            )
        rows["parties"].append(
            {
                "ocid": ocid,
                "role": "supplier",
                "key": f"XX-C/{winner}",
                "name": f"Company {winner}",
                "amounts": f'{{"{currency}": {amount}}}',
                "listed_at": when,
            }
        )
        if len(rows["tenders"]) == BATCH:
            flush()
    flush()
    pairs = [{"key": a, "rival": b, "tenders": n} for (a, b), n in sorted(rivals.items())]
    with log.engine.begin() as conn:
        for start in range(0, len(pairs), BATCH):
            conn.execute(insert(organisation_rivals), pairs[start : start + BATCH])
    return winners


#: CPU time of this process (the client, the application and SQLite run in it) per request, ms.
CPU: dict[str, list[float]] = {}


def _timed(client: TestClient, path: str, kind: str = "floor") -> float:
    began, cpu = time.perf_counter(), time.process_time()
    response = client.get(path)
    elapsed = (time.perf_counter() - began) * 1000
    CPU.setdefault(kind, []).append((time.process_time() - cpu) * 1000)
    if response.status_code != 200:
        raise AssertionError(f"{path}: HTTP {response.status_code}")
    return elapsed


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def _database(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/bench.sqlite3"
    else:
        from tests.pg import scratch_database

        with scratch_database(
            os.environ.get("TENDERPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        ) as url:
            yield url


def run(engine: str, count: int) -> dict[str, object]:
    with _database(engine) as url:
        log = Log.open(url, origin="bench.example/organisations")
        began = time.perf_counter()
        winners = fill(log, count)
        if engine == "postgresql":
            with log.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        filled = time.perf_counter() - began
        settings = Settings(
            database_url=url, origin="bench.example/organisations", rate_limit=None,
            chains=[ChainSettings(name="dev", rpc_url="embedded", confirmations=1)], signing_chain_id=1,
        )  # fmt: skip
        rng = random.Random(11)
        suppliers = sorted(winners & {0, *(_company(rng) for _ in range(2000))})[:200]
        buyers = rng.sample(range(BUYERS), 50)
        with nullcontext(TestClient(create_app(settings, log=log))) as client, client:
            for _ in range(20):
                _timed(client, "/about", "warm-up")
            floor = [_timed(client, "/about") for _ in range(300)]
            supplier = [
                _timed(client, "/organisations/" + quote(f"XX-C/{c}", safe="/"), "supplier")
                for _ in range(3)
                for c in suppliers
            ]
            buyer = [
                _timed(client, "/organisations/" + quote(f"XX-B/{b}", safe="/"), "buyer")
                for _ in range(3)
                for b in buyers
            ]
            busiest = client.get("/api/v1/organisations", params={"key": "XX-C/0"}).json()
        log.close()
    cpu = {kind: _p(values, 0.95) for kind, values in CPU.items()}
    CPU.clear()
    return {
        "cpu_floor_p95": cpu["floor"],
        "cpu_supplier_p95": cpu["supplier"],
        "cpu_buyer_p95": cpu["buyer"],
        "load": Path("/proc/loadavg").read_text().strip(),
        "engine": engine,
        "tenders": count,
        "filled_s": filled,
        "floor_p95": _p(floor, 0.95),
        "supplier_p50": statistics.median(supplier),
        "supplier_p95": _p(supplier, 0.95),
        "buyer_p50": statistics.median(buyer),
        "buyer_p95": _p(buyer, 0.95),
        "busiest_wins": busiest["roles"].get("supplier", 0),
        "busiest_bids": busiest["roles"].get("tenderer", 0),
    }


def report(results: list[dict[str, object]]) -> str:
    lines = [
        "# Buyer and supplier pages: server time at a large size (issue 19)",
        "",
        f"`python bench/organisation_bench.py --tenders {results[0]['tenders']}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC,"
        " one process, through the application with FastAPI's TestClient, on the shared 2-core machine while other"
        " engineers' work ran: wall times are pessimistic, so the CPU time of the process per request is given"
        " beside them). Goal: supplier page p95 ≤ 50 ms.",
        "",
        "| engine | tenders | busiest supplier (wins / bids) | floor p95 (`/about`) | supplier p50 | supplier p95 | ratio"
        " | supplier CPU p95 (floor CPU p95) | buyer p50 | buyer p95 | goal | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = float(r["supplier_p95"]) / float(r["floor_p95"])  # type: ignore[arg-type]
        met = "met" if float(r["supplier_p95"]) <= GOAL_MS else "**not met**"  # type: ignore[arg-type]
        lines.append(
            f"| {r['engine']} | {r['tenders']:,} | {r['busiest_wins']:,} / {r['busiest_bids']:,} | {r['floor_p95']:.1f} ms |"
            f" {r['supplier_p50']:.1f} ms | **{r['supplier_p95']:.1f} ms** | {ratio:.1f}x |"
            f" {r['cpu_supplier_p95']:.1f} ms ({r['cpu_floor_p95']:.1f} ms) | {r['buyer_p50']:.1f} ms |"
            f" {r['buyer_p95']:.1f} ms | {met} | {r['load']} |"
        )
    lines += [
        "",
        "The page reads: the counts per role and the amounts through `tender_parties`' `(key, role, ocid)` index (their"
        " cost follows the organisation's own number of tenders), its latest 50 tenders by a walk of the"
        " `(key, listed_at, ocid)` index, its competitors from its rows of `organisation_rivals` (migration 0018,"
        " kept by the projection). The floor is the fixed cost of any page (routing, the Jinja2 template, the"
        " response).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenders", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results = []
    for engine in engines:
        result = run(engine, args.tenders)
        print(result, flush=True)
        results.append(result)
    text = report(results)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
