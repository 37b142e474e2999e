"""``jsonsafe.json_depth`` (the nesting measured before a stored or received document is parsed)
against its definition, written out the plain way: the escapes and quotes found left to right,
the quotes taken pairwise, the text between each pair (and after an unpaired last quote) left
out, then the brackets counted."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.jsonsafe import json_depth


def _reference_depth(data: bytes, limit: int | None = None) -> int:
    quotes = [m.start() for m in re.finditer(rb'\\.|"', data, re.DOTALL) if m.group() == b'"']
    starts = [0, *(q + 1 for q in quotes[1::2])]
    ends = [*quotes[0::2], len(data)]
    outside = b"".join(data[a:b] for a, b in zip(starts, ends, strict=False))
    levels = list(itertools.accumulate((1 if c in b"[{" else -1 for c in outside if c in b"[]{}"), initial=0))
    if limit is not None:
        deeper = next((i for i, level in enumerate(levels) if level > limit), None)
        return limit + 1 if deeper is not None else max(levels)
    return max(levels)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab"\\[]{} \n\u00e9'),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(alphabet='k"\\[{', max_size=3), children),
    max_leaves=30,
)


@settings(max_examples=400)
@given(_json)
def test_depth_of_json_documents(value: Any) -> None:
    data = json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert json_depth(data) == _reference_depth(data)
    for limit in (0, 1, 3):
        assert json_depth(data, limit) == _reference_depth(data, limit)


@settings(max_examples=400)
@given(st.lists(st.sampled_from([b'"', b"\\", b"[", b"]", b"{", b"}", b"a", b"\n"]), max_size=40))
def test_depth_of_malformed_bytes_is_the_definitions(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert json_depth(data) == _reference_depth(data)
    assert json_depth(data, 2) == _reference_depth(data, 2)


def test_depth_examples() -> None:
    assert json_depth(b"1") == 0
    assert json_depth(b'{"a": [1, {"b": "]]]"}]}') == 3
    assert json_depth(b'["\\"[[[", [[]]]') == 3  # an escaped quote does not end the string
    assert json_depth(b'[["unclosed [[[[') == 2  # an unclosed string runs to the end
    assert json_depth(b'[\\"[[') == 3  # an escape outside a string (malformed) is not a quote
    assert json_depth(b"[" * 50 + b"]" * 50, 10) == 11


def test_bounded_depth_is_the_walks_depth_or_one_past_the_bound() -> None:
    import random

    from ledger.core.jsonsafe import value_depth

    rng = random.Random(7)

    def make(levels: int) -> Any:
        if levels == 0 or rng.random() < 0.2:
            return rng.choice([1, "x", None])
        if rng.random() < 0.5:
            return [make(levels - 1) for _ in range(rng.randrange(4))]
        return {str(i): make(levels - 1) for i in range(rng.randrange(4))}

    for _ in range(2000):
        value = make(rng.randrange(12))
        deepest = value_depth(value)
        for bound in (0, 1, 2, 3, 5, 8):
            assert value_depth(value, stop_after=bound) == (deepest if deepest <= bound else bound + 1)
    assert value_depth([[[[]]]], stop_after=2) == 3 and value_depth({"a": [{}]}, stop_after=9) == 3


@settings(max_examples=300)
@given(_json)
def test_loads_refuses_exactly_the_documents_nested_deeper_than_the_limit(value: Any) -> None:
    """``loads`` skips the depth count for a document with no more opening brackets than the
    limit (in strings or not): it still accepts exactly the documents nested no deeper than it."""
    import pytest

    from ledger.core.errors import FormatError
    from ledger.core.jsonsafe import loads

    data = json.dumps(value, ensure_ascii=False).encode("utf-8")
    for limit in (0, 1, 2, 3, 5):
        if _reference_depth(data) <= limit:
            assert loads(data, field="doc", max_depth=limit) == json.loads(data)
            assert loads(data.decode("utf-8"), field="doc", max_depth=limit) == json.loads(data)
        else:
            with pytest.raises(FormatError, match="nested more than"):
                loads(data, field="doc", max_depth=limit)


#: Documents orjson reads differently from json or refuses while json reads them: ``loads`` must
#: read each as json does (an integer past 64 bits, one just inside, NaN and infinities, a number
#: overflowing to infinity, a lone escaped surrogate, a byte-order mark, repeated keys).
_READ_AS_JSON = [
    b'{"amount": 123456789012345678901234567890}',
    b'{"amount": -9223372036854775809, "id": "ocds-1"}',
    b"[18446744073709551615, -9223372036854775808, 9999999999999999999]",
    b'{"x": NaN, "y": -Infinity, "z": Infinity}',
    b"[1E400, -1e999]",
    b'{"name": "\\ud800"}',
    b'\xef\xbb\xbf{"a": 1}',
    b'{"a": 1, "b": 2, "a": {"c": 3}}',
    b'{"value": {"amount": 1050.25, "currency": "EUR"}, "n": 0.1, "e": 1e-320, "m": -0.0}',
]


def test_loads_reads_every_document_as_json_reads_it() -> None:
    from ledger.core.jsonsafe import loads

    for data in _READ_AS_JSON:
        got, want = loads(data, field="doc", max_depth=8), json.loads(data)
        assert repr(got) == repr(want), data  # repr: NaN is not equal to itself, 1 == 1.0
        assert [type(v) for v in _leaves(got)] == [type(v) for v in _leaves(want)], data


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


@settings(max_examples=300)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.integers(), max_size=8))
def test_loads_reads_numbers_as_json_does(numbers: list[Any]) -> None:
    """Floats printed any way (repr, or with an exponent and many digits) and integers of any
    size: read to the same value and type as json reads them."""
    from ledger.core.jsonsafe import loads

    texts = [repr(n) for n in numbers] + [f"{n:.25e}" for n in numbers if isinstance(n, float)]
    data = ("[" + ", ".join(texts) + "]").encode()
    got, want = loads(data, field="doc", max_depth=2), json.loads(data)
    assert repr(got) == repr(want)


def test_loads_refuses_what_json_refuses_with_its_message() -> None:
    import pytest

    from ledger.core.errors import FormatError
    from ledger.core.jsonsafe import loads

    for data in (b'{"a":', b"\xff{}", b"", b'{"a": 1} x', b"[1, 2,]", b"{'a': 1}"):
        with pytest.raises(ValueError) as refused:
            json.loads(data)
        with pytest.raises(FormatError, match="is not JSON") as ours:
            loads(data, field="doc", max_depth=8)
        assert str(refused.value) in str(ours.value)
