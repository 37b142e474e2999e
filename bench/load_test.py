"""Load and fault test of a scaled-out deployment, at full size. Prints its figures.

    python bench/load_test.py                          # 10 minutes, with faults (what ``make load-test`` runs)
    python bench/load_test.py --duration 120 --no-faults
    python bench/load_test.py --write bench/RESULTS-load.md

4 API workers (``tenderproof serve --workers 4 --no-anchoring``) and 2 anchoring processes
(``tenderproof anchor --watch``) on a private PostgreSQL cluster, a Hardhat JSON-RPC node behind a
TCP proxy, concurrent officers (one API key each) writing to overlapping tenders and readers, all
on 127.0.0.1; with faults: kill -9 of API workers and of the acting anchoring process, the RPC
endpoint cut off for ``--rpc-outage`` seconds, PostgreSQL restarted. Then every check of
tests/load/harness.py. Exit 0 when every check held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from log_bench import machine

from tests.load.harness import Config, run


def table(figures: dict[str, object]) -> str:
    rows = [
        f"| {name} | {value} |"
        for name, value in figures.items()
        if name not in ("config", "faults", "problems", "retryable answers")
    ]
    retryable = figures["retryable answers"]
    assert isinstance(retryable, dict)
    rows += [f"| retryable: {kind} | {count} |" for kind, count in retryable.items()]
    return "\n".join(["| figure | value |", "|---|---:|", *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="Seconds of load (default: 600).")
    parser.add_argument("--officers", type=int, default=16, help="Concurrent officers, one API key each.")
    parser.add_argument("--readers", type=int, default=16, help="Concurrent public readers.")
    parser.add_argument("--tenders", type=int, default=40, help="Tenders the officers share.")
    parser.add_argument("--rpc-outage", type=float, default=60.0, help="Seconds the chain's RPC is cut off.")
    parser.add_argument("--no-faults", action="store_true", help="Load only.")
    parser.add_argument("--write", type=Path, help="Write the results (markdown) to this file.")
    args = parser.parse_args()
    config = Config(
        duration=args.duration,
        officers=args.officers,
        readers=args.readers,
        tenders=args.tenders,
        rpc_outage=args.rpc_outage,
        faults=not args.no_faults,
    )
    with tempfile.TemporaryDirectory(prefix="tp-load-") as directory:
        figures = run(config, Path(directory))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    faults = "\n".join(f"- at {moment:.0f} s: {what}" for moment, what in figures["faults"]) or "- none"
    problems = "\n".join(f"- {p}" for p in figures["problems"]) or "- none: every check held"
    report = (
        f"# Load and fault test\n\n{stamp}, {machine()}.\n\n"
        f"Configuration: `{json.dumps(figures['config'])}`\n\n{table(figures)}\n\n"
        f"Faults injected:\n{faults}\n\nProblems:\n{problems}\n"
    )
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0 if not figures["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
