"""The log as static resources, per C2SP tlog-tiles: ``/checkpoint`` (the signed note),
``/tile/<L>/<N>[.p/<W>]`` (hash tiles) and ``/tile/entries/<N>[.p/<W>]`` (entry bundles:
each entry's exact leaf bytes, uint16 big-endian length-prefixed), and, outside the tlog-tiles
names, ``/payloads/<N>[.p/<W>]`` (payload bundles: each entry's payload bytes, uint32
big-endian length-prefixed, empty when withheld). Full tiles and bundles never change, so any
HTTP cache or CDN may keep them for ever; partial ones are short-lived (tlog-tiles lets a log
drop a partial tile once the full one exists); the checkpoint and payload bundles (a payload may
be withheld by an order) are revalidated. Paths and bytes: docs/spec.md §18."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response

from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.core.tiles import TILE_WIDTH, TileID, tile_width
from ledger.store.db import read_transaction
from ledger.store.reader import tile_reader

from ..deps import LogSignerDep, MirrorDep, ReadLogDep
from ..errors import COMMON_RESPONSES, NOT_FOUND_RESPONSES
from ..responses import IMMUTABLE, REVALIDATE, SHORT_LIVED, cached
from .log import signed_note

router = APIRouter(tags=["tiles"], responses={**COMMON_RESPONSES, **NOT_FOUND_RESPONSES})

OCTETS = "application/octet-stream"
#: A payload stored as JSON ``null`` is not served (``/api/v1/entries`` gives ``payload: null``).
WITHHELD = b"null"
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")


def parse_tile_path(path: str) -> tuple[str, int, int | None]:
    """``(level, index, width)`` of a tile path after ``/tile/`` (level: ``"entries"`` or a
    decimal 0..63; width: ``None`` for a full tile); raises InvalidArgumentError naming the part."""
    return _parse(path.split("/"))


def parse_bundle_path(path: str) -> tuple[int, int | None]:
    """``(index, width)`` of a bundle path ``<N>[.p/<W>]`` (as after ``/tile/entries/``)."""
    _, index, width = _parse(["entries", *path.split("/")])
    return index, width


def _parse(parts: list[str]) -> tuple[str, int, int | None]:
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


def _static(body: bytes, media_type: str, cache: str) -> Response:
    return Response(body, media_type=media_type, headers={"Cache-Control": cache})


def _tile_cache(width: int | None) -> str:
    return IMMUTABLE if width is None else SHORT_LIVED


def _bundle_range(log: ReadLogDep, path: str, index: int, width: int | None) -> tuple[int, int]:
    """Entries ``[start, end)`` of bundle ``index`` of ``width``; NotFoundError when the tree
    does not hold them yet."""
    wanted = TILE_WIDTH if width is None else width
    size = log.reader.tree_head().size
    if tile_width(TileID(0, index), size) < wanted:
        raise NotFoundError(f"{path}: the tree (size {size}) does not hold it yet")
    return index * TILE_WIDTH, index * TILE_WIDTH + wanted


@router.get("/checkpoint", summary="The log's signed checkpoint (C2SP tlog-tiles)", response_class=Response)
def tiles_checkpoint(log: ReadLogDep, signer: LogSignerDep, mirror: MirrorDep) -> Response:
    return _static(signed_note(log, signer, mirror).encode(), "text/plain; charset=utf-8", REVALIDATE)


@router.get("/tile/{path:path}", summary="A hash tile or entry bundle (C2SP tlog-tiles)", response_class=Response)
def tile(request: Request, log: ReadLogDep, path: str) -> Response:
    level, index, width = parse_tile_path(path)
    wanted = TILE_WIDTH if width is None else width
    size = log.reader.tree_head().size
    tile_level = 0 if level == "entries" else int(level)
    if tile_width(TileID(tile_level, index), size) < wanted:
        raise NotFoundError(f"tile {path}: the tree (size {size}) does not hold it yet")
    if level == "entries":
        start = index * TILE_WIDTH
        body = bytearray()
        for i, envelope in enumerate(log.reader.entry_bytes(start, start + wanted)):
            if len(envelope) > 0xFFFF:
                raise InvalidArgumentError("path", f"entry {start + i} is longer than an entry bundle can hold")
            body += len(envelope).to_bytes(2, "big") + envelope
        return _static(bytes(body), OCTETS, _tile_cache(width))
    with read_transaction(log.engine) as conn:
        found = tile_reader(conn)([TileID(tile_level, index)]).get(TileID(tile_level, index))
    if found is None or len(found) < wanted * 32:
        raise NotFoundError(f"tile {path}: not stored")
    return _static(found[: wanted * 32], OCTETS, _tile_cache(width))


@router.get("/payloads/{path:path}", summary="A payload bundle (beside the tlog-tiles entry bundles)",
            response_class=Response)  # fmt: skip
def payloads(request: Request, log: ReadLogDep, path: str) -> Response:
    """The payloads of the entries of entry bundle ``<N>[.p/<W>]``, in order, each its stored bytes
    (RFC 8785, hashing to its envelope's ``payload_sha256``, or committed to by its v2 envelope's
    ``payload_commitment`` with the disclosure bundle's entry) prefixed with its length as a
    big-endian uint32; length 0 for a payload withheld. Revalidated (ETag): a payload may be
    withheld later by an order recorded in the log."""
    index, width = parse_bundle_path(path)
    start, end = _bundle_range(log, f"payload bundle {path}", index, width)
    body = bytearray()
    for stored in log.reader.entry_bytes(start, end, payloads=True):
        data = b"" if stored == WITHHELD else stored
        body += len(data).to_bytes(4, "big") + data
    return cached(request, bytes(body), immutable=False, media_type=OCTETS)


@router.get("/disclosures/{path:path}", summary="A disclosure bundle (beside the payload bundles)",
            response_class=Response)  # fmt: skip
def disclosures(request: Request, log: ReadLogDep, path: str) -> Response:
    """The envelope v2 disclosures (docs/spec.md §2.5) of the entries of entry bundle
    ``<N>[.p/<W>]``, in order, each its stored RFC 8785 bytes prefixed with its length as a
    big-endian uint32; length 0 for a version 1 entry. With the payload bundle, each v2 payload
    recomputes to its envelope's ``payload_commitment``. Revalidated (ETag): withholding a field
    rewrites its disclosure entry."""
    index, width = parse_bundle_path(path)
    start, end = _bundle_range(log, f"disclosure bundle {path}", index, width)
    body = bytearray()
    for data in log.reader.entry_bytes(start, end, disclosures=True):
        body += len(data).to_bytes(4, "big") + data
    return cached(request, bytes(body), immutable=False, media_type=OCTETS)
