"""Benchmark of the operator's audit (ledger.audit): how fast a whole log is recomputed. Prints its figures.

    python bench/audit_bench.py                                  # SQLite, 1,000,000 entries
    python bench/audit_bench.py --engine both --entries 200000
    python bench/audit_bench.py --database sqlite:///big.sqlite3  # build once, reuse on later runs
    python bench/audit_bench.py --write bench/RESULTS-audit.md

Without ``--database`` the log is built in a scratch database (a temporary SQLite file, or a
database on the server at TENDERPROOF_TEST_PG_URL) and dropped afterwards. With it, the log
there is topped up to ``--entries`` if smaller and kept, so the next run only audits.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

# Run as a script: make the repository and the log benchmark's builders importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from log_bench import ORIGIN, database, machine, submissions

from audit.log import AuditReport, audit
from ledger.log import Log
from ledger.store.db import normalize_url
from tests.recording import append_many

TENDERS = 1_000
CHUNK = 1_000


def build(log: Log, entries: int) -> float:
    """Top the log up to ``entries`` integrated entries; return the seconds it took."""
    rng = random.Random(2026)
    now = datetime.now(UTC)
    start = time.perf_counter()
    done = log.reader.tree_head().size + log.reader.pending_count()
    while done < entries:
        items = submissions(done, min(CHUNK, entries - done), TENDERS, rng)
        append_many(log, items, now=now)
        done += len(items)
        if done % 100_000 < CHUNK:
            print(f"  appended {done:,}", file=sys.stderr, flush=True)
    log.integrate_all(now=now)
    return time.perf_counter() - start


def run(url: str, entries: int, batch_size: int) -> tuple[dict[str, float], AuditReport]:
    log = Log.open(url, origin=ORIGIN)
    try:
        built = build(log, entries)
        size = log.reader.tree_head().size
        print(f"  log of {size:,} entries ready ({built:.0f} s); auditing", file=sys.stderr, flush=True)
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] >= 10:
                last[0] = time.perf_counter()
                print(f"  audited {done:,} / {total:,}", file=sys.stderr, flush=True)

        start = time.perf_counter()
        report = audit(log.engine, origin=ORIGIN, batch_size=batch_size, progress=progress)
        seconds = time.perf_counter() - start
    finally:
        log.close()
    figures = {
        "entries": float(report.entries_checked),
        "tree sizes checked": float(report.sizes_checked),
        "audit (s)": seconds,
        "audit (entries/s)": report.entries_checked / seconds if seconds else 0.0,
        "findings": float(len(report.findings) + report.findings_dropped),
    }
    return figures, report


def table(results: dict[str, dict[str, float]]) -> str:
    engines = list(results)
    lines = ["| metric | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
    for metric in next(iter(results.values())):
        cells = [
            f"{value:,.0f}" if value >= 100 or value.is_integer() else f"{value:,.1f}"
            for value in (results[e][metric] for e in engines)
        ]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark of the Tenderproof audit.")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000, help="entries per query (default 10,000)")
    parser.add_argument("--database", help="use (and keep) the log in this database URL instead of a scratch one")
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    args = parser.parse_args()
    if args.database:
        url = normalize_url(args.database)
        targets: dict[str, AbstractContextManager[str]] = {url.split(":", 1)[0].split("+")[0]: nullcontext(url)}
    else:
        engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
        targets = {engine: database(engine) for engine in engines}
    results: dict[str, dict[str, float]] = {}
    for engine, place in targets.items():
        print(f"[{engine}]", file=sys.stderr, flush=True)
        with place as url:
            results[engine], report = run(url, args.entries, args.batch_size)
        if not report.ok:
            print(f"  the audit found {len(report.findings)} problems, first: {report.findings[0]}", file=sys.stderr)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = (
        f"Audit benchmark, {stamp}, {args.entries:,} entries, {args.batch_size:,} per query\n"
        f"Machine: {machine()}\n\n{table(results)}\n"
    )
    print(out)
    if args.write:
        args.write.write_text(out)
    return 0 if all(r["findings"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
