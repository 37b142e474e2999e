"""Proof generation through tiles equals the RFC 9162 PATH and PROOF definitions."""

from __future__ import annotations

import random

import pytest

from ledger.core import merkle, proof, tiles
from ledger.core.errors import InvalidArgumentError, InvariantError

from . import reference as ref
from .test_merkle import TileStore

N = 1100
DATA = ref.leaves(N)


@pytest.fixture(scope="module")
def store() -> TileStore:
    s = TileStore()
    s.append([merkle.leaf_hash(d) for d in DATA])
    return s


def _inclusion(store: TileStore, m: int, n: int) -> list[bytes]:
    nodes = proof.inclusion(m, n)
    return nodes.assemble(tiles.read_nodes(nodes.ids, store.read))


def _consistency(store: TileStore, m: int, n: int) -> list[bytes]:
    nodes = proof.consistency(m, n)
    return nodes.assemble(tiles.read_nodes(nodes.ids, store.read))


def test_every_inclusion_proof_up_to_64(store: TileStore) -> None:
    for n in range(1, 65):
        for m in range(n):
            assert _inclusion(store, m, n) == ref.path(m, DATA[:n]), (m, n)


def test_every_consistency_proof_up_to_64(store: TileStore) -> None:
    for n in range(1, 65):
        for m in range(1, n + 1):
            assert _consistency(store, m, n) == ref.proof(m, DATA[:n]), (m, n)


def test_sampled_proofs_across_tile_boundaries(store: TileStore) -> None:
    rng = random.Random(42)
    for n in [255, 256, 257, 511, 512, 513, 768, 1024, 1025, N]:
        prefix = DATA[:n]
        for m in {0, n - 1, *rng.sample(range(n), 5)}:
            assert _inclusion(store, m, n) == ref.path(m, prefix), (m, n)
        for m in {1, n, n - 1, *rng.sample(range(1, n + 1), 5)}:
            assert _consistency(store, m, n) == ref.proof(m, prefix), (m, n)


def test_root_nodes(store: TileStore) -> None:
    for n in [1, 2, 3, 300, 1000]:
        nodes = proof.root(n)
        assert nodes.assemble(tiles.read_nodes(nodes.ids, store.read)) == [ref.mth(DATA[:n])]


def test_degenerate_consistency_proofs_are_empty() -> None:
    assert proof.consistency(0, 10).elements == ()
    assert proof.consistency(10, 10).elements == ()
    assert proof.inclusion(0, 1).elements == ()


@pytest.mark.parametrize(("m", "n"), [(-1, 5), (5, 5), (6, 5), (0, 0)])
def test_inclusion_index_out_of_range(m: int, n: int) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        proof.inclusion(m, n)
    assert err.value.field == "index"
    assert f"got index {m}, size {n}" in str(err.value)


def test_consistency_sizes_out_of_order() -> None:
    with pytest.raises(InvalidArgumentError, match="got size1 6, size2 5"):
        proof.consistency(6, 5)


def test_assemble_reports_a_missing_node() -> None:
    nodes = proof.inclusion(0, 4)
    with pytest.raises(InvariantError, match="was not read"):
        nodes.assemble({})
