"""Tiles' rows (every node a tile's hashes determine) and proofs read through a row cache: the
same nodes as computed from the tiles, whatever the cache holds, while the tree grows."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import merkle, proof, tiles
from ledger.core.errors import InvalidArgumentError, InvariantError
from ledger.store.tile_cache import TileRowCache
from tests.core.test_merkle import TileStore


class CountingStore(TileStore):
    """A tile store that counts the tiles read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, ids: object) -> dict[tiles.TileID, bytes]:
        got = super().read(ids)
        self.reads += len(got)
        return got


def _uncounted(store: TileStore) -> tiles.TileReader:
    return lambda ids: {t: store.tiles[t] for t in ids if t in store.tiles}


def _leaves(start: int, count: int) -> list[bytes]:
    return [merkle.leaf_hash(str(i).encode()) for i in range(start, start + count)]


def test_rows_of_a_full_tile_are_its_subtrees() -> None:
    leaves = _leaves(0, 256)
    rows = tiles.tile_rows(b"".join(leaves))
    assert [len(r) // 32 for r in rows] == [256, 128, 64, 32, 16, 8, 4, 2]
    for depth, row in enumerate(rows):
        width = 1 << depth
        for i in range(len(row) // 32):
            assert row[32 * i : 32 * i + 32] == merkle.perfect_root(leaves[i * width : (i + 1) * width])


def test_rows_of_a_partial_tile_hold_its_complete_nodes_only() -> None:
    rows = tiles.tile_rows(b"".join(_leaves(0, 11)))
    assert [len(r) // 32 for r in rows] == [11, 5, 2, 1]
    assert tiles.node_from_rows(merkle.NodeID(3, 0), rows) == merkle.perfect_root(_leaves(0, 8))
    assert tiles.node_from_rows(merkle.NodeID(3, 1), rows) is None  # leaves 8..15: not complete
    assert tiles.node_from_rows(merkle.NodeID(0, 10), rows) == _leaves(10, 1)[0]
    assert tiles.node_from_rows(merkle.NodeID(0, 11), rows) is None
    with pytest.raises(InvalidArgumentError, match="whole number of 32-byte hashes"):
        tiles.tile_rows(b"x" * 33)


@settings(max_examples=25, deadline=None)
@given(
    growth=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=5),
    max_tiles=st.sampled_from([1, 3, 4096]),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_proofs_through_a_cache_equal_proofs_from_tiles_while_the_tree_grows(
    growth: list[int], max_tiles: int, seed: int
) -> None:
    store, cache, rng = TileStore(), TileRowCache(max_tiles), random.Random(seed)
    for count in growth:
        store.append(_leaves(store.size, count))
        size = store.size
        for _ in range(6):
            old = rng.randrange(1, size + 1)
            for nodes in (proof.inclusion(rng.randrange(size), size), proof.consistency(old, size), proof.root(old)):
                assert tiles.read_nodes(nodes.ids, store.read, cache) == tiles.read_nodes(nodes.ids, store.read)
        assert len(cache) <= max_tiles


def test_a_warm_cache_reads_no_tile_and_a_grown_tile_is_read_again() -> None:
    store, cache = CountingStore(), TileRowCache()
    store.append(_leaves(0, 1000))
    for i in range(0, 1000, 256):
        tiles.read_nodes(proof.inclusion(i, 1000).ids, store.read, cache)
    store.reads = 0
    for i in range(1000):
        nodes = proof.inclusion(i, 1000)
        assert tiles.read_nodes(nodes.ids, store.read, cache) == tiles.read_nodes(nodes.ids, _uncounted(store))
    for m in range(1, 1001, 37):
        tiles.read_nodes(proof.consistency(m, 1000).ids, store.read, cache)
    assert store.reads == 0
    # The partial tile (entries 768..999) grows: a node beyond what is cached is read anew, and
    # the wider rows replace the narrower ones; a narrower version never replaces a wider one.
    narrow = cache.get(tiles.TileID(0, 3))
    assert narrow is not None and len(narrow[0]) == 232 * 32
    store.append(_leaves(1000, 24))
    nodes = proof.inclusion(1023, 1024)
    assert tiles.read_nodes(nodes.ids, store.read, cache) == tiles.read_nodes(nodes.ids, _uncounted(store))
    assert store.reads > 0
    wide = cache.get(tiles.TileID(0, 3))
    assert wide is not None and len(wide[0]) == 256 * 32
    cache.put(tiles.TileID(0, 3), narrow)
    assert cache.get(tiles.TileID(0, 3)) == wide


def test_a_node_missing_from_the_store_is_an_invariant_error_with_or_without_cache() -> None:
    store = TileStore()
    store.append(_leaves(0, 10))
    nodes = proof.inclusion(3, 20)  # a tree of 20 was never stored
    with pytest.raises(InvariantError, match="needs tile"):
        tiles.read_nodes(nodes.ids, store.read, TileRowCache())
    with pytest.raises(InvariantError, match="needs tile"):
        tiles.read_nodes(nodes.ids, store.read)


def test_the_cache_keeps_the_most_recently_used_tiles() -> None:
    cache = TileRowCache(2)
    rows = tiles.tile_rows(b"".join(_leaves(0, 4)))
    for i in range(3):
        cache.put(tiles.TileID(0, i), rows)
    assert cache.get(tiles.TileID(0, 0)) is None and len(cache) == 2
    assert cache.get(tiles.TileID(0, 1)) == rows
    cache.put(tiles.TileID(0, 3), rows)  # evicts (0, 2), the least recently used
    assert cache.get(tiles.TileID(0, 2)) is None and cache.get(tiles.TileID(0, 1)) == rows
    nothing = TileRowCache(0)
    nothing.put(tiles.TileID(0, 0), rows)
    assert len(nothing) == 0
    with pytest.raises(ValueError, match="max_tiles must be >= 0"):
        TileRowCache(-1)
