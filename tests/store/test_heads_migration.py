"""Migration 0016: the heads tree's node rows (heads_nodes) become strata rows (heads_strata) with
nothing lost, every version's root checked on the way; and back, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence

import pytest
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from ledger.core import heads
from ledger.store import db, guards
from ledger.store import heads as heads_store
from ledger.store.db import read_transaction, write_transaction


def _near(base: bytes, depth: int) -> bytes:
    out = bytearray(base)
    out[depth // 8] ^= 1 << (7 - depth % 8)
    return bytes(out)


def _history() -> tuple[heads.MemoryTree, list[bytes]]:
    """Six versions over 600 random keys and keys sharing up to 255 bits: the node tree."""
    rng = random.Random(16)
    base = hashlib.sha256(b"base").digest()
    keys = [rng.randbytes(32) for _ in range(600)] + [base] + [_near(base, d) for d in (3, 8, 16, 31, 200, 255)]
    tree = heads.MemoryTree()
    sizes: dict[bytes, int] = {}
    for n in range(6):
        changed = rng.sample(keys, [1, 50, 300, 2, 600, 7][n])
        if n == 0:
            changed = [base]
        leaves = []
        for k in changed:
            sizes[k] = sizes.get(k, 0) + 1
            leaves.append(heads.Leaf(k, sizes[k], hashlib.sha256(k + bytes([n])).digest()))
        tree.apply(leaves)
    return tree, keys


def _write_nodes(engine: Engine, tree: heads.MemoryTree) -> None:
    """heads_nodes as the store before 0016 wrote it: each version's changed positions."""
    rows = [
        {
            "d": depth,
            "p": prefix,
            "v": version,
            "h": node.hash,
            "k": node.key if type(node) is heads.Leaf else None,
            "n": node.size if type(node) is heads.Leaf else None,
            "x": node.head if type(node) is heads.Leaf else None,
        }
        for (depth, prefix), versions in tree._nodes.items()
        for version, node in versions
    ]
    with write_transaction(engine) as conn:
        conn.execute(
            text(
                "INSERT INTO heads_nodes (depth, prefix, version, hash, leaf_key, size, head)"
                " VALUES (:d, :p, :v, :h, :k, :n, :x)"
            ),
            rows,
        )


def _nodes_reader(conn: Connection, version: int) -> heads.Reader:
    def read(depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, heads.Node]:
        out: dict[bytes, heads.Node] = {}
        for p in prefixes:
            row = conn.execute(
                text(
                    "SELECT hash, leaf_key, size, head FROM heads_nodes WHERE depth = :d AND prefix = :p"
                    " AND version <= :v ORDER BY version DESC LIMIT 1"
                ),
                {"d": depth, "p": p, "v": version},
            ).first()
            if row is not None:
                out[p] = (
                    heads.Inner(bytes(row.hash))
                    if row.leaf_key is None
                    else heads.Leaf(bytes(row.leaf_key), int(row.size), bytes(row.head))
                )
        return out

    return read


def _check_strata(engine: Engine, tree: heads.MemoryTree, keys: list[bytes]) -> None:
    absent = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    with read_transaction(engine) as conn:
        for version, root in enumerate(tree.versions):
            node = heads_store.root_node(conn, version)
            assert node is not None and node.hash == root
            prove = heads_store.prover(conn, version)
            for k in [*keys, *absent]:
                assert prove(k) == tree.prove(version, k), (version, k.hex())


def _check_nodes(engine: Engine, tree: heads.MemoryTree, keys: list[bytes]) -> None:
    with read_transaction(engine) as conn:
        for version in range(len(tree.versions)):
            read = _nodes_reader(conn, version)
            root = read(0, [heads.EMPTY])[heads.EMPTY]
            for k in keys[::7] + keys[-7:]:
                assert heads.prove(root, k, read) == tree.prove(version, k), (version, k.hex())


@pytest.fixture
def at_0015(db_url: str) -> Iterator[Engine]:
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine, "0015")
        yield engine
    finally:
        engine.dispose()


def test_0016_converts_every_version_and_back(at_0015: Engine) -> None:
    tree, keys = _history()
    _write_nodes(at_0015, tree)
    db.migrate(at_0015)
    assert "heads_nodes" not in inspect(at_0015).get_table_names()
    _check_strata(at_0015, tree, keys)
    # The log goes on from there: the next version, as the sequencer writes it.
    grown = [heads.Leaf(k, 99, k) for k in keys[:40]]
    with write_transaction(at_0015) as conn:
        assert heads_store.update(conn, len(tree.versions), grown).root == tree.apply(grown).root
    _check_strata(at_0015, tree, keys)
    # Down again: the node rows give the same proofs at every version, and up again.
    db.downgrade(at_0015, "0015")
    assert "heads_strata" not in inspect(at_0015).get_table_names()
    _check_nodes(at_0015, tree, keys)
    with pytest.raises(DBAPIError, match="append-only"), write_transaction(at_0015) as conn:
        conn.execute(text("DELETE FROM heads_nodes"))
    db.migrate(at_0015)
    _check_strata(at_0015, tree, keys)


def test_0016_refuses_a_tree_changed_by_hand(at_0015: Engine) -> None:
    tree, _ = _history()
    _write_nodes(at_0015, tree)
    with write_transaction(at_0015) as conn:
        for ddl in guards.drop_immutable_rows_ddl(at_0015.dialect.name, "heads_nodes"):
            conn.execute(text(ddl))
        victim = conn.execute(
            text("SELECT leaf_key FROM heads_nodes WHERE version = 2 AND leaf_key IS NOT NULL LIMIT 1")
        ).scalar_one()
        changed = conn.execute(
            text("UPDATE heads_nodes SET size = size + 1 WHERE leaf_key = :k AND version = 2"), {"k": victim}
        )
        assert changed.rowcount == 1
    with pytest.raises(
        RuntimeError, match=r"heads_nodes version 2: its leaves give the root [0-9a-f]{64}, the table kept root"
    ):
        db.migrate(at_0015)
    # Nothing was changed: still at 0015, every node row kept.
    assert "heads_strata" not in inspect(at_0015).get_table_names()
    with read_transaction(at_0015) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0015"
        assert conn.execute(text("SELECT count(*) FROM heads_nodes")).scalar_one() == sum(
            len(v) for v in tree._nodes.values()
        )
