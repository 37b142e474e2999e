"""A bulk request stores the same rows however its inserts travel (SQLite and PostgreSQL).

On PostgreSQL every table's rows of a batch go as one ``INSERT ... SELECT ... FROM unnest(...)``
(``db.insert_rows``) where they were one statement a row (psycopg's executemany, SQLAlchemy's
multi-row ``INSERT ... RETURNING`` for the events): the stored rows, ids and leaf hashes of a fixed
request must be byte for byte those the statement-per-row inserts store.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from ledger import sequencer
from ledger.core import commitment
from ledger.log import Log
from ledger.procurement.record import record
from ledger.store import db
from ledger.store.schema import events, metadata
from ledger.submission import Submission
from tests.pg import scratch_database

from .helpers import CHAIN_ID, at, bid, published
from .helpers import commitment as bid_commitment


def _request(first: int, count: int) -> list[Submission]:
    """Whole histories of ``count`` tenders from ``first``: published (with a contact point, a
    field the privacy rules mark), a clarification, two sealed bids."""
    items: list[Submission] = []
    for n in range(first, first + count):
        ocid = f"ocds-tptest-b{n:03d}"
        contact = {"name": f"Officer {n}", "email": f"officer{n}@example.org"}
        payload = published(title=f"Lot {n} works", amount=1000.0 * n + 0.5, contactPoint=contact)
        items.append(Submission(ocid=ocid, type="tender.published", payload=payload))
        items.append(
            Submission(
                ocid=ocid,
                type="tender.clarified",
                payload={"tender": {"id": "T-1", "enquiries": [{"id": f"q{n}", "answer": "Yes"}]}},
            )
        )
        for k in (1, 2):
            b, salt = bid(k, 900.0 + k)
            payload = {"bidder": b["tenderers"][0], "commitment": bid_commitment(b, salt)}
            items.append(Submission(ocid=ocid, type="bid.committed", payload=payload))
    return items


#: What opening a log writes, of its own (a random key, the empty tree's head at the time).
_OPENING = {"deployment_keys", "tree_heads"}


def _stored(log: Log) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (but :data:`_OPENING`'s), in a fixed order."""
    with log.engine.connect() as conn:
        return {
            name: sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
            for name, table in sorted(metadata.tables.items())
            if name not in _OPENING
        }


@contextmanager
def _seeds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The commitments' seeds drawn from a counter, so that two runs commit alike."""
    counter = itertools.count()
    with monkeypatch.context() as patch:
        patch.setattr(commitment._SOURCE, "take", lambda: next(counter).to_bytes(32, "big"))
        yield


def _record_two_requests(log: Log, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A first bulk request, then one that moves some of its tenders and creates others; the leaf
    hashes of both."""
    with _seeds(monkeypatch):
        first = record(log, _request(0, 3), now=at(1), signatures="optional", chain_id=CHAIN_ID)
        more = [Submission(ocid=f"ocds-tptest-b{n:03d}", type="bid.committed", payload=_third_bid()) for n in range(2)]
        second = record(log, more + _request(3, 3), now=at(2), signatures="optional", chain_id=CHAIN_ID)
    return [done.leaf_hash.hex() for done in first + second]


def _third_bid() -> dict[str, Any]:
    b, salt = bid(3, 990.0)
    return {"bidder": b["tenderers"][0], "commitment": bid_commitment(b, salt)}


def _statement_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inserts as they were: psycopg's executemany, SQLAlchemy's ``INSERT ... RETURNING``."""
    monkeypatch.setattr(db, "_unnest_statement", lambda *args: None)

    def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        if conn.dialect.name == "sqlite":
            return original(conn, rows)
        returning = events.insert().returning(events.c.id, sort_by_parameter_order=True)
        return [int(i) for i in conn.execute(returning, rows).scalars()]

    original = sequencer._insert_events
    monkeypatch.setattr(sequencer, "_insert_events", insert_events)


def test_a_bulk_request_stores_the_same_rows_as_statements_per_row(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = Log.open(db_url, origin="test.tenderproof/log")
    try:
        leaves = _record_two_requests(log, monkeypatch)
        now = _stored(log)
    finally:
        log.close()
    with _other_database(db_url, tmp_path) as other_url, monkeypatch.context() as patch:
        _statement_per_row(patch)
        before = Log.open(other_url, origin="test.tenderproof/log")
        try:
            assert _record_two_requests(before, patch) == leaves
            assert _stored(before) == now
        finally:
            before.close()
    assert len(now["events"]) == 3 * 4 + 2 + 3 * 4 and len(now["tender_index"]) == 6
    assert any(row for row in now["payloads"] if row[2] is not None)  # v2 disclosures stored


@contextmanager
def _other_database(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the engine of ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/other.sqlite3"
        return
    with scratch_database(db_url) as url:
        yield url


def test_postgresql_sends_each_table_of_a_bulk_request_in_one_statement(log: Log) -> None:
    if log.engine.dialect.name != "postgresql":
        pytest.skip("SQLite sends each table's rows as one executemany of a prepared statement")
    inserts: list[tuple[str, bool]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, many: bool) -> None:
        words = statement.split()
        # every table the statement inserts into (the events, their payloads and pending entries: one)
        inserts.extend((words[i + 2], many) for i in range(len(words) - 2) if words[i : i + 2] == ["INSERT", "INTO"])

    event.listen(log.engine, "before_cursor_execute", seen)
    try:
        record(log, _request(0, 5), now=at(1), signatures="optional", chain_id=CHAIN_ID)
    finally:
        event.remove(log.engine, "before_cursor_execute", seen)
    tables = ("events", "payloads", "pending", "tender_index")
    by_table = {table: [many for name, many in inserts if name == table] for table in tables}
    assert by_table == {table: [False] for table in tables}  # one statement each, not one a row
