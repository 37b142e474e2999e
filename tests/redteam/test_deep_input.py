"""Red team, hostile input (issue 16): a small OCDS file nested tens of thousands of levels deep.

It is refused at import, and an event this deep already stored (recorded before input was
bounded: entries are append-only, it can never be removed) crashes no reader: the API's events,
the explorer's tender page, the exports and the audit show what they can and say what they
could not. The recursion limit a dependency raises is put back at start-up."""

from __future__ import annotations

import hashlib
import io
import json
import sys

import pytest
from fastapi.testclient import TestClient

from anchoring import rpc as embedded_rpc
from anchoring.bundles import NOT_CARRIED
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from api.app import create_app
from audit.log import audit
from ledger.core import commitment
from ledger.core.bundle import load_bundle
from ledger.log import Log
from ledger.procurement import export, project
from ledger.procurement.importer import MAX_RELEASE_DEPTH, import_files
from ledger.store.reader import MAX_STORED_DEPTH
from ledger.submission import Submission
from settings import ChainSettings, Settings
from settings.runtime import DEFAULT_RECURSION_LIMIT, bound_recursion
from tests.conftest import ORIGIN, T0
from tests.recording import append_many
from verifier.chain import RpcChainReader
from verifier.check import verify_bundle

#: The issue's file: 60 KB, 30,000 levels.
DEPTH = 30_000
OCID = "ocds-abc123-deep"
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)


def _deep_release(depth: int) -> bytes:
    release = {
        "ocid": OCID,
        "id": "deep-1",
        "date": "2026-01-01T00:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        "tender": {"id": "t", "title": "Deep"},
    }
    head = json.dumps({"releases": [release]})[:-3]  # up to the release's closing brace
    return (head + ', "x": ' + "[" * depth + "]" * depth + "}]}").encode()


def _poisoned(log: Log) -> None:
    """A tender whose second event's payload is nested DEPTH levels (stored as it was before)."""
    deep = b'{"tender":{"id":"t","x":' + b"[" * DEPTH + b"]" * DEPTH + b"}}"
    published = {
        "tender": {
            "id": "t",
            "title": "Street lighting",
            "tenderPeriod": {"startDate": "2026-01-01T00:00:00Z", "endDate": "2099-01-01T00:00:00Z"},
        },
        "buyer": {"id": "B-1", "name": "Buyer"},
    }
    fine = {"tender": {"id": "t", "title": "Street lighting, amended"}}
    append_many(
        log,
        [
            Submission(ocid=OCID, type="tender.published", payload=published),
            # stored before input was bounded, so before envelope v2: a v1 entry hashing the bytes as stored
            Submission(ocid=OCID, type="tender.amended", payload={}, canonical=deep, version=1),
            Submission(ocid=OCID, type="tender.amended", payload=fine),
        ],
        now=T0,
    )
    log.integrate_all(now=T0)
    refusals = project.rebuild(log.engine)  # the tender's projection: the deep event is named, the rest applied
    assert (refusals[0].seq, "nested" in refusals[0].reason) == (1, True), refusals


def test_recursion_limit_stays_at_the_default_after_start_up(sqlite_url: str) -> None:
    import py_ecc  # noqa: F401 - raises the limit when first imported (here, or already earlier)

    sys.setrecursionlimit(100_000)  # as py_ecc and py-evm leave it
    create_app(Settings(database_url=sqlite_url, origin=ORIGIN, chains=[CHAIN], rate_limit=None))
    assert sys.getrecursionlimit() <= DEFAULT_RECURSION_LIMIT
    sys.setrecursionlimit(100_000)
    from anchoring import embedded  # noqa: F401 - imports py-evm

    assert bound_recursion("eth") <= DEFAULT_RECURSION_LIMIT


def test_deep_ocds_file_is_refused_at_import(log: Log) -> None:
    bound_recursion()
    data = _deep_release(DEPTH)
    assert 50_000 < len(data) < 70_000
    report = import_files(log, [("deep.json", io.BytesIO(data))], now=T0)
    assert report.imported == 0 and report.first_event is None
    (problem,) = report.problems
    assert f"nested more than {MAX_RELEASE_DEPTH} levels deep" in problem.reason
    assert log.reader.tree_head().size == 0 and report.invalid == 1
    # The same as JSON Lines.
    report = import_files(log, [("deep.jsonl", io.BytesIO(data))], now=T0)
    assert report.imported == 0 and "nested" in report.problems[0].reason


@pytest.fixture
def poisoned(sqlite_url: str) -> Log:
    bound_recursion()
    log = Log.open(sqlite_url, origin=ORIGIN)
    _poisoned(log)
    return log


def test_api_events_show_what_they_can(poisoned: Log, sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url, origin=ORIGIN, chains=[CHAIN], rate_limit=None), log=poisoned)
    with TestClient(app) as client:
        answer = client.get(f"/api/v1/tenders/{OCID}/events")
        assert answer.status_code == 200, answer.text
        events = answer.json()["events"]
        assert [e["seq"] for e in events] == [0, 1, 2]
        assert events[0]["payload"]["tender"]["title"] == "Street lighting" and events[0]["payload_error"] is None
        assert events[1]["payload"] is None
        assert f"nested more than the {MAX_STORED_DEPTH} levels accepted" in events[1]["payload_error"]
        assert events[2]["payload"] is not None
        # The explorer's tender page: shown, the deep event says why its content is not.
        page = client.get(f"/tenders/{OCID}")
        assert page.status_code == 200, page.text[:500]
        assert "content not shown" in page.text and "Street lighting" in page.text, page.text
        package = client.get(f"/api/v1/tenders/{OCID}/releases")
        assert package.status_code == 200, package.text
        assert "cannot be shown" in package.json()["releases"][1]["description"]
        assert client.get("/healthz").status_code == 200  # still alive


def test_exports_and_audit_do_not_crash(poisoned: Log) -> None:
    releases = list(export.iter_releases(poisoned.engine, ocid=OCID))
    assert len(releases) == 3
    assert "cannot be shown" in releases[1]["description"] and releases[1]["id"] == f"{OCID}-1"
    report = audit(poisoned.engine, origin=ORIGIN)
    assert report.ok and report.entries_checked == 3
    assert report.payloads_too_deep == 1


def test_deep_search_cursor_is_a_clear_error(poisoned: Log, sqlite_url: str) -> None:
    """A client-made cursor nested deep: 422 naming the cursor, never a 500."""
    import base64

    cursor = base64.urlsafe_b64encode(b"[" * 190 + b"]" * 190).decode().rstrip("=")  # within its 512 characters
    app = create_app(Settings(database_url=sqlite_url, origin=ORIGIN, chains=[CHAIN], rate_limit=None), log=poisoned)
    with TestClient(app) as client:
        answer = client.get("/api/v1/tenders", params={"cursor": cursor})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "query.cursor", answer.text
    with TestClient(app) as client:
        longer = client.get("/api/v1/tenders", params={"cursor": "W" * 20_000})
    assert longer.status_code == 422 and longer.json()["error"]["field"] == "query.cursor"


def test_bundle_of_the_poisoned_tender_is_served_and_verifies(poisoned: Log, sqlite_url: str) -> None:
    """The stored bytes are what they are: the bundle carries the deep event without its payload
    (saying why) and the auditor still verifies every entry, the deep one included, on chain."""
    dev = EmbeddedChain()
    anchorer = ChainAnchorer(poisoned, CHAIN, dev=dev)
    result = anchorer.run_round(force=True)
    while not result.settled:
        result = anchorer.run_round()
    app = create_app(Settings(database_url=sqlite_url, origin=ORIGIN, chains=[CHAIN], rate_limit=None), log=poisoned)
    with TestClient(app) as client:
        answer = client.get(f"/api/v1/tenders/{OCID}/bundle")
    assert answer.status_code == 200, answer.text[:500]
    doc = answer.json()
    deep = doc["events"][1]
    assert deep["payload"] is None and deep["status"] == "anchored"
    assert deep["withheld"].startswith(NOT_CARRIED)
    assert f"nested more than the {MAX_STORED_DEPTH} levels accepted" in deep["withheld"]
    assert doc["events"][0]["payload"]["tender"]["title"] == "Street lighting"
    report = verify_bundle(load_bundle(doc), chain=RpcChainReader(embedded_rpc.transport(dev)))
    assert report.valid, report.failures
    assert [e.status for e in report.events] == ["valid", "valid", "valid"]
    assert report.events[1].withheld == deep["withheld"]
    # The envelope commits to the stored bytes: the auditor can check them, as served by the log.
    stored = next(e for e in poisoned.reader.tender_events(OCID) if e.seq == 1)
    envelope = stored.parsed_envelope
    if envelope.v == 2:  # salted: recomputed from the stored bytes and the stored disclosure
        assert stored.payload is not None and stored.parsed_disclosure is not None
        bound = commitment.recompute(json.loads(stored.payload), stored.parsed_disclosure)
        assert bound == deep["envelope"]["payload_commitment"]
    else:
        assert hashlib.sha256(stored.payload).hexdigest() == deep["envelope"]["payload_sha256"]
