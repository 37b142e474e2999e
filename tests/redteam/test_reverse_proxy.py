"""Red team, slow clients behind a reverse proxy (issue 16): Debian's nginx, started by the test
with the very block docs/operations.md documents (TLS left out), in front of a real `tenderproof
serve`. Slowloris heads, slow bodies and more requests from one address than `limit_conn`
allows: the proxy holds or refuses them, and every other client is answered throughout."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.servers import cli_server, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
#: The documented timeouts, shortened for the test (the rest of the block as documented).
TIMEOUT = 3


def documented_block() -> str:
    """The nginx block of docs/operations.md ("Behind a reverse proxy")."""
    doc = (ROOT / "docs" / "operations.md").read_text()
    section = doc.split("## Behind a reverse proxy, with TLS", 1)[1]
    found = re.search(r"```nginx\n(.*?)```", section, re.DOTALL)
    assert found is not None, "docs/operations.md: the nginx block is gone"
    return found.group(1)


def _config(block: str, *, listen: int, upstream: int, tmp: Path) -> str:
    """The documented block made runnable here: plain HTTP on 127.0.0.1, this test's upstream and
    temporary files, the 10 s timeouts shortened to ``TIMEOUT``."""
    block = re.sub(r"listen 443 ssl http2;", f"listen 127.0.0.1:{listen};", block)
    block = "\n".join(line for line in block.splitlines() if "ssl_certificate" not in line)
    block = re.sub(
        r"upstream tenderproof \{[^}]*\}",
        f"upstream tenderproof {{ server 127.0.0.1:{upstream}; keepalive 64; }}",
        block,
    )
    block = re.sub(r"(client_(?:header|body)_timeout) 10s;", rf"\1 {TIMEOUT}s;", block)
    temp = "\n".join(f"{kind}_temp_path {tmp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
access_log {tmp / "access.log"};
{temp}
{block}
}}
"""


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client, Path]]:
    """(nginx's base URL, a client of the API behind it directly, nginx's directory)."""
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    tmp = tmp_path_factory.mktemp("proxy")
    env = {"TENDERPROOF_TRUSTED_PROXIES": '["127.0.0.1"]'}
    with cli_server(
        f"sqlite:///{tmp / 'tenderproof.sqlite3'}", "--no-anchoring", log_file=tmp / "serve.log", env=env
    ) as api:
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(_config(documented_block(), listen=port, upstream=api.base_url.port or 0, tmp=tmp))
        subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(tmp)], check=True, capture_output=True)
        nginx = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (tmp / "error.log").read_text()
                time.sleep(0.1)
            yield base, api, tmp
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)


def _status(conn: socket.socket) -> int | None:
    """The answer's status on ``conn``; None if the proxy closed it without one (nginx drops a
    client whose head timed out) or nothing came within its timeout."""
    try:
        head = conn.recv(65536)
    except (TimeoutError, ConnectionResetError):
        return None
    return int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None


def _closed(conn: socket.socket) -> bool:
    """Whether the proxy closed ``conn`` without an answer (within its timeout)."""
    try:
        return conn.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def tmp_of(proxied: tuple[str, httpx.Client, Path]) -> Path:
    return proxied[2]


def _others_are_served(base: str) -> None:
    """Another client (another address: 127.0.0.2) gets the API, the explorer and a ready /readyz."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=base, transport=transport, timeout=10) as other:
        for path in ("/api/v1/checkpoint", "/api/v1/tenders", "/", "/tenders"):
            assert other.get(path).status_code == 200, path
        ready = other.get("/readyz")
        assert ready.status_code == 200, ready.text


def test_slowloris_heads_are_dropped_by_the_proxy(proxied: tuple[str, httpx.Client, Path]) -> None:
    base = proxied[0]
    port = int(base.rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port), timeout=0.5) for _ in range(60)]
    try:
        for conn in slow:
            conn.sendall(b"GET /api/v1/checkpoint HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):
            time.sleep(0.5)
            for conn in slow:
                conn.sendall(b"X")
        _others_are_served(base)
        time.sleep(TIMEOUT)
        for conn in slow:
            conn.settimeout(3)
        # Dropped by the proxy after client_header_timeout: closed, no answer, nothing reached the API.
        assert [_closed(conn) for conn in slow] == [True] * len(slow)
    finally:
        for conn in slow:
            conn.close()
    _others_are_served(base)


def test_slow_bodies_and_one_address_beyond_limit_conn(proxied: tuple[str, httpx.Client, Path]) -> None:
    """70 requests from one address announcing a 100,000-byte body and sending nothing: the proxy
    buffers bodies (the API sees none of them), serves at most `limit_conn` (32) of them at once
    and refuses the rest with 503 at once; after client_body_timeout the waiting ones get 408.
    Others are answered throughout, and the API behind keeps every slot free."""
    base, api = proxied[0], proxied[1]
    port = int(base.rsplit(":", 1)[1])
    slow = []
    for _ in range(70):
        conn = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        conn.sendall(
            b"POST /api/v1/tenders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        slow.append(conn)
    try:
        time.sleep(0.5)
        _others_are_served(base)
        capacity = api.get("/readyz").json()["checks"][-1]
        assert capacity == {"name": "capacity", "ok": True, "detail": None}  # the API holds nothing
        for conn in slow:
            conn.settimeout(0.2)
        statuses = [_status(conn) for conn in slow]
        assert statuses.count(503) == 70 - 32, statuses  # limit_conn perip 32
        assert statuses.count(None) == 32  # ... the others wait for their bodies
        time.sleep(TIMEOUT)
        waiting = [conn for conn, status in zip(slow, statuses, strict=True) if status is None]
        for conn in waiting:
            conn.settimeout(5)
        # Dropped after client_body_timeout (nginx closes, and logs 408): nothing reached the API.
        assert [_closed(conn) for conn in waiting] == [True] * 32
        logged = (tmp_of(proxied) / "access.log").read_text()
        assert len(re.findall(r'"POST /api/v1/tenders HTTP/1.1" 408 ', logged)) >= 32, logged[-2000:]
    finally:
        for conn in slow:
            conn.close()
    _others_are_served(base)
