"""Bounded, thread-safe caches: tiles' rows (:data:`ledger.core.tiles.TileRows`) for proofs, and
encoded static bodies (:class:`BodyCache`: the tlog-tiles tiles and bundles the API serves).

A tile only grows and its stored hashes never change, so the nodes they determine never change
either: what is cached for a tile stays true for every later tree size. The cache keeps, per
tile, the rows of the widest version seen, and drops the least recently used tile beyond
``max_tiles`` (a full tile's rows take 511 hashes, 16 KiB).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

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


#: Bytes of encoded bodies a :class:`BodyCache` keeps by default (a full entry bundle of
#: ~400-byte envelopes is ~100 KiB: some 600 bundles with their tiles and payload bundles).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Body:
    """An encoded static body with its ETag, and the withholding orders' count it was read at
    (``None``: it can never change)."""

    data: bytes
    etag: str
    orders: int | None = None


class BodyCache:
    """Least-recently-used encoded bodies (tiles, entry and payload bundles), up to ``max_bytes``
    of them in all (0: nothing is kept). Thread-safe; the caller decides what a key means and
    when a body is stale (:attr:`Body.orders`)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self._bodies: OrderedDict[Hashable, Body] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Body | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: Hashable, body: Body) -> None:
        if len(body.data) > self.max_bytes:
            return
        with self._lock:
            old = self._bodies.pop(key, None)
            if old is not None:
                self.bytes -= len(old.data)
            self._bodies[key] = body
            self.bytes += len(body.data)
            while self.bytes > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self.bytes -= len(dropped.data)

    def drop(self, key: Hashable) -> None:
        with self._lock:
            old = self._bodies.pop(key, None)
            if old is not None:
                self.bytes -= len(old.data)

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)
