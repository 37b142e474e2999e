"""api.server's protocol writes a response's head with its body's first part: the bytes uvicorn's
own protocol sends, in the same order, in one transport write where uvicorn makes two."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.server import HeaderTimeoutProtocol


class _Wire(asyncio.Transport):
    """What a protocol writes, one entry a write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers as the path says: one body, a streamed one, a head without a body, or a failure."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    path = scope["path"]
    length = [(b"content-length", b"%d" % (len(body) + 4))] if path != "/stream" else []
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain"), *length]})
    if path == "/fail":
        raise RuntimeError("after the head")
    if path == "/stream":
        await send({"type": "http.response.body", "body": b"one,", "more_body": True})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"two", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send({"type": "http.response.body", "body": b"got " + body, "more_body": False})


async def _served(protocol_class: type[HttpToolsProtocol], request: bytes) -> _Wire:
    config = uvicorn.Config(_app, log_level="critical")
    config.load()
    protocol = protocol_class(config, ServerState(), {})
    wire = _Wire()
    protocol.connection_made(wire)
    head, _, body = request.partition(b"\r\n\r\n")
    if b"100-continue" not in head:  # the body with the head; else once the interim answer came
        head, body = request, b""
    protocol.data_received(head if body == b"" else head + b"\r\n\r\n")
    for _ in range(20):  # the application's turns (and, for 100-continue, the client's body after them)
        await asyncio.sleep(0)
        if body and any(w.startswith(b"HTTP/1.1 100 ") for w in wire.writes):
            protocol.data_received(body)
            body = b""
    protocol.connection_lost(None)
    return wire


POST = b"POST /{path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n{extra}\r\n{}"


@pytest.mark.parametrize(
    ("request_bytes", "uvicorn_writes", "writes"),
    [
        (POST.replace(b"{path}", b"one").replace(b"{extra}", b""), 2, 1),
        (POST.replace(b"{path}", b"stream").replace(b"{extra}", b""), 4, 3),  # head with the first chunk
        (POST.replace(b"{path}", b"one").replace(b"{extra}", b"Expect: 100-continue\r\n"), 3, 2),
        (b"HEAD /one HTTP/1.1\r\nHost: x\r\n\r\n", 1, 1),
        (POST.replace(b"{path}", b"fail").replace(b"{extra}", b""), 1, 1),  # the head, then closed
        (POST.replace(b"{path}", b"one").replace(b"{extra}", b"Connection: close\r\n"), 2, 1),
    ],
    ids=["one-body", "streamed", "100-continue", "head", "failed-after-head", "connection-close"],
)
def test_the_head_goes_with_the_first_body_part(request_bytes: bytes, uvicorn_writes: int, writes: int) -> None:
    theirs = asyncio.run(_served(HttpToolsProtocol, request_bytes))
    ours = asyncio.run(_served(HeaderTimeoutProtocol, request_bytes))
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert b"".join(ours.writes).startswith(b"HTTP/1.1 ")
    assert (len(theirs.writes), len(ours.writes)) == (uvicorn_writes, writes)
    assert ours.closed == theirs.closed
    if b"100-continue" in request_bytes:
        assert ours.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"  # sent at once: the client waits for it
