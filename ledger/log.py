"""The log of one deployment: one origin, one database; append, integrate, read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from . import sequencer
from .core.checkpoint import Checkpoint
from .core.errors import InvalidArgumentError
from .sequencer import Recorded, Submission
from .store import db
from .store.reader import LogReader, TreeHead
from .store.schema import log_config


class Log:
    """A deployment's log. Thread-safe; share one per process.

    ``origin`` names the log in every envelope and checkpoint; it is written to
    the database the first time and must never change afterwards.
    """

    def __init__(self, *, engine: Engine, origin: str) -> None:
        self.engine = engine
        self.origin = origin
        self.reader = LogReader(engine)

    @classmethod
    def open(cls, url: str, *, origin: str, migrate: bool = True) -> Log:
        """Open (and by default migrate) the database at ``url`` as the log named ``origin``.

        Raises :class:`InvalidArgumentError` if the database belongs to a log of another origin.
        """
        if not origin or "\n" in origin or origin != origin.strip():
            raise InvalidArgumentError(
                "origin", f"must be a non-empty single line without surrounding spaces, got {origin!r}"
            )
        engine = db.open_engine(url)
        try:
            if migrate:
                db.migrate(engine)
            _bind_origin(engine, origin)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine=engine, origin=origin)

    def close(self) -> None:
        self.engine.dispose()

    def append(self, item: Submission, *, now: datetime) -> Recorded:
        """Record one event; returns only after it is durably committed (see :func:`sequencer.append`)."""
        return sequencer.append(self.engine, item, origin=self.origin, now=now)

    def append_many(self, items: Sequence[Submission], *, now: datetime) -> list[Recorded]:
        """Record events atomically; returns only after they are durably committed."""
        return sequencer.append_many(self.engine, items, origin=self.origin, now=now)

    def integrate(self, *, now: datetime, batch_size: int = 50_000) -> TreeHead:
        return sequencer.integrate(self.engine, now=now, batch_size=batch_size)

    def integrate_all(self, *, now: datetime, batch_size: int = 50_000) -> TreeHead:
        return sequencer.integrate_all(self.engine, now=now, batch_size=batch_size)

    def checkpoint(self) -> Checkpoint:
        head = self.reader.tree_head()
        return Checkpoint(origin=self.origin, size=head.size, root=head.root)


def _bind_origin(engine: Engine, origin: str) -> None:
    with db.write_transaction(engine) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(log_config).values(key="origin", value=origin).on_conflict_do_nothing(index_elements=["key"])
        )
        stored = conn.execute(select(log_config.c.value).where(log_config.c.key == "origin")).scalar_one()
    if stored != origin:
        raise InvalidArgumentError("origin", f"this database holds the log {stored!r}, not {origin!r}")
