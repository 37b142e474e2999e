"""Group commit, in-process: server-side CPU per single-event write, written together or one
savepoint each. Prints its figures.

    python bench/group_commit_bench.py --engine both --rounds 2

32 threads call ``record`` with one event each (the HTTP benchmark's: half ``tender.clarified``,
half ``bid.committed``, on 100 tenders picked at random) on a scratch database. Each round runs
both ways, alternately, in the same process: "together" as the API records an unsigned event
(``sequencer.append_each``: one bulk append per batch), "savepoints" as it records a request
with an ``Idempotency-Key`` (an ``on_recorded`` that writes nothing: each member in a savepoint
of the shared transaction). CPU is this process's (the database server's own is not counted);
the HTTP layer is not in it (``api_bench.py`` measures the whole).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_bench import clarified, committed, ocid, published

from ledger.log import Log
from ledger.procurement.record import OnRecorded, record
from ledger.submission import Recorded, Submission

TENDERS, WRITES, THREADS, CHAIN_ID = 100, 2000, 32, 31337


def _nothing(_conn: Any, _recorded: list[Recorded]) -> None:
    """An ``on_recorded`` that writes nothing: the request runs in a savepoint of its own."""


def measure(url: str, *, together: bool) -> tuple[float, float, float]:
    """Writes/s, ms of CPU per write and members per batch of ``WRITES`` writes from ``THREADS``."""
    log = Log.open(url, origin="bench.test/log")
    on_recorded: OnRecorded | None = None if together else _nothing
    try:
        now = datetime.now(UTC)
        for n in range(TENDERS):
            first = Submission(
                ocid=ocid(n, "bnchgc"), type="tender.published", payload=published(n, now - timedelta(1))
            )
            record(log, [first], now=now, signatures="optional", chain_id=CHAIN_ID)
        rng, bidders, items = random.Random(1), [0] * TENDERS, []
        for i in range(WRITES):
            n = rng.randrange(TENDERS)
            bidders[n] += 1
            kind, payload = (
                ("bid.committed", committed(n, bidders[n])) if i % 2 else ("tender.clarified", clarified(n, i))
            )
            items.append(Submission(ocid=ocid(n, "bnchgc"), type=kind, payload=payload))

        def one(item: Submission) -> None:
            now = datetime.now(UTC)
            record(log, [item], now=now, signatures="optional", chain_id=CHAIN_ID, on_recorded=on_recorded)

        batches, members = log.group.batches, log.group.members
        cpu, wall = time.process_time(), time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(one, items))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        per_batch = (log.group.members - members) / max(1, log.group.batches - batches)
        return WRITES / wall, 1000 * cpu / WRITES, per_batch
    finally:
        log.close()


def scratch(engine: str, name: str) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='gcbench_')}/log.sqlite3"
    subprocess.run(
        ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name], check=True, capture_output=True
    )
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    print(f"load average at the start: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    for engine in engines:
        for r in range(args.rounds):
            for together in (False, True):
                mode = "together" if together else "savepoints"
                rate, cpu, per_batch = measure(scratch(engine, f"gcbench_{mode}_{r}"), together=together)
                print(f"{engine:10} round {r + 1} {mode:10} {rate:7.0f} writes/s {cpu:5.2f} ms CPU/write"
                      f" {per_batch:5.1f} members/batch", flush=True)  # fmt: skip
    print(f"load average at the end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
