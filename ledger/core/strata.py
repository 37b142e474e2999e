"""The heads tree (docs/spec.md §14) cut into strata of 8 levels: the unit a store keeps and updates.

Storage, not format: the roots and proofs are exactly those of :mod:`ledger.core.heads`; this
module only computes them stratum by stratum, as Trillian's map stores subtrees.

The stratum of prefix ``P`` (0 to 31 bytes; the root stratum's is empty) is the part of the tree
below the position of depth ``8 * len(P)`` whose keys begin with ``P``, down to depth
``8 * len(P) + 8``. Its **items**, by the key byte ``len(P)`` (the "edge byte", 0-255) they lie
under, are all it needs:

- a :class:`~ledger.core.heads.Leaf`: a key lifted into the stratum (alone under its edge byte);
- ``bytes``: the hash of the stratum below, of prefix ``P + edge byte``, which holds two keys or more.

Every other node of the stratum follows from them: a leaf is lifted to one depth below the
longest run of leading bits its edge byte shares with another item's, the hash of a stratum
below sits at the bottom edge, and the nodes between are hashed as in §14.2. A stratum exists
where its root position holds two keys or more (the root stratum once the map has one).

Pure: no I/O. A store hands stored strata in through a reader callback and writes what
:func:`update` returns.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import heads
from .errors import InvalidArgumentError

#: Levels per stratum: a stratum's prefix is whole bytes of the keys.
HEIGHT = 8
#: A stratum's items by edge byte: a leaf lifted into it, or the hash of the stratum below.
Items = dict[int, "heads.Leaf | bytes"]
#: ``read(prefixes)`` returns the stored items of every listed stratum that exists.
Reader = Callable[[Sequence[bytes]], Mapping[bytes, Items]]
_KEY = operator.attrgetter("key")


def _levels(items: Mapping[int, heads.Leaf | bytes]) -> tuple[list[dict[int, bytes]], dict[int, heads.Leaf]]:
    """Every non-empty position's hash, level by level (``levels[r][i]``: relative depth ``r``,
    the ``r`` bits after the prefix read ``i``), and the leaves by heap index (``2**r + i``)."""
    order = sorted(items)
    last = len(order) - 1
    levels: list[dict[int, bytes]] = [{} for _ in range(HEIGHT + 1)]
    leaves: dict[int, heads.Leaf] = {}
    for j, b in enumerate(order):
        item = items[b]
        if type(item) is bytes:
            levels[HEIGHT][b] = item
            continue
        # One level below the longest run of leading bits shared with a neighbour in order.
        shared = -1
        if j:
            shared = HEIGHT - (b ^ order[j - 1]).bit_length()
        if j < last:
            shared = max(shared, HEIGHT - (b ^ order[j + 1]).bit_length())
        rel = shared + 1
        i = b >> (HEIGHT - rel)
        levels[rel][i] = item.hash  # type: ignore[union-attr]
        leaves[(1 << rel) | i] = item  # type: ignore[assignment]
    sha, empty = hashlib.sha256, heads.EMPTY
    for rel in range(HEIGHT, 0, -1):
        here, up = levels[rel], levels[rel - 1]
        get = here.get
        for i, h in here.items():
            p = i >> 1
            if p in up:
                continue
            if i & 1:
                up[p] = sha(b"\x01" + get(i - 1, empty) + h).digest()
            else:
                up[p] = sha(b"\x01" + h + get(i + 1, empty)).digest()
    return levels, leaves


def root(items: Mapping[int, heads.Leaf | bytes]) -> bytes:
    """The hash of a stratum's root position (``EMPTY`` for no items)."""
    return _levels(items)[0][0].get(0, heads.EMPTY)


def nodes(items: Mapping[int, heads.Leaf | bytes]) -> dict[int, heads.Node]:
    """Every non-empty position of a stratum by heap index (1 its root, ``2h`` and ``2h + 1``
    the children of ``h``), as :mod:`ledger.core.heads` nodes."""
    levels, leaves = _levels(items)
    inner = heads.Inner
    out: dict[int, heads.Node] = {}
    for rel, level in enumerate(levels):
        first = 1 << rel
        for i, h in level.items():
            out[first | i] = inner(h)
    out.update(leaves)
    return out


@dataclass(frozen=True, slots=True)
class Update:
    """What :func:`update` computed: the new root and the items of every stratum it changes."""

    root: bytes
    writes: dict[bytes, Items]


def update(changes: Iterable[heads.Leaf], read: Reader) -> Update:
    """Apply ``changes`` (new or grown heads, distinct keys) to the tree whose strata ``read``
    hands in (called once per stratum depth, with every stratum needed at that depth). Returns
    the new root, the same as :func:`ledger.core.heads.update` gives, and the new items of every
    stratum on the changed keys' paths.

    Top-down, the changes are split among strata by their key bytes; where a change meets
    another key under the same edge byte, a new stratum below holds them. Then bottom-up, each
    changed stratum is hashed again from its items.
    """
    items = sorted(changes, key=_KEY)
    if any(a.key == b.key for a, b in itertools.pairwise(items)):
        raise InvalidArgumentError("changes", "two changes share a key")
    if not items:
        return Update(root(read([b""]).get(b"", {})), {})
    tasks: dict[bytes, list[heads.Leaf]] = {b"": items}
    fresh: set[bytes] = set()  # strata made by this update: nothing to read
    done: list[list[tuple[bytes, Items, list[int]]]] = []  # per depth: (prefix, new items, edges below)
    depth = 0
    while tasks:
        wanted = [p for p in tasks if p not in fresh]
        stored = read(wanted) if wanted else {}
        below: dict[bytes, list[heads.Leaf]] = {}
        level = []
        for prefix, group in tasks.items():
            old = stored.get(prefix, {})
            new: Items = dict(old)
            kids: list[int] = []
            for b, under in itertools.groupby(group, key=lambda leaf: leaf.key[depth]):
                leaves = list(under)
                was = old.get(b)
                if type(was) is bytes:  # a stratum below: it takes the changes
                    below[prefix + bytes((b,))] = leaves
                    kids.append(b)
                    continue
                if was is not None and all(leaf.key != was.key for leaf in leaves):  # type: ignore[union-attr]
                    leaves.append(was)  # type: ignore[arg-type]
                    leaves.sort(key=_KEY)
                if len(leaves) == 1:
                    new[b] = leaves[0]
                else:  # two keys or more under this edge byte: a new stratum below
                    child = prefix + bytes((b,))
                    fresh.add(child)
                    below[child] = leaves
                    kids.append(b)
            level.append((prefix, new, kids))
        done.append(level)
        tasks = below
        depth += 1
    hashes: dict[bytes, bytes] = {}
    writes: dict[bytes, Items] = {}
    for level in reversed(done):
        for prefix, new, kids in level:
            for b in kids:
                new[b] = hashes[prefix + bytes((b,))]
            hashes[prefix] = root(new)
            writes[prefix] = new
    return Update(hashes[b""], writes)


class Nodes:
    """A :data:`ledger.core.heads.Reader` over strata (for proofs): each stratum read once, its
    nodes laid out when first needed."""

    def __init__(self, read: Reader) -> None:
        self._read = read
        self.loaded: dict[bytes, dict[int, heads.Node]] = {}

    def __call__(self, depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, heads.Node]:
        if depth:
            top = (depth - 1) >> 3  # the stratum's depth / 8
            rel = depth - (top << 3)
            first, shift = 1 << rel, HEIGHT - rel
            located = [(p, p[:top], first | (p[top] >> shift)) for p in prefixes]
        else:
            located = [(p, b"", 1) for p in prefixes]
        missing = sorted({s for _, s, _ in located if s not in self.loaded})
        if missing:
            stored = self._read(missing)
            for s in missing:
                self.loaded[s] = nodes(stored.get(s, {}))
        out: dict[bytes, heads.Node] = {}
        for p, s, h in located:
            found = self.loaded[s].get(h)
            if found is not None:
                out[p] = found
        return out

    def root_node(self) -> heads.Node | None:
        """The root position's node (``None``: the empty tree)."""
        return self(0, [heads.EMPTY]).get(heads.EMPTY)

    def prove(self, key: bytes) -> heads.Proof:
        """The proof of ``key`` (:func:`ledger.core.heads.prove`)."""
        return heads.prove(self.root_node(), key, self)
