"""``serve``: the HTTP API and the explorer (and, unless told not to, the anchoring job)."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import click

from .context import Env, pass_env

if TYPE_CHECKING:
    import uvicorn


@click.command()
@click.option("--host", envvar="TENDERPROOF_HOST", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", envvar="TENDERPROOF_PORT", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port."
)
@click.option(
    "--workers",
    envvar="TENDERPROOF_WORKERS",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (each with its own connection pool, rate-limit counters and concurrency limit).",
)
@click.option(
    "--anchoring/--no-anchoring",
    envvar="TENDERPROOF_ANCHORING",
    default=True,
    show_default=True,
    help="Also run the periodic anchoring job in this process.",
)
@click.option(
    "--mirror",
    "mirror_url",
    metavar="DB_URL",
    envvar="TENDERPROOF_MIRROR_DATABASE_URL",
    help="Serve, read-only, the mirror a monitor keeps in this database (`tenderproof monitor --mirror`): "
    "no writes, no anchoring.",
)
@pass_env
def serve(env: Env, host: str, port: int, workers: int, anchoring: bool, mirror_url: str | None) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) and the explorer until stopped; logs are JSON lines."""
    import uvicorn

    from anchoring import scheduler
    from anchoring.service import AnchoringService
    from api import logs
    from api.app import UVICORN_OPTIONS, create_app
    from api.server import freeze_heap, uvicorn_config

    settings = env.settings
    logs.configure()
    if mirror_url:
        _serve_mirror(env, mirror_url, host=host, port=port, workers=workers)
        return
    settings.chain_id_for_signatures  # noqa: B018 - a clear error now, not a 500 on every write
    log = env.log  # migrates once, before any worker opens the database
    job = AnchoringService.of(log, settings) if anchoring else None
    background = None if job is None else scheduler.start_background(job, poll=settings.anchor_poll)
    options: dict[str, Any] = {"host": host, "port": port, **UVICORN_OPTIONS}
    try:
        if workers == 1:
            app = create_app(settings, log=log)
            freeze_heap()
            uvicorn.Server(uvicorn_config(app, settings, **options)).run()
        else:
            # Each worker builds its app from the environment: hand the flags' values on there.
            os.environ["TENDERPROOF_DATABASE_URL"] = settings.database_url
            os.environ["TENDERPROOF_ORIGIN"] = settings.origin
            _serve_workers(workers, uvicorn_config("api.app:app_from_environment", settings, factory=True,
                                                   workers=workers, **options))  # fmt: skip
    finally:
        if background is not None and job is not None:
            background.shutdown(wait=True)
            job.close()


def _serve_mirror(env: Env, url: str, *, host: str, port: int, workers: int) -> None:
    """``serve --mirror``: the monitor's mirror at ``url``, read-only, in one process."""
    import uvicorn

    from api.app import UVICORN_OPTIONS, create_app
    from api.server import freeze_heap, uvicorn_config
    from ledger.procurement import redflags
    from monitor.mirror import Notes, open_log

    if workers != 1:
        raise click.UsageError("--mirror serves from one process: leave --workers at 1")
    redflags.configure_file(env.settings.redflags_settings)
    log = open_log(url)
    try:
        settings = env.settings.model_copy(update={"origin": log.origin, "database_url": url})
        app = create_app(settings, log=log, mirror=Notes(log.engine))
        freeze_heap()
        uvicorn.Server(uvicorn_config(app, settings, host=host, port=port, **UVICORN_OPTIONS)).run()
    finally:
        log.close()


def _serve_workers(workers: int, config: uvicorn.Config) -> None:
    """``uvicorn.run(..., workers=N)``, but each worker accepting on a socket of its own.

    uvicorn's workers all accept from one shared socket: every idle worker is woken by a new
    connection and the first awake accepts every connection waiting, so a few clients connecting
    together (a bulk import's four connections) all landed on one worker and used one core of
    two. Here each worker slot has its own listening socket bound to the same address with
    ``SO_REUSEPORT``, and the kernel spreads incoming connections over them (by a hash of each
    connection's addresses); a worker that dies takes its socket with it and its replacement
    gets a new one (:class:`api.server.Workers`).

    The sockets are created as TCP (``IPPROTO_TCP``): asyncio sets TCP_NODELAY only on
    connections accepted from such a socket, and uvicorn 0.54 creates its own with protocol 0,
    so every keep-alive response after a connection's first waited ~40 ms for Nagle's algorithm
    and the client's delayed ACK (uvicorn issue #3149)."""
    from api.server import Workers, reuseport_sockets

    sockets = reuseport_sockets(config.host, config.port, workers)
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d with %d workers", config.host, sockets[0].getsockname()[1], workers
    )
    try:
        Workers(config, sockets).run()
    finally:
        for sock in sockets:
            sock.close()


COMMANDS = [serve]
