"""The search rows of ``search_bench.measure`` run with another checkout's ``query`` module, to
compare two versions of the code on the same database in the same minutes:

    python bench/search_compare.py /work/main sqlite:////path/bench.sqlite3 10 > before.txt
    python bench/search_compare.py . sqlite:////path/bench.sqlite3 10 > after.txt

Each line: the case, median and p95 wall ms, median and p95 of this process's CPU ms, on
PostgreSQL the server's CPU ms per search (its backend's, read from ``/proc``: the server must
run on this machine; a mean, as the kernel counts it in 10 ms ticks), and a checksum of the
page's ocids (the two versions, and the two engines, must list the same rows). ``OUT=file.json`` also
writes them as JSON. The database is only read (fill it with ``search_bench.py --database``).

As a server worker does once started (``api.server.freeze_heap``), the process's heap is frozen
out of the garbage collector's scans after the imports: else a full collection, set off at random
by a search's allocations, rescans every imported module's objects inside whichever query it
falls in (``hospital`` + ``status=active`` on SQLite at 1,000,000 tenders: p95 73 ms against a
median of 39; 37 with the collector off). ``FREEZE=0`` leaves it as it is.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT, URL, RUNS = Path(sys.argv[1]).resolve(), sys.argv[2], int(sys.argv[3])
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402

from ledger.procurement import query  # noqa: E402

if os.environ.get("FREEZE", "1") != "0":
    gc.collect()
    gc.freeze()

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CASES: dict[str, dict[str, Any]] = {
    "floor": {},
    "status": {"status": "cancelled"},
    "buyer": {"buyer": "BUYER-42"},
    "hosp_new": {"q": "hospital", "sort": "published_desc"},
    "hosp_rel": {"q": "hospital"},
    "aztlan": {"q": "aztlan", "sort": "published_desc"},
    "zdorov": {"q": "здоров'я", "sort": "published_desc"},
    "rfuel77": {"q": "renovacion fuel 77"},
    "hosp_act": {"q": "hospital", "status": "active"},  # relevance with another filter: every match ranked
    "rfuel_act": {"q": "renovacion fuel 77", "status": "active"},
    "lot4242": {"q": "lot 4242 for"},
    "zzzz": {"q": "zzzz"},
    "renov": {"q": "renov", "sort": "published_desc"},
    "value": {"value_min": 1_000_000, "value_max": 1_100_000},
    "week": {"published_from": T0 + timedelta(days=100), "published_to": T0 + timedelta(days=107)},
}


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def _server_cpu_ms(pid: int | None) -> float:
    """The CPU time of the PostgreSQL backend ``pid`` so far (user and system), in ms; 0 without one."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main() -> None:
    engine = create_engine(URL)
    load = [Path("/proc/loadavg").read_text().split()[:3]]
    rows = []
    with engine.connect() as conn:  # one connection: on PostgreSQL, one backend to measure
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() if engine.dialect.name == "postgresql" else None
        for name in sys.argv[4:] or list(CASES):
            query.search_tenders(conn, **CASES[name])  # warm-up
            wall, cpu = [], []
            server = _server_cpu_ms(pid)
            for _ in range(RUNS):
                start, began = time.perf_counter(), time.process_time()
                page = query.search_tenders(conn, **CASES[name])
                wall.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - began) * 1000)
            server = (_server_cpu_ms(pid) - server) / RUNS
            crc = zlib.crc32(",".join(t.ocid for t in page.items).encode()) & 0xFFFF
            rows.append(
                [name, statistics.median(wall), _p95(wall), _p95(cpu), len(page.items), page.ranked_among, server]
            )
            print(
                f"{name:10s} med {statistics.median(wall):7.2f} p95 {_p95(wall):7.2f} "
                f"cpu med {statistics.median(cpu):6.2f} p95 {_p95(cpu):6.2f} "
                f"srv {server:6.2f} n={len(page.items)} crc={crc}"
            )
    load.append(Path("/proc/loadavg").read_text().split()[:3])
    print("load", *load)
    if os.environ.get("OUT"):
        at = datetime.now(UTC).strftime("%H:%M")
        Path(os.environ["OUT"]).write_text(json.dumps({"load": load, "at": at, "rows": rows}))


if __name__ == "__main__":
    main()
