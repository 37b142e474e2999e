"""Count + facets and the organisation pages on a filled search database, read only: the rows of
``search_bench.py`` that ``query.facets`` and ``profiles.organisation_profile`` answer, with the
floor (the first page of the list, no filter) measured in the same run.

    python bench/facets_bench.py sqlite:////path/bench.sqlite3 --runs 10
    python bench/facets_bench.py postgresql+psycopg://postgres@127.0.0.1:5432/search_1m
    python bench/facets_bench.py URL --code /work/main     # another checkout's code, same database

The database is one ``search_bench.py --database`` filled; it is opened read only (SQLite
``mode=ro``, PostgreSQL ``default_transaction_read_only``), so that a shared fixture is never
written. Prints one line per query: median and p95 wall ms, p95 CPU ms of this process, p95 over
the floor's p95, with the load average before and after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--code", default=str(Path(__file__).resolve().parent.parent), help="checkout to import")
    args = parser.parse_args()
    sys.path.insert(0, args.code)
    from sqlalchemy import create_engine

    from ledger.procurement import profiles, query

    if args.url.startswith("sqlite:///"):
        engine = create_engine(f"sqlite:///file:{args.url.removeprefix('sqlite:///')}?mode=ro&uri=true")
    else:
        engine = create_engine(args.url, connect_args={"options": "-c default_transaction_read_only=on"})
    cases: list[tuple[str, Callable[[], object]]] = [
        ("floor: first page, no filter (50)", lambda: query.search_tenders(engine)),
        ("count + facets, q='renovacion fuel 77'", lambda: query.facets(engine, q="renovacion fuel 77")),
        ("count + facets, buyer=BUYER-42", lambda: query.facets(engine, buyer="BUYER-42")),
        ("count + facets, q='hospital' (broad: newest 2,000 counted)", lambda: query.facets(engine, q="hospital")),
        ("count + facets, no filter", lambda: query.facets(engine)),
        ("count + facets, status=cancelled", lambda: query.facets(engine, status="cancelled")),
        ("supplier page (500 wins)", lambda: profiles.organisation_profile(engine, "XX-BENCH/S-42")),
        ("buyer page (2,000 tenders)", lambda: profiles.organisation_profile(engine, "BUYER-42")),
    ]
    print(f"{engine.dialect.name}, code {args.code}, {time.strftime('%H:%M:%S', time.gmtime())} UTC")
    print(f"load {Path('/proc/loadavg').read_text().strip()}", flush=True)
    floor = 0.0
    for name, fn in cases:
        fn()
        wall, cpu = [], []
        for _ in range(args.runs):
            start, began = time.perf_counter(), time.process_time()
            fn()
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - began) * 1000)
        floor = floor or _p95(wall)
        print(
            f"| {name} | {statistics.median(wall):.2f} / {_p95(wall):.2f} | {_p95(cpu):.2f} | {_p95(wall) / floor:.1f} |",
            flush=True,
        )
    print(f"load {Path('/proc/loadavg').read_text().strip()}")
    engine.dispose()


if __name__ == "__main__":
    main()
