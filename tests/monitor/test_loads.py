"""monitor.follow.loads reads every document as json.loads does (orjson first, for speed): also
those orjson refuses (integers past 64 bits, NaN, a lone escaped surrogate), and it refuses
what json refuses, with a ValueError."""

from __future__ import annotations

import json

import pytest

from monitor.follow import loads

READ_ALIKE = [
    b'{"ocid":"ocds-abc123-1","seq":3,"prev":null,"v":2}',
    b'{"seq":123456789012345678901234567890}',
    b'{"x":NaN,"y":-Infinity}',
    b'{"s":"\\ud800"}',
    b'{"a":1,"a":2}',
    b'{"fields":{"/a":{"order":[1, 123456789012345678901234567890]}},"salt":"00"}',
    b' [1.5e300, "\\u00e9", true] ',
]


@pytest.mark.parametrize("data", READ_ALIKE)
def test_reads_as_json_reads(data: bytes) -> None:
    got, want = loads(data), json.loads(data.decode())
    assert repr(got) == repr(want)  # repr: NaN != NaN


@pytest.mark.parametrize("data", [b'{"a":', b"\xff\xfe{}", b"", b'{"a":1} x'])
def test_refuses_what_json_refuses(data: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(data.decode())
    with pytest.raises(ValueError):
        loads(data)
