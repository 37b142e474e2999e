"""Who may write, and what a stolen or forged credential gets: expired and revoked API keys,
guessing keys under the rate limit, forged, tampered and replayed officer signatures. On SQLite
and PostgreSQL, through the real application."""

from __future__ import annotations

import copy
from datetime import timedelta

from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from ledger.log import Log
from tests.api.conftest import settings_for
from tests.api.test_writes import OCID, _api, _event_body, _refused, _register
from tests.procurement.helpers import OFFICER, OFFICER_KEY, OTHER_KEY, at, history


def test_expired_and_revoked_keys_are_refused_over_http(log: Log) -> None:
    for api in _api(log):
        _, temporary = auth.create_key(
            log.engine, name="contractor", role="officer", now=at(-21), expires_in=timedelta(days=1)
        )
        planned_type, planned, _ = history()[0]
        body = {"ocid": OCID, "type": planned_type, "payload": planned}
        api.clock.moment = at(-20) + timedelta(hours=-1)  # 23 h after creation: still valid
        assert api.client.get("/api/v1/officers", headers={"X-API-Key": temporary}).status_code == 200
        api.clock.moment = at(-20)  # 24 h: expired
        refused = api.client.post("/api/v1/tenders", json=body, headers={"X-API-Key": temporary})
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "api_key_expired"
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="tenderproof", error="invalid_token"'
        assert api.count() == 0
        auth.revoke_key(log.engine, auth.list_keys(log.engine)[0].id, now=at(-20))  # the officer fixture's key
        refused = api.client.post("/api/v1/tenders", json=body, headers=api.as_officer())
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "api_key_revoked"
        assert api.count() == 0


def test_guessing_keys_runs_into_the_rate_limit(log: Log) -> None:
    app = create_app(settings_for(log.engine.url.render_as_string(hide_password=False), rate_limit="5/minute"), log=log)
    with TestClient(app) as client:
        statuses = []
        for n in range(8):
            guess = f"tp_{n:012x}_{'a' * 52}"
            statuses.append(client.post("/api/v1/tenders", json={}, headers={"X-API-Key": guess}).status_code)
        assert statuses == [401] * 5 + [429] * 3
        limited = client.post("/api/v1/tenders", json={}, headers={"X-API-Key": f"tp_{'f' * 12}_{'b' * 52}"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_forged_tampered_and_replayed_signatures_are_refused(log: Log) -> None:
    for api in _api(log, require_signatures=True):
        _register(api, OFFICER)
        (planned_type, planned, moment), (published_type, published_payload, moment2) = history()[:2]
        api.clock.moment = moment
        # forged: signed by a key that is not a registered officer
        forged = {"ocid": OCID, **_event_body(planned_type, planned, sign=OTHER_KEY)}
        assert "not a registered officer" in _refused(api, "/api/v1/tenders", forged, 422, None)
        # tampered: the payload changed after the officer signed it
        genuine = {"ocid": OCID, **_event_body(planned_type, planned, sign=OFFICER_KEY)}
        tampered = copy.deepcopy(genuine)
        tampered["payload"]["planning"]["rationale"] = "Something else"
        _refused(api, "/api/v1/tenders", tampered, 422, None)
        # a signature with one bit flipped
        flipped = copy.deepcopy(genuine)
        flipped["signature"] = flipped["signature"][:-2] + ("00" if flipped["signature"][-2:] != "00" else "01")
        _refused(api, "/api/v1/tenders", flipped, 422, None)
        assert api.client.post("/api/v1/tenders", json=genuine, headers=api.as_officer()).status_code == 201
        # replayed: the same signed submission again, as a new event of the same tender ...
        api.clock.moment = moment2
        replay = {k: v for k, v in genuine.items() if k != "ocid"}
        assert "already recorded" in _refused(api, f"/api/v1/tenders/{OCID}/events", replay, 409, None)
        # ... or as the first event of another tender (the signature covers the ocid)
        elsewhere = {**genuine, "ocid": "ocds-tptest-0002"}
        _refused(api, "/api/v1/tenders", elsewhere, 422, None)
        # the genuine next event still goes through
        event = _event_body(published_type, published_payload, sign=OFFICER_KEY, n=1)
        assert (
            api.client.post(f"/api/v1/tenders/{OCID}/events", json=event, headers=api.as_officer()).status_code == 201
        )
