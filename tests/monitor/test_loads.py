"""monitor.follow.loads reads every document as json.loads does (orjson first, for speed): also
those orjson refuses (integers past 64 bits, NaN, a lone escaped surrogate), and it refuses
what json refuses, with a ValueError."""

from __future__ import annotations

import hashlib
import json

import pytest

from ledger.core.commitment import whole_commitment, whole_disclosure
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


SALT = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "raw",
    [
        b'{"fields":{},"salt":"' + SALT.encode() + b'"}',
        b'{"fields":{},"salt":"' + SALT.upper().encode() + b'"}',  # not lower-case hex: parsed
        b'{"fields":{}, "salt":"' + SALT.encode() + b'"}',  # not RFC 8785 bytes: parsed
        b'{"fields":{},"salt":"' + SALT[:-2].encode() + b'"}',  # a short salt
        b'{"fields":{"/a":{"salt":"' + SALT.encode() + b'"}},"salt":"' + SALT.encode() + b'"}',
        b'{"fields":{},"salt":"' + SALT.encode() + b'","x":1}',
        b'{"fields":{},"salt":"' + SALT.encode() + b'"}\n',
    ],
)
def test_whole_disclosure_is_what_json_reads_or_none(raw: bytes) -> None:
    """The usual disclosure (no field committed apart) is made without a parse, equal to what
    json reads; any other bytes are left to the parse (None)."""
    made = whole_disclosure(raw)
    if raw == b'{"fields":{},"salt":"' + SALT.encode() + b'"}':
        assert made == json.loads(raw) == {"fields": {}, "salt": SALT}
        assert (
            whole_commitment(b'{"a":1}', made)
            == hashlib.sha256(b'{"fields":{},"payload":{"a":1},"salt":"' + SALT.encode() + b'"}').hexdigest()
        )
    else:
        assert made is None
