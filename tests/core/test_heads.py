"""ledger.core.heads against the naive reference, by property (Hypothesis) and by example."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import heads
from ledger.core.errors import ProofShapeError, RootMismatchError, VerificationError

from . import heads_reference as ref

_keys = st.binary(min_size=32, max_size=32)
_hashes = st.binary(min_size=32, max_size=32)
_values = st.tuples(st.integers(min_value=1, max_value=(1 << 64) - 10), _hashes)
_maps = st.dictionaries(_keys, _values, max_size=40)


def _leaves(m: dict[bytes, tuple[int, bytes]]) -> list[heads.Leaf]:
    return [heads.Leaf(k, s, h) for k, (s, h) in m.items()]


def _near(base: bytes, depth: int) -> bytes:
    """A key sharing ``base``'s first ``depth`` bits and differing at bit ``depth``."""
    out = bytearray(base)
    out[depth // 8] ^= 1 << (7 - depth % 8)
    return bytes(out)


@given(_maps)
def test_root_matches_the_reference(m: dict[bytes, tuple[int, bytes]]) -> None:
    assert heads.root(_leaves(m)) == ref.root(m)


@settings(max_examples=60, deadline=None)
@given(st.lists(_maps, min_size=1, max_size=5), st.data())
def test_incremental_updates_match_recomputation_and_every_version_proves(
    batches: list[dict[bytes, tuple[int, bytes]]], data: st.DataObject
) -> None:
    tree = heads.MemoryTree()
    state: dict[bytes, tuple[int, bytes]] = {}
    snapshots = []
    for batch in batches:
        # Grown heads for some known keys, plus the batch's new keys.
        for k in data.draw(st.lists(st.sampled_from(sorted(state)), unique=True)) if state else []:
            batch[k] = (state[k][0] + 1, hashlib.sha256(k + b"grown").digest())
        update = tree.apply(_leaves(batch))
        state.update(batch)
        assert update.root == ref.root(state)
        snapshots.append(dict(state))
    for version, snap in enumerate(snapshots):
        root = tree.versions[version]
        for k, (size, head) in snap.items():
            p = tree.prove(version, k)
            assert p.leaf is not None and (p.leaf.size, p.leaf.head) == (size, head)
            heads.verify(root, k, size, head, p.siblings, None)
        absent = data.draw(_keys)
        if absent not in snap:
            p = tree.prove(version, absent)
            assert p.leaf is None
            heads.verify(root, absent, 0, None, p.siblings, p.other)


def test_update_writes_only_the_changed_paths() -> None:
    tree = heads.MemoryTree()
    keys = [hashlib.sha256(str(i).encode()).digest() for i in range(1000)]
    tree.apply(heads.Leaf(k, 1, k) for k in keys)
    update = tree.apply([heads.Leaf(keys[7], 2, keys[8])])
    # One changed key: one node per depth from the root down to its leaf.
    depths = sorted(d for d, _ in update.writes)
    assert depths == list(range(len(depths))) and len(depths) < 30
    assert update.root == ref.root({k: (2, keys[8]) if k == keys[7] else (1, k) for k in keys})


def test_deep_shared_prefixes_and_single_key() -> None:
    base = hashlib.sha256(b"x").digest()
    m = {base: (3, base), _near(base, 200): (1, base), _near(base, 255): (2, base)}
    assert heads.root(_leaves(m)) == ref.root(m)
    tree = heads.MemoryTree()
    tree.apply(_leaves({base: m[base]}))
    assert tree.versions[0] == heads.leaf_hash(base, 3, base)  # a lone leaf is the root
    tree.apply(_leaves({k: v for k, v in m.items() if k != base}))
    assert tree.versions[1] == ref.root(m)
    p = tree.prove(1, base)
    assert len(p.siblings) == 256
    heads.verify(tree.versions[1], base, 3, base, p.siblings, None)
    # A key that leaves the path at depth 100 ends in an EMPTY terminal.
    p = tree.prove(1, _near(base, 100))
    assert p.other is None and len(p.siblings) == 101
    heads.verify(tree.versions[1], _near(base, 100), 0, None, p.siblings, None)


def test_empty_map() -> None:
    assert heads.root([]) == heads.EMPTY
    k = heads.key("ocds-a-1")
    heads.verify(heads.EMPTY, k, 0, None, [], None)
    with pytest.raises(RootMismatchError):
        heads.verify(heads.EMPTY, k, 1, k, [], None)


def test_verify_refuses_lies() -> None:
    tree = heads.MemoryTree()
    keys = [heads.key(f"ocds-a-{i}") for i in range(50)]
    tree.apply(heads.Leaf(k, i + 1, k) for i, k in enumerate(keys))
    root = tree.versions[0]
    k = keys[3]
    p = tree.prove(0, k)
    heads.verify(root, k, 4, k, p.siblings, None)
    with pytest.raises(RootMismatchError):  # an older, shorter head
        heads.verify(root, k, 3, k, p.siblings, None)
    with pytest.raises(RootMismatchError):
        heads.verify(root, k, 4, keys[4], p.siblings, None)
    with pytest.raises(VerificationError):  # claims absence of a present key
        heads.verify(root, k, 0, None, p.siblings, None)
    with pytest.raises(ProofShapeError):
        heads.verify(root, k, 4, k, [heads.EMPTY] * 257, None)
    with pytest.raises(VerificationError, match="not canonical"):
        heads.verify(root, k, 4, k, [heads.EMPTY, *p.siblings], None)
    # Non-membership with another key's leaf: the other must share the path.
    absent = heads.key("ocds-a-absent")
    q = tree.prove(0, absent)
    heads.verify(root, absent, 0, None, q.siblings, q.other)
    if q.other is not None:
        with pytest.raises(VerificationError):
            heads.verify(root, q.other.key, 0, None, q.siblings, q.other)


def test_heads_map_skips_the_commitments() -> None:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    entries = [("ocds-x-1", a), (heads.HEADS_OCID, b), ("ocds-x-1", b), ("ocds-tpreg0-officers", a)]
    got = heads.heads_map(entries)
    assert {k: (v.size, v.head) for k, v in got.items()} == ref.heads(entries)
    assert heads.key(heads.HEADS_OCID) not in got
