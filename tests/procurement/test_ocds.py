"""OCDS releases, packages, compiled release and record of a tender's events (ocdsmerge, offline)."""

from __future__ import annotations

import json

import pytest

from demo import tenders as demo
from ledger.core.errors import InvalidArgumentError
from ledger.log import Log
from ledger.procurement import ocds

from .helpers import CHAIN_ID

PUBLISHED = "2026-11-23T12:00:00Z"


@pytest.fixture
def demo_log(log: Log) -> Log:
    demo.record_demo(log, chain_id=CHAIN_ID)
    return log


def test_each_event_is_one_release(demo_log: Log) -> None:
    stored = demo_log.reader.tender_events(demo.ROAD)
    releases = ocds.releases(stored)
    assert [r["id"] for r in releases] == [f"{demo.ROAD}-{n}" for n in range(13)]
    assert [r["date"] for r in releases] == [json.loads(e.envelope)["recorded_at"] for e in stored]
    assert [r["tag"] for r in releases] == [
        [t]
        for t in (
            "planning",
            "tender",
            "tenderUpdate",
            *["tenderUpdate"] * 6,
            "award",
            "contract",
            "implementation",
            "contractTermination",
        )
    ]
    assert {r["initiationType"] for r in releases} == {"tender"}
    assert {r["ocid"] for r in releases} == {demo.ROAD}
    assert releases[4]["parties"] == [
        {"id": "MX-RFC-PAV020202CD2", "name": "Pavimentos del Norte", "roles": ["tenderer"]}
    ]


def test_compiled_release_and_record(demo_log: Log) -> None:
    releases = ocds.releases(demo_log.reader.tender_events(demo.ROAD))
    package = ocds.record_package(
        releases,
        uri="https://x.test/r.json",
        published_date=PUBLISHED,
        publisher="San Isidro",
        package_uri="https://x.test/p.json",
    )
    assert (package["version"], package["publisher"], package["packages"]) == (
        "1.1",
        {"name": "San Isidro"},
        ["https://x.test/p.json"],
    )
    [record] = package["records"]
    assert record["ocid"] == demo.ROAD and record["releases"] == releases
    compiled = record["compiledRelease"]
    assert compiled["id"] == f"{demo.ROAD}-{releases[-1]['date']}"
    assert compiled["tag"] == ["compiled"]
    assert compiled["date"] == releases[-1]["date"]
    tender = compiled["tender"]
    assert tender["title"] == "Resurfacing of Avenida Juárez (2.4 km)"
    assert tender["enquiries"] == [{"id": "q-1", "title": "Asphalt thickness?", "answer": "5 cm, see annex B."}]
    assert [t["id"] for t in tender["tenderers"]] == [
        "MX-RFC-CAS010101AB1",
        "MX-RFC-PAV020202CD2",
        "MX-RFC-OBR030303EF3",
    ]
    assert [b["value"]["amount"] for b in compiled["bids"]["details"]] == [1180000, 1095000, 1240000]
    assert compiled["planning"]["budget"]["amount"] == {"amount": 1250000, "currency": "MXN"}
    [award] = compiled["awards"]
    assert (award["status"], award["suppliers"][0]["name"]) == ("active", "Pavimentos del Norte")
    [contract] = compiled["contracts"]
    assert (contract["status"], contract["awardID"]) == ("terminated", "award-1")
    assert contract["implementation"]["transactions"][0]["value"]["amount"] == 547500
    roles = {p["id"]: p["roles"] for p in compiled["parties"]}
    assert roles["MX-MUN-042"] == ["buyer"]
    assert roles["MX-RFC-PAV020202CD2"] == ["tenderer", "supplier"]
    assert roles["MX-RFC-CAS010101AB1"] == ["tenderer"]


def test_amendment_overrides_only_what_it_changes(demo_log: Log) -> None:
    releases = ocds.releases(demo_log.reader.tender_events(demo.SCHOOL))
    compiled = ocds.compiled_release(releases)
    assert compiled["tender"]["tenderPeriod"] == {
        "startDate": "2026-05-04T00:00:00Z",
        "endDate": "2026-05-25T23:59:59Z",
    }
    assert compiled["tender"]["title"] == "School furniture for 12 classrooms"
    assert compiled["tender"]["amendments"][0]["id"] == "am-1"
    package = ocds.release_package(releases, uri="u", published_date=PUBLISHED, publisher="p")
    assert package["releases"] == releases and package["version"] == "1.1"


def test_challenge_and_cancellation_releases() -> None:
    challenged = ocds.release(
        ocid="ocds-tptest-1",
        seq=9,
        event_type="award.challenged",
        date="2026-04-11T00:00:00.000000Z",
        payload={"award": {"id": "a1", "status": "cancelled"}, "challenge": {"id": "c", "description": "d"}},
    )
    assert challenged["tag"] == ["awardUpdate"]
    assert challenged["awards"] == [
        {"id": "a1", "status": "cancelled", "challenges": [{"id": "c", "description": "d"}]}
    ]
    cancelled = ocds.release(
        ocid="ocds-tptest-1",
        seq=3,
        event_type="tender.cancelled",
        date="2026-04-11T00:00:00.000000Z",
        payload={"tender": {"id": "T", "statusDetails": "Budget"}},
    )
    assert (cancelled["tag"], cancelled["tender"]["status"]) == (["tenderCancellation"], "cancelled")


def test_officer_events_and_mixed_ocids_have_no_release() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        ocds.release(ocid="ocds-tpreg0-officers", seq=0, event_type="officer.registered", date="x", payload={})
    assert caught.value.field == "type"
    with pytest.raises(InvalidArgumentError) as mixed:
        ocds.compiled_release([{"ocid": "a", "date": "1"}, {"ocid": "b", "date": "2"}])
    assert mixed.value.field == "releases"
