"""Generate the RFC 9162 test vectors in tests/assets/rfc9162/ from the naive reference.

    python tools/gen_vectors.py            # (re)write the files
    python tools/gen_vectors.py --check    # exit 1 if the files differ from a fresh generation

The vectors are data, kept forever, in the style of transparency-dev/merkle's
testdata: every case has a description and the error a verifier must report
(null for a valid proof). Expected errors are classified from the RFC's
structure only (proof length for the sizes, index range), never by running the
implementation under test:
  invalid_argument  the index is outside the tree
  proof_shape       the proof has the wrong number of elements for the sizes
  root_mismatch     the proof has the right shape but leads to another root
The leaf scheme: leaf i is the UTF-8 bytes of the decimal string of i.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.core import reference as ref  # noqa: E402

OUT = ROOT / "tests" / "assets" / "rfc9162"
SMALL = range(1, 301)
LARGE = (1000, 4096, 65537, 100000)
FORMAT = "tenderproof-vectors/1"
LEAF_SCHEME = "leaf i is the UTF-8 bytes of the decimal string of i; leaf_hash = SHA-256(0x00 || leaf)"


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def _flipped(rng: random.Random, path: list[bytes]) -> list[tuple[int, int, list[bytes]]]:
    """For each element of ``path``: (position, bit, the path with that bit of it flipped)."""
    out = []
    for i, element in enumerate(path):
        bit = rng.randrange(256)
        out.append((i, bit, [*path[:i], _flip(element, bit), *path[i + 1 :]]))
    return out


class _Roots:
    """Roots of every prefix of one leaf list, memoised (the reference is slow on big trees)."""

    def __init__(self, data: list[bytes]) -> None:
        self.data = data
        self.cache: dict[int, bytes] = {}

    def __call__(self, n: int) -> bytes:
        if n not in self.cache:
            self.cache[n] = ref.mth(self.data[:n])
        return self.cache[n]


def inclusion_cases(rng: random.Random, data: list[bytes], roots: _Roots) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def case(desc: str, n: int, m: int, leaf: bytes, root: bytes, path: list[bytes], err: str | None) -> None:
        cases.append(
            {
                "desc": desc,
                "tree_size": n,
                "leaf_index": m,
                "leaf_hash": leaf.hex(),
                "root": root.hex(),
                "proof": [p.hex() for p in path],
                "want_err": err,
            }
        )

    for n in [*SMALL, *LARGE]:
        d = data[:n]
        root = roots(n)
        indices = sorted({0, n - 1, n // 2, rng.randrange(n)})
        for m in indices:
            path = ref.path(m, d)
            leaf = ref.leaf(d[m])
            case(f"valid: leaf {m} of {n}", n, m, leaf, root, path, None)
            if n % 7 and n not in LARGE:
                continue
            # Corrupted variants of this valid case.
            for i, bit, bad in _flipped(rng, path):
                case(f"proof[{i}] bit {bit} flipped: leaf {m} of {n}", n, m, leaf, root, bad, "root_mismatch")
            case(f"leaf hash bit flipped: leaf {m} of {n}", n, m, _flip(leaf, 0), root, path, "root_mismatch")
            case(f"root bit flipped: leaf {m} of {n}", n, m, leaf, _flip(root, 255), path, "root_mismatch")
            if path:
                case(f"truncated proof: leaf {m} of {n}", n, m, leaf, root, path[:-1], "proof_shape")
            case(f"extended proof: leaf {m} of {n}", n, m, leaf, root, [*path, ref.leaf(b"extra")], "proof_shape")
            if m + 1 < n:
                err = "root_mismatch" if len(ref.path(m + 1, d)) == len(path) else "proof_shape"
                case(f"wrong index {m + 1} for leaf {m} of {n}", n, m + 1, leaf, root, path, err)
            case(f"index {n} outside tree of {n}", n, n, leaf, root, path, "invalid_argument")
            # A wrong size with the same path shape can still verify (the root does not commit to
            # the size; the checkpoint does), so only a size that changes the shape is a vector.
            bigger = n + 1
            if len(ref.path(m, data[:bigger])) != len(path):
                case(f"wrong tree size {bigger} for leaf {m} of {n}", bigger, m, leaf, root, path, "proof_shape")
    return cases


def consistency_cases(rng: random.Random, data: list[bytes], roots: _Roots) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def case(desc: str, m: int, n: int, r1: bytes, r2: bytes, path: list[bytes], err: str | None) -> None:
        cases.append(
            {
                "desc": desc,
                "size1": m,
                "size2": n,
                "root1": r1.hex(),
                "root2": r2.hex(),
                "proof": [p.hex() for p in path],
                "want_err": err,
            }
        )

    for n in [*SMALL, *LARGE]:
        d = data[:n]
        powers = [1 << k for k in range(n.bit_length()) if (1 << k) < n]
        firsts = sorted({1, n, n - 1 or 1, rng.randrange(1, n + 1), *(rng.sample(powers, min(2, len(powers))))})
        r2 = roots(n)
        for m in firsts:
            r1 = roots(m)
            path = ref.proof(m, d)
            case(f"valid: {m} to {n}", m, n, r1, r2, path, None)
            if n % 5 and n not in LARGE:
                continue
            for i, bit, bad in _flipped(rng, path):
                case(f"proof[{i}] bit {bit} flipped: {m} to {n}", m, n, r1, r2, bad, "root_mismatch")
            case(f"old root bit flipped: {m} to {n}", m, n, _flip(r1, 7), r2, path, "root_mismatch")
            case(f"new root bit flipped: {m} to {n}", m, n, r1, _flip(r2, 7), path, "root_mismatch")
            if path:
                case(f"truncated proof: {m} to {n}", m, n, r1, r2, path[:-1], "proof_shape")
            case(f"extended proof: {m} to {n}", m, n, r1, r2, [*path, ref.leaf(b"extra")], "proof_shape")
            if m < n:
                case(f"sizes swapped: {n} to {m}", n, m, r2, r1, path, "invalid_argument")
    return cases


def generate() -> dict[str, bytes]:
    rng = random.Random(9162)
    data = ref.leaves(max(LARGE))
    roots = _Roots(data)
    out = {}
    for name, cases in (
        ("inclusion.json", inclusion_cases(rng, data, roots)),
        ("consistency.json", consistency_cases(rng, data, roots)),
    ):
        head = json.dumps({"format": FORMAT, "hash": "sha256", "leaf_data": LEAF_SCHEME})[:-1]
        body = ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases)
        out[name] = f'{head}, "cases": [\n{body}\n]}}\n'.encode()  # one case per line: readable diffs
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = parser.parse_args()
    files = generate()
    if args.check:
        stale = [name for name, data in files.items() if (OUT / name).read_bytes() != data]
        for name in stale:
            print(f"tests/assets/rfc9162/{name} differs from a fresh generation", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (OUT / name).write_bytes(data)
        count = len(json.loads(data)["cases"])
        print(f"wrote tests/assets/rfc9162/{name}: {len(data)} bytes, {count} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
