"""What the heads commitment (docs/spec.md §14-15) costs:

1. bytes completeness adds to a 100-event bundle in a log of ENTRIES entries over TENDERS tenders
   (the ``completeness`` member: the commitment entry with its inclusion proof, the committed head
   and its sparse Merkle proof), and the time to verify it (goal: ≤ 2 KB, ≤ 5 ms);
2. updating the commitment for UPDATE new entries spread over TENDERS tenders, in memory
   (ledger.core.heads) and in a SQLite database (ledger.store.heads, copy-on-write rows)
   (goal: ≤ 1 s);

each with a floor measured in the same run: bare SHA-256 of as many nodes as the update hashes
(and as the verification hashes), and the ratio.

    python bench/heads_bench.py                                   # 1,000,000 entries, 100,000 tenders
    python bench/heads_bench.py --entries 200000 --write bench/RESULTS-heads.md
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.core import heads, proof, tiles, verify  # noqa: E402
from ledger.core.bundle import COMPLETENESS_FULL, BundleEvent, Completeness, Inclusion  # noqa: E402
from ledger.core.canonical import canonical_bytes, sha256_hex  # noqa: E402
from ledger.core.envelope import Envelope  # noqa: E402
from ledger.store import heads as heads_store  # noqa: E402
from ledger.store.db import migrate, open_engine, write_transaction  # noqa: E402

ORIGIN = "tenders.example.gov/log"


def _tree(leaves: list[bytes]) -> dict[tiles.TileID, bytes]:
    """The tiles of a log of ``leaves`` (in memory, as the database keeps them)."""
    store: dict[tiles.TileID, bytes] = {}
    size = 0
    for start in range(0, len(leaves), 65536):
        chunk = leaves[start : start + 65536]
        result = tiles.integrate(size, chunk, lambda ids: {t: store[t] for t in ids if t in store})
        store.update(result.tiles)
        size = result.size
    return store


def _completeness_bench(entries: int, tenders: int) -> dict[str, float]:
    rng = random.Random(15)
    ocids = [f"ocds-abc123-{i:07d}" for i in range(tenders)]
    # Heads: every tender has entries; the bundle's tender has 100 events.
    tree = heads.MemoryTree()
    tree.apply(heads.Leaf(heads.key(o), rng.randrange(1, 20), rng.randbytes(32)) for o in ocids)
    mine = ocids[0]
    head = rng.randbytes(32)
    tree.apply([heads.Leaf(heads.key(mine), 100, head)])
    heads_root = tree.versions[-1]
    payload = {"heads_root": heads_root.hex(), "tenders": tenders, "tree_size": entries - 1}
    envelope = Envelope(
        origin=ORIGIN,
        ocid=heads.HEADS_OCID,
        seq=41,
        prev="ab" * 32,
        type=heads.HEADS_TYPE,
        recorded_at="2026-12-06T11:00:00.000000Z",
        payload_sha256=sha256_hex(canonical_bytes(payload)),
    )
    leaf = envelope.leaf_hash()
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(entries - 1)] + [leaf]
    store = _tree(leaves)
    nodes = proof.inclusion(entries - 1, entries)
    path = nodes.assemble(tiles.read_nodes(nodes.ids, lambda ids: {t: store[t] for t in ids if t in store}))
    root_nodes = proof.root(entries)
    root = root_nodes.assemble(tiles.read_nodes(root_nodes.ids, lambda ids: {t: store[t] for t in ids if t in store}))[
        0
    ]
    p = tree.prove(len(tree.versions) - 1, heads.key(mine))
    completeness = Completeness(
        commitment=BundleEvent(
            index=entries - 1,
            envelope=envelope,
            payload=payload,
            withheld=None,
            leaf_hash=leaf,
            inclusion=Inclusion(tree_size=entries, path=tuple(path)),
        ),
        head_size=100,
        head_leaf_hash=head,
        siblings=p.siblings,
        other=None,
    )
    member = json.dumps({"completeness": completeness.to_json()}, separators=(",", ":")).encode()
    pretty = json.dumps({"completeness": completeness.to_json()}, indent=1).encode()
    full = dataclasses.replace(completeness, encoding=COMPLETENESS_FULL)
    full_member = json.dumps({"completeness": full.to_json()}, separators=(",", ":")).encode()

    def check() -> None:
        c = completeness.commitment
        digest = sha256_hex(canonical_bytes(c.payload))
        assert digest == c.envelope.payload_sha256
        assert c.envelope.leaf_hash() == c.leaf_hash
        assert c.inclusion is not None
        verify.verify_inclusion(entries - 1, entries, c.leaf_hash, c.inclusion.path, root)
        heads.verify(heads_root, heads.key(mine), 100, head, completeness.siblings, None)

    runs = 200
    check()
    started = time.perf_counter()
    for _ in range(runs):
        check()
    verify_s = (time.perf_counter() - started) / runs
    hashed = len(path) + len(completeness.siblings) + 3
    blob = rng.randbytes(65)
    started = time.perf_counter()
    for _ in range(runs):
        for _ in range(hashed):
            hashlib.sha256(blob).digest()
    floor_s = (time.perf_counter() - started) / runs
    return {
        "bytes_compact": len(member),
        "bytes_pretty": len(pretty),
        "bytes_full": len(full_member),
        "inclusion_path": len(path),
        "siblings": len(completeness.siblings),
        "verify_ms": verify_s * 1000,
        "verify_floor_ms": floor_s * 1000,
        "hashes": hashed,
    }


#: SQLite update rounds (the median is reported: the machine's cores are shared).
ROUNDS = 3


def _changes(rng: random.Random, keys: list[bytes], update: int) -> list[heads.Leaf]:
    """``update`` new entries over random tenders of ``keys``: each changed tender's newest head
    (its size is made up: the tree's work does not depend on it)."""
    changed: dict[bytes, heads.Leaf] = {}
    for _ in range(update):
        k = rng.choice(keys)
        n = changed[k].size + 1 if k in changed else 2
        changed[k] = heads.Leaf(k, n, rng.randbytes(32))
    return list(changed.values())


def _update_bench(tenders: int, update: int) -> dict[str, float]:
    rng = random.Random(16)
    keys = [heads.key(f"ocds-abc123-{i:07d}") for i in range(tenders)]
    base = heads.update(None, (heads.Leaf(k, 1, k) for k in keys), lambda d, p: {})
    # The base tree's nodes by depth, read through a plain dict (the update's own cost).
    by_depth: dict[int, dict[bytes, heads.Node]] = {}
    for (depth, prefix), node in base.writes.items():
        by_depth.setdefault(depth, {})[prefix] = node

    def read(depth: int, prefixes: Sequence[bytes]) -> dict[bytes, heads.Node]:
        level = by_depth.get(depth, {})
        return {p: level[p] for p in prefixes if p in level}

    # UPDATE new entries over random tenders: each changed tender gets its newest head.
    changed = {leaf.key: leaf for leaf in _changes(rng, keys, update)}
    started, cpu = time.perf_counter(), time.process_time()
    result = heads.update(by_depth[0][heads.EMPTY], changed.values(), read)
    memory_s, memory_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    computed = len(result.writes)
    blob = rng.randbytes(65)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(computed):
        hashlib.sha256(blob).digest()
    floor_s, floor_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    # The same in SQLite, as the log keeps it (open_engine's WAL and synchronous=FULL, the
    # migrated schema with heads_nodes' append-only triggers): the base tree's rows, then ROUNDS
    # rounds of UPDATE new entries each, read (newest version) and written through the store.
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{Path(tmp) / 'heads.db'}")
        migrate(engine)
        with write_transaction(engine) as conn:
            heads_store.write(conn, 0, base.writes, heads_store.Strata(conn, -1))
        walls: list[float] = []
        cpus: list[float] = []
        rounds = [list(changed.values())] + [_changes(rng, keys, update) for _ in range(ROUNDS - 1)]
        for version, round_changes in enumerate(rounds, start=1):
            started, cpu = time.perf_counter(), time.process_time()
            with write_transaction(engine) as conn:
                up = heads_store.update(conn, version, round_changes)
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
            if version == 1:
                first_root = up.root
        # Floor: the same database doing the bare work, through the driver: as many rows of the
        # same shape inserted in one executemany, as many primary-key probes as positions read.
        rows = [(d, p, 99, n.hash, None, None, None) for (d, p), n in result.writes.items()]
        probes = [(d, p) for (d, p) in base.writes][: 2 * len(result.writes)]
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            started, cpu = time.perf_counter(), time.process_time()
            cur.execute("BEGIN IMMEDIATE")
            cur.executemany("INSERT INTO heads_nodes VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            for d, p in probes:
                cur.execute("SELECT hash FROM heads_nodes WHERE depth = ? AND prefix = ? AND version = 0", (d, p))
                cur.fetchone()
            cur.execute("COMMIT")
            sqlite_floor_s, sqlite_floor_cpu_s = time.perf_counter() - started, time.process_time() - cpu
        finally:
            raw.close()
        engine.dispose()
    sqlite_s, sqlite_cpu_s = statistics.median(walls), statistics.median(cpus)
    assert first_root == result.root
    return {
        "changed_tenders": len(changed),
        "nodes_written": computed,
        "memory_s": memory_s,
        "sqlite_s": sqlite_s,
        "memory_cpu_s": memory_cpu_s,
        "floor_cpu_s": floor_cpu_s,
        "sqlite_cpu_s": sqlite_cpu_s,
        "sqlite_floor_cpu_s": sqlite_floor_cpu_s,
        "sqlite_floor_s": sqlite_floor_s,
        "probes": len(probes),
        "floor_s": floor_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--tenders", type=int, default=100_000)
    parser.add_argument("--update", type=int, default=10_000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    c = _completeness_bench(args.entries, args.tenders)
    u = _update_bench(args.tenders, args.update)
    lines = [
        "# Heads commitment: bundle bytes, verification, update cost",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {platform.machine()},"
        f" `python bench/heads_bench.py --entries {args.entries} --tenders {args.tenders} --update {args.update}`"
        " (the machine's 2 cores were shared with other jobs: times are upper bounds).",
        "",
        f"## Completeness in a 100-event bundle, log of {args.entries:,} entries, {args.tenders:,} tenders",
        "",
        "| figure | value | goal |",
        "|---|---|---|",
        f"| bytes added (`completeness` member, compact JSON) | {c['bytes_compact']:,} | ≤ 2,048 |",
        f"| bytes added (indented as `tenderproof bundle` prints) | {c['bytes_pretty']:,} | |",
        f"| the same proof in the full encoding of the first bundle/2 (compact JSON) | {c['bytes_full']:,} | |",
        f"| of which: commitment inclusion path | {c['inclusion_path']} hashes | |",
        f"| of which: heads proof siblings | {c['siblings']} hashes | |",
        f"| verification time (payload, leaf, inclusion, heads proof) | {c['verify_ms']:.3f} ms | ≤ 5 ms |",
        f"| floor: bare SHA-256 of the {c['hashes']:.0f} hashes it computes | {c['verify_floor_ms']:.3f} ms"
        f" (ratio {c['verify_ms'] / c['verify_floor_ms']:.1f}) | |",
        "",
        f"## Updating the commitment: {args.update:,} new entries over {args.tenders:,} tenders",
        "",
        "Wall-clock time, and the process's CPU time (what the work costs when the cores are not"
        " shared; SQLite runs in the process, so its work is counted; the disk's waits are not).",
        "",
        "| figure | wall | CPU | goal |",
        "|---|---|---|---|",
        f"| tenders changed | {u['changed_tenders']:,} | | |",
        f"| nodes hashed and written | {u['nodes_written']:,} | | |",
        f"| in memory (ledger.core.heads.update, nodes read from a dict) | {u['memory_s']:.3f} s"
        f" | {u['memory_cpu_s']:.3f} s | ≤ 1 s |",
        f"| SQLite, read + hash + write the versioned rows (ledger.store.heads; median of {ROUNDS} rounds,"
        " the migrated schema with its triggers, WAL, synchronous=FULL)"
        f" | {u['sqlite_s']:.3f} s"
        f" | {u['sqlite_cpu_s']:.3f} s | ≤ 1 s |",
        f"| floor: bare SHA-256 of as many nodes | {u['floor_s']:.3f} s | {u['floor_cpu_s']:.3f} s | |",
        f"| ratio in memory / its floor | {u['memory_s'] / u['floor_s']:.0f} |"
        f" {u['memory_cpu_s'] / max(u['floor_cpu_s'], 1e-9):.0f} | |",
        f"| floor: SQLite through the driver, one executemany of as many rows + {u['probes']:,} primary-key"
        f" probes | {u['sqlite_floor_s']:.3f} s | {u['sqlite_floor_cpu_s']:.3f} s | |",
        f"| ratio SQLite / its floor | {u['sqlite_s'] / u['sqlite_floor_s']:.1f} |"
        f" {u['sqlite_cpu_s'] / max(u['sqlite_floor_cpu_s'], 1e-9):.1f} | |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
