"""Reads from a hot standby against the same reads from the primary, in one run (issue 20's check:
the explorer's tender page and the bundle within 1.2x of their time on the primary, the officer's
own write visible to them at once).

    python bench/replica_bench.py --write bench/RESULTS-replicas.md

Real processes on this machine: a private PostgreSQL primary and a hot standby cloned from it with
``pg_basebackup -R`` (tests/cluster.py), ``tenderproof serve --workers 2`` reading from the standby
(A), and the same server without replicas (B, the floor: what a deployment without replicas
serves). Requests go one at a time, round robin over: A with no position (served by the standby,
checked on ``X-Tenderproof-Served-By``), A with a position only the primary has (served by the
primary, through the same routing layer) and B; medians and 90th percentiles per target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from tempfile import mkdtemp

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.replicas import POSITION_HEADER, SERVED_BY_HEADER
from ledger.log import Log
from tests.cluster import (
    ROOT,
    PrivatePostgres,
    clarify,
    cli,
    create_key,
    environment,
    private_postgres,
    publish_tender,
    serve_api,
)

ORIGIN = "tenderproof.bench/replicas"


def write_tender(client: httpx.Client, ocid: str, events: int) -> None:
    publish_tender(client, ocid)
    for n in range(events):
        clarify(client, ocid, n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="requests per target and page")
    parser.add_argument("--tenders", type=int, default=40)
    parser.add_argument("--events", type=int, default=30, help="events of the tender read")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    logs = Path(mkdtemp(prefix="tp-replica-bench-"))
    with ExitStack() as stack:
        primary = stack.enter_context(private_postgres())
        key = create_key(primary.url, origin=ORIGIN, name="officer")
        standby = PrivatePostgres()
        stack.callback(standby.stop)
        standby.clone_standby(primary)
        standby.start()
        env = {"TENDERPROOF_RATE_LIMIT": "off"}
        replicated = {
            "TENDERPROOF_DATABASE_REPLICA_URLS": json.dumps([standby.url]),
            "TENDERPROOF_REPLICA_MAX_LAG": "60",
        }
        a = stack.enter_context(
            serve_api(primary.url, origin=ORIGIN, workers=2, log_file=logs / "a.log", env=env | replicated)
        )
        b = stack.enter_context(serve_api(primary.url, origin=ORIGIN, workers=2, log_file=logs / "b.log", env=env))
        officer = stack.enter_context(
            httpx.Client(base_url=a.base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        )
        ocid = "ocds-tp0dev-bench-0000"
        write_tender(officer, ocid, args.events)
        for n in range(1, args.tenders):
            write_tender(officer, f"ocds-tp0dev-bench-{n:04d}", 2)
        # integrated and anchored (on the embedded chain, in a process of its own): bundles need final anchors
        subprocess.run(cli(primary.url, ORIGIN, "anchor"), cwd=ROOT, env=environment(), check=True, capture_output=True)
        log = Log.open(primary.url, origin=ORIGIN)
        try:
            size = log.checkpoint().size
        finally:
            log.close()

        # the officer's own writes, read at once through A with the cookie it was given
        visible, served = 0, dict[str, int]()
        for n in range(20):
            clarify(officer, ocid, 1000 + n)
            events = officer.get(f"/api/v1/tenders/{ocid}/events", params={"limit": 1000})
            visible += any(e["envelope"]["type"] == "tender.clarified" and
                           e["payload"]["tender"]["enquiries"][0]["id"] == f"q{1000 + n}"
                           for e in events.json()["events"])  # fmt: skip
            served[events.headers[SERVED_BY_HEADER]] = served.get(events.headers[SERVED_BY_HEADER], 0) + 1

        deadline = time.monotonic() + 60
        while httpx.get(f"{a.base}/api/v1/checkpoint").headers[SERVED_BY_HEADER] != "replica-0":
            if time.monotonic() > deadline:
                raise RuntimeError("the standby never served")
            time.sleep(0.2)
        pages = {"explorer tender page": f"/tenders/{ocid}", "proof bundle": f"/api/v1/tenders/{ocid}/bundle"}
        targets = {
            "standby (A)": (a.base, {}, "replica-0"),
            "primary through A": (a.base, {POSITION_HEADER: "FFFF/0"}, "primary"),
            "primary, no replicas (B)": (b.base, {}, None),
        }
        timings: dict[tuple[str, str], list[float]] = {(p, t): [] for p in pages for t in targets}
        with httpx.Client(timeout=60) as client:
            for page, path in pages.items():
                for _ in range(args.rounds):
                    for target, (base, headers, expected) in targets.items():
                        client.cookies.clear()  # each request as a new visitor's
                        started = time.perf_counter()
                        answer = client.get(base + path, headers={"Accept": "text/html", **headers})
                        elapsed = 1000 * (time.perf_counter() - started)
                        if answer.status_code != 200 or (expected and answer.headers[SERVED_BY_HEADER] != expected):
                            raise RuntimeError(f"{target} {path}: {answer.status_code} {answer.headers}")
                        timings[(page, target)].append(elapsed)
    lines = [
        "# Reads from a hot standby against the primary (bench/replica_bench.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; a primary and a `pg_basebackup` hot standby on this machine, "
        f"`serve --workers 2`; a log of {size} entries; the tender read has {args.events + 21} events; "
        f"{args.rounds} requests per target and page, one at a time, round robin over the targets.",
        "",
        "| page | served by | median ms | p90 ms | median / primary without replicas (B) |",
        "|---|---|---|---|---|",
    ]
    for page in pages:
        floor = statistics.median(timings[(page, "primary, no replicas (B)")])
        for target in targets:
            got = timings[(page, target)]
            p90 = statistics.quantiles(got, n=10)[-1]
            lines.append(f"| {page} | {target} | {statistics.median(got):.2f} | {p90:.2f} | "
                         f"{statistics.median(got) / floor:.2f} |")  # fmt: skip
    lines += [
        "",
        f"Officer's own write visible in their next read (the cookie's position): {visible} of 20 "
        f"(served by {', '.join(f'{k} {v}' for k, v in sorted(served.items()))}).",
        "",
    ]
    out = "\n".join(lines)
    print(out)
    if args.write:
        args.write.write_text(out)
    return 0 if visible == 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
