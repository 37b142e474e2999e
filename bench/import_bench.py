"""OCDS import: rate (releases/s, MB/s) of a large release package, and peak memory on a 1 GB file.

    python bench/import_bench.py                         # 100,000 releases on SQLite, then 1 GB
    python bench/import_bench.py --releases 20000 --gigabytes 0.1 --write bench/RESULTS-import.md

The data are the demo's generated tenders (demo.ocds.releases: planning to termination,
~600 bytes a release), written as one release package streamed to a temporary file. Each import
runs as ``tenderproof import --json FILE`` in a child process (its main, then its peak RSS) on a fresh SQLite database, so the
figures include everything (streamed parsing, schema validation, RFC 8785 and hashing, the
append, the projection and red flags), and the child's peak resident memory is its own
(``getrusage(RUSAGE_SELF)`` at its end). A profile of where the time goes is measured in-process on a
sample, phase by phase.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
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


def write_package(path: Path, *, releases: int | None = None, size: int | None = None) -> tuple[int, int]:
    """Write a release package of ``releases`` releases (or of at least ``size`` bytes); return
    (releases written, bytes). Streamed: the file is never in memory."""
    count = 0
    tenders = 10_000_000  # enough distinct tenders for any size; dates spread over them
    with path.open("w", encoding="utf-8") as out:
        out.write('{"uri":"https://bench.example/releases.json","version":"1.1",')
        out.write('"publishedDate":"2026-11-23T00:00:00Z","publisher":{"name":"bench"},"releases":[')
        for release in demo_ocds.releases(tenders, seed=7):
            if (releases is not None and count >= releases) or (size is not None and out.tell() >= size):
                break
            out.write(("," if count else "") + json.dumps(release, separators=(",", ":"), ensure_ascii=False))
            count += 1
        out.write("]}")
    return count, path.stat().st_size


#: The child: the command line's main, then its own peak resident set size and CPU seconds on stderr.
#: A key for the dedupe digest step (a deployment draws its own: ledger.store.keys).
_BENCH_KEY = bytes(range(32))
_CHILD = (
    "import resource, sys\n"
    "from cli import main\n"
    "code = main(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print('MAXRSS', usage.ru_maxrss, 'CPU', usage.ru_utime + usage.ru_stime, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _tree(root: int) -> list[int]:
    """``root`` and every process descended from it (from ``/proc``)."""
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
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _sample(pid: int) -> tuple[float, int, int] | None:
    """CPU seconds (user + system), PSS and RSS in bytes of one process (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    memory = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in rollup.splitlines()[1:] if ":" in line}
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, memory.get("Pss", 0), memory.get("Rss", 0)


class TreeSampler:
    """Samples a process tree every ``every`` seconds from ``/proc``: the peak of the PSS (and RSS)
    summed over every live process of the tree, and the CPU time of each process as last seen
    (a process's CPU after its last sample is not counted: ``every`` bounds the loss)."""

    def __init__(self, root: int, every: float = 0.25) -> None:
        import threading

        self.root, self.every = root, every
        self.peak_pss = self.peak_rss = 0
        self.cpu: dict[int, float] = {}
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pss = rss = alive = 0
            for pid in _tree(self.root):
                got = _sample(pid)
                if got is None:
                    continue
                self.cpu[pid] = got[0]
                pss, rss, alive = pss + got[1], rss + got[2], alive + 1
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, alive)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_import(path: Path, workdir: Path, workers: int | None = None) -> dict[str, Any]:
    """``tenderproof import --json`` in a child on a fresh SQLite file; its report, time, peak RSS,
    and the whole process tree's (the child, its fork server and worker processes) CPU time and
    peak PSS, sampled from ``/proc``."""
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
    return {
        "report": report,
        "seconds": elapsed,
        "import_seconds": report["seconds"],
        # ru_maxrss is in KiB on Linux.
        "peak_mb": int(stderr.rsplit("MAXRSS ", 1)[1].split()[0]) / 1024,
        # the recording process's own CPU (the worker processes' is not in it)
        "cpu": cpu,
        # every process of the tree: the recording process's own figure, the others' last samples
        "tree_cpu": cpu + sum(v for pid, v in sampler.cpu.items() if pid != child.pid),
        "tree_pss_mb": sampler.peak_pss / 2**20,
        "tree_rss_mb": sampler.peak_rss / 2**20,
        "processes": sampler.peak_processes,
    }


def _row(name: str, count: int, size: int, run: dict[str, Any]) -> str:
    seconds = run["import_seconds"]
    return (
        f"| {name} | {count:,} | {size / 1e6:,.1f} | {seconds:,.1f} | {count / seconds:,.0f} | "
        f"{size / 1e6 / seconds:,.2f} | {run['cpu']:,.1f} | {run['tree_cpu']:,.1f} | {run['tree_cpu'] * 1e6 / count:,.1f} | "
        f"{count / run['tree_cpu']:,.0f} | {run['peak_mb']:,.0f} | {run['tree_pss_mb']:,.0f} | {run['processes']} |"
    )


def floor(path: Path) -> tuple[float, float]:
    """The floor of an import of ``path``, in releases/s of wall and of CPU time: what any importer
    of it must do, measured in this process (single process) on the same file: stream-parse it
    (ijson, yajl2_c), RFC 8785 of each release the fastest way the project has (orjson first:
    ``parsed=True``, as the import does) and its SHA-256, and ocdsmerge's compiled release of each
    tender from its releases (the file holds them tender after tender: each tender is merged when
    the next begins, in bounded memory)."""
    import hashlib

    started, cpu = time.perf_counter(), time.process_time()
    merger = ocds.merger()
    tender: list[dict[str, Any]] = []
    count = 0
    with path.open("rb") as stream:
        for release in ijson.items(stream, "releases.item", use_float=True):
            hashlib.sha256(canonical_json_bytes(release, parsed=True)).digest()
            if tender and tender[0]["ocid"] != release["ocid"]:
                merger.create_compiled_release(tender)
                tender = []
            tender.append(release)
            count += 1
    if tender:
        merger.create_compiled_release(tender)
    return count / (time.perf_counter() - started), count / (time.process_time() - cpu)


def phases(sample: int) -> list[tuple[str, float]]:
    """CPU microseconds per release of each step of the import, measured alone on ``sample`` releases."""
    releases = list(demo_ocds.releases(sample // 5 + 1, seed=3))[:sample]
    data = json.dumps({"releases": releases}).encode()
    validator = importer._validator()
    by_tender: dict[str, list[dict[str, Any]]] = {}
    for release in releases:
        by_tender.setdefault(release["ocid"], []).append(release)
    merger = ocds.merger()
    compiled = {ocid: merger.create_compiled_release(rs) for ocid, rs in by_tender.items()}
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
        ("compiled release (ocdsmerge)", lambda: [merger.create_compiled_release(rs) for rs in by_tender.values()]),
        (
            "projection from the compiled release",
            lambda: [importer.state_of_compiled(o, compiled[o], by_tender[o]) for o in by_tender],
        ),
        ("red flags and parties (rows)", lambda: [redflags.rows_of(o, None, compiled[o]) for o in by_tender]),
    ]
    out = []
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
    parser.add_argument("--workers", type=int, default=1, help="checking processes in the second rate run")
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
        count, size = write_package(package, releases=args.releases)
        say(f"Load average before: {Path('/proc/loadavg').read_text().split()[:3]}")
        say()
        say(
            "| run | releases | file (MB) | import (s) | releases/s | MB/s | recording process CPU (s) "
            "| whole tree CPU (s) | CPU µs per release (tree) | releases per CPU-second (tree) "
            "| peak RSS of the recording process (MB) | peak PSS of the tree (MB) | processes |"
        )
        say("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        runs = [(f"rate, --workers {w}", w) for w in (0, args.workers)]
        for name, workers in runs:
            rate = run_import(package, work, workers)
            seconds = rate["import_seconds"]
            say(_row(name, count, size, rate))
            assert rate["report"]["imported"] == count, rate["report"]
        floor_wall, floor_cpu = floor(package)
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
        if args.gigabytes > 0:
            big = work / "big.json"
            count, size = write_package(big, size=int(args.gigabytes * 1e9))
            memory = run_import(big, work, args.workers)
            big.unlink()
            seconds = memory["import_seconds"]
            say(_row(f"memory, --workers {args.workers}", count, size, memory))
            say(f"Load average after the memory run: {Path('/proc/loadavg').read_text().split()[:3]}")
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
