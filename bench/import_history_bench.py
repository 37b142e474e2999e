"""OCDS import: the cost per release does not grow with how many releases a tender already has.

    python bench/import_history_bench.py                          # 20,000 and 60,000 releases
    python bench/import_history_bench.py --sizes 2000 6000 --write bench/RESULTS-import-history.md

Issue 16's case: one ocid with tens of thousands of releases (a framework agreement's call-offs,
a long contract's payments). Each size is imported into a fresh SQLite database in this process
(``importer.import_files``, batches of 2,000), all releases of ONE ocid, each dated after the
one before (the import merges them into the tender's stored compiled release). A reference, in
the same run: the same number of releases spread over one ocid per release (no history at all;
slower per release: each release is a tender of its own to project).
The figures: microseconds per release at each size, and the ratio of the larger size's to the
smaller's (1.0 = linear; a quadratic import would be ~3x at 20,000 vs 60,000).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.log import Log  # noqa: E402
from ledger.procurement import importer  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def package(count: int, *, one_tender: bool) -> bytes:
    releases = []
    for i in range(count):
        releases.append(
            {
                "ocid": "ocds-bench0-long" if one_tender else f"ocds-bench0-{i}",
                "id": f"r{i}",
                "date": (T0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "tag": ["implementation"],
                "initiationType": "tender",
                "contracts": [
                    {
                        "id": "c1",
                        "awardID": "a1",
                        "value": {"amount": 1000 + i, "currency": "EUR"},
                    }
                ],
            }
        )
    return json.dumps({"version": "1.1", "releases": releases}).encode()


def run(count: int, *, one_tender: bool) -> float:
    """Microseconds per release importing ``count`` releases into a fresh SQLite database."""
    data = package(count, one_tender=one_tender)
    with tempfile.TemporaryDirectory() as directory:
        log = Log.open(f"sqlite:///{Path(directory) / 'bench.sqlite3'}", origin="bench/history")
        try:
            started = time.perf_counter()
            report = importer.import_files(log, [("bench.json", io.BytesIO(data))], now=T0)
            elapsed = time.perf_counter() - started
        finally:
            log.close()
    assert report.imported == count, report.to_json()
    return elapsed * 1e6 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[20_000, 60_000])
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    small, large = args.sizes
    rows = []
    for size in (small, large):
        history = run(size, one_tender=True)
        floor = run(size, one_tender=False)
        rows.append((size, history, floor))
        print(
            f"{size:>7,} releases of one ocid: {history:7.1f} us/release; reference (one ocid each): {floor:7.1f} us/release"
        )
    growth = rows[1][1] / rows[0][1]
    print(f"per-release cost at {large:,} / at {small:,}: {growth:.2f} (1.00 = linear)")
    if args.write:
        lines = [
            "| releases of one ocid | µs per release | reference: one ocid per release (µs) | ratio to reference |",
            "|---:|---:|---:|---:|",
            *[f"| {s:,} | {h:.1f} | {f:.1f} | {h / f:.2f} |" for s, h, f in rows],
            "",
            f"Per-release cost at {large:,} divided by at {small:,}: **{growth:.2f}** (1.00 = linear).",
        ]
        args.write.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
