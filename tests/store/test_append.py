"""Sequencing: what append records, byte for byte, and that bad input is refused with nothing written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

import pytest
import rfc8785
from sqlalchemy import create_engine, text

from ledger.core import commitment
from ledger.core.errors import CanonicalizationError, ConflictError, InvalidArgumentError
from ledger.log import Log
from ledger.submission import Submission
from tests.conftest import ORIGIN, T0
from tests.recording import append, append_many

from .helpers import InjectedFault, counts, leaf, snapshot, statements

OCID = "ocds-abc123-0001"
OTHER = "ocds-abc123-0002"
SIGNATURE = "0x" + "1b" * 65
SUBMISSION = {"ocid": OCID, "type": "tender.published", "id": "5f0c"}


def _sub(ocid: str = OCID, type: str = "tender.amended", payload: Any = None, **kw: Any) -> Submission:
    return Submission(ocid=ocid, type=type, payload={"n": 1} if payload is None else payload, **kw)


def test_first_event_exact_bytes_then_chain(log: Log) -> None:
    """Version 1 (``payload_sha256``), as a submission signed over the bare hash is recorded: v1
    entries stay recordable and readable (the salted v2 default below)."""
    first = append(
        log, _sub(type="tender.published", payload={"tender": {"id": "1", "value": 10.5}}, version=1), now=T0
    )
    payload = b'{"tender":{"id":"1","value":10.5}}'
    expected = (
        '{"ocid":"ocds-abc123-0001","origin":"tenderproof.test/log",'
        f'"payload_sha256":"{hashlib.sha256(payload).hexdigest()}","prev":null,'
        '"recorded_at":"2026-11-23T12:00:00.000000Z","seq":0,"type":"tender.published","v":1}'
    ).encode()
    assert first.envelope.canonical_bytes() == expected
    assert first.leaf_hash == hashlib.sha256(b"\x00" + expected).digest()
    (stored,) = log.reader.tender_events(OCID)
    assert (stored.envelope, stored.payload, stored.leaf_hash) == (expected, payload, first.leaf_hash)
    assert (stored.event_id, stored.seq, stored.type, stored.index) == (first.event_id, 0, "tender.published", None)

    second = append(
        log, _sub(payload={"tender": {"id": "1", "title": "Bridge"}}, version=1), now=T0 + timedelta(seconds=1)
    )
    other = append(log, _sub(ocid=OTHER, type="tender.planned", payload={}, version=1), now=T0)
    third = append(log, _sub(payload={"tender": {"id": "1", "title": "Bridge 2"}}, version=1), now=T0)
    assert [(r.envelope.seq, r.envelope.prev) for r in (first, second, third)] == [
        (0, None),
        (1, first.leaf_hash.hex()),
        (2, second.leaf_hash.hex()),
    ]
    assert (other.envelope.seq, other.envelope.prev) == (0, None)
    assert second.envelope.recorded_at == "2026-11-23T12:00:01.000000Z"
    assert first.event_id < second.event_id < other.event_id < third.event_id

    # Stored bytes are the envelope's canonical bytes; the leaf hash is SHA-256(0x00 || bytes);
    # the payload bytes hash to payload_sha256.
    stored_events = log.reader.tender_events(OCID)
    assert [e.seq for e in stored_events] == [0, 1, 2]
    for record, row in zip((first, second, third), stored_events, strict=True):
        assert row.event_id == record.event_id
        assert row.envelope == record.envelope.canonical_bytes()
        assert row.leaf_hash == record.leaf_hash == leaf(row.envelope)
        assert hashlib.sha256(row.payload).hexdigest() == record.envelope.payload_sha256
        assert json.loads(row.envelope) == record.envelope.to_json()
    assert stored_events[2].payload == b'{"tender":{"id":"1","title":"Bridge 2"}}'
    head = log.reader.tender(OCID)
    assert (head.ocid, head.event_count, head.head_hash) == (OCID, 3, third.leaf_hash.hex())
    assert log.reader.pending_count() == 4
    assert log.reader.tree_head().size == 0  # sequenced, not integrated

    # Durable when append returns: a separate engine (new connections) sees it.
    separate = create_engine(log.engine.url)
    try:
        with separate.connect() as conn:
            got = conn.execute(text("SELECT event_count, head_hash FROM tenders WHERE ocid = :o"), {"o": OCID}).one()
        assert tuple(got) == (3, third.leaf_hash.hex())
    finally:
        separate.dispose()


def test_new_entries_are_v2_with_their_disclosure_stored_beside_the_payload(log: Log) -> None:
    payload = {"parties": [{"id": "p1", "name": "Ana Pérez"}], "value": 5}
    done = append(log, _sub(type="tender.published", payload=payload, fields=("/parties/0/name",)), now=T0)
    envelope = done.envelope
    assert envelope.v == 2 and envelope.payload_sha256 is None
    data = envelope.canonical_bytes()
    assert b'"payload_commitment":"' + envelope.payload_commitment.encode() + b'"' in data  # type: ignore[union-attr]
    assert b"payload_sha256" not in data and data.endswith(b'"v":2}')
    (stored,) = log.reader.tender_events(OCID)
    assert stored.payload == rfc8785.dumps(payload)  # the body as given: nothing withheld
    assert stored.parsed_disclosure == done.disclosure
    assert stored.disclosure == rfc8785.dumps(done.disclosure)
    assert set(done.disclosure["fields"]) == {"/parties/0/name"}  # type: ignore[index]
    assert commitment.recompute(payload, stored.parsed_disclosure) == envelope.payload_commitment
    assert envelope.payload_commitment != hashlib.sha256(stored.payload).hexdigest()
    # each payload its own salt: the same payload again commits differently
    again = append(log, _sub(type="tender.amended", payload=payload, fields=("/parties/0/name",)), now=T0)
    assert again.envelope.payload_commitment != envelope.payload_commitment
    # a pointer naming nothing in the payload is refused, naming it, and nothing is written
    before = counts(log.engine)
    with pytest.raises(InvalidArgumentError) as caught:
        append(log, _sub(payload=payload, fields=("/parties/1/name",)), now=T0)
    assert caught.value.field == "payload.fields['/parties/1/name']"
    assert counts(log.engine) == before


def test_recorded_at_is_utc_whatever_the_zone_of_now(log: Log) -> None:
    east = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    recorded = append(log, _sub(), now=east + timedelta(microseconds=7))
    assert recorded.envelope.recorded_at == "2026-11-23T12:00:00.000007Z"


def test_signed_submission_is_carried_in_the_envelope(log: Log) -> None:
    recorded = append(log, _sub(submission=SUBMISSION, signature=SIGNATURE), now=T0)
    (row,) = log.reader.tender_events(OCID)
    envelope = json.loads(row.envelope)
    assert (envelope["submission"], envelope["signature"]) == (SUBMISSION, SIGNATURE)
    assert row.envelope == recorded.envelope.canonical_bytes()
    assert b'"signature":"0x1b1b' in row.envelope and b'"submission":{"id":"5f0c","ocid"' in row.envelope


def test_stated_prev_is_checked_against_the_head(log: Log) -> None:
    first = append(log, _sub(type="tender.published", prev=None), now=T0)
    second = append(log, _sub(prev=first.leaf_hash.hex()), now=T0)
    assert second.envelope.prev == first.leaf_hash.hex()
    before, rows_before = snapshot(log.engine), counts(log.engine)
    for stale, where in [
        (first.leaf_hash.hex(), OCID),  # the head moved on
        (None, OCID),  # "new tender" but it exists
        ("ab" * 32, OTHER),  # a head for a tender that does not exist
    ]:
        with pytest.raises(ConflictError) as err:
            append(log, _sub(ocid=where, prev=stale), now=T0)
        assert err.value.field == "prev"
        head = second.leaf_hash.hex() if where == OCID else None
        assert err.value.reason == f"tender {where} head is {head!r}, not {stale!r}"
        assert counts(log.engine) == rows_before
        assert snapshot(log.engine) == before
    third = append(log, _sub(prev=second.leaf_hash.hex()), now=T0)
    assert (third.envelope.seq, third.envelope.prev) == (2, second.leaf_hash.hex())


_N = Callable[[str], Submission]
BAD_INPUT: list[tuple[str, _N, type[Exception], str, str]] = [
    ("nan", lambda o: _sub(o, payload={"v": float("nan")}), CanonicalizationError, "payload.v", "nan is not"),
    ("inf", lambda o: _sub(o, payload={"a": {"b": [float("-inf")]}}), CanonicalizationError, "payload.a.b[0]", "inf"),
    ("2**60", lambda o: _sub(o, payload={"a": [1, 2**60]}), CanonicalizationError, "payload.a[1]", "exact range"),
    ("2**53", lambda o: _sub(o, payload={"n": -(2**53)}), CanonicalizationError, "payload.n", "exact range"),
    (
        "lone surrogate",
        lambda o: _sub(o, payload={"t": {"x": ["ok", {"y": "a\ud800b"}]}}),
        CanonicalizationError,
        "payload.t.x[1].y",
        "lone surrogate U+D800",
    ),
    ("int key", lambda o: _sub(o, payload={"t": {3: "x"}}), CanonicalizationError, "payload.t", "key 3 is not a str"),
    ("list payload", lambda o: _sub(o, payload=[1]), InvalidArgumentError, "payload", "JSON object, got list"),
    ("set in payload", lambda o: _sub(o, payload={"s": {1}}), CanonicalizationError, "payload.s", "not a JSON value"),
    ("ocid abc", lambda o: _sub("abc"), InvalidArgumentError, "ocid", "got 'abc'"),
    ("ocid slash", lambda o: _sub("ocds-abc123-1/events"), InvalidArgumentError, "ocid", "got 'ocds-abc123-1/events'"),
    ("ocid short", lambda o: _sub("ocds-abc12-1"), InvalidArgumentError, "ocid", "got 'ocds-abc12-1'"),
    ("ocid empty", lambda o: _sub(""), InvalidArgumentError, "ocid", "got ''"),
    ("ocid space at the end", lambda o: _sub("ocds-abc123-a "), InvalidArgumentError, "ocid", "OCDS ocid"),
    ("ocid percent", lambda o: _sub("ocds-abc123-%2F"), InvalidArgumentError, "ocid", "OCDS ocid"),
    ("ocid control", lambda o: _sub("ocds-abc123-a\x85b"), InvalidArgumentError, "ocid", "OCDS ocid"),
    ("ocid long", lambda o: _sub("ocds-abc123-" + "x" * 201), InvalidArgumentError, "ocid", "OCDS ocid"),
    (
        "type",
        lambda o: _sub(o, type="tender.stolen"),
        InvalidArgumentError,
        "type",
        "unknown event type 'tender.stolen'",
    ),
    ("signature alone", lambda o: _sub(o, signature=SIGNATURE), InvalidArgumentError, "signature", "together"),
    ("submission alone", lambda o: _sub(o, submission=SUBMISSION), InvalidArgumentError, "signature", "together"),
    (
        "short signature",
        lambda o: _sub(o, submission=SUBMISSION, signature="0x12"),
        InvalidArgumentError,
        "signature",
        "65-byte",
    ),
    (
        "uppercase signature",
        lambda o: _sub(o, submission=SUBMISSION, signature="0x" + "AB" * 65),
        InvalidArgumentError,
        "signature",
        "65-byte",
    ),
    (
        "submission not an object",
        lambda o: _sub(o, submission=["x"], signature=SIGNATURE),
        InvalidArgumentError,
        "submission",
        "JSON object, got list",
    ),
    (
        "submission not canonical",
        lambda o: _sub(o, submission={"n": 2**60}, signature=SIGNATURE),
        CanonicalizationError,
        "submission.n",
        "exact range",
    ),
]


@pytest.mark.parametrize(
    ("make", "error", "field", "reason"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_is_refused_and_nothing_written(
    log: Log, make: _N, error: type[Exception], field: str, reason: str
) -> None:
    append(log, _sub(type="tender.planned"), now=T0)
    before, rows_before = snapshot(log.engine), counts(log.engine)
    # On an existing tender (its head must not move) and on a new one (it must not be created).
    for ocid in (OCID, OTHER):
        with pytest.raises(error) as err:
            append(log, make(ocid), now=T0)
        assert type(err.value) is error
        assert err.value.field == field  # type: ignore[attr-defined]
        assert reason in err.value.reason  # type: ignore[attr-defined]
        assert counts(log.engine) == rows_before
        assert snapshot(log.engine) == before


def test_payload_integers_up_to_2_53_minus_1_are_accepted(log: Log) -> None:
    append(log, _sub(payload={"max": 2**53 - 1, "min": -(2**53 - 1)}), now=T0)
    (row,) = log.reader.tender_events(OCID)
    assert row.payload == b'{"max":9007199254740991,"min":-9007199254740991}'


@pytest.mark.parametrize(
    ("position", "bad", "error", "field"),
    [
        (0, _sub(payload={"n": float("inf")}), CanonicalizationError, "items[0].payload.n"),
        (3, _sub("ocds-abc123"), InvalidArgumentError, "items[3].ocid"),
        (5, _sub(OTHER, payload={"a": [{"b": 2**60}]}), CanonicalizationError, "items[5].payload.a[0].b"),
        (6, _sub(OTHER, type="bid.opened"), InvalidArgumentError, "items[6].type"),
        # Found only inside the write transaction, after the earlier items were chained in memory:
        (7, _sub(OTHER, signature="0x00"), InvalidArgumentError, "items[7].signature"),
        (8, _sub(OTHER, submission={"k": 1}, signature="0x12"), InvalidArgumentError, "items[8].signature"),
        (9, _sub(prev="cd" * 32), ConflictError, "items[9].prev"),
        (2, _sub("ocds-abc123-new", prev="cd" * 32), ConflictError, "items[2].prev"),
    ],
)
def test_append_many_is_atomic_and_names_the_item(
    log: Log, position: int, bad: Submission, error: type[Exception], field: str
) -> None:
    append_many(log, [_sub(), _sub(OTHER)], now=T0)
    before = snapshot(log.engine)
    items = [_sub(ocid=f"ocds-abc123-{i % 4:04d}", payload={"i": i}) for i in range(10)]
    items[position] = bad
    with pytest.raises(error) as err:
        append_many(log, items, now=T0)
    assert type(err.value) is error
    assert err.value.field == field  # type: ignore[attr-defined]
    assert snapshot(log.engine) == before


def test_append_many_chains_in_order_across_tenders(log: Log) -> None:
    append(log, _sub("ocds-abc123-1"), now=T0)
    items = [_sub(f"ocds-abc123-{i % 3}", payload={"n": i}) for i in range(9)]
    recorded = append_many(log, items, now=T0)
    assert [(r.envelope.ocid, r.envelope.seq) for r in recorded] == [
        ("ocds-abc123-0", 0),
        ("ocds-abc123-1", 1),
        ("ocds-abc123-2", 0),
        ("ocds-abc123-0", 1),
        ("ocds-abc123-1", 2),
        ("ocds-abc123-2", 1),
        ("ocds-abc123-0", 2),
        ("ocds-abc123-1", 3),
        ("ocds-abc123-2", 2),
    ]
    assert recorded[3].envelope.prev == recorded[0].leaf_hash.hex()
    assert recorded[8].envelope.prev == recorded[5].leaf_hash.hex()
    assert [json.loads(e.payload)["n"] for e in log.reader.tender_events("ocds-abc123-2")] == [2, 5, 8]
    assert [r.event_id for r in recorded] == sorted(r.event_id for r in recorded)
    # A stated prev may name the head that an earlier item of the same call creates.
    payload_hash = hashlib.sha256(b'{"n":1}').hexdigest()
    first_bytes = (
        f'{{"ocid":"ocds-abc123-9","origin":"{ORIGIN}","payload_sha256":"{payload_hash}","prev":null,'
        '"recorded_at":"2026-11-23T12:00:00.000000Z","seq":0,"type":"tender.amended","v":1}'
    ).encode()
    follow = append_many(
        log,
        [
            _sub("ocds-abc123-9", prev=None, version=1),
            _sub("ocds-abc123-9", prev=leaf(first_bytes).hex()),
            _sub("ocds-abc123-0", prev=recorded[6].leaf_hash.hex()),
        ],
        now=T0,
    )
    assert [(r.envelope.seq, r.envelope.prev) for r in follow] == [
        (0, None),
        (1, leaf(first_bytes).hex()),
        (3, recorded[6].leaf_hash.hex()),
    ]
    assert append_many(log, [], now=T0) == []


def test_append_is_atomic_under_a_fault_at_any_statement(log: Log) -> None:
    """Fail the 1st, 2nd, ... SQL statement of an append_many (and then its commit): nothing is written."""
    append_many(log, [_sub(), _sub(OTHER)], now=T0)
    items = [_sub(OCID, payload={"i": 1}), _sub("ocds-abc123-new", payload={"i": 2}), _sub(OTHER, payload={"i": 3})]
    before = snapshot(log.engine)
    fault_at = 0
    while True:
        fault_at += 1
        with statements(log.engine, fail_at=fault_at) as seen:
            try:
                recorded = append_many(log, items, now=T0)
            except InjectedFault as exc:
                assert str(exc).startswith(f"injected fault at statement {fault_at}:")
                assert snapshot(log.engine) == before, f"partial append after a fault at {seen[-1]!r}"
                continue
        break
    kinds = [" ".join(s.split()[:3]) for s in seen]
    # PostgreSQL: the tenders claimed in one statement, the events and all they move in another
    assert len(seen) == fault_at - 1 >= (2 if log.engine.dialect.name == "postgresql" else 5), kinds
    written = [" ".join(s.split()) for s in seen]
    assert any("INSERT INTO events " in s for s in written) and any("UPDATE tenders " in s for s in written)
    # The clean run above committed; undo-free check of what it wrote.
    assert [(r.envelope.ocid, r.envelope.seq) for r in recorded] == [(OCID, 1), ("ocds-abc123-new", 0), (OTHER, 1)]
    # And a fault at the commit itself leaves nothing either.
    before = snapshot(log.engine)
    with statements(log.engine, fail_commit=True), pytest.raises(InjectedFault, match="at commit"):
        append(log, _sub(payload={"i": 4}), now=T0)
    assert snapshot(log.engine) == before
    assert append(log, _sub(payload={"i": 4}), now=T0).envelope.seq == 2


def test_naive_now_is_refused_and_nothing_written(log: Log) -> None:
    before = snapshot(log.engine)
    with pytest.raises(InvalidArgumentError) as err:
        append(log, _sub(), now=T0.replace(tzinfo=None))
    assert err.value.field == "recorded_at"
    assert snapshot(log.engine) == before


def test_database_belongs_to_one_origin(db_url: str) -> None:
    first = Log.open(db_url, origin=ORIGIN)
    append(first, _sub(), now=T0)
    first.close()
    with pytest.raises(InvalidArgumentError) as err:
        Log.open(db_url, origin="another.example/log")
    assert err.value.field == "origin"
    assert err.value.reason == f"this database holds the log {ORIGIN!r}, not 'another.example/log'"
    for bad in (" spaced ", "", "two\nlines"):
        with pytest.raises(InvalidArgumentError) as err:
            Log.open(db_url, origin=bad)
        assert err.value.field == "origin"
    again = Log.open(db_url, origin=ORIGIN)
    try:
        assert again.reader.tender(OCID).event_count == 1
        assert append(again, _sub(), now=T0).envelope.origin == ORIGIN
    finally:
        again.close()


@pytest.mark.postgres
def test_refused_open_leaves_no_connection_behind(pg_url: str) -> None:
    Log.open(pg_url, origin=ORIGIN).close()
    admin = create_engine(pg_url)
    try:
        with pytest.raises(InvalidArgumentError) as err:  # err keeps the failed open's frames alive
            Log.open(pg_url, origin="another.example/log")
        assert err.value.field == "origin"
        with admin.connect() as conn:
            others = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert others == 0, "a refused Log.open left its connection pool open"
    finally:
        admin.dispose()
