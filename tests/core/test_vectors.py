"""The JSON vectors in tests/assets/rfc9162 (data, kept forever) against ledger.core."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ledger.core import merkle, proof, tiles, verify
from ledger.core.errors import InvalidArgumentError, ProofShapeError, RootMismatchError

from . import reference as ref
from .test_merkle import TileStore

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "rfc9162"
ROOT = Path(__file__).resolve().parents[2]
ERRORS: dict[str, type[Exception]] = {
    "root_mismatch": RootMismatchError,
    "proof_shape": ProofShapeError,
    "invalid_argument": InvalidArgumentError,
}


@cache
def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ASSETS / name).read_text())
    assert doc["format"] == "tenderproof-vectors/1"
    return doc


def _h(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_vector_files_cover_the_required_sizes() -> None:
    inclusion = _load("inclusion.json")["cases"]
    consistency = _load("consistency.json")["cases"]
    sizes = {c["tree_size"] for c in inclusion if c["want_err"] is None}
    assert set(range(1, 301)) <= sizes and {1000, 4096, 65537, 100000} <= sizes
    assert set(range(1, 301)) <= {c["size2"] for c in consistency if c["want_err"] is None}
    for cases in (inclusion, consistency):
        kinds = {c["want_err"] for c in cases}
        assert kinds == {None, "root_mismatch", "proof_shape", "invalid_argument"}


def test_inclusion_vectors() -> None:
    for case in _load("inclusion.json")["cases"]:
        args = (case["leaf_index"], case["tree_size"], bytes.fromhex(case["leaf_hash"]), _h(case["proof"]))
        root = bytes.fromhex(case["root"])
        if case["want_err"] is None:
            verify.verify_inclusion(*args, root)
        else:
            with pytest.raises(ERRORS[case["want_err"]]):
                verify.verify_inclusion(*args, root)


def test_consistency_vectors() -> None:
    for case in _load("consistency.json")["cases"]:
        args = (case["size1"], case["size2"], bytes.fromhex(case["root1"]), bytes.fromhex(case["root2"]))
        if case["want_err"] is None:
            verify.verify_consistency(*args, _h(case["proof"]))
        else:
            with pytest.raises(ERRORS[case["want_err"]]):
                verify.verify_consistency(*args, _h(case["proof"]))


def test_valid_vectors_are_what_the_tiles_produce() -> None:
    store = TileStore()
    data = ref.leaves(100_000)
    store.append([merkle.leaf_hash(d) for d in data])
    for case in _load("inclusion.json")["cases"]:
        if case["want_err"] is None:
            m, n = case["leaf_index"], case["tree_size"]
            nodes = proof.inclusion(m, n)
            assert nodes.assemble(tiles.read_nodes(nodes.ids, store.read)) == _h(case["proof"]), case["desc"]
            assert merkle.leaf_hash(data[m]).hex() == case["leaf_hash"]
    for case in _load("consistency.json")["cases"]:
        if case["want_err"] is None:
            nodes = proof.consistency(case["size1"], case["size2"])
            assert nodes.assemble(tiles.read_nodes(nodes.ids, store.read)) == _h(case["proof"]), case["desc"]


def test_vectors_regenerate_identically() -> None:
    """The files are exactly what tools/gen_vectors.py makes: they cannot drift silently."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_vectors.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
