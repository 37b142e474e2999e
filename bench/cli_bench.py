"""How long the command line takes to answer ``--help``: ``tenderproof --help``, ``tenderproof verify
--help`` and the standalone verifier's ``tenderproof-verify --help`` (installed on its own in a
fresh virtual environment made here), each against the floor measured in the same run: the same
interpreter starting and exiting (``python -c pass``), and starting with ``click`` imported (what
any click command costs).

    python bench/cli_bench.py                          # prints the figures
    python bench/cli_bench.py --write bench/RESULTS-cli.md

Goal: each ≤ 0.5 s on this machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.5


def _seconds(command: list[str], runs: int) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of ``command`` (after one unmeasured warm-up run)."""
    subprocess.run(command, capture_output=True, check=True)
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        out.append(time.perf_counter() - started)
    return sorted(out)


def main() -> int:
    parser = argparse.ArgumentParser(description="Start-up time of the Tenderproof command line.")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write", type=Path, help="Also write the results (Markdown) to this file.")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        alone = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(alone)
        subprocess.run(
            [str(alone / "bin" / "python"), "-m", "pip", "install", "-q", str(ROOT / "verifier")], check=True
        )
        floor = _seconds([sys.executable, "-c", "pass"], args.runs)
        floor_click = _seconds([sys.executable, "-c", "import click"], args.runs)
        rows = [
            ("`tenderproof --help`", _seconds([str(bin_dir / "tenderproof"), "--help"], args.runs)),
            ("`tenderproof verify --help`", _seconds([str(bin_dir / "tenderproof"), "verify", "--help"], args.runs)),
            (
                "`tenderproof-verify --help` (installed alone)",
                _seconds([str(alone / "bin" / "tenderproof-verify"), "--help"], args.runs),
            ),
        ]
    base, base_click = statistics.median(floor), statistics.median(floor_click)
    lines = [
        "# Command line start-up",
        "",
        f"`python bench/cli_bench.py --runs {args.runs}` on {platform.machine()}, Python {platform.python_version()},"
        f" {datetime.now(UTC):%Y-%m-%d}; the machine is shared, so each figure stands beside the floor measured in"
        f" the same run. Floor: `python -c pass` **{base * 1000:.0f} ms**; `python -c 'import click'`"
        f" **{base_click * 1000:.0f} ms**. Goal: each ≤ {GOAL} s.",
        "",
        "| command | median (ms) | p90 (ms) | ÷ `python -c pass` | ÷ `import click` | goal ≤ 0.5 s |",
        "|---|---|---|---|---|---|",
    ]
    for name, times in rows:
        median = statistics.median(times)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        verdict = "met" if median <= GOAL else "missed"
        lines.append(
            f"| {name} | {median * 1000:.0f} | {p90 * 1000:.0f} | {median / base:.1f} | {median / base_click:.1f} | {verdict} |"
        )
    out = "\n".join(lines) + "\n"
    print(out)
    if args.write:
        args.write.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
