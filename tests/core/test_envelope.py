"""Envelopes: exact bytes, round trips, and a named error for every bad field."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.envelope import Envelope, check_ocid, format_timestamp, parse_timestamp, plain_leaf_data
from ledger.core.errors import InvalidArgumentError
from ledger.core.merkle import leaf_hash

PREV = "ab" * 32
SIG = "0x" + "cd" * 65
T = datetime(2026, 11, 23, 12, 0, 0, 250000, tzinfo=UTC)


def _envelope(**changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "origin": "tenders.example.gov/log",
        "ocid": "ocds-abc123-2026-0001",
        "seq": 1,
        "prev": PREV,
        "type": "tender.amended",
        "recorded_at": "2026-11-23T12:00:00.250000Z",
        "payload_sha256": "0f" * 32,
    }
    fields.update(changes)
    return Envelope(**fields)


def T_(envelope: Envelope, serialized: bytes) -> None:
    """OpenTimestamps-style exact-bytes round trip: bytes out, and the same envelope back."""
    assert envelope.canonical_bytes() == serialized
    import json

    assert Envelope.from_json(json.loads(serialized)) == envelope


def test_exact_bytes_and_leaf_hash() -> None:
    expected = (
        b'{"ocid":"ocds-abc123-2026-0001","origin":"tenders.example.gov/log",'
        b'"payload_sha256":"' + b"0f" * 32 + b'","prev":"' + PREV.encode() + b'",'
        b'"recorded_at":"2026-11-23T12:00:00.250000Z","seq":1,"type":"tender.amended","v":1}'
    )
    envelope = _envelope()
    T_(envelope, expected)
    assert envelope.leaf_hash() == leaf_hash(expected)


#: Envelope members as a log may hold them: any origin line (control characters, non-ASCII,
#: astral characters, lone surrogates), ocids of the OCDS form with any publisher id.
_ORIGINS = st.text(min_size=1).filter(lambda s: "\n" not in s)
_OCIDS = st.builds(
    lambda prefix, rest: f"ocds-{prefix}-{rest}",
    st.from_regex(r"[a-zA-Z0-9]{6}", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_characters="/\\?#%"), min_size=1, max_size=40),
)
_SEQS = st.integers(min_value=0, max_value=2**53 - 1)
_VERSIONS = st.sampled_from([1, 2])
_STAMPS = st.sampled_from(["2026-11-23T12:00:00.250000Z", "2026-01-01T00:00:00Z"])


@settings(max_examples=300, deadline=None)
@given(origin=_ORIGINS, ocid=_OCIDS, seq=_SEQS, version=_VERSIONS, stamp=_STAMPS)
def test_bytes_without_a_submission_are_rfc8785s(origin: str, ocid: str, seq: int, version: int, stamp: str) -> None:
    """The member-by-member bytes of an envelope without a submission (the import's) are the
    library's RFC 8785 bytes of the same object, or the same refusal."""
    binding = (
        {"payload_sha256": "0f" * 32} if version == 1 else {"payload_sha256": None, "payload_commitment": "0f" * 32}
    )
    try:
        envelope = _envelope(origin=origin, ocid=ocid, seq=seq, prev=None if seq == 0 else PREV, v=version,
                             recorded_at=stamp, **binding)  # fmt: skip
    except InvalidArgumentError:
        return  # an ocid the log refuses: no envelope
    try:
        expected = rfc8785.dumps(envelope.to_json())
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        with pytest.raises(InvalidArgumentError):
            envelope.canonical_bytes()
        return
    assert envelope.canonical_bytes() == expected


#: For each field of :func:`plain_leaf_data`, values that construction refuses (or that only the
#: library writes: an astral character).
_BAD = {
    "origin": ["", "two\nlines", None, "\U0001f600"],
    "ocid": ["not an ocid", " ocds-abc123-1", None, "ocds-abc123-\U0001f600"],
    "seq": [-1, 2**53, True, 1.0, "1"],
    "prev": [PREV.upper(), "ab", 7, None],
    "kind": ["tender.unknown", "", None],
    "v": [3, True, "1"],
    "recorded_at": ["2026-01-01", "2026-13-01T00:00:00Z", None],
    "bound": ["0F" * 32, "0f" * 31, "", None],
}


@settings(max_examples=300, deadline=None)
@given(
    origin=_ORIGINS,
    ocid=_OCIDS,
    seq=_SEQS,
    version=_VERSIONS,
    stamp=_STAMPS,
    broken=st.one_of(
        st.none(), st.sampled_from(sorted(_BAD)).flatmap(lambda k: st.tuples(st.just(k), st.sampled_from(_BAD[k])))
    ),
)
def test_plain_leaf_data_is_the_envelopes_bytes_or_none(
    origin: str, ocid: str, seq: int, version: int, stamp: str, broken: tuple[str, Any] | None
) -> None:
    """What a bulk writer writes without building an envelope is the envelope's bytes; for fields
    construction refuses (one field broken at a time), or bytes only the library writes, it is
    None, never other bytes; for plainly valid ASCII fields it is the bytes."""
    fields: dict[str, Any] = {"origin": origin, "ocid": ocid, "seq": seq, "prev": None if seq == 0 else PREV,
                              "kind": "tender.amended", "v": version, "recorded_at": stamp, "bound": "0f" * 32}  # fmt: skip
    if broken is not None:
        fields[broken[0]] = broken[1]
    try:
        check_ocid(fields["ocid"])  # as a writer checks a new event's ocid before its envelope
        format_timestamp(parse_timestamp(fields["recorded_at"]))  # and has formatted its stamp before
        Envelope(**_as_envelope(fields, seq=0, prev=None, kind="tender.planned"))  # which passed lately
    except (InvalidArgumentError, TypeError):
        pass
    try:
        expected: bytes | None = Envelope(**_as_envelope(fields)).canonical_bytes()
    except InvalidArgumentError:
        expected = None
    made = plain_leaf_data(**fields)
    assert made is None or made == expected
    if expected is not None and broken is None and (origin + ocid).isascii():
        assert made == expected


def _as_envelope(fields: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """:func:`plain_leaf_data`'s arguments as :class:`Envelope`'s."""
    given = {**fields, **changes}
    kind, bound = given.pop("kind"), given.pop("bound")
    binding = "payload_sha256" if given["v"] == 1 else "payload_commitment"
    return {**given, "type": kind, binding: bound}


def test_signed_envelope_round_trip() -> None:
    submission = {"ocid": "ocds-abc123-2026-0001", "type": "tender.amended", "id": "s-1"}
    envelope = _envelope(submission=submission, signature=SIG)
    data = envelope.canonical_bytes()
    assert b'"signature":"' + SIG.encode() + b'"' in data
    assert b'"submission":{"id":"s-1","ocid":"ocds-abc123-2026-0001","type":"tender.amended"}' in data
    T_(envelope, data)


def test_for_payload_hashes_the_rfc8785_bytes() -> None:
    envelope, data = Envelope.for_payload(
        origin="o",
        ocid="ocds-abc123-1",
        seq=0,
        prev=None,
        type="tender.planned",
        recorded_at=T,
        payload={"b": 2, "a": 1},
    )
    assert data == b'{"a":1,"b":2}'
    assert envelope.payload_sha256 == "43258cff783fe7036d8a43033f830adfc60ec037382473548ac742b888292777"
    assert envelope.recorded_at == "2026-11-23T12:00:00.250000Z"


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"v": 3}, "v", "unsupported envelope version 3, expected 1 or 2"),
        ({"v": True}, "v", "unsupported envelope version True"),
        ({"v": 1.0}, "v", "unsupported envelope version 1.0"),
        ({"v": 2}, "payload_commitment", "64 lowercase hex digits, got None"),
        ({"v": 2, "payload_commitment": "AB" * 32, "payload_sha256": None}, "payload_commitment", "lowercase hex"),
        ({"payload_commitment": "0f" * 32}, "payload_commitment", "not a field of a version 1 envelope"),
        ({"v": 2, "payload_commitment": "0f" * 32}, "payload_sha256", "not a field of a version 2 envelope"),
        ({"origin": ""}, "origin", "non-empty single line"),
        ({"origin": "a\nb"}, "origin", "non-empty single line"),
        ({"ocid": "abc"}, "ocid", "must be an OCDS ocid"),
        ({"seq": -1}, "seq", "integer >= 0"),
        ({"seq": True}, "seq", "integer >= 0"),
        ({"seq": 0}, "prev", "must be null for seq 0"),
        ({"prev": None}, "prev", "previous event's lowercase hex leaf hash for seq 1"),
        ({"prev": "AB" * 32}, "prev", "lowercase hex"),
        ({"prev": "ab" * 31}, "prev", "lowercase hex"),
        ({"type": "tender.deleted"}, "type", "unknown event type 'tender.deleted'"),
        ({"recorded_at": "2026-11-23 12:00:00Z"}, "recorded_at", "RFC 3339 UTC ending in 'Z'"),
        ({"recorded_at": "2026-11-23T12:00:00+01:00"}, "recorded_at", "RFC 3339 UTC ending in 'Z'"),
        ({"recorded_at": "2026-02-30T12:00:00Z"}, "recorded_at", "not a valid date and time"),
        ({"payload_sha256": "xyz"}, "payload_sha256", "64 lowercase hex digits"),
        ({"signature": SIG}, "signature", "come together or not at all"),
        ({"submission": {"a": 1}}, "signature", "come together or not at all"),
        ({"submission": [1], "signature": SIG}, "submission", "must be a JSON object"),
        ({"submission": {"a": 1}, "signature": "0x1234"}, "signature", "65-byte signature"),
    ],
)
def test_every_bad_field_is_named(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        _envelope(**changes)
    assert err.value.field == field
    assert reason in err.value.reason


@pytest.mark.parametrize(
    "ocid",
    [
        "ocds-abc123-1",
        "ocds-213czf-000-00001-01-planning",
        "ocds-b5fd17-a1b2:c3",
        "OCDS-87SD3T-SAF-DGRMSG-LPN-001-2019",  # Mexico City writes its prefix in upper case
        "ocds-6550wx-DGCP-CCC-CP-2021-0003 (A)",  # spaces inside: kept as published
        "ocds-hu01ve-Niño & Cía",
    ],
)
def test_good_ocids(ocid: str) -> None:
    assert check_ocid(ocid) == ocid


def test_an_ocid_recorded_under_the_earlier_rule_stays_readable() -> None:
    """A slash was accepted before the URL-safe rule: new records refuse it, recorded entries keep it."""
    with pytest.raises(InvalidArgumentError):
        check_ocid("ocds-b5fd17-a1b2/c3:d4")
    assert check_ocid("ocds-b5fd17-a1b2/c3:d4", recorded=True) == "ocds-b5fd17-a1b2/c3:d4"
    assert _envelope(ocid="ocds-b5fd17-a1b2/c3:d4").ocid == "ocds-b5fd17-a1b2/c3:d4"


@pytest.mark.parametrize(
    "ocid",
    [
        "",
        "abc",
        "ocds-abc12-1",
        "ocds-abc123-",
        "ocds-abc123-a ",
        "ocds-abc123-1/events",
        "ocds-abc123-1?x",
        "ocds-abc123-1#x",
        "ocds-abc123-%41",
        "ocds-abc123-a\\b",
        "ocds-abc123-a\nb",
        "ocds-abc123-" + "x" * 201,
        7,
    ],
)
def test_bad_ocids(ocid: Any) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        check_ocid(ocid)
    assert err.value.field == "ocid"


def test_from_json_refuses_unknown_and_missing_fields() -> None:
    good = _envelope().to_json()
    with pytest.raises(InvalidArgumentError) as err:
        Envelope.from_json({**good, "extra": 1})
    assert (err.value.field, err.value.reason) == ("envelope.extra", "unknown field in a v1 envelope")
    del good["payload_sha256"]
    with pytest.raises(InvalidArgumentError) as err:
        Envelope.from_json(good)
    assert (err.value.field, err.value.reason) == ("envelope.payload_sha256", "missing")
    with pytest.raises(InvalidArgumentError) as err:
        Envelope.from_json([good])
    assert err.value.field == "envelope"


def test_v2_exact_bytes_and_round_trip() -> None:
    envelope = _envelope(v=2, payload_sha256=None, payload_commitment="1e" * 32)
    expected = (
        b'{"ocid":"ocds-abc123-2026-0001","origin":"tenders.example.gov/log",'
        b'"payload_commitment":"' + b"1e" * 32 + b'","prev":"' + PREV.encode() + b'",'
        b'"recorded_at":"2026-11-23T12:00:00.250000Z","seq":1,"type":"tender.amended","v":2}'
    )
    T_(envelope, expected)
    assert envelope.payload_hash == "1e" * 32
    assert envelope.leaf_hash() == leaf_hash(expected)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"v": True}, "envelope.v", "unsupported envelope version True, expected 1 or 2"),
        ({"v": 2}, "envelope.payload_sha256", "unknown field in a v2 envelope"),
        ({"v": "2"}, "envelope.v", "unsupported envelope version '2', expected 1 or 2"),
        ({"payload_commitment": "1e" * 32}, "envelope.payload_commitment", "unknown field in a v1 envelope"),
    ],
)
def test_from_json_each_version_has_its_own_payload_member(change: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        Envelope.from_json({**_envelope().to_json(), **change})
    assert (err.value.field, err.value.reason) == (field, reason)
    v2 = _envelope(v=2, payload_sha256=None, payload_commitment="1e" * 32).to_json()
    del v2["payload_commitment"]
    with pytest.raises(InvalidArgumentError) as err:
        Envelope.from_json(v2)
    assert (err.value.field, err.value.reason) == ("envelope.payload_commitment", "missing")


def test_committing_binds_the_payload_by_its_salted_commitment() -> None:
    payload = {"parties": [{"name": "Ana", "id": "p1"}], "value": 5}
    envelope, data, disclosure = Envelope.committing(
        origin="o",
        ocid="ocds-abc123-1",
        seq=0,
        prev=None,
        type="tender.planned",
        recorded_at=T,
        payload=payload,
        fields=["/parties/0/name"],
        seed=bytes(32),
    )
    assert envelope.v == 2 and envelope.payload_sha256 is None
    assert data == b'{"parties":[{"id":"p1","name":"Ana"}],"value":5}'
    assert envelope.payload_binding(payload, disclosure=disclosure) == envelope.payload_commitment
    assert envelope.payload_commitment != hashlib.sha256(data).hexdigest()
    with pytest.raises(InvalidArgumentError) as err:
        envelope.payload_binding(payload)
    assert err.value.field == "disclosure"
    assert envelope.payload_binding({**payload, "value": 6}, disclosure=disclosure) != envelope.payload_commitment
    v1, data1 = Envelope.for_payload(
        origin="o", ocid="ocds-abc123-1", seq=0, prev=None, type="tender.planned", recorded_at=T, payload=payload
    )
    assert v1.payload_binding(payload) == v1.payload_hash == hashlib.sha256(data1).hexdigest()


def test_timestamps() -> None:
    assert format_timestamp(T.astimezone(timezone(timedelta(hours=-6)))) == "2026-11-23T12:00:00.250000Z"
    assert parse_timestamp("2026-11-23T12:00:00.25Z") == T
    assert parse_timestamp("2026-11-23T12:00:00Z") == T.replace(microsecond=0)
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 1))


def test_a_bad_recorded_at_is_refused_even_after_good_ones() -> None:
    from ledger.core.envelope import Envelope

    good = {"origin": "o", "ocid": "ocds-abc123-1", "seq": 0, "prev": None, "type": "tender.published"}
    for _ in range(3):
        Envelope(**good, recorded_at="2026-11-23T12:00:00.000000Z", payload_sha256="ab" * 32)
    for bad in ("2026-11-23T12:00:00.000000", "2026-02-30T12:00:00.000000Z", 20261123):
        with pytest.raises(InvalidArgumentError) as caught:
            Envelope(**good, recorded_at=bad, payload_sha256="ab" * 32)  # type: ignore[arg-type]
        assert caught.value.field == "recorded_at"
