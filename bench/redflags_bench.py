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
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Iterator
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


def refresh(url: str) -> None:
    """The ledger's own refresh of the ledger-wide flags (reads every stored compiled release)."""
    from sqlalchemy import create_engine, func, select

    from ledger.store.schema import tender_index

    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(tender_index)).scalar_one()
    wall, cpu, counts = timed(lambda: redflags.refresh_ledger_flags(engine, now=datetime.now(UTC)))
    print(f"refresh_ledger_flags over {count:,} tenders: {wall:.2f} s wall, {cpu:.2f} s CPU; flagged {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenders", type=int, default=1_000_000)
    parser.add_argument("--write", type=Path)
    parser.add_argument(
        "--ledger-url", help="instead: time refresh_ledger_flags (one streaming pass) on this existing ledger"
    )
    args = parser.parse_args()
    if args.ledger_url:
        refresh(args.ledger_url)
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
