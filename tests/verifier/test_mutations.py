"""The mutation corpus of issue 15: every mutated bundle is refused (exit 1) by `tenderproof
verify` and `tenderproof-verify`, offline and against the chain; the valid bundle it starts from
verifies and is complete; the saved copies under tests/assets/bundles/mutations/ keep their
expected outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchoring import rpc as embedded_rpc
from cli import main
from ledger.core.bundle import load_bundle
from ledger.core.errors import FormatError
from verifier.chain import RpcChainReader
from verifier.check import verify_bundle

from . import corpus

ROOT = Path(__file__).resolve().parents[2]
SAVED = ROOT / "tests" / "assets" / "bundles" / "mutations"
#: The same corpus as the first bundle/2 release wrote it (completeness in its full encoding,
#: docs/spec.md §15.1): such bundles keep verifying.
SAVED_FULL = ROOT / "tests" / "assets" / "bundles" / "mutations-completeness1"
#: The mutations that keep the history whole: their fault is the signer, or a payload or field
#: withheld without an order that withholds it (issue 21).
WHOLE = ("signer-", "payload-dropped-", "order-", "field-withheld-")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[corpus.Corpus]:
    c = corpus.build(tmp_path_factory.mktemp("corpus") / "log.db")
    yield c
    c.log.close()


def _reader(c: corpus.Corpus) -> RpcChainReader:
    return RpcChainReader(embedded_rpc.transport(c.dev))


def test_the_valid_bundle_is_complete_verified_and_names_the_officer(built: corpus.Corpus) -> None:
    doc = built.valid
    assert doc["format"] == "tenderproof-bundle/2" and doc["completeness"] is not None
    n = doc["anchors"][-1]["tree_size"]
    assert doc["completeness"]["v"] == 2  # the compact encoding (docs/spec.md §15.1)
    assert load_bundle(doc).completeness.commitment.index == n - 1  # type: ignore[union-attr]
    assert doc["completeness"]["head"]["size"] == len(doc["events"]) == 12
    assert [o["envelope"]["type"] for o in doc["officers"]] == ["officer.registered"]
    for chain in (None, _reader(built)):
        report = verify_bundle(load_bundle(doc), chain=chain)
        assert report.valid, report.failures
        assert report.complete and report.completeness.startswith(f"complete as of tree size {n}, anchored at ")
        assert report.outcome == ("verified" if chain else "not checked")
        assert {e.outcome for e in report.events} == {"verified" if chain else "not checked"}
        assert [e.officer for e in report.events if e.signer] == ["Ana Test (buyer)"] * 6
    early = verify_bundle(load_bundle(built.early))
    assert early.valid and early.complete, early.failures


@pytest.mark.parametrize(
    "name",
    [
        "anchored-event-rewritten-relabelled-pending",
        "every-event-pending",
        "empty-bundle",
        "tail-dropped-1",
        "tail-dropped-2",
        "tail-dropped-all-but-first",
        "head-replaced-by-older-head",
        "commitment-from-another-checkpoint",
        "forged-commitment",
        "compact-commitment-path-truncated",
        "compact-heads-sibling-said-empty",
        "signer-registration-dropped",
        "signer-never-registered",
        "signer-revoked-before-signing",
        "range-passed-off-as-whole",
        "range-total-understated",
        "range-before-rewritten",
        "range-head-rewritten-pending",
        "payload-dropped-unknown-order",
        "payload-dropped-order-of-another-event",
        "order-inclusion-proof-broken",
        "field-withheld-without-order",
    ],
)
def test_each_mutation_is_refused_offline_and_with_the_chain(built: corpus.Corpus, name: str) -> None:
    doc, phrase = corpus.mutations(built)[name]
    for chain in (None, _reader(built)):
        report = verify_bundle(load_bundle(json.loads(json.dumps(doc))), chain=chain)
        assert not report.valid and report.outcome == "invalid", name
        assert any(phrase in str(f) for f in report.failures), [str(f) for f in report.failures]
        # The signer and withholding cases keep a whole history (their fault is elsewhere); the others never.
        assert report.complete is (name.startswith(WHOLE)), name


def test_a_bundle_withheld_by_real_orders_verifies_and_says_so(
    built: corpus.Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21: payloads and a field withheld through the real withholding path (one payload whole
    after its field was) verify, offline and against the chain, each reported under its order; a
    payload dropped with no word of why is not even read as a bundle."""
    doc = built.withheld
    whole, field, rest = (corpus.order_index(doc, r) for r in ("ORD-1/2026", "ORD-2/2026", "ORD-4/2026"))
    # seq 1: its contact point withheld by ORD-2, then the rest of it by ORD-4 (withheld.earlier)
    assert doc["events"][2]["payload"] is None and doc["events"][1]["payload"] is None
    assert doc["events"][1]["withheld"]["earlier"] == [{"order": field, "reference": "ORD-2/2026"}]
    for chain in (None, _reader(built)):
        report = verify_bundle(load_bundle(json.loads(json.dumps(doc))), chain=chain)
        assert report.valid and report.complete, report.failures
        assert report.events[2].withheld == f"withheld under order ORD-1/2026 (log index {whole})"
        assert report.events[1].withheld == f"withheld under order ORD-4/2026 (log index {rest})"
        assert report.events[1].withheld_fields == {corpus.CONTACT: field}
        assert report.events[0].withheld is None and report.events[0].withheld_fields == {}
    path = tmp_path / "withheld.json"
    path.write_text(json.dumps(doc))
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"payload withheld: withheld under order ORD-1/2026 (log index {whole})" in out
    assert f"payload withheld: withheld under order ORD-4/2026 (log index {rest})" in out
    assert f"field {corpus.CONTACT} withheld under the order at log index {field}" in out
    path.write_text(json.dumps(corpus.payload_dropped(doc)))
    for code, text in _run_both(path):
        assert code == 2 and corpus.NOT_READ in text, text


@pytest.mark.parametrize("which", ["ranged", "ranged_tail"])
def test_range_bundles_verify_and_are_never_called_complete(built: corpus.Corpus, which: str) -> None:
    doc = getattr(built, which)
    first, last = doc["range"]["from_seq"], doc["range"]["to_seq"]
    n = doc["anchors"][-1]["tree_size"]
    for chain in (None, _reader(built)):
        report = verify_bundle(load_bundle(json.loads(json.dumps(doc))), chain=chain)
        assert report.valid, report.failures
        assert report.range == (first, last, 12) and not report.complete
        assert report.completeness.startswith(
            f"not the complete history: events {first}..{last} of a history of 12 (a range bundle); "
            f"the log committed 12 events as of tree size {n}"
        )


def test_dropping_every_anchor_does_not_turn_rewritten_events_into_pending_ones(built: corpus.Corpus) -> None:
    doc = corpus.all_pending(built.valid, drop_anchors=True)
    offline = verify_bundle(load_bundle(doc))
    # Offline nothing contradicts it, but it is never called verified, nor complete.
    assert offline.valid and offline.outcome == "pending" and not offline.complete
    checked = verify_bundle(load_bundle(doc), chain=_reader(built))
    assert not checked.valid
    assert any("lies below the contract's latest anchored tree size" in str(f) for f in checked.failures)


def _run_both(path: Path) -> list[tuple[int, str]]:
    ours = subprocess.run(
        [sys.executable, "-c", "import sys; from cli import entrypoint; sys.argv[0] = 'tenderproof'; entrypoint()",
         "verify", str(path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    theirs = subprocess.run(
        [sys.executable, "-m", "verifier.cli", str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    return [(ours.returncode, ours.stdout + ours.stderr), (theirs.returncode, theirs.stdout + theirs.stderr)]


def test_the_cli_and_the_standalone_command_refuse_each_mutation(
    built: corpus.Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, (doc, phrase) in corpus.mutations(built).items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        assert main(["verify", str(path)]) == 1, name
        out = capsys.readouterr().out
        assert "INVALID" in out and phrase in out, (name, out)
    # Two of them through both installed commands, in fresh processes.
    for name in ("tail-dropped-1", "anchored-event-rewritten-relabelled-pending"):
        path = tmp_path / f"{name}.json"
        for code, text in _run_both(path):
            assert code == 1 and "INVALID" in text, (name, text)


@pytest.mark.parametrize("saved", [SAVED, SAVED_FULL], ids=["compact", "full"])
def test_saved_mutations_keep_their_outcome(saved: Path) -> None:
    index: dict[str, Any] = json.loads((saved / "index.json").read_text())
    assert index["format"] == "tenderproof-mutations/1"
    names = set()
    for case in index["cases"]:
        names.add(case["file"])
        doc = json.loads((saved / case["file"]).read_text())
        if doc["completeness"] is not None:  # each directory holds the encoding it is named for
            assert ("v" in doc["completeness"]) is (saved == SAVED), case
        try:
            bundle = load_bundle(doc)
        except FormatError as exc:  # not even a bundle: refused as it is read (exit 2)
            assert case["outcome"] == "invalid" and case["reason"] in str(exc), (case, exc)
            continue
        report = verify_bundle(bundle)
        assert report.outcome == case["outcome"], case
        assert report.complete is case["complete"], case
        if case["outcome"] == "invalid":
            assert any(case["reason"] in str(f) for f in report.failures), (case, report.failures)
    assert {p.name for p in saved.glob("*.json")} - {"index.json"} == names
