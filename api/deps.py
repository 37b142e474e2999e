"""FastAPI dependencies, as ``Annotated`` aliases: ``def route(log: LogDep) -> ...``.

The application's objects live on ``app.state`` (set by :func:`api.app.create_app` and its
lifespan); nothing here is a module-level singleton.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from ledger.log import Log
from settings import Settings

Clock = Callable[[], datetime]


def get_log(request: Request) -> Log:
    opened: Log | None = request.app.state.log
    if opened is None:  # only between shutdown and the last request
        raise RuntimeError("the log is not open")
    return opened


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.now
    return clock


LogDep = Annotated[Log, Depends(get_log)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
