"""C2SP signed notes (ledger.core.note) against the known answers of golang.org/x/mod/sumdb/note,
the reference implementation (tests/assets/signed-note/, data copied from its tests), and the
log's signed checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.core import note
from ledger.core.checkpoint import Checkpoint
from ledger.core.errors import FormatError, VerificationError

GO: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "assets" / "signed-note" / "golang-x-mod-sumdb-note.json").read_text()
)


def test_signing_gives_the_reference_implementations_bytes() -> None:
    signer = note.Signer.parse(GO["signer_key"])
    assert str(signer.verifier) == GO["verifier_key"]
    assert signer.sign(GO["text"]) == GO["signed"]
    assert signer.skey() == GO["signer_key"]


def test_opening_reference_notes() -> None:
    peter = note.Verifier.parse(GO["verifier_key"])
    enoch = note.Verifier.parse(GO["other_verifier_key"])
    both = GO["signed"] + GO["other_signature_line"]
    assert note.open_note(both, peter) == GO["text"]
    assert note.open_note(both, enoch) == GO["text"]  # Enoch's signature (made by Go) verifies too
    corrupt = GO["signed"].replace("x08go/ZJ", "x08go/ZK")
    with pytest.raises(VerificationError, match="does not verify"):
        note.open_note(corrupt, peter)
    with pytest.raises(VerificationError, match="no signature by the log key"):
        note.open_note(GO["signed"], enoch)
    for bad in (GO["text"], GO["text"] + "\n", GO["signed"] + "Unexpected line.\n", GO["signed"][:-1]):
        with pytest.raises((FormatError, VerificationError)):
            note.open_note(bad, peter)


@pytest.mark.parametrize("vkey", GO["bad_verifier_keys"] + ["PeterNeumann+c74f20a3", "a b+c74f20a3+ARpc"])
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(FormatError):
        note.Verifier.parse(vkey)


def test_a_signed_checkpoint_round_trips_and_another_key_is_refused() -> None:
    signer = note.Signer("tenders.example.gov/log", bytes(range(32)))
    checkpoint = Checkpoint(origin="tenders.example.gov/log", size=41, root=bytes(32))
    signed = signer.sign(checkpoint.to_text())
    assert Checkpoint.from_text(note.open_note(signed, signer.verifier)) == checkpoint
    other = note.Signer("tenders.example.gov/log", bytes(32))
    with pytest.raises(VerificationError):
        note.open_note(signed, other.verifier)
