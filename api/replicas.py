"""Reads on replicas, writes on the primary, and the position that keeps each client consistent.

With ``database_replica_urls`` set, :class:`ReadRoutingMiddleware` sends each GET/HEAD to a
replica that has replayed at least the position the client sends back (header
:data:`POSITION_HEADER` or cookie :data:`POSITION_COOKIE`), else to the primary; routes that
read take :data:`api.deps.ReadLogDep` (the explorer's pages likewise), everything else (writes,
API keys) the primary. Every answer carries the position of the state it was read from or
written to, measured after the route ran (see :mod:`ledger.store.replicas`), at least the one the
client sent, in the header and the cookie: an officer's own write and any checkpoint or proof a
client was given are never missing from what it reads next. The answer also says which database
served it (:data:`SERVED_BY_HEADER`: ``primary`` or ``replica-N``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection
from http.cookies import SimpleCookie

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.core.errors import InvalidArgumentError
from ledger.log import Log
from ledger.store import replicas as store_replicas
from ledger.store.replicas import PositionProbe, Replicas, format_position, parse_position

from .errors import error_response
from .middleware import OPS_PATHS

log = logging.getLogger(__name__)

POSITION_HEADER = "X-Tenderproof-Position"
POSITION_COOKIE = "tp_position"
SERVED_BY_HEADER = "X-Tenderproof-Served-By"
#: Seconds a browser keeps the position cookie: far longer than any replica may lag.
COOKIE_MAX_AGE = 3600
#: Key of the log a read is served from, in the request's ``state``.
READ_LOG = "read_log"


async def watch(replicas: Replicas, *, interval: float) -> None:
    """Check the replicas every ``interval`` seconds until cancelled (the server's lifespan runs
    it as a task; each check runs in a thread, it waits for the databases)."""
    while True:
        try:
            await asyncio.to_thread(store_replicas.check, replicas, now=time.monotonic())
        except Exception:  # a check that fails leaves the last findings; the next one tries again
            log.exception("replica check failed")
        await asyncio.sleep(interval)


def requested_position(scope: Scope) -> int:
    """The position the client sent back: the newer of the header's and the cookie's (0: none).
    Raises :class:`InvalidArgumentError` (field ``header.X-Tenderproof-Position``) for a header
    that is not a WAL location; a cookie that is not one is ignored (the browser sent it, not
    the person)."""
    wanted = 0
    for name, value in scope["headers"]:
        if name == POSITION_HEADER.lower().encode():
            try:
                wanted = max(wanted, parse_position(value.decode("latin-1")))
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"header.{POSITION_HEADER}", exc.reason) from None
        elif name == b"cookie":
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:
                continue
            if POSITION_COOKIE in cookie:
                with contextlib.suppress(InvalidArgumentError):
                    wanted = max(wanted, parse_position(cookie[POSITION_COOKIE].value))
    return wanted


class ReadRoutingMiddleware:
    """Route reads to replicas and hand out positions (see the module's docstring). ``replicas``
    and ``views`` (one read-only :class:`Log` per replica, by name) are read from the app's
    state when the request comes, so the lifespan may open them after the middleware is built."""

    def __init__(self, app: ASGIApp, *, exempt: Collection[str] = OPS_PATHS, static_prefix: str = "/static/") -> None:
        self.app = app
        self.exempt = exempt
        self.static_prefix = static_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state if "app" in scope else None
        replicas: Replicas | None = getattr(state, "replicas", None)
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or replicas is None
            or path in self.exempt
            or path.startswith(self.static_prefix)
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        try:
            wanted = requested_position(scope)
        except InvalidArgumentError as exc:
            await error_response(422, "invalid_argument", str(exc), field=exc.field)(scope, receive, send)
            return
        replica = replicas.pick(wanted) if scope["method"] in ("GET", "HEAD") else None
        if replica is not None:
            views: dict[str, Log] = state.replica_logs  # type: ignore[union-attr]
            scope.setdefault("state", {})[READ_LOG] = views[replica.name]
            failed = await self._serve(
                scope,
                receive,
                send,
                wanted=wanted,
                probe=replica.probe,
                name=replica.name,
                primary=replicas.primary_probe,
            )
            if not failed:
                return
            # The replica failed this read (503: its database did not answer): not used again
            # until it passes a check, and the read is served again, from the primary.
            replicas.skip(replica, "a read on it failed")
            del scope["state"][READ_LOG]
        await self._serve(
            scope, receive, send, wanted=wanted, probe=replicas.primary_probe, name="primary", primary=None
        )

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        wanted: int,
        probe: PositionProbe,
        name: str,
        primary: PositionProbe | None,
    ) -> bool:
        """Run the application, its answer carrying the position (``probe``'s, ``primary``'s when a
        replica cannot say) and ``name``; True (and nothing sent) if it is a replica's (``primary``
        given) and the answer was a 503."""
        on_replica = primary is not None
        failed = False

        async def send_with_position(message: Message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start":
                if on_replica and message["status"] == 503:
                    failed = True
                    return
                now = await asyncio.to_thread(_position_after, probe, primary)
                given = max(wanted, now or 0)
                headers = MutableHeaders(scope=message)
                headers[SERVED_BY_HEADER] = name
                if given:
                    text = format_position(given)
                    headers[POSITION_HEADER] = text
                    headers.append(
                        "Set-Cookie",
                        f"{POSITION_COOKIE}={text}; Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly; SameSite=Lax",
                    )
            elif failed:
                return
            await send(message)

        await self.app(scope, receive, send_with_position)
        return failed


def _position_after(probe: PositionProbe, primary: PositionProbe | None) -> int | None:
    """The position of ``probe``'s server once a read there is done; for a replica that cannot
    say (``primary`` given), the primary's (at least as new as anything a replica holds); None if
    neither answers (the client then keeps its own position)."""
    try:
        found = probe()
        if found is not None or primary is None:
            return found
    except SQLAlchemyError:
        if primary is None:
            return None
    try:
        return primary()
    except SQLAlchemyError:
        return None
