"""Checks shared by the store tests: whole-log invariants recomputed from the raw rows.

Everything here is computed with hashlib, json and rfc8785 straight from the
stored bytes, apart from ledger.core, so that a bug there cannot hide itself.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import rfc8785
from sqlalchemy import Engine, event, func, select, text

from ledger.core import commitment, verify
from ledger.log import Log
from ledger.store.reader import TreeHead
from ledger.store.schema import events, log_entries, log_state, payloads, pending, tenders, tiles, tree_heads
from tests.core import reference

EMPTY_ROOT = hashlib.sha256(b"").digest()
TILE_WIDTH = 256
#: Every table of the schema, for whole-database snapshots.
ALL_TABLES = (
    "log_config",
    "tenders",
    "events",
    "payloads",
    "pending",
    "log_entries",
    "tiles",
    "tree_heads",
    "log_state",
)
_ENVELOPE_KEYS = {"v", "origin", "ocid", "seq", "prev", "type", "recorded_at"}
#: The member binding the payload, by envelope version (docs/spec.md §2.5).
_PAYLOAD_KEY = {1: "payload_sha256", 2: "payload_commitment"}


def leaf(data: bytes) -> bytes:
    """RFC 9162 leaf hash, SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf *hashes*, straight from the RFC's recursive definition."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node(mth(hashes[:k]), mth(hashes[k:]))


def prefix_roots(hashes: Sequence[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """MTH of ``hashes[:n]`` for each requested n, in one pass (a stack of perfect subtrees)."""
    wanted = sorted(set(sizes))
    out: dict[int, bytes] = {}
    stack: list[tuple[int, bytes]] = []  # (leaves, hash) of perfect subtrees, left to right

    def fold() -> bytes:
        if not stack:
            return EMPTY_ROOT
        acc = stack[-1][1]
        for _, h in reversed(stack[:-1]):
            acc = node(h, acc)
        return acc

    pos = 0
    for n in wanted:
        assert n <= len(hashes), f"prefix {n} is longer than the {len(hashes)} leaves"
        for h in hashes[pos:n]:
            stack.append((1, h))
            while len(stack) > 1 and stack[-2][0] == stack[-1][0]:
                (width, left), (_, right) = stack[-2], stack[-1]
                stack[-2:] = [(2 * width, node(left, right))]
        pos = n
        out[n] = fold()
    return out


def expected_tiles(hashes: Sequence[bytes]) -> dict[tuple[int, int], bytes]:
    """The C2SP-style tiles (height 8) a tree of these leaf hashes must be stored as."""
    out: dict[tuple[int, int], bytes] = {}
    level_nodes = list(hashes)
    level = 0
    while level_nodes:
        for index in range(0, len(level_nodes), TILE_WIDTH):
            out[(level, index // TILE_WIDTH)] = b"".join(level_nodes[index : index + TILE_WIDTH])
        # Nodes of the next tile level: roots of complete runs of 256 nodes of this one.
        level_nodes = [
            mth(level_nodes[i : i + TILE_WIDTH]) for i in range(0, len(level_nodes) - TILE_WIDTH + 1, TILE_WIDTH)
        ]
        level += 1
    return out


def snapshot(engine: Engine, tables: Sequence[str] = ALL_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, sorted: equal snapshots mean byte-identical contents."""
    with engine.connect() as conn:
        return {
            table: sorted((tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}"))), key=repr)
            for table in tables
        }


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (events, payloads, pending, tenders, log_entries, tree_heads)
        }


@dataclass
class LogFacts:
    size: int
    per_tender: dict[str, int]
    #: every tree size the log has recorded a head for
    head_sizes: list[int]
    #: leaf data (envelope bytes) in log order
    leaf_data: list[bytes]


def check_log(log: Log, *, expect_events: int | None = None) -> LogFacts:
    """Assert every invariant of a fully integrated log, from the raw rows; return what was found."""
    with log.engine.connect() as conn:
        rows = conn.execute(
            select(events, payloads.c.body.label("payload"), payloads.c.disclosure)
            .join(payloads, payloads.c.event_id == events.c.id)
            .order_by(events.c.id)
        ).all()
        entries = conn.execute(select(log_entries.c.idx, log_entries.c.event_id).order_by(log_entries.c.idx)).all()
        queued = conn.execute(select(pending.c.event_id)).scalars().all()
        heads = [(s, bytes(r)) for s, r in conn.execute(select(tree_heads.c.size, tree_heads.c.root)).all()]
        state = conn.execute(select(log_state.c.id, log_state.c.size, log_state.c.root)).all()
        stored_tiles = {(lv, i): bytes(h) for lv, i, h in conn.execute(select(tiles)).all()}
        heads_of_tenders = {
            o: (n, h) for o, n, h in conn.execute(select(tenders.c.ocid, tenders.c.event_count, tenders.c.head_hash))
        }
    if expect_events is not None:
        assert len(rows) == expect_events
    assert queued == [], f"{len(queued)} events left pending after integration"

    # Every event: bytes canonical, leaf hash and payload hash right, columns agree with the envelope.
    chains: dict[str, list[tuple[int, bytes, str | None]]] = defaultdict(list)
    leaf_of: dict[int, bytes] = {}
    data_of: dict[int, bytes] = {}
    for row in rows:
        envelope_bytes, payload_bytes = bytes(row.envelope), bytes(row.payload)
        envelope = json.loads(envelope_bytes)
        assert rfc8785.dumps(envelope) == envelope_bytes, f"event {row.id}: envelope bytes are not RFC 8785"
        assert rfc8785.dumps(json.loads(payload_bytes)) == payload_bytes, f"event {row.id}: payload not RFC 8785"
        assert leaf(envelope_bytes) == bytes(row.leaf_hash), f"event {row.id}: leaf hash does not match its bytes"
        if envelope["v"] == 2:  # salted: recomputed from the payload and its stored disclosure
            disclosure = json.loads(bytes(row.disclosure))
            assert rfc8785.dumps(disclosure) == bytes(row.disclosure), f"event {row.id}: disclosure not RFC 8785"
            bound = commitment.recompute(json.loads(payload_bytes), disclosure)
            assert bound == envelope["payload_commitment"], f"event {row.id}"
            assert hashlib.sha256(payload_bytes).hexdigest() != bound
        else:
            assert row.disclosure is None, f"event {row.id}: a v1 entry has no disclosure"
            assert hashlib.sha256(payload_bytes).hexdigest() == envelope["payload_sha256"], f"event {row.id}"
        payload_key = _PAYLOAD_KEY[envelope["v"]]
        assert (
            _ENVELOPE_KEYS | {payload_key} <= set(envelope) <= _ENVELOPE_KEYS | {payload_key, "submission", "signature"}
        )
        assert envelope["origin"] == log.origin
        assert (envelope["ocid"], envelope["seq"], envelope["type"]) == (row.ocid, row.seq, row.type)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", envelope["recorded_at"])
        chains[row.ocid].append((row.seq, bytes(row.leaf_hash), envelope["prev"]))
        leaf_of[row.id], data_of[row.id] = bytes(row.leaf_hash), envelope_bytes

    # Tender chains: complete from 0, contiguous, each prev the previous leaf hash; heads agree.
    assert set(heads_of_tenders) == set(chains), "tenders table and events disagree on which tenders exist"
    for ocid, chain in chains.items():
        chain.sort()
        assert [seq for seq, _, _ in chain] == list(range(len(chain))), f"{ocid}: seq not contiguous from 0"
        assert chain[0][2] is None, f"{ocid}: seq 0 has a prev"
        for (_, before, _), (seq, _, prev) in itertools.pairwise(chain):
            assert prev == before.hex(), f"{ocid} seq {seq}: prev does not link to seq {seq - 1}"
        assert heads_of_tenders[ocid] == (len(chain), chain[-1][1].hex()), f"{ocid}: stored head is stale"

    # Indices: exactly 0..N-1, each event exactly once, a tender's events in seq order.
    assert [idx for idx, _ in entries] == list(range(len(entries))), "log indices are not dense from 0"
    placed = Counter(event_id for _, event_id in entries)
    assert [e for e, n in placed.items() if n > 1] == [], "an event holds several log indices"
    assert set(placed) == set(leaf_of), "integrated events differ from recorded events"
    index_of = {event_id: idx for idx, event_id in entries}
    for row_a, row_b in itertools.pairwise(sorted(rows, key=lambda r: (r.ocid, r.seq))):
        if row_a.ocid == row_b.ocid:
            assert index_of[row_a.id] < index_of[row_b.id], f"{row_b.ocid} seq {row_b.seq} precedes its prev"

    # Root: recomputed from scratch over the envelope bytes equals log_state and the last tree head.
    leaf_data = [data_of[event_id] for _, event_id in entries]
    leaf_hashes = [leaf_of[event_id] for _, event_id in entries]
    root = reference.mth(leaf_data)
    assert state == [(1, len(entries), root)], "log_state differs from a recomputation from scratch"
    heads.sort()
    assert heads[-1] == (len(entries), root), "the last tree head differs from a recomputation"
    assert log.reader.tree_head() == TreeHead(len(entries), root)
    # Every head the log ever recorded is the root of that prefix of today's log.
    recomputed = prefix_roots(leaf_hashes, [size for size, _ in heads])
    assert heads[0] == (0, EMPTY_ROOT)
    for size, stored_root in heads:
        assert stored_root == recomputed[size], f"tree head at size {size} is not the root of that prefix"
    # Tiles: exactly what tiling the recomputed tree gives, no more, no less.
    assert stored_tiles == expected_tiles(leaf_hashes), "stored tiles differ from a recomputation"
    return LogFacts(
        size=len(entries),
        per_tender={o: len(c) for o, c in chains.items()},
        head_sizes=[s for s, _ in heads],
        leaf_data=leaf_data,
    )


T = TypeVar("T")


@dataclass
class Background:
    """What the background integrators and readers did."""

    integrations: int = 0
    #: distinct tree sizes the integrators returned
    sizes: set[int] = field(default_factory=set)
    #: the same, only those returned while ``work`` was still running
    sizes_during_work: set[int] = field(default_factory=set)
    proofs_checked: int = 0
    errors: list[BaseException] = field(default_factory=list)


def _check_reads(log: Log, rng: random.Random, seen: TreeHead, done: Background) -> TreeHead:
    """One round of a reader: the head only grows, and proofs at it verify."""
    head = log.reader.tree_head()
    assert head.size >= seen.size, f"tree head went back from {seen.size} to {head.size}"
    if head.size == 0:
        return head
    proof = log.reader.consistency_proof(seen.size, head.size)
    verify.verify_consistency(seen.size, head.size, seen.root, head.root, proof)
    index = rng.randrange(head.size)
    (entry,) = log.reader.entries(index, index + 1)
    assert entry.index == index and leaf(entry.envelope) == entry.leaf_hash
    assert log.reader.leaf_hashes(index, index + 1) == [entry.leaf_hash]
    verify.verify_inclusion(index, head.size, entry.leaf_hash, log.reader.inclusion_proof(index, head.size), head.root)
    done.proofs_checked += 1
    return head


def in_background(
    log: Log,
    work: Callable[[], T],
    *,
    now: datetime,
    integrators: int = 1,
    readers: int = 0,
    batch_size: int = 300,
    drain: bool = True,
    timeout: float = 120.0,
    reader_pause: float = 0.01,
) -> tuple[T, Background]:
    """Run ``work`` while threads integrate (and read and verify proofs) in a loop.

    With ``drain``, the threads go on after ``work`` until nothing is pending, so
    the background integrators integrate everything themselves. (On SQLite a
    writer in a tight loop can keep the others waiting in the busy handler for
    the whole of ``work``; waiting for the drain keeps the checks deterministic.)
    Fails if any thread failed.
    """
    stop, working = threading.Event(), threading.Event()
    working.set()
    done = Background()
    lock = threading.Lock()

    def integrator() -> None:
        try:
            while not stop.is_set():
                head = log.integrate(now=now, batch_size=batch_size)
                with lock:
                    done.integrations += 1
                    done.sizes.add(head.size)
                    if working.is_set():
                        done.sizes_during_work.add(head.size)
        except BaseException as exc:  # reported below, never swallowed
            done.errors.append(exc)

    def reader(seed: int) -> None:
        rng, seen = random.Random(seed), TreeHead(0, EMPTY_ROOT)
        try:
            while not stop.is_set():
                seen = _check_reads(log, rng, seen, done)
                # Sample the head rather than spin: a busy reader thread holds the GIL that
                # writers need while they hold SQLite's write lock, and slows them all down.
                stop.wait(reader_pause)
        except BaseException as exc:
            done.errors.append(exc)

    threads = [threading.Thread(target=integrator) for _ in range(integrators)]
    threads += [threading.Thread(target=reader, args=(seed,)) for seed in range(readers)]
    for thread in threads:
        thread.start()
    try:
        result = work()
        working.clear()
        deadline = time.monotonic() + timeout
        while drain and not done.errors and log.reader.pending_count() and time.monotonic() < deadline:
            time.sleep(0.01)
        if drain and readers:  # let the readers see the final head at least once more
            target = done.proofs_checked + readers
            while not done.errors and done.proofs_checked < target and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert done.errors == [], f"a background thread failed: {done.errors!r}"
    if drain:
        assert log.reader.pending_count() == 0, f"background integrators did not drain the queue in {timeout}s"
    return result, done


@contextmanager
def statements(engine: Engine, *, fail_at: int | None = None, fail_commit: bool = False) -> Iterator[list[str]]:
    """Record the SQL statements run on ``engine``; make the ``fail_at``-th one (or the commit) fail,
    as a dropped connection or a crash at that point would."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)
        if len(seen) == fail_at:
            raise InjectedFault(f"injected fault at statement {fail_at}: {' '.join(statement.split()[:3])}")

    def commit(conn: Any) -> None:
        raise InjectedFault("injected fault at commit")

    event.listen(engine, "before_cursor_execute", before)
    if fail_commit:
        event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        if fail_commit:
            event.remove(engine, "commit", commit)


class InjectedFault(RuntimeError):
    """Raised by :func:`statements` where a test injects a fault."""
