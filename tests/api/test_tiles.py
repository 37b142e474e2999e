"""C2SP tlog-tiles served by a real ``tenderproof serve``: the spec's own examples (path
encoding; a tree of 256 is a full level-0 tile and a level-1 tile of width 1), and a client
written here from the spec with hashlib only: the tiles rebuild the signed checkpoint's root,
each entry bundle hashes to its level-0 tile, caches may keep full tiles for ever."""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

import httpx
import pytest

from api.routes.tiles import parse_tile_path
from ledger.core.errors import InvalidArgumentError
from ledger.core.note import Signer, open_note
from ledger.core.tiles import tile_path
from ledger.log import Log
from ledger.submission import Submission
from tests.monitor.test_monitor import ORIGIN, T0, _serve
from tests.recording import append_many


def test_the_specs_path_examples() -> None:
    assert tile_path(1234067) == "x001/x234/067"
    assert tile_path(0) == "000"
    assert parse_tile_path("0/x001/x234/067") == ("0", 1234067, None)
    assert parse_tile_path("entries/x001/x234/067.p/112") == ("entries", 1234067, 112)
    for bad in ("00/000", "64/000", "0/1234", "0/x001/23", "0/000.p/0", "0/000.p/256", "0/000.p/08", "0"):
        with pytest.raises(InvalidArgumentError):
            parse_tile_path(bad)


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash over leaf hashes (hashlib only)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def _split(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def test_a_client_from_the_spec_rebuilds_the_checkpoint_from_tiles(tmp_path: Path) -> None:
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    log = Log.open(url, origin=ORIGIN)
    try:
        append_many(
            log,
            [Submission(ocid=f"ocds-abc123-{i}", type="tender.amended", payload={"i": i}) for i in range(256)],
            now=T0,
        )
        log.integrate_all(now=T0)
        with _serve(url, tmp_path / "server.log", {"TENDERPROOF_LOG_SIGNING_KEY": signer.skey()}) as base:
            # The spec's example: a tree of size 256 is a full level-0 tile and a level-1 tile of width 1.
            full = httpx.get(f"{base}/tile/0/000")
            assert (full.status_code, len(full.content), full.headers["content-type"]) == (
                200,
                8192,
                "application/octet-stream",
            )
            assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
            top = httpx.get(f"{base}/tile/1/000.p/1")
            assert top.content == _mth(_split(full.content, 32))
            assert httpx.get(f"{base}/tile/1/000").status_code == 404  # not full: never served as full
            append_many(
                log,
                [Submission(ocid=f"ocds-abc123-b{i}", type="tender.amended", payload={"i": i}) for i in range(44)],
                now=T0,
            )
            log.integrate_all(now=T0)
            note = httpx.get(f"{base}/checkpoint")
            assert note.headers["cache-control"] == "public, no-cache"
            origin, size_text, root_b64 = open_note(note.text, signer.verifier).splitlines()
            size = int(size_text)
            assert (origin, size) == (ORIGIN, 300)
            # The client: leaf hashes from the level-0 tiles the checkpoint's size requires.
            leaves = _split(httpx.get(f"{base}/tile/0/000").content, 32) + _split(
                httpx.get(f"{base}/tile/0/001.p/44").content, 32
            )
            assert _mth(leaves) == base64.b64decode(root_b64)
            # Each entry bundle hashes to its level-0 tile.
            # Full ones may be cached for ever, partial ones briefly (a log may drop them once full).
            for path, expect, cache in (
                ("000", leaves[:256], "public, max-age=31536000, immutable"),
                ("001.p/44", leaves[256:], "public, max-age=60"),
            ):
                answer = httpx.get(f"{base}/tile/entries/{path}")
                assert answer.headers["cache-control"] == cache
                body, got = answer.content, []
                while body:
                    n = int.from_bytes(body[:2], "big")
                    got.append(hashlib.sha256(b"\x00" + body[2 : 2 + n]).digest())
                    body = body[2 + n :]
                assert got == expect
            # The earlier partial tile of width 1 at level 1 is the same bytes still (tiles only grow).
            assert httpx.get(f"{base}/tile/1/000.p/1").content == top.content
            assert httpx.get(f"{base}/tile/0/001.p/45").status_code == 404
            assert httpx.get(f"{base}/tile/0/002.p/1").status_code == 404
            assert httpx.get(f"{base}/tile/0/0001").status_code == 422  # the API maps a bad argument to 422
    finally:
        log.close()
