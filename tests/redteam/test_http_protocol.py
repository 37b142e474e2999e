"""Red team, HTTP (issue 16), against a real `tenderproof serve` process: HEAD is served where
GET is, two Authorization headers are refused naming the header, and a request carrying both
Content-Length and Transfer-Encoding is refused (it could be read two ways behind a proxy)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.api.servers import cli_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("protocol")
    url = f"sqlite:///{root / 'tenderproof.sqlite3'}"
    with cli_server(url, "--no-anchoring", log_file=root / "serve.log") as client:
        yield client


def _raw(client: httpx.Client, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is; the status and the body of the answer."""
    with socket.create_connection((client.base_url.host, client.base_url.port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("path", ["/", "/tenders", "/api/v1/checkpoint", "/api/v1/tenders", "/healthz"])
def test_head_is_served_where_get_is(server: httpx.Client, path: str) -> None:
    got = server.get(path)
    head = server.head(path)
    assert head.status_code == got.status_code == 200, (path, head.status_code, got.status_code)
    assert head.content == b""
    assert head.headers.get("content-type") == got.headers.get("content-type")


def test_two_authorization_headers_are_refused(server: httpx.Client) -> None:
    status, body = _raw(
        server,
        b"GET /api/v1/log/checkpoint HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer one\r\n"
        b"Authorization: Bearer two\r\nConnection: close\r\n\r\n",
    )
    error = json.loads(body)["error"]
    assert status == 400 and error["code"] == "duplicate_header"
    assert "Authorization" in error["message"] and error["field"] == "header.Authorization"


def test_content_length_with_transfer_encoding_is_refused(server: httpx.Client) -> None:
    status, body = _raw(
        server,
        b"POST /api/v1/tenders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    assert status == 400, body
    assert json.loads(body)["error"]["code"] == "ambiguous_length"


def test_one_authorization_header_still_works(server: httpx.Client) -> None:
    answer = server.get("/api/v1/checkpoint", headers={"Authorization": "Bearer nope"})
    assert answer.status_code in (200, 401)  # reads need no key; an unknown one is not a framing error
    assert answer.json().get("error", {}).get("code") != "duplicate_header"
