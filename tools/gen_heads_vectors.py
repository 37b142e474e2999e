"""Generate the heads-commitment test vectors in tests/assets/heads/ (docs/spec.md §14.5).

    python tools/gen_heads_vectors.py            # (re)write the file
    python tools/gen_heads_vectors.py --check    # exit 1 if the file differs from a fresh generation

Roots come from the naive reference (tests/core/heads_reference.py); proofs are built by
ledger.core.heads and each valid one is checked against the reference's root before it is
written. Every case: {desc, heads_root, ocid, key, size, head, siblings, other, want_err}
with want_err null for a valid proof, "root_mismatch" (right shape, another root),
"proof_shape" (more than 256 siblings) or "not_canonical" / "bad_other" (refused before
hashing: an empty sibling under a member leaf, an `other` leaf that is the key itself or
off the key's path).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.core import heads  # noqa: E402
from tests.core import heads_reference as ref  # noqa: E402

OUT = ROOT / "tests" / "assets" / "heads" / "vectors.json"
FORMAT = "tenderproof-vectors/1"


def _head(ocid: str, n: int) -> bytes:
    """A stand-in leaf hash for the ocid's n-th entry (the scheme the file states)."""
    return hashlib.sha256(f"{ocid}#{n}".encode()).digest()


def _maps() -> list[tuple[str, dict[str, int]]]:
    many = {f"ocds-tpvec0-{i:04d}": 1 + i % 7 for i in range(300)}
    return [
        ("empty map", {}),
        ("one tender", {"ocds-abc123-T1": 13}),
        ("the registry and two tenders", {"ocds-tpreg0-officers": 2, "ocds-abc123-T1": 13, "ocds-abc123-T2": 1}),
        (
            "non-ASCII and upper-case ocids",
            {"ocds-B5Y7ZC-Licitación 2026/1".replace("/", "-"): 4, "OCDS-87SD3T-AD-SF-DRM-063-2015": 9},
        ),
        ("300 tenders", many),
    ]


def _case(
    desc: str,
    root: bytes,
    ocid: str,
    size: int,
    head: bytes | None,
    siblings: list[bytes],
    other: heads.Leaf | None,
    want_err: str | None,
) -> dict[str, Any]:
    return {
        "desc": desc,
        "heads_root": root.hex(),
        "ocid": ocid,
        "key": heads.key(ocid).hex(),
        "size": size,
        "head": None if head is None else head.hex(),
        "siblings": [s.hex() for s in siblings],
        "other": None if other is None else {"key": other.key.hex(), "size": other.size, "leaf_hash": other.head.hex()},
        "want_err": want_err,
    }


def generate() -> bytes:
    maps = []
    cases: list[dict[str, Any]] = []
    for desc, m in _maps():
        values = {heads.key(o): (n, _head(o, n - 1)) for o, n in m.items()}
        root = ref.root(values)
        maps.append(
            {
                "desc": desc,
                "heads": {o: {"size": n, "head": _head(o, n - 1).hex()} for o, n in sorted(m.items())},
                "heads_root": root.hex(),
                "tenders": len(m),
            }
        )
        tree = heads.MemoryTree()
        tree.apply(heads.Leaf(k, n, h) for k, (n, h) in values.items())
        assert tree.versions[0] == root, desc
        for ocid in sorted(m)[:6]:
            n = m[ocid]
            head = _head(ocid, n - 1)
            p = tree.prove(0, heads.key(ocid))
            sib = list(p.siblings)
            cases.append(_case(f"{desc}: {ocid} holds {n} events", root, ocid, n, head, sib, None, None))
            cases.append(
                _case(
                    f"{desc}: {ocid} claimed one event short",
                    root,
                    ocid,
                    n - 1 or 1,
                    head if n > 1 else _head(ocid, 99),
                    sib,
                    None,
                    "root_mismatch",
                )
            )
            cases.append(
                _case(
                    f"{desc}: {ocid} with an older head", root, ocid, n, _head(ocid, n + 5), sib, None, "root_mismatch"
                )
            )
            if sib:
                flipped = [bytes([sib[0][0] ^ 1]) + sib[0][1:], *sib[1:]]
                cases.append(
                    _case(
                        f"{desc}: {ocid} with siblings[0] flipped", root, ocid, n, head, flipped, None, "root_mismatch"
                    )
                )
                cases.append(
                    _case(
                        f"{desc}: {ocid} padded with an empty sibling",
                        root,
                        ocid,
                        n,
                        head,
                        [heads.EMPTY, *sib],
                        None,
                        "not_canonical",
                    )
                )
            cases.append(_case(f"{desc}: {ocid} said absent", root, ocid, 0, None, sib, None, "root_mismatch"))
        for absent in ("ocds-abc123-T3", "ocds-zzzzzz-absent", "ocds-tpvec0-9999"):
            if absent in m:
                continue
            p = tree.prove(0, heads.key(absent))
            sib = list(p.siblings)
            cases.append(_case(f"{desc}: {absent} is absent", root, absent, 0, None, sib, p.other, None))
            cases.append(
                _case(
                    f"{desc}: {absent} claimed present", root, absent, 1, _head(absent, 0), sib, None, "root_mismatch"
                )
            )
            if p.other is not None:
                self_other = heads.Leaf(heads.key(absent), 1, _head(absent, 0))
                cases.append(
                    _case(
                        f"{desc}: {absent} absent with itself as the other leaf",
                        root,
                        absent,
                        0,
                        None,
                        sib,
                        self_other,
                        "bad_other",
                    )
                )
    cases.append(
        _case("257 siblings", ref.root({}), "ocds-abc123-T1", 0, None, [heads.EMPTY] * 257, None, "proof_shape")
    )
    doc = {
        "format": FORMAT,
        "scheme": "head of an ocid's n-th entry (from 0) = SHA-256(UTF-8 of ocid + '#' + decimal n); "
        "key = SHA-256(UTF-8 ocid); leaf = SHA-256(0x00 || key || uint64be(size) || head)",
        "maps": maps,
        "cases": cases,
    }
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args()
    data = generate()
    if args.check:
        if not OUT.exists() or OUT.read_bytes() != data:
            print("tests/assets/heads/vectors.json differs from a fresh generation", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    print(f"wrote tests/assets/heads/vectors.json: {len(data)} bytes, {len(json.loads(data)['cases'])} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
