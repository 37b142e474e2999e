"""Reads from the store: proofs verify, roots of past sizes, entries, errors named."""

from __future__ import annotations

import random

import pytest

from ledger.core import verify
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.core.merkle import leaf_hash, root_from_leaf_hashes
from ledger.log import Log
from ledger.sequencer import Submission
from tests.conftest import T0

N = 1100


@pytest.fixture
def filled(log: Log) -> tuple[Log, list[bytes]]:
    """A log of N entries integrated in uneven batches, so tree_heads has only some sizes."""
    log.append_many(
        [Submission(ocid=f"ocds-abc123-{i % 13}", type="tender.amended", payload={"i": i}) for i in range(N)], now=T0
    )
    log.integrate_all(now=T0, batch_size=333)
    leaves = [leaf_hash(e.envelope) for e in log.reader.entries(0, N)]
    return log, leaves


def test_proofs_verify_across_tile_boundaries(filled: tuple[Log, list[bytes]]) -> None:
    log, leaves = filled
    rng = random.Random(1)
    reader = log.reader
    for size in [1, 2, 255, 256, 257, 333, 500, 666, 1024, 1025, N]:
        root = reader.root_at(size)
        assert root == root_from_leaf_hashes(leaves[:size])
        for index in {0, size - 1, *rng.sample(range(size), min(size, 6))}:
            verify.verify_inclusion(index, size, leaves[index], reader.inclusion_proof(index, size), root)
        for old in {1, size, *rng.sample(range(1, size + 1), min(size, 6))}:
            verify.verify_consistency(old, size, reader.root_at(old), root, reader.consistency_proof(old, size))


def test_entries_and_leaf_hashes(filled: tuple[Log, list[bytes]]) -> None:
    log, leaves = filled
    window = log.reader.entries(250, 260)
    assert [e.index for e in window] == list(range(250, 260))
    assert [e.leaf_hash for e in window] == leaves[250:260]
    assert log.reader.leaf_hashes(250, 260) == leaves[250:260]
    assert log.reader.leaf_hashes(0, N) == leaves
    assert log.reader.entries(5, 5) == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda r: r.inclusion_proof(0, N + 1), "tree_size"),
        (lambda r: r.inclusion_proof(N, N), "index"),
        (lambda r: r.inclusion_proof(-1, 5), "index"),
        (lambda r: r.consistency_proof(5, N + 1), "size2"),
        (lambda r: r.consistency_proof(6, 5), "size1"),
        (lambda r: r.root_at(N + 1), "tree_size"),
        (lambda r: r.entries(0, N + 1), "end"),
        (lambda r: r.entries(5, 4), "start"),
        (lambda r: r.entries(0, 20_000), "end"),
    ],
)
def test_out_of_range_reads_name_the_field(filled: tuple[Log, list[bytes]], call: object, field: str) -> None:
    log, _ = filled
    with pytest.raises(InvalidArgumentError) as err:
        call(log.reader)  # type: ignore[operator]
    assert err.value.field == field


def test_unknown_tender(log: Log) -> None:
    with pytest.raises(NotFoundError, match="tender 'ocds-abc123-none' not found"):
        log.reader.tender("ocds-abc123-none")
    with pytest.raises(NotFoundError):
        log.reader.tender_events("ocds-abc123-none")


def test_checkpoint_text(filled: tuple[Log, list[bytes]]) -> None:
    log, leaves = filled
    cp = log.checkpoint()
    assert (cp.origin, cp.size, cp.root) == ("tenderproof.test/log", N, root_from_leaf_hashes(leaves))
    assert cp.to_text().startswith(f"tenderproof.test/log\n{N}\n")
