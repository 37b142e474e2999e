"""Importing OCDS release packages: real published data, round trips, idempotency, bad input,
strict mode, and how imported tenders relate to the rules and the search projection (SQLite
and PostgreSQL)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from ocdsmerge import Merger
from sqlalchemy import func, select

from demo import tenders as demo
from ledger.core.errors import ConflictError
from ledger.log import Log
from ledger.procurement import export, importer, ocds, project, query
from ledger.procurement.record import record
from ledger.store.schema import events, tender_index
from ledger.submission import Submission
from tests.conftest import ORIGIN, T0

from .helpers import CHAIN_ID

ASSETS = Path(__file__).parent.parent / "assets" / "ocds"
#: Real published data: Paraguay's DNCP (CC BY 4.0), from the ocdskit 1.7.0 sdist's test fixtures.
PARAGUAY = ASSETS / "paraguay-dncp-246807.json"
#: The Open Contracting Partnership's fictional sample (PDDL 1.0): a whole contracting process.
SAMPLE = ASSETS / "ocp-fictional-sample.json"
#: Real published data of Mexico City (CDMX), whose ocids are upper-case (kept as published).
CDMX = ASSETS / "cdmx-uppercase-ocid.json"
PACKAGE = export.Package(uri="https://example.test/export", published_date=T0, publisher=ORIGIN)


def _import(log: Log, *files: Path, strict: bool = False, now: datetime = T0, **kw: Any) -> importer.Report:
    streams = [(f.name, f.open("rb")) for f in files]
    try:
        return importer.import_files(log, streams, now=now, strict=strict, **kw)
    finally:
        for _, stream in streams:
            stream.close()


def _bytes(log: Log, data: bytes | str, *, name: str = "body.json", strict: bool = False, **kw: Any) -> importer.Report:
    raw = data.encode() if isinstance(data, str) else data
    return importer.import_files(log, [(name, io.BytesIO(raw))], now=T0, strict=strict, **kw)


def _package(*releases: Any) -> str:
    return json.dumps(
        {
            "uri": "u",
            "version": "1.1",
            "publishedDate": "2026-01-01T00:00:00Z",
            "publisher": {"name": "p"},
            "releases": list(releases),
        }
    )


def _release(ocid: str = "ocds-abc123-t1", rid: str = "r1", **extra: Any) -> dict[str, Any]:
    return {
        "ocid": ocid,
        "id": rid,
        "date": "2026-01-01T10:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        **extra,
    }


def _source(*files: Path) -> list[dict[str, Any]]:
    return [r for f in files for r in json.loads(f.read_text(encoding="utf-8"))["releases"]]


def _event_count(log: Log) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def _exported(log: Log, **kw: Any) -> list[dict[str, Any]]:
    package: dict[str, Any] = json.loads("".join(export.release_package(log.engine, PACKAGE, **kw)))
    assert package["version"] == "1.1" and package["publisher"] == {"name": ORIGIN}
    releases: list[dict[str, Any]] = package["releases"]
    return releases


def test_real_data_round_trips_unchanged(log: Log) -> None:
    report = _import(log, PARAGUAY, SAMPLE)
    assert (report.read, report.imported, report.duplicates, report.problems) == (7, 7, 0, [])
    assert report.tenders == 2
    assert _exported(log) == _source(PARAGUAY, SAMPLE)  # every release, as JSON values, in order
    assert _exported(log, ocid="ocds-03ad3f-246807") == _source(PARAGUAY)


def test_each_release_is_one_event_typed_by_its_tag_with_the_release_as_payload(log: Log) -> None:
    _import(log, SAMPLE)
    stored = log.reader.tender_events("ocds-213czf-000-00001")
    assert [e.type for e in stored] == [
        "tender.planned",
        "tender.published",
        "tender.amended",
        "award.issued",
        "contract.signed",
        "contract.payment",
    ]
    assert [json.loads(e.payload) for e in stored] == _source(SAMPLE)


def test_compiled_and_versioned_releases_are_ocdsmerges(log: Log) -> None:
    _import(log, SAMPLE, PARAGUAY)
    demo.record_demo(log, chain_id=CHAIN_ID)
    merger = Merger(schema=json.loads(ocds.RELEASE_SCHEMA.read_text()))
    package = json.loads("".join(export.record_package(log.engine, PACKAGE)))
    records = {r["ocid"]: r for r in package["records"]}
    assert set(records) == {"ocds-213czf-000-00001", "ocds-03ad3f-246807", demo.ROAD, demo.SCHOOL}
    for ocid, rec in records.items():
        assert rec["releases"] == _exported(log, ocid=ocid)
        assert rec["compiledRelease"] == merger.create_compiled_release(rec["releases"])
        assert rec["versionedRelease"] == merger.create_versioned_release(rec["releases"])
    sample = records["ocds-213czf-000-00001"]["compiledRelease"]
    assert sample["tender"]["title"] == "Planned cycle lane improvements" and sample["tag"] == ["compiled"]


def test_importing_twice_records_nothing_new_also_after_a_restart(db_url: str) -> None:
    log = Log.open(db_url, origin=ORIGIN)
    try:
        _import(log, SAMPLE, PARAGUAY)
        before = _event_count(log)
        again = _import(log, SAMPLE, PARAGUAY, now=T0 + timedelta(hours=1))
        assert (again.imported, again.duplicates, again.problems) == (0, 7, [])
    finally:
        log.close()
    reopened = Log.open(db_url, origin=ORIGIN)
    try:
        third = _import(reopened, SAMPLE, now=T0 + timedelta(days=1), strict=True)
        assert (third.imported, third.duplicates) == (0, 6)
        assert _event_count(reopened) == before == 7
    finally:
        reopened.close()


def test_a_used_release_id_with_other_content_is_reported(log: Log) -> None:
    _bytes(log, _package(_release(tender={"id": "t", "title": "One"})))
    report = _bytes(log, _package(_release(tender={"id": "t", "title": "Two"})))
    assert report.imported == 0
    assert [(p.release, p.path) for p in report.problems] == [("r1", "id")]
    assert "already imported with different content" in report.problems[0].reason


def test_imported_tenders_appear_in_search_with_their_headline(log: Log) -> None:
    _import(log, SAMPLE)
    page = query.search_tenders(log.engine, q="cycle lane")
    assert [t.ocid for t in page.items] == ["ocds-213czf-000-00001"]
    found = page.items[0]
    assert (found.title, found.buyer_id, found.buyer_name) == (
        "Planned cycle lane improvements",
        "GB-LAC-E09000003",
        "London Borough of Barnet",
    )
    assert (found.status, found.procurement_method, found.value_amount, found.currency) == (
        "complete",
        "open",
        1100000.0,
        "GBP",
    )
    assert found.tender_start == datetime(2010, 3, 1, 9, 0, tzinfo=UTC)
    assert found.tender_end == datetime(2010, 4, 8, 18, 0, tzinfo=UTC)
    assert found.awarded_amount == 11000000.0 and found.suppliers == ["AnyCorp Cycle Provision"]
    assert found.published_at == datetime(2010, 3, 15, 9, 30, tzinfo=UTC)  # the tender release's date
    assert found.events == 6
    assert query.search_tenders(log.engine, buyer="GB-LAC-E09000003", status="complete").items == [found]
    assert query.tender_state(log.engine, found.ocid).imported is True


def test_projection_rebuild_gives_the_same_rows(log: Log) -> None:
    _import(log, SAMPLE, PARAGUAY)
    demo.record_demo(log, chain_id=CHAIN_ID)

    def rows() -> list[Any]:
        with log.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(tender_index).order_by(tender_index.c.ocid))]

    before = rows()
    assert project.rebuild(log.engine) == []
    assert rows() == before and len(before) == 4


def test_imported_and_native_tenders_do_not_mix(log: Log) -> None:
    demo.record_demo(log, chain_id=CHAIN_ID)
    report = _bytes(log, _package(_release(ocid=demo.ROAD)))
    assert [(p.release, p.path) for p in report.problems] == [("r1", "ocid")]
    assert report.problems[0].reason.startswith(f"tender {demo.ROAD} is recorded natively")  # the tender, not r1
    _import(log, SAMPLE)
    clarify = {"tender": {"id": "ocds-213czf-000-00001-01-tender", "enquiries": [{"id": "q1", "title": "When?"}]}}
    with pytest.raises(ConflictError) as refused:
        record(
            log,
            [Submission(ocid="ocds-213czf-000-00001", type="tender.clarified", payload=clarify)],
            now=T0,
            signatures="optional",
            chain_id=CHAIN_ID,
        )
    assert refused.value.field == "ocid" and "imported from OCDS releases" in refused.value.reason


NEITHER = (
    "is neither an OCDS release package (object with 'releases'), a record package (object "
    "with 'records'), a record nor a release (object with 'ocid')"
)

BAD_RELEASES = [
    (
        {"id": "r1", "date": "2026-01-01T00:00:00Z", "tag": ["tender"], "initiationType": "tender"},
        "$",
        '"ocid" is a required property',
    ),
    (_release(ocid="ocds-87sd3t-1?x"), "ocid", "must be an OCDS ocid"),
    (_release(tag=["compiled"]), "tag", "'compiled' releases are not imported"),
    (_release(date="1 January 2026"), "date", 'is not a "date-time"'),
    (_release(date=None), "date", 'is not a "date-time"'),
    (_release(id=7), "id", "must be a non-empty string"),
    (
        _release(planning={"budget": {"amount": {"amount": 2**60, "currency": "EUR"}}}),
        "planning.budget.amount.amount",
        "outside the exact range",
    ),
    ("not a release", "$", "a release must be a JSON object, got str"),
]


@pytest.mark.parametrize(("release", "path", "reason"), BAD_RELEASES)
def test_invalid_releases_are_reported_one_by_one_and_skipped(log: Log, release: Any, path: str, reason: str) -> None:
    good = _release(ocid="ocds-abc123-good", rid="ok")
    report = _bytes(log, _package(good, release), name="bad.json")
    assert report.imported == 1 and len(report.problems) == 1
    problem = report.problems[0]
    assert (problem.file, problem.path) == ("bad.json", path)
    assert reason in problem.reason, problem.reason
    expected_id = (
        release.get("id") if isinstance(release, dict) and isinstance(release.get("id"), str) else "release #2"
    )
    assert problem.release == expected_id
    ocid = release.get("ocid", "") if isinstance(release, dict) else ""
    assert problem.ocid == ocid and not problem.recorded
    assert str(problem).startswith(
        f"bad.json: {ocid} {expected_id}: {path}: " if ocid else f"bad.json: {expected_id}: "
    )


NOTED_RELEASES = [
    (
        _release(tender={"id": "t", "value": {"amount": "12", "currency": "EUR"}}),
        "tender.value.amount",
        '"12" is not of type',
    ),
    (_release(awards=[{"id": "a", "status": 3}]), "awards[0].status", "3 is not of type"),
    (_release(date="2026-01-01T10:00:00"), "date", 'is not a "date-time"'),
    # federal Mexico: one null inside a field must not keep the release out of the tender's history
    (_release(tender={"id": "t", "submissionMethod": [None]}), "tender.submissionMethod[0]", "null is not of type"),
]


@pytest.mark.parametrize(("release", "path", "reason"), NOTED_RELEASES)
def test_schema_problems_are_recorded_with_the_release_by_default_and_refuse_it_in_strict_mode(
    log: Log, release: Any, path: str, reason: str
) -> None:
    good = _release(ocid="ocds-abc123-good", rid="ok")
    report = _bytes(log, _package(good, release), name="bad.json")
    assert (report.imported, report.problems, report.noted_releases) == (2, [], 1)
    note = report.notes[0]
    assert {n.path for n in report.notes} == {path}
    assert (note.file, note.ocid, note.release, note.path, note.recorded) == (
        "bad.json",
        release["ocid"],
        "r1",
        path,
        True,
    )
    assert reason in note.reason, note.reason
    assert report.to_json()["noted"] == len(report.notes)
    # kept with the release, for its tender page
    with log.engine.connect() as conn:
        stored = importer.release_notes(conn, release["ocid"])
    assert {(n["release"], n["path"]) for n in stored} == {("r1", path)}
    assert log.reader.tender_events(release["ocid"])[0].parsed_payload == release
    with pytest.raises(importer.ImportRefusedError) as refused:
        _bytes(
            log,
            _package(_release(ocid="ocds-abc123-other", rid="x"), {**release, "ocid": "ocds-abc123-s"}),
            strict=True,
        )
    assert {(p.ocid, p.path) for p in refused.value.problems} == {("ocds-abc123-s", path)}


@pytest.mark.parametrize(
    ("data", "where", "reason"),
    [
        (_package(_release(rid="a"), _release(rid="b"))[:-30], "after release #1", "invalid JSON"),  # truncated
        ('{"releases": [{"ocid": "ocds-abc123-x", ]}', "after release #0", "invalid JSON"),
        ("[1]", "item #1", "is neither an OCDS release package"),
        ('{"uri": "u", "version": "1.1"}', "value #1", "is neither an OCDS release package"),
        ('{"uri": "u", "releases": []}', "file", "no releases found"),
        ("", "after release #0", "invalid JSON: parse error: premature EOF"),
    ],
)
def test_unreadable_files_name_where_they_fail(log: Log, data: str, where: str, reason: str) -> None:
    report = _bytes(log, data, name="broken.json")
    assert [(p.file, p.release) for p in report.problems] == [("broken.json", where)]
    assert reason in report.problems[0].reason


def test_strict_mode_writes_nothing_and_lists_every_problem(log: Log) -> None:
    # Enough good releases for several batches before the bad ones: nothing of them may stay.
    good = [_release(ocid=f"ocds-abc123-g{i}", rid="r") for i in range(7)]
    body = _package(*good, _release(ocid="bad"), _release(rid="r2", tag=["compiled"]))
    with pytest.raises(importer.ImportRefusedError) as refused:
        _bytes(log, body, strict=True, batch=3)
    assert [(p.release, p.path) for p in refused.value.problems] == [("r1", "ocid"), ("r2", "tag")]
    assert "nothing was imported" in str(refused.value)
    assert _event_count(log) == 0 and query.count_tenders(log.engine) == 0


def test_upper_case_ocids_are_kept_exactly_as_published(log: Log) -> None:
    """Mexico City publishes its ocids in upper case (``OCDS-87SD3T-…``): they are recorded as such."""
    report = _import(log, CDMX, strict=True)
    assert report.imported > 0 and not report.problems
    published = {release["ocid"] for release in json.loads(CDMX.read_bytes())["releases"]}
    assert all(ocid.startswith("OCDS-87SD3T-") for ocid in published)
    for ocid in published:
        assert log.reader.tender(ocid).ocid == ocid


def test_json_lines_and_concatenated_packages(log: Log) -> None:
    lines = "\n".join(
        [
            _package(_release(ocid="ocds-abc123-l1")),
            json.dumps(_release(ocid="ocds-abc123-l2")),
            '{"releases": [',  # a broken line loses only itself
            "",
            json.dumps({"neither": 1}),
            _package(_release(ocid="ocds-abc123-l3"), _release(ocid="ocds-abc123-l3", rid="r2", tag=["award"])),
        ]
    )
    report = _bytes(log, lines, name="data.jsonl")
    assert report.imported == 4
    assert [(p.release, p.reason.split(":")[0]) for p in report.problems] == [
        ("line 3", "invalid JSON"),
        ("line 5", NEITHER),
    ]
    concatenated = _package(_release(ocid="ocds-abc123-c1")) + _package(_release(ocid="ocds-abc123-c2"))
    assert _bytes(log, concatenated, name="two.json").imported == 2
    assert [e.type for e in log.reader.tender_events("ocds-abc123-l3")] == ["tender.published", "award.issued"]


def test_tags_map_to_event_types_latest_stage_first() -> None:
    assert importer.event_type(["tender"]) == "tender.published"
    assert importer.event_type(["planning", "tender", "award"]) == "award.issued"
    assert importer.event_type(["contractTermination", "contract"]) == "contract.completed"
    assert importer.event_type(["tenderUpdate"]) == "tender.clarified"


def test_progress_is_reported_per_batch(log: Log) -> None:
    seen: list[tuple[int, int]] = []
    body = _package(*[_release(ocid=f"ocds-abc123-p{i}") for i in range(5)])
    _bytes(log, body, batch=2, progress=lambda read, offset: seen.append((read, offset)))
    assert [read for read, _ in seen] == [2, 4, 5]
    assert seen[-1][1] == len(body)


@pytest.fixture
def big_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "many.json"
    path.write_text(_package(*[_release(ocid=f"ocds-abc123-m{i}", rid=f"r{i}") for i in range(1200)]))
    yield path


def test_a_file_larger_than_a_batch_is_imported_completely(log: Log, big_file: Path) -> None:
    report = _import(log, big_file)
    assert report.imported == 1200 and query.count_tenders(log.engine) == 1200


def test_the_report_keeps_the_first_problems_and_counts_them_all(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_PROBLEMS", 2)
    body = _package(*[_release(ocid=f"BAD-{i}", rid=f"r{i}") for i in range(5)])
    report = _bytes(log, body)
    assert (report.invalid, [p.release for p in report.problems]) == (5, ["r0", "r1"])
    assert report.to_json()["invalid"] == 5
    with pytest.raises(importer.ImportRefusedError) as refused:
        _bytes(log, body, strict=True)
    assert refused.value.count == 5 and len(refused.value.problems) == 2
    assert "(and 4 more)" in str(refused.value)


@pytest.mark.parametrize("ocid", ["ocds-tplog0-heads", "ocds-tpreg0-officers"])
def test_the_logs_own_ocids_are_never_imported(log: Log, ocid: str) -> None:
    report = _bytes(log, _package(_release(ocid=ocid)))
    assert report.imported == 0
    assert [(p.release, p.path) for p in report.problems] == [("r1", "ocid")]
    assert "reserved for the log itself" in report.problems[0].reason
    assert log.reader.pending_count() == 0


# --- what publishers publish (issue 18) ------------------------------------------------------


def _imported_ocids(log: Log) -> list[str]:
    with log.engine.connect() as conn:
        return sorted(conn.execute(select(tender_index.c.ocid)).scalars())


def _releases3() -> list[dict[str, Any]]:
    return [_release(ocid=f"ocds-abc123-f{i}", rid=f"r{i}") for i in range(3)]


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        ("bare array", json.dumps(_releases3())),
        ("single release, concatenated", "".join(json.dumps(r) for r in _releases3())),
        ("one per line without .jsonl", "\n".join(json.dumps(r) for r in _releases3())),
        (
            "record package",
            json.dumps({"version": "1.1", "records": [{"ocid": r["ocid"], "releases": [r]} for r in _releases3()]}),
        ),
        ("array of records", json.dumps([{"ocid": r["ocid"], "releases": [r]} for r in _releases3()])),
        # OCDS 1.0: no version, organisations without ids
        (
            "OCDS 1.0 release package",
            json.dumps(
                {
                    "uri": "u",
                    "publishedDate": "2015-01-01T00:00:00Z",
                    "publisher": {"name": "p"},
                    "releases": [{**r, "buyer": {"identifier": {"scheme": "GB-COH", "id": "1"}}} for r in _releases3()],
                }
            ),
        ),
    ],
)
def test_every_shape_publishers_publish_is_read(log: Log, shape: str, body: str) -> None:
    report = _bytes(log, body, name="data.json")
    assert (report.imported, report.problems) == (3, []), shape
    assert _imported_ocids(log) == ["ocds-abc123-f0", "ocds-abc123-f1", "ocds-abc123-f2"]


def _text_package(*releases: Any) -> str:
    return json.dumps(json.loads(_package(*releases)), ensure_ascii=False)


def test_gzip_and_encodings_are_read(log: Log) -> None:
    import gzip

    title = "Adquisición de vehículos — año 2026"
    package = _text_package(_release(ocid="ocds-abc123-e1", tender={"id": "t", "title": title}))
    report = _bytes(log, gzip.compress(package.encode()), name="data.json.gz")
    assert report.imported == 1 and report.files[0]["gzip"] is True
    latin = _text_package(_release(ocid="ocds-abc123-e2", tender={"id": "t", "title": "Adquisición de vehículos"}))
    report = _bytes(log, latin.encode("iso-8859-1"), name="latin.json")
    assert report.imported == 1 and report.files[0]["how"] == "detected"
    assert log.reader.tender_events("ocds-abc123-e2")[0].parsed_payload["tender"]["title"] == "Adquisición de vehículos"
    forced = _text_package(_release(ocid="ocds-abc123-e3", tender={"id": "t", "title": "Año"}))
    report = _bytes(log, forced.encode("cp1252"), name="forced.json", encoding="cp1252")
    assert report.imported == 1 and report.files[0] == {
        "file": "forced.json",
        "encoding": "cp1252",
        "how": "forced",
        "gzip": False,
        "format": "json",
    }
    utf16 = _text_package(_release(ocid="ocds-abc123-e4", tender={"id": "t", "title": title}))
    report = _bytes(log, utf16.encode("utf-16"), name="utf16.json")
    assert report.imported == 1 and report.files[0]["how"] == "bom"
    assert log.reader.tender_events("ocds-abc123-e4")[0].parsed_payload["tender"]["title"] == title
    bad = _bytes(log, forced.encode(), name="x.json", encoding="no-such-encoding")
    assert [(p.release, p.reason) for p in bad.problems] == [
        ("file", "cannot be read: unknown encoding 'no-such-encoding'")
    ]
    rot = _bytes(log, forced.encode(), name="x.json", encoding="rot13")
    assert [p.reason for p in rot.problems] == ["cannot be read: 'rot13' is not a text encoding"]


def test_a_record_package_is_imported_from_its_releases_and_its_compiled_release_cross_checked(log: Log) -> None:
    releases = [
        _release(ocid="ocds-abc123-rec", rid="r1", tender={"id": "t", "title": "First"}),
        _release(ocid="ocds-abc123-rec", rid="r2", date="2026-02-01T00:00:00Z", tender={"id": "t", "title": "Second"}),
    ]
    compiled = ocds.compiled_release(releases)
    wrong = {**compiled, "tender": {"id": "t", "title": "First"}}
    linked = {
        "ocid": "ocds-abc123-lnk",
        "releases": [{"url": "https://x.test/r1.json", "date": "2026-01-01T00:00:00Z"}],
    }
    body = json.dumps(
        {
            "records": [
                {"ocid": "ocds-abc123-rec", "releases": releases, "compiledRelease": wrong},
                linked,
            ]
        }
    )
    report = _bytes(log, body, name="records.json")
    assert report.imported == 2
    [note] = report.notes
    assert (note.ocid, note.release, note.path) == ("ocds-abc123-rec", "record #1", "compiledRelease.tender.title")
    [refused] = report.problems
    assert (refused.ocid, refused.release, refused.path) == ("ocds-abc123-lnk", "record #2", "releases")
    assert "linked releases" in refused.reason
    # with the right compiled release, nothing to note
    again = json.dumps({"records": [{"ocid": "ocds-abc123-rec", "releases": releases, "compiledRelease": compiled}]})
    assert _bytes(log, again).notes == []


def test_the_stored_compiled_release_is_ocdsmerges_whatever_the_order_releases_arrive_in(log: Log) -> None:
    """New releases are merged into the stored compiled release; an older one recompiles: both
    give what ocdsmerge gives from all the releases."""
    ocid = "ocds-abc123-ord"
    dated = [
        _release(
            ocid=ocid,
            rid=f"r{i}",
            date=f"2026-01-{day:02d}T00:00:00Z",
            tender={"id": "t", "title": f"v{day}"},
            awards=[{"id": f"a{i % 2}", "status": "active", "value": {"amount": day, "currency": "EUR"}}],
        )
        for i, day in enumerate([3, 5, 4, 9, 1, 9])
    ]
    for i, release in enumerate(dated):
        _bytes(log, _package(release), name=f"{i}.json")
        with log.engine.connect() as conn:
            stored = importer.compiled_release(conn, ocid)
        assert stored == ocds.compiled_release(dated[: i + 1]), i
    summary = query.tender_summary(log.engine, ocid)
    assert summary.title == "v9"


def test_a_release_checked_with_its_json_text_is_checked_the_same() -> None:
    """The text a release was parsed from spares walks (depth, privacy names) and lets orjson
    write its RFC 8785 bytes: the checked release is the same as without it, for real releases,
    a float, a 16-digit integer, a name beyond U+FFFF and an escaped member name."""
    seed = bytes(range(32))
    cases = [
        *_source(SAMPLE, PARAGUAY, CDMX),
        _release(rid="f", tender={"id": "t", "value": {"amount": 1311264.0, "currency": "MXN"}}),
        _release(rid="n", note={"n": 1234567890123456, "big": 2**53 - 1}),
        _release(rid="e", title='\U0001f600 é "q" \\ \n', **{"\U0001f600": 1, "\ufb33": 2}),
    ]
    texts = [json.dumps(r, ensure_ascii=False).encode() for r in cases]
    texts.append(texts[0].replace(b'"contactPoint"', b'"\\u0063ontactPoint"'))
    cases.append(cases[0])
    for release, text in zip(cases, texts, strict=True):
        plain = importer.check_release(release, file="f", position="p", digest_key=seed, seed=seed)
        given = importer.check_release(
            orjson.loads(text), file="f", position="p", digest_key=seed, seed=seed, text=text, parsed=True
        )
        assert isinstance(plain, importer._Release) and given == plain
