"""ledger.core.merkle and ledger.core.tiles against the naive RFC 9162 reference."""

from __future__ import annotations

import hashlib
import itertools
import random

import pytest

from ledger.core import merkle, tiles
from ledger.core.errors import InvalidArgumentError, InvariantError
from ledger.core.merkle import CompactRange, NodeID

from . import reference as ref

# The RFC 6962 test tree used across the CT ecosystem (transparency-dev/merkle testonly).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


class TileStore:
    """An in-memory tile store that, like the database triggers, only lets tiles grow."""

    def __init__(self) -> None:
        self.tiles: dict[tiles.TileID, bytes] = {}
        self.size = 0

    def read(self, ids: object) -> dict[tiles.TileID, bytes]:
        return {t: self.tiles[t] for t in ids if t in self.tiles}  # type: ignore[attr-defined]

    def append(self, leaf_hashes: list[bytes]) -> bytes:
        result = tiles.integrate(self.size, leaf_hashes, self.read)
        for tile, data in result.tiles.items():
            old = self.tiles.get(tile, b"")
            assert data.startswith(old) and len(data) > len(old), f"tile {tile} rewritten, not extended"
            self.tiles[tile] = data
        self.size = result.size
        return result.root


def test_hash_primitives_match_rfc_definitions() -> None:
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"\x11" * 32, b"\x22" * 32
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize("n", range(1, 9))
def test_ct_test_tree_roots(n: int) -> None:
    assert ref.mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    assert merkle.root_from_leaf_hashes([merkle.leaf_hash(d) for d in CT_LEAVES[:n]]).hex() == CT_ROOTS[n - 1]


@pytest.mark.parametrize(("n", "k"), [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1025, 1024)])
def test_split_point(n: int, k: int) -> None:
    assert merkle.split_point(n) == k


def test_split_point_needs_two_leaves() -> None:
    with pytest.raises(InvalidArgumentError, match="at least 2 leaves, got 1"):
        merkle.split_point(1)


def test_range_nodes_decomposes_into_aligned_perfect_subtrees() -> None:
    assert merkle.range_nodes(0, 6) == [NodeID(2, 0), NodeID(1, 2)]
    assert merkle.range_nodes(4, 7) == [NodeID(1, 2), NodeID(0, 6)]
    assert merkle.range_nodes(0, 8) == [NodeID(3, 0)]
    assert merkle.range_nodes(5, 5) == []
    for begin, end in [(0, 1000), (512, 777), (768, 1000)]:
        nodes = merkle.range_nodes(begin, end)
        assert nodes[0].begin == begin and nodes[-1].end == end
        assert all(a.end == b.begin for a, b in itertools.pairwise(nodes))


def test_range_nodes_rejects_reversed_range() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        merkle.range_nodes(5, 4)
    assert err.value.field == "range"


def test_compact_range_reports_every_completed_node() -> None:
    compact = CompactRange.empty()
    created = [compact.append(merkle.leaf_hash(d)) for d in CT_LEAVES[:4]]
    assert [[n for n, _ in c] for c in created] == [
        [NodeID(0, 0)],
        [NodeID(0, 1), NodeID(1, 0)],
        [NodeID(0, 2)],
        [NodeID(0, 3), NodeID(1, 1), NodeID(2, 0)],
    ]
    assert created[3][-1][1].hex() == CT_ROOTS[3]
    assert compact.root().hex() == CT_ROOTS[3]


@pytest.mark.parametrize("every", [1, 2, 3, 8])
def test_compact_range_extend_is_append_one_by_one(every: int) -> None:
    """extend() gives the border and root of appending one by one, and of the nodes append()
    reports, exactly those at a positive multiple of ``every`` levels, in order; from any start."""
    rng = random.Random(every)
    leaves = [rng.randbytes(32) for _ in range(700)]
    for start in (0, 1, 255, 256, 300):
        one, bulk = CompactRange.empty(), CompactRange.empty()
        for leaf in leaves[:start]:
            one.append(leaf)
            bulk.append(leaf)
        expected = [(n, h) for leaf in leaves[start:] for n, h in one.append(leaf) if n.level and n.level % every == 0]
        got = bulk.extend(leaves[start:], every=every)
        assert got == expected
        assert expected  # 400+ leaves complete nodes at every level asked here
        assert (bulk.size, bulk.hashes, bulk.root()) == (one.size, one.hashes, one.root())
    assert CompactRange.empty().extend([merkle.leaf_hash(d) for d in CT_LEAVES], every=1)[-1][1].hex() == CT_ROOTS[7]


def test_compact_range_extend_needs_a_level_step() -> None:
    with pytest.raises(InvalidArgumentError, match="must be at least 1, got 0"):
        CompactRange.empty().extend([], every=0)


def test_compact_range_checks_its_border() -> None:
    with pytest.raises(InvalidArgumentError, match="a tree of size 3 has 2 border nodes, got 1"):
        CompactRange(size=3, hashes=[b"\x00" * 32])


def test_perfect_root_needs_power_of_two() -> None:
    with pytest.raises(InvalidArgumentError, match="needs 2\\*\\*k hashes, got 3"):
        merkle.perfect_root([b"\x00" * 32] * 3)


def test_integrate_matches_reference_across_tile_boundaries() -> None:
    data = ref.leaves(1100)
    rng = random.Random(7)
    store = TileStore()
    while store.size < len(data):
        step = rng.choice([1, 1, 2, 3, 17, 255, 256, 300])
        batch = data[store.size : store.size + step]
        root = store.append([merkle.leaf_hash(d) for d in batch])
        assert root == ref.mth(data[: store.size]), f"root at size {store.size}"


def test_tile_layout_after_integration() -> None:
    store = TileStore()
    store.append([merkle.leaf_hash(d) for d in ref.leaves(300)])
    assert sorted(store.tiles) == [(0, 0), (0, 1), (1, 0)]
    assert len(store.tiles[(0, 0)]) == 256 * 32
    assert len(store.tiles[(0, 1)]) == 44 * 32
    assert len(store.tiles[(1, 0)]) == 32  # the level-8 node over leaves 0..255
    assert store.tiles[(1, 0)] == ref.mth(ref.leaves(256))
    assert store.tiles[(0, 1)][:32] == ref.leaf(b"256")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, [(0, 0)]),
        (255, [(0, 0)]),
        (256, [(0, 1), (1, 0)]),
        (300, [(0, 1), (1, 0)]),
        (65536, [(0, 256), (1, 1), (2, 0)]),
    ],
)
def test_edge_tiles(size: int, expected: list[tuple[int, int]]) -> None:
    assert tiles.edge_tiles(size) == expected


def test_tile_width() -> None:
    assert tiles.tile_width(tiles.TileID(0, 0), 300) == 256
    assert tiles.tile_width(tiles.TileID(0, 1), 300) == 44
    assert tiles.tile_width(tiles.TileID(0, 2), 300) == 0
    assert tiles.tile_width(tiles.TileID(1, 0), 300) == 1
    assert tiles.tile_width(tiles.TileID(1, 0), 255) == 0


def test_integrate_refuses_tiles_out_of_step_with_size() -> None:
    store = TileStore()
    store.append([merkle.leaf_hash(d) for d in ref.leaves(10)])
    with pytest.raises(InvariantError, match=r"tile \(0, 0\) should hold 11 hashes at size 11, holds 10"):
        tiles.integrate(11, [merkle.leaf_hash(b"x")], store.read)
    with pytest.raises(InvariantError, match=r"tile \(0, 0\) should hold 9 hashes at size 9, holds 10"):
        tiles.integrate(9, [merkle.leaf_hash(b"x")], store.read)


def test_integrate_refuses_bad_leaf_hash() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        tiles.integrate(0, [b"\x00" * 31], lambda ids: {})
    assert err.value.field == "leaves[0]"


def test_node_from_missing_tile_is_an_invariant_error() -> None:
    with pytest.raises(InvariantError, match=r"node \(3, 0\) needs tile \(0, 0\) with at least 8 hashes, stored 0"):
        tiles.node_from_tiles(NodeID(3, 0), {})
