"""Sequencing: what append records, and that bad input is refused with nothing written."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.core.errors import CanonicalizationError, ConflictError, InvalidArgumentError
from ledger.core.merkle import leaf_hash
from ledger.log import Log
from ledger.sequencer import Submission
from ledger.store.schema import events, pending, tenders
from tests.conftest import ORIGIN, T0

OCID = "ocds-abc123-0001"


def _counts(log: Log) -> tuple[int, int, int]:
    with log.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(table)).scalar_one() for table in (events, pending, tenders)
        )


def test_first_events_chain_on_each_other(log: Log) -> None:
    first = log.append(Submission(ocid=OCID, type="tender.published", payload={"tender": {"id": "1"}}), now=T0)
    second = log.append(
        Submission(ocid=OCID, type="tender.amended", payload={"tender": {"id": "1", "title": "x"}}), now=T0
    )
    other = log.append(Submission(ocid="ocds-abc123-0002", type="tender.planned", payload={}), now=T0)
    assert (first.envelope.seq, first.envelope.prev) == (0, None)
    assert (second.envelope.seq, second.envelope.prev) == (1, first.leaf_hash.hex())
    assert (other.envelope.seq, other.envelope.prev) == (0, None)
    assert first.envelope.origin == ORIGIN
    assert first.envelope.recorded_at == "2026-11-23T12:00:00.000000Z"
    stored = log.reader.tender_events(OCID)
    assert [e.seq for e in stored] == [0, 1]
    assert stored[1].envelope == second.envelope.canonical_bytes()
    assert leaf_hash(stored[1].envelope) == second.leaf_hash == stored[1].leaf_hash
    assert stored[1].payload == b'{"tender":{"id":"1","title":"x"}}'
    assert hashlib.sha256(stored[1].payload).hexdigest() == json.loads(stored[1].envelope)["payload_sha256"]
    assert stored[1].index is None  # sequenced, not yet integrated
    head = log.reader.tender(OCID)
    assert (head.event_count, head.head_hash) == (2, second.leaf_hash.hex())
    assert log.reader.pending_count() == 3


def test_expected_prev_is_checked(log: Log) -> None:
    first = log.append(Submission(ocid=OCID, type="tender.published", payload={}, prev=None), now=T0)
    log.append(Submission(ocid=OCID, type="tender.amended", payload={}, prev=first.leaf_hash.hex()), now=T0)
    before = _counts(log)
    with pytest.raises(ConflictError) as err:
        log.append(Submission(ocid=OCID, type="tender.amended", payload={}, prev=first.leaf_hash.hex()), now=T0)
    assert err.value.field == "prev"
    assert f"tender {OCID} head is" in err.value.reason
    with pytest.raises(ConflictError):
        log.append(Submission(ocid="ocds-abc123-new", type="tender.planned", payload={}, prev="ab" * 32), now=T0)
    assert _counts(log) == before


@pytest.mark.parametrize(
    ("submission", "error", "field", "reason"),
    [
        (
            Submission(ocid=OCID, type="tender.published", payload={"v": float("nan")}),
            CanonicalizationError,
            "payload.v",
            "nan",
        ),
        (
            Submission(ocid=OCID, type="tender.published", payload={"a": [1, 2**60]}),
            CanonicalizationError,
            "payload.a[1]",
            "exact range",
        ),
        (
            Submission(ocid=OCID, type="tender.published", payload={"t": {"x": "\ud800"}}),
            CanonicalizationError,
            "payload.t.x",
            "lone surrogate",
        ),
        (
            Submission(ocid=OCID, type="tender.published", payload={"t": {3: "x"}}),
            CanonicalizationError,
            "payload.t",
            "not a string",
        ),
        (Submission(ocid=OCID, type="tender.published", payload=[1]), InvalidArgumentError, "payload", "JSON object"),  # type: ignore[arg-type]
        (Submission(ocid="abc", type="tender.published", payload={}), InvalidArgumentError, "ocid", "OCDS ocid"),
        (
            Submission(ocid="ocds-ABC123-1", type="tender.published", payload={}),
            InvalidArgumentError,
            "ocid",
            "OCDS ocid",
        ),
        (
            Submission(ocid="ocds-abc12-1", type="tender.published", payload={}),
            InvalidArgumentError,
            "ocid",
            "OCDS ocid",
        ),
        (Submission(ocid="", type="tender.published", payload={}), InvalidArgumentError, "ocid", "OCDS ocid"),
        (Submission(ocid=OCID, type="tender.stolen", payload={}), InvalidArgumentError, "type", "unknown event type"),
        (
            Submission(ocid=OCID, type="tender.published", payload={}, signature="0x" + "ab" * 65),
            InvalidArgumentError,
            "signature",
            "together",
        ),
        (
            Submission(ocid=OCID, type="tender.published", payload={}, submission={"a": 1}, signature="0x12"),
            InvalidArgumentError,
            "signature",
            "65-byte",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_written(
    log: Log, submission: Submission, error: type[Exception], field: str, reason: str
) -> None:
    log.append(Submission(ocid=OCID, type="tender.planned", payload={}), now=T0)
    before = _counts(log)
    with pytest.raises(error) as err:
        log.append(submission, now=T0)
    assert err.value.field == field  # type: ignore[attr-defined]
    assert reason in err.value.reason  # type: ignore[attr-defined]
    assert _counts(log) == before


def test_append_many_is_atomic_and_names_the_item(log: Log) -> None:
    items: list[Any] = [Submission(ocid=OCID, type="tender.amended", payload={"n": i}) for i in range(10)]
    items[7] = Submission(ocid=OCID, type="tender.amended", payload={"n": float("inf")})
    with pytest.raises(CanonicalizationError) as err:
        log.append_many(items, now=T0)
    assert err.value.field == "items[7].payload.n"
    assert _counts(log) == (0, 0, 0)
    items[7] = Submission(ocid=OCID, type="tender.amended", payload={"n": 7}, prev="cd" * 32)
    with pytest.raises(ConflictError) as conflict:
        log.append_many(items, now=T0)
    assert conflict.value.field == "items[7].prev"
    assert _counts(log) == (0, 0, 0)


def test_append_many_chains_in_order_across_tenders(log: Log) -> None:
    items = [Submission(ocid=f"ocds-abc123-{i % 3}", type="tender.amended", payload={"n": i}) for i in range(9)]
    recorded = log.append_many(items, now=T0)
    assert [r.envelope.seq for r in recorded] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert recorded[3].envelope.prev == recorded[0].leaf_hash.hex()
    assert recorded[8].envelope.prev == recorded[5].leaf_hash.hex()
    assert [r.event_id for r in recorded] == sorted(r.event_id for r in recorded)
    assert log.append_many([], now=T0) == []


def test_database_belongs_to_one_origin(db_url: str) -> None:
    Log.open(db_url, origin=ORIGIN).close()
    with pytest.raises(InvalidArgumentError) as err:
        Log.open(db_url, origin="another.example/log")
    assert err.value.field == "origin"
    assert f"holds the log {ORIGIN!r}" in err.value.reason
    with pytest.raises(InvalidArgumentError):
        Log.open(db_url, origin=" spaced ")
