"""Verifying RFC 9162 §2.1.3.2 inclusion and §2.1.4.2 consistency proofs.

The algorithms are the RFC's, step for step, so that any conforming prover's
proofs verify here and ours verify anywhere. Every failure raises a
:class:`VerificationError` subclass whose message names what failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InvalidArgumentError, ProofShapeError, RootMismatchError
from .merkle import HASH_SIZE, node_hash


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise InvalidArgumentError(name, f"a hash is {HASH_SIZE} bytes, got {len(value)}")


def _check_path(path: Sequence[bytes]) -> None:
    for i, element in enumerate(path):
        if len(element) != HASH_SIZE:
            raise ProofShapeError(f"proof element {i} has wrong size: expected {HASH_SIZE}, got {len(element)}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """The root that ``path`` leads to from ``leaf`` at ``index`` in a tree of ``size``.

    Raises :class:`InvalidArgumentError` for an index outside the tree and
    :class:`ProofShapeError` for a path of the wrong length.
    """
    if not 0 <= index < size:
        raise InvalidArgumentError("index", f"needs 0 <= index < size, got index {index}, size {size}")
    _check_hash("leaf_hash", leaf)
    _check_path(path)
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofShapeError(
                f"inclusion proof is too long for index {index} in size {size}: got {len(path)} elements"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofShapeError(
            f"inclusion proof is too short for index {index} in size {size}: got {len(path)} elements"
        )
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` leaves with ``root``.

    Raises :class:`RootMismatchError` or :class:`ProofShapeError` when it is not.
    """
    _check_hash("root", root)
    calculated = root_from_inclusion_proof(index, size, leaf, path)
    if calculated != root:
        raise RootMismatchError(
            f"inclusion proof for index {index} in size {size}", expected=root, calculated=calculated
        )


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, path: Sequence[bytes]) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    Follows RFC 9162 §2.1.4.2; like transparency-dev/merkle it also accepts the
    degenerate cases the RFC leaves out: ``size1 == size2`` with equal roots and
    an empty proof, and ``size1 == 0`` with an empty proof.
    Raises :class:`InvalidArgumentError` if ``size2 < size1``.
    """
    if not 0 <= size1 <= size2:
        raise InvalidArgumentError("size1", f"needs 0 <= size1 <= size2, got size1 {size1}, size2 {size2}")
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    _check_path(path)
    if size1 == size2:
        if path:
            raise ProofShapeError(f"consistency proof between equal sizes must be empty, got {len(path)} elements")
        if root1 != root2:
            raise RootMismatchError(f"consistency between equal sizes {size1}", expected=root1, calculated=root2)
        return
    if size1 == 0:
        if path:
            raise ProofShapeError(f"consistency proof from size 0 must be empty, got {len(path)} elements")
        return
    # RFC 9162 §2.1.4.2, steps 1 to 7.
    if not path:
        raise ProofShapeError(f"consistency proof from {size1} to {size2} is empty")
    steps = list(path)
    if size1 & (size1 - 1) == 0:
        steps.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = steps[0]
    for c in steps[1:]:
        if sn == 0:
            raise ProofShapeError(f"consistency proof from {size1} to {size2} is too long: got {len(path)} elements")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofShapeError(f"consistency proof from {size1} to {size2} is too short: got {len(path)} elements")
    if fr != root1:
        raise RootMismatchError(f"consistency proof from {size1} to {size2}: old root", expected=root1, calculated=fr)
    if sr != root2:
        raise RootMismatchError(f"consistency proof from {size1} to {size2}: new root", expected=root2, calculated=sr)
