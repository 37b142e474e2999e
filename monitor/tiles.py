"""A monitor's source over the log's C2SP tlog-tiles interface (docs/spec.md §18): the signed
``/checkpoint``, entry bundles (``/tile/entries/<N>``), the level-0 hash tiles beside them (the
leaf hashes the log's tree holds), the hash tiles above (every node the monitor completes is
compared with them) and the payload bundles (``/payloads/<N>``). The payloads are hashed as
served, with no re-encoding: bytes that hash to the envelope's ``payload_sha256`` are the
committed bytes. Anchors and the cosigned checkpoint have no static form: they come from the
JSON API at the same address when it is there (a static mirror without it checks neither)."""

from __future__ import annotations

import struct
from typing import Any

from ledger.core.commitment import whole_disclosure
from ledger.core.cosignature import split_note
from ledger.core.errors import InvalidArgumentError
from ledger.core.merkle import HASH_SIZE, NodeID, fold, range_nodes
from ledger.core.tiles import TILE_HEIGHT, TILE_WIDTH, TileID, read_nodes, tile_path, tile_width

from .follow import _RETRIES, Api, MonitorError, Served, loads

#: Entries per request: one entry bundle (with its hash tile and payload bundle).
PAGE = TILE_WIDTH


def _path(tile: TileID | None, index: int, width: int) -> str:
    level = "entries" if tile is None else str(tile.level)
    return f"{level}/{tile_path(index)}" + ("" if width == TILE_WIDTH else f".p/{width}")


#: The length prefixes of bundle items: uint16 (entry bundles) and uint32 (payload and disclosure bundles).
_LENGTH = {2: struct.Struct(">H"), 4: struct.Struct(">I")}


def split_bundle(body: bytes, count: int, prefix: int) -> list[bytes]:
    """The ``count`` items of a bundle whose items are each prefixed with their length as a
    ``prefix``-byte (2 or 4) big-endian integer; raises ValueError if the body is not exactly that."""
    unpack = _LENGTH[prefix].unpack_from  # one call per item: a catch-up splits three bundles per entry
    items: list[bytes] = []
    at, end = 0, len(body)
    while at < end:
        head = at + prefix
        if head > end:
            raise ValueError(f"item {len(items)} is cut short ({end} bytes in all)")
        (n,) = unpack(body, at)
        at = head + n
        if at > end:
            raise ValueError(f"item {len(items)} is cut short ({end} bytes in all)")
        items.append(body[head:at])
    if len(items) != count:
        raise ValueError(f"expected {count} items, got {len(items)}")
    return items


class Tiles(Api):
    """The tlog-tiles interface at ``base`` as a source of :class:`~monitor.follow.Served` entries."""

    aligned = True

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(base, **kwargs)
        self._top: dict[int, tuple[TileID, int, bytes]] = {}  # the last hash tile read, per level

    def _bundle(self, path: str, count: int, prefix: int) -> list[bytes]:
        """A bundle's items, asked again while the body is cut short (a truncated answer)."""
        last = ""
        for _ in range(_RETRIES):
            body = self._get(path, binary=True)
            if body is None:
                raise MonitorError(f"{self.base}{path}: not found")
            try:
                return split_bundle(bytes(body), count, prefix)
            except ValueError as exc:
                last = str(exc)
        raise MonitorError(f"{self.base}{path}: no whole answer after {_RETRIES} tries ({last})")

    def _tile(self, tile: TileID, width: int) -> bytes:
        for _ in range(_RETRIES):
            body = self._get(f"/tile/{_path(tile, tile.index, width)}", binary=True)
            if body is None:
                raise MonitorError(f"{self.base}/tile/{_path(tile, tile.index, width)}: not found")
            if len(body) == width * HASH_SIZE:
                return bytes(body)
        raise MonitorError(f"{self.base}/tile/{_path(tile, tile.index, width)}: not {width} hashes")

    # -- the source ---------------------------------------------------------------------------

    def signed_checkpoint(self) -> str | None:
        got = self._get("/checkpoint", text=True)
        return None if got is None else str(got)

    def checkpoint(self) -> dict[str, Any]:
        """The size and text of the served checkpoint (its signature is the caller's to check)."""
        note = self.signed_checkpoint()
        if note is None:
            raise MonitorError(f"{self.base}/checkpoint: not found (the tiles interface needs a signed checkpoint)")
        try:
            text, _ = split_note(note)
            return {"tree_size": int(text.split("\n")[1]), "text": text}
        except (InvalidArgumentError, IndexError, ValueError) as exc:
            raise MonitorError(f"{self.base}/checkpoint: not a checkpoint: {exc}") from exc

    def served(self, start: int, end: int) -> list[Served]:
        """Entries from ``start`` to ``end`` or the end of ``start``'s bundle, whichever is first:
        requires ``end`` at most the tree's size. Each bundle is read at the width that reaches
        ``end`` (a partial one when ``end`` falls inside it)."""
        index = start // TILE_WIDTH
        first = index * TILE_WIDTH
        width = min(TILE_WIDTH, end - first)
        if width <= start - first:
            raise InvalidArgumentError("end", f"must be past start ({start}), got {end}")
        path = _path(None, index, width)
        datas = self._bundle(f"/tile/{path}", width, 2)
        hashes = self._tile(TileID(0, index), width)
        payloads = self._bundle(f"/payloads/{path.removeprefix('entries/')}", width, 4)
        wanted = range(start - first, min(width, end - first))
        disclosures: list[Any] = [None] * width
        raws: list[bytes | None] = [None] * width
        if any(b'"v":2}' in datas[i] for i in wanted):  # an RFC 8785 envelope ends with its "v"
            for i, raw in enumerate(self._bundle(f"/disclosures/{path.removeprefix('entries/')}", width, 4)):
                if raw:
                    whole = whole_disclosure(raw)  # the usual one, read with no JSON parse
                    disclosures[i], raws[i] = loads(raw) if whole is None else whole, bytes(raw)
        return [
            Served(
                first + i,
                datas[i],
                hashes[i * HASH_SIZE : (i + 1) * HASH_SIZE],
                payloads[i] if payloads[i] else None,
                disclosures[i],
                None,
                raws[i],
            )
            for i in wanted
        ]

    def tree_node(self, node: NodeID, size: int) -> bytes | None:
        """``node`` (at a tile's bottom row: level a multiple of 8) from the hash tile holding it,
        read at its width in the tree of ``size`` leaves (the last one read per level is kept)."""
        level, index = node.level // TILE_HEIGHT, node.index // TILE_WIDTH
        tile = TileID(level, index)
        width = tile_width(tile, size)
        kept = self._top.get(level)
        if kept is None or kept[:2] != (tile, width):
            kept = self._top[level] = (tile, width, self._tile(tile, width))
        at = (node.index % TILE_WIDTH) * HASH_SIZE
        return kept[2][at : at + HASH_SIZE]

    def root_at(self, size: int, current: int) -> bytes:
        """The root of the tree of ``size`` leaves, from the hash tiles at that size."""

        def read(tiles: Any) -> dict[TileID, bytes]:
            return {tile: self._tile(tile, tile_width(tile, size)) for tile in tiles}

        nodes = range_nodes(0, size)
        got = read_nodes(nodes, read)
        return fold([got[node] for node in nodes])
