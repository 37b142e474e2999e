"""The contract compiles offline through py-solc-x to exactly the committed artifact."""

from __future__ import annotations

import copy
import hashlib

from anchoring import compile as build

#: SHA-256 of version 1's runtime bytecode (hex text) as released before version 2 existed.
V1_RUNTIME_SHA256 = "00ce3b48847bf56e311785e3182815b0396f6f57ac7b43b3477d1a034f3f6d54"


def test_fresh_build_equals_the_committed_artifacts() -> None:
    fresh = build.build_all()
    assert sorted(fresh) == [1, 2]
    for version, artifact in fresh.items():
        assert build.differences(artifact, build.load_artifact(version)) == [], version
        assert artifact["compiler"]["version"] == "0.8.28+commit.7893614a"
        names = {item.get("name") for item in artifact["abi"]}
        assert {"anchor", "latest", "rootAt", "verifyInclusion", "Anchored", "grantAnchorer", "revokeAnchorer"} <= names
    assert build.load_artifact()["contractName"] == "ProcurementAnchorV2"


def _outputs(artifact: dict[str, object], name: str) -> list[str]:
    (function,) = [i for i in artifact["abi"] if i.get("name") == name]  # type: ignore[attr-defined]
    return [o["type"] for o in function["outputs"]]


def test_version_2_keeps_the_interface_but_roots_carry_no_time() -> None:
    v1, v2 = build.load_artifact(1), build.load_artifact(2)
    assert _outputs(v1, "rootAt") == ["bytes32", "uint64"]
    assert _outputs(v2, "rootAt") == ["bytes32"]
    assert _outputs(v2, "interfaceVersion") == ["uint256"]
    for name in ("latest", "anchor", "verifyInclusion"):
        assert _outputs(v1, name) == _outputs(v2, name)
    events = [[i for i in a["abi"] if i.get("name") == "Anchored"] for a in (v1, v2)]
    assert events[0] == events[1]  # same topic and fields: verifiers read both the same way
    errors = [sorted(i["name"] for i in a["abi"] if i["type"] == "error") for a in (v1, v2)]
    assert errors[0] == errors[1]


def test_version_1_runtime_code_is_what_was_deployed() -> None:
    """Contracts deployed by earlier releases are recognised by their runtime code: it must not change."""
    code = build.load_artifact(1)["deployedBytecode"]
    assert hashlib.sha256(code.encode()).hexdigest() == V1_RUNTIME_SHA256


def test_a_changed_artifact_is_detected() -> None:
    fresh = build.build()
    tampered = copy.deepcopy(fresh)
    tampered["bytecode"] = tampered["bytecode"][:-2] + ("00" if tampered["bytecode"][-2:] != "00" else "01")
    tampered["abi"] = tampered["abi"][1:]
    assert build.differences(fresh, tampered) == ["abi", "bytecode"]


def test_check_command_passes(capsys: object) -> None:
    assert build.main(["--check"]) == 0
