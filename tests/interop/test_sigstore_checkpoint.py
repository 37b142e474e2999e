"""Interoperability of the log's signed checkpoints (docs/spec.md §16) with an implementation
Tenderproof did not write: sigstore-js (npm ``@sigstore/verify``, Apache-2.0, the Sigstore
project's verifier of Rekor's checkpoints, which are C2SP signed notes), run offline in Node.

What it checks independently: the note's text / blank line / signature-line split, the
``— <name> <base64>`` line, the 4-byte key hint, and the Ed25519 signature over the text's exact
bytes; the checkpoint body's origin, size and root. What it does not: it takes the key hint from
the trust material it is given (Rekor's log ID) instead of deriving C2SP's key hash, so the hash
itself is held to golang.org/x/mod/sumdb/note's known answers instead (tests/core/test_note.py).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ledger.core.checkpoint import Checkpoint
from ledger.core.note import Signer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("sigstore_checkpoint.cjs")
NAME = "tenders.example.gov/log"
ROOT_HASH = bytes(range(32))


def _sigstore(note: str, signer: Signer, *, key_hash: int | None = None, name: str = NAME) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is needed (the explorer's build needs it too)"
    verifier = signer.verifier
    query = {
        "note": note,
        "public_key": base64.b64encode(verifier.public).decode(),
        "log_id": (verifier.hash if key_hash is None else key_hash).to_bytes(4, "big").hex() + "00" * 28,
        "base_url": f"https://{name}",
    }
    done = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(query), capture_output=True, text=True, cwd=ROOT, timeout=60, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _note(signer: Signer, size: int = 1234) -> str:
    return signer.sign(Checkpoint(NAME, size, ROOT_HASH).to_text())


def test_our_signed_checkpoint_verifies_in_sigstore_js() -> None:
    signer = Signer(NAME, bytes(range(100, 132)))
    got = _sigstore(_note(signer), signer)
    assert got == {"ok": True, "origin": NAME, "size": "1234", "root": ROOT_HASH.hex()}


def test_sigstore_js_refuses_what_we_refuse() -> None:
    signer = Signer(NAME, bytes(range(100, 132)))
    note = _note(signer)
    # The text changed after signing (another size).
    altered = note.replace("\n1234\n", "\n1235\n", 1)
    assert _sigstore(altered, signer) == {"ok": False, "error": "invalid checkpoint signature"}
    # Signed by another key of the same name: its key hash is not the trusted one.
    other = Signer(NAME, bytes(32))
    assert _sigstore(_note(other), signer)["ok"] is False
    # ... and with the other key's hash claimed for our key, the signature does not verify.
    assert _sigstore(_note(other), signer, key_hash=other.verifier.hash)["ok"] is False


def test_cosigned_checkpoint_keeps_verifying_in_sigstore_js() -> None:
    """A note with a witness's line after the log's (docs/spec.md §17): sigstore-js finds the
    log's line among them, as our verifier does."""
    signer = Signer(NAME, bytes(range(100, 132)))
    witness = Signer("witness.example.org/w1", bytes(range(50, 82)))
    note = _note(signer)
    witness_line = witness.sign(Checkpoint(NAME, 1234, ROOT_HASH).to_text()).rpartition("\n\n")[2]
    assert _sigstore(note + witness_line, signer)["ok"] is True


@pytest.mark.parametrize("size", [0, 1, 2**53 - 1])
def test_sizes_read_alike(size: int) -> None:
    signer = Signer(NAME, bytes(range(100, 132)))
    got = _sigstore(_note(signer, size), signer)
    assert got["ok"] is True and got["size"] == str(size)
