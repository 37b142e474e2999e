"""The server's protective layers, as pure ASGI middleware (no BaseHTTPMiddleware: no extra
task per request, streaming untouched).

From the outside in (see :func:`api.app.create_app`): proxy headers (only when configured),
request metrics and access log, security headers, CORS, overload protection, rate limiting,
body size limit, the catch-all for unexpected exceptions, then the application. Every refusal
is a JSON error (:func:`api.errors.error_response`) and passes the outer layers, so it carries
the security headers and is counted.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.core.jsonsafe import json_depth, nests_within

from .errors import RETRY_OVERLOAD, error_response

log = logging.getLogger(__name__)

#: Paths never rate limited nor refused for overload: probes and scrapes must get through.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def client_ip(scope: Scope) -> str:
    """The client's address (the proxy's, unless the proxy is trusted, see ``trusted_proxies``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class CatchAllMiddleware:
    """Innermost: an unexpected exception becomes a JSON 500 (logged with its traceback here,
    never sent), so that it passes the security headers and the metrics like any response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error serving %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # too late for an error response: let the server drop the connection
            await error_response(500, "internal_error", "internal error; it has been logged")(scope, receive, send)


class ReadOnlyMiddleware:
    """A mirror's application (``tenderproof serve --mirror``): every write is refused with a 405
    that says why (``read_only_mirror``), before any body is read; reads pass."""

    READS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp, *, origin: str) -> None:
        self.app = app
        self.origin = origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in self.READS:
            await self.app(scope, receive, send)
            return
        message = (
            f"{scope.get('path')}: method {scope.get('method')} not allowed: this is a read-only mirror of the "
            f"log {self.origin!r}; record on the log's own deployment"
        )
        refusal = error_response(405, "read_only_mirror", message, headers={"Allow": "GET, HEAD, OPTIONS"})
        await refusal(scope, receive, send)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413: at once when Content-Length says so,
    otherwise while the body streams in (a missing or lying Content-Length does not help)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> ASGIApp:
        return error_response(
            413, "payload_too_large", f"body: larger than the {self.max_bytes} bytes this server accepts"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._too_large()(scope, receive, send)
                    return
        received = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused, started
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        started = True
                        await self._too_large()(scope, receive, send)
                    return {"type": "http.disconnect"}  # the application stops reading
            return message

        async def app_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # our 413 went out; whatever the application says after it is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, app_send)


#: A JSON escape of the NUL character (an escaped backslash, consumed first, is not one).
_JSON_NUL = re.compile(rb"\\(?:u0000|.)", re.DOTALL)


def nul_field(scope: Scope) -> str | None:
    """The part of the request line that holds a NUL character (``path`` or ``query.<name>``), if any."""
    if "\x00" in scope.get("path", ""):
        return "path"
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return f"query.{name}"
    return None


class ProtocolGuardMiddleware:
    """HTTP framing and credentials that could be read two ways are refused, and HEAD is served
    wherever GET is:

    * both ``Content-Length`` and ``Transfer-Encoding`` (400 ``ambiguous_length``): legal, but a
      proxy in front that trusts the length and this server that follows the chunks would read
      different requests (request smuggling);
    * ``Authorization`` given more than once (400 ``duplicate_header`` naming it): which of them
      counts would depend on the layer reading it;
    * HEAD: answered as GET without the body (same status and headers, Content-Length included).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        names = [name.lower() for name, _ in scope["headers"]]
        refusal = None
        if b"content-length" in names and b"transfer-encoding" in names:
            refusal = error_response(
                400, "ambiguous_length", "headers: both Content-Length and Transfer-Encoding given; send one",
                field="header.Transfer-Encoding",
            )  # fmt: skip
        elif (count := names.count(b"authorization")) > 1:
            refusal = error_response(
                400, "duplicate_header", f"header Authorization: given {count} times; send it once",
                field="header.Authorization",
            )  # fmt: skip
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # dropped: only the last (empty) part is sent
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


class InputGuardMiddleware:
    """Refuse, before any parsing, what no route accepts and what would crash or upset the
    layers below:

    * a NUL character in the path, a query parameter or a JSON string (422 ``invalid_argument``
      naming where): PostgreSQL cannot store it in text, so it would surface as a database error;
    * a JSON body nested deeper than ``max_depth`` (400 ``json_too_deep``): a deep enough body
      crashes the parser and the validators (RecursionError, and at some 100,000 levels a
      segmentation fault that kills the worker); no payload of this API is more than a
      dozen levels deep.

    Runs inside the body size limit, so at most ``max_body_bytes`` are buffered."""

    def __init__(self, app: ASGIApp, *, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = nul_field(scope)
        if where is not None:
            await error_response(422, "invalid_argument", f"{where}: contains a NUL character", field=where)(
                scope, receive, send
            )
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left, or the size limit answered
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        refusal = None
        if not nests_within(body, self.max_depth) and json_depth(body, self.max_depth) > self.max_depth:
            refusal = error_response(
                400, "json_too_deep", f"body: JSON nested deeper than the {self.max_depth} levels this server accepts",
                field="body",
            )  # fmt: skip
        elif b"\\u0000" in body and any(m.group() == b"\\u0000" for m in _JSON_NUL.finditer(body)):
            refusal = error_response(422, "invalid_argument", "body: contains a NUL character (\\u0000)", field="body")
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A ``receive`` that gives ``messages`` first, then defers to ``then`` (a disconnect wait)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class RateLimitMiddleware:
    """Per client IP, for paths under ``prefix``: over ``limit`` (``limits`` notation, e.g.
    '120/minute', a moving window) the client gets 429 with Retry-After.

    The counters live in ``storage`` (a ``limits`` storage URI): ``memory://``, this process's
    own, or ``redis://host:port/db``, shared by every worker and host (through redis-py, with
    ``redis_timeout`` s to connect and answer). While the shared store fails, the process counts
    in memory on its own and says so in its log once per outage; it tries the shared store again
    after ``retry_shared`` s. So Redis down neither refuses requests nor lifts the limit: each
    process still enforces it, as without Redis (fail soft: the limit guards against abuse, not the
    log's integrity, and the per-client and per-process concurrency limits still hold)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: str,
        storage: str = "memory://",
        prefix: str = "/api/",
        redis_timeout: float = 0.5,
        retry_shared: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.item: RateLimitItem = parse(limit)
        self.local = MovingWindowRateLimiter(storage_from_string("async+memory://"))
        self.shared: MovingWindowRateLimiter | None = None
        self.storage = storage.removeprefix("async+")
        if not self.storage.startswith("memory://"):
            options: dict[str, float | str | bool] = {"wrap_exceptions": True}
            if self.storage.startswith(("redis://", "rediss://", "redis+unix://")):
                options |= {"implementation": "redispy", "socket_timeout": redis_timeout}
                options["socket_connect_timeout"] = redis_timeout
            self.shared = MovingWindowRateLimiter(storage_from_string(f"async+{self.storage}", **options))
        self.retry_shared = retry_shared
        self.clock = clock
        self._shared_down_until: float | None = None
        self.prefix = prefix
        unit = self.item.GRANULARITY.name.lower()
        self.window = unit if self.item.multiples == 1 else f"{self.item.multiples} {unit}s"

    async def _hit(self, key: str) -> tuple[bool, MovingWindowRateLimiter]:
        """Count one request of ``key``: whether it is allowed, and the limiter that counted it."""
        shared = self.shared
        if shared is not None and (self._shared_down_until is None or self.clock() >= self._shared_down_until):
            try:
                allowed = await shared.hit(self.item, "client", key)
            except (TimeoutError, StorageError, OSError) as exc:
                if self._shared_down_until is None:
                    log.warning(
                        "rate limit: the shared store %s failed (%s); counting in this process until it answers",
                        _without_password(self.storage), exc,
                    )  # fmt: skip
                self._shared_down_until = self.clock() + self.retry_shared
            else:
                if self._shared_down_until is not None:
                    log.warning("rate limit: the shared store %s answers again", _without_password(self.storage))
                    self._shared_down_until = None
                return allowed, shared
        return await self.local.hit(self.item, "client", key), self.local

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        key = client_ip(scope)
        allowed, limiter = await self._hit(key)
        if not allowed:
            try:
                stats = await limiter.get_window_stats(self.item, "client", key)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
            except (TimeoutError, StorageError, OSError):
                retry = self.item.get_expiry()
            response = error_response(
                429,
                "rate_limited",
                f"client {key}: more than {self.item.amount} requests per {self.window}; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _without_password(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (it goes to the log)."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", uri)


@dataclass
class Load:
    """Requests in progress in this process, shared by the concurrency limit and ``/readyz``."""

    limit: int
    in_flight: int = 0

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit


class ConcurrencyLimitMiddleware:
    """At most ``limit`` requests in progress in this process (streaming included); the rest get
    503 with Retry-After at once, instead of queueing until everyone times out. It runs once the
    request's body has arrived (:class:`BodyFirstMiddleware`), so slow senders hold no slot."""

    def __init__(
        self, app: ASGIApp, *, limit: int, exempt: Collection[str] = OPS_PATHS, load: Load | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.load = load or Load(limit)

    @property
    def in_flight(self) -> int:
        return self.load.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = error_response(
                503,
                "overloaded",
                f"the server is at its limit of {self.limit} concurrent requests; retry shortly",
                headers={"Retry-After": str(RETRY_OVERLOAD)},
            )
            await response(scope, receive, send)
            return
        self.load.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.load.in_flight -= 1


class BodyFirstMiddleware:
    """Slow clients cannot hold the server: a request's body is read in full (at most
    ``max_bytes`` + 1 bytes, the size limit inside answers 413) within ``timeout`` seconds,
    else 408 ``request_timeout`` and the connection is closed, before the concurrency limit or
    anything else sees the request; and a client (its IP, as the trusted proxy says) has at
    most ``per_client`` requests in progress, body reading included (429 ``too_many_requests``
    beyond). Probes (``exempt``) are never held back."""

    def __init__(
        self, app: ASGIApp, *, timeout: float, max_bytes: int, per_client: int, exempt: Collection[str] = OPS_PATHS
    ) -> None:
        self.app = app
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.per_client = per_client
        self.exempt = exempt
        self.clients: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "-"
        if self.clients.get(client, 0) >= self.per_client:
            await error_response(
                429, "too_many_requests",
                f"this client already has {self.per_client} requests in progress; retry once they are done",
                headers={"Retry-After": str(RETRY_OVERLOAD)},
            )(scope, receive, send)  # fmt: skip
            return
        self.clients[client] = self.clients.get(client, 0) + 1
        try:
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                messages = await self._body(receive)
                if messages is None:
                    await error_response(
                        408, "request_timeout", f"body: not received within {self.timeout:g} s", field="body",
                        headers={"Connection": "close"},
                    )(scope, receive, send)  # fmt: skip
                    return
                receive = _replay(messages, receive)
            await self.app(scope, receive, send)
        finally:
            self.clients[client] -= 1
            if not self.clients[client]:
                del self.clients[client]

    async def _body(self, receive: Receive) -> list[Message] | None:
        """The body's messages, read within the deadline (None if it passed)."""
        messages: list[Message] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout):  # one deadline, no task per message (wait_for's)
                while True:
                    message = await receive()
                    messages.append(message)
                    if message["type"] != "http.request":
                        return messages
                    size += len(message.get("body", b""))
                    if size > self.max_bytes or not message.get("more_body", False):
                        return messages
        except TimeoutError:
            return None


#: A strict policy for the API's JSON: nothing in it is ever to be run or framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: For everything else (the explorer and /api/docs, pages with scripts, set their own fuller
#: policy or need none): never framed.
SITE_CSP = "frame-ancestors 'none'"
_API_PREFIXES = ("/api/v", "/healthz", "/readyz", "/metrics", "/openapi.json")
_API_CSP, _SITE_CSP = API_CSP.encode("latin-1"), SITE_CSP.encode("latin-1")


class SecurityHeadersMiddleware:
    """Security headers on every response, errors included; a header the application set
    itself is left alone. Cache-Control defaults to ``no-store`` on errors and ``no-cache``
    (revalidate, see the ETags) on the rest."""

    def __init__(self, app: ASGIApp, *, hsts: int = 0) -> None:
        self.app = app
        self.hsts = f"max-age={hsts}; includeSubDomains" if hsts > 0 else None
        # Added, in this order, to every response that lacks them (one pass over its headers).
        self.first = (
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        )
        self.corp = (b"cross-origin-resource-policy", b"cross-origin")
        self.last = () if self.hsts is None else ((b"strict-transport-security", self.hsts.encode("latin-1")),)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = _API_CSP if scope["path"].startswith(_API_PREFIXES) else _SITE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message["headers"] = list(message.get("headers", ()))  # the response's own list stays
                present = {name.lower() for name, _ in raw}
                cache = (b"cache-control", b"no-store" if message["status"] >= 400 else b"no-cache")
                for name, value in (*self.first, (b"content-security-policy", csp), self.corp, cache, *self.last):
                    if name not in present:
                        raw.append((name, value))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RouteTemplates:
    """The full path template (``/api/v1/tenders/{ocid}/events``) of the route object a request
    matched (``scope["route"]``, whose own ``path`` lacks the prefixes of the routers that include
    it). The map is built from the application's routes on first use and again for a new route."""

    def __init__(self, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self._routes = routes
        self._templates: dict[int, str] = {}

    def _build(self) -> dict[int, str]:
        try:
            from fastapi.routing import iter_route_contexts
        except ImportError:  # FastAPI before nested route contexts: routes carry their full path
            return {id(r): str(r.path) for r in self._routes() if hasattr(r, "path")}
        return {id(c.original_route): str(c.path_format) for c in iter_route_contexts(self._routes()) if c.path_format}

    def __call__(self, route: object) -> str | None:
        if route is None:
            return None
        found = self._templates.get(id(route))
        if found is None:
            self._templates = self._build()
            found = self._templates.get(id(route), getattr(route, "path", None))
        return found


class ObservabilityMiddleware:
    """Times every request and hands method, route template (never the raw path: bounded
    label values), status, duration and client to ``observe`` (metrics, access log). Headers
    and bodies are never looked at, so no credential can end up in a log line."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        observe: Callable[..., None],
        templates: Callable[[object], str | None],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.observe = observe
        self.templates = templates
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self.clock()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            template = self.templates(scope.get("route")) or "<unmatched>"
            self.observe(
                method=scope["method"],
                route=str(template),
                status=status,
                duration=self.clock() - started,
                client=client_ip(scope),
            )
