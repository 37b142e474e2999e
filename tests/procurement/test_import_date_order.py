"""A feed published in date order (SQLite and PostgreSQL): each tender's releases spread over many
batches, so that most batches merge releases into tenders already stored, in the checking
workers (importer._start_merges) while the writer appends. What is stored is what the same
releases store tender after tender and what a reprojection writes; strict mode is all or
nothing; a merge that fails in a worker fails its batch before any of it is written."""

from __future__ import annotations

import contextlib
import io
import json
from collections import deque
from typing import Any

import pytest
from ocdsmerge.merge import CompiledRelease
from sqlalchemy import func, select, update

from demo import ocds as demo_ocds
from ledger.log import Log
from ledger.procurement import importer, ocds
from ledger.store import schema
from tests.conftest import ORIGIN, T0

BATCH = 20
#: What an import writes of a tender besides its events (whose chain follows the file's order).
PROJECTED = tuple(
    schema.metadata.tables[name]
    for name in ("ocds_compiled", "tender_index", "tender_flags", "tender_parties", "tender_awarded",
                 "tender_suppliers", "supplier_wins", "organisation_rivals")
)  # fmt: skip


def _by_date(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``releases`` as a publisher's feed has them: by date (ties in the order given)."""
    return sorted(releases, key=lambda r: r["date"])


def _package(releases: list[dict[str, Any]]) -> bytes:
    return json.dumps({"uri": "u", "version": "1.1", "publishedDate": "2026-01-01T00:00:00Z",
                       "publisher": {"name": "p"}, "releases": releases}).encode()  # fmt: skip


def _projected(log: Log) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the projection's tables, in key order; a compiled release as its value (a
    tender merged into keeps the keys in the order its stored compiled release had them, as
    the importer always has: the same JSON value)."""
    with log.engine.connect() as conn:
        out = {
            table.name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in PROJECTED
        }
    out[schema.ocds_compiled.name] = [
        (ocid, json.loads(text), *rest) for ocid, text, *rest in out[schema.ocds_compiled.name]
    ]
    return out


def _import(url: str, releases: list[dict[str, Any]], **options: Any) -> tuple[importer.Report, Log]:
    log = Log.open(url, origin=ORIGIN)
    report = importer.import_files(log, [("feed.json", io.BytesIO(_package(releases)))], now=T0, **options)
    return report, log


def _later_batches(releases: list[dict[str, Any]]) -> int:
    """Releases in a later batch than their tender's first."""
    first: dict[str, int] = {}
    return sum(first.setdefault(r["ocid"], i // BATCH) < i // BATCH for i, r in enumerate(releases))


def test_a_date_ordered_feed_stores_what_the_tenders_releases_store_in_any_order(
    db_url: str, sqlite_url: str, pg_url: str
) -> None:
    """40 tenders over 600 days (~15 open at once), by date in batches of 20, merged in two
    workers: the same projection as the same releases imported tender after tender, and as a
    reprojection from all of each tender's releases; each compiled release is ocdsmerge's of all
    the tender's releases."""
    generated = list(demo_ocds.releases(40, seed=5))
    feed = _by_date(generated)
    assert _later_batches(feed) > len(feed) // 2  # most releases merge into a stored tender
    other = pg_url if db_url.startswith("postgresql") else sqlite_url.replace(".sqlite3", "-tenders.sqlite3")
    dated, log = _import(db_url, feed, batch=BATCH, workers=2)
    try:
        by_date = _projected(log)
        with log.engine.begin() as conn:
            importer.reproject(conn, sorted({r["ocid"] for r in generated}))
        reprojected = _projected(log)
        compiled = {row[0]: row[1] for row in by_date["ocds_compiled"]}
    finally:
        log.close()
    in_tender_order, log = _import(other, generated, batch=BATCH, workers=0)
    try:
        by_tender = _projected(log)
    finally:
        log.close()
    assert (dated.imported, in_tender_order.imported) == (len(generated), len(generated))
    assert by_date == by_tender
    assert by_date == reprojected
    tenders: dict[str, list[dict[str, Any]]] = {}
    for release in generated:
        tenders.setdefault(release["ocid"], []).append(release)
    assert compiled == {ocid: ocds.compile_releases(releases) for ocid, releases in tenders.items()}


def _count(log: Log, table: Any = schema.ocds_releases) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_strict_date_ordered_import_records_all_or_nothing(log: Log) -> None:
    """A bad release at the end of a date-ordered feed refuses the whole strict import, its
    merges in the workers included; without it, everything is recorded in one go."""
    feed = _by_date(list(demo_ocds.releases(30, seed=6)))
    bad = {"ocid": feed[0]["ocid"], "id": "bad", "date": "x", "tag": ["tender"]}
    with pytest.raises(importer.ImportRefusedError, match="bad"):
        importer.import_files(log, [("bad.json", io.BytesIO(_package([*feed, bad])))], now=T0, batch=BATCH,
                              strict=True, workers=2)  # fmt: skip
    assert (_count(log), _count(log, schema.ocds_compiled), _count(log, schema.tender_index)) == (0, 0, 0)
    report = importer.import_files(log, [("good.json", io.BytesIO(_package(feed)))], now=T0, batch=BATCH,
                                   strict=True, workers=2)  # fmt: skip
    assert (report.imported, _count(log), _count(log, schema.ocds_compiled)) == (len(feed), len(feed), 30)


def test_a_merge_that_fails_in_a_worker_fails_its_batch_before_any_of_it_is_written(log: Log) -> None:
    """A stored tender whose compiled release cannot be read (here: made unreadable on purpose)
    fails, in the worker that merges a later release into it, the batch of that release: the
    import stops there with the worker's error, the batches before it recorded, nothing of that
    batch (its releases, its other tenders' rows) and the tender's row as it was."""
    feed = _by_date(list(demo_ocds.releases(30, seed=6)))
    first, second = feed[: len(feed) // 2], feed[len(feed) // 2 :]
    importer.import_files(log, [("first.json", io.BytesIO(_package(first)))], now=T0, batch=BATCH)
    stored = {r["ocid"] for r in first}
    # the first release of the second file that merges into a stored tender, past its first
    # batch (checked in this process: the pool starts with the second)
    at = next(i for i, r in enumerate(second) if i >= BATCH and r["ocid"] in stored)
    broken = second[at]["ocid"]
    with log.engine.begin() as conn:
        conn.execute(update(schema.ocds_compiled).where(schema.ocds_compiled.c.ocid == broken).values(compiled="{"))
        before = {row.ocid: tuple(row) for row in conn.execute(select(schema.tender_index))}
    with pytest.raises(json.JSONDecodeError):
        importer.import_files(log, [("second.json", io.BytesIO(_package(second)))], now=T0, batch=BATCH, workers=2)
    recorded = len(first) + at // BATCH * BATCH
    assert _count(log) == recorded
    failed = {r["ocid"] for r in second[at // BATCH * BATCH : (at // BATCH + 1) * BATCH]}
    with log.engine.connect() as conn:
        compiled = conn.execute(
            select(schema.ocds_compiled.c.compiled).where(schema.ocds_compiled.c.ocid == broken)
        ).scalar_one()
        after = {row.ocid: tuple(row) for row in conn.execute(select(schema.tender_index))}
    assert compiled == "{"
    assert after[broken] == before[broken]
    untouched = failed - {r["ocid"] for r in second[: at // BATCH * BATCH]}
    assert untouched and all(after.get(ocid) == before.get(ocid) for ocid in untouched)


def test_a_worker_makes_nothing_ahead_for_a_tender_it_checked_in_an_earlier_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checking worker makes a tender's rows and its releases' envelopes as if new only where it
    has not met the tender in its last batches (importer.CHECKED_BATCHES): one met there is in
    the log by the time the later batch is recorded, and the writer merges it and chains its
    releases on its head."""
    monkeypatch.setattr(importer, "_CHECKED", deque(maxlen=importer.CHECKED_BATCHES))
    feed = _by_date(list(demo_ocds.releases(30, seed=6)))
    first, second = feed[:BATCH], feed[BATCH : 2 * BATCH]
    chunks = []
    for part in (first, second):
        raw = importer._Batch("feed.json", list(importer.read_releases(io.BytesIO(_package(part)), name="f")), 0, 0)
        chunks.append(importer._check_remote(raw, strict=False, now=T0, key=bytes(32), origin=ORIGIN)[0])
    met = {r["ocid"] for r in first}
    assert set(chunks[0].tenders) == met
    assert set(chunks[1].tenders) == {r["ocid"] for r in second} - met != set()
    assert met & {r["ocid"] for r in second}  # some of them were met before: no rows made
    assert all(a is not None for a in chunks[0].ahead)
    assert [a is None for a in chunks[1].ahead] == [r.ocid in met for r in chunks[1].releases]


def _ocdsmerge_merge_into(compiled: dict[str, Any], releases: list[dict[str, Any]]) -> dict[str, Any]:
    merger = ocds.merger()
    made = CompiledRelease(compiled, merge_rules=merger.merge_rules, rule_overrides=merger.rule_overrides)
    made.extend(releases)
    out: dict[str, Any] = made.asdict()
    return out


def test_merging_into_a_stored_compiled_release_is_ocdsmerges_key_for_key() -> None:
    """ocds.merge_into: the stored compiled release (as read back from its JSON text) with later
    releases merged in is ocdsmerge's CompiledRelease, extended, as JSON text: the same values in
    the same key order (what the importer stores), for every tender of a generated feed split at
    each of its releases, and for releases that null a field, repeat an id, or hold an object
    without one."""
    tenders: dict[str, list[dict[str, Any]]] = {}
    for release in _by_date(list(demo_ocds.releases(40, seed=5))):
        tenders.setdefault(release["ocid"], []).append(release)
    odd = {"ocid": "ocds-abc123-x", "id": "x2", "date": "2026-02-01T00:00:00Z", "tag": ["tender"],
           "tender": {"title": None, "items": [{"id": "1", "quantity": 2}, {"id": "1", "quantity": 3},
                                               {"description": "no id"}]}}  # fmt: skip
    first = {"ocid": "ocds-abc123-x", "id": "x1", "date": "2026-01-01T00:00:00Z", "tag": ["planning"],
             "tender": {"title": "T", "items": [{"id": "1", "quantity": 1}]}}  # fmt: skip
    tenders["ocds-abc123-x"] = [first, odd]
    splits = 0
    for releases in tenders.values():
        for cut in range(1, len(releases)):
            stored = json.dumps(ocds.compile_releases(releases[:cut]))
            with pytest.warns() if releases[cut:] == [odd] else contextlib.nullcontext():
                fast = json.dumps(ocds.merge_into(json.loads(stored), releases[cut:]))
            with pytest.warns() if releases[cut:] == [odd] else contextlib.nullcontext():
                slow = json.dumps(_ocdsmerge_merge_into(json.loads(stored), releases[cut:]))
            assert fast == slow
            splits += 1
    assert splits > 100
