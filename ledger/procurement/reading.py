"""Reading from either an engine or a connection already open (one transaction's snapshot)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine


@contextmanager
def connection(source: Connection | Engine) -> Iterator[Connection]:
    """``source`` itself when it is a connection, else a new connection of the engine (closed after)."""
    if isinstance(source, Engine):
        with source.connect() as conn:
            yield conn
    else:
        yield source
