"""The auditor's check of a bundle's signed checkpoint (docs/spec.md §15.2 rule 7, §16) against the
log's verifier key they pinned."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ledger.core.bundle import BundleAnchor
from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import CosignerKey, check_quorum, split_note
from ledger.core.errors import InvalidArgumentError, VerificationError
from ledger.core.note import Verifier, open_note


def _key_text(value: str) -> str:
    """A key given as the key itself or as a file holding it (one line): the key's text. A key
    always holds a "+", so a value without one that names a file is read from it."""
    if "+" not in value and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8").strip()
    return value


def read_key(value: str) -> Verifier:
    """A verifier key given as the key itself or as a file holding it (one line)."""
    return Verifier.parse(_key_text(value))


def checkpoint_check(
    value: str | None, witnesses: Sequence[str] = (), quorum: int | None = None
) -> Callable[[str, BundleAnchor], str]:
    """A ``check_checkpoint`` for :func:`verifier.check.verify_bundle`: with the log key
    ``value``, the note must carry its valid signature; with ``witnesses`` (cosigner vkeys, or
    files holding one), at least ``quorum`` of them (default: all) must have cosigned it
    (C2SP tlog-cosignature/v1, docs/spec.md §17). Either way its size and root must be the
    newest anchor's."""
    key = None if value is None else read_key(value)
    cosigners = [read_witness(w) for w in witnesses]
    needed = len(cosigners) if quorum is None else quorum
    if not 0 <= needed <= len(cosigners):
        raise InvalidArgumentError(
            "--witness-quorum", f"must be between 0 and the {len(cosigners)} witnesses given, got {needed}"
        )

    def check(note: str, anchor: BundleAnchor) -> str:
        text = open_note(note, key) if key is not None else split_note(note)[0]
        checkpoint = Checkpoint.from_text(text)
        if (checkpoint.size, checkpoint.root) != (anchor.tree_size, anchor.root_hash):
            raise VerificationError(
                f"the signed checkpoint is of tree size {checkpoint.size} root {checkpoint.root.hex()}, the newest"
                f" anchor of tree size {anchor.tree_size} root {anchor.root_hash.hex()}"
            )
        said = (
            f"signed by the log key {key.name}+{key.hash:08x}"
            if key is not None
            else "its log signature was NOT checked (no --log-key)"
        )
        if cosigners:
            found = check_quorum(note, cosigners, needed)
            names = ", ".join(k.name for k in cosigners if str(k) in found)
            said += f"; cosigned by {len(found)} of {len(cosigners)} witnesses ({names}; policy: {needed})"
        return f"{said}, and matches the newest anchor (tree size {anchor.tree_size})"

    return check


def read_witness(value: str) -> CosignerKey:
    """A witness's cosigner key given as the key itself or as a file holding it (one line)."""
    return CosignerKey.parse(_key_text(value))
