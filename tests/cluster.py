"""A Tenderproof deployment's processes on one machine, as an operator runs them (docs/operations.md):
``tenderproof serve --workers N --no-anchoring``, ``tenderproof anchor --watch`` processes, and a
private PostgreSQL cluster that may be restarted at will. Shared by the load and fault tests
(tests/load/), the load test script (bench/load_test.py) and the API benchmark (bench/api_bench.py).

Everything binds 127.0.0.1 on free ports and lives in the caller's directories, so parallel test
workers (pytest-xdist) do not collide. Nothing here touches the shared PostgreSQL server.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(url: str, origin: str, *args: str) -> list[str]:
    """The ``tenderproof`` command line on database ``url`` and log ``origin``."""
    return [sys.executable, "-m", "cli", "--database-url", url, "--origin", origin, *args]


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}


def create_key(url: str, *, origin: str, name: str, role: str = "officer", env: Mapping[str, str] | None = None) -> str:
    """A new API key, from ``tenderproof keys create`` (which prints it as JSON)."""
    done = subprocess.run(
        cli(url, origin, "keys", "create", "--name", name, "--role", role),
        cwd=ROOT,
        env=environment(env),
        capture_output=True,
        check=True,
    )
    return str(json.loads(done.stdout.splitlines()[0])["key"])


def publish_tender(client: httpx.Client, ocid: str) -> httpx.Response:
    """``POST /api/v1/tenders``: a ``tender.published`` event open for bids until next year's end
    (``client`` carries an officer's key); raises for any answer but 201."""
    from tests.procurement.helpers import published

    now = datetime.now(UTC)
    period = {"startDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "endDate": f"{now.year + 1}-12-31T23:59:59Z"}
    body = {"ocid": ocid, "type": "tender.published", "payload": published(f"Lot {ocid}", tenderPeriod=period)}
    return _created(client.post("/api/v1/tenders", json=body))


def clarify(client: httpx.Client, ocid: str, n: int) -> httpx.Response:
    """``POST /api/v1/tenders/{ocid}/events``: clarification ``q<n>``; raises for any answer but 201."""
    enquiry = {"id": f"q{n}", "title": f"Question {n}", "answer": "See the amended specifications."}
    body = {"type": "tender.clarified", "payload": {"tender": {"id": "T-1", "enquiries": [enquiry]}}}
    return _created(client.post(f"/api/v1/tenders/{ocid}/events", json=body))


def _created(answer: httpx.Response) -> httpx.Response:
    if answer.status_code != 201:
        raise AssertionError(f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}")
    return answer


#: How long a server may take to start. A bound against one that never comes up, not a measure
#: of its speed: at a load average of 20+ (the suite's two xdist workers on two cores, with other
#: work) importing the application took 30 s (``python -X importtime -c "import api.app"``), in
#: the supervisor and again in each worker, so ``serve --workers 2`` answered ~70 s after it was
#: started, past the 60 s these waits used to allow.
STARTUP_TIMEOUT = 240.0
#: uvicorn's line when a server process (each worker of several) has run its startup and serves.
STARTED = b"Application startup complete"


def wait_until_serving(
    base: str,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
    since: int = 0,
    workers: int = 1,
    timeout: float = STARTUP_TIMEOUT,
) -> None:
    """Until the server (``process``, when one was started) answers ``base``/healthz and, with
    several ``workers`` and ``log_file`` (its output, from byte ``since``), each worker has logged
    :data:`STARTED`: the first worker to answer is no sign the others serve, and a connection the
    kernel hands to the socket of a worker still starting waits for it.

    Raises AssertionError when the process exits or nothing answers within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server at {base} exited with {process.returncode}")
        started = workers if log_file is None or workers == 1 else log_file.read_bytes()[since:].count(STARTED)
        try:
            if started >= workers and httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not come up within {timeout:.0f} s")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"resource_tracker" not in command


@dataclass(frozen=True)
class ApiServer:
    """A running ``tenderproof serve`` (uvicorn's supervisor and its worker processes)."""

    base: str
    process: subprocess.Popen[bytes]
    workers_wanted: int
    log_file: Path | None = None  # its output, from byte log_start
    log_start: int = 0

    def workers(self) -> list[int]:
        """The live worker processes' ids (the supervisor restarts a dead one); not the
        supervisor's other children, such as multiprocessing's resource tracker."""
        return [pid for pid in _children(self.process.pid) if _is_worker(pid)]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the supervisor and its live workers so far."""
        total = 0.0
        for pid in (self.process.pid, *_children(self.process.pid)):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def wait_until_up(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until /healthz answers and every worker has started (:func:`wait_until_serving`)."""
        wait_until_serving(
            self.base,
            process=self.process,
            log_file=self.log_file,
            since=self.log_start,
            workers=self.workers_wanted,
            timeout=timeout,
        )


@contextmanager
def serve_api(
    url: str,
    *,
    origin: str,
    workers: int,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = ("--no-anchoring",),
) -> Iterator[ApiServer]:
    """``tenderproof serve --workers N`` on ``url`` in a subprocess (output in ``log_file``) until
    the block exits; stopped with SIGTERM (SIGKILL after 30 s)."""
    port = free_port()
    command = cli(url, origin, "serve", "--workers", str(workers), "--port", str(port), *args)
    with log_file.open("ab") as output:
        start = output.tell()
        process = subprocess.Popen(command, cwd=ROOT, env=environment(env), stdout=output, stderr=subprocess.STDOUT)
        server = ApiServer(f"http://127.0.0.1:{port}", process, workers, log_file, start)
        try:
            server.wait_until_up()
            yield server
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` s."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class AnchorDaemon:
    """``tenderproof anchor --watch``: an anchoring-only process. Several may run; the chain's
    lease in the database lets one act at a time."""

    def __init__(self, url: str, *, origin: str, log_file: Path, env: Mapping[str, str] | None = None) -> None:
        self.command = cli(url, origin, "anchor", "--watch")
        self.env = environment(env)
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    def start(self) -> None:
        self._output = self.log_file.open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self._output, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no lease released, no transaction finished."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        if self._output is not None:
            self._output.close()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql/*/bin nor on PATH")
    return on_path


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary directory, trust authentication,
    a free port of 127.0.0.1), to be restarted by the fault test without touching the shared
    server. Run as the ``postgres`` user when this process is root (PostgreSQL refuses root)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tp-pg-", dir=directory))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_postgres, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
        log = str(self.directory / "server.log")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", action, *extra)

    def start(self) -> None:
        self._ctl("start")

    def clone_standby(self, primary: PrivatePostgres) -> None:
        """Make this cluster a hot standby of ``primary``: ``pg_basebackup -R`` (streaming
        replication, the standby's connection written into its configuration), not started."""
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            _pg_bin("pg_basebackup"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", "postgres", "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip

    def promote(self) -> None:
        """``pg_ctl promote``: a standby becomes a primary (docs/operations.md, failover)."""
        self._ctl("promote")

    def halt(self) -> None:
        """``pg_ctl stop -m immediate`` (a crash, for the server): the data directory stays."""
        self._ctl("stop", "-m", "immediate")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server comes back."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def private_postgres(directory: Path | None = None) -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres(directory)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def kill(pid: int) -> bool:
    """SIGKILL ``pid``; False if it was already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
