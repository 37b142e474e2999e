"""The FastAPI application: :func:`create_app` builds one from :class:`Settings`; nothing is
created at import time. ``tenderproof serve`` runs it under uvicorn (with several workers via
:func:`app_from_environment`, the factory uvicorn imports in each worker).

Layers, outermost first: trusted proxy headers (only if ``trusted_proxies``), metrics and the
access log, security headers, CORS (only if ``cors_origins``), overload protection, the rate
limit on ``/api/``, the body size limit, the input guard (NUL characters, JSON depth), the catch-all for unexpected errors,
the read routing (replicas), the thin path of the single-event writes (:mod:`api.thin`), then the routes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from anchoring.embedded import EmbeddedChain
from explorer import pages as explorer_pages
from ledger.log import Log
from ledger.procurement import privacy, redflags
from ledger.store.replicas import Replicas
from monitor.mirror import Notes
from settings import Settings
from settings.runtime import bound_recursion

from . import auth, desk, docs, errors, logs
from .deps import Clock
from .metrics import Metrics
from .middleware import (
    BodyFirstMiddleware,
    BodyLimitMiddleware,
    CatchAllMiddleware,
    ConcurrencyLimitMiddleware,
    InputGuardMiddleware,
    Load,
    ObservabilityMiddleware,
    ProtocolGuardMiddleware,
    RateLimitMiddleware,
    ReadOnlyMiddleware,
    RouteTemplates,
    SecurityHeadersMiddleware,
)
from .replicas import POSITION_HEADER, SERVED_BY_HEADER, ReadRoutingMiddleware, watch
from .routes import api_router, ops, tiles
from .server import freeze_heap
from .thin import ThinWritesMiddleware

API_PREFIX = "/api/v1"
#: How uvicorn runs the application (``tenderproof serve``): its own proxy-header handling off
#: (``trusted_proxies`` decides), no ``Server`` header, no access log of its own (ours is JSON).
UVICORN_OPTIONS: dict[str, Any] = {
    "proxy_headers": False,
    "server_header": False,
    "access_log": False,
    "log_config": None,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    log: Log | None = None,
    now: Clock = utc_now,
    dev_chain: EmbeddedChain | None = None,
    mirror: Notes | None = None,
    thin_writes: bool = True,
) -> FastAPI:
    """The application for ``settings``.

    With ``log``, the application serves that open log and leaves it open; without, its
    lifespan opens (and migrates) ``settings.database_url`` at startup and closes it at shutdown.
    ``now`` is the clock (anchor ages in /metrics and on the explorer). The explorer site is
    mounted at ``/``; its read-only ``/rpc`` serves ``dev_chain`` (default: this process's
    embedded chain) when the first chain is the embedded one.

    Raises :class:`anchoring.errors.ChainConfigError` when the settings leave the officers'
    signing chain id undetermined (see :attr:`Settings.chain_id_for_signatures`).

    With ``mirror`` (``tenderproof serve --mirror``), ``log`` is a monitor's mirror (docs/operations.md):
    every write is refused (405 ``read_only_mirror``), and the signed checkpoints served are those
    the log published and the monitor verified (``mirror``), never signed here.

    ``thin_writes`` serves the two single-event writes through :mod:`api.thin` (the same answers,
    less CPU); off, FastAPI's router serves them like every other route (for comparing the two).
    """
    bound_recursion()  # a dependency raised it: nested data must raise RecursionError, not crash
    settings.chain_id_for_signatures  # noqa: B018 - refuse to start rather than fail every write
    redflags.configure_file(settings.redflags_settings)  # a bad thresholds file refuses to start too
    privacy.configure_file(settings.privacy_rules)  # so does a bad privacy rules file

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if log is None:
            app.state.log = await asyncio.to_thread(
                Log.open, settings.database_url, origin=settings.origin, group_commit=settings.group_commit
            )
        watcher = _open_replicas(app, settings)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                replicas, app.state.replicas = app.state.replicas, None
                replicas.close()
            probe = getattr(app.state, "probe_thread", None)
            if probe is not None:  # /readyz's own thread; a probe stuck on the database is abandoned
                probe.shutdown(wait=False, cancel_futures=True)
                app.state.probe_thread = None
            if log is None:
                opened, app.state.log = app.state.log, None
                opened.close()

    app = FastAPI(
        title="Tenderproof",
        version="1",
        summary="A verifiable, append-only log of public procurement events, anchored on chain.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served by api.docs, from this application's own files
        redoc_url=None,
        # The server's telemetry is its own (/metrics, the access log): FastAPI's OpenTelemetry would
        # ask three global providers, reading the environment, on every request (~10 µs a request).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.log = log
    app.state.now = now
    app.state.replicas = None
    app.state.key_cache = auth.KeyCache(settings.api_key_cache_seconds)
    app.state.mirror = mirror
    if mirror is not None:
        app.state.log_signer = None  # a mirror signs nothing: it serves the log's own notes
    metrics = Metrics(log=lambda: app.state.log, chains=[chain.name for chain in settings.chains], now=now)
    app.state.metrics = metrics
    errors.install(app)
    app.include_router(ops.router)
    app.include_router(docs.router)
    app.include_router(tiles.router)  # C2SP tlog-tiles at the site's root
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(desk.router)  # the officers' desk, /desk
    explorer_pages.install(app, settings, dev_chain=dev_chain)

    # add_middleware wraps what is there: the first added is the innermost.
    if thin_writes:
        app.add_middleware(ThinWritesMiddleware)
    app.add_middleware(ReadRoutingMiddleware)  # does nothing without replicas (app.state.replicas)
    app.add_middleware(CatchAllMiddleware)
    if mirror is not None:
        app.add_middleware(ReadOnlyMiddleware, origin=settings.origin)
    app.add_middleware(InputGuardMiddleware, max_depth=settings.max_json_depth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.rate_limit is not None:
        app.add_middleware(
            RateLimitMiddleware, limit=settings.rate_limit, storage=settings.rate_limit_storage, prefix="/api/"
        )
    load = app.state.load = Load(settings.max_concurrency)
    app.add_middleware(ConcurrencyLimitMiddleware, limit=settings.max_concurrency, load=load)
    app.add_middleware(
        BodyFirstMiddleware,
        timeout=settings.body_timeout,
        max_bytes=settings.max_body_bytes,
        per_client=settings.max_client_requests,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
            allow_headers=[
                "Accept",
                "Content-Type",
                "Authorization",
                "X-API-Key",
                "Idempotency-Key",
                "If-None-Match",
                POSITION_HEADER,
            ],
            expose_headers=["ETag", "Retry-After", "Location", POSITION_HEADER, SERVED_BY_HEADER],
            max_age=600,
        )
    app.add_middleware(ProtocolGuardMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts)
    app.add_middleware(ObservabilityMiddleware, observe=metrics.observe, templates=RouteTemplates(lambda: app.routes))
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def _open_replicas(app: FastAPI, settings: Settings) -> asyncio.Task[None] | None:
    """With ``database_replica_urls``: the replicas of the open log's database, a read-only
    :class:`Log` on each (``app.state.replica_logs``) and the task that checks them; else None."""
    if not settings.database_replica_urls:
        return None
    primary: Log = app.state.log
    replicas = Replicas.open(primary.engine, settings.database_replica_urls, max_lag=settings.replica_max_lag)
    app.state.replica_logs = {
        replica.name: Log(engine=replica.engine, origin=primary.origin, group_commit=1) for replica in replicas.replicas
    }
    app.state.replicas = replicas
    return asyncio.create_task(watch(replicas, interval=settings.replica_check_interval))


def app_from_environment() -> FastAPI:
    """The application configured from ``TENDERPROOF_*`` alone, for uvicorn's ``factory=True``
    (each worker process imports and calls it); logs as JSON lines."""
    logs.configure()
    app = create_app(Settings())
    freeze_heap()
    return app
