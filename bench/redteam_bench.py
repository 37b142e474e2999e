"""The issue-16 red team's large tender at full size: one tender of N events (default 124,000),
read through the paged API, the paged explorer page and its range bundles (anchored on the
embedded chain), against the floor measured in the same
run: the same read of a tender of one API page (1,000 events): a ratio near 1 means the answer
does not grow with the tender. Each answer's time and size, the ratio to the
floor, and this process's peak memory (max RSS) after all reads.

    python bench/redteam_bench.py                        # prints the figures
    python bench/redteam_bench.py --events 124000 --write bench/RESULTS-redteam.md

Before paging (the issue): /events 7.2 s and 78 MB, the explorer page 24 s and 150 MB of HTML.
Goal: every answer bounded by its page, whatever N (within 10x the floor, under 1 MB).
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from anchoring.embedded import EmbeddedChain  # noqa: E402
from anchoring.service import ChainAnchorer  # noqa: E402
from api.app import create_app  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.procurement import project  # noqa: E402
from ledger.submission import Submission  # noqa: E402
from settings import ChainSettings, Settings  # noqa: E402
from tests.recording import append_many  # noqa: E402

ORIGIN = "bench.tenderproof/log"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PUBLISHED = {
    "tender": {
        "id": "t",
        "title": "Road maintenance",
        "tenderPeriod": {"startDate": "2026-01-01T00:00:00Z", "endDate": "2099-01-01T00:00:00Z"},
    },
    "buyer": {"id": "B-1", "name": "Buyer"},
}


def _tender(log: Log, ocid: str, events: int) -> None:
    append_many(log, [Submission(ocid=ocid, type="tender.published", payload=PUBLISHED)], now=T0)
    for start in range(1, events, 5000):
        append_many(
            log,
            [
                Submission(
                    ocid=ocid,
                    type="tender.clarified",
                    payload={"tender": {"id": "t", "enquiries": [{"id": f"q{n}", "title": f"Question {n}"}]}},
                )
                for n in range(start, min(events, start + 5000))
            ],
            now=T0,
        )


def _read(client: TestClient, path: str) -> tuple[float, int]:
    start = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 200, (path, answer.status_code)
    return elapsed, len(answer.content)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=124_000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        log = Log.open(url, origin=ORIGIN)
        start = time.perf_counter()
        _tender(log, "ocds-abc123-large", args.events)
        _tender(log, "ocds-abc123-small", 1000)
        log.integrate_all(now=T0, commit_heads=True)
        project.rebuild(log.engine)
        recorded = time.perf_counter() - start
        dev = EmbeddedChain()
        chain = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)
        anchorer = ChainAnchorer(log, chain, dev=dev)
        result = anchorer.run_round(force=True)
        while not result.settled:
            result = anchorer.run_round()
        app = create_app(Settings(database_url=url, origin=ORIGIN, chains=[chain]), log=log, dev_chain=dev)
        last_api = (args.events - 1) // 1000 * 1000
        last_page = (args.events - 1) // 200 * 200
        bundle = "/api/v1/tenders/{}/bundle?from_seq=%d&to_seq=%d"
        middle = args.events // 2
        reads = [  # (what, the large tender's read, the floor's: the small tender's first page)
            ("API events, first page", "/api/v1/tenders/{}/events", None),
            ("API events, last page", "/api/v1/tenders/{}/events?from_seq=" + str(last_api), None),
            ("explorer tender page, first", "/tenders/{}", None),
            ("explorer tender page, last", "/tenders/{}?from=" + str(last_page), None),
            ("range bundle, first 200 events", bundle % (0, 199), bundle % (0, 199)),
            ("range bundle, last 200 events", bundle % (args.events - 200, args.events - 1), bundle % (0, 199)),
            ("range bundle, 1,000 events (the most)", bundle % (middle, middle + 999), bundle % (0, 999)),
        ]
        rows = []
        with TestClient(app) as client:
            for name, path, floor_path in reads:
                small = (floor_path or path.split("?")[0]).format("ocds-abc123-small")
                _read(client, small)  # warm up
                floor, floor_size = min(_read(client, small) for _ in range(3))
                took, size = min(_read(client, path.format("ocds-abc123-large")) for _ in range(3))
                rows.append((name, took, size, floor, floor_size))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "# Red team (issue 16): a large tender, paged",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, Python {platform.python_version()},"
        f" SQLite; `python bench/redteam_bench.py --events {args.events}`.",
        f"One tender of {args.events:,} events (recorded, integrated and projected in {recorded:.1f} s);"
        " the floor is the same read (first page) of a 1,000-event tender, in the same run (for the"
        " 1,000-event range bundle: that tender's whole history as a range). Best of 3.",
        "",
        "| read | time | size | floor time | floor size | time ratio |",
        "|---|---|---|---|---|---|",
    ]
    for name, took, size, floor, floor_size in rows:
        lines.append(
            f"| {name} | {took * 1000:.0f} ms | {size / 1024:.0f} KiB | {floor * 1000:.0f} ms |"
            f" {floor_size / 1024:.0f} KiB | {took / floor:.1f}x |"
        )
    lines += [
        "",
        f"Peak memory of the whole process (recording included): {peak:.0f} MiB.",
        "",
        "Before paging (the issue's report): `/events` 7.2 s and 78 MB, the explorer page 24 s and 150 MB"
        " of HTML, about 1 GB of server memory each.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
