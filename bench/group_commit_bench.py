"""Group commit, in-process: server-side CPU per single-event write against the floor. Prints its figures.

    python bench/group_commit_bench.py --engine both --rounds 2

32 threads call ``record`` with one event each (the HTTP benchmark's: half ``tender.clarified``,
half ``bid.committed``, on 100 tenders picked at random) on a scratch database, three ways in turn:
"plain" (an unsigned event, as the API records one without ``Idempotency-Key``), "on_recorded"
(with an ``on_recorded`` that writes nothing, as a request with an ``Idempotency-Key``; before
round 5 of bench/RESULTS-writes.md this took one savepoint per member) and "signed" (each event
signed by a registered officer, EIP-712). The floor, measured in the same run on the same
database: 32 threads each committing one-row INSERTs (a row as wide as an event's) in the log's
own write transactions. CPU is this process's (the database server's own is not counted); the
HTTP layer is not in it (``api_bench.py`` measures the whole).
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

from api_bench import FLOOR_ROW, clarified, committed, ocid, published
from eth_account import Account

from ledger.core.canonical import sha256_hex
from ledger.core.envelope import payload_bytes
from ledger.core.signing import Submission as Signed
from ledger.core.signing import sign_submission
from ledger.log import Log
from ledger.procurement.officers import REGISTRY_OCID
from ledger.procurement.record import OnRecorded, record
from ledger.store.db import open_engine, write_transaction
from ledger.submission import Recorded, Submission

TENDERS, WRITES, THREADS, CHAIN_ID = 100, 2000, 32, 31337


def _nothing(_conn: Any, _recorded: list[Recorded]) -> None:
    """An ``on_recorded`` that writes nothing (what an idempotent request adds, without its row)."""


OFFICER_KEY = "0x" + "11" * 32
MODES = ("plain", "on_recorded", "signed")


def _signed(item: Submission, n: int, origin: str) -> Submission:
    payload_sha256 = sha256_hex(payload_bytes(item.payload))
    struct = Signed(
        origin=origin, chain_id=CHAIN_ID, ocid=item.ocid, event_type=item.type, payload_sha256=payload_sha256,
        submission_id=f"bench-{n}", officer=Account.from_key(OFFICER_KEY).address, signed_at=1_790_000_000,
    )  # fmt: skip
    return Submission(
        ocid=item.ocid, type=item.type, payload=item.payload, submission=struct.to_json(),
        signature=sign_submission(struct, OFFICER_KEY),
    )  # fmt: skip


def measure(url: str, *, mode: str) -> tuple[float, float, float]:
    """Writes/s, ms of CPU per write and members per batch of ``WRITES`` writes from ``THREADS``."""
    log = Log.open(url, origin="bench.test/log")
    on_recorded: OnRecorded | None = _nothing if mode == "on_recorded" else None
    try:
        now = datetime.now(UTC)
        officer = {"address": Account.from_key(OFFICER_KEY).address, "name": "Bench", "role": "officer"}
        record(log, [Submission(ocid=REGISTRY_OCID, type="officer.registered", payload=officer)],
               now=now - timedelta(2), signatures="optional", chain_id=CHAIN_ID)  # fmt: skip
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
            one = Submission(ocid=ocid(n, "bnchgc"), type=kind, payload=payload)
            items.append(_signed(one, i, log.origin) if mode == "signed" else one)

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


def floor(url: str) -> tuple[float, float]:
    """Commits/s and ms of CPU per commit: ``THREADS`` threads each committing one-row INSERTs of a
    row as wide as an event's, ``WRITES`` in all, in the log's write transactions on ``url``."""
    engine = open_engine(url, pool_size=THREADS + 2)
    try:
        serial, blob = ("BIGSERIAL", "BYTEA") if engine.dialect.name == "postgresql" else ("INTEGER", "BLOB")
        param = "%s" if engine.dialect.name == "postgresql" else "?"
        with write_transaction(engine) as conn:
            conn.exec_driver_sql(f"CREATE TABLE floor_rows (id {serial} PRIMARY KEY, ocid TEXT NOT NULL, data {blob})")
        sql = f"INSERT INTO floor_rows (ocid, data) VALUES ({param}, {param})"

        def one(i: int) -> None:
            with write_transaction(engine) as conn:
                conn.exec_driver_sql(sql, (f"ocds-floor-{i}", FLOOR_ROW))

        cpu, wall = time.process_time(), time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(one, range(WRITES)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return WRITES / wall, 1000 * cpu / WRITES
    finally:
        engine.dispose()


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
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    modes = args.modes.split(",")
    print(f"load average at the start: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    for engine in engines:
        for r in range(args.rounds):
            rate, cpu = floor(scratch(engine, f"gcbench_floor_{r}"))
            print(f"{engine:10} round {r + 1} {'floor':11} {rate:7.0f} commits/s {cpu:5.2f} ms CPU/commit", flush=True)
            for mode in modes:
                got, cpu, per_batch = measure(scratch(engine, f"gcbench_{mode}_{r}"), mode=mode)
                print(f"{engine:10} round {r + 1} {mode:11} {got:7.0f} writes/s  {cpu:5.2f} ms CPU/write"
                      f" {per_batch:5.1f} members/batch  ratio {got / rate:5.3f}", flush=True)  # fmt: skip
    print(f"load average at the end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
