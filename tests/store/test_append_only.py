"""The database itself refuses to rewrite history, on SQLite and PostgreSQL.

Each refused statement must leave every table byte-identical; the one change
allowed on a recorded structure, extending a tile with its old bytes as prefix,
must go through.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.log import Log
from ledger.store.guards import REFUSAL
from ledger.submission import Submission
from tests.conftest import ORIGIN, T0
from tests.recording import append, append_many

from .helpers import ALL_TABLES, check_log, snapshot

N = 300  # tiles (0, 0) full, (0, 1) with 44 hashes, (1, 0) with 1
EXTEND_ONLY = f"{REFUSAL}: a tile may only be extended"


@pytest.fixture
def filled(log: Log) -> Log:
    append_many(
        log,
        [Submission(ocid=f"ocds-abc123-{i % 3}", type="tender.amended", payload={"i": i}) for i in range(N)],
        now=T0,
    )
    log.integrate_all(now=T0, batch_size=128)
    append(log, Submission(ocid="ocds-abc123-0", type="tender.amended", payload={"pending": True}), now=T0)
    return log


def _refused(log: Log, sql: str, params: dict[str, Any] | None = None) -> str:
    """Run ``sql`` in its own transaction; it must fail; return the database's message."""
    with pytest.raises(DBAPIError) as err, log.engine.begin() as conn:
        conn.execute(text(sql), params or {})
    return str(err.value.orig)


def _dialect(log: Log) -> str:
    return log.engine.dialect.name


# (statement, the "<op> of <table>" the refusal must name)
REWRITES = [
    ("UPDATE events SET type = 'tender.cancelled' WHERE seq = 1", "UPDATE of events"),
    ("UPDATE events SET envelope = envelope", "UPDATE of events"),
    ("UPDATE events SET seq = seq", "UPDATE of events"),
    ("DELETE FROM events WHERE id = (SELECT max(id) FROM events)", "DELETE of events"),
    ("DELETE FROM events", "DELETE of events"),
    ("UPDATE log_entries SET idx = idx + 1000 WHERE idx = 299", "UPDATE of log_entries"),
    ("UPDATE log_entries SET event_id = event_id WHERE idx = 0", "UPDATE of log_entries"),
    ("DELETE FROM log_entries WHERE idx = 299", "DELETE of log_entries"),
    ("DELETE FROM log_entries", "DELETE of log_entries"),
    (
        "UPDATE tree_heads SET root = (SELECT root FROM tree_heads WHERE size = 0) WHERE size = 300",
        "UPDATE of tree_heads",
    ),
    ("UPDATE tree_heads SET size = 301 WHERE size = 300", "UPDATE of tree_heads"),
    ("DELETE FROM tree_heads WHERE size = 300", "DELETE of tree_heads"),
    ("DELETE FROM tiles WHERE level = 0 AND idx = 1", "DELETE of tiles"),
    ("DELETE FROM tiles", "DELETE of tiles"),
    ("DELETE FROM payloads WHERE event_id = 1", "DELETE of payloads"),
    ("DELETE FROM payloads", "DELETE of payloads"),
]

WITHHOLD_ONLY = f"{REFUSAL}: a payload may only be withheld, by an order later than any before"
#: Changes of a stored payload other than withholding it (migration 0017; by later orders: 0019).
PAYLOAD_REWRITES = [
    "UPDATE payloads SET body = X'7b7d' WHERE event_id = 1",
    "UPDATE payloads SET body = NULL WHERE event_id = 1",
    "UPDATE payloads SET event_id = 2, withheld_by = 5 WHERE event_id = 1",
    "UPDATE payloads SET disclosure = X'7b7d', withheld_by = NULL WHERE event_id = 1",
]


@pytest.mark.parametrize("sql", PAYLOAD_REWRITES)
def test_a_payload_changes_only_to_be_withheld_once(filled: Log, sql: str) -> None:
    before = snapshot(filled.engine)
    sql = sql.replace("X'7b7d'", "'\\x7b7d'::bytea") if _dialect(filled) == "postgresql" else sql
    assert WITHHOLD_ONLY in _refused(filled, sql)
    assert snapshot(filled.engine) == before
    part = "'\\x7b7d'::bytea" if _dialect(filled) == "postgresql" else "X'7b7d'"
    with filled.engine.begin() as conn:  # withholding in part, then more by a later order: allowed
        conn.execute(text(f"UPDATE payloads SET body = {part}, withheld_by = 5 WHERE event_id = 1"))
    assert WITHHOLD_ONLY in _refused(filled, "UPDATE payloads SET body = NULL, withheld_by = 4 WHERE event_id = 1")
    assert WITHHOLD_ONLY in _refused(filled, "UPDATE payloads SET withheld_by = NULL WHERE event_id = 1")
    with filled.engine.begin() as conn:
        conn.execute(text("UPDATE payloads SET body = NULL, withheld_by = 7 WHERE event_id = 1"))
    # withheld whole: nothing further, not even by a later order
    assert WITHHOLD_ONLY in _refused(filled, "UPDATE payloads SET withheld_by = 8 WHERE event_id = 1")
    with filled.engine.connect() as conn:
        assert conn.execute(text("SELECT body, withheld_by FROM payloads WHERE event_id = 1")).one() == (None, 7)


@pytest.mark.parametrize(("sql", "names"), REWRITES)
def test_direct_update_and_delete_are_refused(filled: Log, sql: str, names: str) -> None:
    before = snapshot(filled.engine)
    message = _refused(filled, sql)
    assert REFUSAL in message
    # SQLite names the table in the message; PostgreSQL's trigger says "<TG_OP> of <table>".
    assert f"{names} refused" in message
    assert snapshot(filled.engine) == before


ZERO = bytes(32)
# Upserts whose conflict would overwrite a stored row (standard ON CONFLICT syntax, both engines).
UPSERTS = [
    "INSERT INTO tree_heads (size, root, integrated_at) VALUES (300, :zero, :t) "
    "ON CONFLICT (size) DO UPDATE SET root = excluded.root",
    "INSERT INTO log_entries (idx, event_id) VALUES (0, (SELECT max(id) FROM events)) "
    "ON CONFLICT (idx) DO UPDATE SET event_id = excluded.event_id",
    "INSERT INTO events (id, ocid, seq, type, recorded_at, envelope, leaf_hash) "
    "SELECT id, ocid, seq, 'tender.cancelled', recorded_at, envelope, leaf_hash FROM events WHERE seq = 5 "
    "ON CONFLICT (id) DO UPDATE SET type = excluded.type",
    "INSERT INTO payloads (event_id, body) VALUES (1, :zero) ON CONFLICT (event_id) DO UPDATE SET body = excluded.body",
    "INSERT INTO tiles (level, idx, hashes) VALUES (0, 0, :zero) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
]


@pytest.mark.parametrize("sql", UPSERTS)
def test_upserts_over_recorded_rows_are_refused(filled: Log, sql: str) -> None:
    before = snapshot(filled.engine)
    assert REFUSAL in _refused(filled, sql, {"zero": ZERO, "t": T0})
    assert snapshot(filled.engine) == before


# SQLite's REPLACE deletes the colliding row without firing DELETE triggers.
REPLACES = [
    "INSERT OR REPLACE INTO tree_heads (size, root, integrated_at) VALUES (300, :zero, :t)",
    "REPLACE INTO tiles (level, idx, hashes) VALUES (0, 0, :zero)",
    "REPLACE INTO tiles (level, idx, hashes) VALUES (0, 1, (SELECT hashes || hashes FROM tiles WHERE level = 0 AND idx = 1))",
    "REPLACE INTO log_entries (idx, event_id) VALUES (0, (SELECT event_id FROM log_entries WHERE idx = 1))",
    "REPLACE INTO log_entries (idx, event_id) VALUES (5000, (SELECT event_id FROM log_entries WHERE idx = 1))",
    "INSERT OR REPLACE INTO events (id, ocid, seq, type, recorded_at, envelope, leaf_hash) "
    "SELECT id, ocid, seq, 'tender.cancelled', recorded_at, envelope, leaf_hash FROM events WHERE seq = 5",
    "INSERT OR REPLACE INTO events (ocid, seq, type, recorded_at, envelope, leaf_hash) "
    "SELECT ocid, seq, type, recorded_at, envelope, :zero FROM events WHERE seq = 5",
    "INSERT OR REPLACE INTO payloads (event_id, body) VALUES (1, :zero)",
    "INSERT OR IGNORE INTO tree_heads (size, root, integrated_at) VALUES (300, :zero, :t)",
]


@pytest.mark.parametrize("sql", REPLACES)
def test_sqlite_replace_is_refused(sqlite_url: str, sql: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    try:
        append_many(
            log,
            [Submission(ocid=f"ocds-abc123-{i % 3}", type="tender.amended", payload={"i": i}) for i in range(N)],
            now=T0,
        )
        log.integrate_all(now=T0)
        before = snapshot(log.engine)
        assert REFUSAL in _refused(log, sql, {"zero": ZERO, "t": T0})
        assert snapshot(log.engine) == before
        # Plain inserts of new rows, what the log itself does, still work.
        append(log, Submission(ocid="ocds-abc123-0", type="tender.amended", payload={}), now=T0)
        assert log.integrate_all(now=T0).size == N + 1
        check_log(log, expect_events=N + 1)
    finally:
        log.close()


def _tile_sql(dialect: str) -> dict[str, str]:
    """New values for tile (0, 1) (44 hashes), in each engine's SQL."""
    if dialect == "postgresql":
        return {
            "first byte changed": "overlay(hashes placing '\\xff'::bytea from 1 for 1)",
            "last byte changed": "overlay(hashes placing '\\xff'::bytea from length(hashes) for 1)",
            "shrunk by one hash": "substring(hashes from 1 for length(hashes) - 32)",
            "emptied": "''::bytea",
            "same bytes": "hashes",
            "longer with a changed prefix": "overlay(hashes placing '\\xff'::bytea from 1 for 1) || hashes",
            "longer with a shifted prefix": "'\\x00'::bytea || hashes",
        }
    return {
        "first byte changed": "CAST(x'ff' || substr(hashes, 2) AS BLOB)",
        "last byte changed": "CAST(substr(hashes, 1, length(hashes) - 1) || x'ff' AS BLOB)",
        "shrunk by one hash": "substr(hashes, 1, length(hashes) - 32)",
        "emptied": "x''",
        "same bytes": "hashes",
        "longer with a changed prefix": "CAST(x'ff' || substr(hashes, 2) || hashes AS BLOB)",
        "longer with a shifted prefix": "CAST(x'00' || hashes AS BLOB)",
        "extended but stored as text": "CAST(hashes || hashes AS TEXT)",
        "null": "NULL",
    }


def test_tiles_may_only_be_extended(filled: Log) -> None:
    before = snapshot(filled.engine)
    for what, new in _tile_sql(_dialect(filled)).items():
        message = _refused(filled, f"UPDATE tiles SET hashes = {new} WHERE level = 0 AND idx = 1")
        assert EXTEND_ONLY in message or (what == "null" and "NOT NULL" in message), what
        assert snapshot(filled.engine) == before, what
    for move in ("idx = 7", "level = 3", "idx = idx"):
        assert EXTEND_ONLY in _refused(filled, f"UPDATE tiles SET {move} WHERE level = 0 AND idx = 1"), move
    assert snapshot(filled.engine) == before

    # Growing a partial tile with its old bytes as prefix is what integration does: allowed.
    with filled.engine.connect() as conn:
        old = bytes(conn.execute(text("SELECT hashes FROM tiles WHERE level = 0 AND idx = 1")).scalar_one())
    assert len(old) == 44 * 32
    extra = bytes(range(64))
    with filled.engine.begin() as conn:
        conn.execute(text("UPDATE tiles SET hashes = :new WHERE level = 0 AND idx = 1"), {"new": old + extra})
    with filled.engine.connect() as conn:
        grown = bytes(conn.execute(text("SELECT hashes FROM tiles WHERE level = 0 AND idx = 1")).scalar_one())
    assert grown == old + extra
    after = snapshot(filled.engine)
    assert {t: rows for t, rows in after.items() if t != "tiles"} == {t: r for t, r in before.items() if t != "tiles"}
    assert [r for r in after["tiles"] if r[:2] != (0, 1)] == [r for r in before["tiles"] if r[:2] != (0, 1)]


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(pg_url: str) -> None:
    log = Log.open(pg_url, origin=ORIGIN)
    try:
        append_many(
            log,
            [Submission(ocid=f"ocds-abc123-{i % 3}", type="tender.amended", payload={"i": i}) for i in range(N)],
            now=T0,
        )
        log.integrate_all(now=T0)
        before = snapshot(log.engine)
        for table in ("events", "log_entries", "tree_heads", "tiles"):
            message = _refused(log, f"TRUNCATE {table} CASCADE")
            assert f"{REFUSAL}: TRUNCATE of {table} refused" in message
            assert snapshot(log.engine) == before
        # Truncating a table that references the log cascades into it, and is refused there.
        assert f"{REFUSAL}: TRUNCATE of" in _refused(log, "TRUNCATE tenders CASCADE")
        assert snapshot(log.engine) == before
    finally:
        log.close()


def test_refusals_leave_a_working_log(filled: Log) -> None:
    for sql, _ in REWRITES:
        _refused(filled, sql)
    assert filled.integrate_all(now=T0).size == N + 1
    check_log(filled, expect_events=N + 1)


# --- The heads commitment's strata (migration 0016; their nodes before, 0010) -----------------

HEADS_REWRITES = [
    "UPDATE heads_strata SET leaves = :zero WHERE version = 0",
    "UPDATE heads_strata SET version = version + 1",
    "DELETE FROM heads_strata WHERE version = 0",
    "DELETE FROM heads_strata",
]


@pytest.fixture
def committed(log: Log) -> Log:
    """Two commitments over three tenders: heads_strata holds two versions' rows."""
    for round_ in range(2):
        append_many(
            log,
            [Submission(ocid=f"ocds-abc123-{i}", type="tender.amended", payload={"r": round_}) for i in range(3)],
            now=T0,
        )
        log.integrate_all(now=T0, commit_heads=True)
    with log.engine.connect() as conn:
        assert conn.execute(text("SELECT count(DISTINCT version) FROM heads_strata")).scalar_one() == 2
    return log


@pytest.mark.parametrize("sql", HEADS_REWRITES)
def test_heads_strata_are_append_only(committed: Log, sql: str) -> None:
    before = snapshot(committed.engine, (*ALL_TABLES, "heads_strata"))
    message = _refused(committed, sql, {"zero": ZERO})
    assert REFUSAL in message and "of heads_strata refused" in message
    assert snapshot(committed.engine, (*ALL_TABLES, "heads_strata")) == before


@pytest.mark.parametrize(
    "sql",
    [
        "REPLACE INTO heads_strata (prefix, version, inners, leaves) SELECT prefix, version, inners, :zero"
        " FROM heads_strata WHERE version = 0",
        "INSERT INTO heads_strata (prefix, version, inners, leaves) SELECT prefix, version, inners, :zero"
        " FROM heads_strata WHERE version = 0 ON CONFLICT (prefix, version) DO UPDATE SET leaves = excluded.leaves",
    ],
)
def test_heads_strata_replace_and_upsert_are_refused(committed: Log, sql: str) -> None:
    if sql.startswith("REPLACE") and _dialect(committed) != "sqlite":
        pytest.skip("REPLACE is SQLite's")
    before = snapshot(committed.engine, (*ALL_TABLES, "heads_strata"))
    assert REFUSAL in _refused(committed, sql, {"zero": ZERO})
    assert snapshot(committed.engine, (*ALL_TABLES, "heads_strata")) == before
