"""The tenderproof-bundle/1 document: frozen fixtures keep loading, round trips are exact,
and every structural fault is refused naming its field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.core import verify
from ledger.core.bundle import BUNDLE_FORMAT_V1, BUNDLE_FORMAT_V2, load_bundle
from ledger.core.errors import FormatError

FIXTURE = Path(__file__).resolve().parents[1] / "assets" / "bundles" / "valid-v1.json"


@pytest.fixture
def doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def test_frozen_v1_fixture_loads_and_round_trips(doc: dict[str, Any]) -> None:
    bundle = load_bundle(doc)
    assert bundle.ocid == "ocds-abc123-T1"
    assert [e.status for e in bundle.events] == ["anchored", "anchored", "pending"]
    assert bundle.events[1].payload is None and bundle.events[1].withheld.startswith("personal data")
    assert bundle.to_json() == doc


def test_fixture_proofs_hold(doc: dict[str, Any]) -> None:
    """The fixture is a real bundle: its structure and its proofs agree."""
    bundle = load_bundle(doc)
    roots = {a.tree_size: a.root_hash for a in bundle.anchors}
    for event in bundle.events:
        assert event.envelope.leaf_hash() == event.leaf_hash
        if event.inclusion is not None:
            assert event.index is not None
            verify.verify_inclusion(
                event.index,
                event.inclusion.tree_size,
                event.leaf_hash,
                event.inclusion.path,
                roots[event.inclusion.tree_size],
            )
    link = bundle.consistency[0]
    verify.verify_consistency(link.from_size, link.to_size, roots[link.from_size], roots[link.to_size], link.path)


@pytest.mark.parametrize("fmt", ["tenderproof-bundle/3", "tenderproof-bundle", None, 1, True])
def test_unknown_formats_are_refused(doc: dict[str, Any], fmt: Any) -> None:
    doc["format"] = fmt
    with pytest.raises(FormatError) as err:
        load_bundle(doc)
    assert err.value.field == "format"
    assert f"expected {BUNDLE_FORMAT_V1!r} or {BUNDLE_FORMAT_V2!r}" in err.value.reason


def test_missing_format_is_refused(doc: dict[str, Any]) -> None:
    del doc["format"]
    with pytest.raises(FormatError, match="unsupported bundle format None"):
        load_bundle(doc)


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = doc
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("origin", "", "origin"),
        ("ocid", "not-an-ocid", "ocid"),
        ("chain.contract", "0x1234", "chain.contract"),
        ("chain.chain_id", -1, "chain.chain_id"),
        ("chain.extra", 1, "chain.extra"),
        ("events", {}, "events"),
        ("events.0.leaf_hash", "AB" * 32, "events[0].leaf_hash"),
        ("events.0.index", "1", "events[0].index"),
        ("events.0.index", None, "events[0].index"),
        ("events.0.status", "pending", "events[0].status"),
        ("events.2.status", "anchored", "events[2].status"),
        ("events.0.inclusion.path.0", "zz", "events[0].inclusion.path[0]"),
        ("events.0.inclusion.tree_size", 2.5, "events[0].inclusion.tree_size"),
        ("events.0.envelope.seq", -1, "events[0].seq"),
        ("events.0.envelope.color", "red", "events[0].envelope.color"),
        ("events.0.payload", [1], "events[0].payload"),
        ("events.0.withheld", "reason", "events[0].withheld"),
        ("events.1.withheld", _DELETE, "events[1].withheld"),
        ("events.0.surprise", True, "events[0].surprise"),
        ("anchors.0.tx_hash", "0x12", "anchors[0].tx_hash"),
        ("anchors.0.root_hash", "00" * 31, "anchors[0].root_hash"),
        ("anchors.0.block_number", True, "anchors[0].block_number"),
        ("consistency.0.path", "x", "consistency[0].path"),
        ("consistency.0.to_size", _DELETE, "consistency[0].to_size"),
    ],
)
def test_structural_faults_name_their_field(doc: dict[str, Any], path: str, value: Any, field: str) -> None:
    bad = copy.deepcopy(doc)
    _set(bad, path, value)
    with pytest.raises(FormatError) as err:
        load_bundle(bad)
    assert err.value.field == field, err.value


def test_not_an_object() -> None:
    with pytest.raises(FormatError) as err:
        load_bundle([])
    assert err.value.field == "bundle"


# --- bundle/2's completeness member: compact encoding (docs/spec.md §15.1) and the full one ---

MUTATIONS = Path(__file__).resolve().parents[1] / "assets" / "bundles"


def _v2(encoding: str) -> dict[str, Any]:
    folder = "mutations" if encoding == "compact" else "mutations-completeness1"
    data: dict[str, Any] = json.loads((MUTATIONS / folder / "valid-complete.json").read_text())
    return data


def test_both_completeness_encodings_load_to_the_same_proof_and_round_trip() -> None:
    """The saved compact bundle and the saved full one come from different runs: each expands to
    a commitment whose own hashes agree, and each writes back exactly as read."""
    for encoding in ("compact", "full"):
        doc = _v2(encoding)
        bundle = load_bundle(doc)
        c = bundle.completeness
        assert c is not None and c.encoding == (2 if encoding == "compact" else 1)
        n = max(a.tree_size for a in bundle.anchors)
        assert c.commitment.index == n - 1 and c.commitment.payload["tree_size"] == n - 1  # type: ignore[index]
        assert c.commitment.envelope.leaf_hash() == c.commitment.leaf_hash
        root = {a.tree_size: a.root_hash for a in bundle.anchors}[n]
        assert c.commitment.inclusion is not None
        verify.verify_inclusion(n - 1, n, c.commitment.leaf_hash, c.commitment.inclusion.path, root)
        assert bundle.to_json() == doc


def test_compact_encoding_expands_empty_siblings_in_place() -> None:
    import dataclasses

    from ledger.core import heads

    bundle = load_bundle(_v2("compact"))
    c = bundle.completeness
    assert c is not None and len(c.siblings) >= 2
    holed = dataclasses.replace(c, siblings=(c.siblings[0], heads.EMPTY, *c.siblings[1:], heads.EMPTY))
    written = holed.to_json()
    assert written["empty"] == [1, len(holed.siblings) - 1]
    again = load_bundle({**bundle.to_json(), "completeness": written}).completeness
    assert again is not None and again.siblings == holed.siblings


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"v": True}, "completeness.v"),
        ({"v": 3}, "completeness.v"),
        ({"extra": 1}, "completeness.extra"),
        ({"path": "not base64!"}, "completeness.path"),
        ({"path": "AAE="}, "completeness.path"),  # 2 bytes: not whole hashes
        ({"path": "A" * 4 * 700}, "completeness.path"),  # more hashes than any tree needs
        ({"siblings": "AAAB"}, "completeness.siblings"),
        ({"siblings": "A" * 44}, "completeness.siblings"),  # one EMPTY hash, which belongs in "empty"
        ({"empty": [0, 0]}, "completeness.empty"),
        ({"empty": [99]}, "completeness.empty"),
        ({"empty": [-1]}, "completeness.empty[0]"),
        ({"empty": [True]}, "completeness.empty[0]"),
        ({"empty": "0"}, "completeness.empty"),
        ({"commitment": {"seq": 1}}, "completeness.commitment.prev"),
        ({"head": {"size": 0, "leaf_hash": "00" * 32}}, "completeness.head"),
    ],
)
def test_compact_completeness_faults_name_their_field(change: dict[str, Any], field: str) -> None:
    doc = _v2("compact")
    if "commitment" in change:
        change = {"commitment": {k: v for k, v in doc["completeness"]["commitment"].items() if k != "prev"}}
    doc["completeness"].update(change)
    with pytest.raises(FormatError) as err:
        load_bundle(doc)
    assert err.value.field == field, err.value


def test_compact_completeness_needs_an_anchor() -> None:
    doc = _v2("compact")
    doc["anchors"], doc["consistency"] = [], []
    with pytest.raises(FormatError, match="needs the anchor"):
        load_bundle(doc)


def test_compact_path_with_non_canonical_padding_is_refused() -> None:
    doc = _v2("compact")
    import base64

    # One hash (32 bytes: padded, the last character carries 2 unused bits): the same bytes,
    # another spelling.
    raw = base64.b64decode(doc["completeness"]["path"])[:32]
    text = base64.b64encode(raw).decode()
    last = text.rstrip("=")[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    bumped = text.rstrip("=")[:-1] + alphabet[alphabet.index(last) + 1] + "=" * (len(text) - len(text.rstrip("=")))
    assert base64.b64decode(bumped) == raw
    doc["completeness"]["path"] = bumped
    with pytest.raises(FormatError, match="canonical"):
        load_bundle(doc)
