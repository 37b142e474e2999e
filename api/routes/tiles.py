"""The log as static resources, per C2SP tlog-tiles: ``/checkpoint`` (the signed note),
``/tile/<L>/<N>[.p/<W>]`` (hash tiles) and ``/tile/entries/<N>[.p/<W>]`` (entry bundles:
each entry's exact leaf bytes, uint16 big-endian length-prefixed). Tiles and bundles never
change once served, so any HTTP cache or CDN may keep them for ever; the checkpoint is
revalidated. Paths and bytes: docs/spec.md §18."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response

from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.core.tiles import TILE_WIDTH, TileID, tile_width
from ledger.store.db import read_transaction
from ledger.store.reader import tile_reader

from ..deps import LogDep, LogSignerDep, MirrorDep
from ..errors import COMMON_RESPONSES, NOT_FOUND_RESPONSES
from ..responses import IMMUTABLE, REVALIDATE
from .log import signed_note

router = APIRouter(tags=["tiles"], responses={**COMMON_RESPONSES, **NOT_FOUND_RESPONSES})

OCTETS = "application/octet-stream"
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")


def parse_tile_path(path: str) -> tuple[str, int, int | None]:
    """``(level, index, width)`` of a tile path after ``/tile/`` (level: ``"entries"`` or a
    decimal 0..63; width: ``None`` for a full tile); raises InvalidArgumentError naming the part."""
    parts = path.split("/")
    width: int | None = None
    if len(parts) >= 3 and parts[-2].endswith(".p"):
        if not _WIDTH.fullmatch(parts[-1]) or not 1 <= int(parts[-1]) <= TILE_WIDTH - 1:
            raise InvalidArgumentError("path.width", f"must be 1..255 without leading zeros, got {parts[-1]!r}")
        width = int(parts[-1])
        parts = [*parts[:-2], parts[-2][:-2]]
    if len(parts) < 2:
        raise InvalidArgumentError("path", "a tile path is <L>/<N>[.p/<W>] or entries/<N>[.p/<W>]")
    level, *index_parts = parts
    if level != "entries" and (not _LEVEL.fullmatch(level) or int(level) > 63):
        raise InvalidArgumentError("path.level", f"must be 0..63 without leading zeros or 'entries', got {level!r}")
    digits = ""
    for i, part in enumerate(index_parts):
        last = i == len(index_parts) - 1
        if not re.fullmatch(r"[0-9]{3}" if last else r"x[0-9]{3}", part):
            raise InvalidArgumentError("path.index", f"element {part!r} must be {'ddd' if last else 'xddd'}")
        digits += part[-3:]
    if len(index_parts) > 1 and index_parts[0] == "x000":
        raise InvalidArgumentError("path.index", "no leading x000 element")
    return level, int(digits), width


def tile_path(index: int) -> str:
    """``<N>`` as tlog-tiles writes it: 1234067 -> ``x001/x234/067``."""
    text = str(index)
    text = "0" * (-len(text) % 3) + text
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
    return "/".join([*(f"x{c}" for c in chunks[:-1]), chunks[-1]])


def _static(body: bytes, media_type: str, cache: str) -> Response:
    return Response(body, media_type=media_type, headers={"Cache-Control": cache})


@router.get("/checkpoint", summary="The log's signed checkpoint (C2SP tlog-tiles)", response_class=Response)
def tiles_checkpoint(log: LogDep, signer: LogSignerDep, mirror: MirrorDep) -> Response:
    return _static(signed_note(log, signer, mirror).encode(), "text/plain; charset=utf-8", REVALIDATE)


@router.get("/tile/{path:path}", summary="A hash tile or entry bundle (C2SP tlog-tiles)", response_class=Response)
def tile(request: Request, log: LogDep, path: str) -> Response:
    level, index, width = parse_tile_path(path)
    wanted = TILE_WIDTH if width is None else width
    size = log.reader.tree_head().size
    tile_level = 0 if level == "entries" else int(level)
    if tile_width(TileID(tile_level, index), size) < wanted:
        raise NotFoundError(f"tile {path}: the tree (size {size}) does not hold it yet")
    if level == "entries":
        start = index * TILE_WIDTH
        stored = log.reader.entries(start, start + wanted)
        body = bytearray()
        for event in stored:
            if len(event.envelope) > 0xFFFF:
                raise InvalidArgumentError("path", f"entry {event.index} is longer than an entry bundle can hold")
            body += len(event.envelope).to_bytes(2, "big") + event.envelope
        return _static(bytes(body), OCTETS, IMMUTABLE)
    with read_transaction(log.engine) as conn:
        found = tile_reader(conn)([TileID(tile_level, index)]).get(TileID(tile_level, index))
    if found is None or len(found) < wanted * 32:
        raise NotFoundError(f"tile {path}: not stored")
    return _static(found[: wanted * 32], OCTETS, IMMUTABLE)
