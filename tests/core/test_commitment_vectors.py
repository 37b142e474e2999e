"""The envelope v2 vectors in tests/assets/commitment (data, kept forever; docs/spec.md §2.5) against
ledger.core: commitments, disclosures, leaf data and hashes, withholding, and the named errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.core import commitment
from ledger.core.envelope import Envelope
from ledger.core.errors import InvalidArgumentError
from ledger.procurement import privacy

ROOT = Path(__file__).resolve().parents[2]
DOC: dict[str, Any] = json.loads((ROOT / "tests" / "assets" / "commitment" / "vectors.json").read_text("utf-8"))


def test_the_file_has_its_format_and_cases() -> None:
    assert DOC["format"] == "tenderproof-vectors/1"
    assert len(DOC["cases"]) == 3 and len(DOC["invalid"]) == 6


@pytest.mark.parametrize("case", DOC["cases"], ids=lambda c: c["desc"])
def test_case(case: dict[str, Any]) -> None:
    seed = bytes.fromhex(case["seed"])
    bound, disclosure = commitment.new_commitment(case["payload"], case["fields"], seed=seed)
    assert (bound, disclosure) == (case["commitment"], case["disclosure"])
    assert disclosure["salt"] == case["payload_salt"]
    assert {p: e["salt"] for p, e in disclosure["fields"].items()} == case["field_salts"]
    envelope = Envelope.from_json(case["envelope"])
    assert envelope.canonical_bytes() == case["leaf_data"].encode("utf-8")
    assert envelope.leaf_hash().hex() == case["leaf_hash"]
    assert envelope.payload_binding(case["payload"], disclosure=case["disclosure"]) == case["commitment"]
    held = case["withheld"]
    if held["fields"]:
        body, after = commitment.withhold_fields(case["payload"], disclosure, held["fields"], held["order"])
        assert (body, after) == (held["body"], held["disclosure"])
        assert {p: after["fields"][p]["digest"] for p in held["fields"]} == {
            p: case["digests"][p] for p in held["fields"]
        }
        assert commitment.withheld_fields(after) == dict.fromkeys(held["fields"], held["order"])
    assert commitment.recompute(held["body"], held["disclosure"]) == case["commitment"]


def test_the_sole_traders_f_is_what_the_default_rules_mark() -> None:
    case = DOC["cases"][1]
    kind = case["envelope"]["type"]
    assert (
        list(privacy.committed_fields(privacy.places(kind, case["payload"], privacy.rules_of_file(None))))
        == case["fields"]
    )


@pytest.mark.parametrize("case", DOC["invalid"], ids=lambda c: c["desc"])
def test_invalid(case: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        commitment.recompute(case["payload"], case["disclosure"])
    assert caught.value.field == case["want_err"]


def test_file_is_what_the_tool_makes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_commitment_vectors.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
