"""What the heads commitment (docs/spec.md §14-15) costs:

1. bytes completeness adds to a 100-event bundle in a log of ENTRIES entries over TENDERS tenders
   (the ``completeness`` member: the commitment entry with its inclusion proof, the committed head
   and its sparse Merkle proof), and the time to verify it (goal: ≤ 2 KB, ≤ 5 ms);
2. updating the commitment for UPDATE new entries spread over TENDERS tenders, in memory
   (ledger.core.heads node by node, ledger.core.strata by strata) and in SQLite and PostgreSQL
   databases (ledger.store.heads: strata rows, copy-on-write) (goal: ≤ 1 s);

each with a floor measured in the same run: bare SHA-256 of as many nodes as the update hashes
(and as the verification hashes), the bare SQL statements of a round in the same database, and
the ratio. PostgreSQL: a scratch database on TENDERPROOF_TEST_PG_URL (default
postgresql://postgres@127.0.0.1:5432/test).

    python bench/heads_bench.py                                   # 1,000,000 entries, 100,000 tenders
    python bench/heads_bench.py --engines sqlite --write bench/RESULTS-heads.md
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from ledger.core import heads, proof, strata, tiles, verify  # noqa: E402
from ledger.core.bundle import COMPLETENESS_FULL, BundleEvent, Completeness, Inclusion  # noqa: E402
from ledger.core.canonical import canonical_bytes, sha256_hex  # noqa: E402
from ledger.core.envelope import Envelope  # noqa: E402
from ledger.store import heads as heads_store  # noqa: E402
from ledger.store.db import migrate, open_engine, write_transaction  # noqa: E402
from tests.pg import scratch_database  # noqa: E402

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


#: Store update rounds per engine (the median is reported: the machine's cores are shared).
ROUNDS = 3
PG_ADMIN = os.environ.get("TENDERPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _changes(rng: random.Random, keys: list[bytes], update: int) -> list[heads.Leaf]:
    """``update`` new entries over random tenders of ``keys``: each changed tender's newest head
    (its size is made up: the tree's work does not depend on it)."""
    changed: dict[bytes, heads.Leaf] = {}
    for _ in range(update):
        k = rng.choice(keys)
        n = changed[k].size + 1 if k in changed else 2
        changed[k] = heads.Leaf(k, n, rng.randbytes(32))
    return list(changed.values())


def _timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``, its wall-clock time and the process's CPU time."""
    started, cpu = time.perf_counter(), time.process_time()
    out = work()
    return out, time.perf_counter() - started, time.process_time() - cpu


@contextmanager
def _database(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'heads.db'}"
        return
    with scratch_database(PG_ADMIN, prefix="tp_heads_bench") as url:
        yield url


def _server_cpu(pid: int | None) -> float:
    """CPU seconds used so far by the PostgreSQL backend ``pid`` (on this machine), 0 for none."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _store_bench(engine: str, keys: list[bytes], rounds: list[list[heads.Leaf]], want: bytes) -> dict[str, Any]:
    """ROUNDS commitments of ``rounds`` over a tree of ``keys`` as the log keeps it (open_engine's
    settings: on SQLite WAL and synchronous=FULL; the migrated schema with heads_strata's
    append-only triggers), each read + hashed + written through ledger.store.heads in its own
    write transaction. Then ROUNDS times the floor, in the same database: the bare statements,
    through the driver, of the first round: one executemany of its rows (the same bytes, under
    another version), one SELECT of as many rows by key per 2,000, the commit. On PostgreSQL the
    server's CPU time (its backend process, on this machine) is counted beside the client's."""
    with _database(engine) as url:
        db = open_engine(url, pool_size=1) if engine != "sqlite" else open_engine(url)
        try:
            migrate(db)
            with write_transaction(db) as conn:
                heads_store.update(conn, 0, [heads.Leaf(k, 1, k) for k in keys])
                pid = None if engine == "sqlite" else int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            walls: list[float] = []
            cpus: list[float] = []
            first: strata.Update | None = None
            for version, round_changes in enumerate(rounds, start=1):

                def commit(version: int = version, round_changes: list[heads.Leaf] = round_changes) -> strata.Update:
                    with write_transaction(db) as conn:
                        return heads_store.update(conn, version, round_changes)

                server = _server_cpu(pid)
                up, wall, cpu = _timed(commit)
                walls.append(wall)
                cpus.append(cpu + _server_cpu(pid) - server)
                if first is None:
                    first = up
                    assert up.root == want, f"{engine}: the store's root differs from the node tree's"
            assert first is not None
            probes = sorted(first.writes)
            m = "?" if db.dialect.paramstyle == "qmark" else "%s"
            floors: list[float] = []
            floor_cpus: list[float] = []
            for n in range(ROUNDS):
                rows = [(p, 10_000 + n, *heads_store.encode(items)) for p, items in first.writes.items()]
                with write_transaction(db) as conn:  # the same connection (one in the pool), its raw cursor
                    if pid is not None:
                        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid

                    def bare(rows: list[tuple[Any, ...]] = rows, conn: Any = conn) -> None:
                        cur = conn.connection.cursor()
                        cur.executemany(f"INSERT INTO heads_strata VALUES ({m}, {m}, {m}, {m})", rows)
                        for start in range(0, len(probes), 2000):
                            chunk = probes[start : start + 2000]
                            cur.execute(
                                f"SELECT inners, leaves FROM heads_strata WHERE version = {m}"
                                f" AND prefix IN ({', '.join([m] * len(chunk))})",
                                (1, *chunk),
                            )
                            cur.fetchall()
                        cur.close()
                        conn.connection.commit()

                    server = _server_cpu(pid)
                    _, floor_s, floor_cpu_s = _timed(bare)
                    floors.append(floor_s)
                    floor_cpus.append(floor_cpu_s + _server_cpu(pid) - server)
        finally:
            db.dispose()
    return {
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "walls": walls,
        "cpus": cpus,
        "floor": statistics.median(floors),
        "floor_cpu": statistics.median(floor_cpus),
        "rows": len(rows),
        "bytes": sum(len(r[2]) + len(r[3]) for r in rows),
    }


def _update_bench(tenders: int, update: int, engines: Sequence[str]) -> dict[str, Any]:
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
    result, memory_s, memory_cpu_s = _timed(lambda: heads.update(by_depth[0][heads.EMPTY], changed.values(), read))
    computed = len(result.writes)
    # The same in strata (ledger.core.strata), the base tree's strata read from a dict.
    base_strata = strata.update((heads.Leaf(k, 1, k) for k in keys), lambda prefixes: {}).writes

    def read_strata(prefixes: Sequence[bytes]) -> dict[bytes, strata.Items]:
        return {p: dict(base_strata[p]) for p in prefixes if p in base_strata}

    layered, strata_s, strata_cpu_s = _timed(lambda: strata.update(changed.values(), read_strata))
    assert layered.root == result.root
    positions = sum(len(strata.nodes(items)) for items in layered.writes.values())
    blob = rng.randbytes(65)

    def hash_floor(count: int) -> tuple[float, float]:
        def work() -> None:
            for _ in range(count):
                hashlib.sha256(blob).digest()

        return _timed(work)[1:]

    floor_s, floor_cpu_s = hash_floor(computed)
    strata_floor_s, strata_floor_cpu_s = hash_floor(positions)
    rounds = [list(changed.values())] + [_changes(rng, keys, update) for _ in range(ROUNDS - 1)]
    stores = {engine: _store_bench(engine, keys, rounds, result.root) for engine in engines}
    return {
        "changed_tenders": len(changed),
        "nodes_written": computed,
        "strata_written": len(layered.writes),
        "positions": positions,
        "memory_s": memory_s,
        "memory_cpu_s": memory_cpu_s,
        "floor_s": floor_s,
        "floor_cpu_s": floor_cpu_s,
        "strata_s": strata_s,
        "strata_cpu_s": strata_cpu_s,
        "strata_floor_s": strata_floor_s,
        "strata_floor_cpu_s": strata_floor_cpu_s,
        "stores": stores,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--tenders", type=int, default=100_000)
    parser.add_argument("--update", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite,postgresql", help="stores to measure (comma-separated)")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    c = _completeness_bench(args.entries, args.tenders)
    u = _update_bench(args.tenders, args.update, args.engines.split(","))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    lines = [
        "# Heads commitment: bundle bytes, verification, update cost",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {platform.machine()},"
        f" `python bench/heads_bench.py --entries {args.entries} --tenders {args.tenders} --update {args.update}`"
        f" (load average {' '.join(load_before)} at the start, {' '.join(load_after)} at the end, on 2 cores"
        " shared with other jobs: wall times are upper bounds, CPU times the work's own cost).",
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
        " shared; SQLite runs in the process, so its work is counted; on PostgreSQL the CPU time of the"
        " server's backend process is added to the client's; the disk's waits are in neither).",
        "",
        "| figure | wall | CPU | goal |",
        "|---|---|---|---|",
        f"| tenders changed | {u['changed_tenders']:,} | | |",
        f"| tree positions changed (rows per commitment when stored one per node, before migration 0016)"
        f" | {u['nodes_written']:,} | | |",
        f"| strata changed (rows per commitment in heads_strata) | {u['strata_written']:,} | | |",
        f"| in memory, node by node (ledger.core.heads.update, nodes read from a dict) | {u['memory_s']:.3f} s"
        f" | {u['memory_cpu_s']:.3f} s | |",
        f"| floor: bare SHA-256 of as many nodes | {u['floor_s']:.3f} s | {u['floor_cpu_s']:.3f} s | |",
        f"| in memory, by strata (ledger.core.strata.update, strata read from a dict) | {u['strata_s']:.3f} s"
        f" | {u['strata_cpu_s']:.3f} s | |",
        f"| floor: bare SHA-256 of the {u['positions']:,} positions of the changed strata | {u['strata_floor_s']:.3f} s"
        f" | {u['strata_floor_cpu_s']:.3f} s | |",
    ]
    for engine, st in u["stores"].items():
        floor, floor_cpu = st["floor"] + u["strata_floor_s"], st["floor_cpu"] + u["strata_floor_cpu_s"]
        lines += [
            f"| **{engine}**, read + hash + write the strata (ledger.store.heads, one write transaction;"
            f" median of {ROUNDS} rounds: CPU {', '.join(f'{x:.3f}' for x in st['cpus'])} s)"
            f" | **{st['wall']:.3f} s** | **{st['cpu']:.3f} s** | ≤ 1 s |",
            f"| {engine} floor: the bare statements through the driver ({st['rows']:,} rows of {st['bytes']:,} bytes"
            f" in one executemany, as many read back by key, 2,000 a SELECT, commit; median of {ROUNDS}) | {st['floor']:.3f} s"
            f" | {st['floor_cpu']:.3f} s | |",
            f"| {engine} ratio: store / (its floor + the strata's SHA-256 floor) | {st['wall'] / floor:.1f}"
            f" | {st['cpu'] / max(floor_cpu, 1e-9):.1f} | |",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
