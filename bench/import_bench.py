"""OCDS import: rate (releases/s, MB/s) of a large release package, and peak memory on a 1 GB file.

    python bench/import_bench.py                         # 100,000 releases on SQLite, then 1 GB
    python bench/import_bench.py --releases 20000 --gigabytes 0.1 --write bench/RESULTS-import.md

The data are the demo's generated tenders (demo.ocds.releases: planning to termination,
~600 bytes a release), written as one release package streamed to a temporary file. Each import
runs as ``tenderproof import --json FILE`` in a child process (its main, then its peak RSS) on a fresh SQLite database, so the
figures include everything (streamed parsing, schema validation, RFC 8785 and hashing, the
append, the projection and red flags), and the child's peak resident memory is its own
(``getrusage(RUSAGE_SELF)`` at its end). The CPU of each stage (the recording process's threads,
each worker process; user and system) is sampled from ``/proc``, and the end-of-import ledger flags
timed. A profile of where the time goes is measured in-process on a sample, phase by phase.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ijson  # noqa: E402

from demo import ocds as demo_ocds  # noqa: E402
from ledger.core import commitment  # noqa: E402
from ledger.core.canonical import canonical_json_bytes  # noqa: E402
from ledger.core.envelope import Envelope  # noqa: E402
from ledger.procurement import importer, ocds, privacy, redflags  # noqa: E402
from ledger.store import keys  # noqa: E402

GOAL_RATE = 10_000  # releases/s, SQLite, hashing included (issue 18)
GOAL_MEMORY_MB = 300  # peak RSS importing a 1 GB file
GOAL_FLOOR_RATIO = 0.5  # the import's rate over the floor's (parse + canonicalise + hash + merge), same run


#: Tenders a day that the date-ordered package plans (``--order date``): a tender lives ~100-400
#: days from planning to termination, so ~5,000-20,000 are open at once, each release of one a few
#: batches (:data:`importer.BATCH`, ~7 days of releases) after the one before.
DATE_ORDER_TENDERS_A_DAY = 50
#: How far a tender's planning release may come before its place in the spread
#: (``demo.ocds.releases``: up to four days and six hours after it).
_PLANNING_SLACK = timedelta(days=5)


def _generated(order: str) -> Iterator[dict[str, Any]]:
    """The generated releases in file order: tender after tender (``tender``), or by date
    (``date``: the same generator with its planned dates spread :data:`DATE_ORDER_TENDERS_A_DAY` a
    day, so that tenders overlap as in a multi-year feed), streamed in bounded memory: each
    release waits, as JSON text, in a heap until no tender still to come can have an earlier one
    (every release of a tender is dated at or after its planning release; ties in generated order)."""
    tenders = 10_000_000  # enough distinct tenders for any size; dates spread over them
    if order == "tender":
        yield from demo_ocds.releases(tenders, seed=7)
        return
    pending: list[tuple[str, int, str]] = []
    for made, release in enumerate(demo_ocds.releases(tenders, seed=7, spread=tenders // DATE_ORDER_TENDERS_A_DAY)):
        if release["tag"] == ["planning"]:
            planned = datetime.strptime(release["date"], "%Y-%m-%dT%H:%M:%SZ")
            before = (planned - _PLANNING_SLACK).strftime("%Y-%m-%dT%H:%M:%SZ")
            while pending and pending[0][0] < before:
                yield json.loads(heapq.heappop(pending)[2])
        heapq.heappush(pending, (release["date"], made, json.dumps(release, separators=(",", ":"))))


def write_package(
    path: Path, *, releases: int | None = None, size: int | None = None, order: str = "tender"
) -> tuple[int, int, int]:
    """Write a release package of ``releases`` releases (or of at least ``size`` bytes) in
    ``order`` (:func:`_generated`); return (releases written, bytes, releases in a later batch of
    :data:`importer.BATCH` than their tender's first: those the import merges into a tender it
    has already stored). Streamed: the file is never in memory."""
    count = later = 0
    first_batch: dict[str, int] = {}
    with path.open("w", encoding="utf-8") as out:
        out.write('{"uri":"https://bench.example/releases.json","version":"1.1",')
        out.write('"publishedDate":"2026-11-23T00:00:00Z","publisher":{"name":"bench"},"releases":[')
        for release in _generated(order):
            if (releases is not None and count >= releases) or (size is not None and out.tell() >= size):
                break
            out.write(("," if count else "") + json.dumps(release, separators=(",", ":"), ensure_ascii=False))
            later += first_batch.setdefault(release["ocid"], count // importer.BATCH) < count // importer.BATCH
            count += 1
        out.write("]}")
    return count, path.stat().st_size, later


#: The child: the command line's main, then its own peak resident set size and CPU seconds on stderr.
#: A key for the dedupe digest step (a deployment draws its own: ledger.store.keys).
_BENCH_KEY = bytes(range(32))
_CHILD = (
    "import resource, sys, threading, time\n"
    "from ledger.procurement import importer, redflags\n"
    # the reading thread's id, so that /proc tells its CPU apart; the end's ledger flags timed
    "_raws, _refresh, _flags, _reader = importer._raws, redflags.refresh_ledger_flags, [0.0, 0.0], [0]\n"
    "def named(*args, **kwargs):\n"
    "    _reader[0] = threading.get_native_id()\n"
    "    yield from _raws(*args, **kwargs)\n"
    "def timed(*args, **kwargs):\n"
    "    wall, cpu = time.perf_counter(), time.thread_time()\n"
    "    try:\n"
    "        return _refresh(*args, **kwargs)\n"
    "    finally:\n"
    "        _flags[:] = [time.perf_counter() - wall, time.thread_time() - cpu]\n"
    "importer._raws, redflags.refresh_ledger_flags = named, timed\n"
    "from cli import main\n"
    "code = main(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print('FLAGS', *_flags, 'SYS', usage.ru_stime, 'READER', _reader[0], file=sys.stderr)\n"
    "print('MAXRSS', usage.ru_maxrss, 'CPU', usage.ru_utime + usage.ru_stime, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _tree(root: int) -> dict[int, int]:
    """``root`` and every process descended from it (from ``/proc``): pid -> parent pid."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    out, todo = {root: 0}, [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out[child] = pid
            todo.append(child)
    return out


def _times(stat: str) -> tuple[float, float]:
    """User and system CPU seconds of a ``/proc/.../stat`` line."""
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def _sample(pid: int) -> tuple[tuple[float, float], int, int] | None:
    """CPU seconds (user, system), PSS and RSS in bytes of one process (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    memory = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in rollup.splitlines()[1:] if ":" in line}
    return _times(stat), memory.get("Pss", 0), memory.get("Rss", 0)


def _threads(pid: int) -> dict[int, tuple[str, tuple[float, float]]]:
    """Each thread of ``pid``: its name and CPU seconds (user, system)."""
    out = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                out[int(tid)] = (name, _times(Path(f"/proc/{pid}/task/{tid}/stat").read_text()))
    return out


def _role(pid: int, parents: dict[int, int], root: int) -> str:
    """What a process of the import's tree is: its checking workers are the fork server's children."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        command = b""
    if b"resource_tracker" in command:
        return "resource tracker"
    if parents.get(pid) == root:
        return "fork server" if b"forkserver" in command else "child"
    return "worker"


class TreeSampler:
    """Samples a process tree every ``every`` seconds from ``/proc``: the peak of the PSS (and RSS)
    summed over every live process of the tree, the CPU time (user, system) of each process as
    last seen and of each thread of the root (a process's CPU after its last sample is not
    counted: ``every`` bounds the loss), and what each process is (:func:`_role`)."""

    def __init__(self, root: int, every: float = 0.25) -> None:
        import threading

        self.root, self.every = root, every
        self.peak_pss = self.peak_rss = 0
        #: Each process's PSS and RSS (bytes) in the sample where the tree's PSS peaked.
        self.at_peak: dict[int, tuple[int, int]] = {}
        self.cpu: dict[int, tuple[float, float]] = {}
        self.roles: dict[int, str] = {}
        self.threads: dict[int, tuple[str, tuple[float, float]]] = {}
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pss = rss = alive = 0
            parents = _tree(self.root)
            memory: dict[int, tuple[int, int]] = {}
            for pid in parents:
                got = _sample(pid)
                if got is None:
                    continue
                if pid not in self.roles:
                    self.roles[pid] = _role(pid, parents, self.root)
                self.cpu[pid] = got[0]
                memory[pid] = got[1:]
                pss, rss, alive = pss + got[1], rss + got[2], alive + 1
            self.threads.update(_threads(self.root))
            if pss > self.peak_pss:
                self.peak_pss, self.at_peak = pss, memory
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, alive)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def stages(self, reader: int) -> dict[str, tuple[float, float]]:
        """CPU seconds (user, system) per stage: the recording process's threads (its main thread
        records, the thread ``reader`` reads, the others hand batches to the pool), then the other
        processes by role, workers numbered."""
        out: dict[str, tuple[float, float]] = {}

        def put(name: str, times: tuple[float, float]) -> None:
            user, system = out.get(name, (0.0, 0.0))
            out[name] = (user + times[0], system + times[1])

        for tid, (_, times) in sorted(self.threads.items()):
            if tid == self.root:
                put("recording process: main thread (records)", times)
            elif tid == reader:
                put("recording process: reading thread", times)
            else:
                put("recording process: other threads (pool's feeding and results)", times)
        names = self._names()
        for pid, times in sorted(self.cpu.items()):
            if pid != self.root:
                put(names[pid], times)
        return out

    def _names(self) -> dict[int, str]:
        """Each process by role, workers numbered in the order they started."""
        names, workers = {self.root: "recording process"}, 0
        for pid in sorted(self.roles):
            role = self.roles[pid]
            if pid != self.root and role == "worker":
                workers += 1
                role = f"worker {workers}"
            names.setdefault(pid, role)
        return names

    def memory_at_peak(self) -> dict[str, tuple[int, int]]:
        """PSS and RSS (bytes) of each process (:meth:`_names`) in the sample where the tree's PSS
        peaked: where the memory bound goes."""
        names = self._names()
        return {names.get(pid, "child"): got for pid, got in sorted(self.at_peak.items())}


def run_import(path: Path, workdir: Path, workers: int | None = None) -> dict[str, Any]:
    """``tenderproof import --json`` in a child on a fresh SQLite file; its report, time, peak RSS,
    and the whole process tree's (the child, its fork server and worker processes) CPU time and
    peak PSS, sampled from ``/proc``, and per stage (:meth:`TreeSampler.stages`), with the
    end-of-import ledger flags' time."""
    database = workdir / f"import-{time.monotonic_ns()}.sqlite3"
    env = {**os.environ, "TENDERPROOF_DATABASE_URL": f"sqlite:///{database}", "TENDERPROOF_ORIGIN": "bench/import"}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "import", "--json", str(path)]
        + ([] if workers is None else ["--workers", str(workers)]),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = TreeSampler(child.pid)
    stdout, stderr = child.communicate()
    sampler.stop()
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"import failed ({child.returncode}): {stderr[-2000:]}")
    report = json.loads(stdout.strip().splitlines()[-1])
    database.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    cpu = float(stderr.rsplit("CPU ", 1)[1].split()[0])
    flags_wall, flags_cpu = (float(v) for v in stderr.rsplit("FLAGS ", 1)[1].split()[:2])
    return {
        "report": report,
        "seconds": elapsed,
        "import_seconds": report["seconds"],
        # ru_maxrss is in KiB on Linux.
        "peak_mb": int(stderr.rsplit("MAXRSS ", 1)[1].split()[0]) / 1024,
        # the recording process's own CPU (the worker processes' is not in it)
        "cpu": cpu,
        "sys": float(stderr.rsplit("SYS ", 1)[1].split()[0]),
        # every process of the tree: the recording process's own figure, the others' last samples
        "tree_cpu": cpu + sum(sum(v) for pid, v in sampler.cpu.items() if pid != child.pid),
        "tree_pss_mb": sampler.peak_pss / 2**20,
        "tree_rss_mb": sampler.peak_rss / 2**20,
        "processes": sampler.peak_processes,
        "stages": sampler.stages(int(stderr.rsplit("READER ", 1)[1].split()[0])),
        "memory": sampler.memory_at_peak(),
        "flags": (flags_wall, flags_cpu),
    }


def stage_rows(name: str, count: int, run: dict[str, Any]) -> list[str]:
    """Markdown rows of a run's CPU per stage, in µs a release (user + system, and system)."""
    rows = [
        f"| {name}: {stage} | {(user + system) * 1e6 / count:,.1f} | {system * 1e6 / count:,.1f} |"
        for stage, (user, system) in run["stages"].items()
    ]
    wall, cpu = run["flags"]
    tenders = max(run["report"]["tenders"], 1)
    rows.append(
        f"| {name}: ledger flags at the end (main thread; {wall:,.1f} s of wall, "
        f"{cpu * 1e6 / tenders:,.1f} µs a tender) | {cpu * 1e6 / count:,.1f} | |"
    )
    return rows


def memory_rows(name: str, run: dict[str, Any]) -> list[str]:
    """Markdown rows of each process's PSS and RSS (MB) when the tree's PSS peaked."""
    return [
        f"| {name}: {process} | {pss / 2**20:,.1f} | {rss / 2**20:,.1f} |"
        for process, (pss, rss) in run["memory"].items()
    ]


MEMORY_HEAD = "| run: process | PSS at the tree's peak PSS (MB) | RSS then (MB) |\n|---|---|---|"


def _row(name: str, count: int, size: int, run: dict[str, Any]) -> str:
    seconds = run["import_seconds"]
    return (
        f"| {name} | {count:,} | {size / 1e6:,.1f} | {seconds:,.1f} | {count / seconds:,.0f} | "
        f"{size / 1e6 / seconds:,.2f} | {run['cpu']:,.1f} | {run['tree_cpu']:,.1f} | {run['tree_cpu'] * 1e6 / count:,.1f} | "
        f"{count / run['tree_cpu']:,.0f} | {run['peak_mb']:,.0f} | {run['tree_pss_mb']:,.0f} | {run['processes']} |"
    )


#: Feed days after its latest release that a tender of the date-ordered package has no more
#: (``demo.ocds.releases``: at most 120 days between two releases of a tender).
_TENDER_IDLE = timedelta(days=200)


def floor(path: Path, order: str = "tender") -> tuple[float, float]:
    """The floor of an import of ``path``, in releases/s of wall and of CPU time: what any importer
    of it must do, measured in this process (single process) on the same file: stream-parse it
    (ijson, yajl2_c), RFC 8785 of each release the fastest way the project has (orjson first:
    ``parsed=True``, as the import does) and its SHA-256, and ocdsmerge's compiled release of each
    tender from its releases, made the fastest way the project has (``ocds.compile_releases``, as
    the import makes it) once each tender has all its releases, in bounded memory: tender after
    tender, when the next begins; in ``date`` order (:func:`_generated`), once the feed is
    :data:`_TENDER_IDLE` past its latest release."""
    import hashlib

    started, cpu = time.perf_counter(), time.process_time()
    open_tenders: dict[str, list[dict[str, Any]]] = {}
    latest: dict[str, str] = {}
    count = 0
    # the collector as seldom as the import runs it: the releases of the open tenders kept here
    # would otherwise be walked again and again (-20 % of the date-ordered floor's CPU)
    with importer._COLLECTOR.seldom(), path.open("rb") as stream:
        for release in ijson.items(stream, "releases.item", use_float=True):
            hashlib.sha256(canonical_json_bytes(release, parsed=True)).digest()
            ocid = release["ocid"]
            if order == "tender" and open_tenders and ocid not in open_tenders:
                ocds.compile_releases(open_tenders.popitem()[1])
            elif order == "date" and count % importer.BATCH == 0:
                idle = datetime.strptime(release["date"], "%Y-%m-%dT%H:%M:%SZ") - _TENDER_IDLE
                before = idle.strftime("%Y-%m-%dT%H:%M:%SZ")
                for done in [o for o, at in latest.items() if at < before]:
                    ocds.compile_releases(open_tenders.pop(done))
                    del latest[done]
            open_tenders.setdefault(ocid, []).append(release)
            if order == "date":
                latest[ocid] = release["date"]
            count += 1
    for releases in open_tenders.values():
        ocds.compile_releases(releases)
    return count / (time.perf_counter() - started), count / (time.process_time() - cpu)


def phases(sample: int) -> list[tuple[str, float]]:
    """CPU microseconds per release of each step of the import, measured alone on ``sample`` releases."""
    releases = list(demo_ocds.releases(sample // 5 + 1, seed=3))[:sample]
    data = json.dumps({"releases": releases}).encode()
    validator = importer._validator()
    by_tender: dict[str, list[dict[str, Any]]] = {}
    for release in releases:
        by_tender.setdefault(release["ocid"], []).append(release)
    compiled = {ocid: ocds.compile_releases(rs) for ocid, rs in by_tender.items()}
    payloads = [canonical_json_bytes(r) for r in releases]
    envelope: dict[str, Any] = {
        "origin": "bench/import",
        "ocid": "ocds-bench0-1",
        "seq": 3,
        "prev": "ab" * 32,
        "type": "award.issued",
        "recorded_at": "2026-11-23T00:00:00.000000Z",
        "payload_sha256": "cd" * 32,
    }
    v2_inputs = [(r, privacy.places("award.issued", r), canonical_json_bytes(r)) for r in releases]
    steps: list[tuple[str, Any]] = [
        ("parse (ijson, yajl2_c)", lambda: list(ijson.items(io.BytesIO(data), "releases.item", use_float=True))),
        ("schema validation (jsonschema-rs)", lambda: [next(iter(validator.iter_errors(r)), None) for r in releases]),
        ("RFC 8785 of the release (payload)", lambda: [canonical_json_bytes(r) for r in releases]),
        ("personal-data marks (privacy rules)", lambda: [privacy.marks("award.issued", r) for r in releases]),
        (
            "dedupe digest (HMAC-SHA256 under the deployment key) of the RFC 8785 bytes",
            lambda: [keys.keyed_digest(_BENCH_KEY, d) for d in payloads],
        ),
        ("envelope (build, RFC 8785)", lambda: [Envelope(**envelope).canonical_bytes() for _ in releases]),
        (
            "envelope v2 commitment (F from the marks, HMAC salts, digests)",
            lambda: [
                commitment.new_commitment(r, privacy.committed_fields(marked), payload_bytes=data)
                for r, marked, data in v2_inputs
            ],
        ),
        (
            "compiled release (ocdsmerge's, ocds.compile_releases)",
            lambda: [ocds.compile_releases(rs) for rs in by_tender.values()],
        ),
        (
            "projection from the compiled release",
            lambda: [importer.state_of_compiled(o, compiled[o], by_tender[o]) for o in by_tender],
        ),
        ("red flags and parties (rows)", lambda: [redflags.rows_of(o, None, compiled[o]) for o in by_tender]),
    ]
    out = []
    # with the cyclic collector as seldom as the import runs it (importer.GC_THRESHOLD): at Python's
    # default a step that keeps what it makes (these lists) paid for collections the import does
    # not make, up to +36 µs a release on ocdsmerge's step in one run (bench/RESULTS-import.md, t32m)
    with importer._COLLECTOR.seldom():
        for name, step in steps:
            started = time.process_time()
            step()
            out.append((name, (time.process_time() - started) * 1e6 / len(releases)))
    return out


def flag_counts_latency(tenders: int, workdir: Path, runs: int = 20) -> tuple[float, float, dict[str, int]]:
    """Median and worst milliseconds of ``redflags.flag_counts`` (and the tender count the home
    page shows with it) over ``tenders`` tenders on SQLite. The rows are written in bulk, as the
    import writes them: ~30% of tenders raise a stored flag, each has one supplier among 5,000,
    from one of 500 buyers."""
    import random
    import statistics
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from ledger.log import Log
    from ledger.procurement import query, redflags
    from ledger.store.db import write_transaction
    from ledger.store.schema import supplier_wins, tender_flags, tender_index, tender_suppliers
    from ledger.store.schema import tenders as tenders_table

    log = Log.open(f"sqlite:///{workdir / 'flags.sqlite3'}", origin="bench/flags")
    rng = random.Random(5)
    now = datetime(2026, 11, 23, tzinfo=UTC)
    codes = [c for c in redflags.CODES if c != "repeat_supplier"]
    wins: Counter[tuple[str, str]] = Counter()
    with write_transaction(log.engine) as conn:
        for start in range(0, tenders, 10_000):
            ocids = [f"ocds-bench0-{i:07}" for i in range(start, min(start + 10_000, tenders))]
            conn.execute(
                insert(tenders_table),
                [{"ocid": o, "created_at": now, "updated_at": now, "event_count": 1, "head_hash": None} for o in ocids],
            )
            conn.execute(
                insert(tender_index),
                [
                    {
                        "ocid": o,
                        "status": "active",
                        "suppliers": "",
                        "search_text": o,
                        "listed_at": now,
                        "updated_at": now,
                        "state": "{}",
                    }
                    for o in ocids
                ],
            )
            flags = [{"ocid": o, "code": rng.choice(codes), "evidence": "{}"} for o in ocids if rng.random() < 0.3]
            conn.execute(insert(tender_flags), flags)
            pairs = [
                {"ocid": o, "supplier": f"S{rng.randrange(5000)}", "buyer_id": f"B{rng.randrange(500)}"} for o in ocids
            ]
            conn.execute(insert(tender_suppliers), pairs)
            wins.update((p["buyer_id"], p["supplier"]) for p in pairs)
        conn.execute(
            insert(supplier_wins), [{"buyer_id": b, "supplier": n, "wins": w} for (b, n), w in sorted(wins.items())]
        )
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        counts = redflags.flag_counts(log.engine)
        query.count_tenders(log.engine)
        times.append((time.perf_counter() - started) * 1000)
    log.close()
    return statistics.median(times), max(times), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=100_000, help="releases in the rate run")
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of the memory run's file (0: skip)")
    parser.add_argument("--sample", type=int, default=5_000, help="releases in the per-phase profile")
    parser.add_argument("--flag-tenders", type=int, default=100_000, help="tenders in the red-flag count run (0: skip)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="checking processes in the rate runs after the first"
    )
    parser.add_argument("--no-inline", action="store_true", help="skip the rate run with --workers 0")
    parser.add_argument(
        "--order",
        choices=["tender", "date"],
        default="tender",
        help="the package's releases tender after tender, or by date (a feed over years: tenders overlap)",
    )
    parser.add_argument("--write", type=Path, help="also write the results as Markdown to this file")
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(prefix="tp-import-bench-") as tmp:
        work = Path(tmp)
        say("# OCDS import benchmark (`bench/import_bench.py`)")
        say()
        say(
            f"Python {sys.version.split()[0]}, SQLite, {os.cpu_count()} cores; `tenderproof import --json` in a child process."
        )
        say()
        package = work / "rate.json"
        count, size, later = write_package(package, releases=args.releases, order=args.order)
        say(
            f"Releases in {args.order} order; {later:,} of {count:,} in a later batch of {importer.BATCH:,} than "
            "their tender's first (merged into a tender already stored)."
        )
        say()
        say(f"Load average before: {Path('/proc/loadavg').read_text().split()[:3]}")
        say()
        say(
            "| run | releases | file (MB) | import (s) | releases/s | MB/s | recording process CPU (s) "
            "| whole tree CPU (s) | CPU µs per release (tree) | releases per CPU-second (tree) "
            "| peak RSS of the recording process (MB) | peak PSS of the tree (MB) | processes |"
        )
        say("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        runs = [(f"rate, --workers {w}", w) for w in ([] if args.no_inline else [0]) + args.workers]
        stages: list[str] = []
        memories: list[str] = []
        for name, workers in runs:
            rate = run_import(package, work, workers)
            seconds = rate["import_seconds"]
            say(_row(name, count, size, rate))
            stages += stage_rows(name, count, rate)
            memories += memory_rows(name, rate)
            assert rate["report"]["imported"] == count, rate["report"]
        floor_wall, floor_cpu = floor(package, args.order)
        package.unlink()
        say(
            f"| floor, same file (parse + RFC 8785 + SHA-256 + ocdsmerge, one process) | {count:,} | {size / 1e6:,.1f} |"
            f" {count / floor_wall:,.1f} | {floor_wall:,.0f} | | {count / floor_cpu:,.1f} | {count / floor_cpu:,.1f} |"
            f" {1e6 / floor_cpu:,.1f} | {floor_cpu:,.0f} | | | 1 |"
        )
        say()
        say(
            f"Import / floor: wall {count / seconds / floor_wall:.2f} (goal >= {GOAL_FLOOR_RATIO}); CPU (releases per "
            f"CPU-second of the whole tree over the floor's) {count / rate['tree_cpu'] / floor_cpu:.2f}. Goals: >= "
            f"{GOAL_RATE:,} releases/s, <= {GOAL_MEMORY_MB} MB for the whole tree."
        )
        say(f"Load average after: {Path('/proc/loadavg').read_text().split()[:3]}")
        say()
        say("CPU per stage (threads of the recording process and processes of the tree, from `/proc`):")
        say()
        say("| run: stage | CPU µs a release | of which system |")
        say("|---|---|---|")
        for row in stages:
            say(row)
        say()
        say("Memory of each process (`/proc/PID/smaps_rollup`) in the sample where the tree's PSS peaked:")
        say()
        say(MEMORY_HEAD)
        for row in memories:
            say(row)
        if args.gigabytes > 0:
            big = work / "big.json"
            count, size, later = write_package(big, size=int(args.gigabytes * 1e9), order=args.order)
            say()
            say(f"Memory run: {later:,} of {count:,} releases in a later batch than their tender's first.")
            say()
            say(f"Load average before the memory run: {Path('/proc/loadavg').read_text().split()[:3]}")
            memory = run_import(big, work, args.workers[-1])
            big.unlink()
            seconds = memory["import_seconds"]
            say()
            say(_row(f"memory, --workers {args.workers[-1]}", count, size, memory))
            say(f"Load average after the memory run: {Path('/proc/loadavg').read_text().split()[:3]}")
            say()
            say("| run: stage | CPU µs a release | of which system |")
            say("|---|---|---|")
            for row in stage_rows("memory", count, memory):
                say(row)
            say()
            say(MEMORY_HEAD)
            for row in memory_rows("memory", memory):
                say(row)
            assert memory["report"]["imported"] == count, memory["report"]
        if args.flag_tenders > 0:
            median, worst, counts = flag_counts_latency(args.flag_tenders, work)
            say()
            say(
                f"Red flags for a home page (`flag_counts` + `count_tenders`, {args.flag_tenders:,} tenders, SQLite): "
                f"median {median:.1f} ms, worst {worst:.1f} ms (goal < 50 ms); counts {counts}."
            )
        say()
        say(f"Where the time goes (each step alone, in-process, {args.sample:,} releases, CPU time):")
        say()
        say("| step | CPU µs per release |")
        say("|---|---|")
        for name, micros in phases(args.sample):
            say(f"| {name} | {micros:,.1f} |")
    if args.write is not None:
        args.write.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
