"""A small, realistic tender history for the embedded default and for newcomers.

Two tenders of a fictional municipality: one runs its whole course (planned,
published, clarified, three sealed bids committed then revealed, awarded,
signed, paid, completed), the other is published and then amended. Payloads
follow the OCDS 1.1 objects of each step.

:func:`timeline` dates each event so that the history follows the procurement rules
(``ledger.procurement.rules``: commitments before the deadline, reveals and the award after
it), and :func:`record_demo` records it that way, one event at its own time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ledger.core.canonical import canonical_bytes
from ledger.procurement.record import record
from ledger.submission import Recorded, Submission

if TYPE_CHECKING:
    from ledger.log import Log

BUYER = {"id": "MX-MUN-042", "name": "Municipio de San Isidro"}
ROAD = "ocds-tp0dem-2026-0001"
SCHOOL = "ocds-tp0dem-2026-0002"


def _commitment(bid: dict[str, Any], salt: str) -> str:
    return hashlib.sha256(canonical_bytes(bid) + bytes.fromhex(salt)).hexdigest()


def submissions() -> list[Submission]:
    bids: list[tuple[dict[str, Any], str]] = [
        (
            {
                "id": "bid-1",
                "tenderers": [{"id": "MX-RFC-CAS010101AB1", "name": "Constructora Aztlán"}],
                "value": {"amount": 1180000, "currency": "MXN"},
            },
            "1f" * 16,
        ),
        (
            {
                "id": "bid-2",
                "tenderers": [{"id": "MX-RFC-PAV020202CD2", "name": "Pavimentos del Norte"}],
                "value": {"amount": 1095000, "currency": "MXN"},
            },
            "2e" * 16,
        ),
        (
            {
                "id": "bid-3",
                "tenderers": [{"id": "MX-RFC-OBR030303EF3", "name": "Obras Integrales SA"}],
                "value": {"amount": 1240000, "currency": "MXN"},
            },
            "3d" * 16,
        ),
    ]
    tender: dict[str, Any] = {
        "id": "SI-OP-2026-001",
        "title": "Resurfacing of Avenida Juárez (2.4 km)",
        "procurementMethod": "open",
        "value": {"amount": 1200000, "currency": "MXN"},
        "tenderPeriod": {"startDate": "2026-03-02T00:00:00Z", "endDate": "2026-03-30T23:59:59Z"},
    }
    road: list[tuple[str, dict[str, Any]]] = [
        (
            "tender.planned",
            {
                "planning": {
                    "budget": {"amount": {"amount": 1250000, "currency": "MXN"}, "description": "Road maintenance 2026"}
                },
                "buyer": BUYER,
            },
        ),
        ("tender.published", {"tender": tender, "buyer": BUYER}),
        (
            "tender.clarified",
            {
                "tender": {
                    "id": tender["id"],
                    "enquiries": [{"id": "q-1", "title": "Asphalt thickness?", "answer": "5 cm, see annex B."}],
                }
            },
        ),
        *[("bid.committed", {"bidder": b["tenderers"][0], "commitment": _commitment(b, salt)}) for b, salt in bids],
        *[("bid.revealed", {"bid": b, "salt": salt}) for b, salt in bids],
        (
            "award.issued",
            {
                "award": {
                    "id": "award-1",
                    "status": "active",
                    "suppliers": bids[1][0]["tenderers"],
                    "value": bids[1][0]["value"],
                    "date": "2026-04-10T17:00:00Z",
                }
            },
        ),
        (
            "contract.signed",
            {
                "contract": {
                    "id": "contract-1",
                    "awardID": "award-1",
                    "value": bids[1][0]["value"],
                    "dateSigned": "2026-04-20T12:00:00Z",
                }
            },
        ),
        (
            "contract.payment",
            {
                "contract": {"id": "contract-1"},
                "transaction": {
                    "id": "pay-1",
                    "value": {"amount": 547500, "currency": "MXN"},
                    "date": "2026-06-15T10:00:00Z",
                },
            },
        ),
        ("contract.completed", {"contract": {"id": "contract-1", "status": "terminated"}}),
    ]
    school: list[tuple[str, dict[str, Any]]] = [
        (
            "tender.published",
            {
                "buyer": BUYER,
                "tender": {
                    "id": "SI-ED-2026-004",
                    "title": "School furniture for 12 classrooms",
                    "procurementMethod": "selective",
                    "value": {"amount": 380000, "currency": "MXN"},
                    "tenderPeriod": {"startDate": "2026-05-04T00:00:00Z", "endDate": "2026-05-18T23:59:59Z"},
                },
            },
        ),
        (
            "tender.amended",
            {
                "tender": {
                    "id": "SI-ED-2026-004",
                    "tenderPeriod": {"endDate": "2026-05-25T23:59:59Z"},
                    "amendments": [{"id": "am-1", "rationale": "Deadline extended after supplier enquiries"}],
                }
            },
        ),
    ]
    return [Submission(ocid=ROAD, type=t, payload=p) for t, p in road] + [
        Submission(ocid=SCHOOL, type=t, payload=p) for t, p in school
    ]


#: When each event of :func:`submissions` happens, in the same order.
_TIMES = [
    "2026-02-16T09:00:00",  # road: planned
    "2026-03-02T09:00:00",  # published (tender period 2026-03-02 .. 2026-03-30T23:59:59Z)
    "2026-03-10T12:30:00",  # clarified
    "2026-03-20T10:00:00",  # three commitments, before the deadline
    "2026-03-25T16:45:00",
    "2026-03-30T18:20:00",
    "2026-03-31T10:00:00",  # three reveals, after it
    "2026-03-31T10:05:00",
    "2026-03-31T10:10:00",
    "2026-04-10T17:00:00",  # award
    "2026-04-20T12:00:00",  # contract
    "2026-06-15T10:00:00",  # payment
    "2026-09-30T15:00:00",  # completed
    "2026-04-27T09:00:00",  # school: published (tender period 2026-05-04 .. 2026-05-18)
    "2026-05-12T11:00:00",  # amended: deadline moved to 2026-05-25
]


def timeline() -> list[tuple[datetime, Submission]]:
    """The demo's events with the time each is recorded, in recording order."""
    dated = [(datetime.fromisoformat(t).replace(tzinfo=UTC), s) for t, s in zip(_TIMES, submissions(), strict=True)]
    return sorted(dated, key=lambda pair: pair[0])


def record_demo(log: Log, *, chain_id: int) -> list[Recorded]:
    """Record the demo through the procurement rules, each event at its own time (unsigned)."""
    out: list[Recorded] = []
    for moment, item in timeline():
        out += record(log, [item], now=moment, signatures="optional", chain_id=chain_id)
    return out
