"""RFC 9162 §2.1 hashing: leaf and node hashes, Merkle Tree Hash, compact ranges.

A tree node is named by :class:`NodeID` ``(level, index)``: the perfect subtree
of ``2**level`` leaves starting at leaf ``index * 2**level``. Level 0 nodes are
leaf hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

from .errors import InvalidArgumentError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(NODE_PREFIX + left + right).digest()


class NodeID(NamedTuple):
    """The perfect subtree of ``2**level`` leaves that starts at leaf ``index << level``."""

    level: int
    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: RFC naming

    @property
    def begin(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n``. Requires ``n >= 2``."""
    if n < 2:
        raise InvalidArgumentError("n", f"split point needs at least 2 leaves, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """Decompose the leaf range ``[begin, end)`` into perfect subtrees, left to right.

    The folded hash of these nodes (see :func:`fold`) is the RFC 9162 Merkle Tree
    Hash of the range whenever the range is a subtree of the RFC's left-balanced
    tree, i.e. ``begin`` is a multiple of the smallest power of two >= the
    range's size. That holds for every range a proof or a root asks for.
    """
    if not 0 <= begin <= end:
        raise InvalidArgumentError("range", f"needs 0 <= begin <= end, got [{begin}, {end})")
    nodes: list[NodeID] = []
    while begin < end:
        # Largest aligned power of two that starts at begin and fits in the range.
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append(NodeID(level, begin >> level))
        begin += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Right fold of perfect-subtree hashes: ``h0 . (h1 . (h2 ...))``.

    This is how RFC 9162's left-balanced tree combines the perfect subtrees of
    a range (see :func:`range_nodes`). An empty sequence folds to :data:`EMPTY_ROOT`.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(NODE_PREFIX + h + acc).digest()
    return acc


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect subtree given its bottom row. Requires ``len(hashes)`` a power of two."""
    n = len(hashes)
    if n == 0 or n & (n - 1):
        raise InvalidArgumentError("hashes", f"a perfect subtree needs 2**k hashes, got {n}")
    row = list(hashes)
    while len(row) > 1:
        row = [_sha256(NODE_PREFIX + row[i] + row[i + 1]).digest() for i in range(0, len(row), 2)]
    return row[0]


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash of a whole list of leaf hashes, computed in O(n) memory-light passes.

    Used to recompute a tree from scratch (audits, tests); the log itself never
    needs it.
    """
    stack = CompactRange.empty()
    for h in hashes:
        stack.append(h)
    return stack.root()


class CompactRange:
    """The right border of a tree: the roots of the perfect subtrees of ``[0, size)``.

    Appending a leaf merges equal-sized subtrees, as a binary counter carries.
    ``append`` returns every node it completed, so the caller can store them.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, *, size: int, hashes: list[bytes]) -> None:
        if len(hashes) != size.bit_count():
            raise InvalidArgumentError(
                "hashes", f"a tree of size {size} has {size.bit_count()} border nodes, got {len(hashes)}"
            )
        self.size = size
        self.hashes = hashes

    @classmethod
    def empty(cls) -> CompactRange:
        return cls(size=0, hashes=[])

    @staticmethod
    def border(size: int) -> list[NodeID]:
        """The node ids whose hashes form the compact range of a tree of ``size`` leaves."""
        return range_nodes(0, size)

    def append(self, leaf: bytes) -> list[tuple[NodeID, bytes]]:
        """Add one leaf hash; return the nodes completed by it, lowest level first."""
        index = self.size
        created = [(NodeID(0, index), leaf)]
        acc = leaf
        level = 0
        hashes = self.hashes
        while index & 1:
            acc = _sha256(NODE_PREFIX + hashes.pop() + acc).digest()
            level += 1
            index >>= 1
            created.append((NodeID(level, index), acc))
        hashes.append(acc)
        self.size += 1
        return created

    def extend(self, leaves: Sequence[bytes], *, every: int) -> list[tuple[NodeID, bytes]]:
        """Append ``leaves`` (leaf hashes) in order, as :meth:`append` one by one does; return only
        the nodes completed at a level that is a positive multiple of ``every`` (e.g. the nodes at
        the bottom rows of hash tiles), lowest level first per leaf. Requires ``every >= 1``.

        The same hashes as :meth:`append`, without a list of nodes per leaf: a monitor catching
        up appends millions of leaves and looks at one node in 256."""
        if every < 1:
            raise InvalidArgumentError("every", f"must be at least 1, got {every}")
        hashes = self.hashes
        pop, push = hashes.pop, hashes.append
        prefix = NODE_PREFIX
        index = self.size
        created: list[tuple[NodeID, bytes]] = []
        for acc in leaves:
            at = index
            level = 0
            while at & 1:
                acc = _sha256(prefix + pop() + acc).digest()
                level += 1
                at >>= 1
                if level % every == 0:
                    created.append((NodeID(level, at), acc))
            push(acc)
            index += 1
        self.size = index
        return created

    def root(self) -> bytes:
        return fold(self.hashes)
