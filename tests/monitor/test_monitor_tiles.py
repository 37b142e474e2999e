"""``tenderproof monitor --source tiles`` (C2SP tlog-tiles) and ``--witness`` against a real
``tenderproof serve`` (SQLite; PostgreSQL too when TENDERPROOF_TEST_PG_URL is set): the same
mirror and the same findings as the JSON API source, every hash tile checked against the entries,
and the log's cosigned checkpoint checked against the watcher's witness policy."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, text

from anchoring.cosigning import Cosigning
from anchoring.schema import anchor_switches, anchor_targets, anchors
from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import Cosigner
from ledger.core.note import Signer
from ledger.core.tiles import TILE_WIDTH
from ledger.log import Log
from monitor.tiles import split_bundle
from settings import DEV_CHAIN
from tests.monitor.test_monitor import (
    ORIGIN,
    Deployment,
    _blob,
    _deploy,
    _engines,
    _event_id,
    _fill,
    _monitor,
    _serve,
    _tamper,
    database,
)


@pytest.fixture(params=_engines())
def big(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """A log of 603 entries (two full bundles and a partial one; heads commitments between)."""
    with database(request.param, tmp_path) as url:
        for deployment in _deploy(url, tmp_path, tenders=200):
            assert deployment.log.reader.tree_head().size == 603
            yield deployment


def _tiles(d: Deployment, *args: str, db: str = "tiles.sqlite3") -> tuple[int, list[dict[str, object]], str]:
    return _monitor(d, "--source", "tiles", *args, db=db)


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT idx, ocid, seq, leaf_hash, leaf_data, payload FROM monitor_entries ORDER BY idx"
        ).fetchall()


def test_the_tiles_source_mirrors_exactly_what_the_api_source_does(big: Deployment) -> None:
    code, findings, err = _tiles(big)
    assert (code, findings) == (0, []), err
    assert "catch-up: 603/603 entries" in err
    assert _monitor(big, db="api.sqlite3")[:2] == (0, [])
    tiles_rows = _rows(big.tmp / "tiles.sqlite3")
    assert len(tiles_rows) == 603
    assert tiles_rows == _rows(big.tmp / "api.sqlite3")
    with sqlite3.connect(big.tmp / "tiles.sqlite3") as conn:
        assert conn.execute("SELECT verified_size FROM monitor_state").fetchone() == (603,)
    # More entries, past a bundle boundary: the next round reads on from the partial bundle.
    _fill(big.log, tenders=50, rounds=1)
    code, findings, err = _tiles(big)
    assert (code, findings) == (0, []), err
    assert "catch-up: 654/654 entries" in err
    assert len(_rows(big.tmp / "tiles.sqlite3")) == 654


def test_a_changed_entry_and_payloads_are_found_and_named_as_by_the_api(big: Deployment) -> None:
    entry, changed, withheld = _event_id(big, 300), _event_id(big, 3), _event_id(big, 520)
    with big.log.engine.connect() as conn:
        envelope = bytes(conn.execute(text(f"SELECT envelope FROM events WHERE id = {entry}")).scalar_one())
    forged = envelope.replace(b'"recorded_at":"2026', b'"recorded_at":"2025')
    assert forged != envelope
    other = _blob(big, b'{"i":3,"round":99}')
    _tamper(
        big,
        f"UPDATE events SET envelope = {_blob(big, forged)} WHERE id = {entry}",
        f"UPDATE payloads SET body = {other} WHERE event_id = {changed}",
        f"UPDATE payloads SET body = {_blob(big, b'null')} WHERE event_id = {withheld}",
    )
    code, findings, _ = _tiles(big)
    assert code == 1
    found = sorted((str(f["kind"]), int(str(f["index"]))) for f in findings)
    # The changed entry also breaks what chains on it: the next event of its tender, the heads
    # commitment after it and, from tiles, the tile node above it (the entry's bundle disagrees
    # with the log's own level-0 tile, so the node the monitor rebuilds is not the served one).
    consequences = [("commitment_lies", 401), ("history_broken", 501)]
    named = [("entry_changed", 300), ("payload_changed", 3), ("payload_withheld", 520)]
    assert found == sorted([*named, *consequences, ("tile_changed", 1)]), findings
    # The JSON API source names the same, but for the tile node (it serves no tiles).
    code, findings, _ = _monitor(big, db="api.sqlite3")
    assert sorted((str(f["kind"]), int(str(f["index"]))) for f in findings) == sorted([*named, *consequences])


def test_a_hash_tile_that_disagrees_with_its_entries_is_found(big: Deployment) -> None:
    with big.log.engine.connect() as conn:
        level1 = bytes(conn.execute(text("SELECT hashes FROM tiles WHERE level = 1 AND idx = 0")).scalar_one())
    assert len(level1) == 2 * 32  # the roots of bundles 0 and 1
    bogus = secrets.token_bytes(32)
    _tamper(big, f"UPDATE tiles SET hashes = {_blob(big, level1[:32] + bogus)} WHERE level = 1 AND idx = 0")
    code, findings, _ = _tiles(big)
    assert code == 1
    tile = [f for f in findings if f["kind"] == "tile_changed"]
    assert [(f["level"], f["index"], f["served"], f["expected"]) for f in tile] == [
        (8, 1, bogus.hex(), level1[32:].hex())
    ], findings


def test_a_checkpoint_signed_for_another_tree_is_found_from_tiles(big: Deployment) -> None:
    bogus = secrets.token_bytes(32)
    _tamper(big, f"UPDATE log_state SET root = {_blob(big, bogus)}")
    code, findings, _ = _tiles(big)
    assert code == 1
    assert [(f["kind"], f["root"]) for f in findings] == [("checkpoint_inconsistent", bogus.hex())]


def test_cache_headers_and_payload_bundles(big: Deployment) -> None:
    full = httpx.get(f"{big.base}/tile/entries/000")
    partial = httpx.get(f"{big.base}/tile/0/002.p/91")
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{big.base}/tile/0/001").headers["cache-control"] == "public, max-age=31536000, immutable"
    assert partial.headers["cache-control"] == "public, max-age=60"
    assert httpx.get(f"{big.base}/tile/entries/002.p/91").headers["cache-control"] == "public, max-age=60"
    assert httpx.get(f"{big.base}/checkpoint").headers["cache-control"] == "public, no-cache"
    payloads = httpx.get(f"{big.base}/payloads/000")
    assert payloads.headers["cache-control"] == "public, no-cache"  # a payload may be withheld later
    etag = payloads.headers["etag"]
    assert httpx.get(f"{big.base}/payloads/000", headers={"If-None-Match": etag}).status_code == 304
    served = split_bundle(payloads.content, TILE_WIDTH, 4)
    stored = [e.payload for e in big.log.reader.entries(0, TILE_WIDTH)]
    assert served == stored
    assert httpx.get(f"{big.base}/payloads/002.p/92").status_code == 404  # past the tree
    assert httpx.get(f"{big.base}/payloads/002.p/0").status_code == 422


def _cosign(d: Deployment, cosigners: list[Cosigner], *, spoil: str | None = None) -> None:
    """Keep a cosigned checkpoint of the log's size as the publishing round keeps it."""
    signer = Signer.parse(_signing_key(d))
    size = d.log.reader.tree_head().size
    cp = Checkpoint(origin=ORIGIN, size=size, root=d.log.reader.root_at(size))
    lines = []
    for c in cosigners:
        cosig = c.cosign(cp.to_text(), 1_800_000_000)
        if c.name == spoil:  # one bit of the Ed25519 signature flipped
            cosig = replace(cosig, signature=cosig.signature[:-1] + bytes([cosig.signature[-1] ^ 1]))
        lines.append(cosig.line())
    note = signer.sign(cp.to_text()) + "".join(lines)
    Cosigning._keep(d.log.engine, cp, note, len(lines), datetime.now(UTC))


def _anchoring(d: Deployment) -> None:
    """A publishing round ran: an anchor of the log's size is in flight on the default chain (as
    the anchorer records it, prepared, before sending; no chain is needed to list it)."""
    size = d.log.reader.tree_head().size
    now = datetime.now(UTC)
    with d.log.engine.begin() as conn:
        target = conn.execute(
            insert(anchor_targets).returning(anchor_targets.c.id),
            {"chain": DEV_CHAIN.name, "chain_id": 31337, "instance": "test", "contract": "0x" + "00" * 20,
             "created_at": now},
        ).scalar_one()  # fmt: skip
        conn.execute(insert(anchor_switches).values(target_id=target, switched_at=now))
        conn.execute(
            insert(anchors).values(target_id=target, tree_size=size, root=d.log.reader.root_at(size), base_size=0,
                                   status="prepared", account="0x" + "00" * 20, nonce=0, created_at=now, updated_at=now)
        )  # fmt: skip


def _signing_key(d: Deployment) -> str:
    return (d.tmp / "signing.key").read_text()


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[Deployment]:
    """A small log served with a signing key this test keeps (to store cosigned checkpoints)."""
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    (tmp_path / "signing.key").write_text(signer.skey())
    url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    log = Log.open(url, origin=ORIGIN)
    try:
        _fill(log, tenders=5, rounds=2)
        with _serve(url, tmp_path / "server.log", {"TENDERPROOF_LOG_SIGNING_KEY": signer.skey()}) as base:
            yield Deployment(log, base, str(signer.verifier), tmp_path)
    finally:
        log.close()


def test_the_witness_policy_is_checked_on_the_cosigned_checkpoint(signed: Deployment) -> None:
    w1, w2, w3 = (Cosigner(f"witness.example/w{i}", secrets.token_bytes(32)) for i in (1, 2, 3))
    policy = ["--witness", str(w1.key), "--witness", str(w2.key), "--witness", str(w3.key), "--witness-quorum", "2"]
    assert httpx.get(f"{signed.base}/api/v1/checkpoint/cosigned").status_code == 404
    # A new log that has not run a publishing round yet had nothing to have cosigned.
    code, findings, err = _monitor(signed, *policy, db="none.sqlite3")
    assert (code, findings) == (0, []), err
    _anchoring(signed)  # a round ran, and published no cosigned checkpoint: a shortfall
    code, findings, err = _monitor(signed, *policy, db="none.sqlite3")
    assert code == 1
    assert [(f["kind"], f["cosigned"]) for f in findings] == [("witness_shortfall", 0)], err

    _cosign(signed, [w1, w2])  # 2 of 3: the policy holds
    answer = httpx.get(f"{signed.base}/api/v1/checkpoint/cosigned")
    assert (answer.status_code, answer.headers["cache-control"]) == (200, "public, no-cache")
    assert answer.text.count("\u2014 witness.example/w") == 2
    for source in ("api", "tiles"):
        code, findings, err = _monitor(signed, "--source", source, *policy, db=f"{source}.sqlite3")
        assert (code, findings) == (0, []), err

    _fill(signed.log, tenders=5, rounds=1)
    _cosign(signed, [w1, w2], spoil="witness.example/w2")  # a newer one, w2's cosignature spoiled
    code, findings, _ = _monitor(signed, *policy, db="api.sqlite3")
    assert code == 1
    kinds = sorted(str(f["kind"]) for f in findings)
    assert kinds == ["cosignature_invalid", "witness_shortfall"], findings
    invalid = next(f for f in findings if f["kind"] == "cosignature_invalid")
    assert invalid["witness"] == str(w2.key)
    shortfall = next(f for f in findings if f["kind"] == "witness_shortfall")
    assert "1 of the 2 cosignatures required (of 3 witnesses); missing: witness.example/w2, witness.example/w3" in str(
        shortfall["message"]
    )


def test_a_cosigned_checkpoint_for_another_tree_is_a_fork(signed: Deployment) -> None:
    w1 = Cosigner("witness.example/w1", secrets.token_bytes(32))
    _anchoring(signed)
    assert _monitor(signed, "--witness", str(w1.key), db="m.sqlite3")[0] == 1  # none published yet
    size = signed.log.reader.tree_head().size
    signer = Signer.parse(_signing_key(signed))
    cp = Checkpoint(origin=ORIGIN, size=size - 1, root=secrets.token_bytes(32))
    note = signer.sign(cp.to_text()) + w1.cosign(cp.to_text(), 1_800_000_000).line()
    Cosigning._keep(signed.log.engine, cp, note, 1, datetime.now(UTC))
    code, findings, _ = _monitor(signed, "--witness", str(w1.key), db="m.sqlite3")
    assert code == 1
    assert [(f["kind"], f["size"]) for f in findings] == [("fork", size - 1)], findings
