"""The import's pipeline (SQLite and PostgreSQL): releases are read and checked in a thread of
their own while the caller's thread records, with memory bounded by the pipeline's depth; an
error on either side stops both, and strict mode still records all or nothing."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger.log import Log
from ledger.procurement import importer
from ledger.store.schema import events
from tests.conftest import T0

BATCH = 10


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
