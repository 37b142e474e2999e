"""ledger.core.strata (the heads tree kept in strata of 8 levels) against the naive reference and
against ledger.core.heads' node-by-node tree: the same roots, the same proofs, at every version."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import heads, strata
from ledger.core.errors import InvalidArgumentError

from . import heads_reference as ref


class Versions:
    """Every version's strata in memory, copy-on-write as a store keeps them."""

    def __init__(self) -> None:
        self.rows: dict[bytes, list[tuple[int, strata.Items]]] = {}
        self.roots: list[bytes] = []
        self.reads: list[list[bytes]] = []

    def reader(self, version: int) -> strata.Reader:
        def read(prefixes: Sequence[bytes]) -> Mapping[bytes, strata.Items]:
            self.reads.append(list(prefixes))
            out = {}
            for p in prefixes:
                found = [items for v, items in self.rows.get(p, []) if v <= version]
                if found:
                    out[p] = dict(found[-1])
            return out

        return read

    def apply(self, changes: list[heads.Leaf]) -> strata.Update:
        version = len(self.roots)
        result = strata.update(changes, self.reader(version - 1))
        for p, items in result.writes.items():
            self.rows.setdefault(p, []).append((version, items))
        self.roots.append(result.root)
        return result

    def prove(self, version: int, k: bytes) -> heads.Proof:
        return strata.Nodes(self.reader(version)).prove(k)


def _near(base: bytes, depth: int) -> bytes:
    """A key sharing ``base``'s first ``depth`` bits and differing at bit ``depth``."""
    out = bytearray(base)
    out[depth // 8] ^= 1 << (7 - depth % 8)
    return bytes(out)


#: Keys that share long runs of leading bits with one another (deep strata, chains of strata
#: holding one stratum below), and random ones.
_BASE = hashlib.sha256(b"base").digest()
_NEAR = [_near(_BASE, d) for d in (0, 1, 7, 8, 9, 15, 16, 17, 23, 100, 200, 247, 248, 255)] + [_BASE]
_keys = st.one_of(st.sampled_from(_NEAR), st.binary(min_size=32, max_size=32))
_batches = st.lists(
    st.dictionaries(_keys, st.integers(min_value=1, max_value=(1 << 64) - 1), max_size=30), min_size=1, max_size=6
)


@settings(max_examples=80, deadline=None)
@given(_batches, st.data())
def test_strata_give_the_roots_and_proofs_of_the_node_tree(
    batches: list[dict[bytes, int]], data: st.DataObject
) -> None:
    nodes = heads.MemoryTree()
    kept = Versions()
    state: dict[bytes, tuple[int, bytes]] = {}
    for n, batch in enumerate(batches):
        changes = [heads.Leaf(k, size, hashlib.sha256(k + bytes([n])).digest()) for k, size in batch.items()]
        state.update({leaf.key: (leaf.size, leaf.head) for leaf in changes})
        got = kept.apply(changes)
        assert got.root == nodes.apply(changes).root == ref.root(state)
        # Every written stratum is one that holds two keys or more (or the root stratum).
        for prefix, items in got.writes.items():
            assert prefix == b"" or len(items) >= 2 or any(type(i) is bytes for i in items.values())
    for version in range(len(batches)):
        for k in [*state, *_NEAR, data.draw(st.binary(min_size=32, max_size=32))]:
            assert kept.prove(version, k) == nodes.prove(version, k)


def test_a_single_key_then_keys_sharing_255_bits() -> None:
    kept = Versions()
    one = heads.Leaf(_BASE, 1, _BASE)
    assert kept.apply([one]).root == one.hash  # the root stratum's lone leaf is the root
    twin = heads.Leaf(_near(_BASE, 255), 1, _BASE)
    result = kept.apply([twin])
    assert result.root == ref.root({_BASE: (1, _BASE), twin.key: (1, _BASE)})
    # A chain of 32 strata, each holding the one below, the last the two leaves.
    assert sorted(result.writes) == [_BASE[:n] for n in range(32)]
    assert kept.prove(1, twin.key).siblings[0] == one.hash and len(kept.prove(1, twin.key).siblings) == 256


def test_an_update_reads_once_per_stratum_depth_and_only_what_it_changes() -> None:
    kept = Versions()
    keys = [hashlib.sha256(str(i).encode()).digest() for i in range(3000)]
    kept.apply([heads.Leaf(k, 1, k) for k in keys])
    kept.reads.clear()
    result = kept.apply([heads.Leaf(keys[7], 2, keys[7])])
    # The root stratum, the stratum of the key's first byte, maybe one of its first two bytes.
    assert [len(r) for r in kept.reads] in ([1, 1], [1, 1, 1])
    assert set(result.writes) == {keys[7][:n] for n in range(len(kept.reads))}


def test_no_change_and_shared_keys() -> None:
    kept = Versions()
    assert kept.apply([]).root == heads.EMPTY
    leaf = heads.Leaf(_BASE, 1, _BASE)
    kept.apply([leaf])
    assert strata.update([], kept.reader(1)) == strata.Update(leaf.hash, {})
    with pytest.raises(InvalidArgumentError, match="two changes share a key"):
        strata.update([leaf, heads.Leaf(_BASE, 2, _BASE)], kept.reader(1))
