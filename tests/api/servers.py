"""Real uvicorn servers on 127.0.0.1 for the tests: in a thread (an application object) or in a
subprocess (the `tenderproof serve` command line)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import UVICORN_OPTIONS
from tests.cluster import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def threaded_server(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn in a thread of this process; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def cli_server(
    database_url: str, *args: str, log_file: Path, env: dict[str, str] | None = None
) -> Iterator[httpx.Client]:
    """``tenderproof serve`` in a subprocess, its output in ``log_file``; yields a client of it,
    stops it with SIGTERM."""
    port = free_port()
    command = [sys.executable, "-m", "cli", "--database-url", database_url, "serve", "--port", str(port), *args]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with log_file.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
        try:
            wait_until_serving(base, process=process, log_file=log_file, workers=workers)
            with httpx.Client(base_url=base, timeout=30) as client:
                yield client
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
