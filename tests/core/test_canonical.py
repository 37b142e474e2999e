"""RFC 8785 bytes (through the rfc8785 library) and the paths named when input has none."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import canonical
from ledger.core.canonical import canonical_bytes, canonical_json_bytes, sha256_hex
from ledger.core.errors import CanonicalizationError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None, "x"]}, b'{"a":[true,null,"x"],"b":1}'),
        # Keys sort by UTF-16 code units: U+1F600 (surrogates D83D..) sorts before U+FB33.
        ({"\ufb33": 1, "\U0001f600": 2, "a": 3}, '{"a":3,"\U0001f600":2,"\ufb33":1}'.encode()),
        (
            {"n": [1e21, 1e-7, 0.000001, -0.0, 1.5, 100, 2**53 - 1]},
            b'{"n":[1e+21,1e-7,0.000001,0,1.5,100,9007199254740991]}',
        ),
        ({"s": '\u00e9\n"\\\u001f</'}, '{"s":"\u00e9\\n\\"\\\\\\u001f</"}'.encode()),
        ({}, b"{}"),
    ],
)
def test_known_outputs(value: Any, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


def test_sha256_hex_is_lowercase_hex() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        (
            {"items": [{"qty": 1}, {"qty": 2}, {"qty": float("nan")}]},
            "payload.items[2].qty",
            "nan is not a JSON number",
        ),
        ({"v": {"amount": float("inf")}}, "payload.v.amount", "inf is not a JSON number"),
        ({"big": 2**53}, "payload.big", "outside the exact range"),
        ({"neg": [-(2**53)]}, "payload.neg[0]", "outside the exact range"),
        ({"t": {"title": "ok \ud800 bad"}}, "payload.t.title", "lone surrogate U+D800 at offset 3"),
        ({"k": {"\udfff": 1}}, "payload.k", "object key has a lone surrogate U+DFFF"),
        ({"k": {1: "x"}}, "payload.k", "object key 1 is not a string"),
        ({"s": {1, 2}}, "payload.s", "a set is not a JSON value"),
    ],
)
def test_bad_values_name_their_path(value: Any, path: str, reason: str) -> None:
    with pytest.raises(CanonicalizationError) as err:
        canonical_bytes(value, field="payload")
    assert err.value.field == path
    assert reason in err.value.reason


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json_values = st.recursive(
    _scalars, lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
)


@settings(max_examples=500, deadline=None)
@given(value=_json_values)
def test_the_fast_path_gives_the_librarys_bytes_or_its_error(value: Any) -> None:
    _agrees_with_the_library(value, parsed=False)


def _agrees_with_the_library(value: Any, *, parsed: bool) -> bytes | None:
    """``canonical_json_bytes`` gives the library's bytes, or fails where it does; the library's
    bytes (None where it fails)."""
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        expected = None
    if expected is None:
        with pytest.raises(CanonicalizationError):
            canonical_json_bytes(value, parsed=parsed)
    else:
        assert canonical_json_bytes(value, parsed=parsed) == expected
    return expected


@pytest.mark.parametrize(
    "value",
    [
        {"amount": 1311264.0, "z": -0.0, "big": 1e16, "small": 1e-7, "text": "x:1.5e3, [2.50]"},
        {"\U0001f600": 1, "\uffff": 2, "é": "\u2028\x1f\x7f"},  # UTF-16 order differs from code points
        ['\\"quoted\\" 1.0', 9007199254740991, -9007199254740991],
    ],
)
def test_the_fast_path_on_its_edge_cases(value: Any) -> None:
    assert canonical_json_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [{1: "int key"}, ("a", "tuple"), {"set": {1, 2}}, {"nan": float("nan")}, "\ud800"])
def test_the_fast_path_leaves_what_json_cannot_say_to_the_library(value: Any) -> None:
    try:
        expected: bytes | None = rfc8785.dumps(value)
    except Exception:
        expected = None
    if expected is None:
        with pytest.raises(CanonicalizationError):
            canonical_json_bytes(value)
    else:
        assert canonical_json_bytes(value) == expected


_strict_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["\\", '"', '\\"', '"\\', '\\\\"', "\x00\x1f\x7f", "\U0001f600", "\ud800", "1.5", "e5"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text() | st.sampled_from(["\U0001f600", "\ufb33", "é", '"', "\\"]), children, max_size=5)
    ),
)


@settings(max_examples=1000, deadline=None)
@given(value=_strict_values)
def test_the_parsed_path_gives_the_librarys_bytes_or_its_error(value: Any) -> None:
    """What a strict parser makes (no NaN, no infinity): orjson's bytes where they are kept, the
    other paths' bytes or error elsewhere; never other bytes than the library's."""
    _agrees_with_the_library(value, parsed=True)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (b'{"b":[1,-2,true,false,null],"a":"x\\"1.5\\\\","c":{"e":"\\u0000\\n"}}', True),
        ('{"\u00e9":1,"z":"\u20ac\u2028","\\\\":"\\\\\\""}'.encode(), True),
        (b'{"amount":1311264.0,"v":[-0.0,0.1,123456.789]}', True),  # floats written as RFC 8785 does
        (b'{"n":1e2,"t":"1.5 \\" 2.0 \\\\","u":2.5}', True),  # numbers in strings are left alone
        (b'{"n":1e-7}', False),  # where Python's repr is not ECMAScript's: the other paths
        (b'{"n":1e21}', False),
        (b'{"n":9007199254740993}', False),  # past 2**53 - 1: refused
        (b'{"n":1234567890123456}', False),  # 16 digits: left to the other paths
        ('{"\U0001f600":1,"\ufb33":2}'.encode(), False),  # UTF-16 order differs from code points
        (b'{"t":"\\ud800"}', False),  # a lone surrogate: no UTF-8 form
    ],
)
def test_the_parsed_path_on_what_parsers_make(text: bytes, kept: bool) -> None:
    value = json.loads(text)
    assert (canonical._parsed_bytes(value) is not None) is kept
    expected = _agrees_with_the_library(value, parsed=True)
    if expected is not None:
        with contextlib.suppress(orjson.JSONDecodeError):
            assert canonical_json_bytes(orjson.loads(text), parsed=True) == expected
