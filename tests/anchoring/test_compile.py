"""The contract compiles offline through py-solc-x to exactly the committed artifact."""

from __future__ import annotations

import copy

from anchoring import compile as build


def test_fresh_build_equals_the_committed_artifact() -> None:
    fresh = build.build()
    committed = build.load_artifact()
    assert build.differences(fresh, committed) == []
    assert fresh["compiler"]["version"] == "0.8.28+commit.7893614a"
    names = {item.get("name") for item in fresh["abi"]}
    assert {"anchor", "latest", "rootAt", "verifyInclusion", "Anchored", "grantAnchorer", "revokeAnchorer"} <= names


def test_a_changed_artifact_is_detected() -> None:
    fresh = build.build()
    tampered = copy.deepcopy(fresh)
    tampered["bytecode"] = tampered["bytecode"][:-2] + ("00" if tampered["bytecode"][-2:] != "00" else "01")
    tampered["abi"] = tampered["abi"][1:]
    assert build.differences(fresh, tampered) == ["abi", "bytecode"]


def test_check_command_passes(capsys: object) -> None:
    assert build.main(["--check"]) == 0
