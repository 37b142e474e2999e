"""Benchmarks of the log: append, integration, proofs, storage. Prints its figures.

    python bench/log_bench.py                       # both engines, 1,000,000 entries
    python bench/log_bench.py --engine sqlite --entries 100000
    python bench/log_bench.py --quick               # a small run (20,000 entries)
    python bench/log_bench.py --write bench/RESULTS.md

PostgreSQL: a scratch database is created on the server at TENDERPROOF_TEST_PG_URL
(default: postgresql://postgres@127.0.0.1:5432/test) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

# Run as a script: make the repository (and its tests.pg helper) importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.log import Log
from ledger.store.db import normalize_url
from ledger.submission import Submission
from tests.pg import scratch_database
from tests.recording import append, append_many

ORIGIN = "bench.tenderproof/log"
PG_ADMIN = normalize_url(os.environ.get("TENDERPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
TREE_TABLES = ("log_entries", "tiles", "tree_heads", "log_state")
#: The integration queue: its space is bounded by the backlog and reused, so it is not a per-entry cost.
QUEUE_TABLE = "pending"
GOALS = {
    "append batched (events/s)": ">= 20,000 on SQLite",
    "integration (entries/s)": ">= 50,000",
    "inclusion proof median (ms)": "<= 2",
    "consistency proof median (ms)": "<= 2",
    "tree storage (bytes/entry)": "<= 100",
}


def payload(i: int, rng: random.Random) -> dict[str, Any]:
    """An OCDS-like award payload of ~400 bytes."""
    amount = rng.randrange(10_000, 50_000_000)
    return {
        "award": {
            "id": f"award-{i}",
            "title": f"Supply of materials lot {i % 97} for public works programme {i % 13}",
            "status": "active",
            "date": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z",
            "value": {"amount": amount, "currency": "EUR"},
            "suppliers": [{"id": f"ES-CIF-B{rng.randrange(10**7, 10**8)}", "name": f"Supplier {i % 541} S.L."}],
            "items": [
                {"id": "1", "description": "Asphalt mix AC16", "quantity": rng.randrange(1, 900), "unit": {"name": "t"}}
            ],
        }
    }


def submissions(start: int, count: int, tenders: int, rng: random.Random) -> list[Submission]:
    return [
        Submission(
            ocid=f"ocds-bench1-{(start + i) % tenders:06d}", type="award.issued", payload=payload(start + i, rng)
        )
        for i in range(count)
    ]


@contextmanager
def database(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        return
    with scratch_database(PG_ADMIN, prefix="tp_bench") as url:
        yield url


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def storage(log: Log) -> tuple[float, float, float]:
    """(tree bytes, events-table bytes, queue bytes), each including indexes."""
    with log.engine.connect() as conn:
        if log.engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all()
            sizes = dict(rows)
            indexes = conn.execute(text("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'")).all()
            owner = {name: table for name, table in indexes}
            per_table: dict[str, float] = {}
            for name, size in sizes.items():
                per_table[owner.get(name, name)] = per_table.get(owner.get(name, name), 0) + size
        else:
            per_table = {
                t: conn.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar_one()
                for t in (*TREE_TABLES, "events", QUEUE_TABLE)
            }
    return sum(per_table.get(t, 0) for t in TREE_TABLES), per_table.get("events", 0), per_table.get(QUEUE_TABLE, 0)


def run(engine: str, entries: int) -> dict[str, float]:
    rng = random.Random(2026)
    now = datetime.now(UTC)
    out: dict[str, float] = {}
    with database(engine) as url:
        log = Log.open(url, origin=ORIGIN)
        try:
            # One by one, one thread.
            items = submissions(0, 2_000, 1_000, rng)
            seconds = timed(lambda: [append(log, item, now=now) for item in items])
            out["append one by one, 1 thread (events/s)"] = len(items) / seconds
            # One by one, 8 threads.
            batches = [submissions(2_000 + k * 500, 500, 1_000, rng) for k in range(8)]

            def worker(batch: list[Submission]) -> None:
                for item in batch:
                    append(log, item, now=now)

            with ThreadPoolExecutor(8) as pool:
                seconds = timed(lambda: list(pool.map(worker, batches)))
            out["append one by one, 8 threads (events/s)"] = 4_000 / seconds
            # Batched, up to `entries` in all.
            done, spent, chunk = 6_000, 0.0, 1_000
            while done < entries:
                items = submissions(done, min(chunk, entries - done), 1_000, rng)
                spent += timed(lambda items=items: append_many(log, items, now=now))
                done += len(items)
                if done % 200_000 < chunk:
                    print(f"  [{engine}] appended {done:,}", file=sys.stderr, flush=True)
            out["append batched (events/s)"] = (entries - 6_000) / spent
            # Integration of everything pending.
            pending = log.reader.pending_count()
            seconds = timed(lambda: log.integrate_all(now=now))
            out["integration (entries/s)"] = pending / seconds
            size = log.reader.tree_head().size
            # Proofs.
            for kind, call in (
                ("inclusion", lambda: log.reader.inclusion_proof(rng.randrange(size), size)),
                ("consistency", lambda: log.reader.consistency_proof(rng.randrange(1, size), size)),
            ):
                latencies = [timed(call) * 1000 for _ in range(1_000)]
                out[f"{kind} proof median (ms)"] = statistics.median(latencies)
                out[f"{kind} proof p95 (ms)"] = percentile(latencies, 0.95)
            tree, events, queue = storage(log)
            out["tree storage (bytes/entry)"] = tree / size
            out["events table (bytes/entry, for context)"] = events / size
            out["emptied integration queue (MB, reusable space)"] = queue / 2**20
            out["entries"] = size
        finally:
            log.close()
    return out


def machine() -> str:
    pg = "n/a"
    try:
        admin = create_engine(PG_ADMIN)
        with admin.connect() as conn:
            pg = conn.execute(text("SHOW server_version")).scalar_one()
        admin.dispose()
    except Exception as exc:  # the machine line must not stop the run
        pg = f"unreachable ({type(exc).__name__})"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL {pg}"
    )


def table(results: dict[str, dict[str, float]]) -> str:
    engines = list(results)
    metrics = list(next(iter(results.values())))
    lines = ["| metric | " + " | ".join(engines) + " | goal |", "|---|" + "---|" * len(engines) + "---|"]
    for metric in metrics:
        cells = [
            f"{results[e][metric]:,.2f}" if results[e][metric] < 100 else f"{results[e][metric]:,.0f}" for e in engines
        ]
        lines.append(f"| {metric} | " + " | ".join(cells) + f" | {GOALS.get(metric, '')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmarks of the Tenderproof log.")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="a small run of 20,000 entries")
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    args = parser.parse_args()
    entries = 20_000 if args.quick else args.entries
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results = {engine: run(engine, entries) for engine in engines}
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = f"Log benchmarks, {stamp}, {entries:,} entries\nMachine: {machine()}\n\n{table(results)}\n"
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
