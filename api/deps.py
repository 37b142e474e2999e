"""FastAPI dependencies, as ``Annotated`` aliases: ``def route(log: LogDep) -> ...``.

The application's objects live on ``app.state`` (set by :func:`api.app.create_app` and its
lifespan); nothing here is a module-level singleton. The dependencies are ``async``: they do no
I/O, and a synchronous one would cost each request a hand-off to the thread pool and back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from ledger.core.note import Signer
from ledger.log import Log
from monitor.mirror import Notes
from settings import Settings

Clock = Callable[[], datetime]


async def get_log(request: Request) -> Log:
    opened: Log | None = request.app.state.log
    if opened is None:  # only between shutdown and the last request
        raise RuntimeError("the log is not open")
    return opened


async def get_read_log(request: Request) -> Log:
    """The log to read from: a replica's when :class:`api.replicas.ReadRoutingMiddleware` chose
    one for this request, else the primary's (:func:`get_log`). Only for routes that write nothing."""
    chosen: Log | None = request.scope.get("state", {}).get("read_log")
    return chosen if chosen is not None else await get_log(request)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.now
    return clock


async def get_log_signer(request: Request) -> Signer | None:
    """The log's checkpoint signer (docs/spec.md §16), read from the settings once per app."""
    state = request.app.state
    if not hasattr(state, "log_signer"):
        settings: Settings = request.app.state.settings
        text = settings.log_signing_key_text()
        state.log_signer = None if text is None else Signer.parse(text)
    signer: Signer | None = state.log_signer
    return signer


async def get_mirror(request: Request) -> Notes | None:
    """A mirror's notes (``tenderproof serve --mirror``), or None when serving the log itself."""
    mirror: Notes | None = request.app.state.mirror
    return mirror


LogDep = Annotated[Log, Depends(get_log)]
#: The log a read-only route reads from (a replica when one may serve the request).
ReadLogDep = Annotated[Log, Depends(get_read_log)]
MirrorDep = Annotated[Notes | None, Depends(get_mirror)]
LogSignerDep = Annotated[Signer | None, Depends(get_log_signer)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
