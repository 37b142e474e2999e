"""A bounded, thread-safe cache of tiles' rows (:data:`ledger.core.tiles.TileRows`) for proofs.

A tile only grows and its stored hashes never change, so the nodes they determine never change
either: what is cached for a tile stays true for every later tree size. The cache keeps, per
tile, the rows of the widest version seen, and drops the least recently used tile beyond
``max_tiles`` (a full tile's rows take 511 hashes, 16 KiB).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..core.tiles import TileID, TileRows

#: Tiles kept by default: at most 64 MiB, every tile of a log of 1,000,000 entries (3,922 tiles).
DEFAULT_MAX_TILES = 4096


class TileRowCache:
    """Least-recently-used rows of up to ``max_tiles`` tiles (0: nothing is kept)."""

    def __init__(self, max_tiles: int = DEFAULT_MAX_TILES) -> None:
        if max_tiles < 0:
            raise ValueError(f"max_tiles must be >= 0, got {max_tiles}")
        self.max_tiles = max_tiles
        self._rows: OrderedDict[TileID, TileRows] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tile: TileID) -> TileRows | None:
        with self._lock:
            rows = self._rows.get(tile)
            if rows is not None:
                self._rows.move_to_end(tile)
            return rows

    def put(self, tile: TileID, rows: TileRows) -> None:
        if not self.max_tiles:
            return
        with self._lock:
            kept = self._rows.get(tile)
            if kept is None or len(kept[0]) < len(rows[0]):
                self._rows[tile] = rows
            self._rows.move_to_end(tile)
            while len(self._rows) > self.max_tiles:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)
