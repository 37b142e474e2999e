"""Salted field-level commitments (envelope v2): a reference computation from the spec's words,
named errors for malformed input, and Hypothesis properties of withholding."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger.core import commitment
from ledger.core.commitment import new_commitment, recompute, withheld_fields, withhold_fields
from ledger.core.errors import InvalidArgumentError

from . import commitment_reference as reference

SEED = bytes(range(32))
PAYLOAD: dict[str, Any] = {
    "parties": [
        {"id": "p1", "name": "Ana Pérez", "roles": ["tenderer"], "contactPoint": {"email": "ana@example.org"}},
        {"id": "b1", "name": "Ministry of Works", "roles": ["buyer"]},
    ],
    "value": {"amount": 1250.5, "currency": "EUR"},
    "a/b": {"~x": "tilde and slash"},
}
F = ["/parties/0/name", "/parties/0/contactPoint", "/a~1b/~0x"]


def _reference(payload: Any, fields: list[str], seed: bytes) -> tuple[str, dict[str, Any]]:
    return reference.commit(payload, sorted(fields), seed)


def test_commitment_follows_the_spec_word_for_word() -> None:
    assert new_commitment(PAYLOAD, F, seed=SEED) == _reference(PAYLOAD, F, SEED)
    assert new_commitment(PAYLOAD, [], seed=SEED) == _reference(PAYLOAD, [], SEED)


def test_given_payload_bytes_are_used_only_without_fields() -> None:
    data = rfc8785.dumps(PAYLOAD)
    assert new_commitment(PAYLOAD, [], seed=SEED, payload_bytes=data) == _reference(PAYLOAD, [], SEED)
    assert new_commitment(PAYLOAD, F, seed=SEED, payload_bytes=b"ignored") == _reference(PAYLOAD, F, SEED)


def test_commit_encoded_gives_the_commitment_and_the_payload_bytes_from_one_encoding() -> None:
    for fields in (F, [], ["/value"], ["/parties/1/roles/0", "/value/amount"]):
        for parsed in (False, True):
            bound, disclosure, data = commitment.commit_encoded(PAYLOAD, fields, seed=SEED, parsed=parsed)
            assert (bound, disclosure) == _reference(PAYLOAD, fields, SEED)
            assert data == rfc8785.dumps(PAYLOAD)
    assert PAYLOAD["parties"][0]["name"] == "Ana Pérez"  # the payload itself is not changed


def test_commit_encoded_with_the_marker_text_in_the_payload_encodes_both_in_full() -> None:
    # the marker names the payload salt (drawn after the payload was written); a payload that holds
    # its text anyway (only a test that knows the seed can make one) falls back to two encodings
    salt = commitment.commit_encoded(PAYLOAD, F, seed=SEED)[1]["salt"]
    payload = {**PAYLOAD, "note": f"tenderproof/v2/{salt}/0", "other": [f"tenderproof/v2/{salt}/1"]}
    bound, disclosure, data = commitment.commit_encoded(payload, F, seed=SEED)
    assert (bound, disclosure) == _reference(payload, F, SEED)
    assert data == rfc8785.dumps(payload)


def test_commit_encoded_names_what_cannot_be_encoded() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        commitment.commit_encoded({**PAYLOAD, "bad": [float("nan")]}, F, seed=SEED)
    assert caught.value.field == "payload.bad[0]"
    with pytest.raises(InvalidArgumentError) as caught:
        commitment.commit_encoded(PAYLOAD, ["/parties/7/name"], seed=SEED)
    assert "names no value" in caught.value.reason


def test_seeds_are_never_handed_out_twice_and_a_forked_child_draws_its_own() -> None:
    import os

    seeds = [commitment.new_seed() for _ in range(1000)]  # several draws of 256
    assert len(set(seeds)) == 1000 and all(len(s) == 32 for s in seeds)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next seed must not be the parent's next one
        os.write(writer, commitment.new_seed())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(reader, 32)
    os.close(reader)
    os.close(writer)
    assert len(child) == 32 and child != commitment.new_seed() and child not in seeds


def test_a_fresh_seed_each_time_and_never_the_bare_hash() -> None:
    first, d1 = new_commitment(PAYLOAD, F)
    second, d2 = new_commitment(PAYLOAD, F)
    assert first != second and d1["salt"] != d2["salt"]
    assert first != hashlib.sha256(rfc8785.dumps(PAYLOAD)).hexdigest()
    assert recompute(PAYLOAD, d1) == first and recompute(PAYLOAD, d2) == second


def test_withholding_keeps_the_commitment_and_drops_the_value_and_its_salt() -> None:
    value, disclosure = new_commitment(PAYLOAD, F, seed=SEED)
    salt = disclosure["fields"]["/parties/0/name"]["salt"]
    body, after = withhold_fields(PAYLOAD, disclosure, ["/parties/0/name"], 42)
    assert body["parties"][0]["name"] is None
    assert PAYLOAD["parties"][0]["name"] == "Ana Pérez"  # the input is not changed
    assert after["fields"]["/parties/0/name"] == {
        "digest": hashlib.sha256(bytes.fromhex(salt) + rfc8785.dumps("Ana Pérez")).hexdigest(),
        "order": 42,
    }
    assert after["fields"]["/parties/0/contactPoint"] == disclosure["fields"]["/parties/0/contactPoint"]
    assert recompute(body, after) == value
    assert withheld_fields(after) == {"/parties/0/name": 42}
    assert withheld_fields(disclosure) == {}
    public = rfc8785.dumps(body) + rfc8785.dumps(after)
    assert "Ana Pérez".encode() not in public and salt.encode() not in public
    # a second order withholds another field; the first stays as it was
    body2, after2 = withhold_fields(body, after, ["/parties/0/contactPoint"], 50)
    assert recompute(body2, after2) == value
    assert withheld_fields(after2) == {"/parties/0/name": 42, "/parties/0/contactPoint": 50}
    assert b"ana@example.org" not in rfc8785.dumps(body2) + rfc8785.dumps(after2)


@pytest.mark.parametrize(
    ("pointers", "field", "reason"),
    [
        (["/value/amount"], "fields['/value/amount']", "not a separately committed field"),
        (["/parties/0/name", "/parties/0/name"], "fields['/parties/0/name']", "named twice"),
        ([], "fields", "names no field"),
    ],
)
def test_withholding_refuses_what_is_not_in_f(pointers: list[str], field: str, reason: str) -> None:
    _, disclosure = new_commitment(PAYLOAD, F, seed=SEED)
    with pytest.raises(InvalidArgumentError) as caught:
        withhold_fields(PAYLOAD, disclosure, pointers, 7)
    assert caught.value.field == field and reason in caught.value.reason


def test_withholding_twice_is_refused_naming_the_first_order() -> None:
    _, disclosure = new_commitment(PAYLOAD, F, seed=SEED)
    body, after = withhold_fields(PAYLOAD, disclosure, ["/parties/0/name"], 9)
    with pytest.raises(InvalidArgumentError, match="already withheld under order 9") as caught:
        withhold_fields(body, after, ["/parties/0/name"], 10)
    assert caught.value.field == "fields['/parties/0/name']"
    with pytest.raises(InvalidArgumentError, match="log index"):
        withhold_fields(PAYLOAD, disclosure, ["/parties/0/name"], True)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        (["/parties/5/name"], "fields['/parties/5/name']", "array of 2, index '5'"),
        (["/parties/01"], "fields['/parties/01']", "index '01'"),
        (["/nothing"], "fields['/nothing']", "no member 'nothing'"),
        (["/value/amount/x"], "fields['/value/amount/x']", "goes through a float"),
        (["value"], "fields['value']", "starting with '/'"),
        ([""], "fields['']", "starting with '/'"),
        (["/a~2b"], "fields['/a~2b']", "'~' not followed"),
        (["/parties/0", "/parties/0/name"], "fields['/parties/0/name']", "inside another committed field"),
        (["/parties", "/parties/0/contactPoint/email"], "fields['/parties/0/contactPoint/email']", "inside"),
        (["/value", "/value"], "fields['/value']", "named twice"),
    ],
)
def test_bad_field_choices_are_named(fields: list[str], field: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        new_commitment(PAYLOAD, fields, seed=SEED)
    assert caught.value.field == field and reason in caught.value.reason


def test_sibling_pointers_sharing_a_prefix_are_not_nested() -> None:
    payload = {"a": 1, "a-x": {"b": 2}, "ab": 3}
    value, disclosure = new_commitment(payload, ["/a", "/a-x/b", "/ab"], seed=SEED)
    assert recompute(payload, disclosure) == value


def test_bad_seed_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="32 bytes"):
        new_commitment(PAYLOAD, F, seed=b"short")


def _disclosure() -> dict[str, Any]:
    return new_commitment(PAYLOAD, F, seed=SEED)[1]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda d: d.update(extra=1), "disclosure.extra", "unknown member"),
        (lambda d: d.update(salt="AB" * 32), "disclosure.salt", "64 lowercase hex"),
        (lambda d: d.update(fields=[]), "disclosure.fields", "JSON object"),
        (lambda d: d["fields"].update({"/value": {"salt": "00" * 32}}), None, None),  # a legal extra field
        (lambda d: d["fields"].update({"/nothing": {"salt": "00" * 32}}), "disclosure.fields['/nothing']", "no member"),
        (
            lambda d: d["fields"]["/parties/0/name"].update(salt="zz"),
            "disclosure.fields['/parties/0/name'].salt",
            "hex",
        ),
        (lambda d: d["fields"].update({"/value": {"digest": "00" * 32}}), "disclosure.fields['/value']", "members"),
        (
            lambda d: d["fields"].update({"/value": {"digest": "00" * 32, "order": -1}}),
            "disclosure.fields['/value'].order",
            "log index",
        ),
        (
            lambda d: d["fields"].update({"/value": {"digest": "00" * 32, "order": 3}}),
            "disclosure.fields['/value']",
            "shows a value there",
        ),
        (
            lambda d: d["fields"].update({"/parties/0/contactPoint/email": {"salt": "00" * 32}}),
            "disclosure.fields['/parties/0/contactPoint/email']",
            "inside another",
        ),
        (lambda d: d["fields"].update({"x": {"salt": "00" * 32}}), "disclosure.fields['x']", "JSON Pointer"),
    ],
)
def test_malformed_disclosures_are_named(change: Any, field: str | None, reason: str | None) -> None:
    disclosure = _disclosure()
    change(disclosure)
    if field is None:
        recompute(PAYLOAD, disclosure)  # well formed: computes (a different commitment)
        assert recompute(PAYLOAD, disclosure) != new_commitment(PAYLOAD, F, seed=SEED)[0]
        return
    with pytest.raises(InvalidArgumentError) as caught:
        recompute(PAYLOAD, disclosure)
    assert caught.value.field == field and reason is not None and reason in caught.value.reason


def test_changing_any_shown_byte_changes_the_commitment() -> None:
    value, disclosure = new_commitment(PAYLOAD, F, seed=SEED)
    tampered = copy.deepcopy(PAYLOAD)
    tampered["value"]["amount"] = 1250.51
    assert recompute(tampered, disclosure) != value
    tampered = copy.deepcopy(PAYLOAD)
    tampered["parties"][0]["name"] = "Ana Perez"
    assert recompute(tampered, disclosure) != value
    other = copy.deepcopy(disclosure)
    other["salt"] = "00" * 32
    assert recompute(PAYLOAD, other) != value
    # moving a value out of F (showing it as part of the skeleton) changes the commitment too
    fewer = copy.deepcopy(disclosure)
    del fewer["fields"]["/parties/0/name"]
    assert recompute(PAYLOAD, fewer) != value


def test_pointer_round_trip() -> None:
    assert commitment.pointer(("a/b", 0, "~x")) == "/a~1b/0/~0x"
    assert commitment.parse_pointer("/a~1b/0/~0x") == ("a/b", "0", "~x")
    assert commitment.parse_pointer("/~01") == ("~1",)


# --- properties -------------------------------------------------------------------------------

_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
_payloads = st.dictionaries(st.text(max_size=6), _json, min_size=1, max_size=5)


def _places(value: Any, where: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [where] if where else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _places(child, (*where, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _places(child, (*where, i))
    return found


def _disjoint(chosen: list[tuple[str | int, ...]]) -> list[tuple[str | int, ...]]:
    kept: list[tuple[str | int, ...]] = []
    for place in sorted(set(chosen), key=len):
        if not any(place[: len(k)] == k for k in kept):
            kept.append(place)
    return kept


def _set(doc: Any, place: tuple[str | int, ...], value: Any) -> None:
    for part in place[:-1]:
        doc = doc[part]
    doc[place[-1]] = value


@settings(max_examples=200, deadline=None)
@given(payload=_payloads, data=st.data())
def test_withholding_never_changes_the_commitment(payload: dict[str, Any], data: st.DataObject) -> None:
    places = _places(payload)
    chosen = _disjoint(data.draw(st.lists(st.sampled_from(places), max_size=6)) if places else [])
    fields = [commitment.pointer(p) for p in chosen]
    value, disclosure = new_commitment(payload, fields)
    assert recompute(payload, disclosure) == value
    seed = data.draw(st.binary(min_size=32, max_size=32))
    assert new_commitment(payload, fields, seed=seed) == _reference(payload, fields, seed)
    for parsed in (False, True):  # the payloads are JSON values without NaN: a strict parser's
        bound, shown, data_bytes = commitment.commit_encoded(payload, fields, seed=seed, parsed=parsed)
        assert (bound, shown) == _reference(payload, fields, seed)
        assert data_bytes == rfc8785.dumps(payload)
    body, current = payload, disclosure
    remaining = list(fields)
    order = 0
    while remaining:
        batch = data.draw(st.lists(st.sampled_from(remaining), min_size=1, max_size=3, unique=True))
        order += 1
        body, current = withhold_fields(body, current, batch, order)
        remaining = [p for p in remaining if p not in batch]
        assert recompute(body, current) == value
        assert set(withheld_fields(current)) == set(fields) - set(remaining)
    assert recompute(payload, disclosure) == value  # the inputs were not changed


@settings(max_examples=200, deadline=None)
@given(payload=_payloads, data=st.data(), secret=st.binary(min_size=8, max_size=8))
def test_a_withheld_value_cannot_be_recovered_without_its_salt(
    payload: dict[str, Any], data: st.DataObject, secret: bytes
) -> None:
    places = _places(payload)
    assume(places)
    place = data.draw(st.sampled_from(places))
    hidden = "secret-" + secret.hex()  # a value that appears nowhere else
    target = copy.deepcopy(payload)
    _set(target, place, hidden)
    p = commitment.pointer(place)
    others = [commitment.pointer(q) for q in _disjoint(data.draw(st.lists(st.sampled_from(_places(target)))))]
    others = [q for q in others if q != p and not q.startswith(p + "/") and not p.startswith(q + "/")]
    value, disclosure = new_commitment(target, [p, *others])
    salt = disclosure["fields"][p]["salt"]
    body, after = withhold_fields(target, disclosure, [p], 1)
    public = rfc8785.dumps(body) + rfc8785.dumps(after) + value.encode()
    assert hidden.encode() not in public
    assert salt.encode() not in public and bytes.fromhex(salt) not in public
    digest = after["fields"][p]["digest"]
    # a guess at the value, checked the way a bare hash would allow, never matches: not the bare
    # SHA-256 of the value (its JSON or its text) nor of any other candidate ...
    candidates = [hidden, "secret-" + bytes(8).hex(), "", None, 0]
    for candidate in candidates:
        assert digest != hashlib.sha256(rfc8785.dumps(candidate)).hexdigest()
        assert digest != hashlib.sha256(json.dumps(candidate).encode()).hexdigest()
        assert digest != commitment.field_digest(bytes.fromhex(after["salt"]), candidate).hex()
    # ... only with the salt that is no longer stored does the right guess match
    assert digest == commitment.field_digest(bytes.fromhex(salt), hidden).hex()
    assert recompute(body, after) == value


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=5), st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8) | st.booleans(), max_size=4
    )
)
def test_the_whole_payload_commitment_from_its_bytes_is_recompute_s(payload: dict[str, Any]) -> None:
    """With no field committed apart, the commitment from the served bytes is recompute's, for
    RFC 8785 bytes; other bytes of the same value give another (the caller then asks recompute)."""
    expected, disclosure = commitment.new_commitment(payload, [])
    data = rfc8785.dumps(payload)
    assert commitment.whole_commitment(data, disclosure) == expected == commitment.recompute(payload, disclosure)
    spaced = json.dumps(payload, indent=1).encode()
    if spaced != data:
        assert commitment.whole_commitment(spaced, disclosure) != expected
        assert commitment.recompute(json.loads(spaced), disclosure) == expected
    assert commitment.whole_commitment(data + b" ", disclosure) != expected


def test_the_whole_payload_commitment_is_not_for_fields_committed_apart() -> None:
    payload = {"a": 1, "b": {"c": "x"}}
    _, disclosure = commitment.new_commitment(payload, ["/b/c"])
    assert commitment.whole_commitment(rfc8785.dumps(payload), disclosure) is None
    _, whole = commitment.new_commitment(payload, [])
    for bad in ({**whole, "extra": 1}, {"fields": {}}, {**whole, "salt": "XY"}, [whole], None):
        assert commitment.whole_commitment(rfc8785.dumps(payload), bad) is None


def test_disclosure_bytes_are_its_rfc8785_bytes() -> None:
    for fields in ([], F):
        disclosure = commitment.new_commitment(PAYLOAD, fields, seed=SEED)[1]
        assert commitment.disclosure_bytes(disclosure) == rfc8785.dumps(disclosure)
    odd = [{"salt": "AB" * 32, "fields": {}}, {"salt": "ab" * 32, "fields": {}, "x": 1}, {"salt": 5, "fields": {}}]
    for disclosure in odd:  # not what a writer makes: encoded by the general path, same bytes
        assert commitment.disclosure_bytes(disclosure) == rfc8785.dumps(disclosure)
