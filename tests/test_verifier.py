"""The auditor's verifier on real bundles: built from a real log (SQLite) whose checkpoints are
anchored on an in-process EVM, then checked against that chain; and a mutation corpus: every
single-field change of a valid bundle is rejected, with the right reason for the ones that
matter most."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from anchoring import rpc as embedded_rpc
from anchoring.bundles import build_bundle, final_anchors
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from cli import main
from ledger.core import commitment
from ledger.core.bundle import load_bundle
from ledger.core.errors import FormatError, InvalidArgumentError
from ledger.core.signing import Submission as Signed
from ledger.core.signing import typed_data
from ledger.log import Log
from ledger.procurement import privacy
from ledger.submission import Submission
from settings import ChainSettings
from tests.conftest import ORIGIN, T0
from tests.procurement.helpers import signed
from tests.recording import append_many
from verifier.chain import RpcChainReader
from verifier.check import Report, verify_bundle

OCID = "ocds-abc123-road-2026"
REGISTRY = "ocds-tpreg0-officers"
OTHER = "ocds-abc123-bridge-2026"
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)


@dataclass
class Anchored:
    log: Log
    dev: EmbeddedChain
    reader: RpcChainReader


def _anchor(anchorer: ChainAnchorer) -> None:
    result = anchorer.run_round(force=True)
    while not result.settled:
        result = anchorer.run_round()
    assert result.anchor is not None and result.anchor.status == "final"


#: The officer who signs every other event of the tenders (a fixed test key).
OFFICER_KEY = "0x" + "4f" * 32
OFFICER = Account.from_key(OFFICER_KEY)


def _event(ocid: str, step: int, chain_id: int) -> Submission:
    kinds = ["tender.published", "tender.amended", "bid.committed", "tender.clarified"]
    kind = "tender.planned" if step == 0 else kinds[step % len(kinds)]
    payload = {"tender": {"id": ocid, "step": step, "value": {"amount": 1000.5 + step, "currency": "EUR"}}}
    unsigned = Submission(ocid=ocid, type=kind, payload=payload)
    if step % 2:
        return unsigned
    return signed(unsigned, key=OFFICER_KEY, submission_id=f"{ocid}/{step}", origin=ORIGIN, chain_id=chain_id)


PERSON = "ocds-abc123-sole-trader-2026"
SOLE_TRADER = {
    "id": "ES-B12345678",
    "name": "Ana Pérez Gómez",
    "roles": ["supplier"],
    "details": {"scale": "selfEmployed"},
    "contactPoint": {"name": "Ana Pérez Gómez", "email": "ana@example.org"},
}


def _personal(chain_id: int) -> list[Submission]:
    """A tender with a sole trader: published unsigned, then awarded signed over the v2 commitment."""
    published = {"tender": {"id": PERSON, "title": "Pintura"}, "parties": [SOLE_TRADER]}
    award = {
        "award": {"id": "A-1", "suppliers": [{"id": "ES-B12345678", "name": "Ana Pérez Gómez"}]},
        "parties": [SOLE_TRADER],
    }
    unsigned = Submission(ocid=PERSON, type="award.issued", payload=award)
    return [
        Submission(
            ocid=PERSON, type="tender.published", payload=published, fields=_fields("tender.published", published)
        ),
        signed(unsigned, key=OFFICER_KEY, submission_id="person/1", origin=ORIGIN, chain_id=chain_id, v2=True),
    ]


def _fields(kind: str, payload: dict[str, Any]) -> tuple[str, ...]:
    return privacy.committed_fields(privacy.places(kind, payload))


def _events(ocid: str, start: int, count: int, chain_id: int) -> list[Submission]:
    return [_event(ocid, start + i, chain_id) for i in range(count)]


@pytest.fixture(scope="module")
def anchored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anchored]:
    """Two tenders interleaved; three anchors; the tender's last event not yet anchored."""
    url = f"sqlite:///{tmp_path_factory.mktemp('verifier') / 'log.db'}"
    log = Log.open(url, origin=ORIGIN)
    dev = EmbeddedChain()
    anchorer = ChainAnchorer(log, CHAIN, dev=dev)
    chain_id = int(dev.w3.eth.chain_id)
    registered = {"address": OFFICER.address, "name": "Ana Test", "role": "buyer"}
    append_many(log, [Submission(ocid=REGISTRY, type="officer.registered", payload=registered)], now=T0)
    append_many(log, _personal(chain_id), now=T0)  # envelope v2 with separately committed personal data
    for round_, (mine, theirs) in enumerate([(3, 4), (2, 5), (4, 1)]):
        start = sum(m for m, _ in [(3, 4), (2, 5), (4, 1)][:round_])
        append_many(log, [*_events(OCID, start, mine, chain_id), *_events(OTHER, start, theirs, chain_id)], now=T0)
        log.integrate_all(now=T0)
        _anchor(anchorer)
    append_many(log, _events(OCID, 9, 1, chain_id), now=T0)  # recorded and integrated, not anchored
    log.integrate_all(now=T0)
    yield Anchored(log, dev, RpcChainReader(embedded_rpc.transport(dev)))
    log.close()


@pytest.fixture(scope="module")
def valid(anchored: Anchored) -> dict[str, Any]:
    bundle = build_bundle(anchored.log, OCID, final_anchors(anchored.log.engine, "dev"))
    return bundle.to_json()


def _verify(doc: dict[str, Any], reader: RpcChainReader | None) -> Report:
    return verify_bundle(load_bundle(json.loads(json.dumps(doc))), chain=reader)


def test_valid_bundle_verifies_offline_and_against_the_chain(anchored: Anchored, valid: dict[str, Any]) -> None:
    assert len(valid["events"]) == 10 and len(valid["anchors"]) == 3 and len(valid["consistency"]) == 2
    for reader in (None, anchored.reader):
        report = _verify(valid, reader)
        assert report.valid, report.failures
        assert report.chain_checked is (reader is not None)
        assert [e.status for e in report.events] == ["valid"] * 9 + ["pending"]
        # Each event is proven against the first anchor that covers it.
        sizes = [a["tree_size"] for a in valid["anchors"]]
        for event in report.events[:9]:
            assert event.index is not None and event.tree_size == min(s for s in sizes if s > event.index)
            assert event.block_number is not None and event.tx_hash is not None
        assert [e.signer for e in report.events] == [OFFICER.address if i % 2 == 0 else None for i in range(10)]


def test_signatures_are_checked_with_the_reason(anchored: Anchored, valid: dict[str, Any]) -> None:
    envelope = valid["events"][2]["envelope"]
    assert envelope["signature"] is not None
    intruder = Account.from_key("0x" + "5e" * 32)
    forged = Signed.from_json(envelope["submission"])
    cases = {
        # Another key signed the same submission: recovers another address than the officer named.
        "was not made by the officer": "0x"
        + intruder.sign_message(encode_typed_data(full_message=typed_data(forged))).signature.hex().removeprefix("0x"),
        # A signature that recovers nobody sensible (its s value changed).
        "signature": envelope["signature"][:70]
        + ("0" if envelope["signature"][70] != "0" else "1")
        + envelope["signature"][71:],
    }
    for reason, signature in cases.items():
        doc = _set(valid, ("events", 2, "envelope", "signature"), signature)
        assert reason in _reasons(doc, anchored)
    # The submission of another event of the tender, with its valid signature: not this envelope's.
    other = valid["events"][4]["envelope"]
    doc = _set(valid, ("events", 2, "envelope", "submission"), other["submission"])
    doc = _set(doc, ("events", 2, "envelope", "signature"), other["signature"])
    assert "submission.eventType" in _reasons(doc, anchored) or "submission.payloadSha256" in _reasons(doc, anchored)


def test_the_bundle_round_trips_through_its_loader(valid: dict[str, Any]) -> None:
    assert load_bundle(valid).to_json() == valid


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*path, i))
    else:
        yield path, value


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.25
    if value is None:
        return "0" * 64
    assert isinstance(value, str)
    last = value[-1]
    return value[:-1] + ("1" if last == "0" else "0")


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _rejected(doc: dict[str, Any], reader: RpcChainReader) -> list[str]:
    """The reasons a mutated bundle is rejected (empty if it is accepted)."""
    try:
        report = _verify(doc, reader)
    except FormatError as exc:
        return [f"format: {exc}"]
    return [str(f) for f in report.failures]


def test_every_single_field_change_is_rejected(anchored: Anchored, valid: dict[str, Any]) -> None:
    pending = len(valid["events"]) - 1
    # The one field no proof covers: the log index of an event not yet anchored (shown as pending).
    unproven = {("events", pending, "index")}
    checked = 0
    for path, value in _leaves(valid):
        if path in unproven:
            continue
        mutated = _set(valid, path, _changed(value))
        assert _rejected(mutated, anchored.reader), f"accepted a change of {path}"
        checked += 1
    assert checked > 200  # every hash, path element, size, seq, payload value...


def _reasons(doc: dict[str, Any], anchored: Anchored) -> str:
    reasons = _rejected(doc, anchored.reader)
    assert reasons
    return "\n".join(reasons)


def test_rejections_name_the_event_and_the_reason(anchored: Anchored, valid: dict[str, Any]) -> None:
    events = valid["events"]
    amount = ("events", 2, "payload", "tender", "value", "amount")
    assert "event seq 2 (events[2]): payload hashes to" in _reasons(_set(valid, amount, 1.0), anchored)
    leaf = ("events", 1, "leaf_hash")
    assert "event seq 1 (events[1]): envelope hashes to leaf" in _reasons(
        _set(valid, leaf, _changed(events[1]["leaf_hash"])), anchored
    )
    path0 = ("events", 0, "inclusion", "path", 0)
    assert "event seq 0 (events[0]): inclusion in tree size" in _reasons(
        _set(valid, path0, _changed(events[0]["inclusion"]["path"][0])), anchored
    )
    prev = ("events", 4, "envelope", "prev")
    assert "event seq 4 (events[4]): prev" in _reasons(_set(valid, prev, "ab" * 32), anchored)
    seq = ("events", 3, "envelope", "seq")
    assert "event seq 4 (events[3]): expected seq 3" in _reasons(_set(valid, seq, 4), anchored)
    root = ("anchors", 1, "root_hash")
    found = _reasons(_set(valid, root, _changed(valid["anchors"][1]["root_hash"])), anchored)
    assert "the contract holds root" in found and "consistency" in found
    size = ("events", 0, "inclusion", "tree_size")
    assert "which no anchor in the bundle has" in _reasons(_set(valid, size, 999), anchored)
    block = ("anchors", 0, "block_number")
    assert "anchor of tree size" in _reasons(_set(valid, block, valid["anchors"][0]["block_number"] + 1), anchored)


def test_removed_or_reordered_events_are_rejected(anchored: Anchored, valid: dict[str, Any]) -> None:
    removed = copy.deepcopy(valid)
    del removed["events"][3]
    assert "event seq 4 (events[3]): expected seq 3" in _reasons(removed, anchored)
    swapped = copy.deepcopy(valid)
    swapped["events"][1], swapped["events"][2] = swapped["events"][2], swapped["events"][1]
    reasons = _reasons(swapped, anchored)
    assert "expected seq 1" in reasons and "is not after the previous event's" in reasons
    dropped_tail = copy.deepcopy(valid)  # dropping the last events is not detectable: say what the bundle covers
    del dropped_tail["events"][-1]
    assert _verify(dropped_tail, anchored.reader).valid


def test_a_missing_anchor_or_link_is_rejected(anchored: Anchored, valid: dict[str, Any]) -> None:
    no_link = copy.deepcopy(valid)
    del no_link["consistency"][0]
    assert "missing: the anchors are not shown to be one history" in _reasons(no_link, anchored)
    no_anchor = copy.deepcopy(valid)
    del no_anchor["anchors"][0]
    assert "which no anchor in the bundle has" in _reasons(no_anchor, anchored)


def test_a_contract_holding_another_root_is_rejected(anchored: Anchored, valid: dict[str, Any], tmp_path: Path) -> None:
    """Another log anchored to the same sizes on another contract: the bundle pointed there fails."""
    other = Log.open(f"sqlite:///{tmp_path / 'other.db'}", origin=ORIGIN)
    try:
        sizes = [a["tree_size"] for a in valid["anchors"]]
        dev = EmbeddedChain()
        anchorer = ChainAnchorer(other, CHAIN, dev=dev)
        done = 0
        for size in sizes:
            append_many(other, _events("ocds-abc123-other", done, size - done, int(dev.w3.eth.chain_id)), now=T0)
            other.integrate_all(now=T0)
            done = size
            _anchor(anchorer)
        report = _verify(
            valid, RpcChainReader(embedded_rpc.transport(dev))
        )  # same chain id and contract address: another history
        assert not report.valid
        assert all("the contract holds root" in str(f) or "transaction" in str(f) for f in report.failures)
        assert {f.where for f in report.failures} == {f"anchor of tree size {s}" for s in sizes}
    finally:
        other.close()


def test_a_withheld_payload_is_reported_not_failed(anchored: Anchored, valid: dict[str, Any]) -> None:
    withheld = copy.deepcopy(valid)
    withheld["events"][2]["payload"] = None
    withheld["events"][2]["withheld"] = "commercially sensitive until award"
    report = _verify(withheld, anchored.reader)
    assert report.valid
    assert report.events[2].withheld == "commercially sensitive until award"


def test_cli_verify_exit_codes(valid: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0 valid (saying the chain was not checked), 1 invalid naming the event, 2 not a bundle."""
    good, bad, garbage, unknown = (tmp_path / name for name in ("good.json", "bad.json", "garbage.json", "v9.json"))
    good.write_text(json.dumps(valid))
    bad.write_text(json.dumps(_set(valid, ("events", 4, "payload", "tender", "step"), 40)))
    garbage.write_text("{not json")
    unknown.write_text(json.dumps({**valid, "format": "tenderproof-bundle/9"}))
    assert main(["verify", str(good)]) == 0
    out = capsys.readouterr().out
    assert "NOT CHECKED: 10 events, 1 pending" in out and "NOT checked against the chain" in out
    assert f"signed by {OFFICER.address}, officer Ana Test (buyer)" in out
    assert main(["verify", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL event seq 4 (events[4]): payload hashes to" in out and "INVALID (1 failure):" in out
    assert main(["verify", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and [f["where"] for f in report["failures"]] == ["event seq 4 (events[4])"]
    for path in (garbage, unknown, tmp_path / "missing.json"):
        assert main(["verify", str(path)]) == 2, path


# --- Range bundles (docs/spec.md §15.3) ------------------------------------------------------


@pytest.fixture(scope="module")
def ranged(anchored: Anchored) -> dict[str, Any]:
    """Events 3 to 6 of the tender's 10 (the tenth pending)."""
    bundle = build_bundle(anchored.log, OCID, final_anchors(anchored.log.engine, "dev"), from_seq=3, to_seq=6)
    return bundle.to_json()


def test_a_range_bundle_verifies_and_says_it_is_a_range(anchored: Anchored, ranged: dict[str, Any]) -> None:
    assert [e["envelope"]["seq"] for e in ranged["events"]] == [3, 4, 5, 6]
    assert ranged["range"]["from_seq"] == 3 and ranged["range"]["to_seq"] == 6 and ranged["range"]["of"] == 10
    before = ranged["range"]["before"]
    assert before["envelope"]["seq"] == 2 and before["payload"] is None and before["inclusion"] is not None
    assert ranged["events"][0]["envelope"]["prev"] == before["leaf_hash"]
    assert load_bundle(ranged).to_json() == ranged
    for reader in (None, anchored.reader):
        report = _verify(ranged, reader)
        assert report.valid, report.failures
        assert report.range == (3, 6, 10) and report.scope == "events 3..6 of a history of 10"
        assert report.complete is False  # a range bundle is never reported as a complete history
        assert report.completeness.startswith("not the complete history: events 3..6 of a history of 10")
        assert [e.status for e in report.events] == ["valid"] * 4
        assert report.to_json()["range"]["text"] == "events 3..6 of a history of 10"
    head = _verify(
        build_bundle(anchored.log, OCID, final_anchors(anchored.log.engine, "dev"), from_seq=0, to_seq=1).to_json(),
        None,
    )
    assert head.valid and head.range == (0, 1, 10) and not head.complete  # from seq 0: no event before
    whole = _verify(
        build_bundle(anchored.log, OCID, final_anchors(anchored.log.engine, "dev"), from_seq=0).to_json(), None
    )
    assert whole.valid and whole.range == (0, 9, 10) and not whole.complete  # even when it covers everything


def test_every_single_field_change_of_a_range_bundle_is_rejected(anchored: Anchored, ranged: dict[str, Any]) -> None:
    checked = 0
    for path, value in _leaves(ranged):
        mutated = _set(ranged, path, _changed(value))
        if path[:2] == ("range", "of") and mutated["range"]["of"] > value:
            continue  # a larger total is only the server's word at building time (see the next test)
        if path == ("range", "before", "withheld"):
            continue  # why its payload is left out: words, not a proof (its payload is never carried)
        assert _rejected(mutated, anchored.reader), f"accepted a change of {path}"
        checked += 1
    assert checked > 150


def test_range_bundle_mutations_are_named(anchored: Anchored, ranged: dict[str, Any]) -> None:
    # The event before the range: its leaf hash is what the first event's prev must be.
    before_leaf = ("range", "before", "leaf_hash")
    found = _reasons(_set(ranged, before_leaf, _changed(ranged["range"]["before"]["leaf_hash"])), anchored)
    assert "range.before: envelope hashes to leaf" in found
    first_prev = ("events", 0, "envelope", "prev")
    found = _reasons(_set(ranged, first_prev, "ab" * 32), anchored)
    assert "event seq 3 (events[0]): prev abab" in found and "range.before, the event before the range" in found
    # Another event as the one before: named.
    first_event = {k: v for k, v in copy.deepcopy(ranged["events"][0]).items() if k != "disclosure"}
    other = _set(ranged, ("range", "before"), {**first_event, "payload": None, "withheld": "x"})
    assert "range.before: is seq 3" in _reasons(other, anchored)
    # The range made to start later than its events: refused.
    later = _set(ranged, ("range", "from_seq"), 4)
    assert "format:" in _reasons(later, anchored)  # 4..6 is three events, the bundle holds four
    # The range member dropped: read as a whole history from seq 0, which it is not.
    whole = copy.deepcopy(ranged)
    del whole["range"]
    assert "expected seq 0: the history must be complete and in order from 0" in _reasons(whole, anchored)
    # An event dropped from the middle, the range shrunk to match: prev no longer chains.
    gap = copy.deepcopy(ranged)
    del gap["events"][1]
    gap["range"]["to_seq"] = 5
    found = _reasons(gap, anchored)
    assert "expected seq 4" in found and "is not the leaf hash of the event before" in found
    # Version 1 has no ranges.
    v1 = {k: v for k, v in ranged.items() if k not in ("completeness", "officers", "checkpoint")}
    assert "format: bundle.range: unknown field" in _reasons({**v1, "format": "tenderproof-bundle/1"}, anchored)


def test_range_bounds_are_checked(anchored: Anchored) -> None:
    target = final_anchors(anchored.log.engine, "dev")
    cases = {
        (10, None): "query.from_seq: tender ocds-abc123-road-2026 has 10 events (seq 0 to 9), from_seq is 10",
        (5, 4): "query.to_seq: must be at least from_seq (5), got 4",
        (0, 10): "query.to_seq: tender ocds-abc123-road-2026 has 10 events (seq 0 to 9), to_seq is 10",
    }
    for (first, last), said in cases.items():
        with pytest.raises(InvalidArgumentError) as err:
            build_bundle(anchored.log, OCID, target, from_seq=first, to_seq=last)
        assert str(err.value) == said
    with pytest.raises(InvalidArgumentError, match="range bundles are version 2"):
        build_bundle(anchored.log, OCID, target, version=1, from_seq=1)


def test_v2_fields_withheld_verify_and_are_reported_tampering_does_not(anchored: Anchored) -> None:
    """Envelope v2 (docs/spec.md §2.5) end to end through the verifier: personal data committed field
    by field (unsigned, and signed over the commitment), then withheld as an order does it (the value
    nulled, its salt replaced by the digest): the commitments still hold and the fields are reported
    withheld under the order, refused only because the bundle lacks the orders it names; a forged
    value or disclosure is refused, naming the event."""
    doc = build_bundle(anchored.log, PERSON, final_anchors(anchored.log.engine, "dev")).to_json()
    published, awarded = doc["events"]
    assert [e["envelope"]["v"] for e in doc["events"]] == [2, 2]
    assert awarded["envelope"]["submission"]["payloadSha256"] == awarded["envelope"]["payload_commitment"]
    assert set(published["disclosure"]["fields"]) == {"/parties/0/contactPoint", "/parties/0/name"}
    assert set(awarded["disclosure"]["fields"]) == {
        "/award/suppliers/0/name",
        "/parties/0/contactPoint",
        "/parties/0/name",
    }
    report = _verify(doc, anchored.reader)
    assert report.valid and report.outcome == "verified", report.failures
    assert [e.withheld_fields for e in report.events] == [{}, {}]
    assert report.events[1].signer == OFFICER.address

    held = copy.deepcopy(doc)
    for event, order in zip(held["events"], (97, 98), strict=True):
        names = list(event["disclosure"]["fields"])  # every field that names the sole trader
        event["payload"], event["disclosure"] = commitment.withhold_fields(
            event["payload"], event["disclosure"], names, order
        )
    assert "Ana Pérez Gómez" not in json.dumps(held["events"], ensure_ascii=False)
    report = _verify(held, anchored.reader)
    # the commitments still hold with the fields withheld, but 97 and 98 are no orders this bundle
    # carries: refused, naming them (a real order's withholding verifies: test_withholding.py)
    assert not report.valid
    missing = [f.reason for f in report.failures if "which the bundle does not carry" in f.reason]
    assert [r.split(",")[0] for r in missing] == [
        "withheld under the order at log index 97",
        "withheld under the order at log index 98",
    ], report.failures
    assert not [f for f in report.failures if "commit" in f.reason], report.failures
    assert report.events[0].withheld_fields == {"/parties/0/contactPoint": 97, "/parties/0/name": 97}
    withheld = {"/award/suppliers/0/name": 98, "/parties/0/contactPoint": 98, "/parties/0/name": 98}
    assert report.events[1].withheld_fields == withheld
    assert report.to_json()["events"][1]["withheld_fields"] == withheld

    def problem(change: Callable[[dict[str, Any]], None]) -> str:
        mutated = copy.deepcopy(held)
        change(mutated["events"][1])
        return _reasons(mutated, anchored)

    # a different value shown where the field is withheld, or a guess in place of the null
    def show(event: dict[str, Any]) -> None:
        event["payload"]["parties"][0]["name"] = "Ana Pérez Gómez"

    assert "event seq 1 (events[1]): payload cannot be checked against its commitment" in problem(show)
    assert "is withheld under order 98 but the payload shows a value there" in problem(show)

    def forge_digest(event: dict[str, Any]) -> None:
        event["disclosure"]["fields"]["/parties/0/name"]["digest"] = "00" * 32

    assert "event seq 1 (events[1]): payload and disclosure commit to" in problem(forge_digest)

    def change_shown(event: dict[str, Any]) -> None:
        event["payload"]["award"]["id"] = "A-2"

    assert "payload and disclosure commit to" in problem(change_shown)

    def drop_disclosure(event: dict[str, Any]) -> None:
        del event["disclosure"]

    assert "events[1].disclosure: missing" in problem(drop_disclosure)
