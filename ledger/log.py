"""The log of one deployment: one origin, one database; integrate and read.

Events are not appended here: they are recorded through the procurement layer
(:func:`ledger.procurement.record.record`, the OCDS importer), which checks what may be recorded
and appends it with :mod:`ledger.sequencer` in the same transaction. A mirror (``tenderproof
monitor``) copies another log's entries as they are, with :func:`replicate`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, select

from . import sequencer
from .core.checkpoint import Checkpoint
from .core.errors import InvalidArgumentError
from .store import db
from .store.reader import LogReader, TreeHead
from .store.schema import log_config


class Log:
    """A deployment's log. Thread-safe; share one per process.

    ``origin`` names the log in every envelope and checkpoint; it is written to
    the database the first time and must never change afterwards.
    """

    def __init__(self, *, engine: Engine, origin: str, group_commit: int = 256) -> None:
        self.engine = engine
        self.origin = origin
        self.reader = LogReader(engine)
        #: Concurrent single-event writes of this process commit together, up to ``group_commit``
        #: a transaction (:class:`ledger.sequencer.GroupCommit`; 1: each alone).
        self.group = sequencer.GroupCommit(engine, max_batch=group_commit)

    @classmethod
    def open(cls, url: str, *, origin: str, migrate: bool = True, group_commit: int = 256) -> Log:
        """Open (and by default migrate) the database at ``url`` as the log named ``origin``;
        ``group_commit`` as for :class:`Log`.

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
            bind_origin(engine, origin)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine=engine, origin=origin, group_commit=group_commit)

    def close(self) -> None:
        self.engine.dispose()

    def integrate(self, *, now: datetime, batch_size: int = 50_000) -> TreeHead:
        return sequencer.integrate(self.engine, now=now, batch_size=batch_size)

    def integrate_all(self, *, now: datetime, batch_size: int = 50_000, commit_heads: bool = False) -> TreeHead:
        """Integrate every pending event. ``commit_heads`` (an anchoring round's integration):
        end with a heads commitment entry (docs/spec.md §14.1), so the head returned is a size
        that may be anchored."""
        origin = self.origin if commit_heads else None
        return sequencer.integrate_all(self.engine, now=now, batch_size=batch_size, heads_origin=origin)

    def checkpoint(self) -> Checkpoint:
        head = self.reader.tree_head()
        return Checkpoint(origin=self.origin, size=head.size, root=head.root)


def bind_origin(engine: Engine, origin: str) -> None:
    """Write ``origin`` as the log's name in the database at ``engine`` the first time; raises
    :class:`InvalidArgumentError` if it already names another log."""
    with db.write_transaction(engine) as conn:
        conn.execute(db.insert_or_ignore(conn, log_config, keys=["key"]).values(key="origin", value=origin))
        stored = conn.execute(select(log_config.c.value).where(log_config.c.key == "origin")).scalar_one()
    if stored != origin:
        raise InvalidArgumentError("origin", f"this database holds the log {stored!r}, not {origin!r}")


#: An entry of another log as it serves it (see :func:`replicate`).
Replica = sequencer.Replica


def replicate(conn: Connection, start: int, entries: list[Replica], *, now: datetime) -> TreeHead:
    """Append another log's ``entries``, already checked, at ``start`` of the mirror's log whose
    database ``conn`` writes (in the caller's transaction), integrated at once: events, tiles,
    tree head and heads tree as the log they come from has them
    (:func:`ledger.sequencer.replicate`)."""
    return sequencer.replicate(conn, start, entries, now=now)
