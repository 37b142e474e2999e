"""One door into the log: ``tenderproof record`` goes through the procurement layer as the HTTP API
does, so it refuses exactly what the API refuses, with the same message naming the field (the API
names it in the request's terms, ``body.`` in front), and records nothing either way; what the
API accepts, the command line records the same way. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import auth
from api.app import create_app
from cli import main
from ledger.core.canonical import canonical_bytes
from ledger.core.merkle import leaf_hash
from ledger.log import Log
from ledger.procurement.officers import REGISTRY_OCID
from ledger.store.schema import events, tender_index
from settings import EMBEDDED_CHAIN_ID
from tests.api.conftest import settings_for
from tests.conftest import ORIGIN
from tests.procurement.helpers import at, history, published

FUTURE = {"startDate": "2026-01-05T00:00:00Z", "endDate": "2099-01-01T00:00:00Z"}
AWARD = history()[7][1]

#: (why, ocid, type, payload, prev): each is refused by the domain, whichever door it comes through.
REFUSED: list[tuple[str, str, str, Any, str | None]] = [
    ("an award with no award, as a tender's first event", "ocds-tptest-door1", "award.issued", {"nonsense": 1}, None),
    ("a publication without its tender", "ocds-tptest-door2", "tender.published", {"buyer": {"id": "B", "name": "B"}}, None),
    ("a publication whose tender has no title", "ocds-tptest-door3", "tender.published", {"tender": {"id": "T"}}, None),
    ("an award before the tender exists", "ocds-tptest-door4", "award.issued", AWARD, None),
    ("a number beyond what RFC 8785 keeps exact", "ocds-tptest-door5", "tender.published",
     published(tenderPeriod=FUTURE, value={"amount": 2**60, "currency": "EUR"}), None),
    ("a stale prev", "ocds-tptest-door6", "tender.published", published(tenderPeriod=FUTURE), "ab" * 32),
]  # fmt: skip


@pytest.fixture
def door(log: Log, tmp_path: Path) -> Iterator[tuple[Log, TestClient, str]]:
    url = log.engine.url.render_as_string(hide_password=False)
    settings = settings_for(url, signing_chain_id=EMBEDDED_CHAIN_ID)
    _, officer_key = auth.create_key(log.engine, name="ana", role="officer", now=at(-30))
    with TestClient(create_app(settings, log=log, now=lambda: at(0))) as client:
        client.headers["Authorization"] = f"Bearer {officer_key}"
        yield log, client, url


def _count(log: Log) -> tuple[int, int]:
    with log.engine.connect() as conn:
        recorded = conn.execute(select(func.count()).select_from(events)).scalar_one()
        projected = conn.execute(select(func.count()).select_from(tender_index)).scalar_one()
    return int(recorded), int(projected)


def _cli_record(url: str, tmp_path: Path, ocid: str, kind: str, payload: Any, prev: str | None,
                capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:  # fmt: skip
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    args = ["--database-url", url, "--origin", ORIGIN, "record", ocid, kind, str(path)]
    code = main([*args, "--prev", prev] if prev else args)
    out, err = capsys.readouterr()
    return code, err.strip() if code else out


@pytest.mark.parametrize(("why", "ocid", "kind", "payload", "prev"), REFUSED, ids=[case[0] for case in REFUSED])
def test_the_command_line_refuses_what_the_api_refuses(
    door: tuple[Log, TestClient, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    why: str,
    ocid: str,
    kind: str,
    payload: Any,
    prev: str | None,
) -> None:
    log, client, url = door
    before = _count(log)
    body: dict[str, Any] = {"type": kind, "payload": payload, **({"prev": prev} if prev else {})}
    response = client.post(f"/api/v1/tenders/{ocid}/events", json=body)
    assert response.status_code in (409, 422), response.text
    error = response.json()["error"]
    code, said = _cli_record(url, tmp_path, ocid, kind, payload, prev, capsys)
    assert code == (1 if response.status_code == 409 else 2), said
    assert said.startswith("error: "), said
    cli_message = said.removeprefix("error: ")
    assert error["message"] == "body." + cli_message, why
    assert error["field"] == "body." + cli_message.split(":")[0], why
    assert _count(log) == before, f"{why}: something was recorded"


def test_an_empty_officer_registration_is_refused(
    door: tuple[Log, TestClient, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, _, url = door
    before = _count(log)
    code, said = _cli_record(url, tmp_path, REGISTRY_OCID, "officer.registered", {}, None, capsys)
    assert code == 2 and said.startswith("error: payload."), said
    code, said = _cli_record(url, tmp_path, "ocds-tptest-door7", "officer.registered", {}, None, capsys)
    assert (
        code == 2 and said == f"error: ocid: officer events are recorded under {REGISTRY_OCID}, not ocds-tptest-door7"
    )
    assert _count(log) == before


def test_what_the_command_line_records_is_projected_as_the_api_would(
    door: tuple[Log, TestClient, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log, client, url = door
    payload = published(title="Bridge repair", tenderPeriod=FUTURE)
    code, out = _cli_record(url, tmp_path, "ocds-tptest-door8", "tender.published", payload, "none", capsys)
    assert code == 0, out
    recorded = json.loads(out)
    assert recorded["envelope"]["seq"] == 0 and recorded["envelope"]["type"] == "tender.published"
    summary = client.get("/api/v1/tenders/ocds-tptest-door8").json()
    assert (summary["title"], summary["status"]) == ("Bridge repair", "active")
    assert _count(log) == (1, 1)


def test_a_write_answers_the_envelope_exactly_as_hashed(door: tuple[Log, TestClient, str]) -> None:
    """What the API answers is the envelope as the log holds it (no null submission of an unsigned
    event), so hashing the answer as received gives the leaf hash the answer states."""
    _, client, _ = door
    body = {"type": "tender.published", "payload": published(title="Roof repair", tenderPeriod=FUTURE)}
    response = client.post("/api/v1/tenders/ocds-tptest-door9/events", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert "submission" not in answer["envelope"] and "signature" not in answer["envelope"]
    assert leaf_hash(canonical_bytes(answer["envelope"])).hex() == answer["leaf_hash"]
