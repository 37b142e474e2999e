"""Reading an import's files (SQLite and PostgreSQL): a release package's releases and JSON
Lines' lines are cut into bytes by the reading thread, without being parsed, and parsed where
they are checked. What is read, recorded and reported is what the parser reads in one stream:
the same values, the same positions, the same problems, and nothing after a release that does
not parse."""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import ijson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.log import Log
from ledger.procurement import importer, ocds, sources
from tests.conftest import T0


def _release(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "ocid": f"ocds-abc123-c{i % 5}",
        "id": f"r{i}",
        "date": "2026-01-01T10:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        "tender": {"id": f"t{i % 5}", "title": f"Tender {i % 5}"},
        **extra,
    }


def _package(releases: list[Any], *, before: str = "", after: str = "") -> bytes:
    body = ", ".join(json.dumps(r, ensure_ascii=False) for r in releases)
    return f'{{"uri": "u"{before}, "releases": [{body}]{after}}}'.encode()


def _read(data: bytes, name: str = "f.json", **kw: Any) -> list[Any]:
    """What the checking sees of a file: each candidate (position, value) or problem."""
    items = list(importer.read_releases(io.BytesIO(data), name=name, **kw))
    parsed, _, _ = importer._parsed(importer._Batch(name, items, 0, 0))
    return [
        (i.position, i.value) if isinstance(i, importer._Read) else (i.release, i.path, i.reason.split(":")[0])
        for i in parsed.items
    ]


TRICKY = [
    _package([_release(i) for i in range(9)]),
    # strings holding what the scanner looks for: quotes, escapes, brackets, separators
    _package([_release(1, title='a "}, {" \\ } ] [ {'), _release(2, note="\\\\"), _release(3, x='\\\\\\"}')]),
    _package(
        [_release(i, value={"amount": i / 3, "n": [1, [2, {"a": [3]}]], "big": 1234567890123456789}) for i in range(4)]
    ),
    _package([_release(1, name="Ñandú \u00e9 \u2603 \U0001f600"), _release(2, esc="\\u00e9\\ud83d\\ude00")]),
    # the package's keys before its releases: objects, arrays and strings with brackets in them
    _package(
        [_release(1)], before=', "publisher": {"name": "p", "x": [1, {"a": "}]"}]}, "s": "a,]b", "n": -1.5e3, "t": true'
    ),
    _package([_release(1), _release(2)], after=', "extensions": ["x"], "releases": [' + json.dumps(_release(3)) + "]"),
    b'{ "releases" :\n[\n  '
    + json.dumps(_release(1), indent=2).encode()
    + b"  ,\n"
    + json.dumps(_release(2)).encode()
    + b"\n]\n}\n",
    # more packages after the first (concatenated), and other values
    _package([_release(1)]) + b"\n" + _package([_release(2), _release(3)]),
    b'{"releases": []}',
    b'{"releases": {"not": "an array"}}',
    b'{"rel\\u0065ases": [' + json.dumps(_release(1)).encode() + b"]}",
    # releases that are not objects, deeper than the scanner cuts, broken ones
    b'{"releases": [' + json.dumps(_release(1)).encode() + b", null, 3, " + json.dumps(_release(2)).encode() + b"]}",
    b'{"releases": [' + json.dumps(_release(1, deep=json.loads("[" * 40 + "]" * 40))).encode() + b"]}",
    b'{"releases": [' + json.dumps(_release(1, deep=json.loads('{"a":' * 40 + "1" + "}" * 40))).encode() + b", {}]}",
    _package([_release(1), _release(2)])[:-40],
    b'{"releases": [' + json.dumps(_release(1)).encode() + b' {"a": 1}]}',
    b'{"releases": [' + json.dumps(_release(1)).encode() + b",]}",
    b'{"releases": [{"ocid": "x"}] garbage',
    b'{"releases": [' + json.dumps(_release(1)).encode() + b', {"n": 99999999999999999999}, {"n": 1}]}',
    b'{"releases": [' + json.dumps(_release(1)).encode() + b', {"n": "\xff"}, {"n": 1}]}',
]


@pytest.mark.parametrize("block", [sources.BLOCK, 64, 7])
@pytest.mark.parametrize("data", TRICKY)
def test_releases_cut_into_bytes_read_as_the_parser_reads_them(
    data: bytes, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file read whole by the parser and cut by the scanner (blocks as small as 7 bytes:
    escapes and releases split between reads) gives the same candidates and problems."""
    monkeypatch.setattr(sources, "BLOCK", block)
    whole = _read(data)
    assert _read(data, cut=1) == whole
    assert _read(data, cut=3) == whole


@pytest.mark.parametrize("block", [sources.BLOCK, *range(1, 40)])
def test_a_release_package_crosses_to_the_checking_processes_as_its_bytes(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading thread cuts the releases and never parses them, wherever its reads end: the
    batch it sends holds the file's own bytes of its releases, not their values."""
    monkeypatch.setattr(sources, "BLOCK", block)
    releases = [_release(i) for i in range(50)]
    data = _package(releases, before=', "publisher": {"name": "p \\"}"}')
    assert not any(
        isinstance(i, importer._Read) for i in importer.read_releases(io.BytesIO(data), name="f.json", cut=20)
    )
    items = [
        i for i in importer.read_releases(io.BytesIO(data), name="f.json", cut=20) if isinstance(i, sources.Slices)
    ]
    assert sum(len(i) for i in items) == 50 and max(len(i) for i in items) <= 20
    assert [json.loads(s.value(i)) for s in items for i in range(len(s))] == releases
    if block > len(data):  # else a piece ends where a read does
        assert [len(i) for i in items] == [20, 20, 10]
        sent = len(pickle.dumps(importer._Batch("f.json", list(items), 0, 0)))
        assert sent < len(data) + 16 * len(releases) + 1000  # the bytes, and two offsets a release


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ['"', "\\", "}", "{", "]", "[", ",", '\\"}', "},{", "\\\\"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.dictionaries(_TEXT, _JSON, max_size=5), min_size=1, max_size=6),
    spaces=st.sampled_from(["", " ", "\n", " \r\n\t "]),
    ascii_only=st.booleans(),
)
def test_any_release_values_are_cut_where_the_parser_reads_them(
    values: list[dict[str, Any]], spaces: str, ascii_only: bool
) -> None:
    body = ("," + spaces).join(json.dumps(v, ensure_ascii=ascii_only) for v in values)
    data = f'{{"releases":{spaces}[{spaces}{body}{spaces}]{spaces}}}'.encode()
    expected = [(f"release #{i}", v) for i, v in enumerate(ijson.items(data, "releases.item", use_float=True), 1)]
    assert _read(data, cut=2) == expected == _read(data)


def test_json_lines_are_cut_into_lines_and_read_as_before() -> None:
    record = {"ocid": "ocds-abc123-c9", "releases": [_release(7), _release(8)]}
    lines = [json.dumps(_release(1)), "", "   ", '{"bad": ', json.dumps(record), json.dumps(_release(2))]
    data = "\n".join(lines).encode()
    assert _read(data, name="f.jsonl", cut=2) == _read(data, name="f.jsonl")
    assert [i[0] for i in _read(data, name="f.jsonl", cut=2)] == [
        "line 1", "line 4", "line 5 release #1", "line 5 release #2", "line 6"
    ]  # fmt: skip


@pytest.mark.parametrize("workers", [0, 1])
def test_nothing_after_a_release_that_does_not_parse_is_read_or_recorded(log: Log, workers: int) -> None:
    """A release whose brackets balance but that is not JSON (found where it is parsed, after the
    reader has cut the batches after it): the releases before it are recorded, the problem says
    where the parse stopped, and no later release of the file is recorded, nor the file read to
    its end; the next file is imported."""
    releases = [json.dumps(_release(i)) for i in range(40)]
    releases[13] = '{"ocid": "ocds-abc123-x", "id": tru}'
    data = ("{" + '"releases": [' + ", ".join(releases) + "]}").encode() + b" " * (8 * sources.BLOCK)
    broken = io.BytesIO(data)
    after = io.BytesIO(_package([_release(100)]))
    report = importer.import_files(log, [("b.json", broken), ("a.json", after)], now=T0, batch=4, workers=workers)
    assert [(p.file, p.release, p.path) for p in report.problems] == [("b.json", "after release #13", "$")]
    assert report.problems[0].reason.startswith("invalid JSON: lexical error")
    assert (report.read, report.imported) == (14, 14)
    with log.engine.connect() as conn:
        ids = {
            r["id"]
            for o in {f"ocds-abc123-c{i}" for i in range(5)}
            for r in importer.imported_releases(conn, [o]).get(o, ([], 0))[0]
        }
    assert ids == {f"r{i}" for i in range(13)} | {"r100"}
    assert broken.tell() < len(data)


def test_a_strict_import_that_breaks_late_records_nothing(log: Log) -> None:
    releases = [json.dumps(_release(i)) for i in range(30)] + ['{"ocid": "ocds-abc123-x", "id": nul}']
    data = ('{"releases": [' + ", ".join(releases) + "]}").encode()
    with pytest.raises(importer.ImportRefusedError) as refused:
        importer.import_files(log, [("s.json", io.BytesIO(data))], now=T0, batch=4, workers=1, strict=True)
    assert [p.release for p in refused.value.problems] == ["after release #30"]
    with log.engine.connect() as conn:
        assert importer.imported_releases(conn, [f"ocds-abc123-c{i}" for i in range(5)]) == {}


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_releases_parsed_in_the_workers_are_recorded_as_the_parser_reads_them(log: Log, fmt: str) -> None:
    """Numbers as published (1.0 stays a float), long runs of digits, escapes and repeated keys:
    the stored releases (made from the bytes the reader kept) are the parser's values, and a
    tender's later releases merge onto what was recorded."""
    odd = '"value": {"amount": 1.0, "small": 1e-7}, "b": "1234567890123456789012", "t": "\\u00e9\\"}", "t": "last"'
    texts = [json.dumps(_release(i))[:-1] + ", " + odd + "}" for i in range(12)]
    data = "\n".join(texts).encode() if fmt == "jsonl" else ('{"releases": [' + ", ".join(texts) + "]}").encode()
    report = importer.import_files(log, [(f"n.{fmt}", io.BytesIO(data))], now=T0, batch=3, workers=1)
    assert (report.imported, report.invalid) == (12, 0)
    with log.engine.connect() as conn:
        stored = importer.imported_releases(conn, ["ocds-abc123-c0"])["ocds-abc123-c0"][0]
    published = [json.loads(texts[i]) for i in (0, 5, 10)]
    assert stored == published and stored[0]["t"] == "last"
    # merged batch after batch from the bodies the importing process parsed again
    with log.engine.connect() as conn:
        compiled = importer.compiled_release(conn, "ocds-abc123-c0")
    assert compiled is not None and compiled == ocds.merger().create_compiled_release(published)
    assert isinstance(compiled["value"]["amount"], float)
