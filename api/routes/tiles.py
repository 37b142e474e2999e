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
from starlette.concurrency import run_in_threadpool

from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.core.tiles import TILE_WIDTH, TileID, tile_path, tile_width
from ledger.log import Log
from ledger.procurement.officers import ORDERS_OCID
from ledger.store.db import read_transaction
from ledger.store.reader import tile_reader
from ledger.store.tile_cache import Body, BodyCache

from ..deps import LogSignerDep, MirrorDep, ReadLogDep
from ..errors import COMMON_RESPONSES, NOT_FOUND_RESPONSES
from ..responses import IMMUTABLE, REVALIDATE, SHORT_LIVED, etag_of, matches
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


# -- served from encoded bodies kept in memory -------------------------------------------------
#
# Tiles and entry bundles never change once the tree holds them (full or partial: the first W
# entries of a bundle are fixed), so their encoded bodies are kept (a BodyCache per application,
# least recently used dropped past its bytes) and served again with no database read. Payload
# and disclosure bundles change when an order withholds a payload: each is kept with the count
# of withholding orders it was read at, and served again only while that count, read from the
# database (one primary-key read), has not moved: the order that withholds and that count are
# written in one transaction, so no process serves a withheld payload from memory, whichever
# process recorded the order. One read of a bundle's rows makes its entry, payload and
# disclosure bundles and its level-0 tile together: a follower asking for them in turn reads the
# database once.

_Key = tuple[str, int, int]  # (kind: "entries", "payloads", "disclosures" or a tile level, index, width)


def _bodies(request: Request) -> BodyCache:
    state = request.app.state
    found: BodyCache | None = getattr(state, "static_bodies", None)
    if found is None:
        found = state.static_bodies = BodyCache()
    return found


def _body(data: bytes, orders: int | None = None) -> Body:
    return Body(data, etag_of(data), orders)


def _answer(request: Request, body: Body, media_type: str, cache: str) -> Response:
    headers = {"ETag": body.etag, "Cache-Control": cache}
    if matches(request.headers.get("if-none-match"), body.etag):
        return Response(status_code=304, headers=headers)
    return Response(body.data, media_type=media_type, headers=headers)


def _read_bundle(log: Log, bodies: BodyCache, index: int, width: int, wanted: _Key) -> Body:
    """Read bundle ``index`` at ``width`` once; keep its entry, payload and disclosure bundles and
    its level-0 tile; return the body ``wanted`` names."""
    start = index * TILE_WIDTH
    try:
        read = log.reader.bundle(start, start + width, orders_ocid=ORDERS_OCID)
    except NotFoundError:
        raise NotFoundError(f"{_describe(wanted)}: the tree does not hold it yet") from None
    rows = read.rows
    too_long = next((start + i for i, (envelope, _, _) in enumerate(rows) if len(envelope) > 0xFFFF), None)
    shown = [b"" if payload is None or payload == WITHHELD else payload for _, payload, _ in rows]
    made: dict[_Key, Body] = {
        ("payloads", index, width): _body(_prefixed(shown, 4), read.orders),
        ("disclosures", index, width): _body(_prefixed([disclosure for _, _, disclosure in rows], 4), read.orders),
    }
    if too_long is None:
        made["entries", index, width] = _body(_prefixed([envelope for envelope, _, _ in rows], 2))
    if read.leaf_tile is not None and len(read.leaf_tile) >= width * 32:
        made["0", index, width] = _body(read.leaf_tile[: width * 32])
    for key, body in made.items():
        bodies.put(key, body)
    if wanted[0] == "entries" and too_long is not None:
        raise InvalidArgumentError("path", f"entry {too_long} is longer than an entry bundle can hold")
    return made[wanted]


def _prefixed(items: list[bytes], prefix: int) -> bytes:
    """A bundle's body: each item prefixed with its length as a ``prefix``-byte big-endian integer."""
    return b"".join([part for item in items for part in (len(item).to_bytes(prefix, "big"), item)])


def _describe(key: _Key) -> str:
    kind, index, width = key
    path = tile_path(index) + ("" if width == TILE_WIDTH else f".p/{width}")
    return {"entries": "tile entries/", "payloads": "payload bundle ", "disclosures": "disclosure bundle "}.get(
        kind, f"tile {kind}/"
    ) + path


def _read_tile(log: Log, bodies: BodyCache, level: int, index: int, width: int) -> Body:
    size = log.reader.tree_head().size
    if tile_width(TileID(level, index), size) < width:
        raise NotFoundError(f"{_describe((str(level), index, width))}: the tree (size {size}) does not hold it yet")
    with read_transaction(log.engine) as conn:
        found = tile_reader(conn)([TileID(level, index)]).get(TileID(level, index))
    if found is None or len(found) < width * 32:
        raise NotFoundError(f"{_describe((str(level), index, width))}: not stored")
    body = _body(found[: width * 32])
    bodies.put((str(level), index, width), body)
    return body


def _current(log: Log, bodies: BodyCache, key: _Key) -> Body:
    """The payload or disclosure bundle ``key`` names: the kept one while no order has been
    recorded since it was read, else read again."""
    kept = bodies.get(key)
    if kept is not None and kept.orders == log.reader.orders(ORDERS_OCID):
        return kept
    return _read_bundle(log, bodies, key[1], key[2], key)


@router.get("/checkpoint", summary="The log's signed checkpoint (C2SP tlog-tiles)", response_class=Response)
def tiles_checkpoint(log: ReadLogDep, signer: LogSignerDep, mirror: MirrorDep) -> Response:
    return _static(signed_note(log, signer, mirror).encode(), "text/plain; charset=utf-8", REVALIDATE)


@router.get("/tile/{path:path}", summary="A hash tile or entry bundle (C2SP tlog-tiles)", response_class=Response)
async def tile(request: Request, log: ReadLogDep, path: str) -> Response:
    """Kept in memory once read (they never change): served again with no database read."""
    level, index, width = parse_tile_path(path)
    key: _Key = (level, index, TILE_WIDTH if width is None else width)
    bodies = _bodies(request)
    body = bodies.get(key)
    if body is None:
        if level == "entries":
            body = await run_in_threadpool(_read_bundle, log, bodies, index, key[2], key)
        else:
            body = await run_in_threadpool(_read_tile, log, bodies, int(level), index, key[2])
    return _answer(request, body, OCTETS, _tile_cache(width))


@router.get("/payloads/{path:path}", summary="A payload bundle (beside the tlog-tiles entry bundles)",
            response_class=Response)  # fmt: skip
async def payloads(request: Request, log: ReadLogDep, path: str) -> Response:
    """The payloads of the entries of entry bundle ``<N>[.p/<W>]``, in order, each its stored bytes
    (RFC 8785, hashing to its envelope's ``payload_sha256``, or committed to by its v2 envelope's
    ``payload_commitment`` with the disclosure bundle's entry) prefixed with its length as a
    big-endian uint32; length 0 for a payload withheld. Revalidated (ETag): a payload may be
    withheld later by an order recorded in the log."""
    index, width = parse_bundle_path(path)
    key: _Key = ("payloads", index, TILE_WIDTH if width is None else width)
    body = await run_in_threadpool(_current, log, _bodies(request), key)
    return _answer(request, body, OCTETS, REVALIDATE)


@router.get("/disclosures/{path:path}", summary="A disclosure bundle (beside the payload bundles)",
            response_class=Response)  # fmt: skip
async def disclosures(request: Request, log: ReadLogDep, path: str) -> Response:
    """The envelope v2 disclosures (docs/spec.md §2.5) of the entries of entry bundle
    ``<N>[.p/<W>]``, in order, each its stored RFC 8785 bytes prefixed with its length as a
    big-endian uint32; length 0 for a version 1 entry. With the payload bundle, each v2 payload
    recomputes to its envelope's ``payload_commitment``. Revalidated (ETag): withholding a field
    rewrites its disclosure entry."""
    index, width = parse_bundle_path(path)
    key: _Key = ("disclosures", index, TILE_WIDTH if width is None else width)
    body = await run_in_threadpool(_current, log, _bodies(request), key)
    return _answer(request, body, OCTETS, REVALIDATE)
