"""Hypothesis properties of the tree, proofs and verification against the naive reference."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import merkle, proof, tiles, verify
from ledger.core.errors import VerificationError

from . import reference as ref
from .test_merkle import TileStore

leaf_lists = st.lists(st.binary(max_size=24), min_size=1, max_size=600)


def _built(data: list[bytes], cuts: list[int]) -> TileStore:
    store = TileStore()
    hashes = [merkle.leaf_hash(d) for d in data]
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        if cut > store.size:
            store.append(hashes[store.size : cut])
    return store


@settings(max_examples=60, deadline=None)
@given(data=leaf_lists, cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_integration_in_any_batches_equals_reference(data: list[bytes], cuts: list[int]) -> None:
    store = _built(data, cuts)
    assert store.size == len(data)
    root = tiles.integrate(store.size, [], store.read).root
    assert root == ref.mth(data)


@settings(max_examples=80, deadline=None)
@given(data=leaf_lists, pick=st.tuples(st.integers(min_value=0), st.integers(min_value=0)))
def test_inclusion_proofs_equal_reference_and_verify(data: list[bytes], pick: tuple[int, int]) -> None:
    store = _built(data, [])
    n = pick[0] % len(data) + 1
    m = pick[1] % n
    nodes = proof.inclusion(m, n)
    path = nodes.assemble(tiles.read_nodes(nodes.ids, store.read))
    assert path == ref.path(m, data[:n])
    verify.verify_inclusion(m, n, ref.leaf(data[m]), path, ref.mth(data[:n]))


@settings(max_examples=80, deadline=None)
@given(data=leaf_lists, pick=st.tuples(st.integers(min_value=0), st.integers(min_value=0)))
def test_consistency_proofs_equal_reference_and_verify(data: list[bytes], pick: tuple[int, int]) -> None:
    store = _built(data, [])
    n = pick[0] % len(data) + 1
    m = pick[1] % n + 1
    nodes = proof.consistency(m, n)
    path = nodes.assemble(tiles.read_nodes(nodes.ids, store.read))
    assert path == ref.proof(m, data[:n])
    verify.verify_consistency(m, n, ref.mth(data[:m]), ref.mth(data[:n]), path)


corruptions = st.sampled_from(["flip", "drop", "add"])


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.binary(max_size=8), min_size=2, max_size=300),
    pick=st.tuples(st.integers(min_value=0), st.integers(min_value=0)),
    how=corruptions,
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=255),
)
def test_corrupted_proofs_never_verify(
    data: list[bytes], pick: tuple[int, int], how: str, where: int, bit: int
) -> None:
    n = pick[0] % len(data) + 1
    m = pick[1] % n
    first = m + 1 if m + 1 < n else n - 1
    cases = [
        (ref.path(m, data[:n]), lambda p: verify.verify_inclusion(m, n, ref.leaf(data[m]), p, ref.mth(data[:n]))),
    ]
    if first >= 1 and first < n:
        cases.append(
            (
                ref.proof(first, data[:n]),
                lambda p: verify.verify_consistency(first, n, ref.mth(data[:first]), ref.mth(data[:n]), p),
            )
        )
    for path, check in cases:
        if how == "flip":
            if not path:
                continue
            i = where % len(path)
            bad = bytearray(path[i])
            bad[bit // 8] ^= 1 << (bit % 8)
            corrupted = [*path[:i], bytes(bad), *path[i + 1 :]]
        elif how == "drop":
            if not path:
                continue
            i = where % len(path)
            corrupted = path[:i] + path[i + 1 :]
        else:
            i = where % (len(path) + 1)
            corrupted = [*path[:i], merkle.leaf_hash(bytes([bit])), *path[i:]]
        try:
            check(corrupted)
        except VerificationError:
            continue
        raise AssertionError(f"corrupted proof ({how} at {i}) verified for m={m}, n={n}")
