"""Officer signatures (docs/spec.md §7): a pinned known answer checked against a hand-built EIP-712
digest, round trips, and a named failure for every changed field and every bad encoding."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.datatypes import Signature
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.canonical import canonical_bytes, sha256_hex
from ledger.core.envelope import EVENT_TYPES, Envelope
from ledger.core.errors import InvalidArgumentError, LedgerError, VerificationError
from ledger.core.signing import (
    SignatureError,
    Submission,
    recover_signer,
    sign_submission,
    signing_hash,
    typed_data,
    verify_submission,
)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: The example key of eth-account's documentation; never a real officer's.
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
OFFICER = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
OTHER_KEY = "0x" + "11" * 32
ORIGIN = "tenders.example.gov/log"
OCID = "ocds-abc123-2026-0001"
PAYLOAD = {"tender": {"id": "2026-0001", "title": "Road resurfacing", "value": {"amount": 125000, "currency": "EUR"}}}
PAYLOAD_SHA256 = sha256_hex(canonical_bytes(PAYLOAD))
T = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)

#: Computed once with eth-account 0.14 and pinned; the digest is also rebuilt by hand below.
KAT_DIGEST = "3c96e06a50ca5800408427a05e3a6f94b2fc9590f5bf38c924dfd2d89e6ed5d8"
KAT_SIGNATURE = (
    "0xdfc3d62738531a445d2e7d6a859509967f1213df58c2269d9072b704a5ef4258"
    "2ded3aa9d34cdda77da6cfa368d7005de119f879786d22470184c79f45c99acf1c"
)


def _kat() -> Submission:
    return Submission(
        origin=ORIGIN,
        chain_id=31337,
        ocid=OCID,
        event_type="tender.published",
        payload_sha256="0f" * 32,
        submission_id="3f1c9a52-7d0e-4b8a-9c61-2e5b8d4f0a17",
        officer=OFFICER,
        signed_at=1795435200,
    )


def _submission(**changes: Any) -> Submission:
    fields: dict[str, Any] = {
        "origin": ORIGIN,
        "chain_id": 31337,
        "ocid": OCID,
        "event_type": "tender.published",
        "payload_sha256": PAYLOAD_SHA256,
        "submission_id": "s-0001",
        "officer": OFFICER,
        "signed_at": 1795435200,
    }
    fields.update(changes)
    return Submission(**fields)


def _envelope(submission: dict[str, Any] | None, signature: str | None, **changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "origin": ORIGIN,
        "ocid": OCID,
        "seq": 0,
        "prev": None,
        "type": "tender.published",
        "recorded_at": T,
        "payload": PAYLOAD,
    }
    fields.update(changes)
    envelope, _ = Envelope.for_payload(**fields, submission=submission, signature=signature)
    return envelope


def _signed_envelope(sub: Submission | None = None) -> Envelope:
    sub = sub or _submission()
    return _envelope(sub.to_json(), sign_submission(sub, KEY))


# --- Known answer ----------------------------------------------------------------------------


def _hand_digest(sub: Submission) -> bytes:
    """EIP-712 written out from the EIP's formulas, sharing no code with eth-account's encoder."""
    domain_type = keccak(b"EIP712Domain(string name,string version,uint256 chainId)")
    struct_type = keccak(
        b"Submission(string ocid,string eventType,bytes32 payloadSha256,string submissionId,"
        b"address officer,uint64 signedAt)"
    )
    separator = keccak(domain_type + keccak(sub.origin.encode()) + keccak(b"1") + sub.chain_id.to_bytes(32, "big"))
    struct = keccak(
        struct_type
        + keccak(sub.ocid.encode())
        + keccak(sub.event_type.encode())
        + bytes.fromhex(sub.payload_sha256)
        + keccak(sub.submission_id.encode())
        + bytes(12)
        + bytes.fromhex(sub.officer[2:])
        + sub.signed_at.to_bytes(32, "big")
    )
    return keccak(b"\x19\x01" + separator + struct)


def test_known_answer_signature_and_digest() -> None:
    sub = _kat()
    assert Account.from_key(KEY).address == OFFICER
    digest = _hand_digest(sub)
    assert digest.hex() == KAT_DIGEST
    assert signing_hash(sub) == digest
    # eth-account's own EIP-191 framing of the typed data leads to the same digest.
    message = encode_typed_data(full_message=typed_data(sub))
    assert message.version == b"\x01"
    assert keccak(b"\x19\x01" + message.header + message.body) == digest
    signature = sign_submission(sub, KEY)
    assert signature == KAT_SIGNATURE
    # The pinned signature recovers the officer from the hand-built digest with eth-keys alone.
    raw = bytes.fromhex(KAT_SIGNATURE[2:])
    public = Signature(raw[:64] + bytes([raw[64] - 27])).recover_public_key_from_msg_hash(digest)
    assert public.to_checksum_address() == OFFICER
    assert recover_signer(sub, KAT_SIGNATURE) == OFFICER


def test_typed_data_is_exactly_the_documented_one() -> None:
    assert typed_data(_kat()) == {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "Submission": [
                {"name": "ocid", "type": "string"},
                {"name": "eventType", "type": "string"},
                {"name": "payloadSha256", "type": "bytes32"},
                {"name": "submissionId", "type": "string"},
                {"name": "officer", "type": "address"},
                {"name": "signedAt", "type": "uint64"},
            ],
        },
        "primaryType": "Submission",
        "domain": {"name": ORIGIN, "version": "1", "chainId": 31337},
        "message": {
            "ocid": OCID,
            "eventType": "tender.published",
            "payloadSha256": "0x" + "0f" * 32,
            "submissionId": "3f1c9a52-7d0e-4b8a-9c61-2e5b8d4f0a17",
            "officer": OFFICER,
            "signedAt": 1795435200,
        },
    }


def test_json_form_exact_bytes_and_round_trip() -> None:
    sub = _kat()
    assert canonical_bytes(sub.to_json()) == (
        b'{"domain":{"chainId":31337,"name":"tenders.example.gov/log","version":"1"},'
        b'"eventType":"tender.published","ocid":"ocds-abc123-2026-0001",'
        b'"officer":"0x2c7536E3605D9C16a7a3D7b1898e529396a65c23","payloadSha256":"' + b"0f" * 32 + b'",'
        b'"signedAt":1795435200,"submissionId":"3f1c9a52-7d0e-4b8a-9c61-2e5b8d4f0a17"}'
    )
    assert Submission.from_json(sub.to_json()) == sub


# --- Round trips -----------------------------------------------------------------------------


def test_signed_envelope_verifies_and_survives_its_json() -> None:
    sub = _submission()
    envelope = _signed_envelope(sub)
    assert envelope.payload_sha256 == PAYLOAD_SHA256
    assert verify_submission(envelope) == OFFICER
    assert verify_submission(envelope, chain_id=31337) == OFFICER
    again = Envelope.from_json(envelope.to_json())
    assert again.leaf_hash() == envelope.leaf_hash()
    assert verify_submission(again) == OFFICER


def test_other_key_recovers_other_address() -> None:
    other = Account.from_key(OTHER_KEY).address
    sub = _submission(officer=other)
    signature = sign_submission(sub, OTHER_KEY)
    assert recover_signer(sub, signature) == other
    assert signature != sign_submission(_submission(), KEY)


private_keys = st.integers(min_value=1, max_value=N - 1).map(lambda k: "0x" + k.to_bytes(32, "big").hex())
submission_ids = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=1, max_size=128)


@settings(max_examples=30, deadline=None)
@given(
    key=private_keys,
    chain_id=st.integers(min_value=1, max_value=2**53 - 1),
    event_type=st.sampled_from(sorted(EVENT_TYPES)),
    payload_sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    submission_id=submission_ids,
    signed_at=st.integers(min_value=0, max_value=2**53 - 1),
)
def test_sign_recover_round_trip(
    key: str, chain_id: int, event_type: str, payload_sha256: str, submission_id: str, signed_at: int
) -> None:
    officer = Account.from_key(key).address
    sub = _submission(
        chain_id=chain_id,
        event_type=event_type,
        payload_sha256=payload_sha256,
        submission_id=submission_id,
        officer=officer,
        signed_at=signed_at,
    )
    signature = sign_submission(sub, key)
    assert len(signature) == 132 and signature == signature.lower()
    assert recover_signer(sub, signature) == officer
    assert signing_hash(sub) == _hand_digest(sub)
    assert Submission.from_json(sub.to_json()) == sub


# --- Every field is covered by the signature ------------------------------------------------

CHANGES: list[tuple[str, str, Any]] = [
    ("origin", "submission.domain.name", "tenders.other.gov/log"),
    ("chain_id", "submission.domain.chainId", 1),
    ("ocid", "submission.ocid", "ocds-abc123-2026-0002"),
    ("event_type", "submission.eventType", "tender.amended"),
    ("payload_sha256", "submission.payloadSha256", "ab" * 32),
    ("submission_id", "submission.submissionId", "s-0002"),
    ("officer", "submission.officer", Account.from_key(OTHER_KEY).address),
    ("signed_at", "submission.signedAt", 1795435201),
]


@pytest.mark.parametrize(("attr", "path", "value"), CHANGES, ids=[c[0] for c in CHANGES])
def test_changed_field_fails_recovery(attr: str, path: str, value: Any) -> None:
    """The attacker rewrites the field (and the envelope with it, where the envelope has it):
    only the signature can tell, and it recovers someone else."""
    sub = _submission()
    signature = sign_submission(sub, KEY)
    changed = dataclasses.replace(sub, **{attr: value})
    assert recover_signer(changed, signature) != OFFICER
    envelope_fields: dict[str, Any] = {}
    if attr == "origin":
        envelope_fields["origin"] = value
    if attr == "ocid":
        envelope_fields["ocid"] = value
    if attr == "event_type":
        envelope_fields["type"] = value
    if attr == "payload_sha256":
        # An envelope with this payload hash, as a forger would write it.
        envelope_fields["payload_sha256"] = value
    base = _envelope(changed.to_json(), signature)
    envelope = dataclasses.replace(base, **envelope_fields)
    with pytest.raises(SignatureError) as info:
        verify_submission(envelope)
    assert info.value.field == "signature"
    assert info.value.expected == changed.officer
    assert info.value.got not in (None, changed.officer)
    assert "was not made by the officer the submission names" in str(info.value)


@pytest.mark.parametrize(("attr", "path", "value"), CHANGES[:5], ids=[c[0] for c in CHANGES[:5]])
def test_submission_not_the_envelopes_own(attr: str, path: str, value: Any) -> None:
    """A submission that differs from its envelope is refused before any key is recovered,
    naming the field; the same holds for an envelope changed under a valid submission."""
    sub = _submission()
    signature = sign_submission(sub, KEY)
    changed = dataclasses.replace(sub, **{attr: value})
    if attr == "chain_id":
        with pytest.raises(SignatureError) as info:
            verify_submission(_envelope(sub.to_json(), signature), chain_id=value)
        assert (info.value.field, info.value.expected, info.value.got) == (path, value, 31337)
        return
    with pytest.raises(SignatureError) as info:
        verify_submission(_envelope(changed.to_json(), signature))
    assert info.value.field == path
    assert info.value.got == value
    assert info.value.expected == getattr(sub, attr)
    assert str(info.value).startswith(f"{path}: is not the envelope's: expected ")


@pytest.mark.parametrize(
    ("envelope_change", "path"),
    [
        ({"origin": "tenders.other.gov/log"}, "submission.domain.name"),
        ({"ocid": "ocds-abc123-2026-0002"}, "submission.ocid"),
        ({"type": "award.issued"}, "submission.eventType"),
        (
            {"payload": {"tender": {"id": "2026-0001", "title": "Road resurfacing (cheaper)"}}},
            "submission.payloadSha256",
        ),
    ],
)
def test_signed_submission_moved_to_another_envelope(envelope_change: dict[str, Any], path: str) -> None:
    sub = _submission()
    envelope = _envelope(sub.to_json(), sign_submission(sub, KEY), **envelope_change)
    with pytest.raises(SignatureError) as info:
        verify_submission(envelope)
    assert info.value.field == path


def test_domain_version_is_refused_and_bound() -> None:
    sub = _submission()
    signature = sign_submission(sub, KEY)
    obj = sub.to_json()
    obj["domain"]["version"] = "2"
    with pytest.raises(InvalidArgumentError) as info:
        verify_submission(_envelope(obj, signature))
    assert info.value.field == "submission.domain.version"
    assert "unsupported version '2', expected '1'" in info.value.reason
    # And the version is part of what is signed: under "2" the same signature is someone else's.
    data = typed_data(sub)
    data["domain"]["version"] = "2"
    assert Account.recover_message(encode_typed_data(full_message=data), signature=signature) != OFFICER


def test_unsigned_envelope_is_refused() -> None:
    with pytest.raises(SignatureError, match=r"^signature: the envelope is not signed$"):
        verify_submission(_envelope(None, None))


# --- Keys ------------------------------------------------------------------------------------


def test_signing_with_another_officers_key_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        sign_submission(_submission(), OTHER_KEY)
    assert info.value.field == "submission.officer"
    assert Account.from_key(OTHER_KEY).address in info.value.reason


@pytest.mark.parametrize("key", ["0x1234", "zz" * 32, "0x" + "00" * 32, b"\x01" * 31, "0x" + f"{N:064x}"])
def test_bad_private_key_is_refused_without_echoing_it(key: str | bytes) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        sign_submission(_submission(), key)
    assert info.value.field == "private_key"
    assert str(key) not in str(info.value)


# --- Malformed signatures --------------------------------------------------------------------


def _with(signature: str, *, r: int | None = None, s: int | None = None, v: int | None = None) -> str:
    raw = bytes.fromhex(signature[2:])
    r_ = int.from_bytes(raw[:32], "big") if r is None else r
    s_ = int.from_bytes(raw[32:64], "big") if s is None else s
    v_ = raw[64] if v is None else v
    return "0x" + (r_.to_bytes(32, "big") + s_.to_bytes(32, "big") + bytes([v_])).hex()


def test_high_s_twin_is_refused_though_eth_account_accepts_it() -> None:
    sub = _kat()
    raw = bytes.fromhex(KAT_SIGNATURE[2:])
    s = int.from_bytes(raw[32:64], "big")
    twin = _with(KAT_SIGNATURE, s=N - s, v=55 - raw[64])
    # The malleable twin recovers the same key...
    assert Account.recover_message(encode_typed_data(full_message=typed_data(sub)), signature=twin) == OFFICER
    # ...but one signed submission has one envelope, so it is refused.
    with pytest.raises(InvalidArgumentError, match="low s"):
        recover_signer(sub, twin)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (KAT_SIGNATURE[:-2], "130 lowercase hex"),
        (KAT_SIGNATURE + "00", "130 lowercase hex"),
        (KAT_SIGNATURE[2:] + "00", "130 lowercase hex"),
        (KAT_SIGNATURE.upper().replace("0X", "0x"), "130 lowercase hex"),
        ("0x" + "zz" * 65, "130 lowercase hex"),
        ("", "130 lowercase hex"),
        (_with(KAT_SIGNATURE, v=0), "v must be 27 or 28, got 0"),
        (_with(KAT_SIGNATURE, v=1), "v must be 27 or 28, got 1"),
        (_with(KAT_SIGNATURE, v=29), "v must be 27 or 28, got 29"),
        (_with(KAT_SIGNATURE, v=37), "v must be 27 or 28, got 37"),
        (_with(KAT_SIGNATURE, r=0), "r must be"),
        (_with(KAT_SIGNATURE, r=N), "r must be"),
        (_with(KAT_SIGNATURE, s=0), "low s"),
        (_with(KAT_SIGNATURE, s=N // 2 + 1), "low s"),
        ("0x" + "ff" * 65, "r must be"),
    ],
)
def test_malformed_signature_is_an_invalid_argument(signature: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        recover_signer(_kat(), signature)
    assert info.value.field == "signature"
    assert reason in info.value.reason


def test_malformed_signature_in_an_envelope() -> None:
    # The envelope itself refuses what is not 65 bytes of lowercase hex...
    with pytest.raises(InvalidArgumentError) as info:
        _envelope(_submission().to_json(), KAT_SIGNATURE[:-2])
    assert info.value.field == "signature"
    # ...and verification refuses a well-formed but non-canonical one.
    sub = _submission()
    envelope = _envelope(sub.to_json(), _with(sign_submission(sub, KEY), v=1))
    with pytest.raises(InvalidArgumentError, match="v must be 27 or 28"):
        verify_submission(envelope)


def test_r_off_the_curve_recovers_no_key() -> None:
    # x = 5 is not the x-coordinate of a point on secp256k1 (5**3 + 7 = 132 is not a square mod p).
    with pytest.raises(SignatureError) as info:
        recover_signer(_kat(), _with(KAT_SIGNATURE, r=5))
    assert info.value.field == "signature"
    assert "recovers no public key" in str(info.value)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=65 * 8 - 1))
def test_any_flipped_bit_fails(position: int) -> None:
    sub = _submission()
    raw = bytearray(bytes.fromhex(sign_submission(sub, KEY)[2:]))
    raw[position // 8] ^= 1 << (position % 8)
    envelope = _envelope(sub.to_json(), "0x" + raw.hex())
    with pytest.raises((InvalidArgumentError, SignatureError)):
        verify_submission(envelope)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(min_size=65, max_size=65))
def test_arbitrary_signature_never_escapes_as_another_exception(raw: bytes) -> None:
    envelope = _envelope(_submission().to_json(), "0x" + raw.hex())
    with pytest.raises(LedgerError) as info:
        verify_submission(envelope)
    assert isinstance(info.value, InvalidArgumentError | VerificationError)


# --- Strict JSON -----------------------------------------------------------------------------


def test_from_json_refuses_non_objects() -> None:
    values: list[Any] = [None, [], "x", 1]
    for value in values:
        with pytest.raises(InvalidArgumentError) as info:
            Submission.from_json(value)
        assert info.value.field == "submission"
    obj = _submission().to_json()
    obj["domain"] = ["tenders.example.gov/log", "1", 31337]
    with pytest.raises(InvalidArgumentError) as info:
        Submission.from_json(obj)
    assert info.value.field == "submission.domain"


@pytest.mark.parametrize(
    "path",
    [
        "domain",
        "ocid",
        "eventType",
        "payloadSha256",
        "submissionId",
        "officer",
        "signedAt",
        "domain.name",
        "domain.version",
        "domain.chainId",
    ],
)
def test_from_json_missing_field(path: str) -> None:
    obj = _submission().to_json()
    *parents, leaf = path.split(".")
    target = obj
    for parent in parents:
        target = target[parent]
    del target[leaf]
    with pytest.raises(InvalidArgumentError) as info:
        Submission.from_json(obj)
    assert (info.value.field, info.value.reason) == (f"submission.{path}", "missing")


@pytest.mark.parametrize("path", ["type", "signature", "domain.salt", "domain.verifyingContract"])
def test_from_json_unknown_field(path: str) -> None:
    obj = _submission().to_json()
    *parents, leaf = path.split(".")
    target = obj
    for parent in parents:
        target = target[parent]
    target[leaf] = "0x" + "00" * 20
    with pytest.raises(InvalidArgumentError) as info:
        Submission.from_json(obj)
    assert (info.value.field, info.value.reason) == (f"submission.{path}", "unknown field")


BAD_VALUES: list[tuple[str, Any]] = [
    ("domain.name", ""),
    ("domain.name", "two\nlines"),
    ("domain.name", 7),
    ("domain.version", 1),
    ("domain.version", "1.0"),
    ("domain.chainId", 0),
    ("domain.chainId", "31337"),
    ("domain.chainId", True),
    ("domain.chainId", 2**53),
    ("domain.chainId", 1.0),
    ("ocid", "abc-1"),
    ("ocid", None),
    ("eventType", "tender.deleted"),
    ("eventType", ["tender.published"]),
    ("payloadSha256", "0x" + "0f" * 32),
    ("payloadSha256", "0F" * 32),
    ("payloadSha256", "0f" * 31),
    ("payloadSha256", None),
    ("submissionId", ""),
    ("submissionId", "a" * 129),
    ("submissionId", "has space"),
    ("submissionId", "ñ"),
    ("submissionId", 12),
    ("officer", OFFICER.lower()),
    ("officer", OFFICER[2:]),
    ("officer", OFFICER + "00"),
    ("officer", None),
    ("signedAt", -1),
    ("signedAt", 2**53),
    ("signedAt", "1795435200"),
    ("signedAt", False),
    ("signedAt", 1795435200.5),
]


@pytest.mark.parametrize(("path", "value"), BAD_VALUES)
def test_from_json_wrong_value(path: str, value: Any) -> None:
    obj = _submission().to_json()
    *parents, leaf = path.split(".")
    target = obj
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    with pytest.raises(InvalidArgumentError) as info:
        Submission.from_json(obj)
    assert info.value.field == f"submission.{path}"


def test_limits_are_inclusive() -> None:
    sub = _submission(submission_id="~" * 128, signed_at=2**53 - 1, chain_id=2**53 - 1)
    assert Submission.from_json(sub.to_json()) == sub
    assert recover_signer(sub, sign_submission(sub, KEY)) == OFFICER
    assert _submission(signed_at=0, chain_id=1).signed_at == 0
