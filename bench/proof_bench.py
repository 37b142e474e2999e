"""Proofs at 1,000,000 entries from the database against the same proofs from memory.

    python bench/proof_bench.py                          # both engines, 1,000,000 entries
    python bench/proof_bench.py --engine sqlite --entries 100000 --samples 500
    python bench/proof_bench.py --write bench/RESULTS-proofs.md

The tree (tiles of random leaf hashes) is built in memory once with ledger.core.tiles, written
to a fresh database of each engine (the tiles table and the tree head, as integration leaves
them), then the same random inclusion and consistency proofs are timed:

* floor: ``ledger.core.tiles.read_nodes`` over the tiles held in a dict (no database, the same
  node computation): "the same proof from memory" of issue 20; and, for context, the same with
  every node precomputed (dictionary lookups only);
* the product, ``LogReader.inclusion_proof`` / ``consistency_proof``, with the tile cache warm
  (every tile read once: a size the reader has seen, every node in memory, no query), cold (a
  fresh reader: a read transaction that checks the size, then the tiles), and without a cache
  (what it did before);
* for context, one read of the tree head through the same engine (the least database work a
  proof that asks the database does).

All are interleaved sample by sample, so a busy machine slows them alike.

PostgreSQL: a scratch database on TENDERPROOF_TEST_PG_URL (default
postgresql://postgres@127.0.0.1:5432/test), dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.log_bench import machine
from ledger.core import proof, tiles
from ledger.log import Log
from ledger.store.db import normalize_url, read_transaction, write_transaction
from ledger.store.reader import LogReader
from ledger.store.schema import log_state
from ledger.store.schema import tiles as tiles_table
from ledger.store.tile_cache import TileRowCache
from tests.pg import scratch_database

ORIGIN = "bench.tenderproof/proofs"
PG_ADMIN = normalize_url(os.environ.get("TENDERPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))


def build(entries: int, rng: random.Random) -> tuple[dict[tiles.TileID, bytes], bytes]:
    store: dict[tiles.TileID, bytes] = {}
    size, root = 0, b""
    for start in range(0, entries, 65_536):
        leaves = [rng.randbytes(32) for _ in range(min(65_536, entries - start))]
        result = tiles.integrate(size, leaves, lambda ids: {t: store[t] for t in ids if t in store})
        store.update(result.tiles)
        size, root = result.size, result.root
    return store, root


@contextmanager
def database(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/proofs.sqlite3"
    else:
        with scratch_database(PG_ADMIN, prefix="proofbench") as url:
            yield url


def medians_ms(calls: dict[str, Callable[[int], object]], samples: list[int]) -> dict[str, float]:
    """The median time of each call over ``samples``, the calls interleaved sample by sample so
    that a noisy neighbour slows them alike (the ratios hold on a busy machine)."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    for sample in samples:
        for label, call in calls.items():
            start = time.perf_counter()
            call(sample)
            times[label].append((time.perf_counter() - start) * 1000)
    return {label: statistics.median(values) for label, values in times.items()}


def size_check(log: Log) -> int:
    """One read of the tree head through the log's engine (a pooled connection, a read
    transaction): the least a proof that asks the database costs."""
    with read_transaction(log.engine) as conn:
        return int(conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar_one())


def run(engine: str, store: dict[tiles.TileID, bytes], size: int, root: bytes, samples: int) -> dict[str, float]:
    rng = random.Random(20)
    indices = [rng.randrange(size) for _ in range(samples)]
    olds = [rng.randrange(1, size) for _ in range(samples)]

    def memory(nodes: proof.ProofNodes, cache: TileRowCache | None = None) -> list[bytes]:
        return nodes.assemble(tiles.read_nodes(nodes.ids, lambda ids: {t: store[t] for t in ids if t in store}, cache))

    precomputed = TileRowCache()  # every node precomputed: the proof is lookups only
    for tile, data in store.items():
        precomputed.put(tile, tiles.tile_rows(data))

    out: dict[str, float] = {}
    with database(engine) as url:
        log = Log.open(url, origin=ORIGIN)
        try:
            with write_transaction(log.engine) as conn:
                rows = [{"level": t.level, "idx": t.index, "hashes": data} for t, data in store.items()]
                for start in range(0, len(rows), 5_000):
                    conn.execute(insert(tiles_table), rows[start : start + 5_000])
                conn.execute(update(log_state).where(log_state.c.id == 1).values(size=size, root=root))
            for kind, product, floor, lookups, args in (
                (
                    "inclusion",
                    "inclusion_proof",
                    lambda i: memory(proof.inclusion(i, size)),
                    lambda i: memory(proof.inclusion(i, size), precomputed),
                    indices,
                ),
                (
                    "consistency",
                    "consistency_proof",
                    lambda m: memory(proof.consistency(m, size)),
                    lambda m: memory(proof.consistency(m, size), precomputed),
                    olds,
                ),
            ):
                uncached = LogReader(log.engine, tile_cache=TileRowCache(0))
                cold = LogReader(log.engine)
                warm = LogReader(log.engine)
                for i in range(0, size, tiles.TILE_WIDTH):  # every tile read once
                    warm.inclusion_proof(i, size)
                calls: dict[str, Callable[[int], object]] = {}
                for label, reader in (("cold cache", cold), ("no cache", uncached), ("warm cache", warm)):
                    call = getattr(reader, product)
                    calls[label] = lambda a, c=call: c(a, size)
                    assert calls[label](args[0]) == floor(args[0])
                calls["from memory: floor"] = floor
                calls["one tree-head query (context)"] = lambda _a: size_check(log)
                calls["from memory, every node precomputed"] = lookups
                for label, ms in medians_ms(calls, args).items():
                    out[f"{kind} proof, {label} (ms)"] = ms
                out[f"{kind} proof, warm cache / floor"] = (
                    out[f"{kind} proof, warm cache (ms)"] / out[f"{kind} proof, from memory: floor (ms)"]
                )
        finally:
            log.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Proofs from the database against proofs from memory.")
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--write", type=Path, help="also write the results as markdown to this file")
    args = parser.parse_args()
    store, root = build(args.entries, random.Random(2026))
    engines = ["sqlite", "postgresql"] if args.engine == "both" else [args.engine]
    results = {engine: run(engine, store, args.entries, root, args.samples) for engine in engines}
    metrics = list(next(iter(results.values())))
    lines = ["| metric | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
    for metric in metrics:
        lines.append(f"| {metric} | " + " | ".join(f"{results[e][metric]:.3f}" for e in engines) + " |")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = (
        f"Proofs, {stamp}, {args.entries:,} entries, {args.samples:,} random proofs of each kind, medians\n"
        f"Machine: {machine()}\n\n" + "\n".join(lines) + "\n"
    )
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
