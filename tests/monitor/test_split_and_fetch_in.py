"""monitor.tiles.split_bundle (length-prefixed bundle items, refused when cut short or
miscounted) and monitor.store.fetch_in (an IN list through the driver, in chunks), on SQLite and
PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import store
from monitor.tiles import split_bundle
from tests.monitor.test_monitor import _engines, database

ITEMS = [b"", b"a", b"xyz" * 100, bytes(range(256)) * 3]


@pytest.mark.parametrize("prefix", [2, 4])
def test_split_bundle_gives_the_items(prefix: int) -> None:
    body = b"".join(len(i).to_bytes(prefix, "big") + i for i in ITEMS)
    assert split_bundle(body, len(ITEMS), prefix) == ITEMS
    assert split_bundle(b"", 0, prefix) == []


@pytest.mark.parametrize("prefix", [2, 4])
def test_split_bundle_refuses_a_body_cut_short_or_miscounted(prefix: int) -> None:
    body = b"".join(len(i).to_bytes(prefix, "big") + i for i in ITEMS)
    with pytest.raises(ValueError, match=r"item 3 is cut short"):
        split_bundle(body[:-1], len(ITEMS), prefix)  # inside the last item
    cut = len(body) - len(ITEMS[-1]) - prefix + 1
    with pytest.raises(ValueError, match=r"item 3 is cut short"):
        split_bundle(body[:cut], len(ITEMS), prefix)  # inside the last length prefix
    with pytest.raises(ValueError, match=r"expected 5 items, got 4"):
        split_bundle(body, 5, prefix)
    with pytest.raises(ValueError, match=r"expected 3 items, got 4"):
        split_bundle(body, 3, prefix)


@pytest.mark.parametrize("engine", _engines())
def test_fetch_in_reads_every_chunk(engine: str, tmp_path: Path) -> None:
    """More values than one IN list takes (and some not stored): each stored row exactly once."""
    with database(engine, tmp_path) as url:
        db = store.open_engine(url)
        try:
            with db.begin() as conn:
                store.executemany(
                    conn,
                    "INSERT INTO monitor_heads (ocid, size, head) VALUES (?, ?, ?)",
                    [(f"ocds-x-{i}", i, bytes([i % 256]) * 32) for i in range(2500)],
                )
            wanted = [f"ocds-x-{i}" for i in range(0, 2500, 2)] + [f"ocds-missing-{i}" for i in range(700)]
            with db.connect() as conn:
                got = store.fetch_in(conn, "SELECT ocid, size, head FROM monitor_heads WHERE ocid IN ({})", wanted)
                assert store.fetch_in(conn, "SELECT ocid FROM monitor_heads WHERE ocid IN ({})", []) == []
            assert sorted(got) == sorted((f"ocds-x-{i}", i, bytes([i % 256]) * 32) for i in range(0, 2500, 2))
        finally:
            db.dispose()
