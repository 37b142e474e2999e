"""Red flags: every indicator over many tenders, and one tender's flags.

    python bench/redflags_bench.py                      # 1,000,000 tenders
    python bench/redflags_bench.py --tenders 200000 --write bench/RESULTS-redflags.md

Tenders are generated compiled releases (streamed, never all in memory): an open or selective
tender with a period of 3-40 days, 1-5 bids (some disqualified, some late, some at equal
prices), one active award to the lowest valid bid. Measured in this process, on one core:

- every indicator in ONE streaming pass over the tenders, as the ledger's refresh does: per
  tender ``redflags.evaluate`` (the stored catalogue with Cardinal's R003, R018, R028, R030,
  R035, R036, R044), and over the data set ``cardinal.ledger_indicators``: R024/R058 (fences from
  the differences), R025 and R038 (fences from the ratios), R044 per tenderer, R048 (fence from
  the varieties), R055 (the smallest open tender), each fed from the same read;
- one tender's flags: the median and worst of ``redflags.evaluate`` on single tenders.

The floor, in the same run: generating the tenders and reading each one's bids (what any
indicator pass must at least do).

In a ledger (issue 18's goal is over the ledger's own stored tenders):

    python bench/redflags_bench.py --build /tmp/rf.sqlite3 --tenders 1000000   # once
    python bench/redflags_bench.py --ledger-url sqlite:////tmp/rf.sqlite3 --workers 1 2

``--build`` writes the same generated tenders straight into a fresh ledger's projection tables
(``tenders``, ``tender_index``, ``ocds_compiled``: as an import leaves them, without the events).
``--ledger-url`` measures, for each number of worker processes: the floor (reading every stored
compiled release and parsing it, as the refresh does, with the same partitions and processes, no
indicator work), every indicator in one pass (``redflags.ledger_pass(own=True)``: each tender's
own flags and the ledger-wide indicators, then their fences and flags), and
``redflags.refresh_ledger_flags`` (the ledger-wide ones, written to ``ledger_flags``). CPU time
is this process's and its workers' (``getrusage``: self + children); the peak resident memory
is this process's and its largest worker's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.procurement import cardinal, redflags  # noqa: E402

GOAL_ALL_S = 60.0  # all indicators over 1,000,000 tenders
GOAL_ONE_MS = 10.0  # one tender's flags


def tenders(count: int, seed: int = 7) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    for i in range(count):
        days = rng.randint(3, 40)
        bids = []
        for b in range(rng.randint(1, 5)):
            status = "disqualified" if rng.random() < 0.2 else "valid"
            date = f"2026-03-{min(28, 1 + days + (1 if rng.random() < 0.02 else -1)):02d}T10:00:00Z"
            bids.append(
                {
                    "id": f"b{b}",
                    "status": status,
                    "date": date,
                    "value": {"amount": float(rng.choice([1000, 1000, 1050, 1100, 1500])) + b, "currency": "EUR"},
                    "tenderers": [{"id": f"T{rng.randint(1, 5000)}", "name": f"Tenderer {b}"}],
                }
            )
        valid = [b for b in bids if b["status"] == "valid"] or bids
        winner = min(valid, key=lambda b: b["value"]["amount"])
        yield (
            f"ocds-bench0-{i}",
            {
                "ocid": f"ocds-bench0-{i}",
                "buyer": {"id": f"B{i % 2000}", "name": f"Buyer {i % 2000}"},
                "tender": {
                    "procurementMethod": rng.choice(["open", "selective", "direct"]),
                    "numberOfTenderers": len(bids),
                    "value": {"amount": 1200.0, "currency": "EUR"},
                    "tenderPeriod": {
                        "startDate": "2026-03-01T00:00:00Z",
                        "endDate": f"2026-03-{min(28, 1 + days):02d}T00:00:00Z",
                    },
                },
                "bids": {"details": bids},
                "parties": [
                    {
                        "id": t["id"],
                        "name": t["name"],
                        "roles": ["tenderer"],
                        "address": {"streetAddress": f"Street {rng.randint(1, 20000)}", "countryName": "Atlantis"},
                    }
                    for b in bids
                    for t in b["tenderers"]
                ],
                "awards": [
                    {
                        "id": "a1",
                        "status": "active",
                        "value": winner["value"],
                        "suppliers": winner["tenderers"],
                        "date": "2026-04-01T00:00:00Z",
                        "items": [
                            {"id": "1", "classification": {"scheme": "UNSPSC", "id": f"{rng.randint(10, 95)}101500"}}
                        ],
                    }
                ],
            },
        )


def timed(step: Any) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds of ``step()`` (the CPU time is this process's: on a shared
    machine it moves less than the wall clock), and its result."""
    started, cpu = time.perf_counter(), time.process_time()
    out = step()
    return time.perf_counter() - started, time.process_time() - cpu, out


def all_indicators(n: int) -> tuple[int, Any, Any]:
    """Every indicator over ``n`` tenders in ONE streaming pass: each tender's own flags
    (``redflags.evaluate``) and the ledger-wide ones (``cardinal.ledger_indicators``) fed from the
    same read, as the ledger's refresh does."""
    raised = 0

    def stream() -> Iterator[tuple[str, dict[str, Any]]]:
        nonlocal raised
        for ocid, compiled in tenders(n):
            raised += len(redflags.evaluate(compiled))
            yield ocid, compiled

    by_process, by_organisation = cardinal.ledger_indicators(stream())
    return raised, by_process, by_organisation


def cpu_seconds() -> float:
    """CPU seconds of this process and of its reaped children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured(step: Any) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds (this process and its workers) of ``step()``, and its result."""
    started, cpu = time.perf_counter(), cpu_seconds()
    out = step()
    return time.perf_counter() - started, cpu_seconds() - cpu, out


def build(path: Path, count: int) -> None:
    """A fresh ledger at ``path`` holding ``count`` generated tenders in its projection tables."""
    from ledger.log import Log
    from ledger.store.schema import ocds_compiled, tender_index
    from ledger.store.schema import tenders as tenders_table

    path.unlink(missing_ok=True)
    log = Log.open(f"sqlite:///{path}", origin="bench.test/log")
    at = datetime(2026, 12, 6, tzinfo=UTC)
    rows: dict[str, list[dict[str, Any]]] = {"tenders": [], "index": [], "compiled": []}

    def flush() -> None:
        with log.engine.begin() as conn:
            conn.execute(tenders_table.insert(), rows["tenders"])
            conn.execute(tender_index.insert(), rows["index"])
            conn.execute(ocds_compiled.insert(), rows["compiled"])
        for batch in rows.values():
            batch.clear()

    started = time.perf_counter()
    for ocid, compiled in tenders(count):
        rows["tenders"].append({"ocid": ocid, "created_at": at, "updated_at": at, "event_count": 1})
        rows["index"].append(
            {
                "ocid": ocid,
                "buyer_id": compiled["buyer"]["id"],
                "status": "active",
                "method": compiled["tender"]["procurementMethod"],
                "suppliers": "",
                "search_text": "",
                "listed_at": at,
                "updated_at": at,
                "state": "{}",  # an imported tender's state is read only without a compiled release
            }
        )
        rows["compiled"].append({"ocid": ocid, "compiled": json.dumps(compiled), "last_date": "", "summary": "{}"})
        if len(rows["tenders"]) == 5000:
            flush()
    if rows["tenders"]:
        flush()
    log.close()
    print(f"built {path}: {count:,} tenders in {time.perf_counter() - started:.0f} s")


def _read_partition(url: str, bounds: redflags.Bounds) -> int:
    """The floor's work in one partition: read and parse every stored compiled release."""
    from ledger.store.db import open_engine

    engine = open_engine(url, pool_size=1)
    try:
        return sum(1 for _ in redflags._all_compiled(engine, after=bounds[0], through=bounds[1]))
    finally:
        engine.dispose()


def read_only(engine: Any, workers: int) -> int:
    """Read and parse every stored compiled release with the refresh's partitions and processes."""
    url = engine.url.render_as_string(hide_password=False)
    ranges = redflags._partitions(engine, workers)
    if len(ranges) == 1:
        return _read_partition(url, ranges[0])
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        return sum(pool.map(_read_partition, [url] * len(ranges), ranges))


def percentile(values: list[float], p: int) -> float:
    """The ``p``-th percentile of ``values`` (inclusive method)."""
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def in_ledger(url: str, workers: list[int], *, refresh: bool = True, one_only: bool = False) -> list[str]:
    """The floor, every indicator in one pass, and the refresh, per number of worker processes."""
    from sqlalchemy import func, select

    from ledger.store.db import open_engine
    from ledger.store.schema import tender_index

    engine = open_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(tender_index)).scalar_one()
    settings = redflags.CARDINAL_SETTINGS
    lines = [f"ledger: {url} ({engine.dialect.name}), {count:,} tenders; load before: {loadavg()}"]
    ones, ones_cpu = [], []
    with engine.connect() as conn:
        ocids = [f"ocds-bench0-{i}" for i in random.Random(11).sample(range(count), min(count, 2000))]
        for ocid in ocids:  # one tender's flags, from the ledger: its stored compiled release read and evaluated
            started, cpu = time.perf_counter(), time.process_time()
            compiled = redflags.tender_compiled(conn, ocid)
            assert compiled is not None
            redflags.evaluate(compiled)
            ones.append((time.perf_counter() - started) * 1000)
            ones_cpu.append((time.process_time() - cpu) * 1000)
    lines.append(
        f"one tender's flags (its compiled release read from the ledger and evaluated, {len(ones):,} tenders): "
        f"wall median {statistics.median(ones):.3f} ms, p95 {percentile(ones, 95):.3f} ms, worst {max(ones):.3f} ms; "
        f"CPU median {statistics.median(ones_cpu):.3f} ms, p95 {percentile(ones_cpu, 95):.3f} ms, "
        f"worst {max(ones_cpu):.3f} ms; goal <= {GOAL_ONE_MS:.0f} ms; load {loadavg()}"
    )
    print(lines[-1], flush=True)
    if one_only:
        engine.dispose()
        return lines
    for n in workers:
        floor, floor_cpu, read = measured(lambda n=n: read_only(engine, n))
        assert read == count
        lines.append(
            f"workers {n}: floor (read and parse every stored compiled release): {floor:.1f} s wall, "
            f"{floor_cpu:.1f} s CPU; load {loadavg()}"
        )

        def every(n: int = n) -> tuple[Any, Any]:
            indicators, raised = redflags.ledger_pass(engine, settings, workers=n, own=True)
            return indicators.result(), raised

        wall, cpu, ((by_process, by_organisation), raised) = measured(every)
        flagged = {role: sum(len(codes) for codes in found.values()) for role, found in by_organisation.items()}
        lines.append(
            f"workers {n}: every indicator in one pass: {wall:.1f} s wall ({wall / floor:.2f}x the floor), "
            f"{cpu:.1f} s CPU ({cpu / floor_cpu:.2f}x the floor); goal <= {GOAL_ALL_S:.0f} s at 1,000,000; "
            f"own flags {sum(raised.values()):,}, R024/R058 {len(by_process):,} tenders, organisation flags "
            f"{flagged}; {peak_rss()}; load {loadavg()}"
        )
        if not refresh:
            print("\n".join(lines[-2:]), flush=True)
            continue
        wall, cpu, counts = measured(
            lambda n=n: redflags.refresh_ledger_flags(engine, now=datetime.now(UTC), workers=n)
        )
        lines.append(
            f"workers {n}: refresh_ledger_flags (ledger-wide, written): {wall:.1f} s wall, {cpu:.1f} s CPU; "
            f"{counts}; load {loadavg()}"
        )
        print("\n".join(lines[-3:]), flush=True)
    engine.dispose()
    return lines


def peak_rss() -> str:
    """The peak resident memory of this process and of its largest reaped child (a worker)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    return f"peak RSS {own} MB (this process), {child} MB (largest worker)"


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenders", type=int, default=1_000_000)
    parser.add_argument("--write", type=Path)
    parser.add_argument("--ledger-url", help="instead: measure the indicators over this existing ledger")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="with --ledger-url")
    parser.add_argument("--no-refresh", action="store_true", help="with --ledger-url: not refresh_ledger_flags")
    parser.add_argument("--one-only", action="store_true", help="with --ledger-url: only one tender's flags")
    parser.add_argument("--build", type=Path, help="instead: build a SQLite ledger of --tenders generated tenders")
    args = parser.parse_args()
    if args.build:
        build(args.build, args.tenders)
        return
    if args.ledger_url:
        lines = in_ledger(args.ledger_url, args.workers, refresh=not args.no_refresh, one_only=args.one_only)
        if args.write:
            args.write.write_text("\n".join(f"- {line}" for line in lines) + "\n", encoding="utf-8")
        return
    n = args.tenders
    floor, floor_cpu, _ = timed(lambda: sum(len(c["bids"]["details"]) for _, c in tenders(n)))
    total, total_cpu, (raised, by_process, by_organisation) = timed(lambda: all_indicators(n))
    process_counts: dict[str, int] = {}
    for codes in by_process.values():
        for code in codes:
            process_counts[code] = process_counts.get(code, 0) + 1
    organisation_counts = {
        role: {
            code: sum(code in codes for codes in found.values()) for code in ("R025", "R038", "R044", "R048", "R055")
        }
        for role, found in by_organisation.items()
    }
    sample = [c for _, c in tenders(2000, seed=11)]
    one = []
    for compiled in sample:
        started = time.perf_counter()
        redflags.evaluate(compiled)
        one.append((time.perf_counter() - started) * 1000)
    lines = [
        f"tenders: {n:,}",
        f"floor (generate and read each tender's bids, one pass): {floor:.1f} s wall, {floor_cpu:.1f} s CPU",
        f"all indicators in one pass (generating included): {total:.1f} s wall, {total_cpu:.1f} s CPU "
        f"= {total_cpu / floor_cpu:.1f}x the floor in CPU; without generating: {total - floor:.1f} s wall, "
        f"{total_cpu - floor_cpu:.1f} s CPU; goal <= {GOAL_ALL_S:.0f} s at 1,000,000",
        f"per-tender flags raised (redflags.evaluate): {raised:,}",
        f"R024/R058 (per process): {process_counts}",
        f"per organisation: {organisation_counts}",
        f"one tender's flags: median {statistics.median(one):.3f} ms, worst {max(one):.3f} ms; goal <= {GOAL_ONE_MS:.0f} ms",
    ]
    print("\n".join(lines))
    if args.write:
        args.write.write_text("\n".join(f"- {line}" for line in lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
