"""The protective layers over real HTTP: body size limit, rate limit, overload protection,
security headers, CORS, trusted proxies."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api import docs as docs_page
from api.app import create_app
from api.middleware import BodyLimitMiddleware
from tests.api.conftest import History, settings_for
from tests.api.servers import threaded_server

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def assert_secure(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code, response.headers)
    assert "cache-control" in response.headers
    assert "server" not in response.headers or "uvicorn" not in response.headers["server"]


def echo_app(history: History, **overrides: Any) -> FastAPI:
    """The real application plus a route that reads its whole body."""
    app = create_app(settings_for(history.url, **overrides), log=history.log)

    @app.post("/api/v1/_echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return app


@pytest.fixture
def small_body(history: History) -> Iterator[TestClient]:
    with TestClient(echo_app(history, max_body_bytes=100)) as client:
        yield client


def chunks(total: int, size: int = 40) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield b"x" * piece
        sent += piece


def test_body_within_the_limit_passes(small_body: TestClient) -> None:
    assert small_body.post("/api/v1/_echo", content=b"x" * 100).json() == {"received": 100}
    assert small_body.post("/api/v1/_echo", content=chunks(100)).json() == {"received": 100}


def test_oversize_body_with_content_length_is_413(small_body: TestClient) -> None:
    got = small_body.post("/api/v1/_echo", content=b"x" * 101)
    assert got.status_code == 413
    assert got.json() == {
        "error": {"code": "payload_too_large", "message": "body: larger than the 100 bytes this server accepts"}
    }
    assert_secure(got)


def test_oversize_body_without_content_length_is_413(small_body: TestClient) -> None:
    got = small_body.post("/api/v1/_echo", content=chunks(1000))
    assert got.status_code == 413
    assert got.json()["error"]["code"] == "payload_too_large"
    assert_secure(got)


def test_a_lying_content_length_does_not_get_a_large_body_through() -> None:
    """ASGI level: the header says 10 bytes, the body streams 500; the application never sees
    more than the limit and the client gets 413."""
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen.append(-1)
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(len(body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    incoming = [{"type": "http.request", "body": b"x" * 50, "more_body": True} for _ in range(10)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-length", b"10")]}
    asyncio.run(BodyLimitMiddleware(app, max_bytes=100)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert b"payload_too_large" in sent[1]["body"]
    assert seen == [-1, 100]  # told the client left, after 100 bytes; its own answer dropped


def test_oversize_bodies_on_a_real_server(history: History) -> None:
    with threaded_server(echo_app(history, max_body_bytes=1000)) as base:
        declared = httpx.post(f"{base}/api/v1/_echo", content=b"x" * 5000)
        assert declared.status_code == 413
        assert declared.json()["error"]["code"] == "payload_too_large"
        assert_secure(declared)
        streamed = httpx.post(f"{base}/api/v1/_echo", content=chunks(50_000, 1000))
        assert streamed.status_code == 413
        assert "content-length" not in streamed.request.headers
        assert streamed.request.headers["transfer-encoding"] == "chunked"
        assert httpx.post(f"{base}/api/v1/_echo", content=chunks(1000, 100)).json() == {"received": 1000}


def test_rate_limit_answers_429_with_retry_after(history: History) -> None:
    with TestClient(create_app(settings_for(history.url, rate_limit="3/minute"), log=history.log)) as client:
        for _ in range(3):
            assert client.get("/api/v1/checkpoint").status_code == 200
        limited = client.get("/api/v1/checkpoint")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        error = limited.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["message"].startswith("client testclient: more than 3 requests per minute; retry in ")
        assert_secure(limited)
        assert client.get("/healthz").status_code == 200  # probes are never limited
        assert client.get("/metrics").status_code == 200


def test_rate_limit_counts_per_client_and_believes_only_trusted_proxies(history: History) -> None:
    trusted = settings_for(history.url, rate_limit="2/minute", trusted_proxies=["testclient"])
    with TestClient(create_app(trusted, log=history.log)) as client:
        for _ in range(2):
            assert client.get("/api/v1/checkpoint", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200
        assert client.get("/api/v1/checkpoint", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 429
        other = client.get("/api/v1/checkpoint", headers={"X-Forwarded-For": "203.0.113.6"})
        assert other.status_code == 200
    untrusted = settings_for(history.url, rate_limit="2/minute")
    with TestClient(create_app(untrusted, log=history.log)) as client:
        for _ in range(2):
            assert client.get("/api/v1/checkpoint", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 200
        spoofed = client.get("/api/v1/checkpoint", headers={"X-Forwarded-For": "203.0.113.99"})
        assert spoofed.status_code == 429  # the header is not believed: still the same client


def test_overload_answers_503_with_retry_after(history: History) -> None:
    app = create_app(settings_for(history.url, max_concurrency=1), log=history.log)
    entered, release = threading.Event(), threading.Event()

    @app.get("/api/v1/_slow")
    def slow() -> dict[str, bool]:
        entered.set()
        release.wait(30)
        return {"done": True}

    with threaded_server(app) as base:
        results: list[httpx.Response] = []
        holder = threading.Thread(target=lambda: results.append(httpx.get(f"{base}/api/v1/_slow", timeout=30)))
        holder.start()
        assert entered.wait(10)
        refused = httpx.get(f"{base}/api/v1/checkpoint")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        assert_secure(refused)
        assert httpx.get(f"{base}/healthz").status_code == 200  # probes still answered
        release.set()
        holder.join(30)
        assert results[0].json() == {"done": True}
        assert httpx.get(f"{base}/api/v1/checkpoint").status_code == 200


def test_security_headers_on_every_kind_of_response(history: History) -> None:
    app = echo_app(history, max_body_bytes=10, rate_limit="5/minute")
    with TestClient(app) as client:
        responses = [
            client.get("/healthz"),
            client.get("/readyz"),
            client.get("/metrics"),
            client.get("/openapi.json"),
            client.get("/api/v1/checkpoint"),
            client.get("/api/v1/entries", params={"start": "x", "end": 1}),
            client.get("/api/v1/nothing"),
            client.put("/api/v1/checkpoint"),
            client.post("/api/v1/_echo", content=b"x" * 11),
        ]
        while (last := client.get("/api/v1/checkpoint")).status_code != 429:
            pass
        responses.append(last)
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 422, 404, 405, 413, 429]
    for response in responses:
        assert_secure(response)
        assert "strict-transport-security" not in response.headers
    assert responses[0].headers["cache-control"] == "no-cache"
    assert responses[6].headers["cache-control"] == "no-store"


def test_swagger_ui_page_is_not_blocked_by_the_api_policy(client: TestClient) -> None:
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == docs_page.CSP  # its own, not the API's default-src 'none'
    assert "script-src 'self'" in docs_page.CSP and "frame-ancestors 'none'" in docs_page.CSP
    assert docs.headers["x-frame-options"] == "DENY"


def test_hsts_when_configured(history: History) -> None:
    with TestClient(create_app(settings_for(history.url, hsts=63072000), log=history.log)) as client:
        for response in (client.get("/api/v1/checkpoint"), client.get("/api/v1/nothing")):
            assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


def test_cors_preflight_and_simple_requests(history: History) -> None:
    settings = settings_for(history.url, cors_origins=["https://explorer.example"])
    with TestClient(create_app(settings, log=history.log)) as client:
        preflight = client.options(
            "/api/v1/entries",
            headers={
                "Origin": "https://explorer.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "If-None-Match",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://explorer.example"
        assert "GET" in preflight.headers["access-control-allow-methods"]
        assert "if-none-match" in preflight.headers["access-control-allow-headers"].lower()
        assert preflight.headers["access-control-max-age"] == "600"
        assert_secure(preflight)
        simple = client.get("/api/v1/checkpoint", headers={"Origin": "https://explorer.example"})
        assert simple.headers["access-control-allow-origin"] == "https://explorer.example"
        assert "etag" in simple.headers["access-control-expose-headers"].lower()
        stranger = client.get("/api/v1/checkpoint", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        refused = client.options(
            "/api/v1/entries", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert refused.status_code == 400
    with TestClient(create_app(settings_for(history.url), log=history.log)) as client:
        none = client.get("/api/v1/checkpoint", headers={"Origin": "https://explorer.example"})
        assert "access-control-allow-origin" not in none.headers


def test_raw_socket_request_with_no_body_framing_still_answered(history: History) -> None:
    """HTTP/1.1 on a bare socket: a request the server has to frame itself gets a JSON 404."""
    with threaded_server(create_app(settings_for(history.url), log=history.log)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /api/v1/none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404")
        assert b"x-content-type-options: nosniff" in head.lower()
        assert body == b'{"error":{"code":"not_found","message":"/api/v1/none: no such resource"}}'
