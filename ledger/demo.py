"""A small, realistic tender history for the embedded default and for newcomers.

Two tenders of a fictional municipality: one runs its whole course (planned,
published, clarified, three sealed bids committed then revealed, awarded,
signed, paid, completed), the other is published and then amended. Payloads
follow the OCDS 1.1 objects of each step.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .core.canonical import canonical_bytes
from .sequencer import Submission

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
