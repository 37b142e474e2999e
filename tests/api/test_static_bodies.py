"""The static tiles and bundles served from bodies kept in memory (api/routes/tiles.py), on SQLite
and PostgreSQL: a tile or entry bundle read once is served again with no database read, a payload
bundle with one (the withholding orders' count), and a payload withheld by an order is never
served from a stale copy: not by the application that kept it, not by another one on the same
database, not by a real ``tenderproof serve`` with two worker processes while the order is
recorded by another process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from api.routes.tiles import WITHHELD
from ledger.core.tiles import TILE_WIDTH
from ledger.log import Log
from ledger.procurement import withholding
from ledger.store.tile_cache import BodyCache
from ledger.submission import Submission
from monitor.tiles import split_bundle
from tests.api.conftest import settings_for
from tests.cluster import serve_api
from tests.conftest import ORIGIN, T0
from tests.monitor.test_monitor import _engines, database
from tests.recording import append_many

#: Entries: a full bundle (0) and a partial one (1, width 44).
SIZE = TILE_WIDTH + 44


def _order(*indices: int) -> dict[str, Any]:
    return {
        "reference": "EXP-17/2026",
        "authority": "Juzgado 3",
        "legal_basis": "LFPDPPP art. 25",
        "targets": [{"index": i} for i in indices],
    }


@pytest.fixture(params=_engines())
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as found:
        log = Log.open(found, origin=ORIGIN)
        try:
            items = [
                Submission(ocid=f"ocds-abc123-s{i % 9}", type="tender.amended", payload={"i": i, "x": "y" * 40})
                for i in range(SIZE)
            ]
            append_many(log, items, now=T0)
            assert log.integrate_all(now=T0).size == SIZE
        finally:
            log.close()
        yield found


class Statements:
    """Counts the queries an engine runs (transaction control left out: SQLite's ``BEGIN``)."""

    def __init__(self, log: Log) -> None:
        self.count = 0
        self.seen: list[str] = []
        event.listen(log.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self.count += 1
            self.seen.append(statement)


class Checkouts:
    """Counts the connections an engine's pool hands out (SQLAlchemy's or a driver's own)."""

    def __init__(self, log: Log) -> None:
        self.count = 0
        event.listen(log.engine, "checkout", self._out)

    def _out(self, *_: Any) -> None:
        self.count += 1


def _payloads(body: bytes, width: int = TILE_WIDTH) -> list[bytes]:
    return split_bundle(body, width, 4)


def test_tiles_and_bundles_read_once_are_served_from_memory(url: str) -> None:
    log = Log.open(url, origin=ORIGIN)
    try:
        app = create_app(settings_for(url), log=log)
        with TestClient(app) as client:
            first = {
                p: client.get(p) for p in ("/tile/entries/000", "/tile/0/000", "/payloads/000", "/disclosures/000")
            }
            assert all(r.status_code == 200 for r in first.values())
            bodies: BodyCache = app.state.static_bodies
            assert len(bodies) >= 4
            assert client.get("/tile/entries/001.p/44").status_code == 200  # read once
            statements = Statements(log)
            for path in ("/tile/entries/000", "/tile/0/000", "/tile/entries/001.p/44", "/tile/0/001.p/44"):
                again = client.get(path)
                assert again.status_code == 200
                if path in first:
                    assert again.content == first[path].content
                    assert again.headers["etag"] == first[path].headers["etag"]
            assert statements.count == 0, statements.seen  # all kept: no database read
            statements.count = 0
            assert client.get("/tile/entries/000").content == first["/tile/entries/000"].content
            assert statements.count == 0
            # a payload bundle: one primary-key read (the orders' count, a statement of its own on
            # a pooled driver connection: not through SQLAlchemy) before it is served again
            checkouts = Checkouts(log)
            assert client.get("/payloads/000").content == first["/payloads/000"].content
            assert statements.count == 0, statements.seen
            assert checkouts.count == 1
            # the bytes are the stored ones, as the uncached reader gives them
            assert first["/tile/entries/000"].content == b"".join(
                len(e).to_bytes(2, "big") + e for e in log.reader.entry_bytes(0, TILE_WIDTH)
            )
            assert _payloads(first["/payloads/000"].content) == log.reader.entry_bytes(0, TILE_WIDTH, payloads=True)
            assert first["/tile/0/000"].content == b"".join(log.reader.leaf_hashes(0, TILE_WIDTH))
            etag = first["/tile/entries/000"].headers["etag"]
            assert first["/tile/entries/000"].headers["cache-control"] == "public, max-age=31536000, immutable"
            assert client.get("/tile/entries/000", headers={"If-None-Match": etag}).status_code == 304
            assert client.get("/tile/entries/001.p/45").status_code == 404  # past the tree: nothing kept
            assert client.get("/payloads/001.p/45").status_code == 404
    finally:
        log.close()


def test_a_withheld_payload_is_never_served_from_a_stale_copy(url: str) -> None:
    """Two applications on the same database (two processes' worth: their own engines and kept
    bodies), each holding bundle 0's payloads; an order recorded through a third log withholds
    entry 5: both serve it withheld at once, the rest unchanged."""
    logs = [Log.open(url, origin=ORIGIN) for _ in range(3)]
    try:
        apps = [create_app(settings_for(url), log=log) for log in logs[:2]]
        with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
            before = {}
            for client in (a, b):
                assert client.get("/tile/entries/000").status_code == 200  # reads (and keeps) the payloads too
                before[client] = client.get("/payloads/000")
                assert _payloads(before[client].content)[5] != b""
            for app in apps:
                assert app.state.static_bodies.get(("payloads", 0, TILE_WIDTH)) is not None  # kept
            withholding.record_order(logs[2], _order(5), now=T0)
            for client in (a, b):
                after = client.get("/payloads/000")
                assert after.status_code == 200
                served = _payloads(after.content)
                assert served[5] == b""
                assert (
                    served[:5] + served[6:]
                    == _payloads(before[client].content)[:5] + _payloads(before[client].content)[6:]
                )
                assert after.headers["etag"] != before[client].headers["etag"]
                # a client revalidating with the old ETag gets the new body, not a 304
                revalidated = client.get("/payloads/000", headers={"If-None-Match": before[client].headers["etag"]})
                assert revalidated.status_code == 200 and _payloads(revalidated.content)[5] == b""
                # entries never change: the entry bundle is the same bytes
                assert client.get("/tile/entries/000").content == b"".join(
                    len(e).to_bytes(2, "big") + e for e in logs[2].reader.entry_bytes(0, TILE_WIDTH)
                )
            stored = logs[2].reader.entry_bytes(0, TILE_WIDTH, payloads=True)
            assert stored[5] == WITHHELD
    finally:
        for log in logs:
            log.close()


def test_a_server_with_two_workers_never_serves_a_withheld_payload(url: str, tmp_path: Path) -> None:
    """A real ``tenderproof serve --workers 2``: each worker keeps payload bundle 0 (asked many
    times, on fresh connections, so both answer); the order is recorded by this process."""
    with serve_api(url, origin=ORIGIN, workers=2, log_file=tmp_path / "server.log") as server:
        base = server.base
        first = [httpx.get(f"{base}/payloads/000") for _ in range(12)]
        assert all(r.status_code == 200 and _payloads(r.content)[7] != b"" for r in first)
        partial = httpx.get(f"{base}/payloads/001.p/44")
        assert _payloads(partial.content, 44)[3] != b""
        log = Log.open(url, origin=ORIGIN)
        try:
            withholding.record_order(log, _order(7, TILE_WIDTH + 3), now=T0)
        finally:
            log.close()
        for _ in range(12):
            got = httpx.get(f"{base}/payloads/000")
            assert got.status_code == 200 and _payloads(got.content)[7] == b""
            got = httpx.get(f"{base}/payloads/001.p/44")
            assert got.status_code == 200 and _payloads(got.content, 44)[3] == b""


def _fresh(url: str, path: str) -> bytes:
    """``path`` as a new application (nothing kept yet) computes it from the database."""
    log = Log.open(url, origin=ORIGIN)
    try:
        with TestClient(create_app(settings_for(url), log=log)) as client:
            got = client.get(path)
            assert got.status_code == 200, got.text
            return got.content
    finally:
        log.close()


def test_kept_tiles_are_a_fresh_computation_and_a_tile_that_becomes_full_is_served_right(url: str) -> None:
    """Tiles and bundles served from memory are the bytes a fresh application computes; a partial
    one is kept for its width only (never answered for another), and once the log grows so the
    tile is full, the full tile is read and served as a fresh computation gives it."""
    paths = ["/tile/entries/000", "/tile/0/000", "/payloads/000", "/disclosures/000"]
    partial = ["/tile/entries/001.p/44", "/tile/0/001.p/44", "/payloads/001.p/44", "/disclosures/001.p/44"]
    log = Log.open(url, origin=ORIGIN)
    try:
        app = create_app(settings_for(url), log=log)
        with TestClient(app) as client:
            kept = {p: client.get(p).content for p in paths + partial}
            for p in paths + partial:
                assert client.get(p).content == kept[p] == _fresh(url, p), p
            assert client.get("/tile/entries/001.p/45").status_code == 404  # not the 44 kept
            assert client.get("/tile/entries/001").status_code == 404
            bodies: BodyCache = app.state.static_bodies
            assert {("entries", 1, 44), ("0", 1, 44)} <= set(bodies._bodies)
            assert ("entries", 1, TILE_WIDTH) not in set(bodies._bodies)
            # the log grows: bundle 1 becomes full (and bundle 2 starts)
            more = [
                Submission(ocid=f"ocds-abc123-s{i % 9}", type="tender.amended", payload={"i": i, "x": "z" * 40})
                for i in range(SIZE, 2 * TILE_WIDTH + 5)
            ]
            append_many(log, more, now=T0)
            assert log.integrate_all(now=T0).size == 2 * TILE_WIDTH + 5
            for p in [p.replace("001.p/44", "001") for p in partial]:
                full = client.get(p)
                assert full.status_code == 200
                assert full.content == _fresh(url, p), p
                assert full.headers["cache-control"] == "public, max-age=31536000, immutable" or p.startswith(
                    ("/payloads", "/disclosures")
                )
            # the full tile begins with the partial one's bytes; the partial one is unchanged
            assert client.get("/tile/0/001").content[: 44 * 32] == kept["/tile/0/001.p/44"]
            assert client.get("/tile/entries/001.p/44").content == kept["/tile/entries/001.p/44"]
            assert client.get("/tile/0/001.p/44").headers["cache-control"] == "public, max-age=60"
    finally:
        log.close()


def test_kept_bodies_stay_within_their_bound(url: str) -> None:
    """A BodyCache bounded below what the log's bodies take: every tile and bundle is served right
    while the least recently used are dropped, and the bytes kept never pass the bound."""
    log = Log.open(url, origin=ORIGIN)
    try:
        app = create_app(settings_for(url), log=log)
        bound = 30_000  # a full entry bundle of this log is ~20 KB: at most one and a bit kept
        app.state.static_bodies = bodies = BodyCache(max_bytes=bound)
        with TestClient(app) as client:
            for _ in range(3):
                for p in ("/tile/entries/000", "/payloads/000", "/tile/entries/001.p/44", "/disclosures/000"):
                    got = client.get(p)
                    assert got.status_code == 200
                    assert got.content == _fresh(url, p)
                    assert 0 < bodies.bytes <= bound
                    assert bodies.bytes == sum(len(b.data) for b in bodies._bodies.values())
            assert len(bodies) < 8  # bundle 0 and 1's eight bodies do not all fit
    finally:
        log.close()
