"""Officers' writes over HTTP on SQLite and PostgreSQL: a whole tender's life through the API
(signed, registry, idempotency, search, OCDS), the authorization matrix, bad input (each a
clear 4xx naming the field, nothing recorded), bulk atomicity, and concurrent writers to one
tender through a real uvicorn server."""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from anchoring.embedded import CHAIN_ID as EMBEDDED_CHAIN_ID
from anchoring.embedded import EmbeddedChain
from api import auth, schemas
from api.app import create_app
from api.routes import writes
from api.schema import idempotency_keys
from ledger.log import Log
from ledger.procurement.officers import REGISTRY_OCID
from ledger.store.schema import events
from tests.api.conftest import settings_for
from tests.api.servers import threaded_server
from tests.conftest import ORIGIN
from tests.procurement.helpers import (
    AFTER_CLOSE,
    CHAIN_ID,
    OFFICER,
    OFFICER_KEY,
    OTHER,
    OTHER_KEY,
    at,
    bid,
    commitment,
    history,
    item,
    published,
    signed,
)

OCID = "ocds-tptest-0001"


class Clock:
    """The application's clock, moved by the tests (the rules depend on when events arrive)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@dataclass
class Api:
    log: Log
    client: TestClient
    clock: Clock
    officer_key: str
    admin_key: str

    def as_officer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.officer_key}"}

    def as_admin(self) -> dict[str, str]:
        return {"X-API-Key": self.admin_key}

    def count(self) -> int:
        with self.log.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def _api(log: Log, **overrides: Any) -> Iterator[Api]:
    clock = Clock(at(-20))
    settings = settings_for(
        log.engine.url.render_as_string(hide_password=False), signing_chain_id=CHAIN_ID, **overrides
    )
    _, officer_key = auth.create_key(log.engine, name="ana", role="officer", now=at(-30))
    _, admin_key = auth.create_key(log.engine, name="root", role="admin", now=at(-30))
    with TestClient(create_app(settings, log=log, now=clock)) as client:
        yield Api(log, client, clock, officer_key, admin_key)


@pytest.fixture
def api(log: Log) -> Iterator[Api]:
    yield from _api(log)


def _event_body(event_type: str, payload: dict[str, Any], *, sign: str | None = None, n: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"type": event_type, "payload": copy.deepcopy(payload)}
    if sign is not None:
        done = signed(item(event_type, payload), key=sign, submission_id=f"{OCID}/{n}", origin=ORIGIN)
        body["submission"], body["signature"] = done.submission, done.signature
    return body


def _register(api: Api, address: str, name: str = "Ana Ruiz") -> None:
    response = api.client.post("/api/v1/officers", json={"address": address, "name": name}, headers=api.as_admin())
    assert response.status_code == 201, response.text
    assert response.json()["ocid"] == REGISTRY_OCID and response.json()["type"] == "officer.registered"


def _tender_created(api: Api) -> None:
    """The history's first two events: planned (creates the tender), then published, signed."""
    (planned_type, planned, moment), (published_type, published_payload, moment2) = history()[:2]
    api.clock.moment = moment
    body = {"ocid": OCID, **_event_body(planned_type, planned, sign=OFFICER_KEY, n=0)}
    created = api.client.post("/api/v1/tenders", json=body, headers=api.as_officer())
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/api/v1/tenders/{OCID}"
    api.clock.moment = moment2
    event = _event_body(published_type, published_payload, sign=OFFICER_KEY, n=1)
    assert api.client.post(f"/api/v1/tenders/{OCID}/events", json=event, headers=api.as_officer()).status_code == 201


def test_a_whole_tender_through_the_api(api: Api) -> None:
    _register(api, OFFICER)
    _tender_created(api)
    for n, (event_type, payload, moment) in enumerate(history()[2:], start=2):
        api.clock.moment = moment
        response = api.client.post(
            f"/api/v1/tenders/{OCID}/events",
            json=_event_body(event_type, payload, sign=OFFICER_KEY, n=n),
            headers={**api.as_officer(), "Idempotency-Key": f"step-{n}"},
        )
        assert response.status_code == 201, response.text
        recorded = response.json()
        assert (recorded["seq"], recorded["type"], recorded["status"]) == (n, event_type, "pending")
        assert recorded["envelope"]["submission"]["officer"] == OFFICER
    assert api.count() == 1 + len(history())  # the registry's event and the tender's

    summary = api.client.get(f"/api/v1/tenders/{OCID}").json()
    assert summary["status"] == "complete" and summary["title"] == "Street lighting renewal"
    assert summary["suppliers"] == ["Supplier 1 SL"] and summary["awarded_amount"] == 900.0
    assert summary["events"] == len(history())
    listed = api.client.get("/api/v1/tenders", params={"q": "supplier 1", "status": "complete"}).json()
    assert [t["ocid"] for t in listed["items"]] == [OCID] and listed["next_cursor"] is None
    assert api.client.get("/api/v1/tenders", params={"status": "active"}).json()["items"] == []

    releases = api.client.get(f"/api/v1/tenders/{OCID}/releases").json()
    assert [r["id"] for r in releases["releases"]] == [f"{OCID}-{n}" for n in range(len(history()))]
    assert releases["version"] == "1.1"
    compiled = api.client.get(f"/api/v1/tenders/{OCID}/record").json()["records"][0]["compiledRelease"]
    assert compiled["ocid"] == OCID and compiled["awards"][0]["id"] == "a1"
    officers = api.client.get("/api/v1/officers").json()["officers"]
    assert [(o["address"], o["name"]) for o in officers] == [(OFFICER, "Ana Ruiz")]


def test_idempotency_key_replays_and_refuses_reuse(api: Api) -> None:
    _register(api, OFFICER)
    _tender_created(api)
    event_type, payload, moment = history()[2]
    api.clock.moment = moment
    body = _event_body(event_type, payload)
    headers = {**api.as_officer(), "Idempotency-Key": "3f1c0a7e-clarify"}
    first = api.client.post(f"/api/v1/tenders/{OCID}/events", json=body, headers=headers)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = api.client.post(f"/api/v1/tenders/{OCID}/events", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert api.count() == 4  # registry + 3 tender events: the retry recorded nothing
    other = api.client.post(
        f"/api/v1/tenders/{OCID}/events", json={**body, "payload": {**payload, "x": 1}}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert api.count() == 4
    with api.log.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one() == 1


def _write_routes(api: Api) -> list[tuple[str, dict[str, Any], str]]:
    """Every write route, a valid body for it, and the role it needs."""
    planned_type, planned, _ = history()[0]
    return [
        ("/api/v1/tenders", {"ocid": OCID, "type": planned_type, "payload": planned}, "officer"),
        (f"/api/v1/tenders/{OCID}/events", {"type": planned_type, "payload": planned}, "officer"),
        ("/api/v1/events/bulk", {"events": [{"ocid": OCID, "type": planned_type, "payload": planned}]}, "officer"),
        ("/api/v1/officers", {"address": OFFICER, "name": "Ana"}, "admin"),
        (f"/api/v1/officers/{OFFICER}/revoke", {}, "admin"),
    ]


def test_authorization_matrix(api: Api) -> None:
    """Each write without a key, with an unknown, a revoked, or a wrong-role key: 401/403, nothing recorded."""
    revoked_record, revoked = auth.create_key(api.log.engine, name="old", role="admin", now=at(-30))
    auth.revoke_key(api.log.engine, revoked_record.id, now=at(-25))
    forged = api.officer_key[:-4] + ("aaaa" if not api.officer_key.endswith("aaaa") else "bbbb")
    before = api.count()
    for path, body, role in _write_routes(api):
        cases: list[tuple[dict[str, str], int, str]] = [
            ({}, 401, "unauthenticated"),
            ({"Authorization": f"Bearer {forged}"}, 401, "invalid_api_key"),
            ({"Authorization": f"Bearer {revoked}"}, 401, "api_key_revoked"),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "invalid_api_key"),
        ]
        if role == "admin":
            cases.append((api.as_officer(), 403, "forbidden"))
        for headers, status, code in cases:
            response = api.client.post(path, json=body, headers=headers)
            assert response.status_code == status, (path, headers, response.text)
            assert response.json()["error"]["code"] == code, (path, response.text)
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith('Bearer realm="tenderproof"')
    assert api.count() == before


def _refused(api: Api, path: str, body: Any, status: int, field: str | None, *, headers: Any = None) -> str:
    before = api.count()
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    response = api.client.post(path, headers={**api.as_officer(), **(headers or {})}, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if field is not None:
        assert error.get("field") == field, error
    assert api.count() == before
    return str(error["message"])


def test_bad_input_is_named_and_records_nothing(api: Api) -> None:
    _register(api, OFFICER)
    _tender_created(api)
    events_path = f"/api/v1/tenders/{OCID}/events"
    event_type, payload, moment = history()[3]  # a bid committed during the tender period
    api.clock.moment = moment
    _refused(
        api,
        events_path,
        b'{"type": "bid.committed", "payload": {',
        400,
        None,
        headers={"Content-Type": "application/json"},
    )
    _refused(api, events_path, {"type": "tender.awarded", "payload": payload}, 422, "body.type")
    _refused(api, events_path, {"type": event_type, "payload": "not an object"}, 422, "body.payload")
    _refused(api, events_path, {"type": event_type, "payload": payload, "extra": 1}, 422, "body.extra")
    wrong = copy.deepcopy(payload)
    wrong["commitment"] = 42
    _refused(api, events_path, {"type": event_type, "payload": wrong}, 422, "body.payload.commitment")
    # Several bad values: the first names the error, every one is listed with its own path.
    wrong["bidder"] = "nobody"
    several = api.client.post(events_path, json={"type": event_type, "payload": wrong}, headers=api.as_officer())
    assert several.status_code == 422
    details = {d["field"]: d["message"] for d in several.json()["error"]["details"]}
    assert set(details) == {"body.payload.bidder", "body.payload.commitment"}
    assert details["body.payload.bidder"] == "must be a JSON object, got 'nobody'"
    assert several.json()["error"]["field"] in details
    _refused(api, events_path, {"type": event_type, "payload": payload, "prev": "ab" * 32}, 409, "body.prev")
    _refused(api, "/api/v1/tenders/not-an-ocid/events", {"type": event_type, "payload": payload}, 422, "path.ocid")
    too_big = {"type": event_type, "payload": {**payload, "padding": "x" * 2_000_000}}
    _refused(api, events_path, too_big, 413, None)
    # Signed by an address that is not a registered officer.
    message = _refused(api, events_path, _event_body(event_type, payload, sign=OTHER_KEY, n=9), 422, None)
    assert OTHER in message and "not a registered officer" in message
    # A submission id already recorded (the tender's first event's), replayed on another event.
    replayed = _event_body(event_type, payload, sign=OFFICER_KEY, n=0)
    _refused(api, events_path, replayed, 409, "body.submission.submissionId")
    # A reveal that does not match its commitment (after the deadline).
    assert (
        api.client.post(
            events_path, json={"type": event_type, "payload": payload}, headers=api.as_officer()
        ).status_code
        == 201
    )
    api.clock.moment = AFTER_CLOSE
    b1, s1 = bid(1, 900.0)
    cheaper = {**b1, "value": {"amount": 100.0, "currency": "EUR"}}
    message = _refused(api, events_path, {"type": "bid.revealed", "payload": {"bid": cheaper, "salt": s1}}, 422, None)
    assert "commitment" in message
    # Officer events only through the admin routes.
    _refused(api, f"/api/v1/tenders/{REGISTRY_OCID}/events", {"type": event_type, "payload": payload}, 422, "path.ocid")
    # The log's own heads commitments: never through the API (docs/spec.md §14.1).
    heads_path = "/api/v1/tenders/ocds-tplog0-heads/events"
    _refused(api, heads_path, {"type": event_type, "payload": payload}, 422, "path.ocid")
    commitment = {"tree_size": 1, "heads_root": "00" * 32, "tenders": 1}
    _refused(api, events_path, {"type": "log.heads", "payload": commitment}, 422, "body.type")


def test_bulk_is_all_or_nothing(api: Api) -> None:
    api.clock.moment = at(-1)
    other = "ocds-tptest-0002"
    good = [
        {"ocid": OCID, "type": "tender.published", "payload": published()},
        {"ocid": other, "type": "tender.published", "payload": published("School roof")},
    ]
    b1, s1 = bid(1)
    late = {"ocid": OCID, "type": "bid.revealed", "payload": {"bid": b1, "salt": s1}}  # no commitment, no deadline
    message = _refused(api, "/api/v1/events/bulk", {"events": [*good, late]}, 409, "body.events[2].type")
    assert "revealed after the deadline" in message
    response = api.client.post("/api/v1/events/bulk", json={"events": good}, headers=api.as_officer())
    assert response.status_code == 201, response.text
    assert [(e["ocid"], e["seq"]) for e in response.json()["events"]] == [(OCID, 0), (other, 0)]
    committed = {"ocid": OCID, "type": "bid.committed", "payload": {"bidder": b1["tenderers"][0], "commitment": "zz"}}
    _refused(api, "/api/v1/events/bulk", {"events": [good[0], committed]}, 422, "body.events[1].payload.commitment")


def test_an_unsigned_bulk_answer_has_the_bytes_json_dumps_writes(api: Api) -> None:
    """The 201 of a bulk request without signed submissions is written by orjson
    (``writes._RecordedEvents``): the bytes and headers :class:`JSONResponse` gives the same JSON."""
    api.clock.moment = at(-1)
    events = [
        {"ocid": OCID, "type": "tender.published", "payload": published("Puente «río» \u2028 façade")},
        {"ocid": "ocds-tptest-0002", "type": "tender.published", "payload": published("School roof")},
    ]
    response = api.client.post("/api/v1/events/bulk", json={"events": events}, headers=api.as_officer())
    assert response.status_code == 201, response.text
    answer = response.json()
    expected = JSONResponse(answer, status_code=201)
    assert response.content == expected.body
    for recorded in answer["events"]:  # in the schema's order, as the model would dump it
        assert list(recorded) == list(schemas.RecordedEvent.model_fields)
        assert list(recorded["envelope"]) == [
            name for name in schemas.Envelope.model_fields if name in recorded["envelope"]
        ]
    for name in ("content-length", "content-type"):
        assert response.headers[name] == expected.headers[name]


_JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()


@given(
    st.recursive(
        _JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
    )
)
def test_orjson_writes_what_json_dumps_writes_without_floats(value: Any) -> None:
    """What a bulk answer holds (strings, integers below 2**53, nulls, in objects and arrays)
    written by ``writes._RecordedEvents`` as by :class:`JSONResponse` (lone surrogates, which
    neither writes, left out)."""
    try:
        expected = JSONResponse(value).body
    except UnicodeEncodeError:
        return
    assert writes._RecordedEvents(value).body == expected


def test_bulk_limit(log: Log) -> None:
    for api in _api(log, bulk_max_events=2):
        events = [{"ocid": OCID, "type": "tender.planned", "payload": {"buyer": {"id": "b", "name": "B"}}}] * 3
        _refused(api, "/api/v1/events/bulk", {"events": events}, 422, "body.events")


def test_signatures_required_and_keys_bound_to_an_officer(log: Log) -> None:
    for api in _api(log, require_signatures=True):
        _register(api, OFFICER)
        _register(api, OTHER, "Luis Gil")
        planned_type, planned, moment = history()[0]
        api.clock.moment = moment
        body = {"ocid": OCID, "type": planned_type, "payload": planned}
        _refused(api, "/api/v1/tenders", body, 422, "body.signature")
        # A key that acts for OFFICER may not send OTHER's signed submissions.
        _, bound = auth.create_key(log.engine, name="ana-laptop", role="officer", now=at(-30), officer=OFFICER)
        by_other = {"ocid": OCID, **_event_body(planned_type, planned, sign=OTHER_KEY)}
        response = api.client.post("/api/v1/tenders", json=by_other, headers={"X-API-Key": bound})
        assert response.status_code == 403 and response.json()["error"]["field"] == "body.submission.officer"
        by_officer = {"ocid": OCID, **_event_body(planned_type, planned, sign=OFFICER_KEY)}
        assert api.client.post("/api/v1/tenders", json=by_officer, headers={"X-API-Key": bound}).status_code == 201
        # Revoked: the officer's signatures are refused from then on.
        revoked = api.client.post(f"/api/v1/officers/{OFFICER}/revoke", json={"reason": "left"}, headers=api.as_admin())
        assert revoked.status_code == 201
        api.clock.moment = history()[1][2]
        event = _event_body("tender.published", published(), sign=OFFICER_KEY, n=1)
        assert "not a registered officer" in _refused(api, f"/api/v1/tenders/{OCID}/events", event, 422, None)


def test_a_new_tender_gets_an_ocid_and_an_existing_one_is_refused(api: Api) -> None:
    api.clock.moment = at(-1)
    body = {"type": "tender.published", "payload": published()}
    created = api.client.post("/api/v1/tenders", json=body, headers=api.as_officer())
    assert created.status_code == 201
    ocid = created.json()["ocid"]
    assert ocid.startswith("ocds-tp0dev-") and created.headers["Location"] == f"/api/v1/tenders/{ocid}"
    assert api.client.get(f"/api/v1/tenders/{ocid}").json()["status"] == "active"
    _refused(api, "/api/v1/tenders", {**body, "ocid": ocid}, 409, "body.prev")


@pytest.mark.parametrize("keyed", [True, False])
def test_concurrent_officers_on_one_tender_over_real_http(log: Log, keyed: bool) -> None:
    """Eight clients commit bids to one tender at once through uvicorn: every acknowledged bid is
    recorded exactly once, with seqs dense and the chain intact; with ``Idempotency-Key`` (each
    request's thread waits for its batch) and without (the event loop queues it to the group
    commit, whose leader answers it)."""
    clock = Clock(at(-1))
    settings = settings_for(log.engine.url.render_as_string(hide_password=False), signing_chain_id=CHAIN_ID)
    _, key = auth.create_key(log.engine, name="ana", role="officer", now=at(-30))
    headers = {"Authorization": f"Bearer {key}"}
    with threaded_server(create_app(settings, log=log, now=clock)) as base:
        first = httpx.post(
            f"{base}/api/v1/tenders",
            json={"ocid": OCID, "type": "tender.published", "payload": published()},
            headers=headers,
            timeout=30,
        )
        assert first.status_code == 201, first.text
        clock.moment = at(3)
        acknowledged: list[int] = []
        failures: list[str] = []

        def officer(n: int) -> None:
            b, salt = bid(n)
            body = {
                "type": "bid.committed",
                "payload": {"bidder": b["tenderers"][0], "commitment": commitment(b, salt)},
            }
            with httpx.Client(base_url=base, timeout=60) as client:
                key = {"Idempotency-Key": f"bid-{n}"} if keyed else {}
                response = client.post(f"/api/v1/tenders/{OCID}/events", json=body, headers={**headers, **key})
            if response.status_code == 201:
                acknowledged.append(response.json()["seq"])
            else:
                failures.append(response.text)

        threads = [threading.Thread(target=officer, args=(n,)) for n in range(1, 9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert sorted(acknowledged) == list(range(1, 9))
    assert log.group._leader is not None  # the group's own thread led the unkeyed writes (the first one's at least)
    stored = log.reader.tender_events(OCID)
    assert [e.seq for e in stored] == list(range(9))
    for previous, event in itertools.pairwise(stored):
        assert event.envelope and f'"prev":"{previous.leaf_hash.hex()}"'.encode() in event.envelope


def test_embedded_chain_id_is_the_default_signing_domain() -> None:
    assert EmbeddedChain().w3.eth.chain_id == EMBEDDED_CHAIN_ID
    assert settings_for("sqlite://").chain_id_for_signatures == EMBEDDED_CHAIN_ID


@pytest.mark.parametrize("cache_seconds", [30.0, 0.5])
def test_a_revoked_key_is_refused_within_the_cache_bound(log: Log, cache_seconds: float) -> None:
    """``TENDERPROOF_API_KEY_CACHE_SECONDS`` bounds how long a server process keeps accepting a key
    revoked after it authenticated it: within it, the cached key still writes (no database read
    for it); once it has passed, the key is refused as revoked."""
    for api in _api(log, api_key_cache_seconds=cache_seconds):
        body = {"ocid": OCID, "type": "tender.published", "payload": published()}
        assert api.client.post("/api/v1/tenders", json=body, headers=api.as_officer()).status_code == 201
        officer = next(k for k in auth.list_keys(log.engine) if k.name == "ana")
        revoked_at = time.monotonic()
        auth.revoke_key(log.engine, officer.id, now=at(-19))
        event = {"type": "tender.clarified", "payload": history()[2][1]}
        if cache_seconds > 5:
            response = api.client.post(f"/api/v1/tenders/{OCID}/events", json=event, headers=api.as_officer())
            assert time.monotonic() - revoked_at < cache_seconds  # so the cache must have answered
            assert response.status_code == 201, response.text
        else:
            time.sleep(cache_seconds - (time.monotonic() - revoked_at) + 0.05)
            response = api.client.post(f"/api/v1/tenders/{OCID}/events", json=event, headers=api.as_officer())
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "api_key_revoked"


def test_a_withholding_order_is_recorded_by_an_administrator_only(api: Api) -> None:
    """POST /api/v1/withholding-orders: an officer's key is refused (403), bad targets are named
    (422, 409) with nothing recorded; an administrator's order withholds the payload at once."""
    created = api.client.post(
        "/api/v1/tenders",
        json={"ocid": OCID, "type": "tender.published", "payload": published()},
        headers=api.as_officer(),
    )
    assert created.status_code == 201, created.text
    api.log.integrate_all(now=api.clock())
    order = {
        "reference": "EXP-9/2026",
        "authority": "Juzgado 3",
        "legal_basis": "LOPDGDD art. 15",
        "targets": [{"index": 0}],
    }
    path = "/api/v1/withholding-orders"
    _refused(api, path, order, 403, None)
    admin = {"Authorization": f"Bearer {api.admin_key}"}
    _refused(api, path, {**order, "targets": [{"index": 7}]}, 422, "body.targets[0].index", headers=admin)
    _refused(
        api,
        path,
        {**order, "targets": [{"index": 0, "fields": ["/envelope/ocid"]}]},
        422,
        "body.targets[0].fields[0]",
        headers=admin,
    )
    _refused(api, path, {**order, "targets": []}, 422, "body.targets", headers=admin)
    _refused(
        api,
        "/api/v1/tenders/ocds-tpreg0-orders/events",
        {"type": "tender.published", "payload": published()},
        422,
        "path.ocid",
    )
    response = api.client.post(path, json=order, headers=admin)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["index"] == 1 and answer["withheld"] == [{"index": 0, "ocid": OCID, "fields": None}]
    assert answer["order"]["ocid"] == "ocds-tpreg0-orders" and answer["order"]["type"] == "privacy.withholding"
    entry = api.client.get("/api/v1/entries", params={"start": 0, "end": 2}).json()["entries"]
    assert entry[0]["payload"] is None and entry[0]["withheld_by"] == 1
    assert entry[1]["payload"]["reference"] == "EXP-9/2026"
    [event] = api.client.get(f"/api/v1/tenders/{OCID}/events").json()["events"]
    assert event["payload"] is None and event["withheld_by"] == 1
    assert event["payload_error"] == "withheld under the order at log index 1"
    _refused(api, path, order, 409, "body.targets[0].index", headers=admin)  # withheld twice
