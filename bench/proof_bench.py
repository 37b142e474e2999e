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
* the product, ``LogReader.inclusion_proof`` / ``consistency_proof`` (a read transaction that
  checks the size, then the nodes), with the tile cache warm (every tile read once), cold (a
  fresh cache), and without a cache (what it did before).

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

from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.log_bench import machine
from ledger.core import proof, tiles
from ledger.log import Log
from ledger.store.db import normalize_url, write_transaction
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


def median_ms(call: Callable[[int], object], samples: list[int]) -> float:
    times = []
    for sample in samples:
        start = time.perf_counter()
        call(sample)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


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
                # Interleaved so that a noisy neighbour hits them alike; the same proofs each.
                for label, reader in (("cold cache", cold), ("no cache", uncached), ("warm cache", warm)):
                    call = getattr(reader, product)
                    fn = (lambda i, c=call: c(i, size)) if kind == "inclusion" else (lambda m, c=call: c(m, size))
                    assert fn(args[0]) == floor(args[0])
                    out[f"{kind} proof, {label} (ms)"] = median_ms(fn, args)
                out[f"{kind} proof from memory: floor (ms)"] = median_ms(floor, args)
                out[f"{kind} proof from memory, every node precomputed (ms)"] = median_ms(lookups, args)
                out[f"{kind} proof, warm cache / floor"] = (
                    out[f"{kind} proof, warm cache (ms)"] / out[f"{kind} proof from memory: floor (ms)"]
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
