"""Envelope v2 on the import's hot path: what the salted commitment costs per release, beside v1's bare
SHA-256 and the floor every import pays anyway (RFC 8785 + SHA-256 of the release), in one run.

    python bench/commitment_bench.py [--releases 5000] [--write bench/RESULTS-commitment.md]

CPU time of this process (``time.process_time``, so the other work on a shared machine counts
less than in wall time) and wall time, best of ``--rounds`` runs of each step over the same
releases: the demo's generated OCDS releases (no personal data under the default rules: F empty),
and the same releases with a sole trader as supplier (F = the name, address and contact point the
default rules mark: four fields).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo import ocds as demo_ocds  # noqa: E402
from ledger.core import commitment  # noqa: E402
from ledger.core.canonical import canonical_json_bytes  # noqa: E402
from ledger.procurement import privacy  # noqa: E402

SOLE_TRADER = {
    "id": "ES-B12345678",
    "name": "Ana Pérez Gómez",
    "roles": ["supplier"],
    "details": {"scale": "selfEmployed"},
    "address": {"streetAddress": "Calle Mayor 1", "locality": "Ejemplo"},
    "contactPoint": {"name": "Ana Pérez Gómez", "email": "ana@example.org"},
}


def _with_person(release: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(release)
    out.setdefault("parties", []).append(SOLE_TRADER)
    return out


def _best(step: Callable[[], object], rounds: int, count: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per release, the best of ``rounds``."""
    cpu, wall = [], []
    for _ in range(rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu) * 1e6 / count, min(wall) * 1e6 / count


def measure(releases: list[dict[str, Any]], rounds: int) -> list[tuple[str, float, float]]:
    data = [canonical_json_bytes(r) for r in releases]
    kinds = [(r.get("tag") or ["planning"])[0] for r in releases]
    places = [privacy.places(k, r) for k, r in zip(kinds, releases, strict=True)]
    fields = [privacy.committed_fields(p) for p in places]
    n = len(releases)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("floor: RFC 8785 + SHA-256 of the release", lambda: [hashlib.sha256(canonical_json_bytes(r)).digest() for r in releases]),
        ("v1 binding: SHA-256 of the bytes", lambda: [hashlib.sha256(d).hexdigest() for d in data]),
        (
            "v2 binding: new_commitment (seed, HMAC salts, digests, skeleton)",
            lambda: [commitment.new_commitment(r, f, payload_bytes=d) for r, f, d in zip(releases, fields, data, strict=True)],
        ),
        ("F: committed_fields of the marks (marks already made for the report)", lambda: [privacy.committed_fields(p) for p in places]),
        ("v2 binding and its disclosure's RFC 8785 bytes (as the sequencer)", lambda: [canonical_json_bytes(commitment.new_commitment(r, f, payload_bytes=d)[1]) for r, f, d in zip(releases, fields, data, strict=True)]),
    ]  # fmt: skip
    return [(name, *_best(step, rounds, n)) for name, step in steps], sum(bool(f) for f in fields) / n  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    base = list(demo_ocds.releases(args.releases // 5 + 1, seed=7))[: args.releases]
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    say("# Envelope v2 commitment on the import path (`bench/commitment_bench.py`)")
    say()
    say(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"load average at start {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; {len(base):,} demo releases, "
        f"best of {args.rounds} rounds."
    )
    for title, releases in (
        ("demo releases", base),
        ("with a sole trader as supplier", [_with_person(r) for r in base]),
    ):
        rows, share = measure(releases, args.rounds)  # type: ignore[misc]
        floor_cpu = rows[0][1]
        say()
        say(f"## {title} (F non-empty in {share:.0%} of releases)")
        say()
        say("| step | CPU µs/release | wall µs/release | CPU / floor |")
        say("|---|---|---|---|")
        for name, cpu, wall in rows:
            say(f"| {name} | {cpu:,.1f} | {wall:,.1f} | {cpu / floor_cpu:.2f} |")
    say()
    say(f"Load average at end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}.")
    if args.write is not None:
        args.write.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
