"""Generate the envelope v2 commitment test vectors in tests/assets/commitment/ (docs/spec.md §2.5).

    python tools/gen_commitment_vectors.py            # (re)write the file
    python tools/gen_commitment_vectors.py --check    # exit 1 if the file differs from a fresh generation

Every figure comes from the plain reference (tests/core/commitment_reference.py), never from
ledger.core.commitment, which the tests then check against the file. Each case: {desc, seed,
payload, fields, payload_salt, field_salts, digests, commitment, disclosure, envelope, leaf_data,
leaf_hash, withheld: {fields, order, body, disclosure}} (the commitment and leaf hash are the same
after withholding); each invalid case: {desc, payload, disclosure, want_err} with want_err the
field the error names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import rfc8785

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.core import commitment_reference as ref  # noqa: E402

OUT = ROOT / "tests" / "assets" / "commitment" / "vectors.json"
FORMAT = "tenderproof-vectors/1"
ORIGIN = "tenders.example.gov/log"

SOLE_TRADER = {
    "ocid": "ocds-abc123-2026-0002",
    "parties": [
        {
            "id": "ES-B12345678",
            "name": "Ana Pérez Gómez",
            "roles": ["tenderer", "supplier"],
            "details": {"scale": "selfEmployed"},
            "address": {"streetAddress": "Calle Mayor 1", "locality": "Ejemplo"},
            "contactPoint": {"name": "Ana Pérez Gómez", "email": "ana@example.org"},
        },
        {"id": "ES-L01280796", "name": "Ayuntamiento de Ejemplo", "roles": ["buyer"]},
    ],
    "awards": [
        {
            "id": "A-1",
            "status": "active",
            "suppliers": [{"id": "ES-B12345678", "name": "Ana Pérez Gómez"}],
            "value": {"amount": 48000, "currency": "EUR"},
        }
    ],
}

CASES: list[tuple[str, bytes, str, dict[str, Any], list[str], list[str]]] = [
    ("no personal data: F empty", bytes(range(32)), "tender.published",
     {"tender": {"id": "2026-0001", "title": "Road resurfacing", "value": {"amount": 125000, "currency": "EUR"}}},
     [], []),
    ("a sole trader's award: F as the default privacy rules choose it, the name withheld wherever it appears", bytes([7]) * 32,
     "award.issued", SOLE_TRADER,
     ["/awards/0/suppliers/0/name", "/parties/0/address", "/parties/0/contactPoint", "/parties/0/name"],
     ["/parties/0/name", "/awards/0/suppliers/0/name"]),
    ("pointer escapes (~0 ~1), a non-ASCII value, an array element and a whole subtree", bytes(range(31, -1, -1)),
     "tender.clarified",
     {"a/b": {"~x": "¿Quién?"}, "list": [1, {"k": None}, "tres"], "sub": {"x": {"y": [True, False]}}},
     ["/a~1b/~0x", "/list/2", "/sub/x"], ["/a~1b/~0x", "/list/2", "/sub/x"]),
]  # fmt: skip


def _envelope(seq: int, kind: str, bound: str, ocid: str) -> dict[str, Any]:
    return {
        "v": 2,
        "origin": ORIGIN,
        "ocid": ocid,
        "seq": seq,
        "prev": None,
        "type": kind,
        "recorded_at": "2026-11-23T12:00:00.000000Z",
        "payload_commitment": bound,
    }


def _case(desc: str, seed: bytes, kind: str, payload: Any, fields: list[str], withheld: list[str]) -> dict[str, Any]:
    fields = sorted(fields)
    bound, disclosure = ref.commit(payload, fields, seed)
    envelope = _envelope(0, kind, bound, "ocds-abc123-2026-0002")
    leaf_data = rfc8785.dumps(envelope)
    body, after = ref.withhold(payload, disclosure, withheld, 42) if withheld else (payload, disclosure)
    return {
        "desc": desc,
        "seed": seed.hex(),
        "payload": payload,
        "fields": fields,
        "payload_salt": ref.payload_salt(seed).hex(),
        "field_salts": {p: ref.field_salt(seed, p).hex() for p in fields},
        "digests": {p: ref.digest(ref.field_salt(seed, p), _value(payload, p)) for p in fields},
        "commitment": bound,
        "disclosure": disclosure,
        "envelope": envelope,
        "leaf_data": leaf_data.decode("utf-8"),
        "leaf_hash": hashlib.sha256(b"\x00" + leaf_data).hexdigest(),
        "withheld": {"fields": withheld, "order": 42, "body": body, "disclosure": after},
    }


def _value(payload: Any, pointer: str) -> Any:
    parent, key = ref._at(payload, pointer)
    return parent[key]


def _invalid(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    base = cases[1]
    payload, disclosure = base["payload"], base["disclosure"]

    def changed(**members: Any) -> dict[str, Any]:
        return {**json.loads(json.dumps(disclosure)), **members}

    name = "/parties/0/name"
    return [
        {"desc": "an unknown member", "payload": payload, "disclosure": changed(extra=1), "want_err": "disclosure.extra"},
        {"desc": "upper-case salt", "payload": payload, "disclosure": changed(salt=disclosure["salt"].upper()),
         "want_err": "disclosure.salt"},
        {"desc": "a pointer naming no value", "payload": payload,
         "disclosure": changed(fields={**disclosure["fields"], "/parties/9/name": {"salt": "00" * 32}}),
         "want_err": "disclosure.fields['/parties/9/name']"},
        {"desc": "a field inside another committed field", "payload": payload,
         "disclosure": changed(fields={**disclosure["fields"], "/parties/0/contactPoint/email": {"salt": "00" * 32}}),
         "want_err": "disclosure.fields['/parties/0/contactPoint/email']"},
        {"desc": "a withheld field whose value is shown", "payload": payload,
         "disclosure": changed(fields={**disclosure["fields"], name: {"digest": "00" * 32, "order": 42}}),
         "want_err": f"disclosure.fields['{name}']"},
        {"desc": "a field entry with both a salt and a digest", "payload": payload,
         "disclosure": changed(fields={**disclosure["fields"], name: {"salt": "00" * 32, "digest": "00" * 32}}),
         "want_err": f"disclosure.fields['{name}']"},
    ]  # fmt: skip


def generate() -> dict[str, Any]:
    cases = [_case(*case) for case in CASES]
    return {
        "format": FORMAT,
        "scheme": "docs/spec.md §2.5: payload_salt = HMAC-SHA256(seed, 'tenderproof/v2/payload'); salt_p = "
        "HMAC-SHA256(seed, 'tenderproof/v2/field' 0x00 p); digest_p = SHA-256(salt_p || JCS(value at p)); "
        "payload_commitment = SHA-256(JCS({fields: {p: digest_p}, payload: skeleton, salt: payload_salt}))",
        "cases": cases,
        "invalid": _invalid(cases),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    text = json.dumps(generate(), indent=1, ensure_ascii=False) + "\n"
    if parser.parse_args().check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} differs from a fresh generation: run python tools/gen_commitment_vectors.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
