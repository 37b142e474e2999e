"""Compile the anchor contract through py-solc-x, offline and reproducibly.

    python -m anchoring.compile            # write anchoring/artifacts/ProcurementAnchor.json
    python -m anchoring.compile --check    # exit 1 if a fresh build differs from the committed artifact

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
ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "ProcurementAnchor.json"
CONTRACT = "ProcurementAnchor"
SOURCE = "contracts/ProcurementAnchor.sol"


class CompileError(Exception):
    """The contract did not compile, or the compiler is not the pinned one."""


def _sources() -> dict[str, str]:
    return {f"contracts/{path.name}": path.read_text(encoding="utf-8") for path in sorted(CONTRACTS.glob("*.sol"))}


def _solc() -> Path:
    return Path(os.environ.get("TENDERPROOF_SOLC") or ROOT / "tools" / "solc")


def build() -> dict[str, Any]:
    """Compile and return the artifact document. Raises :class:`CompileError`."""
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
        raise CompileError(f"{SOURCE} did not compile: {exc}") from exc
    problems = [e for e in output.get("errors", []) if e.get("severity") == "error" or e.get("type") == "Warning"]
    if problems:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in problems))
    unit = output["contracts"][SOURCE][CONTRACT]
    return {
        "contractName": CONTRACT,
        "sourceName": SOURCE,
        "compiler": {"version": version, "settings": config["settings"]},
        "sources": {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sources.items()},
        "abi": unit["abi"],
        "bytecode": "0x" + unit["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + unit["evm"]["deployedBytecode"]["object"],
    }


def load_artifact() -> dict[str, Any]:
    """The committed artifact (ABI, bytecode, compiler version and settings)."""
    artifact: dict[str, Any] = json.loads(ARTIFACT.read_text())
    return artifact


def differences(fresh: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    return [
        key
        for key in ("compiler", "sources", "abi", "bytecode", "deployedBytecode")
        if fresh[key] != committed.get(key)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compile contracts/ProcurementAnchor.sol offline.")
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed artifact differs from a fresh build"
    )
    args = parser.parse_args(argv)
    try:
        fresh = build()
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if not ARTIFACT.exists():
            print(f"error: {ARTIFACT.relative_to(ROOT)} is missing; run python -m anchoring.compile", file=sys.stderr)
            return 1
        changed = differences(fresh, load_artifact())
        if changed:
            print(
                f"error: {ARTIFACT.relative_to(ROOT)} differs from a fresh build in: {', '.join(changed)}; "
                "run python -m anchoring.compile and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"{ARTIFACT.relative_to(ROOT)} matches a fresh build ({fresh['compiler']['version']})")
        return 0
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(fresh, indent=2) + "\n")
    size = (len(fresh["deployedBytecode"]) - 2) // 2
    print(f"wrote {ARTIFACT.relative_to(ROOT)} ({size} bytes of runtime code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
