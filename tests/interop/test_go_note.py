"""Signed notes both ways with golang.org/x/mod/sumdb/note, the reference implementation of
C2SP signed-note (the Go team's; the module that checks every Go download against sum.golang.org),
which Tenderproof did not write.

Vetting: Debian's ``golang-golang-x-mod-dev`` (0.7.0 on bookworm: the Go project's sources of golang.org/x/mod,
BSD-3-Clause, maintained in Debian by the Debian Go Packaging Team), built offline with Debian's
``golang-go`` in GOPATH mode: nothing is downloaded at run time. .ci/run installs both packages
when the machine lacks them. The helper (tests/interop/gonote/main.go) only moves JSON in and
out: every key, signature and verification in these tests is the library's.

Directions checked: keys Go generates are read by ours and ours by Go; notes Go signs (one key or
several) open with our verifier, and ours (the log's signed checkpoints, cosigned by a witness)
open in Go; each refuses what the other refuses (an altered text, another key).

Not checked here: the witness's cosignature/v1 line itself (type 0x04). Go's note package, like
every C2SP implementation these registries carry, ignores a line of a key it is not given and has
no cosignature/v1 verifier (that lives in github.com/transparency-dev/formats, which Debian does
not package); the cosignature bytes are held to the C2SP text in tests/witness/test_cosigning.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.core import note
from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import Cosigner
from ledger.core.errors import VerificationError

HERE = Path(__file__).resolve().parent
#: Where Debian's golang-golang-x-mod-dev puts golang.org/x/mod's sources.
GOCODE = Path("/usr/share/gocode")
NAME = "tenders.example.gov/log"
ROOT_HASH = bytes(range(32))


@pytest.fixture(scope="module")
def gonote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    go = shutil.which("go")
    assert go is not None, "Go is needed: apt-get install golang-go golang-golang-x-mod-dev (.ci/run does)"
    assert (GOCODE / "src/golang.org/x/mod/sumdb/note/note.go").is_file(), (
        "golang.org/x/mod's sources are needed: apt-get install golang-golang-x-mod-dev (.ci/run does)"
    )
    work = tmp_path_factory.mktemp("gonote")
    package = work / "src" / "gonote"
    package.mkdir(parents=True)
    shutil.copy(HERE / "gonote" / "main.go", package / "main.go")
    binary = work / "gonote"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{work}{os.pathsep}{GOCODE}",
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
    }
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=package, env=env, check=True, timeout=300)
    yield binary


def _go(binary: Path, **request: Any) -> dict[str, Any]:
    done = subprocess.run(
        [str(binary)], input=json.dumps(request), capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _checkpoint_text(size: int = 1234) -> str:
    return Checkpoint(NAME, size, ROOT_HASH).to_text()


def test_keys_go_generates_are_ours_and_ours_are_gos(gonote: Path) -> None:
    made = _go(gonote, op="generate", name=NAME)
    signer = note.Signer.parse(made["skey"])
    assert str(signer.verifier) == made["vkey"]
    assert signer.skey() == made["skey"]
    assert note.Verifier.parse(made["vkey"]) == signer.verifier
    # Our key's text signs in Go, and Go's signature is the one we make (Ed25519 is deterministic).
    ours = note.Signer(NAME, bytes(range(100, 132)))
    text = _checkpoint_text()
    assert _go(gonote, op="sign", skeys=[ours.skey()], text=text)["note"] == ours.sign(text)


def test_a_checkpoint_go_signs_opens_with_our_verifier(gonote: Path) -> None:
    made = _go(gonote, op="generate", name=NAME)
    text = _checkpoint_text(41)
    signed = _go(gonote, op="sign", skeys=[made["skey"]], text=text)["note"]
    verifier = note.Verifier.parse(made["vkey"])
    assert note.open_note(signed, verifier) == text
    assert Checkpoint.from_text(note.open_note(signed, verifier)) == Checkpoint(NAME, 41, ROOT_HASH)
    # Altered after Go signed it: refused by ours.
    with pytest.raises(VerificationError, match="does not verify"):
        note.open_note(signed.replace("\n41\n", "\n42\n", 1), verifier)
    # Signed by Go with another key of the same name: refused by ours.
    other = _go(gonote, op="generate", name=NAME)
    with pytest.raises(VerificationError, match="no signature by the log key"):
        note.open_note(_go(gonote, op="sign", skeys=[other["skey"]], text=text)["note"], verifier)


def test_a_note_go_signs_with_several_keys_opens_with_each(gonote: Path) -> None:
    log = _go(gonote, op="generate", name=NAME)
    mirror = _go(gonote, op="generate", name="mirror.example.org/m1")
    text = _checkpoint_text(7)
    signed = _go(gonote, op="sign", skeys=[log["skey"], mirror["skey"]], text=text)["note"]
    assert signed.count("\n\u2014 ") == 2
    assert note.open_note(signed, note.Verifier.parse(log["vkey"])) == text
    assert note.open_note(signed, note.Verifier.parse(mirror["vkey"])) == text


def test_our_signed_checkpoint_opens_in_go(gonote: Path) -> None:
    signer = note.Signer(NAME, bytes(range(100, 132)))
    signed = signer.sign(_checkpoint_text())
    got = _go(gonote, op="open", vkeys=[str(signer.verifier)], note=signed)
    assert got == {"ok": True, "text": _checkpoint_text(), "verified": [NAME], "unverified": []}
    altered = _go(gonote, op="open", vkeys=[str(signer.verifier)], note=signed.replace("\n1234\n", "\n1235\n", 1))
    assert altered == {"ok": False, "error": f"invalid signature for key {NAME}+{signer.verifier.hash:08x}"}
    other = note.Signer(NAME, bytes(32))
    refused = _go(gonote, op="open", vkeys=[str(other.verifier)], note=signed)
    assert refused == {"ok": False, "error": "note has no verifiable signatures"}


def test_our_cosigned_checkpoint_opens_in_go(gonote: Path) -> None:
    """The log's signature line followed by a witness's cosignature/v1 line (docs/spec.md §17):
    Go opens it with the log's key and lists the witness's line as one it has no key for."""
    signer = note.Signer(NAME, bytes(range(100, 132)))
    witness = Cosigner("witness.example.org/w1", bytes(range(50, 82)))
    text = _checkpoint_text()
    cosigned = signer.sign(text) + witness.cosign(text, 1_700_000_000).line()
    got = _go(gonote, op="open", vkeys=[str(signer.verifier)], note=cosigned)
    assert got == {"ok": True, "text": text, "verified": [NAME], "unverified": ["witness.example.org/w1"]}
    assert note.open_note(cosigned, signer.verifier) == text
