"""Open data over HTTP: the admin import, streamed exports and red flags (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ocdsmerge import Merger

from api import auth
from api.app import create_app
from demo import ocds as demo_ocds
from ledger.log import Log
from ledger.procurement import ocds, query, redflags
from tests.conftest import T0
from tests.procurement.test_importer import PARAGUAY, SAMPLE, _package, _release, _source

from .conftest import settings_for

SAMPLE_OCID = "ocds-213czf-000-00001"


@dataclass
class Api:
    client: TestClient
    log: Log
    admin: dict[str, str]
    officer: dict[str, str]


@pytest.fixture
def api(log: Log, db_url: str) -> Iterator[Api]:
    _, admin = auth.create_key(log.engine, name="root", role="admin", now=T0)
    _, officer = auth.create_key(log.engine, name="ana", role="officer", now=T0)
    app = create_app(settings_for(db_url), log=log, now=lambda: T0)
    with TestClient(app) as client:
        yield Api(client, log, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {officer}"})


def _post(api: Api, body: bytes | str, *, params: dict[str, Any] | None = None, content_type: str | None = None) -> Any:
    data = body.encode() if isinstance(body, str) else body
    headers = {**api.admin, **({"Content-Type": content_type} if content_type else {})}
    return api.client.post("/api/v1/import", content=data, params=params, headers=headers)


def test_import_reports_and_is_idempotent(api: Api) -> None:
    response = _post(api, PARAGUAY.read_bytes())
    assert response.status_code == 200, response.text
    assert response.json() == {
        "read": 1,
        "imported": 1,
        "duplicates": 0,
        "invalid": 0,
        "tenders": 1,
        "noted": 0,
        "noted_releases": 0,
        "files": [{"file": "body", "encoding": "utf-8", "how": "default", "gzip": False, "format": "json"}],
        "personal_data": {},
        "problems": [],
        "notes": [],
    }
    again = _post(api, PARAGUAY.read_bytes()).json()
    assert (again["imported"], again["duplicates"]) == (0, 1)


def test_import_needs_an_administrator(api: Api) -> None:
    anonymous = api.client.post("/api/v1/import", content=PARAGUAY.read_bytes())
    assert anonymous.status_code == 401
    officer = api.client.post("/api/v1/import", content=PARAGUAY.read_bytes(), headers=api.officer)
    assert officer.status_code == 403
    assert query.count_tenders(api.log.engine) == 0


def test_invalid_releases_are_reported_and_strict_refuses_everything(api: Api) -> None:
    body = _package(_release(ocid="ocds-abc123-ok"), _release(ocid="bad", rid="r9"))
    partial = _post(api, body)
    assert partial.status_code == 200
    assert partial.json()["problems"] == [
        {
            "file": "body",
            "ocid": "bad",
            "release": "r9",
            "path": "ocid",
            "reason": partial.json()["problems"][0]["reason"],
            "recorded": False,
        }
    ]
    strict = _post(
        api, _package(_release(ocid="ocds-abc123-ok2"), _release(ocid="bad", rid="r9")), params={"strict": "true"}
    )
    assert strict.status_code == 422
    error = strict.json()["error"]
    assert error["field"] == "body" and "nothing was imported" in error["message"]
    assert [d["field"] for d in error["details"]] == ["body.r9.ocid"]
    assert [t.ocid for t in query.search_tenders(api.log.engine).items] == ["ocds-abc123-ok"]


def test_a_body_with_nothing_importable_is_a_422(api: Api) -> None:
    response = _post(api, b'{"releases": [{"ocid": "ocds-abc123-x"')
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("$: body: after release #0: invalid JSON: parse error")
    several = _post(api, b'{"releases": [1, 2').json()["error"]
    assert [d["field"] for d in several["details"]] == [
        "body.release #1.$",
        "body.release #2.$",
        "body.after release #2.$",
    ]


def test_json_lines_bodies(api: Api) -> None:
    lines = "\n".join(json.dumps(_release(ocid=f"ocds-abc123-j{i}")) for i in range(3))
    response = _post(api, lines, content_type="application/x-ndjson")
    assert response.json()["imported"] == 3


@pytest.fixture
def loaded(api: Api) -> Api:
    for path in (SAMPLE, PARAGUAY):
        assert _post(api, path.read_bytes()).status_code == 200
    return api


def test_release_export_gives_back_every_release(loaded: Api) -> None:
    response = loaded.client.get("/api/v1/export/releases")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    package = response.json()
    assert package["version"] == "1.1" and package["publishedDate"] == "2026-11-23T12:00:00.000000Z"
    assert package["releases"] == _source(SAMPLE, PARAGUAY)
    one = loaded.client.get("/api/v1/export/releases", params={"ocid": SAMPLE_OCID}).json()
    assert one["releases"] == _source(SAMPLE)
    dated = loaded.client.get("/api/v1/export/releases", params={"since": "2010-05-01", "until": "2010-06-30"}).json()
    assert (
        [r["id"] for r in dated["releases"]]
        == [r["id"] for r in _source(SAMPLE) if "2010-05-01" <= r["date"][:10] <= "2010-06-30"]
        != []
    )
    # The tender's own release package route gives imported releases back unchanged too.
    assert loaded.client.get(f"/api/v1/tenders/{SAMPLE_OCID}/releases").json()["releases"] == _source(SAMPLE)


@pytest.mark.parametrize(
    ("params", "field"), [({"ocid": "not-an-ocid"}, "query.ocid"), ({"since": "2010-13-01"}, "query.since")]
)
def test_bad_export_filters_are_422(loaded: Api, params: dict[str, str], field: str) -> None:
    response = loaded.client.get("/api/v1/export/releases", params=params)
    assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_record_export_compiles_with_ocdsmerge(loaded: Api) -> None:
    merger = Merger(schema=json.loads(ocds.RELEASE_SCHEMA.read_text()))
    package = loaded.client.get("/api/v1/export/records").json()
    assert [r["ocid"] for r in package["records"]] == ["ocds-03ad3f-246807", SAMPLE_OCID]
    for rec in package["records"]:
        assert rec["compiledRelease"] == merger.create_compiled_release(rec["releases"])
        assert rec["versionedRelease"] == merger.create_versioned_release(rec["releases"])


def _csv(loaded: Api, name: str) -> list[dict[str, str]]:
    response = loaded.client.get(f"/api/v1/export/{name}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_csv_exports(loaded: Api) -> None:
    tenders = _csv(loaded, "tenders.csv")
    assert [(t["ocid"], t["title"], t["value_amount"], t["awards"]) for t in tenders] == [
        ("ocds-03ad3f-246807", "", "", "0"),
        (SAMPLE_OCID, "Planned cycle lane improvements", "1100000", "1"),
    ]
    awards = _csv(loaded, "awards.csv")
    assert [(a["award_id"], a["supplier_names"], a["value_amount"]) for a in awards] == [
        ("ocds-213czf-000-00001-award-01", "AnyCorp Cycle Provision", "11000000")
    ]
    contracts = _csv(loaded, "contracts.csv")
    assert [(c["ocid"], c["value_currency"], c["paid_amount"]) for c in contracts] == [
        ("ocds-03ad3f-246807", "PYG", "2372509"),
        (SAMPLE_OCID, "GBP", "60000"),
    ]


def test_red_flags_in_aggregate_and_per_tender(api: Api) -> None:
    demo_ocds.import_demo(api.log, now=T0)
    summary = api.client.get("/api/v1/redflags").json()
    counts = redflags.flag_counts(api.log.engine)
    assert summary["tenders"] == demo_ocds.TENDERS
    assert [(f["code"], f["count"]) for f in summary["flags"]] == [(code, counts[code]) for code in redflags.CODES]
    assert all(f["title"] and f["description"] for f in summary["flags"])
    flagged = next(
        ocid
        for ocid in sorted({r["ocid"] for r in demo_ocds.release_package()["releases"]})
        if redflags.tender_flags(api.log.engine, ocid)
    )
    one = api.client.get(f"/api/v1/tenders/{flagged}/redflags").json()
    assert one["ocid"] == flagged
    assert [(f["code"], f["evidence"]) for f in one["flags"]] == [
        (f["code"], f["evidence"]) for f in redflags.tender_flags(api.log.engine, flagged)
    ]
    missing = api.client.get("/api/v1/tenders/ocds-abc123-nope/redflags")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_organisation_flags_and_evidence_downloads(api: Api) -> None:
    from tests.procurement.test_redflags import _direct_award
    from tests.procurement.test_redflags import _release as _flag_release

    open_tender = _flag_release("ocds-abc123-open", "open")
    open_tender["tender"]["value"] = {"amount": 10_000, "currency": "MXN"}
    releases = [open_tender, _direct_award("ocds-abc123-d1", 6_000), _direct_award("ocds-abc123-d2", 5_000)]
    body = json.dumps({"uri": "u", "publishedDate": "2026-03-02T00:00:00Z", "version": "1.1", "releases": releases})
    assert api.client.post("/api/v1/import", content=body, headers=api.admin).status_code == 200
    summary = api.client.get("/api/v1/redflags").json()
    by_role = {(f["role"], f["code"]): f["count"] for f in summary["organisations"]}
    assert by_role[("buyer", "R055")] == 1 and by_role[("tenderer", "R055")] == 1 and by_role[("buyer", "R038")] == 0
    assert "not proof" in summary["note"]
    one = api.client.get("/api/v1/organisations/redflags", params={"key": "GB-COH/0950"}).json()
    assert [(f["role"], f["code"]) for f in one["flags"]] == [("tenderer", "R055")]
    assert one["flags"][0]["evidence"]["pairs"][0]["total"] == 11_000
    assert (
        api.client.get("/api/v1/organisations/redflags", params={"key": "GB-COH/0950", "role": "buyer"}).json()["flags"]
        == []
    )
    bad = api.client.get("/api/v1/organisations/redflags", params={"key": "GB-COH/0950", "role": "mayor"})
    assert bad.status_code == 422 and "role" in bad.text
    tender = api.client.get("/api/v1/tenders/ocds-abc123-d1/redflags").json()
    assert sorted((p["role"], p["name"], p["code"]) for p in tender["parties"]) == [
        ("buyer", "City Council", "R055"),
        ("tenderer", "Friend Ltd", "R055"),
    ]
    download = api.client.get("/api/v1/organisations/redflags/evidence", params={"key": "GB-COH/0950"})
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    document = download.json()
    assert document["version"] == redflags.EVIDENCE_VERSION and document["subject"] == {"organisation": "GB-COH/0950"}
    assert sorted(document["entries"]) == ["ocds-abc123-d1", "ocds-abc123-d2"]
    per_tender = api.client.get("/api/v1/tenders/ocds-abc123-d1/redflags/evidence").json()
    assert (
        per_tender["subject"] == {"ocid": "ocds-abc123-d1"} and per_tender["entries"]["ocds-abc123-d1"]["pending"] == 1
    )
    assert api.client.get("/api/v1/tenders/ocds-abc123-nope/redflags/evidence").status_code == 404
    # any key, however written, gives a download with a header-safe file name
    odd = api.client.get("/api/v1/organisations/redflags/evidence", params={"key": 'name:ñandú "sa"'})
    assert odd.status_code == 200 and odd.json()["flags"] == []
    assert odd.headers["content-disposition"] == 'attachment; filename="redflags-name__and___sa_.json"'
