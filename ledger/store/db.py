"""Engines, transactions and migrations, the same code for SQLite and PostgreSQL.

Every difference between the two engines is dealt with here (and in the migrations): the rest
of the code asks for what it needs (:func:`insert_or_ignore`, :func:`add_to_counter`, :func:`insert_many`,
:func:`insert_columns`, :func:`snapshot`, :func:`utc_month`) and never looks at the dialect.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a commit is durable
when it returns, and write transactions start with ``BEGIN IMMEDIATE`` so that
writers queue for the lock up front instead of failing on upgrade; the writers of
one process take their turns first-come first-served (:class:`Turns`). PostgreSQL
runs at READ COMMITTED; writers serialise on row locks (``SELECT ... FOR
UPDATE``) where order matters.
"""

from __future__ import annotations

import select
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    and_,
    create_engine,
    event,
    exc,
    func,
    insert,
    inspect,
    not_,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeEngine

from ledger.core.errors import InvariantError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_WRITE = "tenderproof_write"


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for a bare ``postgresql://`` URL; leave others alone."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


#: A pooled PostgreSQL connection idle longer than this (seconds) is pinged before it is used.
PING_AFTER_IDLE = 10.0


def open_engine(
    url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    connect_args: Mapping[str, Any] | None = None,
    ping_after_idle: float = PING_AFTER_IDLE,
) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql://...``); ``connect_args``
    go to the driver's connect (e.g. psycopg's ``connect_timeout``).

    A PostgreSQL connection taken from the pool is checked as :func:`_check_liveness` says: a
    round trip only when it has been idle ``ping_after_idle`` seconds or the server has said
    something on it since it was last used (a restart's goodbye), not on every checkout.

    Raises ``ValueError`` for any other database.
    """
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=20, pool_timeout=60)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        engine = create_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=20, connect_args=dict(connect_args or {})
        )
        _check_liveness(engine, ping_after_idle)
        return engine
    raise ValueError(f"database URL {url!r}: unsupported backend {backend!r}, use sqlite or postgresql")


def _check_liveness(engine: Engine, ping_after_idle: float) -> None:
    """Ping a pooled connection on checkout only when it may be dead, instead of on every
    checkout (``pool_pre_ping``, a round trip that was 20-38 % of a proof bundle's time).

    A connection may be dead when the server has sent something on it while it sat in the pool
    (its socket is readable: a restart or ``pg_terminate_backend`` ends each session with a
    FATAL message and closes the socket, so this sees a restart without a round trip) or when it
    has been idle ``ping_after_idle`` seconds (a host or network gone silently). A failed ping
    discards the connection (and, for a disconnect, every pooled connection opened before it)
    and the pool hands out a new one, as ``pool_pre_ping`` does. A connection that dies between
    the check and its use fails that one statement; SQLAlchemy then discards the pool's older
    connections, so the requests after it reconnect.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None:  # opened for this checkout
            return
        if time.monotonic() - idle_since < ping_after_idle and not _server_spoke(dbapi_connection):
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError(f"ping failed: {error}") from error
            raise exc.DisconnectionError(f"ping failed: {error}") from error


def _server_spoke(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has anything to read (or is closed, or gone): an
    idle PostgreSQL session is sent nothing unless the server is ending it (or a notice)."""
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except Exception:  # no socket to ask: let the ping find out
        return True


def _configure_sqlite(engine: Engine) -> None:
    setattr(engine, _TURNS, Turns())

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite; _begin issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


#: Seconds a SQLite writer waits for the write lock (its turn, then SQLite's busy handler) before
#: it fails as SQLite would: ``database is locked``.
BUSY_TIMEOUT = 60.0


class Turns:
    """A first-come first-served lock: :meth:`take` waits for the turns of those who came before.

    SQLite's writers wait for the database's write lock in its busy handler, which retries after
    sleeps growing to 100 ms: a writer that comes along just as the lock is released takes it
    before those sleeping, over and over, so one of four bulk requests on one worker waited 2.3 s
    (p95) where the median took 0.2 s. The writers of a process queue here instead, each woken
    by the one before it as it finishes. A thread that holds a turn passes through (a
    :func:`write_transaction` nested in another of the same thread then meets SQLite's own lock,
    as it did before there were turns).
    """

    def __init__(self, *, timeout: float = BUSY_TIMEOUT) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._taken = False
        self._holder = threading.local()

    @property
    def waiting(self) -> int:
        """How many threads wait for their turn now."""
        with self._lock:
            return len(self._waiting)

    @contextmanager
    def take(self) -> Iterator[None]:
        """Hold the turn for the block (at once when this thread already holds it). Raises
        SQLAlchemy's ``OperationalError`` (``database is locked``, as SQLite after its busy timeout)
        when the turn has not come within ``timeout`` seconds."""
        if getattr(self._holder, "held", False):
            yield
            return
        with self._lock:
            turn = None
            if self._taken or self._waiting:
                turn = threading.Event()
                self._waiting.append(turn)
            self._taken = True
        # The turn is handed over by the one before (nobody else takes it meanwhile), or given up.
        if turn is not None and not turn.wait(self.timeout):
            self._give_up(turn)
        self._holder.held = True
        try:
            yield
        finally:
            self._holder.held = False
            with self._lock:
                if self._waiting:
                    self._waiting.popleft().set()
                else:
                    self._taken = False

    def _give_up(self, turn: threading.Event) -> None:
        """Leave the queue after waiting too long, unless the turn came meanwhile (then keep it)."""
        with self._lock:
            if turn.is_set():
                return
            self._waiting.remove(turn)
        locked = sqlite3.OperationalError("database is locked")
        raise exc.OperationalError("BEGIN IMMEDIATE", None, locked)


#: Each SQLite engine's :class:`Turns` (made with the engine, in :func:`_configure_sqlite`).
_TURNS = "tenderproof_turns"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed when the block exits, rolled back on error.

    On SQLite it holds the database's write lock from its first statement, and the writers of
    one engine take that lock in the order they asked for it (:class:`Turns`).
    """
    turns: Turns | None = getattr(engine, _TURNS, None)
    with turns.take() if turns is not None else nullcontext(), engine.connect() as conn:
        conn = conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for reads.

    Statement-level consistency is all the log's readers need: tiles and tree
    heads only ever grow, so a node complete at the head size read first is
    still there, unchanged, for the statements that follow. (A stricter
    isolation level, or even BEGIN/COMMIT, costs PostgreSQL extra round trips
    on every read, so there reads run in autocommit mode.)
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        with conn.begin():
            yield conn


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one state of the database from its first read to its end.

    PostgreSQL: REPEATABLE READ, READ ONLY. SQLite (WAL): a deferred transaction, whose
    snapshot is fixed by its first read. Writers may go on meanwhile; the reader sees the
    database as it was.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin() as transaction:
            try:
                yield conn
            finally:
                transaction.rollback()


def _insert_of(dialect: str) -> Callable[[Table], Any]:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def insert_or_ignore(conn: Connection, table: Table, *, keys: Sequence[str] | None = None) -> Insert:
    """``INSERT INTO table ... ON CONFLICT (keys) DO NOTHING`` (any unique key when ``keys`` is
    ``None``), to complete with ``.values()`` and execute on ``conn``. Built once per dialect,
    table and keys (statements are generative: what completes it makes a new one), so that
    SQLAlchemy finds its compiled form by identity, as every write's tender row needs."""
    return _insert_or_ignore(conn.dialect.name, table, None if keys is None else tuple(keys))


@lru_cache(maxsize=64)
def _insert_or_ignore(dialect: str, table: Table, keys: tuple[str, ...] | None) -> Insert:
    statement: Insert = _insert_of(dialect)(table).on_conflict_do_nothing(index_elements=keys)
    return statement


def add_to_counter(conn: Connection, table: Table, *, keys: tuple[str, ...], column: str) -> Insert:
    """``INSERT INTO table ... ON CONFLICT (keys) DO UPDATE SET column = column + excluded.column``:
    a counter moved by each row's ``column`` (a new key starts at it). Built once per dialect,
    table, keys and column."""
    return _add_to_counter(conn.dialect.name, table, keys, column)


@lru_cache(maxsize=64)
def _add_to_counter(dialect: str, table: Table, keys: tuple[str, ...], column: str) -> Insert:
    statement = _insert_of(dialect)(table)
    counter: Insert = statement.on_conflict_do_update(
        index_elements=list(keys), set_={column: table.c[column] + statement.excluded[column]}
    )
    return counter


def insert_columns(conn: Connection, table: Table, columns: Mapping[str, Sequence[int]]) -> None:
    """Insert rows given column by column (integer columns of equal length).

    On PostgreSQL the batch travels as one array per column in one statement (per-row
    executemany costs ~16 us a row there); elsewhere it is an executemany.
    """
    names = list(columns)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"%({name})s::bigint[]" for name in names)
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})",
            {name: list(values) for name, values in columns.items()},
        )
    else:
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        if rows:
            conn.execute(insert(table), rows)


def utc_month(conn: Connection, moment: ColumnElement[Any]) -> ColumnElement[str]:
    """``YYYY-MM`` of a timestamp column, in UTC."""
    if conn.dialect.name == "postgresql":
        month: ColumnElement[str] = func.to_char(func.timezone("UTC", moment), "YYYY-MM")
    else:
        month = func.strftime("%Y-%m", moment)
    return month


def insert_many(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, replace_on: tuple[str, ...] = ()
) -> None:
    """``INSERT`` ``rows`` (all with the same keys) into ``table``, in one statement per batch.

    The values are what ``conn.execute(insert(table), rows)`` would store (each goes through its
    column type's bind processor for the connection's dialect); what is saved is SQLAlchemy's
    per-row work: the statement is compiled once per dialect, table and set of columns. For bulk
    writers (imports, bulk requests) where that work costs more than the database's.

    On SQLite the driver's executemany of one prepared statement, or for a table marked
    :data:`MANY_ROWS` ``INSERT ... VALUES (...), (...)`` of up to :data:`SQLITE_ROWS` rows a
    statement, in the order given. On PostgreSQL the rows travel
    as one array per column in one ``INSERT ... SELECT ... FROM unnest(...)`` (:func:`insert_rows`),
    where psycopg's executemany parses and sends a statement per row.

    With ``replace_on`` (the columns of a unique key), a row whose key is already there replaces
    that row's other columns (``INSERT ... ON CONFLICT (key) DO UPDATE``, SQLite and PostgreSQL).
    """
    insert_rows(conn, table, rows, replace_on=replace_on)


def replace_sparing_indexes(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    replace_on: tuple[str, ...],
    stored: Sequence[Mapping[str, Any]],
) -> None:
    """:func:`insert_many` with ``replace_on``, where a row replaced (one of ``stored``, those of
    ``rows`` whose key may be there already) leaves the table's indexes alone when none of their
    columns changes: on SQLite, whose ``UPDATE`` rewrites the entry of every index that has a column
    of its ``SET`` (the same value written back, but its leaf page dirtied, written into the WAL at
    the commit and checkpointed), the rows go in two statements: every column of those whose
    indexed columns change (a new row is inserted), then only the unindexed columns of ``stored``.
    An import rewrites ``tender_index`` rows in the order tenders come, not their keys': each rewrite
    of all its columns dirtied a random leaf of each of its five indexes (bench/RESULTS-import.md,
    t33i). The rows stored are those one statement would store (a replaced row keeps its rowid);
    on PostgreSQL, whose update leaves the indexes alone itself when their columns keep their
    values (a heap-only tuple), one statement."""
    if conn.dialect.name != "sqlite" or not stored or not rows:
        insert_rows(conn, table, rows, replace_on=replace_on)
        return
    indexed = {column.name for index in table.indexes for column in index.columns}
    keys = tuple(rows[0])
    insert_rows(conn, table, rows, replace_on=replace_on, replace_when=tuple(k for k in keys if k in indexed))
    unindexed = tuple(k for k in keys if k not in indexed and k not in replace_on)
    if unindexed:
        insert_rows(conn, table, stored, replace_on=replace_on, replace_only=unindexed)


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    replace_on: tuple[str, ...] = (),
    ignore_on: tuple[str, ...] = (),
    returning: tuple[str, ...] = (),
    replace_only: tuple[str, ...] = (),
    replace_when: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """:func:`insert_many`, and with ``returning`` (column names) those columns of each row
    inserted, in no particular order (PostgreSQL only).
    With ``ignore_on`` (the columns of a unique key; not with ``replace_on``), a row whose key is
    already there is left out (``ON CONFLICT (key) DO NOTHING``). SQLite only, with ``replace_on``:
    ``replace_only`` (columns) is what a replaced row has set (else every column but the key's),
    ``replace_when`` (columns) replaces a row only where one of them changes (else always);
    see :func:`replace_sparing_indexes`.

    On PostgreSQL, rows whose ``replace_on`` key repeats one later in ``rows`` are left out (one
    statement cannot update a row twice; the later row is what one statement a row would have
    left), and a batch whose values psycopg cannot send as one array per column (a column of
    values of several types) is sent row by row as before."""
    if not rows:
        return []
    if replace_on and ignore_on:
        raise InvariantError("insert_rows: replace_on and ignore_on are exclusive")
    dialect = conn.dialect
    keys = tuple(rows[0])
    if dialect.name == "postgresql":
        arrays = _unnest_statement(dialect, table, keys, replace_on, returning, ignore_on)
        if arrays is not None:
            sql, names, processors = arrays
            if replace_on:
                key = itemgetter(*replace_on)
                rows = list({key(row): row for row in rows}.values())
            columns = _columns(rows, names, processors)
            if columns is not None:
                result = conn.exec_driver_sql(sql, tuple(columns))
                return [tuple(row) for row in result] if returning else []
    if returning:
        raise InvariantError(f"insert_rows: returning {returning} needs PostgreSQL's unnest, not {dialect.name}")
    if (replace_only or replace_when) and (dialect.name != "sqlite" or not replace_on):
        raise InvariantError("insert_rows: replace_only and replace_when are SQLite's, with replace_on")
    sql, names, pairs, named = _compiled_insert(dialect, table, keys, replace_on, ignore_on, replace_only, replace_when)
    # column by column: each column through its processor, the rows then zipped together in C
    by_column: list[list[Any]] = [list(map(itemgetter(name), rows)) for name in names]
    for i, process in pairs:
        by_column[i] = _processed(by_column[i], process)
    values: list[Any] = list(zip(*by_column, strict=True))
    if not (dialect.name == "sqlite" and not named and table.info.get(MANY_ROWS)):
        if named:
            values = [dict(zip(names, row, strict=True)) for row in values]
        conn.exec_driver_sql(sql, values)
        return []
    width = len(names)
    flat = [value for row in values for value in row]
    most = max(1, min(SQLITE_ROWS, _sqlite_variables(conn) // width))
    start = 0
    while start < len(flat):
        # a power of two of rows a statement: a few statements of each table prepared and kept by
        # the driver (whose cache holds a statement of every row count met, each large), not one
        # of every batch's count
        count = min(most, 1 << ((len(flat) - start) // width).bit_length() - 1)
        end = start + count * width
        conn.exec_driver_sql(_rows_sql(sql, width, count), tuple(flat[start:end]))
        start = end
    return []


def _processed(values: list[Any], process: Callable[[Any], Any]) -> list[Any]:
    """``values`` through a column's bind ``process``: a value repeated from the row before (a
    batch's ``recorded_at``) is processed once."""
    out: list[Any] = []
    seen: Any = _NOTHING
    made: Any = None
    for value in values:
        if value is not seen:
            seen, made = value, process(value)
        out.append(made)
    return out


#: The ``Table.info`` key of a table whose SQLite inserts write an FTS5 table (its triggers):
#: :func:`insert_rows` writes its rows many a statement (``VALUES (...), (...)``), where an
#: executemany runs a statement a row and SQLite opens a savepoint of the FTS5 table at each, where
#: FTS5 writes out what it has buffered as a segment, to merge again (``tender_index``: ~60 % of its
#: insert's CPU). Not for other tables: a statement of many rows into tables of several indexes
#: keeps a larger statement journal, and costs more than the executemany (bench/RESULTS-import.md).
MANY_ROWS = "sqlite_many_rows"

#: The most rows of one ``INSERT ... VALUES`` statement on SQLite (:func:`insert_rows`), within
#: the connection's bound on a statement's parameters.
SQLITE_ROWS = 256


def _sqlite_variables(conn: Connection) -> int:
    """The most parameters one statement of ``conn``'s SQLite may have (999 before 3.32)."""
    raw = conn.connection.dbapi_connection
    return int(raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if raw is not None else 999


@lru_cache(maxsize=256)
def _rows_sql(sql: str, width: int, rows: int) -> str:
    """``sql``, an ``INSERT`` of one row of ``width`` positional parameters, inserting ``rows``."""
    one = "(" + ", ".join(["?"] * width) + ")"
    head, found, tail = sql.partition(f"VALUES {one}")
    if not found or one in tail:
        raise InvariantError(f"insert_rows: no single VALUES {one} in {sql!r}")
    return f"{head}VALUES {', '.join([one] * rows)}{tail}"


#: The PostgreSQL array type each column type travels as in :func:`insert_rows` (its element type
#: without a length: the insert itself refuses a string too long for its column, as ``VALUES``
#: does, where a cast to ``varchar(n)[]`` would cut it), and the Python types its values may have.
_ARRAYS: tuple[tuple[type[TypeEngine[Any]], str, tuple[type, ...]], ...] = (
    (String, "text[]", (str,)),
    (BigInteger, "bigint[]", (int,)),
    (SmallInteger, "bigint[]", (int,)),
    (Integer, "bigint[]", (int,)),
    (Float, "double precision[]", (float, int)),
    (LargeBinary, "bytea[]", (bytes,)),
    (DateTime, "timestamptz[]", (datetime,)),
)


@lru_cache(maxsize=256)
def _unnest_statement(
    dialect: Dialect,
    table: Table,
    keys: tuple[str, ...],
    replace_on: tuple[str, ...],
    returning: tuple[str, ...],
    ignore_on: tuple[str, ...] = (),
) -> tuple[str, tuple[str, ...], tuple[tuple[Callable[[Any], Any] | None, tuple[type, ...]], ...]] | None:
    """``INSERT INTO table (keys) SELECT ... FROM unnest(%s::type[], ...)`` (``ON CONFLICT (replace_on)
    DO UPDATE`` the other columns, or ``ON CONFLICT (ignore_on) DO NOTHING``; ``RETURNING
    returning``) for PostgreSQL; the keys in parameter
    order; each one's bind processor and the Python types its values may have. None when a
    column's type is not one :data:`_ARRAYS` knows."""
    quote = dialect.identifier_preparer.quote
    casts: list[str] = []
    kinds: list[tuple[Callable[[Any], Any] | None, tuple[type, ...]]] = []
    for name in keys:
        column_type = table.c[name].type
        known = next(((array, py) for kind, array, py in _ARRAYS if isinstance(column_type, kind)), None)
        if known is None:
            return None
        array = "timestamp[]" if isinstance(column_type, DateTime) and not column_type.timezone else known[0]
        casts.append(f"%b::{array}")
        # psycopg sends bytes as bytea itself (SQLAlchemy's processor wraps them in its Binary)
        process = (
            None if isinstance(column_type, LargeBinary) else column_type.dialect_impl(dialect).bind_processor(dialect)
        )
        kinds.append((process, known[1]))
    # in the arrays' order (WITH ORDINALITY ... ORDER BY, as SQLAlchemy's own "insertmanyvalues"
    # does): an identity column numbers the rows in the order given
    names = ", ".join(quote(k) for k in keys)
    sql = (
        f"INSERT INTO {quote(table.name)} ({names}) SELECT {names}"
        f" FROM unnest({', '.join(casts)}) WITH ORDINALITY AS given ({names}, position) ORDER BY position"
    )
    if replace_on:
        others = [k for k in keys if k not in replace_on]
        action = (
            "DO UPDATE SET " + ", ".join(f"{quote(k)} = excluded.{quote(k)}" for k in others)
            if others
            else "DO NOTHING"
        )
        sql += f" ON CONFLICT ({', '.join(quote(k) for k in replace_on)}) {action}"
    elif ignore_on:
        sql += f" ON CONFLICT ({', '.join(quote(k) for k in ignore_on)}) DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(quote(k) for k in returning)}"
    return sql, keys, tuple(kinds)


def _columns(
    rows: Sequence[Mapping[str, Any]],
    names: tuple[str, ...],
    kinds: tuple[tuple[Callable[[Any], Any] | None, tuple[type, ...]], ...],
) -> list[list[Any]] | None:
    """``rows`` as one list per column (each value through its bind processor; a float column's
    integers as floats, which psycopg cannot send in one array with floats); None when a
    column holds a value of a type its array does not take."""
    columns: list[list[Any]] = []
    for name, (process, types) in zip(names, kinds, strict=True):
        values = [row[name] for row in rows]
        for v in values:
            if v is not None and (not isinstance(v, types) or isinstance(v, bool)):
                return None
        if float in types:
            values = [float(v) if type(v) is int else v for v in values]
        if process is not None:
            values = [process(v) for v in values]
        columns.append(values)
    return columns


_NOTHING = object()


@lru_cache(maxsize=256)
def _compiled_insert(
    dialect: Dialect,
    table: Table,
    keys: tuple[str, ...],
    replace_on: tuple[str, ...],
    ignore_on: tuple[str, ...] = (),
    replace_only: tuple[str, ...] = (),
    replace_when: tuple[str, ...] = (),
) -> tuple[str, tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...], bool]:
    """The SQL of ``INSERT INTO table (keys)`` (``ON CONFLICT (replace_on) DO UPDATE`` the columns
    ``replace_only`` or all the others, where one of ``replace_when`` changes if given; ``ON CONFLICT
    (ignore_on) DO NOTHING``) for
    ``dialect``; the keys in the order of its parameters; the bind processor of each place that
    has one; whether the parameters are named (else positional)."""
    statement: Insert = insert(table)
    if replace_on:
        replace = _insert_of(dialect.name)(table)
        same = [table.c[k].is_not_distinct_from(replace.excluded[k]) for k in replace_when]
        statement = replace.on_conflict_do_update(
            index_elements=list(replace_on),
            set_={k: replace.excluded[k] for k in replace_only or keys if k not in replace_on},
            where=not_(and_(*same)) if same else None,
        )
    elif ignore_on:
        statement = _insert_of(dialect.name)(table).on_conflict_do_nothing(index_elements=list(ignore_on))
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = keys if compiled.positiontup is None else tuple(compiled.positiontup)
    processors = tuple(
        (i, process)
        for i, name in enumerate(names)
        if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
        # sqlite3 binds bytes as a BLOB itself (SQLAlchemy's processor wraps them in a memoryview)
        and not (dialect.name == "sqlite" and isinstance(table.c[name].type, LargeBinary))
    )
    return compiled.string, names, processors, compiled.positiontup is None


def alembic_config(engine: Engine) -> Config:
    """Alembic's configuration for ``engine``. Alembic is imported here, when a schema is
    migrated: its ~9 MB of modules stay out of the processes that only read the schema's tables
    (the import's checking workers, :mod:`ledger.procurement.importer`)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


#: Key of the PostgreSQL advisory lock that serialises migrations (processes starting together).
MIGRATION_LOCK = 0x7465_6E64_6572  # "tender"


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (idempotent). On PostgreSQL, processes that
    start together take turns (an advisory lock held by the migration's transaction): the
    first migrates, the others then find the schema up to date."""
    from alembic import command  # imported here: see alembic_config

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def is_migrated(engine: Engine) -> bool:
    return inspect(engine).has_table("log_state")


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``"base"`` drops everything). Destroys data."""
    from alembic import command  # imported here: see alembic_config

    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


#: Derived tables rewritten when payloads are withheld (ledger.procurement.withholding): with
#: ``payloads`` and ``events`` (whose dropped payload column keeps old bytes until rewritten),
#: what :func:`purge` rewrites on PostgreSQL.
PURGED_TABLES = (
    "payloads", "events", "tender_index", "tender_parties", "tender_suppliers", "supplier_wins",
    "tender_flags", "ledger_flags", "tender_awarded", "ocds_compiled", "ocds_releases",
)  # fmt: skip


def purge(engine: Engine) -> list[str]:
    """Remove from the database files the bytes of withheld payloads and of the rows rewritten
    when they were withheld (docs/operations.md, "Purging withheld data"); return the
    statements run. SQLite: merge the full-text index, checkpoint the WAL, VACUUM, checkpoint
    again (truncating the WAL). PostgreSQL: ``VACUUM FULL`` of :data:`PURGED_TABLES` (each
    rewritten with its TOAST table; dropped columns written as NULL), then ``CHECKPOINT``.
    Takes exclusive locks while it runs: writers wait. PostgreSQL keeps the row versions that a
    transaction still running may see: run it when none is (or again once they end)."""
    if engine.dialect.name == "sqlite":
        statements = []
        with engine.connect() as conn:
            fts = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'tender_search'").first()
        if fts is not None:
            statements.append("INSERT INTO tender_search(tender_search) VALUES ('optimize')")
        statements += ["PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"]
    else:
        statements = [f"VACUUM FULL {table}" for table in PURGED_TABLES] + ["CHECKPOINT"]
    raw = engine.raw_connection()  # outside any transaction: VACUUM cannot run in one
    try:
        if engine.dialect.name == "postgresql":
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        cursor = raw.cursor()
        for statement in statements:
            cursor.execute(statement)
            if cursor.description is not None:
                cursor.fetchall()
        cursor.close()
    finally:
        if engine.dialect.name == "postgresql":
            raw.driver_connection.autocommit = False  # type: ignore[union-attr]
        raw.close()
    return statements
