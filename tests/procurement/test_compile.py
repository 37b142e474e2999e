"""ocds.compile_releases gives ocdsmerge's compiled release: the same JSON text (keys in the same
order), the same warnings and the same errors, for generated releases of the OCDS schema's shapes
and for every release of the fixtures under tests/assets."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocdsmerge import Merger
from ocdsmerge.flatten import MergeStrategy

from demo import ocds as demo_ocds
from ledger.procurement import ocds

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _outcome(compile: Any, releases: list[dict[str, Any]]) -> tuple[str, list[tuple[type, str]]]:
    """What compiling ``releases`` gives: the JSON text of the result or the error, and the warnings
    (on a copy: in odd cases ocdsmerge's unflatten appends to a list of its input)."""
    releases = copy.deepcopy(releases)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            text = json.dumps(compile(releases))
        except Exception as exc:  # the error is the outcome compared
            text = f"{type(exc).__name__}: {exc}"
    return text, [(w.category, str(w.message)) for w in caught]


def assert_same(releases: list[dict[str, Any]], merger: Merger | None = None) -> None:
    using = merger or ocds.merger()
    assert _outcome(lambda r: ocds.compile_releases(r, using=using), releases) == _outcome(
        using.create_compiled_release, releases
    )


# Field names of the OCDS release schema (those with merge rules among them), a name it lacks (an
# extension's) and ``id``: objects in arrays are merged by their ``id``.
_NAMES = st.sampled_from(
    ["id", "tender", "awards", "items", "parties", "roles", "additionalIdentifiers", "value", "amount",
     "suppliers", "tenderers", "amendments", "changes", "submissionMethod", "relatedProcesses",
     "relationship", "contracts", "implementation", "transactions", "title", "date", "tag", "ocid",
     "x_extension"]
)  # fmt: skip
_IDS = st.one_of(st.sampled_from(["1", "2", "a"]), st.integers(0, 2), st.none(), st.booleans(), st.just(1.0))
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.sampled_from(["", "a", "b"])
)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_NAMES, children, max_size=4)


def _with_id(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object of an array: most with an ``id`` (repeated ones too), some without."""
    return st.one_of(
        st.builds(lambda i, rest: {"id": i, **rest}, _IDS, _objects(children)),
        _objects(children),
    )


_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        _objects(children),
        st.lists(_with_id(children), max_size=3),
        st.lists(_SCALARS, max_size=3),
        st.lists(st.one_of(_SCALARS, _with_id(children)), max_size=3),
    ),
    max_leaves=12,
)
_DATES = st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2023-12-31T00:00:00Z"])


@st.composite
def _releases(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for number in range(draw(st.integers(1, 4))):
        body = draw(_objects(_VALUES))
        release = {"ocid": "ocds-213czf-1", "id": f"r{number}", "date": draw(_DATES), "tag": ["tender"], **body}
        if draw(st.booleans()):  # the fields in another order
            release = dict(reversed(list(release.items())))
        out.append(release)
    return out


@settings(max_examples=600)
@given(_releases())
def test_generated_releases_compile_as_ocdsmerge_compiles_them(releases: list[dict[str, Any]]) -> None:
    assert_same(releases)


@settings(max_examples=100)
@given(_releases())
def test_a_schema_without_rules_and_rule_overrides_compile_as_ocdsmerge(releases: list[dict[str, Any]]) -> None:
    assert_same(releases, Merger(merge_rules={}))
    assert_same(releases, Merger(schema=ocds.release_schema(), rule_overrides={("awards",): MergeStrategy.APPEND}))


@pytest.mark.parametrize(
    "releases",
    [
        [{"ocid": "o", "id": "1", "tag": ["tender"]}],  # no date
        [{"ocid": "o", "id": "1", "date": None}, {"ocid": "o", "id": "2", "date": "2024"}],
        [{"ocid": "o", "id": "1", "date": 5}, {"ocid": "o", "id": "2", "date": "2024"}],
        [{"ocid": "o", "date": "2024", "a": {"b": 1}}, {"ocid": "o", "date": "2025", "a": {"b": {"c": 1}}}],
        [{"ocid": "o", "date": "2024", "a": [{"id": {"x": 1}}]}],
        [{"ocid": "o", "date": "2024", "a": [{"id": 1}, {"id": "1", "b": 2}]}],
        ["not a release"],
    ],
)
def test_odd_releases_fail_or_compile_as_ocdsmerge(releases: list[Any]) -> None:
    assert_same(releases)


def _fixture_tenders() -> dict[str, list[dict[str, Any]]]:
    """Every tender's releases in the JSON fixtures under tests/assets (release packages, record
    packages' embedded releases, JSON Lines of releases), by file and ocid."""
    out: dict[str, list[dict[str, Any]]] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict) and isinstance(value.get("releases"), list):
            for release in value["releases"]:
                add(name, release)
        elif isinstance(value, dict) and isinstance(value.get("records"), list):
            for record in value["records"]:
                add(name, record)
        elif isinstance(value, dict) and isinstance(value.get("ocid"), str) and "date" in value:
            out.setdefault(f"{name} {value['ocid']}", []).append(value)

    for path in sorted(ASSETS.rglob("*.json*")):
        raw = path.read_bytes()
        for encoding in ("utf-8", "latin-1"):
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        try:
            values = [json.loads(text)]
        except ValueError:
            try:
                values = [json.loads(line) for line in text.splitlines() if line.strip()]
            except ValueError:
                continue
        for value in values:
            add(str(path.relative_to(ASSETS)), value)
    return out


def test_every_fixture_tender_compiles_as_ocdsmerge_compiles_it() -> None:
    tenders = _fixture_tenders()
    assert len(tenders) >= 11 and sum(map(len, tenders.values())) >= 24, sorted(tenders)  # the fixtures are found
    for releases in tenders.values():
        assert_same(releases)


def test_the_demo_tenders_compile_as_ocdsmerge_compiles_them() -> None:
    """The generated tenders the demo and bench/import_bench.py import (633 releases)."""
    tenders: dict[str, list[dict[str, Any]]] = {}
    for release in demo_ocds.release_package()["releases"]:
        tenders.setdefault(release["ocid"], []).append(release)
    assert len(tenders) > 100
    for releases in tenders.values():
        assert_same(releases)
