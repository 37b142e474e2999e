"""The heads-commitment vectors in tests/assets/heads (data, kept forever) against ledger.core.heads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.core import heads
from ledger.core.errors import ProofShapeError, RootMismatchError, VerificationError

from . import heads_reference as ref

ROOT = Path(__file__).resolve().parents[2]
DOC: dict[str, Any] = json.loads((ROOT / "tests" / "assets" / "heads" / "vectors.json").read_text())


def _other(o: dict[str, Any] | None) -> heads.Leaf | None:
    return None if o is None else heads.Leaf(bytes.fromhex(o["key"]), o["size"], bytes.fromhex(o["leaf_hash"]))


def test_maps_have_the_reference_roots() -> None:
    assert DOC["format"] == "tenderproof-vectors/1"
    assert len(DOC["maps"]) == 5
    for m in DOC["maps"]:
        values = {heads.key(o): (v["size"], bytes.fromhex(v["head"])) for o, v in m["heads"].items()}
        assert ref.root(values).hex() == m["heads_root"]
        assert heads.root(heads.Leaf(k, s, h) for k, (s, h) in values.items()).hex() == m["heads_root"]
        assert m["tenders"] == len(values)


@pytest.mark.parametrize("case", DOC["cases"], ids=[c["desc"] for c in DOC["cases"]])
def test_case(case: dict[str, Any]) -> None:
    assert heads.key(case["ocid"]).hex() == case["key"]
    args = (
        bytes.fromhex(case["heads_root"]),
        bytes.fromhex(case["key"]),
        case["size"],
        None if case["head"] is None else bytes.fromhex(case["head"]),
        [bytes.fromhex(s) for s in case["siblings"]],
        _other(case["other"]),
    )
    want = case["want_err"]
    if want is None:
        heads.verify(*args)
        return
    expected: type[Exception] = {
        "root_mismatch": RootMismatchError,
        "proof_shape": ProofShapeError,
        "not_canonical": VerificationError,
        "bad_other": VerificationError,
    }[want]
    with pytest.raises(expected) as info:
        heads.verify(*args)
    if want in ("not_canonical", "bad_other"):
        assert not isinstance(info.value, RootMismatchError)


def test_every_kind_is_covered() -> None:
    kinds = {c["want_err"] for c in DOC["cases"]}
    assert kinds == {None, "root_mismatch", "proof_shape", "not_canonical", "bad_other"}


def test_file_is_what_the_tool_makes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_heads_vectors.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
