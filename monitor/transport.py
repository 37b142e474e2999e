"""The monitor's HTTP GETs over the standard library's ``http.client``: one keep-alive connection
per thread and host, no redirects followed, the body read whole.

Why not httpx (which the rest of the project uses): a catch-up from tiles makes four requests per
256 entries, ~50 KB each, and httpx's layers (request and URL models, h11, the response's
decoders) cost ~1.1 ms of CPU per such answer where ``http.client`` costs ~0.4 ms: 16 against 6 µs
per entry, the largest single cost of a monitor after its own checks (bench/RESULTS-monitor.md).
"""

from __future__ import annotations

import http.client
import ssl
import threading
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit

#: A reused keep-alive connection the server closed meanwhile fails with one of these before any
#: answer: asked again at once on a new connection (the request is a GET).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Answer(NamedTuple):
    status: int
    #: The ``Retry-After`` header, if any.
    retry_after: str | None
    body: bytes


class Pool:
    """GETs on keep-alive connections, one per thread and ``scheme://host:port``. Raises what
    ``http.client`` raises (``OSError``, ``ConnectionRefusedError`` when nothing listens,
    ``http.client.HTTPException``, ``IncompleteRead`` for an answer cut short); the connection is
    then closed, and the next GET opens a new one."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._tls: ssl.SSLContext | None = None

    def _connection(self, parts: SplitResult) -> http.client.HTTPConnection:
        held: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("held", {})
        conn = held.get((parts.scheme, parts.netloc))
        if conn is None:
            if parts.scheme == "https":
                if self._tls is None:
                    self._tls = ssl.create_default_context()
                conn = http.client.HTTPSConnection(
                    parts.hostname or "", parts.port, timeout=self.timeout, context=self._tls
                )
            elif parts.scheme == "http":
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)
            else:
                raise ValueError(f"{parts.geturl()}: not an http or https URL")
            held[(parts.scheme, parts.netloc)] = conn
        return conn

    def get(self, url: str) -> Answer:
        """The answer to ``GET url``, whatever its status."""
        parts = urlsplit(url)
        conn = self._connection(parts)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        reused = conn.sock is not None
        try:
            return self._ask(conn, target)
        except _STALE:
            if not reused:
                raise
            return self._ask(conn, target)  # the server closed it while idle: once more, anew

    @staticmethod
    def _ask(conn: http.client.HTTPConnection, target: str) -> Answer:
        try:
            conn.request("GET", target, headers={"User-Agent": "tenderproof-monitor"})
            answer = conn.getresponse()
            body = answer.read()
        except BaseException:
            conn.close()
            raise
        return Answer(answer.status, answer.getheader("retry-after"), body)
