"""JSON from untrusted sources, parsed within bounds.

Python's C JSON parser recurses once per nesting level; a dependency (py_ecc, through
eth-account) raises the interpreter's recursion limit to 100,000, so a document nested deeply
enough overflows the C stack and kills the process instead of raising. :func:`loads` therefore
measures the nesting (:func:`json_depth`, linear time, no recursion) and the size before parsing,
and turns every way the parser can refuse (bad syntax or encoding, integers of more than 4,300
digits, a recursion error) into one :class:`~ledger.core.errors.FormatError` naming the document.
Documents are read through orjson when it reads them exactly as :mod:`json` does (:func:`_parse`).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import orjson

from .errors import FormatError

#: An escape sequence (consumed whole, so an escaped quote is not a quote) or a quote.
_QUOTES = re.compile(rb'\\.|"', re.DOTALL)
_OPENING, _CLOSING = b"[{", b"]}"
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(_OPENING + _CLOSING)))
_NOT_SYNTAX = bytes(sorted(set(range(256)) - set(_OPENING + _CLOSING + b'"')))
#: Brackets counted at a time by :func:`json_depth`.
_SLICE = 1 << 20
#: +1 for an opening bracket, -1 for a closing one, by byte value.
_STEP = [1 if c in _OPENING else -1 if c in _CLOSING else 0 for c in range(256)]
#: Every digit made ``0`` and every other byte a space (:func:`_parse`'s test for long numbers).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
#: Digits in a row from which orjson may not read an integer as :mod:`json` does (it reads one
#: beyond -2**63 .. 2**64 - 1 as a float; 19 digits hold every integer inside that range's
#: negative end, 20 its positive one).
_LONG_NUMBER = b"0" * 19


def json_depth(data: bytes, limit: int | None = None) -> int:
    """How deep arrays and objects nest in ``data`` (0 for a scalar), without parsing it, in
    time linear in its length: the strings (between unescaped quotes, taken pairwise) are left
    out, then the brackets counted. For malformed JSON the count holds up to the first error,
    which is as far as a parser gets. With ``limit``, a depth greater than ``limit`` is given as
    ``limit + 1``."""
    if b"\\" not in data:  # no escapes: every quote is one, and split() pairs them the same way
        # only the brackets and quotes kept (in C), then the strings' brackets left out: the
        # quotes pair the same way as in the whole document
        brackets = b"".join(data.translate(None, delete=_NOT_SYNTAX).split(b'"')[0::2])
    else:
        quotes = [m.start() for m in _QUOTES.finditer(data) if m.group() == b'"']
        starts = [0, *(q + 1 for q in quotes[1::2])]
        ends = [*quotes[0::2], len(data)]
        outside = b"".join(data[a:b] for a, b in zip(starts, ends, strict=False))
        brackets = outside.translate(None, delete=_NOT_BRACKETS)
    # counted a slice at a time (each all in C), so that with ``limit`` a document already too
    # deep in its first slice (a hostile one, nested 50 MB deep) is refused without counting the rest
    deepest = level = 0
    for start in range(0, len(brackets), _SLICE):
        levels = list(itertools.accumulate(map(_STEP.__getitem__, brackets[start : start + _SLICE]), initial=level))
        deepest, level = max(deepest, max(levels)), levels[-1]
        if limit is not None and deepest > limit:
            return limit + 1
    return deepest if limit is None else min(deepest, limit + 1)


def nests_within(data: bytes, limit: int) -> bool:
    """Whether ``data`` certainly nests no deeper than ``limit``: it has no more opening brackets
    than that (those in strings counted too), counted in C. Most documents need no depth count
    (:func:`json_depth`, :func:`value_depth`) after it."""
    return data.count(b"{") + data.count(b"[") <= limit


def value_depth(value: Any, *, stop_after: int | None = None) -> int:
    """How deep lists and dicts nest in an already parsed ``value`` (0 for a scalar), without
    recursion; with ``stop_after``, stops (returning ``stop_after + 1``) once deeper than that."""
    if stop_after is not None:  # bounded: a recursion at most ``stop_after + 1`` deep (faster)
        return _depth_within(value, 0, stop_after) if isinstance(value, dict | list) else 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if stop_after is not None and deepest > stop_after:
            return stop_after + 1
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def _depth_within(item: dict[str, Any] | list[Any], above: int, limit: int) -> int:
    """:func:`value_depth` of a list or dict ``above`` levels down, stopping once deeper than ``limit``."""
    deepest = depth = above + 1
    if depth > limit:
        return limit + 1
    for child in item.values() if isinstance(item, dict) else item:
        if isinstance(child, dict | list):
            found = _depth_within(child, depth, limit)
            if found > deepest:
                if found > limit:
                    return limit + 1
                deepest = found
    return deepest


def loads(data: bytes | str, *, field: str, max_depth: int, max_bytes: int | None = None) -> Any:
    """Parse ``data`` as JSON, refusing (with :class:`FormatError` naming ``field``) what is larger
    than ``max_bytes`` or nested deeper than ``max_depth`` before parsing it, and what does not
    parse."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if max_bytes is not None and len(raw) > max_bytes:
        raise FormatError(field, f"is {len(raw):,} bytes, more than the {max_bytes:,} accepted")
    if not nests_within(raw, max_depth) and json_depth(raw, max_depth) > max_depth:
        raise FormatError(field, f"is nested more than the {max_depth} levels accepted")
    try:
        return _parse(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int digits limit
        raise FormatError(field, f"is not JSON: {exc}") from exc


def _parse(raw: bytes) -> Any:
    """``raw`` read exactly as :func:`json.loads` reads it, through orjson when that gives the
    same (about three times faster on a stored compiled release): what orjson refuses (NaN and
    infinities, an overflowing number, a lone escaped surrogate, a byte-order mark, invalid
    UTF-8, nesting past 1,024) and a document holding 19 or more digits in a row (an integer
    orjson might read as a float) are json's to read or refuse, with json's own message. Both
    round floats exactly and keep the last of repeated keys."""
    if _LONG_NUMBER not in raw.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)
