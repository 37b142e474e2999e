"""Reads from PostgreSQL streaming replicas (hot standby), writes to the primary.

A :class:`Replicas` holds one engine per standby and what the last health check found about each:
whether it answered, how much WAL it had replayed (``pg_last_wal_replay_lsn()``) and how far
behind the primary it was. :func:`check` is the health check, a plain function the server calls
every ``replica_check_interval`` seconds; :meth:`Replicas.pick` chooses where one read goes,
without I/O, from what the last check found.

Consistency is carried by a **position** (a WAL location, PostgreSQL's LSN, as an integer): every
answer tells the client a position at least as new as the state it was read from (:func:`position`,
measured after the read), and a client that sends a position back is only served by a database
that has replayed at least that far. So an officer sees their own write at once (the write's
answer carries the primary's position after its commit), and a client never sees the log go back
in time (a checkpoint, a proof or a tender it was given came from a state at or before its
position). A replica is chosen only if its last *measured* replay position is at least the
client's: replay only moves forward, so the replica has it. When no replica qualifies, or none is
healthy, the read goes to the primary, which has every committed state.

A replica is skipped while it does not answer, while it is not in recovery (a promoted standby
is not a replica any more) or while it is more than ``max_lag`` seconds behind: the time since
the primary first reported a position the replica has not replayed yet.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from ..core.errors import InvalidArgumentError
from .db import open_engine

log = logging.getLogger(__name__)

_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
#: Seconds a health check waits for a standby to accept a connection.
CONNECT_TIMEOUT = 2


def parse_position(value: str) -> int:
    """A PostgreSQL LSN (``16/B374D848``) as an integer; raises :class:`InvalidArgumentError`
    (field ``position``) for anything else."""
    found = _LSN.fullmatch(value.strip())
    if found is None:
        raise InvalidArgumentError("position", f"must be a PostgreSQL WAL location such as 0/16B3748, got {value!r}")
    return (int(found[1], 16) << 32) | int(found[2], 16)


def format_position(position: int) -> str:
    """The LSN text of ``position`` (the inverse of :func:`parse_position`)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def position(engine: Engine, *, replica: bool) -> int | None:
    """The WAL position of ``engine``'s server now: the replayed one on a replica, the current one
    on the primary (``None`` if the server has none: not PostgreSQL, or a standby not replaying)."""
    if engine.dialect.name != "postgresql":
        return None
    query = "SELECT pg_last_wal_replay_lsn()" if replica else "SELECT pg_current_wal_lsn()"
    with engine.connect() as conn:
        found = conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(query).scalar()
    return None if found is None else parse_position(str(found))


class PositionProbe:
    """:func:`position` of one server on a connection of the probe's own, kept open between calls:
    no pool checkout (whose liveness ping is a round trip of its own) and no isolation level set
    and reset, one query a call. A connection that fails (the server restarted, say) is dropped
    and the query tried once more on a new one, as the pool's ping would have. Thread-safe
    (calls take turns on the connection); :meth:`close` when done."""

    def __init__(self, engine: Engine, *, replica: bool) -> None:
        self.engine = engine
        self.query = "SELECT pg_last_wal_replay_lsn()" if replica else "SELECT pg_current_wal_lsn()"
        self._lock = threading.Lock()
        self._conn: Any = None  # a pool connection, checked out for good, in autocommit mode

    def __call__(self) -> int | None:
        """The server's position now (``None``: not PostgreSQL, or a standby not replaying).
        Raises :class:`sqlalchemy.exc.SQLAlchemyError` if the server cannot be reached."""
        if self.engine.dialect.name != "postgresql":
            return None
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None:
                        self._conn = self.engine.raw_connection()
                        self._conn.driver_connection.autocommit = True
                    cursor = self._conn.cursor()
                    try:
                        cursor.execute(self.query)
                        found = cursor.fetchone()[0]
                    finally:
                        cursor.close()
                except SQLAlchemyError:  # no connection could be made: nothing to retry on
                    raise
                except self.engine.dialect.loaded_dbapi.Error as exc:
                    self._drop()
                    if attempt == 2:
                        raise OperationalError(self.query, None, exc) from exc
                    continue
                return None if found is None else parse_position(str(found))
        return None  # not reached

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()

    def close(self) -> None:
        with self._lock:
            self._drop()


@dataclass
class Replica:
    """One standby: its engine and what the last health check found."""

    name: str
    engine: Engine
    healthy: bool = False
    #: Its replayed position now, for the answers it serves (:class:`PositionProbe`).
    probe: PositionProbe = field(init=False)
    replayed: int = 0
    lag: float = 0.0
    problem: str | None = "not checked yet"

    def __post_init__(self) -> None:
        self.probe = PositionProbe(self.engine, replica=True)


@dataclass
class Replicas:
    """The standbys of one primary. Thread-safe: checks and picks may run in different threads."""

    primary: Engine
    replicas: Sequence[Replica]
    max_lag: float = 5.0
    #: (time, primary position) of recent checks, oldest first, to tell how long a replica lags.
    _history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: The primary's current position now, for the answers it serves (:class:`PositionProbe`).
    primary_probe: PositionProbe = field(init=False)

    def __post_init__(self) -> None:
        self.primary_probe = PositionProbe(self.primary, replica=False)

    @classmethod
    def open(cls, primary: Engine, urls: Sequence[str], *, max_lag: float = 5.0) -> Replicas:
        """Engines for the standbys at ``urls`` (PostgreSQL only, each with a short connect
        timeout); nothing is connected yet. Raises :class:`InvalidArgumentError` for another backend."""
        opened: list[Replica] = []
        for i, url in enumerate(urls):
            engine = open_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT})
            if engine.dialect.name != "postgresql":
                engine.dispose()
                raise InvalidArgumentError("database_replica_urls", f"entry {i}: replicas must be PostgreSQL")
            opened.append(Replica(name=f"replica-{i}", engine=engine))
        return cls(primary=primary, replicas=opened, max_lag=max_lag)

    def close(self) -> None:
        self.primary_probe.close()
        for replica in self.replicas:
            replica.probe.close()
            replica.engine.dispose()

    def pick(self, wanted: int = 0) -> Replica | None:
        """A healthy replica that had replayed at least ``wanted`` at its last check (one at random
        among several), or ``None``: read from the primary."""
        fit = [r for r in self.replicas if r.healthy and r.replayed >= wanted]
        return random.choice(fit) if fit else None

    def skip(self, replica: Replica, problem: str) -> None:
        """Stop reading from ``replica`` until the next health check finds it well (a read on it
        failed)."""
        with self._lock:
            if replica.healthy:
                log.warning("replica %s skipped: %s", replica.name, problem)
            replica.healthy, replica.problem = False, problem

    def record(self, *, now: float, primary: int | None, replayed: dict[str, int | str]) -> None:
        """Take a health check's findings: the primary's position (``None``: not reached) and, per
        replica name, its replayed position or why it cannot serve."""
        with self._lock:
            if primary is not None:
                self._history.append((now, primary))
            for replica in self.replicas:
                found = replayed.get(replica.name, "not checked")
                if isinstance(found, str):
                    if replica.healthy or replica.problem != found:
                        log.warning("replica %s skipped: %s", replica.name, found)
                    replica.healthy, replica.problem = False, found
                    continue
                replica.replayed = found
                replica.lag = self._lag(now, found)
                if replica.lag > self.max_lag:
                    problem = f"{replica.lag:.1f} s behind the primary (more than {self.max_lag:g} s)"
                    if replica.healthy:
                        log.warning("replica %s skipped: %s", replica.name, problem)
                    replica.healthy, replica.problem = False, problem
                else:
                    if not replica.healthy:
                        log.info("replica %s serves reads (%.1f s behind the primary)", replica.name, replica.lag)
                    replica.healthy, replica.problem = True, None

    def _lag(self, now: float, replayed: int) -> float:
        """Seconds since the primary first reported a position beyond ``replayed`` (0: caught up)."""
        for seen_at, primary in self._history:
            if primary > replayed:
                return now - seen_at
        return 0.0


def check(replicas: Replicas, *, now: float) -> None:
    """One health check: the primary's position, then each replica's (in recovery, replayed
    position); the findings go to :meth:`Replicas.record`. Never raises for a database that does
    not answer: that replica is skipped until it answers again."""
    try:
        primary = position(replicas.primary, replica=False)
    except SQLAlchemyError as exc:
        log.warning("replica check: the primary did not answer: %s", _first_line(exc))
        primary = None
    found: dict[str, int | str] = {}
    for replica in replicas.replicas:
        try:
            with replica.engine.connect() as conn:
                row = (
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                    .exec_driver_sql("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()")
                    .one()
                )
        except SQLAlchemyError as exc:
            replica.engine.dispose()  # a restarted standby must get fresh connections
            found[replica.name] = f"does not answer: {_first_line(exc)}"
            continue
        if not row[0] or row[1] is None:
            found[replica.name] = "not a standby in recovery (promoted, or not replaying)"
        else:
            found[replica.name] = parse_position(str(row[1]))
    replicas.record(now=now, primary=primary, replayed=found)


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
