"""Example request bodies for the write routes' OpenAPI documentation: one real body per event
type, taken from the demo's tender history (:mod:`demo.tenders`, recorded by ``tenderproof demo``
through the same rules), and for the three types the demo never records, bodies of the same tender.

Every example is checked against its type's payload model by the tests (tests/api/test_docs.py),
so the documentation cannot show a body the API refuses for its shape.
"""

from __future__ import annotations

from typing import Any

from demo.tenders import ROAD, SCHOOL, submissions

#: The event types the demo does not record, with a payload of the demo's tenders.
_EXTRA: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (
        SCHOOL,
        "tender.cancelled",
        {"tender": {"id": "SI-ED-2026-004", "status": "cancelled", "statusDetails": "Budget withdrawn by council"}},
    ),
    (
        ROAD,
        "award.challenged",
        {
            "award": {"id": "award-1", "status": "pending"},
            "challenge": {
                "id": "ch-1",
                "description": "Constructora Aztlán disputes the evaluation of bid-2",
                "date": "2026-04-14T09:00:00Z",
            },
        },
    ),
    (
        ROAD,
        "contract.amended",
        {
            "contract": {
                "id": "contract-1",
                "value": {"amount": 1130000, "currency": "MXN"},
                "amendments": [{"id": "ca-1", "rationale": "Additional 150 m of drainage"}],
            }
        },
    ),
)


def payload_examples() -> dict[str, tuple[str, dict[str, Any]]]:
    """For each event type: the ocid of a demo tender and a payload of that type (the first the demo records)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for item in submissions():
        found.setdefault(item.type, (item.ocid, item.payload))
    for ocid, kind, payload in _EXTRA:
        found.setdefault(kind, (ocid, payload))
    return found


def event_examples() -> dict[str, dict[str, Any]]:
    """OpenAPI ``examples`` of ``POST /tenders/{ocid}/events``: one per event type."""
    return {
        kind: {"summary": kind, "value": {"type": kind, "payload": payload}}
        for kind, (_ocid, payload) in sorted(payload_examples().items())
    }


def tender_examples() -> dict[str, dict[str, Any]]:
    """OpenAPI ``examples`` of ``POST /tenders``: a tender planned, or published, as its first event."""
    found = payload_examples()
    return {
        kind: {"summary": kind, "value": {"type": kind, "ocid": found[kind][0], "payload": found[kind][1]}}
        for kind in ("tender.published", "tender.planned")
    }


def bulk_examples() -> dict[str, dict[str, Any]]:
    """OpenAPI ``examples`` of ``POST /events/bulk``: the demo's first tender from its publication to its completion."""
    events = [
        {"ocid": item.ocid, "type": item.type, "payload": item.payload}
        for item in submissions()
        if item.ocid == ROAD and item.type != "tender.planned"
    ]
    return {"demo": {"summary": "The demo road tender, published to completed", "value": {"events": events}}}
