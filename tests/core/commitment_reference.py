"""docs/spec.md §2.5 written out plainly, with the rfc8785 library directly: the reference that
tests and the vector generator (tools/gen_commitment_vectors.py) check ledger.core.commitment against."""

from __future__ import annotations

import copy
import hashlib
import hmac
from typing import Any

import rfc8785


def _at(doc: Any, pointer: str) -> tuple[Any, Any]:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
    for token in tokens[:-1]:
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    last = tokens[-1]
    return doc, int(last) if isinstance(doc, list) else last


def payload_salt(seed: bytes) -> bytes:
    return hmac.new(seed, b"tenderproof/v2/payload", hashlib.sha256).digest()


def field_salt(seed: bytes, pointer: str) -> bytes:
    return hmac.new(seed, b"tenderproof/v2/field\x00" + pointer.encode("utf-8"), hashlib.sha256).digest()


def digest(salt: bytes, value: Any) -> str:
    return hashlib.sha256(salt + rfc8785.dumps(value)).hexdigest()


def commit(payload: Any, fields: list[str], seed: bytes) -> tuple[str, dict[str, Any]]:
    """(payload_commitment hex, disclosure) of ``payload`` with F = ``fields``."""
    skeleton = copy.deepcopy(payload)
    digests, salts = {}, {}
    for pointer in fields:
        salt = field_salt(seed, pointer)
        parent, key = _at(payload, pointer)
        digests[pointer] = digest(salt, parent[key])
        salts[pointer] = {"salt": salt.hex()}
        parent, key = _at(skeleton, pointer)
        parent[key] = None
    wrapped = {"fields": digests, "payload": skeleton, "salt": payload_salt(seed).hex()}
    return hashlib.sha256(rfc8785.dumps(wrapped)).hexdigest(), {"salt": payload_salt(seed).hex(), "fields": salts}


def withhold(payload: Any, disclosure: dict[str, Any], pointers: list[str], order: int) -> tuple[Any, dict[str, Any]]:
    """The stored body and disclosure once ``pointers`` are withheld under the order at ``order``."""
    body = copy.deepcopy(payload)
    fields = dict(disclosure["fields"])
    for pointer in pointers:
        parent, key = _at(body, pointer)
        fields[pointer] = {"digest": digest(bytes.fromhex(fields[pointer]["salt"]), parent[key]), "order": order}
        parent[key] = None
    return body, {"salt": disclosure["salt"], "fields": fields}
