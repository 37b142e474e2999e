"""The officers' desk over HTTP (the real application, SQLite and PostgreSQL): signing in with an
API key, the session cookie and its end (expiry, sign-out, key revoked), CSRF refusals that record
nothing, errors beside their fields in English and Spanish, and a signed event recorded from a form
whose payload hash is the one ``/desk/payload`` gave to sign."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import auth
from api.app import create_app
from ledger.core.signing import Submission as Signed
from ledger.core.signing import sign_submission
from ledger.log import Log
from ledger.store.schema import events
from tests.api.conftest import settings_for
from tests.api.test_writes import Clock
from tests.conftest import ORIGIN
from tests.procurement.helpers import CHAIN_ID, OFFICER, OFFICER_KEY, at

#: The fields of a valid tender.published form.
PUBLISHED = {
    "tender.id": "SI-OP-2027-001",
    "tender.title": "Renovación de la plaza",
    "tender.procurementMethod": "open",
    "tender.value.amount": "1200000",
    "tender.value.currency": "MXN",
    "tender.tenderPeriod.startDate": "2026-03-02T00:00",
    "tender.tenderPeriod.endDate": "2026-03-30T23:59",
    "buyer.id": "MX-MUN-042",
    "buyer.name": "Municipio de San Isidro",
}


@dataclass
class Desk:
    log: Log
    client: TestClient
    clock: Clock
    officer_key: str
    key_id: int

    def csrf(self, path: str = "/desk") -> str:
        page = self.client.get(path)
        found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
        assert found is not None, page.text
        return found.group(1)

    def sign_in(self) -> None:
        response = self.client.post("/desk/session", data={"csrf": self.csrf(), "api_key": self.officer_key})
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/desk"

    def count(self) -> int:
        with self.log.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    def publish(self, fields: dict[str, str], **extra: str) -> Any:
        csrf = self.csrf("/desk/new?type=tender.published")
        data = {"csrf": csrf, "type": "tender.published", "first": "1", "ocid": "", **fields, **extra}
        return self.client.post("/desk/events", data=data)


@pytest.fixture
def desk(log: Log) -> Iterator[Desk]:
    clock = Clock(at(-20))
    settings = settings_for(
        log.engine.url.render_as_string(hide_password=False), signing_chain_id=CHAIN_ID, desk_session_seconds=3600
    )
    key, officer_key = auth.create_key(log.engine, name="Ana Ruiz", role="officer", now=at(-30), officer=OFFICER)
    with TestClient(create_app(settings, log=log, now=clock), follow_redirects=False) as client:
        yield Desk(log, client, clock, officer_key, key.id)


def test_sign_in_sets_a_strict_http_only_session_cookie_and_records_an_event(desk: Desk) -> None:
    first = desk.client.get("/desk")
    assert first.status_code == 200 and 'action="/desk/session"' in first.text
    csrf_cookie = first.headers["set-cookie"]
    assert "tp_desk_csrf=" in csrf_cookie and "HttpOnly" in csrf_cookie and "SameSite=strict" in csrf_cookie
    response = desk.client.post("/desk/session", data={"csrf": desk.csrf(), "api_key": desk.officer_key})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("tp_desk=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/desk", "Max-Age=3600"):
        assert attribute in cookie, cookie
    assert "Secure" not in cookie  # plain http here; https: see test_secure_cookie_over_https
    home = desk.client.get("/desk")
    assert "Ana Ruiz" in home.text and "/desk/new?type=tender.published" in home.text
    before = desk.count()
    recorded = desk.publish(PUBLISHED)
    assert recorded.status_code == 303, recorded.text
    assert desk.count() == before + 1
    entry = desk.client.get(recorded.headers["location"])
    assert entry.status_code == 200 and 'data-status="pending"' in entry.text
    ocid = recorded.headers["location"].split("/")[3]
    status = desk.client.get(f"/desk/entries/{ocid}/0/status").json()
    assert status["status"] == "pending" and status["type"] == "tender.published"
    desk.log.integrate_all(now=at(-20))
    assert desk.client.get(f"/desk/entries/{ocid}/0/status").json()["status"] == "integrated"
    summary = desk.client.get(f"/api/v1/tenders/{ocid}").json()
    assert summary["title"] == "Renovación de la plaza"


def test_secure_cookie_over_https(desk: Desk) -> None:
    https = TestClient(desk.client.app, base_url="https://testserver", follow_redirects=False)
    page = https.get("/desk")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert csrf is not None and "Secure" in page.headers["set-cookie"]
    response = https.post("/desk/session", data={"csrf": csrf.group(1), "api_key": desk.officer_key})
    assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


def test_a_post_without_the_csrf_token_is_refused_and_records_nothing(desk: Desk) -> None:
    assert desk.client.post("/desk/session", data={"api_key": desk.officer_key}).status_code == 403
    desk.sign_in()
    before = desk.count()
    fields = {"type": "tender.published", "first": "1", "ocid": "", **PUBLISHED}
    missing = desk.client.post("/desk/events", data=fields)
    assert missing.status_code == 403
    other = desk.client.post("/desk/events", data={**fields, "csrf": "0" * 64})
    assert other.status_code == 403
    assert desk.client.post("/desk/payload", data=fields).status_code == 403
    assert desk.count() == before
    # the token of the session before signing in is not the signed-in session's
    desk.client.cookies.delete("tp_desk")
    anonymous = desk.csrf()
    desk.sign_in()
    assert desk.client.post("/desk/events", data={**fields, "csrf": anonymous}).status_code == 403
    assert desk.count() == before


def test_an_expired_session_is_signed_out(desk: Desk) -> None:
    desk.sign_in()
    assert "Ana Ruiz" in desk.client.get("/desk").text
    csrf = desk.csrf("/desk/new")
    desk.clock.moment += timedelta(seconds=3601)
    page = desk.client.get("/desk/new")
    assert page.status_code == 303 and page.headers["location"] == "/desk?ended=1"
    ended = desk.client.get("/desk?ended=1")
    assert 'action="/desk/session"' in ended.text and "Ana Ruiz" not in ended.text
    before = desk.count()
    late = {"csrf": csrf, "type": "tender.published", "first": "1", "ocid": "", **PUBLISHED}
    assert desk.client.post("/desk/events", data=late).status_code == 403  # the token was the ended session's
    assert desk.count() == before


def test_signing_out_and_revoking_the_key_end_the_session_server_side(desk: Desk) -> None:
    desk.sign_in()
    session = desk.client.cookies["tp_desk"]
    out = desk.client.post("/desk/session/end", data={"csrf": desk.csrf()})
    assert out.status_code == 303
    desk.client.cookies.set("tp_desk", session, path="/desk")  # replaying the old cookie does not help
    assert desk.client.get("/desk/new").status_code == 303
    desk.sign_in()
    assert desk.client.get("/desk/new").status_code == 200
    auth.revoke_key(desk.log.engine, desk.key_id, now=desk.clock())
    assert desk.client.get("/desk/new").headers["location"] == "/desk?ended=1"


def test_a_wrong_key_is_refused_beside_its_field(desk: Desk) -> None:
    response = desk.client.post("/desk/session", data={"csrf": desk.csrf(), "api_key": "tp_nope"})
    assert response.status_code == 401
    assert 'aria-describedby="api_key-error"' in response.text and "is not a valid API key" in response.text


def test_validation_errors_beside_their_fields_in_spanish(desk: Desk) -> None:
    desk.client.cookies.set("lang", "es")
    desk.sign_in()
    before = desk.count()
    wrong = {**PUBLISHED, "tender.title": "", "tender.value.currency": "pesos", "tender.value.amount": "mucho"}
    response = desk.publish(wrong)
    assert response.status_code == 422
    assert desk.count() == before

    def error_of(field: str) -> str:
        found = re.search(rf'<p class="desk-error" id="{re.escape(field)}-error">([^<]*)</p>', response.text)
        assert found is not None, (field, response.text)
        control = re.search(rf'<(?:input|select|textarea) id="{re.escape(field)}"[^>]*>', response.text)
        assert control is not None, field
        assert 'aria-invalid="true"' in control.group(0) and f"{field}-error" in control.group(0)
        return found.group(1)

    # every problem at once, each beside its own field, in Spanish: the amount that is no number,
    # the missing title, the currency that is no ISO 4217 code
    assert "debe ser un número" in error_of("tender.value.amount")
    assert error_of("tender.title") == "es obligatorio"
    currency = error_of("tender.value.currency")
    assert "código de moneda" in currency and "pesos" in currency
    assert "must be" not in response.text
    assert 'id="buyer.name-error"' not in response.text  # a right field gets no error
    # fixed one by one, the others stay named
    response = desk.publish({**wrong, "tender.value.amount": "1000"})
    assert 'id="tender.value.amount-error"' not in response.text
    assert error_of("tender.title") == "es obligatorio"
    assert "pesos" in error_of("tender.value.currency")
    response = desk.publish({**wrong, "tender.value.amount": "1000", "tender.title": "Plaza"})
    assert 'id="tender.title-error"' not in response.text
    assert "pesos" in error_of("tender.value.currency")
    # what was typed stays in the form
    assert 'value="Municipio de San Isidro"' in response.text
    assert desk.count() == before


def test_a_form_signed_with_the_hash_the_desk_gave_is_recorded_signed(desk: Desk) -> None:
    _admin, admin_key = auth.create_key(desk.log.engine, name="root", role="admin", now=at(-30))
    registered = desk.client.post(
        "/api/v1/officers", json={"address": OFFICER, "name": "Ana Ruiz"}, headers={"X-API-Key": admin_key}
    )
    assert registered.status_code == 201, registered.text
    desk.sign_in()
    csrf = desk.csrf("/desk/new")
    fields = {"csrf": csrf, "type": "tender.published", "first": "1", "ocid": "", **PUBLISHED}
    answer = desk.client.post("/desk/payload", data=fields)
    assert answer.status_code == 200, answer.text
    to_sign = answer.json()
    assert to_sign["officer"] == OFFICER and to_sign["origin"] == ORIGIN and to_sign["chainId"] == CHAIN_ID
    struct = Signed(
        origin=ORIGIN,
        chain_id=CHAIN_ID,
        ocid=to_sign["ocid"],
        event_type="tender.published",
        payload_sha256=to_sign["payloadSha256"],
        submission_id="desk-test-1",
        officer=OFFICER,
        signed_at=1_790_000_000,
    )
    data = {
        **fields,
        "ocid": to_sign["ocid"],
        "submission": json.dumps(struct.to_json()),
        "signature": sign_submission(struct, OFFICER_KEY),
        "disclosure": json.dumps(to_sign["disclosure"]),
    }
    # the signature covers the salted commitment, so the form needs the disclosure it was made with
    without = desk.client.post("/desk/events", data={**data, "disclosure": "", "csrf": desk.csrf("/desk/new")})
    assert without.status_code == 422 and "submission.payloadSha256" in without.text
    recorded = desk.client.post("/desk/events", data=data)
    assert recorded.status_code == 303, recorded.text
    stored = desk.log.reader.tender_events(to_sign["ocid"])
    envelope = stored[0].parsed_envelope
    assert envelope.v == 2 and envelope.payload_commitment == to_sign["payloadSha256"]
    assert stored[0].payload is not None and stored[0].parsed_disclosure == to_sign["disclosure"]
    assert envelope.payload_commitment != hashlib.sha256(stored[0].payload).hexdigest()
    assert envelope.payload_binding(stored[0].parsed_payload, disclosure=to_sign["disclosure"]) == envelope.payload_hash
    assert envelope.submission is not None and envelope.submission["officer"] == OFFICER
    # a form changed after signing is refused and records nothing: the signature covers the payload
    other = to_sign["ocid"] + "-2"
    struct = Signed(
        origin=ORIGIN,
        chain_id=CHAIN_ID,
        ocid=other,
        event_type="tender.published",
        payload_sha256=to_sign["payloadSha256"],
        submission_id="desk-test-2",
        officer=OFFICER,
        signed_at=1_790_000_000,
    )
    before = desk.count()
    tampered = {
        **data,
        "csrf": desk.csrf("/desk/new"),
        "ocid": other,
        "tender.title": "Otra cosa",
        "submission": json.dumps(struct.to_json()),
        "signature": sign_submission(struct, OFFICER_KEY),
    }
    refused = desk.client.post("/desk/events", data=tampered)
    assert refused.status_code == 422
    assert "submission.payloadSha256" in refused.text, refused.text
    assert desk.count() == before


def test_a_tender_rule_refusal_is_shown_in_spanish(desk: Desk) -> None:
    desk.client.cookies.set("lang", "es")
    desk.sign_in()
    created = desk.publish(PUBLISHED)  # deadline 2026-03-30T23:59Z; the clock is before it
    assert created.status_code == 303
    ocid = created.headers["location"].split("/")[3]
    csrf = desk.csrf(f"/desk/record?ocid={ocid}&type=award.issued")
    award = {
        "award.id": "award-1",
        "award.suppliers[0].id": "MX-1",
        "award.suppliers[0].name": "Pavimentos del Norte",
        "award.value.amount": "1000",
        "award.value.currency": "MXN",
    }
    before = desk.count()
    refused = desk.client.post(
        "/desk/events", data={"csrf": csrf, "type": "award.issued", "first": "0", "ocid": ocid, **award}
    )
    assert refused.status_code == 422
    assert "las adjudicaciones van después del plazo 2026-03-30T23:59:00Z" in refused.text, refused.text
    assert desk.count() == before
