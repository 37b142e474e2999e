"""How ``tenderproof serve`` runs uvicorn: its HTTP/1.1 protocol with a **header timeout**.

uvicorn times idle keep-alive connections (``timeout_keep_alive``) but not a request head that
trickles in byte by byte (a slowloris): its protocols cancel the keep-alive timer on the first
byte and then wait for the rest for ever. :class:`HeaderTimeoutProtocol` gives a client
``header_timeout`` seconds, from the connection (or the first byte of its next request on a
kept-alive connection) to a complete head, then answers 408 and closes. The body's own deadline
is the application's (:class:`api.middleware.BodyFirstMiddleware`).

The protocol is uvicorn's httptools one (llhttp, in C): uvicorn's h11 one parses in Python, a
large part of the event loop's time per write. llhttp refuses a request carrying both
``Content-Length`` and ``Transfer-Encoding`` while parsing, before the application sees it: it
is answered here with the JSON refusal :class:`api.middleware.ProtocolGuardMiddleware` gives
(``ambiguous_length``); other unparseable requests get uvicorn's plain 400 and are closed, as
before.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from typing import Any

import httptools
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from settings import Settings

_LOG = logging.getLogger("uvicorn.error")

#: The answer to a client whose head did not arrive in time (then the connection is closed).
_BODY = b'{"error":{"code":"request_timeout","message":"headers: not received in time","field":"headers"}}'
TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


#: llhttp's refusal of a request with both lengths, answered as ProtocolGuardMiddleware would.
_AMBIGUOUS = (
    b'{"error":{"code":"ambiguous_length","message":"headers: both Content-Length and Transfer-Encoding given;'
    b' send one","field":"header.Transfer-Encoding"}}'
)
AMBIGUOUS_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_AMBIGUOUS), _AMBIGUOUS)
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request head
    (``config.header_timeout`` seconds, default 10)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout: float = getattr(config, "header_timeout", 10.0)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._head_deadline is None and self._idle():
            self._arm()  # the first bytes of a next request's head: timed from now
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if "Transfer-Encoding" in str(exc) and "Content-Length" in str(exc):
                self._disarm()
                self.transport.write(AMBIGUOUS_ANSWER)
                self.transport.close()
                return
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_headers_complete(self) -> None:
        self._disarm()  # the head is in: the body (if any) is the application's to time
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before and self.scope["method"] != "HEAD":  # HEAD: no body write to join
            self.cycle.transport = HeadWithBody(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _idle(self) -> bool:
        """No request being answered: bytes now are a new head."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # still answering the previous request: its next head is not late yet
        self.transport.write(TIMEOUT_ANSWER)
        self.transport.close()


class HeadWithBody(asyncio.Transport):
    """One response's view of its connection's transport: the response's head (uvicorn's first
    write of the response) is kept back and written with the next write, its body's first part (for
    any response but HEAD's, uvicorn writes each body message, an empty one too); the interim
    ``100 Continue`` passes at once, and closing writes a head still kept back first. The same bytes
    in the same order as uvicorn's own writes: two sends a response become one."""

    __slots__ = ("_head", "_joined", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._head: bytes | None = None
        self._joined = False  # the head went out: every write passes from now on

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._joined:
            self._transport.write(data)
        elif self._head is not None:
            self._joined = True
            self._transport.write(self._head + data)
            self._head = None
        elif bytes(data[:13]) == b"HTTP/1.1 100 ":  # 100 Continue: the client waits for it to send the body
            self._transport.write(data)
        else:
            self._head = bytes(data)

    def close(self) -> None:
        if self._head is not None:  # a response started and never finished: its head, as uvicorn sent it
            self._joined = True
            self._transport.write(self._head)
            self._head = None
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


#: The cyclic garbage collector's first threshold in a serving process (Python's default: 700),
#: set by :func:`freeze_heap`. A write request allocates its containers (parsed body, models,
#: envelopes, rows) and frees nearly all of them by their reference counts when it ends; at 700
#: the collector ran every ~700 of them, walking the request's live objects again and again:
#: ~30-40 µs of a bulk event's ~230 (15-20 %) with the startup heap frozen, measured in-process
#: (bench/RESULTS-writes.md, round 10). At this threshold a bulk request of 500 events sets off
#: none; only garbage in reference cycles, which requests rarely make, waits longer to be freed.
#: The importer collects as seldom while it runs (:data:`ledger.procurement.importer.GC_THRESHOLD`).
SERVER_GC_THRESHOLD = 100_000


def freeze_heap() -> None:
    """Leave what a server process has built before serving (modules, the application, its
    schemas and statements) out of the garbage collector's scans from now on (``gc.freeze``),
    after collecting what is already garbage, and collect seldom from then on
    (:data:`SERVER_GC_THRESHOLD`).

    A full collection scans every object tracked; in a worker that is a million or so objects
    built at startup and never freed, scanned again each time the objects a request allocates
    (a bulk request of 1,000 events makes a few hundred thousand) set off a full collection:
    ~100 ms a time, 35-40 % of the server's CPU for bulk writes (bench/RESULTS-writes.md, round
    5). Frozen objects are still freed when their last reference goes; only a reference cycle
    among them would never be collected, which the startup heap does not make. Server processes
    only: the tests' applications come and go in one process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVER_GC_THRESHOLD, *gc.get_threshold()[1:])


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` (an application, or an import string with
    ``factory=True``) under ``settings``: the header timeout protocol, the keep-alive timeout and
    the connection limit. (The header timeout rides on the configuration, which uvicorn hands to
    each connection's protocol and to each worker process.)"""
    config = uvicorn.Config(
        app,
        http=HeaderTimeoutProtocol,
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections,
        **options,
    )
    config.header_timeout = settings.header_timeout  # type: ignore[attr-defined]
    return config


def reuseport_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening TCP sockets bound to ``host``:``port`` with ``SO_REUSEPORT`` (port 0: the
    port the first one is given), inheritable by worker processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, sockets[0].getsockname()[1] if len(sockets) > 1 else port))
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Workers(Multiprocess):
    """uvicorn's supervisor, with each worker serving a socket of its own (``sockets[i]``).

    A worker that dies (or is replaced by ``SIGHUP``) takes its socket with it: the socket is
    closed, so the kernel sends new connections to the other workers' sockets at once instead of
    queueing them for a worker that is starting (the connections already waiting on it, never
    answered, are reset), and its replacement listens on a new one. Adding and removing workers by
    signal (``SIGTTIN``/``SIGTTOU``) is not offered."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.slots = sockets  # the caller's list: it closes what is in it at the end
        self.port = sockets[0].getsockname()[1]

    def init_processes(self) -> None:
        for sock in self.slots:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def _renewed(self, idx: int) -> socket.socket:
        """Close slot ``idx``'s socket and put a new one in its place."""
        self.slots[idx].close()
        self.slots[idx] = reuseport_sockets(self.config.host, self.port, 1)[0]
        return self.slots[idx]

    def restart_all(self) -> None:
        """Replace each worker, its replacement (on a new socket) ready before the old one stops."""
        for idx, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            sock = reuseport_sockets(self.config.host, self.port, 1)[0]
            new = Process(self.config, [sock])
            new.start()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                sock.close()
                if not self.should_exit.is_set():
                    _LOG.error("New worker [%s] was not ready in time; keeping [%s]", new.pid, old.pid)
                return
            old.terminate()
            old.join()
            self.slots[idx].close()
            self.slots[idx] = sock
            self.processes[idx] = new

    def keep_subprocess_alive(self) -> None:
        """Replace a dead or hung worker, on a new socket (the dead one's is closed first)."""
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                _LOG.error("Worker [%s] failed to start, stopping the parent process.", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            _LOG.info("Worker [%s] died", process.pid)
            replacement = Process(self.config, [self._renewed(idx)])
            replacement.start()
            self.processes[idx] = replacement

    def handle_ttin(self) -> None:
        _LOG.info("Received SIGTTIN: the number of workers is fixed at start (--workers)")

    def handle_ttou(self) -> None:
        _LOG.info("Received SIGTTOU: the number of workers is fixed at start (--workers)")
