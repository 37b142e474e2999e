"""The monitor's own database: the mirrored entries and what the monitor has verified.

Separate from the log's schema (the monitor never writes to a log); created on first use.
Every round's progress is committed with the entries it covers, so a monitor killed at any
moment (kill -9 included) resumes from its last committed page and repeats nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy import Table as _Table

from ledger.store import db

metadata = MetaData()

Id = BigInteger().with_variant(Integer(), "sqlite")

#: One row (id = 1): where the monitor stands.
state = _Table(
    "monitor_state",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("origin", String(1024), nullable=True),
    Column("log_key", String(1024), nullable=True),
    #: Entries mirrored: [0, size).
    Column("size", BigInteger, nullable=False),
    #: The compact range of [0, size): its border hashes concatenated (ledger.core.merkle).
    Column("border", LargeBinary, nullable=False),
    #: The largest signed checkpoint whose root the monitor recomputed and found equal.
    Column("verified_size", BigInteger, nullable=False),
    #: Next already-mirrored index to re-read and compare (a rolling re-check).
    Column("recheck_at", BigInteger, nullable=False),
)

#: The mirror: every entry's exact leaf bytes and payload bytes (NULL when withheld).
entries = _Table(
    "monitor_entries",
    metadata,
    #: The row id on SQLite (INTEGER PRIMARY KEY: no second index to write per row), BIGINT elsewhere.
    Column("idx", Id, primary_key=True, autoincrement=False),
    Column("ocid", String(256), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("leaf_data", LargeBinary, nullable=False),
    Column("payload", LargeBinary, nullable=True),
)

#: Each envelope v2 entry's disclosure as served (RFC 8785 bytes), beside its ``monitor_entries``
#: row: what a mirror copied from these tables later (``--mirror`` given later) serves with the
#: payload. A table of its own, not a column: the monitor's tables are created on first use and
#: never altered, so a database written before gains it as it is opened (the entries it mirrored
#: before then have no row: see docs/operations.md).
disclosures = _Table(
    "monitor_disclosures",
    metadata,
    Column("idx", Id, primary_key=True, autoincrement=False),
    Column("disclosure", LargeBinary, nullable=False),
)

#: Each tender's head as of ``monitor_state.size`` (what the next event must chain on).
heads = _Table(
    "monitor_heads",
    metadata,
    Column("ocid", String(256), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("head", LargeBinary(32), nullable=False),
)

#: The root of [0, size) at every size the monitor passed a page end or a checkpoint.
roots = _Table(
    "monitor_roots",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
)

#: Every signed checkpoint the monitor read and checked, as served.
checkpoints = _Table(
    "monitor_checkpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("seen_at", String(40), nullable=False),
)

#: Every finding, once (``key`` names it: a repeated observation is not reported again).
findings = _Table(
    "monitor_findings",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("found_at", String(40), nullable=False),
)

#: Anchors already checked against a chain: (chain, anchor id).
anchors_checked = _Table(
    "monitor_anchors",
    metadata,
    Column("chain", String(64), primary_key=True),
    Column("anchor_id", BigInteger, primary_key=True, autoincrement=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("block_timestamp", BigInteger, nullable=True),
)

#: One row (id = 1) when the database also holds a mirror (monitor.mirror): the mirror's size its
#: projections were last rebuilt at.
mirror = _Table(
    "monitor_mirror",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("projected_size", BigInteger, nullable=False),
)


def open_engine(url: str) -> Engine:
    """The monitor's database at ``url`` (SQLite or PostgreSQL, configured as the log's own
    database is: :func:`ledger.store.db.open_engine`), its tables created if missing."""
    engine = db.open_engine(url)
    metadata.create_all(engine)
    return engine


def executemany(conn: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run ``sql`` (``?`` placeholders) once per row through the driver: a catch-up writes
    thousands of rows per transaction, and SQLAlchemy's per-row parameter processing would cost
    more than the monitor's own checks."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, list(rows))


#: Values per ``IN (...)`` list of :func:`fetch_in` (under SQLite's oldest limit of 999 parameters).
_IN_CHUNK = 900


def fetch_in(conn: Connection, sql: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``sql``, whose ``{}`` is an ``IN`` list given one placeholder per value, run
    through the driver in chunks: a batch of a catch-up looks up ~1,000 tenders at a time, and
    SQLAlchemy's expanding ``in_()`` processes each value in Python (~10 % of the check)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows: list[tuple[Any, ...]] = []
    for at in range(0, len(values), _IN_CHUNK):
        chunk = tuple(values[at : at + _IN_CHUNK])
        rows += [tuple(row) for row in conn.exec_driver_sql(sql.format(", ".join([mark] * len(chunk))), chunk)]
    return rows
