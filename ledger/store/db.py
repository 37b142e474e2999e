"""Engines, transactions and migrations, the same code for SQLite and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a commit is durable
when it returns, and write transactions start with ``BEGIN IMMEDIATE`` so that
writers queue for the lock up front instead of failing on upgrade. PostgreSQL
runs at READ COMMITTED; writers serialise on row locks (``SELECT ... FOR
UPDATE``) where order matters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
_WRITE = "tenderproof_write"


def normalize_url(url: str) -> str:
    """Pick the psycopg 3 driver for a bare ``postgresql://`` URL; leave others alone."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare) :]
    return url


def open_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql://...``).

    Raises ``ValueError`` for any other database.
    """
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=20, pool_timeout=60)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
    raise ValueError(f"database URL {url!r}: unsupported backend {backend!r}, use sqlite or postgresql")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite; _begin issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed when the block exits, rolled back on error.

    On SQLite it holds the database's write lock from its first statement.
    """
    with engine.connect() as conn:
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


def alembic_config(engine: Engine) -> Config:
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
    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
