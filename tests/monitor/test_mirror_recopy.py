"""A mirror made later from the monitor's own copy (``tenderproof monitor --mirror`` given after the
monitor followed without it: :func:`monitor.mirror.prepare`) keeps every envelope v2 entry's
disclosure (issue 21): the same payload and disclosure bytes as the origin's, a field withheld by
an order included, so the mirror serves the same events. The origin and the monitor's database on
SQLite, and on PostgreSQL when TENDERPROOF_TEST_PG_URL is set."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from ledger.procurement import withholding
from ledger.store import db
from ledger.store.reader import LogReader
from ledger.submission import Submission
from monitor import store
from tests.cluster import ROOT, environment
from tests.monitor.test_monitor import PG, T0, Deployment, _deploy, database, serving
from tests.recording import append_many

PERSON = "ocds-abc123-person"
#: A tender of the deployment (tests/monitor/test_monitor.py _fill): v2 entries, nothing withheld.
PLAIN = "ocds-abc123-0"


@pytest.fixture(params=["sqlite", "postgresql"] if PG else ["sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def deployment(kind: str, tmp_path: Path) -> Iterator[Deployment]:
    with database(kind, tmp_path) as url:
        yield from _deploy(url, tmp_path)


@contextmanager
def _monitor_database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'monitor.sqlite3'}"
        return
    from tests.pg import scratch_database

    assert PG is not None
    with ExitStack() as stack:
        yield stack.enter_context(scratch_database(PG))


def _follow(d: Deployment, url: str, *more: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "monitor", d.base, "--db", url, "--log-key", d.vkey, "--once", *more],
        cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    findings = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, done.stderr
    # The one finding: the order's withholding, informational.
    assert {f["kind"] for f in findings} <= {"payload_withheld_by_order"}, findings


def test_a_mirror_copied_from_the_monitors_own_tables_keeps_the_disclosures(
    deployment: Deployment, kind: str, tmp_path: Path
) -> None:
    log = deployment.log
    contact = {"contact": {"name": "Ada Person", "email": "ada@example.test"}}
    append_many(
        log,
        [
            Submission(ocid=PERSON, type="tender.published", payload={**contact, "step": 0}, fields=("/contact",)),
            Submission(ocid=PERSON, type="tender.amended", payload={**contact, "step": 1}, fields=("/contact",)),
        ],
        now=T0,
    )
    log.integrate_all(now=T0, commit_heads=True)
    target = next(e.index for e in log.reader.entries(0, log.reader.tree_head().size) if e.ocid == PERSON)
    order = {"reference": "ORD-7/2026", "authority": "Juzgado 3", "legal_basis": "GDPR art. 17",
             "targets": [{"index": target, "fields": ["/contact"]}]}  # fmt: skip
    withholding.record_order(log, order, now=T0)
    size = log.reader.tree_head().size
    origin = log.reader.entries(0, size)
    v2 = [e.index for e in origin if e.disclosure is not None]
    assert len(v2) > 20 and target in v2
    assert b'"digest"' in (origin[target].disclosure or b"")  # the withheld field's digest and order

    with _monitor_database(kind, tmp_path) as url:
        # No mirror yet: the monitor's own tables only, from the static tiles (the disclosures' bytes
        # as served); then the mirror, through the JSON API.
        _follow(deployment, url, "--source", "tiles")
        engine = db.open_engine(url)
        try:
            with engine.connect() as conn:
                kept = dict(conn.execute(select(store.disclosures.c.idx, store.disclosures.c.disclosure)).all())
                assert conn.execute(select(func.count()).select_from(store.entries)).scalar_one() == size
            assert sorted(kept) == v2
            assert all(bytes(kept[i]) == origin[i].disclosure for i in v2)
            _follow(deployment, url, "--mirror")  # the mirror made now, from those tables
            copied = LogReader(engine).entries(0, size)
        finally:
            engine.dispose()
        assert [(e.leaf_hash, e.payload, e.disclosure) for e in copied] == [
            (e.leaf_hash, e.payload, e.disclosure) for e in origin
        ]
        # And served: the mirror's events of a v2 tender are the origin's, byte for byte.
        command = [sys.executable, "-m", "cli", "serve", "--mirror", url, "--port"]
        with serving(lambda port: [*command, str(port)], tmp_path / "mirror.log", {}) as mirror:
            path = f"/api/v1/tenders/{PLAIN}/events"
            a, b = httpx.get(deployment.base + path, timeout=30), httpx.get(mirror + path, timeout=30)
            assert a.status_code == b.status_code == 200 and a.content == b.content
            assert all(e["disclosure"] for e in b.json()["events"])
