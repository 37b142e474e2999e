"""Compile the anchor contracts through py-solc-x, offline and reproducibly.

    python -m anchoring.compile            # write anchoring/artifacts/ProcurementAnchor*.json
    python -m anchoring.compile --check    # exit 1 if a fresh build differs from a committed artifact

Two versions are built: ``ProcurementAnchorV2`` (:data:`CURRENT`, what ``tenderproof deploy``
deploys) and ``ProcurementAnchor`` (version 1), kept so that contracts deployed earlier are
still recognised and driven: its runtime bytecode must never change.

The compiler is the npm ``solc`` package driven by ``tools/solc`` (a solc-js wrapper), or
a native solc named by ``TENDERPROOF_SOLC``; nothing is downloaded. Version and settings
come from ``contracts/compiler.json``, which Hardhat reads too, so both builds agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import solcx
import solcx.wrapper

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "contracts"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: The contract versions this release knows, by interface version: their contract names.
VERSIONS = {1: "ProcurementAnchor", 2: "ProcurementAnchorV2"}
#: The version new deployments get.
CURRENT = 2


class CompileError(Exception):
    """The contract did not compile, or the compiler is not the pinned one."""


def _sources() -> dict[str, str]:
    return {f"contracts/{path.name}": path.read_text(encoding="utf-8") for path in sorted(CONTRACTS.glob("*.sol"))}


def _solc() -> Path:
    return Path(os.environ.get("TENDERPROOF_SOLC") or ROOT / "tools" / "solc")


def artifact_path(version: int = CURRENT) -> Path:
    return ARTIFACTS / f"{VERSIONS[version]}.json"


def build_all() -> dict[int, dict[str, Any]]:
    """Compile once and return every version's artifact document. Raises :class:`CompileError`."""
    config = json.loads((CONTRACTS / "compiler.json").read_text())
    solc = _solc()
    version = str(solcx.wrapper.get_solc_version(solc, with_commit_hash=True))
    if not version.startswith(config["version"] + "+"):
        raise CompileError(
            f"compiler {solc}: version {version}, expected {config['version']} (contracts/compiler.json)"
        )
    sources = _sources()
    settings = {
        **config["settings"],
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
    }
    standard = {
        "language": "Solidity",
        "sources": {k: {"content": v} for k, v in sources.items()},
        "settings": settings,
    }
    try:
        output = solcx.compile_standard(standard, solc_binary=solc, base_path=str(ROOT))
    except solcx.exceptions.SolcError as exc:
        raise CompileError(f"contracts/ did not compile: {exc}") from exc
    problems = [e for e in output.get("errors", []) if e.get("severity") == "error" or e.get("type") == "Warning"]
    if problems:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in problems))
    digests = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sources.items()}
    built = {}
    for number, contract in VERSIONS.items():
        source = f"contracts/{contract}.sol"
        unit = output["contracts"][source][contract]
        built[number] = {
            "contractName": contract,
            "sourceName": source,
            "interfaceVersion": number,
            "compiler": {"version": version, "settings": config["settings"]},
            "sources": digests,
            "abi": unit["abi"],
            "bytecode": "0x" + unit["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + unit["evm"]["deployedBytecode"]["object"],
        }
    return built


def build(version: int = CURRENT) -> dict[str, Any]:
    """Compile and return one version's artifact document. Raises :class:`CompileError`."""
    return build_all()[version]


def load_artifact(version: int = CURRENT) -> dict[str, Any]:
    """The committed artifact of contract ``version`` (ABI, bytecode, compiler version and settings)."""
    artifact: dict[str, Any] = json.loads(artifact_path(version).read_text())
    return artifact


def differences(fresh: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    return [
        key
        for key in ("compiler", "sources", "abi", "bytecode", "deployedBytecode")
        if fresh[key] != committed.get(key)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compile the anchor contracts (contracts/) offline.")
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed artifact differs from a fresh build"
    )
    args = parser.parse_args(argv)
    try:
        fresh = build_all()
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for version, artifact in fresh.items():
        path = artifact_path(version).relative_to(ROOT)
        if args.check:
            if not artifact_path(version).exists():
                print(f"error: {path} is missing; run python -m anchoring.compile", file=sys.stderr)
                failed = 1
                continue
            changed = differences(artifact, load_artifact(version))
            if changed:
                print(
                    f"error: {path} differs from a fresh build in: {', '.join(changed)}; "
                    "run python -m anchoring.compile and commit the result",
                    file=sys.stderr,
                )
                failed = 1
                continue
            print(f"{path} matches a fresh build ({artifact['compiler']['version']})")
            continue
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        artifact_path(version).write_text(json.dumps(artifact, indent=2) + "\n")
        size = (len(artifact["deployedBytecode"]) - 2) // 2
        print(f"wrote {path} ({size} bytes of runtime code)")
    return failed


if __name__ == "__main__":
    sys.exit(main())
