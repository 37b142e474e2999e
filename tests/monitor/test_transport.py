"""The monitor's own HTTP GETs (monitor.transport.Pool) against a real local server: keep-alive
connections reused per thread, a connection the server closed while idle asked again at once, and
the failures the monitor's retries count on (nothing listening, an answer cut short) raised."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.follow import Api, MonitorError
from monitor.transport import Pool
from tests.cluster import free_port


class _Server:
    """Answers ``GET /n`` with ``n`` bytes on keep-alive connections (``/n?close``: then closes
    it, unannounced); counts connections; ``cut`` answers announce the full length and send half;
    ``/429`` answers 429 with Retry-After."""

    def __init__(self) -> None:
        self.connections = 0
        self.cut = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_GET(self) -> None:
                if self.path == "/429":
                    self.send_response(429)
                    self.send_header("Retry-After", "0.1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                body = b"x" * int(path.strip("/"))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # "close": closed after the answer without saying so, as a server closes an idle one
                self.close_connection = server.cut or query == "close"
                self.wfile.write(body[: len(body) // 2] if server.cut else body)

            def log_message(self, *_: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"


@contextmanager
def _served() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.http.shutdown()
        server.http.server_close()


def test_reuses_one_connection_per_thread() -> None:
    pool = Pool(timeout=5)
    with _served() as server:
        answers = [pool.get(f"{server.url}/{n}") for n in (10, 70_000, 0)]
        assert [(a.status, len(a.body)) for a in answers] == [(200, 10), (200, 70_000), (200, 0)]
        assert server.connections == 1
        other = threading.Thread(target=lambda: pool.get(f"{server.url}/5"))
        other.start()
        other.join()
        assert server.connections == 2
        assert pool.get(f"{server.url}/429") == (429, "0.1", b"")


def test_a_connection_closed_while_idle_is_asked_again_at_once() -> None:
    pool = Pool(timeout=5)
    with _served() as server:
        assert pool.get(f"{server.url}/3?close").body == b"xxx"
        time.sleep(0.2)  # closed by the server meanwhile
        assert pool.get(f"{server.url}/4").body == b"xxxx"
        assert server.connections == 2


def test_raises_when_nothing_listens_and_when_an_answer_is_cut_short() -> None:
    pool = Pool(timeout=5)
    with pytest.raises(ConnectionRefusedError):
        pool.get(f"http://127.0.0.1:{free_port()}/1")
    with _served() as server:
        server.cut = True
        with pytest.raises(http.client.IncompleteRead):
            pool.get(f"{server.url}/1000")
        server.cut = False
        assert pool.get(f"{server.url}/1000").body == b"x" * 1000  # a new connection


def test_the_monitor_retries_over_it_and_names_the_last_failure() -> None:
    with _served() as server:
        server.cut = True
        api = Api(server.url, timeout=5)
        with pytest.raises(MonitorError, match=r"/1000: no usable answer after 6 tries \(IncompleteRead"):
            api._get("/1000", binary=True)
        server.cut = False
        assert api._get("/1000", {"a": 1}, binary=True) == b"x" * 1000
