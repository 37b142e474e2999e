"""Rate limits shared by every server through Redis, and what happens when Redis goes away.

Real processes: a private ``redis-server`` on a free port (the shared one on 6379 is other
tests' too), two ``tenderproof serve`` processes standing for two machines on one database.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cluster import create_key, free_port, serve_api, stop

pytestmark = [pytest.mark.slow, pytest.mark.load]

ORIGIN = "tenderproof.test/rate-limits"
LIMIT = 6


@contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        stop(process)


def statuses(base: str, count: int) -> list[int]:
    return [httpx.get(f"{base}/api/v1/checkpoint", timeout=30).status_code for _ in range(count)]


def test_rate_limit_is_shared_by_servers_and_redis_down_counts_per_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tenderproof.db'}"
    create_key(url, origin=ORIGIN, name="migrate")  # the schema, before two servers start on it
    with ExitStack() as stack:
        redis, process = stack.enter_context(redis_server())
        env = {"TENDERPROOF_RATE_LIMIT": f"{LIMIT}/minute", "TENDERPROOF_RATE_LIMIT_STORAGE": redis}
        one, two = (
            stack.enter_context(serve_api(url, origin=ORIGIN, workers=2, log_file=tmp_path / f"{name}.log", env=env))
            for name in ("one", "two")
        )
        # One client, two machines (and two workers each): one count.
        answers = statuses(one.base, LIMIT // 2) + statuses(two.base, LIMIT // 2)
        assert answers == [200] * LIMIT
        refused = httpx.get(f"{two.base}/api/v1/checkpoint", timeout=30)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert statuses(one.base, 1) == [429]

        # Redis gone: nothing is refused for it, and each process still holds the limit on its own.
        stop(process)
        assert statuses(one.base, 1) == [200]
        assert 429 in statuses(one.base, 4 * LIMIT)  # 2 workers, each at most LIMIT
        logged = (tmp_path / "one.log").read_text()
        assert "the shared store redis://127.0.0.1" in logged and "counting in this process" in logged
