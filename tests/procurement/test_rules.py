"""The tender rules, pure: a valid history passes, and each violation is refused with its reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.core.errors import ConflictError, InvalidArgumentError, LedgerError
from ledger.procurement import payloads as p
from ledger.procurement import rules
from ledger.procurement.rules import TenderState

from .helpers import AFTER_CLOSE, BUYER, OCID, T_CLOSE, at, bid, commitment, history, published

Event = tuple[str, dict[str, Any], datetime]


def _run(events: list[Event]) -> TenderState:
    return rules.replay(OCID, events)


def _upto(event_type: str, nth: int = 1) -> list[Event]:
    """The valid history up to and including the nth event of ``event_type``."""
    out: list[Event] = []
    for event in history():
        out.append(event)
        if event[0] == event_type:
            nth -= 1
            if nth == 0:
                return out
    raise AssertionError(event_type)


def _refused(before: list[Event], event: Event, kind: type[LedgerError]) -> tuple[str, str]:
    state = _run(before)
    with pytest.raises(kind) as caught:
        rules.apply(state, *event)
    assert isinstance(caught.value, InvalidArgumentError | ConflictError)
    return caught.value.field, caught.value.reason


def test_valid_history_reaches_complete_with_its_projection() -> None:
    state = _run(history())
    assert state.status == "complete"
    assert state.events == 11
    assert (state.title, state.buyer_id, state.buyer_name) == ("Street lighting renewal", BUYER["id"], BUYER["name"])
    assert (state.method, state.value_amount, state.currency) == ("open", 50000.0, "EUR")
    assert (state.tender_start, state.tender_end) == ("2026-03-02T00:00:00Z", "2026-03-30T23:59:59Z")
    assert state.published_at == state.listed_at == "2026-03-01T00:00:00.000000Z"
    assert state.awarded_amount == 900.0
    assert state.suppliers == ["Supplier 1 SL"]
    assert sorted(state.bids) == ["ES-S-01", "ES-S-02"]
    assert state.contracts["c1"].paid == 450.0
    assert state.contracts["c1"].status == "terminated"


def test_state_round_trips_through_json_and_apply_does_not_change_its_input() -> None:
    state = _run(history()[:5])
    again = TenderState.from_json(state.to_json())
    assert again == state
    before = state.to_json()
    rules.apply(state, *history()[5])
    assert state.to_json() == before


def test_advance_moves_one_state_as_apply_moves_copies() -> None:
    state = TenderState(ocid=OCID)
    for event_type, payload, when in history():
        rules.advance(state, event_type, payload, when)
    assert state.to_json() == _run(history()).to_json()
    assert state.status == "complete" and state.events == 11


def test_advance_takes_the_model_already_validated() -> None:
    event_type, payload, when = history()[1]
    state = _run(history()[:1])
    model = p.validate(event_type, payload)
    rules.advance(state, event_type, payload, when, model=model)
    assert state.to_json() == rules.apply(_run(history()[:1]), event_type, payload, when).to_json()
    # an event refused by the rules is refused whatever model comes with it
    with pytest.raises(ConflictError):
        rules.advance(state, "bid.revealed", {"bid": bid(1)[0], "salt": bid(1)[1]}, when)


def test_statuses_planned_active_cancelled() -> None:
    assert _run(history()[:1]).status == "planned"
    assert _run(history()[:2]).status == "active"
    cancelled = rules.apply(
        _run(history()[:4]), "tender.cancelled", {"tender": {"id": "T-1", "statusDetails": "Budget cut"}}, at(7)
    )
    assert cancelled.status == "cancelled"


def test_publication_without_planning_and_amendment_moving_the_deadline() -> None:
    state = _run([("tender.published", published(), at(-1))])
    amended = rules.apply(
        state,
        "tender.amended",
        {
            "tender": {
                "id": "T-1",
                "title": "Street lighting renewal (LED)",
                "tenderPeriod": {"endDate": "2026-04-15T23:59:59Z"},
                "amendments": [{"id": "am1", "rationale": "More time"}],
            }
        },
        at(3),
    )
    assert amended.tender_end == "2026-04-15T23:59:59Z"
    assert amended.title == "Street lighting renewal (LED)"
    b, salt = bid(1)
    # A commitment after the old deadline is now in time.
    late = rules.apply(
        amended,
        "bid.committed",
        {"bidder": b["tenderers"][0], "commitment": commitment(b, salt)},
        T_CLOSE + timedelta(days=1),
    )
    assert "ES-S-01" in late.commitments


B3, S3 = bid(3, 800.0)
COMMIT3 = {"bidder": B3["tenderers"][0], "commitment": commitment(B3, S3)}


@pytest.mark.parametrize(
    ("before", "event", "kind", "field", "reason"),
    [
        (
            [],
            ("bid.committed", COMMIT3, at(1)),
            ConflictError,
            "type",
            f"bid.committed needs a tender that is active; tender {OCID} is not recorded yet",
        ),
        (
            _upto("tender.planned"),
            ("tender.planned", {"planning": {}, "buyer": BUYER}, at(-9)),
            ConflictError,
            "type",
            f"tender.planned needs a tender that is new; tender {OCID} is planned",
        ),
        (
            _upto("tender.published"),
            ("tender.published", published(), at(0)),
            ConflictError,
            "type",
            f"tender.published needs a tender that is new or planned; tender {OCID} is active",
        ),
        (
            _upto("tender.planned"),
            ("tender.published", {**published(), "buyer": {"id": "OTHER", "name": "Other"}}, at(-1)),
            InvalidArgumentError,
            "payload.buyer.id",
            "must be the planned buyer: expected 'ES-B-01', got 'OTHER'",
        ),
        (
            [],
            ("tender.published", published(), T_CLOSE),
            InvalidArgumentError,
            "payload.tender.tenderPeriod.endDate",
            "must be after the publication (2026-03-30T23:59:59.000000Z), got '2026-03-30T23:59:59Z'",
        ),
        (
            _upto("tender.published"),
            ("tender.clarified", {"tender": {"id": "T-2", "enquiries": [{"id": "q"}]}}, at(1)),
            InvalidArgumentError,
            "payload.tender.id",
            "must be this tender's id: expected 'T-1', got 'T-2'",
        ),
        (
            _upto("tender.published"),
            ("bid.committed", COMMIT3, AFTER_CLOSE),
            ConflictError,
            "type",
            "the tender period closed at 2026-03-30T23:59:59Z: commitments are refused after it (now 2026-03-31T00:59:59.000000Z)",
        ),
        (
            _upto("tender.published"),
            ("bid.committed", COMMIT3, at(-0.5)),
            ConflictError,
            "type",
            "the tender period opens at 2026-03-02T00:00:00Z: no commitment before it (now 2026-03-01T12:00:00.000000Z)",
        ),
        (
            _upto("bid.committed"),
            ("bid.committed", {**COMMIT3, "bidder": bid(1)[0]["tenderers"][0]}, at(6)),
            ConflictError,
            "payload.bidder.id",
            "bidder 'ES-S-01' has already committed a bid",
        ),
        (
            _upto("bid.committed", 2),
            ("bid.revealed", {"bid": B3, "salt": S3}, AFTER_CLOSE),
            InvalidArgumentError,
            "payload.bid.tenderers[0].id",
            "bidder 'ES-S-03' recorded no commitment before the deadline",
        ),
        (
            _upto("bid.committed", 2),
            ("bid.revealed", {"bid": bid(1, 900.0)[0], "salt": bid(1)[1]}, at(10)),
            ConflictError,
            "type",
            "sealed bids are revealed after the deadline 2026-03-30T23:59:59Z (now 2026-03-12T00:00:00.000000Z)",
        ),
        (
            _upto("bid.committed", 2),
            ("bid.revealed", {"bid": bid(1, 1.0)[0], "salt": bid(1)[1]}, AFTER_CLOSE),
            InvalidArgumentError,
            "payload.bid",
            "does not match bidder 'ES-S-01''s commitment: SHA-256(RFC 8785(bid) || salt) is "
            f"{commitment(bid(1, 1.0)[0], bid(1)[1])}, expected {commitment(bid(1, 900.0)[0], bid(1)[1])}",
        ),
        (
            _upto("bid.revealed"),
            ("bid.revealed", {"bid": bid(1, 900.0)[0], "salt": bid(1)[1]}, AFTER_CLOSE),
            ConflictError,
            "payload.bid.tenderers[0].id",
            "bidder 'ES-S-01' has already revealed its bid",
        ),
        (
            _upto("bid.revealed"),
            (
                "award.issued",
                {"award": {"id": "a1", "suppliers": bid(2)[0]["tenderers"], "value": {"amount": 1, "currency": "EUR"}}},
                at(35),
            ),
            InvalidArgumentError,
            "payload.award.suppliers[0].id",
            "'ES-S-02' did not reveal a bid in this tender",
        ),
        (
            _upto("bid.committed", 2),
            (
                "award.issued",
                {"award": {"id": "a1", "suppliers": bid(1)[0]["tenderers"], "value": {"amount": 1, "currency": "EUR"}}},
                at(20),
            ),
            ConflictError,
            "type",
            "awards come after the deadline 2026-03-30T23:59:59Z (now 2026-03-22T00:00:00.000000Z)",
        ),
        (
            _upto("award.issued"),
            ("contract.signed", {"contract": {"id": "c1", "awardID": "a9"}}, at(40)),
            InvalidArgumentError,
            "payload.contract.awardID",
            "no award 'a9' was issued (issued: a1)",
        ),
        (
            _upto("award.issued"),
            ("tender.amended", {"tender": {"id": "T-1", "amendments": [{"id": "x"}]}}, at(36)),
            ConflictError,
            "type",
            f"tender {OCID} has awards: amend its contracts instead",
        ),
        (
            _upto("contract.signed"),
            ("contract.signed", {"contract": {"id": "c1", "awardID": "a1"}}, at(41)),
            ConflictError,
            "payload.contract.id",
            "contract 'c1' was already signed",
        ),
        (
            _upto("contract.signed"),
            (
                "contract.payment",
                {"contract": {"id": "c1"}, "transaction": {"id": "p", "value": {"amount": 5, "currency": "USD"}}},
                at(50),
            ),
            InvalidArgumentError,
            "payload.transaction.value.currency",
            "must be the contract's currency: expected 'EUR', got 'USD'",
        ),
        (
            _upto("contract.signed"),
            ("contract.completed", {"contract": {"id": "c2"}}, at(50)),
            InvalidArgumentError,
            "payload.contract.id",
            "no contract 'c2' was signed (signed: c1)",
        ),
        (
            _upto("contract.signed"),
            ("tender.cancelled", {"tender": {"id": "T-1", "statusDetails": "x"}}, at(50)),
            ConflictError,
            "type",
            f"tender {OCID} has signed contracts: it can no longer be cancelled",
        ),
        (
            _upto("contract.signed"),
            (
                "award.challenged",
                {"award": {"id": "a1", "status": "cancelled"}, "challenge": {"id": "ch", "description": "d"}},
                at(50),
            ),
            ConflictError,
            "payload.award.status",
            "a contract is signed on award 'a1': it can no longer be cancelled",
        ),
        (
            history(),
            (
                "contract.payment",
                {"contract": {"id": "c1"}, "transaction": {"id": "p2", "value": {"amount": 1, "currency": "EUR"}}},
                at(100),
            ),
            ConflictError,
            "type",
            f"tender {OCID} is complete: no contract.payment may follow",
        ),
        (
            _upto("tender.published"),
            ("officer.registered", {"address": "0x" + "0" * 40, "name": "A"}, at(1)),
            InvalidArgumentError,
            "type",
            "officer.registered is not an event of a tender",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_violations_are_refused_with_their_reason(
    before: list[Event], event: Event, kind: type[LedgerError], field: str, reason: str
) -> None:
    assert _refused(before, event, kind) == (field, reason)


def test_upheld_challenge_withdraws_the_award_and_blocks_its_contract() -> None:
    state = _run(_upto("award.issued"))
    state = rules.apply(
        state,
        "award.challenged",
        {"award": {"id": "a1", "status": "cancelled"}, "challenge": {"id": "ch1", "description": "Price too low"}},
        at(37),
    )
    assert state.awards["a1"].status == "cancelled"
    assert state.awarded_amount is None and state.suppliers == []
    with pytest.raises(ConflictError) as caught:
        rules.apply(state, "contract.signed", {"contract": {"id": "c1", "awardID": "a1"}}, at(40))
    assert caught.value.reason == "award 'a1' is cancelled, not active"


def test_nothing_follows_a_cancellation() -> None:
    state = rules.apply(
        _run(_upto("tender.published")), "tender.cancelled", {"tender": {"id": "T-1", "statusDetails": "x"}}, at(1)
    )
    with pytest.raises(ConflictError) as caught:
        rules.apply(state, "bid.committed", COMMIT3, at(2))
    assert caught.value.reason == f"tender {OCID} is cancelled: no bid.committed may follow"


def test_deadline_cannot_move_once_closed() -> None:
    with pytest.raises(ConflictError) as caught:
        rules.apply(
            _run(_upto("bid.committed", 2)),
            "tender.amended",
            {"tender": {"id": "T-1", "tenderPeriod": {"endDate": "2026-05-01T00:00:00Z"}, "amendments": [{"id": "x"}]}},
            AFTER_CLOSE,
        )
    assert caught.value.field == "payload.tender.tenderPeriod"
    assert caught.value.reason == "the tender period closed at 2026-03-30T23:59:59Z: it cannot be changed"


def test_commitment_is_sha256_of_rfc8785_bid_and_salt_bytes() -> None:
    b, salt = bid(7)
    assert rules.commitment_of(b, salt) == commitment(b, salt)
    # Key order does not matter (RFC 8785), the salt does.
    assert rules.commitment_of(dict(reversed(list(b.items()))), salt) == commitment(b, salt)
    assert rules.commitment_of(b, "00" * 16) != commitment(b, salt)


def test_an_event_withheld_whole_still_moves_the_tender_as_its_type_implies() -> None:
    """Withholding an event's payload leaves its type public: a withheld publication still opens
    the tender (listed from then), noted withheld under the order; what it said is unknown, and a
    rule that needs it refuses with a reason (never an internal error)."""
    planned = rules.apply(TenderState(ocid=OCID), *history()[0][:2], at(-10))
    opened = rules.apply_withheld(planned, "tender.published", at(-1), seq=1, order=99)
    assert (opened.status, opened.events, opened.withheld) == ("active", 2, {1: 99})
    assert opened.published_at == opened.listed_at == rules.format_timestamp(at(-1))
    assert (opened.title, opened.tender_end, opened.buyer_id) == (None, None, BUYER["id"])
    assert planned.withheld == {} and planned.status == "planned"  # never changed in place
    assert TenderState.from_json(opened.to_json()) == opened
    b1, s1 = bid(1)
    with pytest.raises(ConflictError, match="tender period is withheld by an order: no deadline to check"):
        rules.apply(opened, "bid.committed", {"bidder": b1["tenderers"][0], "commitment": commitment(b1, s1)}, at(5))
    cancelled = rules.apply_withheld(opened, "tender.cancelled", at(3), seq=2, order=100)
    assert (cancelled.status, cancelled.withheld) == ("cancelled", {1: 99, 2: 100})
    # a finished tender takes no status from a withheld event; an amendment moves none
    assert rules.apply_withheld(cancelled, "tender.published", at(4), seq=3, order=101).status == "cancelled"
    assert rules.apply_withheld(opened, "tender.amended", at(4), seq=2, order=101).status == "active"
    with pytest.raises(ConflictError, match="imported from OCDS releases"):
        rules.apply_withheld(TenderState(ocid=OCID, imported=True), "tender.published", at(1), seq=0, order=5)
