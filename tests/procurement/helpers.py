"""A valid tender history to start from, and signing helpers, for the procurement tests."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account import Account

from ledger.core import commitment as v2_commitment
from ledger.core.canonical import canonical_bytes, sha256_hex
from ledger.core.envelope import payload_bytes
from ledger.core.signing import Submission as Signed
from ledger.core.signing import sign_submission
from ledger.procurement import privacy
from ledger.submission import Submission

OCID = "ocds-tptest-0001"
BUYER = {"id": "ES-B-01", "name": "Ayuntamiento de Villanueva"}
#: Tender period: T_OPEN .. T_CLOSE.
T_OPEN = datetime(2026, 3, 2, tzinfo=UTC)
T_CLOSE = datetime(2026, 3, 30, 23, 59, 59, tzinfo=UTC)
CHAIN_ID = 31337
#: Well-known development keys (never real officers').
OFFICER_KEY = "0x" + "11" * 32
OTHER_KEY = "0x" + "22" * 32
OFFICER = Account.from_key(OFFICER_KEY).address
OTHER = Account.from_key(OTHER_KEY).address


def at(days: float) -> datetime:
    """``days`` after the tender period opens."""
    return T_OPEN + timedelta(days=days)


AFTER_CLOSE = T_CLOSE + timedelta(hours=1)


def commitment(bid: dict[str, Any], salt: str) -> str:
    return hashlib.sha256(canonical_bytes(bid) + bytes.fromhex(salt)).hexdigest()


def bid(n: int, amount: float = 1000.0) -> tuple[dict[str, Any], str]:
    return (
        {
            "id": f"bid-{n}",
            "tenderers": [{"id": f"ES-S-{n:02}", "name": f"Supplier {n} SL"}],
            "value": {"amount": amount, "currency": "EUR"},
        },
        f"{n:02x}" * 16,
    )


def published(title: str = "Street lighting renewal", amount: float = 50000.0, **tender: Any) -> dict[str, Any]:
    body = {
        "id": "T-1",
        "title": title,
        "procurementMethod": "open",
        "value": {"amount": amount, "currency": "EUR"},
        "tenderPeriod": {"startDate": "2026-03-02T00:00:00Z", "endDate": "2026-03-30T23:59:59Z"},
        **tender,
    }
    return {"tender": body, "buyer": BUYER}


def history() -> list[tuple[str, dict[str, Any], datetime]]:
    """A complete, valid history: (type, payload, recorded_at)."""
    b1, s1 = bid(1, 900.0)
    b2, s2 = bid(2, 950.0)
    return [
        ("tender.planned", {"planning": {"rationale": "Old lamps"}, "buyer": BUYER}, at(-10)),
        ("tender.published", published(), at(-1)),
        ("tender.clarified", {"tender": {"id": "T-1", "enquiries": [{"id": "q1", "answer": "LED"}]}}, at(2)),
        ("bid.committed", {"bidder": b1["tenderers"][0], "commitment": commitment(b1, s1)}, at(5)),
        ("bid.committed", {"bidder": b2["tenderers"][0], "commitment": commitment(b2, s2)}, at(6)),
        ("bid.revealed", {"bid": b1, "salt": s1}, AFTER_CLOSE),
        ("bid.revealed", {"bid": b2, "salt": s2}, AFTER_CLOSE),
        (
            "award.issued",
            {"award": {"id": "a1", "suppliers": b1["tenderers"], "value": b1["value"], "status": "active"}},
            at(35),
        ),
        ("contract.signed", {"contract": {"id": "c1", "awardID": "a1", "value": b1["value"]}}, at(40)),
        (
            "contract.payment",
            {"contract": {"id": "c1"}, "transaction": {"id": "p1", "value": {"amount": 450.0, "currency": "EUR"}}},
            at(60),
        ),
        ("contract.completed", {"contract": {"id": "c1"}}, at(90)),
    ]


def item(event_type: str, payload: dict[str, Any], ocid: str = OCID) -> Submission:
    return Submission(ocid=ocid, type=event_type, payload=copy.deepcopy(payload))


def signed(
    unsigned: Submission,
    *,
    key: str = OFFICER_KEY,
    submission_id: str = "sub-1",
    origin: str = "tenderproof.test/log",
    chain_id: int = CHAIN_ID,
    v2: bool = False,
) -> Submission:
    """``unsigned`` signed by ``key`` as EIP-712 (see ledger.core.signing): over the payload's bare
    SHA-256 (recorded as envelope v1), or with ``v2`` over an envelope v2 commitment whose F is what
    the privacy rules mark, the disclosure sent along (docs/spec.md §2.5)."""
    officer = Account.from_key(key).address
    disclosure = None
    bound = sha256_hex(payload_bytes(unsigned.payload))
    if v2:
        fields = privacy.committed_fields(privacy.places(unsigned.type, unsigned.payload))
        bound, disclosure = v2_commitment.new_commitment(unsigned.payload, fields)
    struct = Signed(
        origin=origin,
        chain_id=chain_id,
        ocid=unsigned.ocid,
        event_type=unsigned.type,
        payload_sha256=bound,
        submission_id=submission_id,
        officer=officer,
        signed_at=1_790_000_000,
    )
    return Submission(
        ocid=unsigned.ocid,
        type=unsigned.type,
        payload=unsigned.payload,
        submission=struct.to_json(),
        signature=sign_submission(struct, key),
        disclosure=disclosure,
    )
