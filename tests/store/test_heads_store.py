"""The heads commitment as the log persists it (docs/spec.md §14): every commitment entry and
every stored version of the tree against a naive recomputation from the raw entries, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.core import heads
from ledger.log import Log
from ledger.store import heads as heads_store
from ledger.store.db import read_transaction
from ledger.store.reader import EVENTS_FROM
from ledger.store.schema import events, log_entries, payloads
from ledger.submission import Submission
from tests.conftest import ORIGIN, PG_ADMIN_URL, T0
from tests.core import heads_reference as ref
from tests.pg import scratch_database
from tests.recording import append_many

OCIDS = [f"ocds-abc123-{i}" for i in range(12)] + ["ocds-tpreg0-officers"]
#: A round: the ocids of its events, and whether the round ends as an anchoring round does.
_rounds = st.lists(
    st.tuples(st.lists(st.sampled_from(OCIDS), min_size=0, max_size=25), st.booleans()), min_size=1, max_size=6
)


@contextmanager
def _fresh(engine: str) -> Iterator[Log]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            log = Log.open(f"sqlite:///{Path(tmp) / 'log.sqlite3'}", origin=ORIGIN)
            try:
                yield log
            finally:
                log.close()
    else:
        with scratch_database(PG_ADMIN_URL) as url:
            log = Log.open(url, origin=ORIGIN)
            try:
                yield log
            finally:
                log.close()


def _entries(log: Log) -> list[tuple[str, bytes, int]]:
    with read_transaction(log.engine) as conn:
        rows = conn.execute(
            select(events.c.ocid, events.c.leaf_hash, events.c.seq)
            .join(log_entries, log_entries.c.event_id == events.c.id)
            .order_by(log_entries.c.idx)
        ).all()
    return [(r.ocid, bytes(r.leaf_hash), r.seq) for r in rows]


def check_commitments(log: Log) -> int:
    """Every commitment entry's payload and every stored version against the naive map; returns
    the number of commitments."""
    entries = _entries(log)
    count = 0
    for index, (ocid, _, seq) in enumerate(entries):
        if ocid != heads.HEADS_OCID:
            continue
        assert seq == count, f"commitment at {index} has seq {seq}"
        count += 1
        with read_transaction(log.engine) as conn:
            payload = json.loads(
                conn.execute(
                    select(payloads.c.body)
                    .select_from(EVENTS_FROM)
                    .where(events.c.ocid == heads.HEADS_OCID, events.c.seq == seq)
                ).scalar_one()
            )
            naive = ref.heads([(o, lh) for o, lh, _ in entries[:index]])
            assert payload == {"tree_size": index, "heads_root": ref.root(naive).hex(), "tenders": len(naive)}
            root = bytes.fromhex(payload["heads_root"])
            for o in [*OCIDS, "ocds-abc123-never"]:
                k = heads.key(o)
                p = heads_store.prove(conn, seq, k)
                size, head = naive.get(k, (0, None))
                assert (p.leaf.size, p.leaf.head) == (size, head) if p.leaf else size == 0
                heads.verify(root, k, size, head, p.siblings, p.other)
    return count


def _run(log: Log, rounds: list[tuple[list[str], bool]]) -> None:
    at = T0
    for n, (ocids, anchoring) in enumerate(rounds):
        at += timedelta(minutes=1)
        if ocids:
            append_many(
                log,
                [Submission(ocid=o, type="tender.amended", payload={"round": n, "i": i}) for i, o in enumerate(ocids)],
                now=at,
            )
        head = log.integrate_all(now=at, commit_heads=anchoring, batch_size=7)
        if anchoring and head.size:
            last = _entries(log)[-1]
            assert last[0] == heads.HEADS_OCID
            assert log.reader.committed_size() == head.size


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds=_rounds)
def test_persisted_commitments_match_naive_recomputation(engine: str, rounds: list[tuple[list[str], bool]]) -> None:
    with _fresh(engine) as log:
        _run(log, rounds)
        count = check_commitments(log)
        assert count <= sum(1 for _, anchoring in rounds if anchoring)


def test_one_commitment_per_anchoring_round_and_none_twice(log: Log) -> None:
    append_many(log, [Submission(ocid=o, type="tender.amended", payload={}) for o in OCIDS], now=T0)
    first = log.integrate_all(now=T0, commit_heads=True)
    assert first.size == len(OCIDS) + 1
    again = log.integrate_all(now=T0, commit_heads=True)
    assert again == first  # the last entry already is a commitment: nothing appended
    plain = log.integrate_all(now=T0)
    assert plain == first
    append_many(log, [Submission(ocid=OCIDS[0], type="tender.amended", payload={"x": 1})], now=T0)
    log.integrate_all(now=T0)  # a plain integration commits nothing
    assert log.reader.committed_size() == first.size
    second = log.integrate_all(now=T0, commit_heads=True)
    assert second.size == first.size + 2
    assert check_commitments(log) == 2


def test_an_empty_log_gets_no_commitment(log: Log) -> None:
    assert log.integrate_all(now=T0, commit_heads=True).size == 0
    assert log.reader.committed_size() == 0


def test_audit_recomputes_every_commitment_and_names_the_differing_tender(log: Log) -> None:
    from sqlalchemy import text, update
    from sqlalchemy.exc import DBAPIError

    from audit.log import audit
    from ledger.store import guards
    from ledger.store.db import write_transaction
    from ledger.store.schema import heads_strata

    append_many(log, [Submission(ocid=o, type="tender.amended", payload={}) for o in OCIDS], now=T0)
    log.integrate_all(now=T0, commit_heads=True)
    clean = audit(log.engine, origin=ORIGIN)
    assert clean.ok and clean.commitments_checked == 1
    # The server's stored tree goes wrong for one tender (a hand on the database that first
    # drops the append-only triggers, migration 0016): the next commitment is built on it, and
    # the audit says which tender differs.
    victim = OCIDS[4]
    record = heads.key(victim) + (1).to_bytes(8, "big")
    with read_transaction(log.engine) as conn:
        rows = conn.execute(select(heads_strata.c.prefix, heads_strata.c.version, heads_strata.c.leaves)).all()
    ((prefix, version, leaves),) = [r for r in rows if record in bytes(r.leaves)]
    assert bytes(leaves).count(record) == 1
    forged = bytes(leaves).replace(record, heads.key(victim) + (7).to_bytes(8, "big"))
    where = (heads_strata.c.prefix == prefix) & (heads_strata.c.version == version)
    with pytest.raises(DBAPIError, match="append-only"), write_transaction(log.engine) as conn:
        conn.execute(update(heads_strata).where(where).values(leaves=forged))
    with write_transaction(log.engine) as conn:
        for ddl in guards.drop_immutable_rows_ddl(log.engine.dialect.name, "heads_strata"):
            conn.execute(text(ddl))
        changed = conn.execute(update(heads_strata).where(where).values(leaves=forged)).rowcount
    assert changed == 1
    append_many(log, [Submission(ocid=OCIDS[0], type="tender.amended", payload={"x": 1})], now=T0)
    head = log.integrate_all(now=T0, commit_heads=True)
    report = audit(log.engine, origin=ORIGIN)
    assert report.commitments_checked == 2
    wrong = [f for f in report.findings if f.code == "commitment"]
    assert len(wrong) == 1 and wrong[0].index == head.size - 1, report.findings
    assert f"first differing tender {victim}" in wrong[0].reason
    assert "the stored tree 7 events" in wrong[0].reason
