"""Structured logs: one JSON object a line, for the server's own log and the access log."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

#: ``json.dumps(out, default=str)``'s encoder, made once (``dumps`` makes one a call when given ``default``).
_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...}``; a record's ``fields`` (``extra=``) are
    merged in, its exception (server side only) goes under ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(out)


def configure(level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's included) to standard error as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Nothing a line holds is the caller's file and line, thread or process: not looked up for every
    # record (the logging HOWTO's "Optimization"): with the encoder made once, ~20 % of an access line's CPU.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Requests are logged by api.middleware's access log (route templates, no secrets): uvicorn's
    # own access log stays off, or every request would be logged twice.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    # Two lines per anchoring tick ("Running job ...", "executed successfully") say nothing.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
