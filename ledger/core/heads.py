"""The heads commitment: a sparse Merkle tree over every tender's head (docs/spec.md §14).

The map, as of a log size ``M``: for every ocid with at least one entry among indices
``[0, M)`` (the officers' registry included, :data:`HEADS_OCID` itself excluded), key =
``SHA-256(UTF-8 ocid)``, value = (size, head) where size is the number of that ocid's entries
and head the leaf hash of its last one.

The tree, over the 256-bit keys (bit 0 = most significant bit of key byte 0; depth 0 = root):

- :data:`EMPTY` (32 zero bytes) is an empty subtree at any height;
- ``leaf(key, size, head) = SHA-256(0x00 || key || uint64be(size) || head)``;
- ``node(left, right) = SHA-256(0x01 || left || right)``;
- canonical form: a subtree with no leaves is EMPTY, a subtree holding exactly one leaf IS that
  leaf's hash (the leaf is lifted to the highest point where it is alone), otherwise
  ``node(left, right)``.

Stored form: a :class:`Leaf` at the position where it is lifted, an :class:`Inner` (its hash)
at every position whose subtree holds two or more leaves, nothing where the subtree is empty. A
position is ``(depth, prefix)`` with ``prefix`` the 32-byte key masked to its first ``depth``
bits. Keys are never removed (a head only grows), so a position never becomes empty again and a
leaf position only ever turns into an inner one: :func:`update` writes just the positions on the
changed paths, which lets a store keep every version copy-on-write.

Pure: no I/O. A store hands nodes in through a reader callback.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import operator
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import InvalidArgumentError, InvariantError, ProofShapeError, RootMismatchError, VerificationError

#: The reserved ocid and entry type of the commitment entries (no client may use them).
HEADS_OCID = "ocds-tplog0-heads"
HEADS_TYPE = "log.heads"
KEY_BITS = 256
HASH_SIZE = 32
EMPTY = bytes(HASH_SIZE)
_MAX_SIZE = (1 << 64) - 1
_sha256 = hashlib.sha256
_pack_size = struct.Struct(">Q").pack
_BYTES = [bytes((b,)) for b in range(256)]  # one-byte strings, to build prefixes without copies


def key(ocid: str) -> bytes:
    """The map key of ``ocid``: SHA-256 of its UTF-8 bytes."""
    try:
        data = ocid.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError("ocid", f"is not encodable as UTF-8: {exc.reason}") from None
    return _sha256(data).digest()


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise InvalidArgumentError(name, f"must be {HASH_SIZE} bytes, got {value!r}")


def leaf_hash(k: bytes, size: int, head: bytes) -> bytes:
    """``SHA-256(0x00 || key(32) || uint64be(size) || head(32))``."""
    _check_hash("key", k)
    _check_hash("head", head)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_SIZE:
        raise InvalidArgumentError("size", f"must be an integer in [1, 2**64), got {size!r}")
    return _sha256(b"\x00" + k + struct.pack(">Q", size) + head).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def bit(k: bytes, n: int) -> int:
    """Bit number ``n`` of ``k`` (0 = most significant bit of byte 0)."""
    return (k[n >> 3] >> (7 - (n & 7))) & 1


def prefix(k: bytes, depth: int) -> bytes:
    """``k`` with every bit from number ``depth`` on cleared: the position of depth ``depth``
    on ``k``'s path."""
    if not 0 <= depth <= KEY_BITS:
        raise InvalidArgumentError("depth", f"must be in [0, {KEY_BITS}], got {depth}")
    whole, rest = divmod(depth, 8)
    out = bytearray(k[:whole])
    if rest:
        out.append(k[whole] & (0xFF << (8 - rest)) & 0xFF)
    out.extend(bytes(HASH_SIZE - len(out)))
    return bytes(out)


def _child(parent_prefix: bytes, depth: int, side: int) -> bytes:
    """The prefix of the child on ``side`` (0 left, 1 right) of the node at ``depth``."""
    if not side:
        return parent_prefix
    out = bytearray(parent_prefix)
    out[depth >> 3] |= 1 << (7 - (depth & 7))
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One map entry, stored at the position where it is lifted."""

    key: bytes
    size: int
    head: bytes
    hash: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", leaf_hash(self.key, self.size, self.head))

    @classmethod
    def stored(cls, key: bytes, size: int, head: bytes) -> Leaf:
        """A leaf read back from a store, whose fields were checked when it was made: its hash is
        recomputed from them (so a stored value changed by hand shows in the next commitment, as
        ``tenderproof audit`` reports), without the constructor's argument checks."""
        leaf = object.__new__(cls)
        _set = object.__setattr__
        _set(leaf, "key", key)
        _set(leaf, "size", size)
        _set(leaf, "head", head)
        _set(leaf, "hash", _sha256(b"\x00" + key + _pack_size(size) + head).digest())
        return leaf


@dataclass(frozen=True, slots=True)
class Inner:
    """A position whose subtree holds two or more leaves."""

    hash: bytes


Node = Leaf | Inner
Position = tuple[int, bytes]
#: ``read(depth, prefixes)`` returns the stored node of every listed position of that depth
#: that holds one (an absent prefix is an empty subtree).
Reader = Callable[[int, Sequence[bytes]], Mapping[bytes, Node]]


_KEY = operator.attrgetter("key")


def _hash_of(node: Node | None) -> bytes:
    return EMPTY if node is None else node.hash


def _split(items: list[Leaf], depth: int) -> tuple[list[Leaf], list[Leaf]]:
    """``items`` by their bit at ``depth``: (0s, 1s), order kept."""
    byte, mask = depth >> 3, 0x80 >> (depth & 7)
    left: list[Leaf] = []
    right: list[Leaf] = []
    for leaf in items:
        (right if leaf.key[byte] & mask else left).append(leaf)
    return left, right


def root(leaves: Iterable[Leaf]) -> bytes:
    """The canonical root of a set of leaves (distinct keys), computed from scratch."""
    items = list(leaves)
    if len({leaf.key for leaf in items}) != len(items):
        raise InvalidArgumentError("leaves", "two leaves share a key")

    def sub(part: list[Leaf], depth: int) -> bytes:
        if not part:
            return EMPTY
        if len(part) == 1:
            return part[0].hash
        left, right = _split(part, depth)
        return node_hash(sub(left, depth + 1), sub(right, depth + 1))

    return sub(items, 0)


@dataclass(frozen=True, slots=True)
class Update:
    """What :func:`update` computed: the new root and the positions to write."""

    root: bytes
    writes: dict[Position, Node]


def update(root_node: Node | None, changes: Iterable[Leaf], read: Reader) -> Update:
    """Apply ``changes`` (new or grown heads, distinct keys) to the tree whose root position
    holds ``root_node`` (``None``: the empty tree). ``read`` hands in stored nodes below the
    root; it is called once per depth with every position needed at that depth. Returns the
    new root hash and exactly the positions whose node changes (O(k log n) for k changes).

    Top-down, one depth at a time, each position's changes are a range of one sorted list; then
    bottom-up, the new inner nodes are hashed. A task is its index in parallel lists.
    """
    items = sorted(changes, key=_KEY)
    keys = [leaf.key for leaf in items]
    if any(a == b for a, b in itertools.pairwise(keys)):
        raise InvalidArgumentError("changes", "two changes share a key")
    if not items:
        return Update(_hash_of(root_node), {})
    sha = _sha256
    bisect_left = bisect.bisect_left
    depths: list[int] = [0]
    prefixes: list[bytes] = [EMPTY]
    results: list[Node | None] = [None]
    lefts: list[int | bytes] = [0]  # a task's index, or the hash of an unchanged subtree
    rights: list[int | bytes] = [0]
    # (task, its old node, changes[lo:hi], an old leaf pushed down from above or None)
    level: list[tuple[int, Node | None, int, int, Leaf | None]] = [(0, root_node, 0, len(items), None)]
    depth = 0
    while level:
        # The right child's position of every task of this depth (the left one is its own).
        # (At depth 256 a task can only be a lone leaf: one that would split raises below.)
        if depth < KEY_BITS:
            byte, mask = depth >> 3, 0x80 >> (depth & 7)
            after = byte + 1
            right_of = [
                (pre := prefixes[task])[:byte] + _BYTES[pre[byte] | mask] + pre[after:] for task, _, _, _, _ in level
            ]
        else:
            right_of = [EMPTY] * len(level)
        positions = []
        for (task, old, _, _, _), right_pos in zip(level, right_of, strict=True):
            if type(old) is Inner:
                positions.append(prefixes[task])
                positions.append(right_pos)
        stored: Mapping[bytes, Node] = read(depth + 1, positions) if positions else {}
        get = stored.get
        nxt: list[tuple[int, Node | None, int, int, Leaf | None]] = []
        below = depth + 1
        for (task, old, lo, hi, carry), right_pos in zip(level, right_of, strict=True):
            here = prefixes[task]
            if type(old) is Inner:
                left_old, right_old = get(here), get(right_pos)
            else:
                if old is not None:  # a leaf: pushed down beside the changes, unless one replaces it
                    j = bisect_left(keys, old.key, lo, hi)  # type: ignore[union-attr]
                    if j == hi or keys[j] != old.key:  # type: ignore[union-attr]
                        carry = old  # type: ignore[assignment]
                if hi - lo + (carry is not None) == 1:
                    results[task] = items[lo] if hi > lo else carry
                    continue
                if depth >= KEY_BITS:
                    raise InvariantError("heads tree: two distinct keys share all 256 bits")
                left_old = right_old = None
            # The keys share this position's prefix: those whose bit ``depth`` is 0 sort first,
            # below the right child's prefix.
            cut = bisect_left(keys, right_pos, lo, hi)
            left_carry = right_carry = None
            if carry is not None:
                if carry.key >= right_pos:
                    right_carry = carry
                else:
                    left_carry = carry
            if cut > lo or left_carry is not None:
                lefts[task] = index = len(results)
                depths.append(below)
                prefixes.append(here)
                results.append(None)
                lefts.append(0)
                rights.append(0)
                nxt.append((index, left_old, lo, cut, left_carry))
            else:
                lefts[task] = EMPTY if left_old is None else left_old.hash
            if hi > cut or right_carry is not None:
                rights[task] = index = len(results)
                depths.append(below)
                prefixes.append(right_pos)
                results.append(None)
                lefts.append(0)
                rights.append(0)
                nxt.append((index, right_old, cut, hi, right_carry))
            else:
                rights[task] = EMPTY if right_old is None else right_old.hash
        level = nxt
        depth = below
    # Children come after their parent: hash bottom-up.
    for task in range(len(results) - 1, -1, -1):
        if results[task] is None:
            left = lefts[task]
            right = rights[task]
            left_h = left if type(left) is bytes else results[left].hash  # type: ignore[index, union-attr]
            right_h = right if type(right) is bytes else results[right].hash  # type: ignore[index, union-attr]
            results[task] = Inner(sha(b"\x01" + left_h + right_h).digest())
    writes: dict[Position, Node] = dict(zip(zip(depths, prefixes, strict=True), results, strict=True))  # type: ignore[arg-type]
    return Update(_hash_of(results[0]), writes)


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof for one key: bottom-up ``siblings``, the terminal ``leaf`` when the key is in
    the map, or ``other`` (another key's leaf on the path, or ``None`` for an empty
    terminal) when it is not."""

    key: bytes
    leaf: Leaf | None
    siblings: tuple[bytes, ...]
    other: Leaf | None


def prove(root_node: Node | None, k: bytes, read: Reader) -> Proof:
    """The (non-)membership proof of key ``k`` in the tree rooted at ``root_node``."""
    _check_hash("key", k)
    node = root_node
    depth = 0
    pos = EMPTY
    top_down: list[bytes] = []
    while isinstance(node, Inner):
        if depth >= KEY_BITS:
            raise InvariantError("heads tree: an inner node at depth 256")
        side = bit(k, depth)
        here = _child(pos, depth, side)
        there = _child(pos, depth, 1 - side)
        stored = read(depth + 1, [here, there])
        sibling = stored.get(there)
        top_down.append(_hash_of(sibling))
        node = stored.get(here)
        pos = here
        depth += 1
    siblings = tuple(reversed(top_down))
    if isinstance(node, Leaf) and node.key == k:
        return Proof(k, node, siblings, None)
    return Proof(k, None, siblings, node)


def _fold(k: bytes, terminal: bytes, siblings: Sequence[bytes]) -> bytes:
    d = len(siblings)
    h = terminal
    for i, sibling in enumerate(siblings):
        depth = d - i
        h = node_hash(sibling, h) if bit(k, depth - 1) else node_hash(h, sibling)
    return h


def verify(
    heads_root: bytes,
    k: bytes,
    size: int,
    head: bytes | None,
    siblings: Sequence[bytes],
    other: Leaf | None,
) -> None:
    """Check that the map with root ``heads_root`` holds (``size``, ``head``) for key ``k``
    (``size`` 0 and ``head`` None: that it holds no entry for ``k``). Raises
    :class:`VerificationError` (or a subclass) naming what does not hold."""
    _check_hash("key", k)
    _check_hash("heads_root", heads_root)
    d = len(siblings)
    if d > KEY_BITS:
        raise ProofShapeError(f"heads proof: {d} siblings, at most {KEY_BITS} allowed")
    for i, s in enumerate(siblings):
        if not isinstance(s, bytes) or len(s) != HASH_SIZE:
            raise ProofShapeError(f"heads proof: siblings[{i}] must be {HASH_SIZE} bytes")
    if size == 0:
        if head is not None:
            raise VerificationError("heads proof: size 0 must come with no head")
        if other is None:
            terminal = EMPTY
        else:
            if other.key == k:
                raise VerificationError("heads proof: the other leaf has the proven key itself")
            if prefix(other.key, d) != prefix(k, d):
                raise VerificationError(
                    f"heads proof: the other leaf's key does not share the first {d} bits of the key"
                )
            terminal = other.hash
    else:
        if head is None:
            raise VerificationError(f"heads proof: size {size} needs a head")
        if other is not None:
            raise VerificationError("heads proof: a membership proof carries no other leaf")
        if d > 0 and siblings[0] == EMPTY:
            raise VerificationError("heads proof: not canonical (the leaf's sibling is empty, it should be lifted)")
        terminal = leaf_hash(k, size, head)
    calculated = _fold(k, terminal, siblings)
    if calculated != heads_root:
        raise RootMismatchError("heads proof", expected=heads_root, calculated=calculated)


class MemoryTree:
    """Every version of a tree kept in memory (tests, vectors, benchmarks): the same
    copy-on-write scheme a database store uses."""

    def __init__(self) -> None:
        self._nodes: dict[Position, list[tuple[int, Node]]] = {}
        self.versions: list[bytes] = []  # root hash of each version

    def reader(self, version: int) -> Reader:
        def read(depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, Node]:
            out: dict[bytes, Node] = {}
            for p in prefixes:
                node = self._at((depth, p), version)
                if node is not None:
                    out[p] = node
            return out

        return read

    def _at(self, pos: Position, version: int) -> Node | None:
        found = None
        for v, node in self._nodes.get(pos, ()):
            if v <= version:
                found = node
        return found

    def root_node(self, version: int) -> Node | None:
        return self._at((0, EMPTY), version) if version >= 0 else None

    def apply(self, changes: Iterable[Leaf]) -> Update:
        version = len(self.versions)
        result = update(self.root_node(version - 1), changes, self.reader(version - 1))
        for pos, node in result.writes.items():
            self._nodes.setdefault(pos, []).append((version, node))
        self.versions.append(result.root)
        return result

    def prove(self, version: int, k: bytes) -> Proof:
        return prove(self.root_node(version), k, self.reader(version))


def heads_map(entries: Iterable[tuple[str, bytes]]) -> dict[bytes, Leaf]:
    """The heads map of a log prefix given its entries in index order as (ocid, leaf hash):
    every ocid but :data:`HEADS_OCID`, keyed by :func:`key`."""
    sizes: dict[str, int] = {}
    last: dict[str, bytes] = {}
    for ocid, leaf in entries:
        if ocid == HEADS_OCID:
            continue
        sizes[ocid] = sizes.get(ocid, 0) + 1
        last[ocid] = leaf
    return {key(o): Leaf(key(o), n, last[o]) for o, n in sizes.items()}
