"""Reads from the store: proofs equal the RFC's and verify, roots of past sizes, entries, errors named."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from ledger.core import verify
from ledger.core.errors import InvalidArgumentError, NotFoundError, RootMismatchError
from ledger.log import Log
from ledger.store.reader import MAX_ENTRIES_PER_READ, LogReader
from ledger.submission import Recorded, Submission
from tests.conftest import ORIGIN, T0
from tests.core import reference
from tests.recording import append, append_many

from .helpers import EMPTY_ROOT, leaf, mth

N = 1100
BATCH = 333  # tree_heads holds 0, 333, 666, 999, 1100 only
#: sizes around the tile boundaries (256, 512, 768, 1024) and the recorded heads, plus a few odd ones
SIZES = [1, 2, 3, 7, 8, 255, 256, 257, 332, 333, 334, 511, 512, 513, 666, 767, 768, 769, 999, 1023, 1024, 1025, 1099, N]
OCIDS = [f"ocds-abc123-{i:02d}" for i in range(13)]


@pytest.fixture
def filled(log: Log) -> tuple[Log, list[Recorded]]:
    """A log of N entries integrated in uneven batches, so that tree_heads has only some sizes."""
    recorded = append_many(
        log, [Submission(ocid=OCIDS[i % 13], type="tender.amended", payload={"i": i}) for i in range(N)], now=T0
    )
    assert log.integrate_all(now=T0, batch_size=BATCH).size == N
    return log, recorded


def _data(recorded: list[Recorded]) -> list[bytes]:
    return [r.envelope.canonical_bytes() for r in recorded]


def test_proofs_equal_the_rfc_and_verify_across_tile_boundaries(filled: tuple[Log, list[Recorded]]) -> None:
    log, recorded = filled
    data = _data(recorded)
    leaves = [leaf(d) for d in data]
    reader = log.reader
    current = reader.tree_head()
    assert current.root == reference.mth(data)
    rng = random.Random(1)
    checked = 0
    for size in SIZES:
        root = reader.root_at(size)
        assert root == reference.mth(data[:size]), f"root_at({size})"
        indices = {0, size - 1, size // 2, *rng.sample(range(size), min(size, 5))}
        indices |= {i for i in (254, 255, 256, 257, 511, 512, 1023, 1024) if i < size}
        for index in sorted(indices):
            path = reader.inclusion_proof(index, size)
            assert path == reference.path(index, data[:size]), f"inclusion proof ({index}, {size})"
            verify.verify_inclusion(index, size, leaves[index], path, root)
            checked += 1
        for old in sorted({1, size, size - 1 or 1, *rng.sample(range(1, size + 1), min(size, 4))}):
            proof = reader.consistency_proof(old, size)
            assert proof == reference.proof(old, data[:size]), f"consistency proof ({old}, {size})"
            verify.verify_consistency(old, size, reader.root_at(old), root, proof)
        # ... and every size is consistent with the current head.
        to_head = reader.consistency_proof(size, current.size)
        verify.verify_consistency(size, current.size, root, current.root, to_head)
    assert checked > 150
    assert reader.consistency_proof(0, N) == []
    assert reader.root_at(0) == EMPTY_ROOT


def test_cached_nodes_stay_right_as_the_log_grows(log: Log) -> None:
    """One reader (one tile cache) across integrations: the partial tiles it cached grow, and
    every proof at every size, old and new, is still the RFC's."""
    reader = LogReader(log.engine)
    data: list[bytes] = []
    for count in (100, 200, 300, 500):
        recorded = append_many(
            log, [Submission(ocid=OCIDS[0], type="tender.amended", payload={"n": len(data) + i}) for i in range(count)],
            now=T0,
        )  # fmt: skip
        data += _data(recorded)
        size = log.integrate_all(now=T0).size
        assert size == len(data)
        for old in (1, size // 3, size - 1, size):
            assert reader.root_at(old) == reference.mth(data[:old])
            assert reader.consistency_proof(old, size) == reference.proof(old, data)
            for index in (0, old // 2, old - 1):
                assert reader.inclusion_proof(index, old) == reference.path(index, data[:old])
    assert len(reader.tile_cache) > 0
    # A size beyond the log is refused even when the cache could answer for it.
    with pytest.raises(InvalidArgumentError, match="tree_size"):
        reader.inclusion_proof(0, len(data) + 1)


def test_a_warm_reader_answers_the_sizes_it_has_seen_from_memory(filled: tuple[Log, list[Recorded]]) -> None:
    log, recorded = filled
    data = _data(recorded)
    reader = LogReader(log.engine)
    for index in range(0, N, 128):  # every tile read once
        reader.inclusion_proof(index, N)
    for old in (1, 300, 700, N):
        reader.consistency_proof(old, N)
    # Without its database, the reader still answers for sizes it has seen, from memory only...
    reader._engine = create_engine("sqlite:////nonexistent-directory/gone.sqlite3")
    assert reader.inclusion_proof(517, N) == reference.path(517, data)
    assert reader.inclusion_proof(3, 700) == reference.path(3, data[:700])
    assert reader.consistency_proof(300, N) == reference.proof(300, data)
    assert reader.root_at(N - 1) == reference.mth(data[: N - 1])
    # ... and a size beyond them, or bad arguments, still go to the database.
    with pytest.raises(OperationalError):
        reader.inclusion_proof(0, N + 1)
    with pytest.raises(OperationalError):
        reader.inclusion_proof(N, N)


def test_a_wrong_leaf_does_not_verify(filled: tuple[Log, list[Recorded]]) -> None:
    """The proofs are not vacuous: the same path does not take a neighbouring leaf to the root."""
    log, recorded = filled
    path = log.reader.inclusion_proof(300, 700)
    with pytest.raises(RootMismatchError):
        verify.verify_inclusion(300, 700, recorded[301].leaf_hash, path, log.reader.root_at(700))
    with pytest.raises(RootMismatchError):
        verify.verify_inclusion(300, 700, recorded[300].leaf_hash, path, log.reader.root_at(701))


def test_root_at_intermediate_sizes(filled: tuple[Log, list[Recorded]]) -> None:
    log, recorded = filled
    leaves = [r.leaf_hash for r in recorded]
    for size in [0, *range(1, N + 1, 37), 333, 666, 999, N]:
        assert log.reader.root_at(size) == mth(leaves[:size]), size


def test_entries_in_index_order_with_their_bytes(filled: tuple[Log, list[Recorded]]) -> None:
    log, recorded = filled
    everything = [*log.reader.entries(0, 600), *log.reader.entries(600, N)]
    assert [e.index for e in everything] == list(range(N))
    # Integrated in the order they were recorded (one append_many: ids ascending).
    assert [e.event_id for e in everything] == [r.event_id for r in recorded]
    for entry, record in zip(everything, recorded, strict=True):
        assert entry.envelope == record.envelope.canonical_bytes()
        assert entry.leaf_hash == record.leaf_hash == leaf(entry.envelope)
        assert (entry.ocid, entry.seq, entry.type) == (record.envelope.ocid, record.envelope.seq, "tender.amended")
        assert json.loads(entry.payload) == {"i": entry.index}
    window = log.reader.entries(250, 260)
    assert window == everything[250:260]
    assert log.reader.entries(5, 5) == []
    assert log.reader.entries(N, N) == []
    assert log.reader.entries(N - 1, N) == [everything[-1]]


def test_leaf_hashes_come_from_the_tiles(filled: tuple[Log, list[Recorded]]) -> None:
    log, recorded = filled
    leaves = [r.leaf_hash for r in recorded]
    assert log.reader.leaf_hashes(0, N) == leaves
    for start, end in [(0, 0), (0, 1), (250, 260), (255, 257), (256, 256), (511, 769), (1023, 1025), (N - 1, N)]:
        assert log.reader.leaf_hashes(start, end) == leaves[start:end], (start, end)


def test_tender_reads(filled: tuple[Log, list[Recorded]]) -> None:
    log, recorded = filled
    mine = [r for r in recorded if r.envelope.ocid == OCIDS[5]]
    head = log.reader.tender(OCIDS[5])
    assert (head.ocid, head.event_count, head.head_hash) == (OCIDS[5], len(mine), mine[-1].leaf_hash.hex())
    history = log.reader.tender_events(OCIDS[5])
    assert [(e.seq, e.event_id, e.index) for e in history] == [
        (i, r.event_id, recorded.index(r)) for i, r in enumerate(mine)
    ]
    # A pending event shows up with no index yet.
    extra = append(log, Submission(ocid=OCIDS[5], type="tender.cancelled", payload={}), now=T0)
    last = log.reader.tender_events(OCIDS[5])[-1]
    assert (last.seq, last.event_id, last.index, last.type) == (len(mine), extra.event_id, None, "tender.cancelled")


ReadCall = Callable[[LogReader], Any]
OUT_OF_RANGE: list[tuple[str, ReadCall, str, str]] = [
    ("inclusion beyond size", lambda r: r.inclusion_proof(0, N + 1), "tree_size", f"log's size {N}, got {N + 1}"),
    ("inclusion index = size", lambda r: r.inclusion_proof(N, N), "index", f"got {N}"),
    ("inclusion index > size", lambda r: r.inclusion_proof(20, 10), "index", "must be in [0, 10)"),
    ("inclusion negative index", lambda r: r.inclusion_proof(-1, 5), "index", "got -1"),
    ("inclusion size 0", lambda r: r.inclusion_proof(0, 0), "index", "must be in [0, 0)"),
    ("inclusion negative size", lambda r: r.inclusion_proof(0, -1), "tree_size", "got -1"),
    ("consistency beyond size", lambda r: r.consistency_proof(5, N + 1), "size2", f"got {N + 1}"),
    ("consistency reversed", lambda r: r.consistency_proof(6, 5), "size1", "must be in [0, 5], got 6"),
    ("consistency negative", lambda r: r.consistency_proof(-1, 5), "size1", "got -1"),
    ("root beyond size", lambda r: r.root_at(N + 1), "tree_size", f"got {N + 1}"),
    ("root negative", lambda r: r.root_at(-1), "tree_size", "got -1"),
    ("entries beyond size", lambda r: r.entries(0, N + 1), "end", f"got {N + 1}"),
    ("entries reversed", lambda r: r.entries(5, 4), "start", "got [5, 4)"),
    ("entries negative", lambda r: r.entries(-1, 4), "start", "got [-1, 4)"),
    ("entries too many", lambda r: r.entries(0, MAX_ENTRIES_PER_READ + 1), "end", "at most 10000"),
    ("leaf hashes beyond size", lambda r: r.leaf_hashes(N - 1, N + 1), "end", f"got {N + 1}"),
    ("leaf hashes negative", lambda r: r.leaf_hashes(-1, 5), "start", "got [-1, 5)"),
    ("leaf hashes reversed", lambda r: r.leaf_hashes(10, 5), "start", "got [10, 5)"),
]


def test_out_of_range_reads_name_the_field(filled: tuple[Log, list[Recorded]]) -> None:
    log, _ = filled
    for what, call, field, reason in OUT_OF_RANGE:
        with pytest.raises(InvalidArgumentError) as err:
            call(log.reader)
        assert (err.value.field, what) == (field, what)
        assert reason in err.value.reason, what


def test_empty_log_reads(log: Log) -> None:
    assert log.reader.root_at(0) == EMPTY_ROOT
    assert log.reader.consistency_proof(0, 0) == []
    assert log.reader.entries(0, 0) == []
    assert log.reader.leaf_hashes(0, 0) == []
    with pytest.raises(InvalidArgumentError) as err:
        log.reader.inclusion_proof(0, 1)
    assert err.value.field == "tree_size"
    # Recorded but not integrated: still beyond the log's size.
    append(log, Submission(ocid=OCIDS[0], type="tender.planned", payload={}), now=T0)
    with pytest.raises(InvalidArgumentError) as err:
        log.reader.entries(0, 1)
    assert (err.value.field, err.value.reason) == ("end", "must be between 0 and the log's size 0, got 1")
    log.integrate(now=T0)
    (entry,) = log.reader.entries(0, 1)
    assert log.reader.inclusion_proof(0, 1) == []
    assert log.reader.root_at(1) == entry.leaf_hash == leaf(entry.envelope)


@pytest.mark.parametrize("ocid", ["ocds-abc123-none", "not an ocid", ""])
def test_unknown_tender(log: Log, ocid: str) -> None:
    append(log, Submission(ocid=OCIDS[0], type="tender.planned", payload={}), now=T0)
    with pytest.raises(NotFoundError) as err:
        log.reader.tender(ocid)
    assert str(err.value) == f"tender {ocid!r} not found"
    with pytest.raises(NotFoundError) as err:
        log.reader.tender_events(ocid)
    assert str(err.value) == f"tender {ocid!r} not found"


def test_checkpoint(filled: tuple[Log, list[Recorded]]) -> None:
    log, recorded = filled
    cp = log.checkpoint()
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, N, reference.mth(_data(recorded)))
    assert cp.to_text().startswith(f"{ORIGIN}\n{N}\n")
