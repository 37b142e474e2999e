"""RFC 8785 (JSON Canonicalization Scheme) bytes and their SHA-256.

The encoding itself is done by the maintained ``rfc8785`` library. This module
only turns its failures into :class:`CanonicalizationError` naming the JSON
path of the offending value, so that a caller learns *where* its input is bad.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import orjson
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


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
#: Non-integral floats in this range print the same in Python (``repr``) and ECMAScript.
_SAME_REPR = (1e-4, 1e16)


class _Slow(Exception):
    """The fast path cannot vouch for this value: the library encodes it (or names its fault)."""


def _plain(value: Any) -> Any:
    """``value`` with every integral float as an int; raises :class:`_Slow` on a number whose
    Python and ECMAScript forms may differ (huge, tiny, non-finite, or an unsafe integer)."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Slow
            out[key] = _plain(item)
        return out
    if kind is list:
        return [_plain(v) for v in value]
    if kind is str or kind is bool or value is None:
        return value
    if kind is float:
        if value.is_integer():
            if abs(value) <= MAX_SAFE_INTEGER:
                return int(value)
            raise _Slow
        if _SAME_REPR[0] <= abs(value) < _SAME_REPR[1]:
            return value
        raise _Slow
    if kind is not int or abs(value) > MAX_SAFE_INTEGER:
        raise _Slow
    return value


def canonical_json_bytes(value: Any, *, field: str = "$", parsed: bool = False) -> bytes:
    """:func:`canonical_bytes`: the same bytes (or the same error), several times faster.

    ``parsed``: ``value`` is what a strict JSON parser made of a document (dicts, lists,
    strings, ints, floats, booleans and None; no NaN or infinity): then orjson writes it first,
    faster still, its bytes kept where they are plainly RFC 8785's (:func:`_parsed_bytes`).

    The C JSON encoder writes the value with sorted keys and no whitespace: RFC 8785's form
    once integral floats are written as integers (``1.0`` -> ``1``) and other floats are in the
    range where Python's shortest ``repr`` is positional like ECMAScript's. Anything else (such
    floats, unsafe integers, object keys beyond U+FFFF that RFC 8785 sorts by UTF-16 code units,
    lone surrogates, keys that are not strings, types other than dict, list, str, int, float,
    bool and None) goes to the library whole, so its bytes and errors are the
    library's. A property test checks the bytes equal ``rfc8785.dumps``.
    """
    if parsed and (fast := _parsed_bytes(value)) is not None:
        return fast
    try:
        text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (_Slow, ValueError, TypeError, RecursionError):
        return canonical_bytes(value, field=field)
    data = utf8_if_canonical(text)
    return canonical_bytes(value, field=field) if data is None else data


#: orjson's options for :func:`_parsed_bytes`: keys sorted, and a subclass of a JSON type, a
#: dataclass or a date handed to ``default`` (which refuses it) rather than written.
_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)  # fmt: skip
#: A float as orjson writes one in the range :func:`_float_text` keeps (no exponent there).
_POSITIONAL = re.compile(rb"-?[0-9]+\.[0-9]+")
#: Every digit made ``0`` and every other byte a space (runs of digits found in C).
_DIGITS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
#: The first byte of a character beyond U+FFFF in UTF-8.
_ASTRAL_LEAD = re.compile(rb"[\xf0-\xf4]")


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _parsed_bytes(value: Any) -> bytes | None:
    """orjson's bytes of ``value`` (a strict parser's: no NaN or infinity, which orjson would
    write as ``null``), its floats written as :func:`canonical_json_bytes`'s C encoder path writes
    them (``repr``, an integral one as an integer), when that gives its RFC 8785 bytes, else None.
    orjson writes keys sorted by code point, no whitespace, and escapes strings as RFC 8785 and
    the C encoder do (``\\b`` ``\\t`` ``\\n`` ``\\f`` ``\\r`` ``\\"`` ``\\\\``, other controls as
    lowercase ``\\u00xx``, nothing else), so only these are left to the other paths: a float
    with an exponent or outside the range where ``repr`` is ECMAScript's, a number with 16
    digits in a row, a character beyond U+FFFF (RFC 8785 sorts keys by UTF-16 code units), and
    what orjson refuses (a lone surrogate, a key that is not a string, an integer past 64 bits,
    a subclass...)."""
    try:
        data = orjson.dumps(value, default=_refuse, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return None
    if not data.isascii() and _ASTRAL_LEAD.search(data):
        return None
    # escaped backslashes, then escaped quotes, blanked (same length): the quotes left delimit the
    # strings (a backslash in a string always starts an escape, read left to right)
    plain = data.replace(b"\\\\", b"__").replace(b'\\"', b"__") if b"\\" in data else data
    outside = b"".join(plain.split(b'"')[0::2])  # numbers, literals and punctuation
    letters = outside.replace(b"true", b"").replace(b"false", b"")
    if b"e" in letters or b"E" in letters or b"0" * 16 in outside.translate(_DIGITS):
        return None
    if b"." not in outside:
        return data
    pieces: list[bytes] = []
    last = 0
    at = plain.find(b".")
    while at >= 0:
        if plain.count(b'"', 0, at) & 1:  # in a string
            at = plain.find(b".", at + 1)
            continue
        start = max(plain.rfind(b":", 0, at), plain.rfind(b",", 0, at), plain.rfind(b"[", 0, at)) + 1
        number = _POSITIONAL.match(plain, start)
        written = None if number is None else _float_text(float(number.group()))
        if number is None or written is None:
            return None
        pieces += (data[last:start], written)
        last = number.end()
        at = plain.find(b".", last)
    return b"".join((*pieces, data[last:]))


def _float_text(number: float) -> bytes | None:
    """A float as :func:`_plain` and the C encoder write it, where that is RFC 8785's (None elsewhere)."""
    if number.is_integer():
        return b"%d" % int(number) if abs(number) <= MAX_SAFE_INTEGER else None
    return repr(number).encode("ascii") if _SAME_REPR[0] <= abs(number) < _SAME_REPR[1] else None


def utf8_if_canonical(text: str) -> bytes | None:
    """The UTF-8 bytes of ``text``, JSON that the C encoder wrote in RFC 8785's member order and
    escapes (``ensure_ascii=False``), or None where only the library can vouch for it: a
    character beyond U+FFFF (RFC 8785 sorts keys by UTF-16 code units) or a lone surrogate (no
    UTF-8 form)."""
    if not text.isascii() and _ASTRAL.search(text):
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


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
