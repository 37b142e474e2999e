"""The import's pipeline (SQLite and PostgreSQL): releases are read and checked in a thread of
their own while the caller's thread records, with memory bounded by the pipeline's depth; an
error on either side stops both, and strict mode still records all or nothing."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import multiprocessing
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from demo import ocds as demo_ocds
from ledger.core import commitment
from ledger.log import Log
from ledger.procurement import importer, ocds, privacy, redflags, sources
from ledger.store import keys
from ledger.store.schema import (
    events,
    ocds_compiled,
    ocds_releases,
    payloads,
    pending,
    tender_awarded,
    tender_flags,
    tender_index,
    tender_parties,
    tender_suppliers,
    tenders,
)
from tests.conftest import ORIGIN, T0

BATCH = 10
ROOT = Path(__file__).resolve().parents[2]


def _data(n: int) -> bytes:
    releases = [
        {
            "ocid": f"ocds-abc123-p{i % 7}",
            "id": f"r{i}",
            "date": "2026-01-01T10:00:00Z",
            "tag": ["tender"],
            "initiationType": "tender",
            "tender": {"id": f"t{i % 7}", "title": f"Tender {i % 7}"},
        }
        for i in range(n)
    ]
    return json.dumps({"uri": "u", "version": "1.1", "publishedDate": "2026-01-01T00:00:00Z",
                       "publisher": {"name": "p"}, "releases": releases}).encode()  # fmt: skip


def _count(log: Log) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "import-reader"]


def test_the_reader_stays_within_the_pipeline_depth(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[int] = []
    ahead: list[int] = []
    written: list[int] = [0]
    check, record_batch = importer.check_release, importer._record_batch
    slow = threading.Event()

    def counting_check(value: Any, **kw: Any) -> Any:
        checked.append(1)
        return check(value, **kw)

    def slow_record(conn: Any, log_: Log, name: str, releases: list[Any], report: Any, **kw: Any) -> None:
        slow.wait(0.05)  # a slow writer: the reader runs ahead as far as it may
        ahead.append(len(checked) - written[0])
        record_batch(conn, log_, name, releases, report, **kw)
        written[0] += len(releases)

    monkeypatch.setattr(importer, "check_release", counting_check)
    monkeypatch.setattr(importer, "_record_batch", slow_record)
    report = importer.import_files(log, [("many.json", io.BytesIO(_data(200)))], now=T0, batch=BATCH)
    assert (report.read, report.imported, report.problems) == (200, 200, [])
    assert _count(log) == 200
    # Queued chunks, the one being read and the one being written: never more.
    assert max(ahead) <= (importer.PIPELINE_DEPTH + 2) * BATCH, ahead
    assert max(ahead) > BATCH  # and the reader did run ahead of the writer
    assert _readers() == []


def test_a_batch_that_fails_to_record_stops_the_reader_at_once(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch that fails where it is recorded (the database, a worker's merge) stops the reading
    thread before the error reaches the caller, even while the caller keeps the error (and, by its
    traceback, the importer's frames): it does not wait to be collected."""
    record_batch = importer._record_batch
    recorded: list[int] = []

    def failing(conn: Any, log_: Log, name: str, releases: list[Any], report: Any, **kw: Any) -> None:
        if len(recorded) == 2:
            raise RuntimeError("the third batch broke")
        record_batch(conn, log_, name, releases, report, **kw)
        recorded.append(len(releases))

    monkeypatch.setattr(importer, "_record_batch", failing)
    with pytest.raises(RuntimeError, match="third batch") as raised:
        importer.import_files(log, [("many.json", io.BytesIO(_data(200)))], now=T0, batch=BATCH)
    assert raised.value.__traceback__ is not None  # held, with the frames it passed through
    assert _readers() == []
    assert _count(log) == 2 * BATCH  # the batches before it stay recorded


def test_a_reader_error_reaches_the_caller_and_strict_records_nothing(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = importer.check_release
    calls: list[int] = []

    def failing(value: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 55:
            raise RuntimeError("the reader broke at release 55")
        return check(value, **kw)

    monkeypatch.setattr(importer, "check_release", failing)
    with pytest.raises(RuntimeError, match="release 55"):
        importer.import_files(log, [("many.json", io.BytesIO(_data(100)))], now=T0, batch=BATCH, strict=True)
    assert _count(log) == 0
    assert _readers() == []


def test_a_writer_error_stops_the_reader(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    record_batch = importer._record_batch
    batches: list[int] = []

    def failing(*args: Any, **kw: Any) -> None:
        batches.append(1)
        if len(batches) == 3:
            raise RuntimeError("the database went away")
        record_batch(*args, **kw)

    monkeypatch.setattr(importer, "_record_batch", failing)
    with pytest.raises(RuntimeError, match="went away"):
        importer.import_files(log, [("many.json", io.BytesIO(_data(500)))], now=T0, batch=BATCH)
    assert _count(log) == 2 * BATCH  # default mode: the batches before the failure are kept
    assert _readers() == []


def test_strict_with_a_bad_release_late_records_nothing(log: Log) -> None:
    data = json.loads(_data(95))
    data["releases"].append({"ocid": "ocds-abc123-p1", "id": "bad", "date": "not a date", "tag": ["tender"]})
    with pytest.raises(importer.ImportRefusedError, match="bad"):
        importer.import_files(log, [("late.json", io.BytesIO(json.dumps(data).encode()))], now=T0, batch=BATCH,
                              strict=True)  # fmt: skip
    assert _count(log) == 0
    report = importer.import_files(log, [("late.json", io.BytesIO(json.dumps(data).encode()))], now=T0, batch=BATCH)
    assert (report.imported, report.invalid) == (95, 1)


def _dump(log: Log) -> dict[str, list[tuple[Any, ...]]]:
    """What an import writes, table by table, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with log.engine.connect() as conn:
        # Envelope v2 commitments are salted at random: each import's events are the same but for
        # their commitment (and so their leaf hash and the next one's prev), each one checked against its payload here.
        rows = []
        for row in conn.execute(
            select(events, payloads.c.body, payloads.c.disclosure).join(payloads, payloads.c.event_id == events.c.id)
        ):
            envelope = json.loads(bytes(row.envelope))
            disclosure = json.loads(bytes(row.disclosure))
            assert commitment.recompute(json.loads(bytes(row.body)), disclosure) == envelope.pop("payload_commitment")
            envelope["prev"] = envelope["prev"] is not None  # the previous leaf hash: salted too
            rows.append((row.id, row.ocid, row.seq, row.type, row.recorded_at, envelope, bytes(row.body),
                         sorted(disclosure["fields"])))  # fmt: skip
        out["events"] = sorted(rows, key=repr)
        # Each database draws its own dedupe key: each digest is checked against its payload here.
        key = keys.key(conn, keys.RELEASE_DIGEST)
        bodies = {int(i): bytes(b) for i, b in conn.execute(select(payloads.c.event_id, payloads.c.body))}
        releases = []
        for row in conn.execute(select(ocds_releases)):
            assert row.release_digest == keys.keyed_digest(key, bodies[int(row.event_id)])
            releases.append(tuple(v for k, v in row._mapping.items() if k != "release_digest"))
        out["ocds_releases"] = sorted(releases, key=repr)
        for table in (ocds_compiled, tender_index, tender_awarded, tender_flags, tender_parties,
                      tender_suppliers):  # fmt: skip
            out[table.name] = sorted(
                (
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in conn.execute(select(table))
                ),
                key=repr,
            )
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_processes_record_what_one_process_records(
    db_url: str, sqlite_url: str, pg_url: str, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool of checking processes (from the second batch on) writes the very same rows as the
    reading thread alone: releases whose tender is new to the log (rows made in the worker),
    tenders spread over several batches (merged by the writer), a duplicate and a bad release,
    and the demo's generated tenders (awards, parties, contracts, amendments); with two workers,
    batches checked side by side are recorded in the order read. The import in one process
    compiles with ocdsmerge itself, the workers with :func:`ocds.compile_releases`: the compiled
    releases (and all made from them) are ocdsmerge's."""
    data = json.loads(_data(120))
    data["releases"].append(data["releases"][30])  # a duplicate, in a later batch
    data["releases"].append({"ocid": "ocds-abc123-p1", "id": "bad", "date": "not a date", "tag": ["tender"]})
    for i in range(40):  # tenders whose releases are all in one batch (new to the log)
        data["releases"].append({**data["releases"][i], "ocid": f"ocds-abc123-n{i // 4}", "id": f"n{i}"})
    generated = list(demo_ocds.releases(12, seed=5))
    data["releases"] += generated
    raw = json.dumps(data).encode()
    reports = []
    dumps = []
    other = pg_url if db_url.startswith("postgresql") else sqlite_url.replace(".sqlite3", "-one.sqlite3")
    for url, pool in ((db_url, workers), (other, 0)):
        log = Log.open(url, origin=ORIGIN)
        try:
            with monkeypatch.context() as patch:
                if pool == 0:
                    patch.setattr(ocds, "compile_releases", lambda rs: ocds.merger().create_compiled_release(rs))
                report = importer.import_files(log, [("w.json", io.BytesIO(raw))], now=T0, batch=BATCH, workers=pool)
            reports.append({k: v for k, v in report.to_json().items() if k != "files"})
            dumps.append(_dump(log))
        finally:
            log.close()
    assert reports[0] == reports[1]
    assert (reports[0]["imported"], reports[0]["duplicates"], reports[0]["invalid"]) == (160 + len(generated), 1, 1)
    assert set(dumps[0]) == set(dumps[1])
    for name in dumps[0]:
        assert dumps[0][name] == dumps[1][name], name
    assert len(dumps[0]["ocds_compiled"]) == 7 + 10 + 12
    assert _readers() == []


def test_strict_with_workers_records_all_or_nothing(log: Log) -> None:
    """Checked in a worker process, a bad release in a late batch still refuses the whole strict
    import; without it, everything is recorded in one go."""
    data = json.loads(_data(45))
    bad = {
        **data,
        "releases": [*data["releases"], {"ocid": "ocds-abc123-p1", "id": "bad", "date": "x", "tag": ["tender"]}],
    }
    with pytest.raises(importer.ImportRefusedError, match="bad"):
        importer.import_files(log, [("bad.json", io.BytesIO(json.dumps(bad).encode()))], now=T0, batch=BATCH,
                              strict=True, workers=1)  # fmt: skip
    assert _count(log) == 0
    report = importer.import_files(log, [("good.json", io.BytesIO(json.dumps(data).encode()))], now=T0, batch=BATCH,
                                   strict=True, workers=1)  # fmt: skip
    assert (report.imported, report.invalid, _count(log)) == (45, 0, 45)
    assert _readers() == []


def test_the_ledger_wide_flags_are_read_in_this_process_once_the_pool_is_gone(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import's last step, the ledger-wide red flags, starts no process (a fresh interpreter
    per partition took the tree past its memory bound) and runs after the checking pool's
    processes are joined: at most the recording process and its fork server remain."""
    monkeypatch.setattr(redflags, "POOL_MINIMUM_TENDERS", 1)  # else these 7 tenders would be read in two processes
    seen: list[tuple[int | None, list[Any]]] = []
    ledger_pass = redflags.ledger_pass

    def watched(*args: Any, **kw: Any) -> Any:
        seen.append((kw.get("workers"), multiprocessing.active_children()))
        return ledger_pass(*args, **kw)

    def no_pool(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the ledger-wide flags started worker processes")

    monkeypatch.setattr(redflags, "ledger_pass", watched)
    monkeypatch.setattr(redflags, "ProcessPoolExecutor", no_pool)
    report = importer.import_files(log, [("p.json", io.BytesIO(_data(45)))], now=T0, batch=BATCH, workers=1)
    assert (report.imported, report.tenders) == (45, 7)
    assert seen == [(1, [])]


def test_checked_releases_cross_processes_whole() -> None:
    """What a worker sends back (a release without its body, its tender's summary) is pickled
    by its fields and read back equal; a stripped release keeps everything but the body."""
    read = importer.read_releases(io.BytesIO(_data(20)), name="p.json")
    raw = importer._Raw("p.json", [i for i in read if not isinstance(i, sources.Slices)], 0)
    chunk = importer._check(raw, strict=False, now=T0, key=bytes(32))
    assert len(chunk.releases) == 20 and len(chunk.tenders) == 7
    back = pickle.loads(pickle.dumps(chunk))
    assert back.releases == chunk.releases
    assert back.tenders == chunk.tenders
    stripped = [r.without_body() for r in chunk.releases]
    pairs = zip(stripped, chunk.releases, strict=True)
    assert all(s.body == {} and s.data == r.data and s.commitment == r.commitment for s, r in pairs)
    assert [s.digest for s in stripped] == [r.digest for r in chunk.releases] != [""] * 20


def test_the_collector_runs_seldom_while_an_import_runs_and_as_before_after(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cyclic garbage is collected every GC_THRESHOLD allocations while releases are recorded
    (in this process and in the checking ones), and at the process's own thresholds once the
    last of overlapping imports is done."""
    seen: list[int] = []
    record_batch = importer._record_batch

    def watched(*args: Any, **kw: Any) -> Any:
        seen.append(gc.get_threshold()[0])
        return record_batch(*args, **kw)

    monkeypatch.setattr(importer, "_record_batch", watched)
    before = gc.get_threshold()
    assert before[0] < importer.GC_THRESHOLD
    importer.import_files(log, [("p.json", io.BytesIO(_data(25)))], now=T0, batch=BATCH)
    assert seen and set(seen) == {importer.GC_THRESHOLD}
    assert gc.get_threshold() == before
    with importer._COLLECTOR.seldom():
        with importer._COLLECTOR.seldom():
            assert gc.get_threshold()[0] == importer.GC_THRESHOLD
        assert gc.get_threshold()[0] == importer.GC_THRESHOLD
    assert gc.get_threshold() == before
    try:
        importer._init_worker(redflags.CARDINAL_SETTINGS, privacy.RULES)
        assert gc.get_threshold() == (importer.GC_THRESHOLD, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_the_known_releases_of_a_batch_are_one_keyed_lookup(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of releases of tenders with events looks its (ocid, release id) pairs up in one
    statement, a probe of the unique index a pair (never the product of the batch's ocids and
    ids): each pair is found exactly, an id known under another tender is not taken for it, and
    700 ids (more than the 500 a grouped IN lookup named) are one statement."""
    from sqlalchemy import event

    first = _package([_release(f"t{k}", n) for k in range(350) for n in range(2)])
    assert importer.import_files(log, [("1.json", io.BytesIO(first))], now=T0, batch=2000).imported == 700
    changed = _release("t0", 0)
    changed["tender"]["title"] = "Changed"
    moved = {**_release("t1", 0), "ocid": "ocds-abc123-t2"}  # t1's id under t2: a new release of t2
    again = _package([changed, moved, *[_release(f"t{k}", n) for k in range(350) for n in range(3)][1:]])
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "ocds_releases AS r" in statement:
            statements.append(statement)

    event.listen(log.engine, "before_cursor_execute", seen)
    report = importer.import_files(log, [("2.json", io.BytesIO(again))], now=T0, batch=2000)
    assert (report.imported, report.duplicates, report.invalid) == (351, 699, 1)
    assert [p.release for p in report.problems] == ["t0-r0"] and "different content" in report.problems[0].reason
    assert len(statements) == 1


def _package(releases: list[dict[str, Any]]) -> bytes:
    return json.dumps({"uri": "u", "version": "1.1", "publishedDate": "2026-01-01T00:00:00Z",
                       "publisher": {"name": "p"}, "releases": releases}).encode()  # fmt: skip


def _release(ocid: str, n: int) -> dict[str, Any]:
    return {
        "ocid": f"ocds-abc123-{ocid}",
        "id": f"{ocid}-r{n}",
        "date": f"2026-01-0{n + 1}T10:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        "tender": {"id": ocid, "title": f"Tender {ocid}", "value": {"amount": 100 + n, "currency": "EUR"}},
        "parties": [{"id": "b1", "name": "Council", "roles": ["buyer"],
                     "contactPoint": {"name": f"Officer {ocid}", "email": f"{ocid}@council.example"}}],
    }  # fmt: skip


#: Six tenders of three releases each (all new to the log, two whole tenders a batch of 6), then a
#: fourth release of each and a new tender of three (tenders with events and a new one in a batch of 9).
FIRST = _package([_release(f"a{k}", n) for k in range(6) for n in range(3)])
SECOND = _package([_release(f"a{k}", 3) for k in range(6)] + [_release("b0", n) for n in range(3)])


def _ledger_rows(log: Log) -> dict[str, list[tuple[Any, ...]]]:
    """Every row an import writes, byte for byte (ids included), table by table."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with log.engine.connect() as conn:
        for table in (events, payloads, pending, tenders, ocds_releases, ocds_compiled, tender_index, tender_awarded,
                      tender_flags, tender_parties, tender_suppliers):  # fmt: skip
            out[table.name] = sorted(
                (
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in conn.execute(select(table))
                ),
                key=repr,
            )
    return out


def test_envelopes_made_where_releases_are_checked_are_those_the_writer_makes(
    db_url: str, sqlite_url: str, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each release's envelope and leaf hash are made where it is checked, on the guess that its
    tender is new to the log; the writer makes none for such a tender and places again only
    releases of tenders that had events before their batch. The ledger written is byte for byte
    the one the writer makes placing every release itself (same seeds and key), on both engines."""
    seeds = iter(range(10**6))
    monkeypatch.setattr(commitment, "new_seed", lambda: next(seeds).to_bytes(commitment.SEED_SIZE, "big"))
    monkeypatch.setattr(keys, "key", lambda conn, name: bytes(32))
    placed: list[tuple[str, str]] = []  # (thread, ocid) of every envelope made
    chain = importer.sequencer._chain

    def watched(item: Any, *args: Any, **kw: Any) -> Any:
        placed.append((threading.current_thread().name, item.ocid))
        return chain(item, *args, **kw)

    monkeypatch.setattr(importer.sequencer, "_chain", watched)
    rows = []
    other = pg_url if db_url.startswith("postgresql") else sqlite_url.replace(".sqlite3", "-two.sqlite3")
    for url, ahead in ((db_url, True), (other, False)):
        if not ahead:  # nothing made ahead: the writer places every release
            monkeypatch.setattr(importer.sequencer, "chain_ahead", lambda items, prepared, **kw: [None] * len(items))
        seeds = iter(range(10**6))
        log = Log.open(url, origin=ORIGIN)
        try:
            placed.clear()
            first = importer.import_files(log, [("1.json", io.BytesIO(FIRST))], now=T0, batch=6)
            writer = [ocid for thread, ocid in placed if thread == threading.main_thread().name]
            assert first.imported == 18 and writer == (
                [] if ahead else [r["ocid"] for r in json.loads(FIRST)["releases"]]
            )
            placed.clear()
            second = importer.import_files(log, [("2.json", io.BytesIO(SECOND))], now=T0, batch=9)
            writer = [ocid for thread, ocid in placed if thread == threading.main_thread().name]
            assert second.imported == 9
            assert writer == [f"ocds-abc123-a{k}" for k in range(6)] + ([] if ahead else ["ocds-abc123-b0"] * 3)
            rows.append(_ledger_rows(log))
        finally:
            log.close()
    for name in rows[0]:
        assert rows[0][name] == rows[1][name], name
    assert len(rows[0]["events"]) == 27 and len(rows[0]["tender_index"]) == 7
    assert any(row[2] is not None for row in rows[0]["payloads"])  # v2 disclosures: personal data committed


def test_a_batch_of_tenders_new_to_the_log_looks_nothing_up(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose tenders have no events (a first import) reads nothing of the releases,
    states, compiled releases or awarded amounts it could find there; a batch of tenders with
    events does, and finds the duplicates."""
    from sqlalchemy import event

    statements: list[str] = []
    recording = threading.Event()
    record_batch = importer._record_batch

    def watched(*args: Any, **kw: Any) -> Any:
        recording.set()
        try:
            return record_batch(*args, **kw)
        finally:
            recording.clear()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if recording.is_set():
            statements.append(" ".join(statement.split()))

    monkeypatch.setattr(importer, "_record_batch", watched)
    event.listen(log.engine, "before_cursor_execute", seen)
    looked_up = ("FROM ocds_releases", "JOIN ocds_releases", "FROM tender_index", "FROM ocds_compiled", "DELETE FROM tender_awarded",
                 "FROM tender_parties", "FROM tender_suppliers")  # fmt: skip
    report = importer.import_files(log, [("1.json", io.BytesIO(FIRST))], now=T0, batch=6)
    assert report.imported == 18 and statements
    assert [s for s in statements if any(part in s for part in looked_up)] == []
    statements.clear()
    again = _package([_release("a0", 0), _release("a0", 4)])
    report = importer.import_files(log, [("2.json", io.BytesIO(again))], now=T0, batch=6)
    assert (report.imported, report.duplicates) == (1, 1)
    assert any("JOIN ocds_releases" in s for s in statements) and any("FROM tender_index" in s for s in statements)


@pytest.mark.parametrize("strict", [False, True])
def test_sqlite_records_with_a_larger_cache_and_puts_it_back(
    sqlite_url: str, strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch is recorded on SQLite with the import's page cache and checkpoint interval
    (importer.IMPORT_CACHE_KIB, IMPORT_CHECKPOINT_PAGES); the connection has its own settings
    again once the import is over, and what is recorded is what a plain connection records."""
    seen: set[tuple[int, int]] = set()
    record_batch = importer._record_batch

    def watched(conn: Any, *args: Any, **kw: Any) -> Any:
        pragma = conn.exec_driver_sql
        seen.add((pragma("PRAGMA cache_size").scalar_one(), pragma("PRAGMA wal_autocheckpoint").scalar_one()))
        return record_batch(conn, *args, **kw)

    def settings(log: Log) -> tuple[int, int]:
        with log.engine.connect() as conn:
            pragma = conn.exec_driver_sql
            return pragma("PRAGMA cache_size").scalar_one(), pragma("PRAGMA wal_autocheckpoint").scalar_one()

    log = Log.open(sqlite_url, origin=ORIGIN)
    try:
        before = settings(log)
        assert before != (-importer.IMPORT_CACHE_KIB, importer.IMPORT_CHECKPOINT_PAGES)
        monkeypatch.setattr(importer, "_record_batch", watched)
        report = importer.import_files(log, [("p.json", io.BytesIO(_data(35)))], now=T0, batch=BATCH, strict=strict)
        assert report.imported == 35
        assert seen == {(-importer.IMPORT_CACHE_KIB, importer.IMPORT_CHECKPOINT_PAGES)}
        assert settings(log) == before
        roomy = _dump(log)
    finally:
        log.close()
    monkeypatch.setattr(importer, "_record_batch", record_batch)
    monkeypatch.setattr(importer, "_roomy", lambda conn: None)
    plain = Log.open(sqlite_url.replace(".sqlite3", "-plain.sqlite3"), origin=ORIGIN)
    try:
        importer.import_files(plain, [("p.json", io.BytesIO(_data(35)))], now=T0, batch=BATCH, strict=strict)
        assert _dump(plain) == roomy
    finally:
        plain.close()


def _stored(log: Log) -> dict[str, str]:
    """A digest of every row of every table an import writes, in the order the database holds
    them (SQLite: rowid order, so FTS5's tables and each rowid table's insertion order count;
    PostgreSQL: primary-key order), but for the tables a fresh database or a clock fills (its
    keys, its version, the tree's heads)."""
    drawn = {"deployment_keys", "alembic_version", "log_config", "tree_heads", "log_state"}
    out: dict[str, str] = {}
    queries: dict[str, Any]
    with log.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            found = conn.exec_driver_sql(
                "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
            )
            queries = {  # a table without rowid is held in its primary key's order
                name: f'SELECT * FROM "{name}"' if keyed else f'SELECT rowid, * FROM "{name}" ORDER BY rowid'
                for name, keyed in found
            }
        else:
            queries = {
                table.name: select(table).order_by(*table.primary_key.columns)
                for table in sorted(tender_index.metadata.tables.values(), key=lambda t: t.name)
            }
        for name, query in queries.items():
            if name in drawn:
                continue
            result = conn.exec_driver_sql(query) if isinstance(query, str) else conn.execute(query)
            rows = [repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)) for row in result]
            if rows:
                out[name] = f"{len(rows)} {hashlib.sha256(chr(10).join(rows).encode()).hexdigest()[:16]}"
    return out


#: What main's importer (c73943d) wrote of :func:`test_an_import_stores_what_it_always_stored`'s
#: input, table by table: rows and the digest of their text in storage order.
STORED = {
    "sqlite": {
        "events": "620 0a17f03f54e01406",
        "ledger_flags": "11 b29d3922e703b5d1",
        "ocds_compiled": "120 43cf23aaaeeaba37",
        "ocds_releases": "620 4a738f78aa7d11e4",
        "organisation_rivals": "584 e0458c24b1d46dca",
        "payloads": "620 0c6fc5001e024171",
        "pending": "620 21570753879c2bf7",
        "supplier_wins": "71 32d93d2022e3b9bc",
        "tender_awarded": "97 86985c5b27fd66a0",
        "tender_flags": "75 b898b584106ab2cd",
        "tender_index": "120 b86aa322026ffa6d",
        # t33i, on purpose: a later release's parties are kept in place where they did not change
        # (redflags._replace_parties), no longer deleted and inserted again, so the rows' rowids
        # (their storage order) differ; the same 485 rows in key order as before
        "tender_parties": "485 3cf6217f14d12221",
        "tender_search_config": "1 a8b2b0af8b6c9a95",
        "tender_search_data": "18 479451a58a64fa7f",
        "tender_search_docsize": "120 8de7e6d19fe0260c",
        "tender_search_idx": "16 6f023d2841f0d4a2",
        "tender_search_keys": "120 da5d1214a5b9329c",
        "tender_suppliers": "97 a84e44b5e17313a6",
        "tenders": "120 1555ee38ad67e32a",
    },
    "postgresql": {
        "events": "620 a72bab6185a9894e",
        "ledger_flags": "11 ff8074fb2c2caf58",
        "ocds_compiled": "120 5e3e61b9ac7fb319",
        "ocds_releases": "620 b731f93ba71db3ab",
        "organisation_rivals": "584 91d9ee80138defec",
        "payloads": "620 3b3da20c024799de",
        "pending": "620 f16d9240fb9ab06e",
        "supplier_wins": "71 8f37eb27479bcde0",
        "tender_awarded": "97 655f734d7a1dcb85",
        "tender_flags": "75 4d07d5696e0e6d1a",
        "tender_index": "120 644bd5fef2d13f49",
        "tender_parties": "485 41eaeffe2500cc53",
        "tender_suppliers": "97 00111491139e7541",
        "tenders": "120 22a681b3f5ccf84f",
    },
}


def test_an_import_stores_what_it_always_stored(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated tenders (parties, bids, awards, flags, rivals), imported in batches and then again
    with later releases, duplicates and new tenders, with fixed seeds and dedupe key: every row of
    every table is what the importer has always written, in the same order (a row dropped, changed,
    added or inserted in another order changes a table's digest)."""
    seeds = iter(range(10**6))
    monkeypatch.setattr(commitment, "new_seed", lambda: next(seeds).to_bytes(commitment.SEED_SIZE, "big"))
    monkeypatch.setattr(keys, "key", lambda conn, name: bytes(32))
    generated = list(demo_ocds.releases(120, seed=7))
    first, second = generated[: len(generated) // 2], generated[len(generated) // 3 :]
    log = Log.open(db_url, origin=ORIGIN)
    try:
        for part, batch in ((first, 64), (second, 50)):
            importer.import_files(log, [("g.json", io.BytesIO(_package(part)))], now=T0, batch=batch)
        stored = _stored(log)
    finally:
        log.close()
    assert stored == STORED[db_url.split(":")[0].split("+")[0]]


def test_a_checking_process_imports_neither_migrations_nor_signatures() -> None:
    """A worker imports this module (for :func:`importer._check_remote`), preloaded by its fork
    server: neither Alembic nor eth-account and eth-utils come with it (~24 MB of modules
    that a check never uses, in each worker)."""
    heavy = {"alembic", "eth_account", "eth_utils", "web3", "fastapi"}
    code = "import sys; import ledger.procurement.importer; print(*sorted({n.split('.')[0] for n in sys.modules}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert heavy & set(done.stdout.split()) == set()


@pytest.mark.parametrize(("cores", "workers"), [(None, 1), (1, 1), (2, 2), (8, importer.MAX_DEFAULT_WORKERS)])
def test_default_workers_is_one_per_core_up_to_the_bound(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, workers: int
) -> None:
    monkeypatch.setattr(importer.os, "cpu_count", lambda: cores)
    assert importer.default_workers() == workers
