"""Checks shared by the store tests: whole-log invariants, recomputed from the raw rows."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select

from ledger.core.merkle import leaf_hash
from ledger.log import Log
from ledger.store.db import read_transaction
from ledger.store.schema import events, log_entries, pending, tree_heads


def _mth_of_hashes(hashes: list[bytes]) -> bytes:
    """The reference MTH over already-hashed leaves (RFC 9162 split, hashlib only)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth_of_hashes(hashes[:k]) + _mth_of_hashes(hashes[k:])).digest()


def check_log(log: Log, *, expect_events: int | None = None) -> dict[str, int]:
    """Assert every invariant of a fully integrated log; return events per tender."""
    with read_transaction(log.engine) as conn:
        rows = conn.execute(
            select(
                events.c.id, events.c.ocid, events.c.seq, events.c.envelope, events.c.payload, events.c.leaf_hash
            ).order_by(events.c.ocid, events.c.seq)
        ).all()
        entries = conn.execute(select(log_entries.c.idx, log_entries.c.event_id).order_by(log_entries.c.idx)).all()
        queued = conn.execute(select(pending.c.event_id)).all()
        last_head = conn.execute(
            select(tree_heads.c.size, tree_heads.c.root).order_by(tree_heads.c.size.desc())
        ).first()
    if expect_events is not None:
        assert len(rows) == expect_events
    assert queued == [], "events left pending after integrate_all"
    # Chains: complete, contiguous, linked by leaf hash, bytes rehash.
    per_tender: dict[str, list[tuple[int, bytes, str | None]]] = defaultdict(list)
    by_id = {}
    for row in rows:
        envelope = json.loads(row.envelope)
        assert leaf_hash(row.envelope) == bytes(row.leaf_hash), f"event {row.id}: leaf hash does not match its bytes"
        assert hashlib.sha256(row.payload).hexdigest() == envelope["payload_sha256"]
        assert (envelope["ocid"], envelope["seq"]) == (row.ocid, row.seq)
        per_tender[row.ocid].append((row.seq, bytes(row.leaf_hash), envelope["prev"]))
        by_id[row.id] = bytes(row.leaf_hash)
    for ocid, chain in per_tender.items():
        assert [seq for seq, _, _ in chain] == list(range(len(chain))), f"{ocid}: seq not contiguous"
        assert chain[0][2] is None
        for (_, before, _), (seq, _, prev) in itertools.pairwise(chain):
            assert prev == before.hex(), f"{ocid} seq {seq}: prev does not link to seq {seq - 1}"
    # Indices: dense, unique, each event exactly once.
    assert [idx for idx, _ in entries] == list(range(len(entries)))
    assert sorted(event_id for _, event_id in entries) == sorted(by_id)
    # Root: recomputed from scratch equals the stored head.
    root = _mth_of_hashes([by_id[event_id] for _, event_id in entries])
    head = log.reader.tree_head()
    assert head.size == len(entries)
    assert head.root == root, "stored root differs from a recomputation from scratch"
    assert last_head is not None and (last_head.size, bytes(last_head.root)) == (head.size, head.root)
    return {ocid: len(chain) for ocid, chain in per_tender.items()}


T = TypeVar("T")


def integrating_while(
    log: Log, work: Callable[[], T], *, now: datetime, integrators: int = 1, batch_size: int = 300
) -> T:
    """Run ``work`` while ``integrators`` threads integrate in a loop; fail if any of them failed."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def integrator() -> None:
        try:
            while not stop.is_set():
                log.integrate(now=now, batch_size=batch_size)
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=integrator) for _ in range(integrators)]
    for thread in threads:
        thread.start()
    try:
        return work()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        assert errors == [], f"integration failed while appending: {errors!r}"
