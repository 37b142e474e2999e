"""RFC 8785 (JSON Canonicalization Scheme) bytes and their SHA-256.

The encoding itself is done by the maintained ``rfc8785`` library. This module
only turns its failures into :class:`CanonicalizationError` naming the JSON
path of the offending value, so that a caller learns *where* its input is bad.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import rfc8785

from .errors import CanonicalizationError

#: Largest integer magnitude an RFC 8785 number can hold exactly (IEEE 754 double).
MAX_SAFE_INTEGER = 2**53 - 1


def canonical_bytes(value: Any, *, field: str = "$") -> bytes:
    """Return the RFC 8785 UTF-8 bytes of ``value``.

    Raises :class:`CanonicalizationError` naming the path below ``field`` of the
    first value that has no RFC 8785 form.
    """
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        path, reason = _locate(value, field)
        raise CanonicalizationError(path, reason or str(exc)) from exc


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _locate(value: Any, path: str) -> tuple[str, str | None]:
    """Find the first value below ``path`` that RFC 8785 cannot encode.

    Only called after the library refused ``value``, so it may be slow; it
    mirrors the library's domain checks to name the place, never to encode.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > 512:
            return where, "nesting is too deep"
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if abs(item) > MAX_SAFE_INTEGER:
                return where, (
                    f"integer {item} is outside the exact range of an RFC 8785 number "
                    f"(|n| <= {MAX_SAFE_INTEGER}); send it as a string"
                )
        elif isinstance(item, float):
            if math.isnan(item) or math.isinf(item):
                return where, f"{item} is not a JSON number"
        elif isinstance(item, str):
            bad = _lone_surrogate(item)
            if bad is not None:
                return where, f"string has a lone surrogate U+{bad:04X} at offset {_offset(item, bad)}"
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if not isinstance(key, str):
                    return where, f"object key {key!r} is not a string"
                bad = _lone_surrogate(key)
                if bad is not None:
                    return where, f"object key has a lone surrogate U+{bad:04X}"
                children.append((child, f"{where}.{key}", depth + 1))
            stack.extend(reversed(children))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([(child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item)]))
        else:
            return where, f"a {type(item).__name__} is not a JSON value"
    return path, None


def _lone_surrogate(text: str) -> int | None:
    for ch in text:
        if 0xD800 <= ord(ch) <= 0xDFFF:
            return ord(ch)
    return None


def _offset(text: str, code: int) -> int:
    return text.index(chr(code))
