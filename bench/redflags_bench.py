"""Red flags: every indicator over many tenders, and one tender's flags.

    python bench/redflags_bench.py                      # 1,000,000 tenders
    python bench/redflags_bench.py --tenders 200000 --write bench/RESULTS-redflags.md

Tenders are generated compiled releases (streamed, never all in memory): an open or selective
tender with a period of 3-40 days, 1-5 bids (some disqualified, some late, some at equal
prices), one active award to the lowest valid bid. Measured in this process, on one core:

- per tender: ``redflags.evaluate`` (the stored catalogue with Cardinal's R003, R018, R028,
  R030, R035, R036, R044) over every tender;
- over the data set: Cardinal's R024/R058 (fences from the differences), R025 and R038 (fences
  from the ratios), R044 per tenderer, R048 (fence from the varieties), R055 (the smallest open
  tender), each one pass over every tender;
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


def timed(step: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = step()
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenders", type=int, default=1_000_000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    n = args.tenders
    floor, _ = timed(lambda: sum(len(c["bids"]["details"]) for _, c in tenders(n)))
    per_tender, raised = timed(lambda: sum(len(redflags.evaluate(c)) for _, c in tenders(n)))
    pair_s, pair = timed(lambda: cardinal.r024_r058(tenders(n)))
    r025_s, r025 = timed(lambda: cardinal.r025(tenders(n)))
    r038_s, r038 = timed(lambda: cardinal.r038(tenders(n)))
    r044_s, r044 = timed(lambda: cardinal.r044_tenderers(tenders(n)))
    r048_s, r048 = timed(lambda: cardinal.r048(tenders(n)))
    r055_s, r055 = timed(lambda: cardinal.r055(tenders(n)))
    passes = 7
    total = per_tender + pair_s + r025_s + r038_s + r044_s + r048_s + r055_s
    sample = [c for _, c in tenders(2000, seed=11)]
    one = []
    for compiled in sample:
        started = time.perf_counter()
        redflags.evaluate(compiled)
        one.append((time.perf_counter() - started) * 1000)
    lines = [
        f"tenders: {n:,}",
        f"floor (generate and read each tender's bids): {floor:.1f} s",
        f"per-tender indicators (redflags.evaluate, 6 Cardinal + 4 others): {per_tender:.1f} s ({raised:,} flags)",
        f"R024/R058: {pair_s:.1f} s ({len(pair['R024']):,} / {len(pair['R058']):,} flagged)",
        f"R025: {r025_s:.1f} s ({len(r025):,} tenderers)",
        f"R038: {r038_s:.1f} s ({sum(len(v) for v in r038.values()):,} organisations)",
        f"R044 per tenderer: {r044_s:.1f} s ({len(r044):,} tenderers)",
        f"R048: {r048_s:.1f} s ({len(r048):,} tenderers)",
        f"R055: {r055_s:.1f} s ({sum(len(v) for v in r055.values()):,} organisations)",
        f"all indicators: {total:.1f} s = {total / floor:.1f}x the floor (each pass includes generating: "
        f"{total - passes * floor:.1f} s without it); goal <= {GOAL_ALL_S:.0f} s at 1,000,000",
        f"one tender's flags: median {statistics.median(one):.3f} ms, worst {max(one):.3f} ms; goal <= {GOAL_ONE_MS:.0f} ms",
    ]
    print("\n".join(lines))
    if args.write:
        args.write.write_text("\n".join(f"- {line}" for line in lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
