"""ledger.core.verify: RFC 9162 verification, and the messages of its failures."""

from __future__ import annotations

import pytest

from ledger.core import verify
from ledger.core.errors import InvalidArgumentError, ProofShapeError, RootMismatchError

from . import reference as ref

DATA = ref.leaves(20)
ROOTS = {n: ref.mth(DATA[:n]) for n in range(1, 21)}


def test_inclusion_valid_for_every_leaf() -> None:
    for n in range(1, 21):
        for m in range(n):
            verify.verify_inclusion(m, n, ref.leaf(DATA[m]), ref.path(m, DATA[:n]), ROOTS[n])


def test_inclusion_root_mismatch_names_index_size_and_both_roots() -> None:
    path = ref.path(3, DATA[:7])
    with pytest.raises(RootMismatchError) as err:
        verify.verify_inclusion(3, 7, ref.leaf(b"not 3"), path, ROOTS[7])
    assert err.value.expected == ROOTS[7]
    assert str(err.value).startswith(f"inclusion proof for index 3 in size 7: root mismatch: expected {ROOTS[7].hex()}")


def test_inclusion_shape_errors() -> None:
    path = ref.path(3, DATA[:7])
    with pytest.raises(ProofShapeError, match="too short for index 3 in size 7: got 2 elements"):
        verify.verify_inclusion(3, 7, ref.leaf(DATA[3]), path[:-1], ROOTS[7])
    with pytest.raises(ProofShapeError, match="too long for index 3 in size 7: got 4 elements"):
        verify.verify_inclusion(3, 7, ref.leaf(DATA[3]), [*path, b"\x00" * 32], ROOTS[7])
    with pytest.raises(ProofShapeError, match="proof element 1 has wrong size: expected 32, got 31"):
        verify.verify_inclusion(3, 7, ref.leaf(DATA[3]), [path[0], path[1][:31], path[2]], ROOTS[7])


@pytest.mark.parametrize(("index", "size"), [(7, 7), (-1, 7), (0, 0)])
def test_inclusion_index_outside_tree(index: int, size: int) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        verify.verify_inclusion(index, size, b"\x00" * 32, [], b"\x00" * 32)
    assert err.value.field == "index"


def test_inclusion_checks_hash_sizes() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        verify.verify_inclusion(0, 1, b"\x00" * 31, [], ROOTS[1])
    assert err.value.field == "leaf_hash"
    with pytest.raises(InvalidArgumentError) as err:
        verify.verify_inclusion(0, 1, ref.leaf(DATA[0]), [], b"")
    assert err.value.field == "root"


def test_consistency_valid_for_every_pair() -> None:
    for n in range(1, 21):
        for m in range(1, n + 1):
            verify.verify_consistency(m, n, ROOTS[m], ROOTS[n], ref.proof(m, DATA[:n]))


def test_consistency_degenerate_cases() -> None:
    verify.verify_consistency(0, 5, b"\x00" * 32, ROOTS[5], [])
    verify.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    with pytest.raises(ProofShapeError, match="from size 0 must be empty"):
        verify.verify_consistency(0, 5, b"\x00" * 32, ROOTS[5], [ROOTS[1]])
    with pytest.raises(ProofShapeError, match="between equal sizes must be empty"):
        verify.verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[1]])
    with pytest.raises(RootMismatchError, match="consistency between equal sizes 5"):
        verify.verify_consistency(5, 5, ROOTS[5], ROOTS[4], [])
    with pytest.raises(ProofShapeError, match="from 3 to 7 is empty"):
        verify.verify_consistency(3, 7, ROOTS[3], ROOTS[7], [])
    with pytest.raises(InvalidArgumentError, match="got size1 7, size2 3"):
        verify.verify_consistency(7, 3, ROOTS[7], ROOTS[3], [])


def test_consistency_names_which_root_failed() -> None:
    path = ref.proof(3, DATA[:7])
    with pytest.raises(RootMismatchError, match="from 3 to 7: old root"):
        verify.verify_consistency(3, 7, ROOTS[4], ROOTS[7], path)
    with pytest.raises(RootMismatchError, match="from 3 to 7: new root"):
        verify.verify_consistency(3, 7, ROOTS[3], ROOTS[6], path)


def test_consistency_every_single_bit_flip_is_rejected() -> None:
    for m, n in [(1, 2), (3, 7), (4, 8), (6, 13), (8, 20), (13, 19)]:
        path = ref.proof(m, DATA[:n])
        for i, element in enumerate(path):
            for bit in range(256):
                bad = bytearray(element)
                bad[bit // 8] ^= 1 << (bit % 8)
                with pytest.raises(RootMismatchError):
                    verify.verify_consistency(m, n, ROOTS[m], ROOTS[n], [*path[:i], bytes(bad), *path[i + 1 :]])


def test_inclusion_every_single_bit_flip_is_rejected() -> None:
    for m, n in [(0, 2), (3, 7), (6, 7), (12, 20), (19, 20)]:
        path = ref.path(m, DATA[:n])
        for i, element in enumerate(path):
            for bit in range(256):
                bad = bytearray(element)
                bad[bit // 8] ^= 1 << (bit % 8)
                with pytest.raises(RootMismatchError):
                    verify.verify_inclusion(m, n, ref.leaf(DATA[m]), [*path[:i], bytes(bad), *path[i + 1 :]], ROOTS[n])
