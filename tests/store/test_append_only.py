"""The database itself refuses to rewrite history, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.log import Log
from ledger.sequencer import Submission
from ledger.store.guards import REFUSAL
from tests.conftest import T0


def _snapshot(log: Log) -> dict[str, list[tuple[object, ...]]]:
    with log.engine.connect() as conn:
        return {
            table: sorted(tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}")))
            for table in ("events", "log_entries", "tree_heads", "tiles", "tenders")
        }


@pytest.fixture
def filled(log: Log) -> Log:
    log.append_many(
        [Submission(ocid=f"ocds-abc123-{i % 3}", type="tender.amended", payload={"i": i}) for i in range(300)], now=T0
    )
    log.integrate_all(now=T0)
    return log


def _refused(log: Log, sql: str) -> str:
    with pytest.raises(DBAPIError) as err, log.engine.begin() as conn:
        conn.execute(text(sql))
    return str(err.value.orig)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET type = 'tender.cancelled' WHERE seq = 1",
        "UPDATE events SET payload = envelope",
        "DELETE FROM events WHERE seq = 99",
        "DELETE FROM events",
        "UPDATE log_entries SET event_id = event_id WHERE idx = 0",
        "DELETE FROM log_entries WHERE idx = 299",
        "UPDATE tree_heads SET root = root",
        "DELETE FROM tree_heads",
        "DELETE FROM tiles",
    ],
)
def test_direct_changes_are_refused(filled: Log, sql: str) -> None:
    before = _snapshot(filled)
    message = _refused(filled, sql)
    assert REFUSAL in message
    assert _snapshot(filled) == before


def test_tiles_may_only_be_extended(filled: Log) -> None:
    before = _snapshot(filled)
    dialect = filled.engine.dialect.name
    concat = "hashes || hashes" if dialect == "postgresql" else "CAST(hashes || hashes AS BLOB)"
    first_byte_changed = (
        "overlay(hashes placing '\\xff'::bytea from 1 for 1)"
        if dialect == "postgresql"
        else "CAST(x'ff' || substr(hashes, 2) AS BLOB)"
    )
    shrunk = "substring(hashes from 1 for 32)" if dialect == "postgresql" else "substr(hashes, 1, 32)"
    as_text = "hashes" if dialect == "postgresql" else "CAST(hashes || hashes AS TEXT)"
    for new in (first_byte_changed, shrunk, "hashes", as_text):
        assert "a tile may only be extended" in _refused(
            filled, f"UPDATE tiles SET hashes = {new} WHERE level = 0 AND idx = 1"
        )
    assert "a tile may only be extended" in _refused(filled, "UPDATE tiles SET idx = 7 WHERE level = 0 AND idx = 1")
    assert _snapshot(filled) == before
    # Growing a partial tile with its old bytes as prefix is what integration does: allowed.
    with filled.engine.begin() as conn:
        conn.execute(text(f"UPDATE tiles SET hashes = {concat} WHERE level = 0 AND idx = 1"))
        grown = conn.execute(text("SELECT length(hashes) FROM tiles WHERE level = 0 AND idx = 1")).scalar_one()
    assert grown == 2 * 44 * 32


@pytest.mark.postgres
def test_truncate_is_refused_on_postgresql(pg_url: str) -> None:
    log = Log.open(pg_url, origin="tenderproof.test/log")
    try:
        log.append(Submission(ocid="ocds-abc123-1", type="tender.planned", payload={}), now=T0)
        log.integrate_all(now=T0)
        before = _snapshot(log)
        for table in ("events", "log_entries", "tree_heads", "tiles"):
            assert REFUSAL in _refused(log, f"TRUNCATE {table} CASCADE")
        assert _snapshot(log) == before
    finally:
        log.close()
