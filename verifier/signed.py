"""The auditor's check of a bundle's signed checkpoint (docs/spec.md §15 rule 6, §16) against the
log's verifier key they pinned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ledger.core.bundle import BundleAnchor
from ledger.core.checkpoint import Checkpoint
from ledger.core.errors import VerificationError
from ledger.core.note import Verifier, open_note


def read_key(value: str) -> Verifier:
    """A verifier key given as the key itself or as a file holding it (one line)."""
    if "+" not in value and Path(value).is_file():
        value = Path(value).read_text(encoding="utf-8").strip()
    return Verifier.parse(value)


def checkpoint_check(value: str) -> Callable[[str, BundleAnchor], str]:
    """A ``check_checkpoint`` for :func:`verifier.check.verify_bundle` with the key ``value``."""
    key = read_key(value)

    def check(note: str, anchor: BundleAnchor) -> str:
        text = open_note(note, key)
        checkpoint = Checkpoint.from_text(text)
        if (checkpoint.size, checkpoint.root) != (anchor.tree_size, anchor.root_hash):
            raise VerificationError(
                f"the signed checkpoint is of tree size {checkpoint.size} root {checkpoint.root.hex()}, the newest"
                f" anchor of tree size {anchor.tree_size} root {anchor.root_hash.hex()}"
            )
        return f"signed by the log key {key.name}+{key.hash:08x}, and matches the newest anchor (tree size {anchor.tree_size})"

    return check
