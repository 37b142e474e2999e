"""Tiles: how the tree's nodes are kept, after C2SP tlog-tiles.

The tree is cut into tiles of height 8. Tile ``(level L, index N)`` holds, as
concatenated 32-byte hashes, the nodes of tree level ``8L`` numbered
``256N .. 256N + 255``; the levels inside a tile are recomputed on read (at most
127 hashes per node). So the tree costs ~32 bytes per entry plus 1/256 of that
per level above, any node is one tile read, and a proof is O(log n) tile reads.

A tile only ever grows: the rightmost tile of a level is partial until it has
256 hashes, and a wider version always starts with the bytes of the narrower
one. Storage can therefore enforce "extend only" on tiles too.

This module is pure: :func:`integrate` and :func:`read_nodes` are handed a
:data:`TileReader` and return what to write.

Because a tile only grows, every node its stored hashes determine never changes: the
:func:`tile_rows` of a tile (its bottom row and the 7 rows of interior nodes above it) can be
kept by the caller (a :class:`RowCache`) and :func:`read_nodes` then answers from them, reading
only the tiles it holds no rows for, or too few.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .errors import InvalidArgumentError, InvariantError
from .merkle import HASH_SIZE, NODE_PREFIX, CompactRange, NodeID, perfect_root

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


class TileID(NamedTuple):
    level: int
    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: RFC naming


#: Reads tiles by id; a tile that does not exist is absent from the result.
TileReader = Callable[[Sequence[TileID]], Mapping[TileID, bytes]]


def tile_width(tile: TileID, size: int) -> int:
    """How many hashes ``tile`` holds in a tree of ``size`` leaves (0 to 256)."""
    nodes_at_level = size >> (TILE_HEIGHT * tile.level)
    return max(0, min(TILE_WIDTH, nodes_at_level - tile.index * TILE_WIDTH))


def tile_path(index: int) -> str:
    """Tile index ``<N>`` as a tlog-tiles path writes it: 1234067 -> ``x001/x234/067``."""
    text = str(index)
    text = "0" * (-len(text) % 3) + text
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
    return "/".join([*(f"x{c}" for c in chunks[:-1]), chunks[-1]])


def _locate(node: NodeID) -> tuple[TileID, int, int]:
    """The tile holding ``node``'s bottom row, the row's offset in it, and its width."""
    tile_level, depth = divmod(node.level, TILE_HEIGHT)
    width = 1 << depth
    first = node.index * width
    return TileID(tile_level, first // TILE_WIDTH), first % TILE_WIDTH, width


def tiles_for(nodes: Iterable[NodeID]) -> list[TileID]:
    """The distinct tiles needed to compute ``nodes``."""
    return list(dict.fromkeys(_locate(node)[0] for node in nodes))


def node_from_tiles(node: NodeID, tiles: Mapping[TileID, bytes]) -> bytes:
    """Compute ``node``'s hash from the tiles holding its bottom row.

    Raises :class:`InvariantError` if the tile is missing or too short: the node
    is not complete in the stored tree.
    """
    tile, offset, width = _locate(node)
    data = tiles.get(tile)
    end = (offset + width) * HASH_SIZE
    if data is None or len(data) < end:
        have = 0 if data is None else len(data) // HASH_SIZE
        raise InvariantError(
            f"node {tuple(node)} needs tile {tuple(tile)} with at least {offset + width} hashes, stored {have}"
        )
    row = [data[i : i + HASH_SIZE] for i in range(offset * HASH_SIZE, end, HASH_SIZE)]
    return row[0] if width == 1 else perfect_root(row)


#: A tile's rows: row ``k`` (0 to 7) concatenates the hashes of the complete nodes ``k`` levels
#: above the tile's bottom, left to right; row 0 is the tile's stored content.
TileRows = tuple[bytes, ...]


class RowCache(Protocol):
    """Where :func:`read_nodes` keeps tiles' rows between calls (the caller's, e.g. an LRU)."""

    def get(self, tile: TileID) -> TileRows | None: ...

    def put(self, tile: TileID, rows: TileRows) -> None:
        """Keep ``rows`` for ``tile`` unless rows of a wider version are kept already."""


def tile_rows(data: bytes) -> TileRows:
    """Every node the hashes ``data`` of one tile determine, row by row (see :data:`TileRows`):
    at most 255 hashes for a full tile. Requires ``len(data)`` a multiple of 32."""
    if len(data) % HASH_SIZE:
        raise InvalidArgumentError(
            "data", f"a tile is a whole number of {HASH_SIZE}-byte hashes, got {len(data)} bytes"
        )
    sha256 = hashlib.sha256
    rows = [data]
    row = data
    pair = 2 * HASH_SIZE
    while len(rows) < TILE_HEIGHT and len(row) >= pair:
        row = b"".join(sha256(NODE_PREFIX + row[i : i + pair]).digest() for i in range(0, len(row) - pair + 1, pair))
        rows.append(row)
    return tuple(rows)


def node_from_rows(node: NodeID, rows: TileRows) -> bytes | None:
    """``node``'s hash from the rows of the tile holding its bottom row; ``None`` if they do not
    reach it (a narrower version of the tile)."""
    _, offset, width = _locate(node)
    depth = width.bit_length() - 1
    if depth >= len(rows):
        return None
    start = (offset >> depth) * HASH_SIZE
    row = rows[depth]
    return row[start : start + HASH_SIZE] if len(row) >= start + HASH_SIZE else None


def cached_nodes(nodes: Sequence[NodeID], cache: RowCache) -> dict[NodeID, bytes] | None:
    """The hashes of ``nodes`` from ``cache`` alone; ``None`` unless its rows reach every one."""
    out: dict[NodeID, bytes] = {}
    for node in nodes:
        rows = cache.get(_locate(node)[0])
        digest = None if rows is None else node_from_rows(node, rows)
        if digest is None:
            return None
        out[node] = digest
    return out


def read_nodes(nodes: Sequence[NodeID], read: TileReader, cache: RowCache | None = None) -> dict[NodeID, bytes]:
    """Read the hashes of ``nodes`` (each must be complete in the stored tree).

    With ``cache``, nodes its rows reach are answered from them and only the other nodes' tiles
    are read; the rows of every tile read are put in it. Raises :class:`InvariantError` if a
    node is not complete in the stored tree.
    """
    if cache is None:
        tiles = read(tiles_for(nodes))
        return {node: node_from_tiles(node, tiles) for node in nodes}
    out: dict[NodeID, bytes] = {}
    missing: list[NodeID] = []
    for node in nodes:
        rows = cache.get(_locate(node)[0])
        digest = None if rows is None else node_from_rows(node, rows)
        if digest is None:
            missing.append(node)
        else:
            out[node] = digest
    if missing:
        tiles = read(tiles_for(missing))
        computed = {tile: tile_rows(data) for tile, data in tiles.items()}
        for tile, rows in computed.items():
            cache.put(tile, rows)
        for node in missing:
            rows = computed.get(_locate(node)[0])
            digest = None if rows is None else node_from_rows(node, rows)
            out[node] = digest if digest is not None else node_from_tiles(node, tiles)  # the latter raises
    return out


@dataclass(frozen=True, slots=True)
class Integration:
    """The outcome of :func:`integrate`: the new tree head and the tiles to write."""

    size: int
    root: bytes
    #: Full new content of every tile that changed; each extends the stored version.
    tiles: dict[TileID, bytes]


def edge_tiles(size: int) -> list[TileID]:
    """The rightmost tile of each level of a tree of ``size`` leaves: where new nodes go.

    The compact range of the tree always lies in these tiles.
    """
    out = [TileID(0, size // TILE_WIDTH)]
    level = 1
    while nodes := size >> (TILE_HEIGHT * level):
        out.append(TileID(level, nodes // TILE_WIDTH))
        level += 1
    return out


def integrate(size: int, leaves: Sequence[bytes], read: TileReader) -> Integration:
    """Append ``leaves`` (leaf hashes) to the tree of ``size`` leaves.

    Reads the tiles on the tree's right edge through ``read`` and returns the
    new size, the new root and the full content of every tile to write. The
    caller MUST write the tiles and the new tree head atomically.
    Raises :class:`InvariantError` if stored tiles disagree with ``size``.
    """
    if size < 0:
        raise InvalidArgumentError("size", f"must be >= 0, got {size}")
    for i, leaf in enumerate(leaves):
        if len(leaf) != HASH_SIZE:
            raise InvalidArgumentError(f"leaves[{i}]", f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}")
    border = CompactRange.border(size)
    wanted = edge_tiles(size)
    stored = read(wanted)
    for tile in wanted:
        expected = tile_width(tile, size) * HASH_SIZE
        got = len(stored.get(tile, b""))
        if got != expected:
            raise InvariantError(
                f"tile {tuple(tile)} should hold {expected // HASH_SIZE} hashes at size {size}, holds {got // HASH_SIZE}"
            )
    compact = CompactRange(size=size, hashes=[node_from_tiles(node, stored) for node in border])

    grown: dict[TileID, bytearray] = {}
    for leaf in leaves:
        for node, digest in compact.append(leaf):
            if node.level % TILE_HEIGHT:
                continue
            tile = TileID(node.level // TILE_HEIGHT, node.index // TILE_WIDTH)
            buf = grown.get(tile)
            if buf is None:
                buf = grown[tile] = bytearray(stored.get(tile, b""))
            if len(buf) != (node.index % TILE_WIDTH) * HASH_SIZE:
                raise InvariantError(f"tile {tuple(tile)} is out of step at node {tuple(node)}")
            buf += digest
    return Integration(
        size=compact.size,
        root=compact.root(),
        tiles={tile: bytes(buf) for tile, buf in grown.items()},
    )
