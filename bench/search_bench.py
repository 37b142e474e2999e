"""Tender search at scale: ``search_tenders`` and ``facets`` latency over N tenders on SQLite
(FTS5) and PostgreSQL (tsvector, GIN).

    python bench/search_bench.py                      # 100,000 tenders, both engines
    python bench/search_bench.py --tenders 1000000 --write   # and bench/RESULTS-search.md
    python bench/search_bench.py --tenders 20000 --engine sqlite

The tenders are written straight into ``tenders`` and ``tender_index`` in bulk (recording 1M
events one by one through the rules would only slow the setup down); each row is the real
projection of a published tender's rules state (ledger.procurement.record.projection), so the
full-text index is filled by the same triggers (SQLite) and index (PostgreSQL) as in production.
Every query runs ``--runs`` times; the median, the p95 and the worst are printed, in
milliseconds, with the p95's ratio to the floor: the first page of the list with no filter (an
index walk of 50 rows, the cheapest page there is), measured in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from ledger.log import Log
from ledger.procurement import profiles, query, rules
from ledger.procurement.record import projection
from ledger.store.schema import tender_index, tenders
from tests.pg import scratch_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORDS = ["road", "school", "hospital", "bridge", "water", "lighting", "furniture", "software", "cleaning", "fuel"]
#: Buyers' names, some with accents and apostrophes (searched without them).
PLACES = ["Aztlán", "Villanueva", "Охорона здоров\u2019я", "Peñalolén", "Saint-Étienne", "O\u2019Higgins", "Kraków"]


def _rows(start: int, stop: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for i in range(start, stop):
        at = T0 + timedelta(minutes=5 * i)
        ocid = f"ocds-bench0-{i:07}"
        payload = {
            "tender": {
                "id": f"T-{i}",
                "title": f"{WORDS[i % 10].title()} works lot {i} for district {i % 97}",
                "description": f"Renovación {WORDS[(i // 10) % 10]} {i % 1009}",
                "procurementMethod": ["open", "selective", "limited", "direct"][i % 4],
                "value": {"amount": float((i * 7919) % 5_000_000), "currency": "EUR"},
                "tenderPeriod": {"endDate": (at + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            },
            "buyer": {"id": f"BUYER-{i % 500}", "name": f"Municipio {PLACES[i % 7]} {i % 500}"},
        }
        state = rules.apply(rules.TenderState(ocid=ocid), "tender.published", payload, at)
        if i % 10 == 0:
            state = state.model_copy(update={"status": "cancelled"})
        head = {"ocid": ocid, "created_at": at, "updated_at": at, "event_count": 1, "head_hash": "00" * 32}
        yield head, {**projection(state), "updated_at": at}


def _chunk(bounds: tuple[int, int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows ``start`` to ``stop`` (a worker process's share of the fill)."""
    heads, rows = [], []
    for head, row in _rows(*bounds):
        heads.append(head)
        rows.append(row)
    return heads, rows


CHUNK = 10_000


def fill(log: Log, n: int, *, workers: int = 2) -> None:
    """Fill ``tenders`` and ``tender_index`` with ``n`` tenders: the rows made by the project's own
    rules and projection in ``workers`` processes, written with one executemany per chunk while
    the full-text index is left aside, then built in one pass (as migration 0018's backfill does:
    SQLite's triggers dropped and made again, PostgreSQL's GIN index dropped and made again)."""
    sqlite = log.engine.dialect.name == "sqlite"
    with log.engine.begin() as conn:
        if sqlite:
            triggers = [
                sql
                for (sql,) in conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tender_index'"
                )
            ]
            for sql in triggers:
                conn.exec_driver_sql("DROP TRIGGER " + sql.split()[2])
        else:
            gin = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_tender_index_search'"
            ).scalar_one()
            conn.exec_driver_sql("DROP INDEX ix_tender_index_search")
    bounds = [(start, min(n, start + CHUNK)) for start in range(0, n, CHUNK)]
    done = 0
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for heads, rows in pool.imap(_chunk, bounds):
            with log.engine.begin() as conn:
                conn.execute(insert(tenders), heads)
                conn.execute(insert(tender_index), rows)
            done += len(rows)
            if done % 100_000 == 0:
                print(f"  {done:,} rows at {time.strftime('%H:%M:%S')}", flush=True)
    with log.engine.begin() as conn:
        if sqlite:
            conn.exec_driver_sql(
                "INSERT INTO tender_search_keys(ocid) SELECT ocid FROM tender_index ORDER BY listed_at, ocid"
            )
            conn.exec_driver_sql(
                "INSERT INTO tender_search(rowid, search_text) "
                "SELECT k.id, i.search_text FROM tender_search_keys k JOIN tender_index i ON i.ocid = k.ocid"
            )
            conn.exec_driver_sql("INSERT INTO tender_search(tender_search) VALUES ('optimize')")
            for sql in triggers:
                conn.exec_driver_sql(sql)
        else:
            conn.exec_driver_sql(gin)
        conn.exec_driver_sql("ANALYZE")


#: Suppliers of the awarded tenders: each wins every 2,000th tender (500 wins at 1,000,000).
SUPPLIERS = 1000
_N = "CAST(substr(ocid, 13) AS INTEGER)"  # the tender's number in its ocid (ocds-bench0-0000042)
_SUPPLIER = "'XX-BENCH/S-' || ((" + _N + " / 2 + {shift}) % " + str(SUPPLIERS) + ")"
_AWARDED = f"FROM tender_index WHERE {_N} % 2 = 0 AND value_amount IS NOT NULL"


def fill_parties(log: Log) -> None:
    """The buyer and supplier pages' rows for the filled tenders, in SQL (when none are there
    yet): each tender's buyer in ``tender_parties`` (keyed by its buyer id and named, as a
    natively recorded tender's buyer is); every second tender awarded its estimate to one of
    :data:`SUPPLIERS` suppliers, who bid against the next supplier (their ``tenderer`` and
    ``supplier`` rows, ``tender_awarded`` and ``organisation_rivals``). Not made by the rules: the
    fill's tenders have no bids or awards, and the pages read only these tables."""
    with log.engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM tender_parties")).scalar_one():
            return
        conn.execute(
            text(
                "INSERT INTO tender_parties(ocid, role, key, name, amounts, listed_at) "
                "SELECT ocid, 'buyer', buyer_id, buyer_name, NULL, listed_at FROM tender_index"
            )
        )
        winner, rival = _SUPPLIER.format(shift=0), _SUPPLIER.format(shift=1)
        conn.execute(
            text(
                "INSERT INTO tender_parties(ocid, role, key, name, amounts, listed_at) "
                f"SELECT ocid, 'supplier', {winner}, 'Supplier ' || {winner}, "
                f"'{{\"EUR\": ' || CAST(value_amount AS VARCHAR) || '}}', listed_at {_AWARDED}"
            )
        )
        for key in (winner, rival):
            conn.execute(
                text(
                    "INSERT INTO tender_parties(ocid, role, key, name, amounts, listed_at) "
                    f"SELECT ocid, 'tenderer', {key}, 'Supplier ' || {key}, NULL, listed_at {_AWARDED}"
                )
            )
        conn.execute(
            text(f"INSERT INTO tender_awarded(ocid, currency, amount) SELECT ocid, 'EUR', value_amount {_AWARDED}")
        )
        conn.execute(
            text(
                "INSERT INTO organisation_rivals(key, rival, tenders) SELECT a.key, b.key, count(*) "
                "FROM tender_parties a JOIN tender_parties b ON b.ocid = a.ocid AND b.role = 'tenderer' AND b.key <> a.key "
                "WHERE a.role = 'tenderer' GROUP BY a.key, b.key"
            )
        )


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18] if len(samples) > 1 else samples[0]


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float, float, float]:
    """Median, p95 and worst of ``runs`` calls, in ms of wall time, and the p95 of this process's
    CPU time (SQLite works in it; PostgreSQL's server does not) (after one warm-up call)."""
    fn()
    samples, cpu = [], []
    for _ in range(runs):
        start, began = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - began) * 1000)
    return statistics.median(samples), _p95(samples), max(samples), _p95(cpu)


def _deep_cursor(log: Log, pages: int, **kw: Any) -> str | None:
    cursor = None
    for _ in range(pages):
        cursor = query.search_tenders(log.engine, cursor=cursor, **kw).next_cursor
    return cursor


def measure(log: Log, n: int, runs: int) -> list[tuple[str, float, float, float, float]]:
    e = log.engine
    deep = _deep_cursor(log, 200)  # 10,000 rows in
    deep_value = _deep_cursor(log, 200, sort="value_desc")
    cases: list[tuple[str, Callable[[], object]]] = [
        (FLOOR, lambda: query.search_tenders(e)),
        ("page 201 via cursor", lambda: query.search_tenders(e, cursor=deep)),
        ("value_desc page 201 via cursor", lambda: query.search_tenders(e, sort="value_desc", cursor=deep_value)),
        ("status=cancelled", lambda: query.search_tenders(e, status="cancelled")),
        ("buyer=BUYER-42", lambda: query.search_tenders(e, buyer="BUYER-42")),
        ("q='hospital' (10%), newest first", lambda: query.search_tenders(e, q="hospital", sort="published_desc")),
        ("q='hospital' (10%), by relevance", lambda: query.search_tenders(e, q="hospital")),
        ("q='aztlan' (accent-free, 14%)", lambda: query.search_tenders(e, q="aztlan", sort="published_desc")),
        ("q='здоров'я' (ASCII apostrophe, 14%)", lambda: query.search_tenders(e, q="здоров'я", sort="published_desc")),
        ("q='renovacion fuel 77' (rare, 3 words)", lambda: query.search_tenders(e, q="renovacion fuel 77")),
        ("q='lot 4242 for' (1 match)", lambda: query.search_tenders(e, q="lot 4242 for")),
        ("q='zzzz' (no match)", lambda: query.search_tenders(e, q="zzzz")),
        ("q='renov' (prefix of every row)", lambda: query.search_tenders(e, q="renov", sort="published_desc")),
        ("value 1M..1.1M", lambda: query.search_tenders(e, value_min=1_000_000, value_max=1_100_000)),
        (
            "published in one week",
            lambda: query.search_tenders(
                e, published_from=T0 + timedelta(days=100), published_to=T0 + timedelta(days=107)
            ),
        ),
        ("count + facets, q='renovacion fuel 77'", lambda: query.facets(e, q="renovacion fuel 77")),
        ("count + facets, buyer=BUYER-42", lambda: query.facets(e, buyer="BUYER-42")),
        ("count + facets, q='hospital' (broad: newest 2,000 counted)", lambda: query.facets(e, q="hospital")),
        ("tender_summary", lambda: query.tender_summary(e, f"ocds-bench0-{n // 2:07}")),
        (f"supplier page ({n // 2 // SUPPLIERS:,} wins)", lambda: profiles.organisation_profile(e, "XX-BENCH/S-42")),
        (f"buyer page ({n // 500:,} tenders)", lambda: profiles.organisation_profile(e, "BUYER-42")),
    ]
    return [(name, *_time(fn, runs)) for name, fn in cases]


FLOOR = "floor: first page, no filter (50)"


def table(
    engine: str,
    n: int,
    filled: float,
    began: datetime,
    load: str,
    results: list[tuple[str, float, float, float, float]],
) -> list[str]:
    """The report's section of one engine's run."""
    floor = next(p95 for name, _, p95, _, _ in results if name == FLOOR)
    lines = [
        "",
        f"## {engine}: {n:,} tenders (filled with their index in {filled:.0f} s)",
        "",
        f"Measured {began:%Y-%m-%d %H:%M} UTC; load average {load}.",
        "",
        "| query | median ms | p95 ms | max ms | CPU p95 ms (this process) | p95 / floor | goal (p95 <= 50 ms) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, median, p95, worst, cpu in results:
        met = "met" if p95 <= 50 else "not met"
        lines.append(f"| {name} | {median:.2f} | {p95:.2f} | {worst:.2f} | {cpu:.2f} | {p95 / floor:.1f} | {met} |")
    return lines


@contextmanager
def _database(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"
    else:
        admin = os.environ.get("TENDERPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        with scratch_database(admin, prefix="tpbench") as url:
            yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS-search.md")
    parser.add_argument(
        "--database", help="measure this database (kept; filled by this script first if it holds no tender)"
    )
    args = parser.parse_args()
    report = [
        "# Search benchmark (`bench/search_bench.py`)",
        "",
        f"`python bench/search_bench.py --tenders {args.tenders} --runs {args.runs} --write`, on the shared "
        "development machine (2 cores shared with other work: figures are noisy). Goal: search p95 <= 50 ms. "
        "The floor is the first page of the list with no filter, measured in the same run; the ratio is "
        "each p95 over the floor's p95.",
    ]
    for engine in ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]:
        with nullcontext(args.database) if args.database else _database(engine) as url:
            log = Log.open(url, origin="bench")
            try:
                start = time.perf_counter()
                if not args.database or query.count_tenders(log.engine) == 0:
                    fill(log, args.tenders)
                fill_parties(log)
                filled = time.perf_counter() - start
                print(f"\n{engine}: {args.tenders:,} tenders filled in {filled:.1f} s", flush=True)
                began = datetime.now(UTC)
                at_start = Path("/proc/loadavg").read_text().strip()
                results = measure(log, args.tenders, args.runs)
                load = f"{at_start} at the start, {Path('/proc/loadavg').read_text().strip()} at the end"
            finally:
                log.close()
        report += table(engine, args.tenders, filled, began, load, results)
        print("\n".join(report[-len(results) - 4 :]), flush=True)
    if args.write:
        Path(__file__).with_name("RESULTS-search.md").write_text("\n".join(report) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
