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
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from settings import Settings

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
        super().on_headers_complete()

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
