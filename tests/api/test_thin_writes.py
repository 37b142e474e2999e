"""The thin path of the single-event writes (:mod:`api.thin`) answers exactly as FastAPI's routes:
two applications, one with it and one without, each on a database of its own with the same keys,
get the same requests in the same order; every answer (status, headers, body bytes) and the request
metrics must be the same, on SQLite and PostgreSQL. Covered: success, signed submissions,
idempotency replays and reuse, each 4xx the two routes give (malformed or non-JSON bodies, missing
or bad keys, validation, domain refusals, conflicts, limits), and requests the thin path leaves to
the router."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from api import auth
from api.app import create_app
from api.schema import api_keys
from ledger.core import commitment
from ledger.log import Log
from tests.api.conftest import settings_for
from tests.api.test_writes import OCID, Clock, _event_body
from tests.conftest import ORIGIN, PG_ADMIN_URL
from tests.pg import scratch_database
from tests.procurement.helpers import CHAIN_ID, OFFICER, OFFICER_KEY, OTHER_KEY, at, history

EVENTS = f"/api/v1/tenders/{OCID}/events"
WRITES = frozenset({"/api/v1/tenders", "/api/v1/tenders/{ocid}/events"})


class Seeds:
    """The commitments' seeds, the same sequence again for each request (:meth:`Pair.both` restarts
    it), so that the two applications commit to the same payload with the same salts."""

    def __init__(self) -> None:
        self.drawn = 0

    def take(self) -> bytes:
        self.drawn += 1
        return hashlib.sha256(self.drawn.to_bytes(8, "big")).digest()


@dataclass
class Pair:
    """The same application twice: ``thin`` with the thin path, ``plain`` without, same keys."""

    thin: TestClient
    plain: TestClient
    clock: Clock
    keys: dict[str, str]  # name -> plaintext
    routed: dict[str, int]  # calls of the write routes' handlers through the router, per client
    seeds: Seeds

    def both(self, path: str, *, method: str = "POST", key: str | None = "ana", **kwargs: Any) -> Any:
        """Send one request to each; assert they answer alike; return the thin path's answer."""
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {self.keys[key]}")
        answers = []
        for client in (self.thin, self.plain):
            self.seeds.drawn = 0
            answers.append(client.request(method, path, headers=headers, **kwargs))
        thin, plain = answers
        assert thin.status_code == plain.status_code, (path, thin.text, plain.text)
        assert thin.headers.multi_items() == plain.headers.multi_items(), path
        assert thin.content == plain.content, (path, thin.text, plain.text)
        return thin


def _logs(engine: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path / 'thin.sqlite3'}", f"sqlite:///{tmp_path / 'plain.sqlite3'}"
        return
    with scratch_database(PG_ADMIN_URL) as first, scratch_database(PG_ADMIN_URL) as second:
        yield first, second


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def pair(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    routed = {"thin": 0, "plain": 0}
    original = APIRoute.handle

    async def counting(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] == "POST" and (
            self.path_format in WRITES or self.path in ("/tenders", "/tenders/{ocid}/events")
        ):
            routed[scope["app"].state.name] += 1
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", counting)
    seeds = Seeds()
    monkeypatch.setattr(commitment, "_SOURCE", seeds)
    for urls in _logs(request.param, tmp_path):
        thin_log, plain_log = (Log.open(url, origin=ORIGIN) for url in urls)
        try:
            keys = {}
            for name, role, officer in (
                ("ana", "officer", None),
                ("root", "admin", None),
                ("bound", "officer", OFFICER),
            ):
                _, keys[name] = auth.create_key(thin_log.engine, name=name, role=role, now=at(-30), officer=officer)
            revoked, keys["old"] = auth.create_key(thin_log.engine, name="old", role="officer", now=at(-30))
            auth.revoke_key(thin_log.engine, revoked.id, now=at(-25))
            with thin_log.engine.connect() as conn:
                rows = [dict(row) for row in conn.execute(select(api_keys)).mappings()]
            with plain_log.engine.begin() as conn:
                conn.execute(insert(api_keys), rows)  # the same keys, ids and secrets in both
            clock = Clock(at(-20))
            settings = settings_for(urls[0], signing_chain_id=CHAIN_ID, max_body_bytes=100_000)
            thin_app = create_app(settings, log=thin_log, now=clock)
            plain_app = create_app(settings_for(urls[1], signing_chain_id=CHAIN_ID, max_body_bytes=100_000),
                                   log=plain_log, now=clock, thin_writes=False)  # fmt: skip
            thin_app.state.name, plain_app.state.name = "thin", "plain"
            with TestClient(thin_app) as thin, TestClient(plain_app) as plain:
                yield Pair(thin, plain, clock, keys, routed, seeds)
                for client in (thin, plain):
                    assert client.app.state.metrics is not None  # type: ignore[attr-defined]
                assert _counts(thin) == _counts(plain)
        finally:
            thin_log.close()
            plain_log.close()


def _counts(client: TestClient) -> dict[tuple[str, ...], float]:
    """The request counter's samples (method, route template, status), as /metrics shows them."""
    metrics = client.app.state.metrics  # type: ignore[attr-defined]
    return {
        tuple(sample.labels.values()): sample.value
        for family in metrics.requests.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_the_thin_path_answers_as_the_routes_do(pair: Pair) -> None:
    steps = history()
    (planned_type, planned, t0), (published_type, published_payload, t1) = steps[:2]
    clarified_type, clarified, t2 = steps[2]
    committed_type, committed, t3 = steps[3]
    registered = pair.both("/api/v1/officers", json={"address": OFFICER, "name": "Ana"}, key="root")
    assert registered.status_code == 201

    # Refusals before anything of the tender exists.
    json_headers = {"Content-Type": "application/json"}
    pair.both("/api/v1/tenders", content=b'{"type": "tender.planned", "payload": {', headers=json_headers)
    pair.both("/api/v1/tenders", content=b'{"type": 1', headers=json_headers, key=None)  # parsed before the key
    pair.both("/api/v1/tenders", content=b'{"type": "\xff"}', headers=json_headers)  # not UTF-8: 400
    pair.both("/api/v1/tenders", content=b"", headers=json_headers)  # no body
    pair.both("/api/v1/tenders", content=b'{"type": "tender.planned"}')  # no Content-Type: not read as JSON
    pair.both("/api/v1/tenders", content=b'{"type": "tender.planned"}', headers={"Content-Type": "text/plain"})
    body = {"ocid": OCID, "type": planned_type, "payload": planned}
    weird = {"Content-Type": "application/vnd.tenderproof+json; charset=utf-8"}
    pair.clock.moment = t0
    pair.both("/api/v1/tenders", json={**body, "type": "tender.awarded"})
    pair.both("/api/v1/tenders", json={**body, "extra": 1})
    pair.both("/api/v1/tenders", json={**body, "payload": "not an object"})
    pair.both("/api/v1/tenders", json={**body, "ocid": "not-an-ocid"})
    pair.both("/api/v1/tenders", json=body, key=None)
    pair.both("/api/v1/tenders", json=body, key="old")  # revoked
    pair.both("/api/v1/tenders", json=body, key=None, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    forged = pair.keys["ana"][:-4] + ("aaaa" if not pair.keys["ana"].endswith("aaaa") else "bbbb")
    pair.both("/api/v1/tenders", json=body, key=None, headers={"Authorization": f"Bearer {forged}"})
    pair.both("/api/v1/tenders", json=body, headers={"X-API-Key": pair.keys["root"]})  # two different keys
    by_other = {"ocid": OCID, **_event_body(planned_type, planned, sign=OTHER_KEY)}
    pair.both("/api/v1/tenders", json=by_other, key="bound")  # 403: the key acts for another officer
    pair.both("/api/v1/tenders", json=by_other)  # 422: not a registered officer
    pair.both("/api/v1/tenders", json={**body, "payload": {**planned, "padding": "x" * 200_000}})  # 413
    pair.both("/api/v1/tenders", content=b'{"payload":' * 200 + b"1" + b"}" * 200, headers=json_headers)  # too deep

    # A signed creation, then the same again (409), then events.
    created = pair.both("/api/v1/tenders", json={"ocid": OCID, **_event_body(planned_type, planned, sign=OFFICER_KEY)},
                        headers=weird, key="bound")  # fmt: skip
    assert created.status_code == 201 and created.headers["Location"] == f"/api/v1/tenders/{OCID}"
    assert pair.both("/api/v1/tenders", json=body).json()["error"]["code"] == "conflict"
    pair.clock.moment = t1
    assert (
        pair.both(EVENTS, json=_event_body(published_type, published_payload, sign=OFFICER_KEY, n=1)).status_code == 201
    )
    pair.both(
        EVENTS, json=_event_body(published_type, published_payload, sign=OFFICER_KEY, n=0)
    )  # submission id replayed
    pair.both(EVENTS, json={**_event_body(clarified_type, clarified), "prev": "ab" * 32})  # 409 prev
    pair.both("/api/v1/tenders/not-an-ocid/events", json=_event_body(clarified_type, clarified))
    pair.both("/api/v1/tenders/ocds-tpreg0-officers/events", json=_event_body(clarified_type, clarified))
    pair.both("/api/v1/tenders/ocds-tplog0-heads/events", json=_event_body(clarified_type, clarified))
    pair.both(EVENTS, json={"type": "log.heads", "payload": {"tree_size": 1}})

    # Idempotency: recorded once, replayed, refused for another body.
    pair.clock.moment = t2
    once = {"Idempotency-Key": "3f1c0a7e-clarify"}
    first = pair.both(EVENTS, json=_event_body(clarified_type, clarified), headers=once)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = pair.both(EVENTS, json=_event_body(clarified_type, clarified), headers=once)
    assert again.headers["Idempotent-Replayed"] == "true"
    other = pair.both(EVENTS, json=_event_body(clarified_type, {**clarified, "x": 1}), headers=once)
    assert other.json()["error"]["code"] == "idempotency_key_reused"

    # A bid committed, with its commitment wrong, then right; the newest head as prev.
    pair.clock.moment = t3
    wrong = {**committed, "commitment": 42}
    assert (
        pair.both(EVENTS, json=_event_body(committed_type, wrong)).json()["error"]["field"] == "body.payload.commitment"
    )
    head = pair.both(EVENTS, json=_event_body(committed_type, committed)).json()["leaf_hash"]
    assert pair.both(EVENTS, json={**_event_body(clarified_type, clarified), "prev": head}).status_code == 201

    # Left to the router: other methods and paths, a trailing slash.
    for path in ("/api/v1/tenders/", f"/api/v1/tenders/{OCID}/events/", f"/api/v1/tenders/{OCID}/x/events"):
        pair.both(path, json=_event_body(clarified_type, clarified))
    pair.both("/api/v1/tenders", method="GET", key=None)
    pair.both(EVENTS, method="PUT", json=_event_body(clarified_type, clarified))

    # The thin application never routed a single write; the other routed every one.
    assert pair.routed["thin"] == 0
    assert pair.routed["plain"] >= 30


def test_the_openapi_document_is_unchanged(pair: Pair) -> None:
    """The two routes are described from their FastAPI declarations, whichever path serves them."""
    thin = pair.thin.get("/openapi.json")
    assert thin.status_code == 200
    assert thin.content == pair.plain.get("/openapi.json").content
    operations = thin.json()["paths"]
    assert operations["/api/v1/tenders"]["post"]["operationId"] == "create_tender_api_v1_tenders_post"
    assert "201" in operations["/api/v1/tenders/{ocid}/events"]["post"]["responses"]
