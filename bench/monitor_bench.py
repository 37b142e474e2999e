"""Monitor catch-up and witness cosigning, each with a floor measured in the same run.

- Monitor: a log of ``--entries`` entries (SQLite, heads commitment every 10,000) served by
  ``tenderproof serve``; ``tenderproof monitor --once`` catches up from an empty database, from
  the static tiles (``--source tiles``, the fast path) and from the JSON API (``--source api``).
  Floors: the same requests made by a bare client with the same parallelism (no checks, no
  storage): the tiles' entry bundles, level-0 tiles and payload bundles; the API's pages
  JSON-parsed. CPU per entry of the monitor (all its threads) and of the server, beside the
  floor's. Memory: the monitor's peak RSS at the end vs when a fifth of the run's time had passed
  (flat: ratio ~1). ``--workdir`` keeps the grown log for the next run.
- Witness: ``tenderproof witness serve``; ``--cosign`` add-checkpoint requests, each with a
  consistency proof from the previous one, over one keep-alive connection. Floor: GET /healthz
  on the same connection plus a 4 KiB write and fdatasync on the same disk (a cosignature is
  answered only once the witness's new state is durable).

Writes bench/RESULTS-monitor.md. Usage: python bench/monitor_bench.py [--entries N] [--cosign N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.core.checkpoint import Checkpoint  # noqa: E402
from ledger.core.cosignature import AddCheckpoint, Cosigner  # noqa: E402
from ledger.core.note import Signer  # noqa: E402
from ledger.core.tiles import tile_path  # noqa: E402
from ledger.log import Log  # noqa: E402
from ledger.submission import Submission  # noqa: E402
from monitor.transport import Pool  # noqa: E402
from tests.cluster import cli, environment, free_port, stop  # noqa: E402
from tests.recording import append_many  # noqa: E402

ORIGIN = "bench.example/log"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
#: Requests in flight, for the monitor (--parallel) and its floors alike.
PARALLEL = 4


def grow(log: Log, upto: int) -> None:
    size = log.reader.tree_head().size
    while size < upto:
        n = min(5000, upto - size)
        items = [
            Submission(
                ocid=f"ocds-abc123-{(size + i) % 1000}", type="tender.amended", payload={"i": size + i, "x": "y" * 300}
            )
            for i in range(n)
        ]
        append_many(log, items, now=T0)
        log.integrate_all(now=T0, commit_heads=(size // 10_000) != ((size + n) // 10_000))
        size = log.reader.tree_head().size


def serve(url: str, env: dict[str, str], log_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    out = log_file.open("ab")
    process = subprocess.Popen(cli(url, ORIGIN, "serve", "--port", str(port), "--no-anchoring"), cwd=ROOT,
                               env=environment(env), stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_up(base, process)
    return process, base


def wait_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not come up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    seconds: float
    cpu: float  # the monitor process's user + system CPU seconds (all its threads)
    peak_mib: float  # its peak RSS (VmHWM) at the end
    early_mib: float  # its peak RSS when a fifth of the run's time had passed


def monitor_run(base: str, vkey: str, db: Path, source: str) -> Run:
    """One ``monitor --once`` catch-up from an empty database: its time, CPU and peak RSS (the
    monitor process's own VmHWM, sampled until it exits: also when a fifth of the time had passed)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "cli", "monitor", base, "--db", f"sqlite:///{db}", "--log-key",
                                vkey, "--once", "--source", source, "--parallel", str(PARALLEL)], cwd=ROOT,
                               env=environment(), stdout=subprocess.PIPE,
                               stderr=(db.parent / f"{db.stem}.err").open("w"))  # fmt: skip
    samples: list[tuple[float, int]] = []
    while True:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            hwm = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
            samples.append((time.perf_counter() - start, hwm))
        except (OSError, StopIteration):
            pass
        # Reaped here (not by poll()) to read the child's own resource usage.
        pid, code, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(code)
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    assert process.returncode == 0, (db.parent / f"{db.stem}.err").read_text()[-3000:]
    early = max((kib for t, kib in samples if t <= elapsed / 5), default=0)
    peak = max((kib for _, kib in samples), default=0)
    return Run(elapsed, usage.ru_utime + usage.ru_stime, peak / 1024, early / 1024)


def floor_fetch(base: str, size: int) -> float:
    """Seconds for a bare client to fetch and JSON-parse the API's pages, PARALLEL at a time."""
    start = time.perf_counter()
    client = Pool(timeout=60)  # the monitor's own HTTP client
    with ThreadPoolExecutor(PARALLEL) as pool:

        def page(at: int) -> None:
            json.loads(client.get(f"{base}/api/v1/entries?start={at}&end={min(size, at + 1000)}").body)

        list(pool.map(page, range(0, size, 1000)))
    return time.perf_counter() - start


def floor_tiles(base: str, size: int) -> float:
    """Seconds for a bare client to fetch every entry bundle, level-0 tile and payload bundle (and
    disclosure bundle where the entries are envelope v2), PARALLEL bundles at a time (the
    monitor's own requests, with its own HTTP client, monitor.transport; nothing checked, nothing
    kept)."""
    start = time.perf_counter()
    client = Pool(timeout=60)
    with ThreadPoolExecutor(PARALLEL) as pool:

        def bundle(n: int) -> None:
            width = min(256, size - n * 256)
            path = tile_path(n) + ("" if width == 256 else f".p/{width}")
            entries = client.get(f"{base}/tile/entries/{path}")
            assert entries.status == 200
            urls = [f"/tile/0/{path}", f"/payloads/{path}"]
            if b'"v":2}' in entries.body:  # as the monitor: envelope v2 entries need their disclosures
                urls.append(f"/disclosures/{path}")
            for url in urls:
                assert client.get(f"{base}{url}").status == 200

        list(pool.map(bundle, range((size + 255) // 256)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--cosign", type=int, default=500)
    parser.add_argument("--api-entries", type=int, default=100_000, help="Run the API source up to this size.")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="Keep the log (and its signing key) here and reuse it: a 1,000,000-entry log takes long to grow.",
    )
    parser.add_argument("--grow-only", action="store_true", help="Only grow the log in --workdir to --entries.")
    args = parser.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        keep = args.workdir or tmp
        keep.mkdir(parents=True, exist_ok=True)
        key_file = keep / "log.key"
        if not key_file.exists():
            key_file.write_text(Signer(ORIGIN, secrets.token_bytes(32)).skey())
        signer = Signer.parse(key_file.read_text())
        url = f"sqlite:///{keep / 'log.sqlite3'}"
        if args.grow_only:
            log = Log.open(url, origin=ORIGIN)
            grow(log, args.entries)
            log.close()
            return
        log = Log.open(url, origin=ORIGIN)
        env = {"TENDERPROOF_LOG_SIGNING_KEY": signer.skey(), "TENDERPROOF_RATE_LIMIT": ""}  # a mirror's allowance
        grow(log, args.entries)
        size = log.reader.tree_head().size
        process, base = serve(url, env, tmp / "server.log")
        try:
            load = [Path("/proc/loadavg").read_text().strip()]
            server_cpu = cpu_seconds(process.pid)
            floor_cpu = time.process_time()
            floor_s = floor_tiles(base, size)
            floor_cpu = time.process_time() - floor_cpu
            floor_server = cpu_seconds(process.pid) - server_cpu
            load.append(Path("/proc/loadavg").read_text().strip())
            server_cpu = cpu_seconds(process.pid)
            mon = monitor_run(base, str(signer.verifier), tmp / "m2.sqlite3", "tiles")
            mon_server = cpu_seconds(process.pid) - server_cpu
            load.append(Path("/proc/loadavg").read_text().strip())
            api_size = min(size, args.api_entries)  # the slow path, on a prefix: the rate is flat
            api_floor_s = floor_fetch(base, api_size)
            run_api = args.api_entries >= size
            api_s = monitor_run(base, str(signer.verifier), tmp / "m3.sqlite3", "api").seconds if run_api else 0.0
        finally:
            stop(process)
        rate, floor_rate = size / mon.seconds, size / floor_s
        us = 1e6 / size
        lines += [
            f"monitor catch-up from tiles (--parallel {PARALLEL}): {size:,} entries in {mon.seconds:.1f} s = "
            f"{rate:,.0f} entries/s (goal >= 20,000)",
            f"floor (the same bundle and tile requests, nothing checked or kept): {floor_rate:,.0f} entries/s; "
            f"monitor/floor = {rate / floor_rate:.2f}",
            f"CPU per entry: monitor {mon.cpu * us:.1f} us (= {size / mon.cpu:,.0f} entries per CPU-second) + server "
            f"{mon_server * us:.1f} us; floor: client {floor_cpu * us:.1f} us + server {floor_server * us:.1f} us",
            f"peak RSS: {mon.peak_mib:.0f} MiB at the end vs {mon.early_mib:.0f} MiB a fifth of the way "
            f"(ratio {mon.peak_mib / max(mon.early_mib, 1):.2f}; flat = ~1)",
            f"load average before the floor / before the monitor / after: {' / '.join(load)}",
        ]
        api_floor = api_size / api_floor_s
        if api_s:
            lines.append(
                f"monitor catch-up from the JSON API (--parallel {PARALLEL}): {size / api_s:,.0f} entries/s; "
                f"floor (pages fetched + JSON-parsed): {api_floor:,.0f} entries/s; ratio {size / api_s / api_floor:.2f}"
            )
        else:
            lines.append(
                f"JSON API floor (pages fetched + JSON-parsed, first {api_size:,} entries): {api_floor:,.0f} entries/s "
                "(the monitor's API source is not run at this size)"
            )

        # Witness co-signing latency.
        cosigner = Cosigner("bench.example/w1", secrets.token_bytes(32))
        (tmp / "w.key").write_text(cosigner.skey())
        port = free_port()
        witness = subprocess.Popen([sys.executable, "-m", "cli", "witness", "serve", "--db", f"sqlite:///{tmp / 'w.sqlite3'}",
                                    "--key-file", str(tmp / "w.key"), "--log", str(signer.verifier), "--port", str(port)],
                                   cwd=ROOT, env=environment())  # fmt: skip
        wbase = f"http://127.0.0.1:{port}"
        try:
            wait_up(wbase, witness)
            step = max(1, size // (args.cosign + 1))
            sizes = [step * (i + 1) for i in range(args.cosign)]
            bodies, old = [], 0
            for s in sizes:
                cp = Checkpoint(origin=ORIGIN, size=s, root=log.reader.root_at(s))
                proof = log.reader.consistency_proof(old, s) if old else []
                bodies.append(AddCheckpoint(old, tuple(proof), signer.sign(cp.to_text())).to_text())
                old = s
            times, floors, syncs = [], [], []
            # The bare work of a durable answer: a 4 KiB write and fdatasync on the same disk.
            fd = os.open(tmp / "fsync.bin", os.O_RDWR | os.O_CREAT)
            witness_cpu = cpu_seconds(witness.pid)
            with httpx.Client(timeout=30) as client:
                for body in bodies:
                    t = time.perf_counter()
                    answer = client.post(f"{wbase}/add-checkpoint", content=body)
                    times.append((time.perf_counter() - t) * 1000)
                    assert answer.status_code == 200, answer.text
                    t = time.perf_counter()
                    client.get(f"{wbase}/healthz")
                    floors.append((time.perf_counter() - t) * 1000)
                    t = time.perf_counter()
                    os.pwrite(fd, secrets.token_bytes(4096), 0)
                    os.fdatasync(fd)
                    syncs.append((time.perf_counter() - t) * 1000)
            witness_cpu = cpu_seconds(witness.pid) - witness_cpu
            os.close(fd)
        finally:
            stop(witness)

        def p95_of(values: list[float]) -> float:
            return statistics.quantiles(values, n=20)[18]

        both = [f + s for f, s in zip(floors, syncs, strict=True)]
        p95, f95 = p95_of(times), p95_of(both)
        lines += [
            f"witness cosigning: {len(times)} add-checkpoint, median {statistics.median(times):.2f} ms, "
            f"p95 {p95:.2f} ms (goal <= 20); witness CPU {witness_cpu * 1000 / len(times):.2f} ms per request "
            "(healthz included)",
            f"floor: GET /healthz median {statistics.median(floors):.2f} ms, p95 {p95_of(floors):.2f} ms; 4 KiB "
            f"fdatasync median {statistics.median(syncs):.2f} ms, p95 {p95_of(syncs):.2f} ms; both (the bare work of a "
            f"durable answer) p95 {f95:.2f} ms; p95 ratio {p95 / f95:.1f}",
            f"load average after: {Path('/proc/loadavg').read_text().strip()}",
        ]
        log.close()
    text = "\n".join(lines)
    print(text)
    # The new round on top, the earlier ones kept below it.
    results = ROOT / "bench" / "RESULTS-monitor.md"
    title = "# Monitor and witness benchmark (`bench/monitor_bench.py`)\n\n"
    earlier = results.read_text().removeprefix(title) if results.exists() else ""
    results.write_text(
        f"{title}## Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        "On the project's 2-core shared VM "
        f"(`--entries {args.entries} --cosign {args.cosign}`; SQLite server and monitor database; the server's\n"
        "per-client rate limit off, as an operator would allow a known mirror: at the default 120/minute a\n"
        f"monitor is held to ~2,000 entries/s and waits out 429s).\n\n```\n{text}\n```\n\n{earlier}"
    )


if __name__ == "__main__":
    main()
