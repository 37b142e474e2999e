"""The rules a tender's history must follow, as a pure state machine (no I/O).

:func:`apply` takes a tender's :class:`TenderState`, one event (type, payload, the time it is
recorded) and returns the next state, or raises if the event breaks a rule:

- :class:`InvalidArgumentError` when the payload contradicts what was recorded before (a reveal
  that does not match its commitment, an award to someone who did not bid, a contract on an
  unknown award, another buyer...);
- :class:`ConflictError` when the event does not fit the tender's stage or clock (a bid after
  the deadline, a second publication, anything after a cancellation).

``status`` follows OCDS ``tender.status``: ``planned`` (only ``tender.planned`` so far),
``active`` (published: enquiries, sealed bids, awards, contracts), ``cancelled`` and
``complete`` (every signed contract completed), the last two final: nothing is recorded after
them. The order, stage by stage:

1. ``tender.planned`` (optional, first) -> ``tender.published`` (once; the tender period must
   end after it, and the buyer must be the planned one).
2. While the tender period runs (``recorded_at <= tenderPeriod.endDate``, and not before its
   ``startDate``): ``bid.committed``, one per bidder. ``tender.amended`` may move the deadline
   only while the period runs and only to a time after the amendment; it is refused once an
   award exists. ``tender.clarified`` any time while active.
3. After the deadline: ``bid.revealed`` (the SHA-256 of RFC 8785(bid) || salt must be the
   commitment the same bidder recorded, each bidder once), then ``award.issued`` to suppliers who
   revealed a bid, ``award.challenged`` (``award.status`` "cancelled" withdraws the award, refused
   once a contract is signed on it).
4. ``contract.signed`` on an award that is neither pending nor cancelled, then
   ``contract.amended`` / ``contract.payment`` (in the contract's currency) until
   ``contract.completed``; the tender is ``complete`` when every contract is.
5. ``tender.cancelled`` while planned or active, as long as no contract has been signed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ledger.core.canonical import canonical_bytes
from ledger.core.envelope import format_timestamp
from ledger.core.errors import ConflictError, InvalidArgumentError

from . import payloads as p

#: A tender's status: the OCDS tender.status codelist (natively recorded tenders use planned, active,
#: cancelled and complete; imported ones keep what their compiled release says).
Status = Literal["planning", "planned", "active", "cancelled", "unsuccessful", "complete", "withdrawn"]
STATUSES: tuple[str, ...] = ("planning", "planned", "active", "cancelled", "unsuccessful", "complete", "withdrawn")
FINAL: frozenset[str] = frozenset({"cancelled", "unsuccessful", "complete", "withdrawn"})


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Commitment(_State):
    name: str
    commitment: str
    recorded_at: str


class RevealedBid(_State):
    bid_id: str
    name: str
    amount: float
    currency: str


class AwardState(_State):
    status: Literal["pending", "active", "cancelled"]
    supplier_ids: list[str]
    supplier_names: list[str]
    amount: float
    currency: str
    #: When the award was recorded (for red flags).
    issued_at: str | None = None


class ContractState(_State):
    award_id: str
    status: Literal["active", "terminated"]
    amount: float | None = None
    currency: str | None = None
    paid: float = 0
    transactions: list[str] = []
    #: When it was signed and first amended (for red flags).
    signed_at: str | None = None
    amended_at: str | None = None


class TenderState(_State):
    """Everything the rules need to know about one tender, and its search projection.

    Serialise with :meth:`to_json` / :meth:`from_json`; a tender with no event yet is
    ``TenderState(ocid=...)`` (``status`` None).
    """

    ocid: str
    status: Status | None = None
    #: True for a tender imported from OCDS releases (ledger.procurement.importer): its history is
    #: someone else's published record, so these rules never apply to it.
    imported: bool = False
    events: int = 0
    tender_id: str | None = None
    title: str | None = None
    #: The tender's description and its items' descriptions (searched, not shown in listings).
    description: str | None = None
    items: list[str] = []
    buyer_id: str | None = None
    buyer_name: str | None = None
    method: str | None = None
    value_amount: float | None = None
    currency: str | None = None
    tender_start: str | None = None
    tender_end: str | None = None
    published_at: str | None = None
    #: When it was published, or planned before that: what listings sort by.
    listed_at: str | None = None
    updated_at: str | None = None
    commitments: dict[str, Commitment] = {}
    bids: dict[str, RevealedBid] = {}
    awards: dict[str, AwardState] = {}
    contracts: dict[str, ContractState] = {}
    #: Events whose payload a withholding order withheld whole (docs/privacy.md): seq -> the
    #: order's log index. Their type still moved the tender (:func:`apply_withheld`).
    withheld: dict[int, int] = {}

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> TenderState:
        return cls.model_validate_json(text)

    @property
    def awarded_amount(self) -> float | None:
        """Sum of the awards not cancelled, in the tender's currency (awards in another currency
        are not added to it: amounts of different currencies are never summed; None before any)."""
        live = [
            a.amount
            for a in self.awards.values()
            if a.status != "cancelled" and (self.currency is None or a.currency == self.currency)
        ]
        return sum(live) if live else None

    @property
    def awarded_by_currency(self) -> dict[str, float]:
        """Sum of the awards not cancelled per currency (every currency, the tender's or not)."""
        out: dict[str, float] = {}
        for award in self.awards.values():
            if award.status != "cancelled":
                out[award.currency] = out.get(award.currency, 0.0) + award.amount
        return out

    @property
    def suppliers(self) -> list[str]:
        """Names of the suppliers of the awards not cancelled, each once, in award order."""
        names: list[str] = []
        for award in self.awards.values():
            if award.status != "cancelled":
                names += [n for n in award.supplier_names if n not in names]
        return names


def apply(state: TenderState, event_type: str, payload: Any, recorded_at: datetime) -> TenderState:
    """The state after recording ``event_type`` with ``payload`` at ``recorded_at`` (aware).

    Validates the payload first (see :func:`payloads.validate`). Raises
    :class:`InvalidArgumentError` or :class:`ConflictError` naming the field and the reason;
    ``state`` itself is never changed.
    """
    new = state.model_copy(deep=True)
    advance(new, event_type, payload, recorded_at)
    return new


def advance(
    state: TenderState, event_type: str, payload: Any, recorded_at: datetime, *, model: BaseModel | None = None
) -> None:
    """As :func:`apply`, changing ``state`` itself: for a batch of a tender's events, which copies
    the stored state once rather than once per event (a deep copy per event was ~9 % of a bulk
    request). ``model``: the payload as :func:`payloads.validate` already parsed it (it is not
    validated again). Raises as :func:`apply`; ``state`` may then be half changed, and the caller
    drops it (a batch is all or nothing)."""
    if model is None:
        model = p.validate(event_type, payload)
    rule = _RULES.get(event_type)
    if rule is None:
        raise InvalidArgumentError("type", f"{event_type} is not an event of a tender")
    if state.imported:
        raise ConflictError(
            "ocid", f"tender {state.ocid} was imported from OCDS releases: record its later releases by import"
        )
    if state.status in FINAL:
        raise ConflictError("type", f"tender {state.ocid} is {state.status}: no {event_type} may follow")
    rule(state, model, payload, recorded_at)
    state.events += 1
    state.updated_at = format_timestamp(recorded_at)


#: What an event type does to a tender whatever its payload: the status it moves it to.
_STATUS_OF_TYPE: dict[str, Status] = {
    "tender.planned": "planned",
    "tender.published": "active",
    "tender.cancelled": "cancelled",
}


def apply_withheld(state: TenderState, event_type: str, recorded_at: datetime, *, seq: int, order: int) -> TenderState:
    """The state after the event ``seq`` of ``event_type`` whose payload the order at log index
    ``order`` withheld whole. Its type and envelope are public, so the tender still moves as the
    type implies (planned, published: active and listed from then, cancelled), and the event is
    noted as withheld under the order; what its payload said (title, buyer, period, bids, awards)
    is unknown. It was checked by the rules when recorded: nothing is refused here, but a
    finished tender (cancelled, complete, ...) takes no further status. ``state`` is never changed.
    """
    if state.imported:
        raise ConflictError(
            "ocid", f"tender {state.ocid} was imported from OCDS releases: record its later releases by import"
        )
    new = state.model_copy(deep=True)
    status = _STATUS_OF_TYPE.get(event_type)
    if status is not None and new.status not in FINAL:
        new.status = status
        if event_type == "tender.published":
            new.published_at = new.listed_at = _stamp(recorded_at)
        elif event_type == "tender.planned":
            new.listed_at = new.listed_at or _stamp(recorded_at)
    new.withheld = {**new.withheld, seq: order}
    new.events += 1
    new.updated_at = format_timestamp(recorded_at)
    return new


def replay(ocid: str, events: list[tuple[str, Any, datetime]]) -> TenderState:
    """The state after ``events`` (type, payload, recorded_at) in order; raises as :func:`apply`."""
    state = TenderState(ocid=ocid)
    for event_type, payload, recorded_at in events:
        state = apply(state, event_type, payload, recorded_at)
    return state


# --- helpers ------------------------------------------------------------------------------


def _need(state: TenderState, event_type: str, *allowed: str | None) -> None:
    if state.status not in allowed:
        stage = "not recorded yet" if state.status is None else state.status
        wanted = " or ".join("new" if s is None else s for s in allowed)
        raise ConflictError("type", f"{event_type} needs a tender that is {wanted}; tender {state.ocid} is {stage}")


def _same_tender(state: TenderState, tender_id: str) -> None:
    if state.tender_id is not None and tender_id != state.tender_id:
        raise InvalidArgumentError(
            "payload.tender.id", f"must be this tender's id: expected {state.tender_id!r}, got {tender_id!r}"
        )


def _deadline(state: TenderState) -> datetime:
    if state.tender_end is None:  # set by tender.published, unless an order withheld its payload
        raise ConflictError(
            "type", f"tender {state.ocid}'s tender period is withheld by an order: no deadline to check"
        )
    return p.parse_datetime(state.tender_end)


def _stamp(moment: datetime) -> str:
    return format_timestamp(moment)


def _set_period(state: TenderState, period: p.Period | None) -> None:
    if period is not None:
        state.tender_start = period.startDate or state.tender_start
        state.tender_end = period.endDate or state.tender_end


#: The longest description kept for search, in characters.
DESCRIPTION_LIMIT = 4000


def item_descriptions(items: list[Any]) -> list[str]:
    """The descriptions of OCDS ``items`` (objects with a string ``description``), each cut to
    :data:`DESCRIPTION_LIMIT`, at most 100."""
    return [
        i["description"][:DESCRIPTION_LIMIT]
        for i in items[:100]
        if isinstance(i, dict) and isinstance(i.get("description"), str) and i["description"]
    ]


def _set_headline(state: TenderState, tender: p.PlannedTender | p.PublishedTender | p.TenderAmendment) -> None:
    state.tender_id = tender.id or state.tender_id
    state.title = tender.title or state.title
    extra = tender.model_extra or {}
    if isinstance(description := extra.get("description"), str) and description:
        state.description = description[:DESCRIPTION_LIMIT]
    if isinstance(items := extra.get("items"), list):
        state.items = item_descriptions(items)
    state.method = tender.procurementMethod or state.method
    if tender.value is not None:
        state.value_amount, state.currency = tender.value.amount, tender.value.currency


def _contract(state: TenderState, contract_id: str, event_type: str) -> ContractState:
    contract = state.contracts.get(contract_id)
    if contract is None:
        known = ", ".join(sorted(state.contracts)) or "none"
        raise InvalidArgumentError("payload.contract.id", f"no contract {contract_id!r} was signed (signed: {known})")
    if contract.status == "terminated":
        raise ConflictError("payload.contract.id", f"contract {contract_id!r} is completed: no {event_type} may follow")
    return contract


# --- one function per event type -------------------------------------------------------------


def _planned(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "tender.planned", None)
    assert isinstance(model, p.Planned)
    state.status = "planned"
    state.listed_at = _stamp(at)
    state.buyer_id, state.buyer_name = model.buyer.id, model.buyer.name
    if model.tender is not None:
        _set_headline(state, model.tender)


def _published(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "tender.published", None, "planned")
    assert isinstance(model, p.Published)
    if state.buyer_id is not None and model.buyer.id != state.buyer_id:
        raise InvalidArgumentError(
            "payload.buyer.id", f"must be the planned buyer: expected {state.buyer_id!r}, got {model.buyer.id!r}"
        )
    end = p.parse_datetime(model.tender.tenderPeriod.endDate)
    if end <= at:
        raise InvalidArgumentError(
            "payload.tender.tenderPeriod.endDate",
            f"must be after the publication ({_stamp(at)}), got {model.tender.tenderPeriod.endDate!r}",
        )
    state.status = "active"
    state.published_at = state.listed_at = _stamp(at)
    state.buyer_id, state.buyer_name = model.buyer.id, model.buyer.name
    _set_headline(state, model.tender)
    _set_period(state, model.tender.tenderPeriod)


def _amended(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "tender.amended", "active")
    assert isinstance(model, p.Amended)
    tender = model.tender
    _same_tender(state, tender.id)
    if state.awards:
        raise ConflictError("type", f"tender {state.ocid} has awards: amend its contracts instead")
    period = tender.tenderPeriod
    if period is not None and (period.startDate or period.endDate):
        if at > _deadline(state):
            raise ConflictError(
                "payload.tender.tenderPeriod", f"the tender period closed at {state.tender_end}: it cannot be changed"
            )
        if period.endDate and p.parse_datetime(period.endDate) <= at:
            raise InvalidArgumentError(
                "payload.tender.tenderPeriod.endDate",
                f"must be after the amendment ({_stamp(at)}), got {period.endDate!r}",
            )
        start = period.startDate or state.tender_start
        end = period.endDate or state.tender_end
        if start and end and p.parse_datetime(end) <= p.parse_datetime(start):
            raise InvalidArgumentError(
                "payload.tender.tenderPeriod", f"endDate {end!r} must be after startDate {start!r}"
            )
    _set_headline(state, tender)
    _set_period(state, period)


def _clarified(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "tender.clarified", "active")
    assert isinstance(model, p.Clarified)
    _same_tender(state, model.tender.id)


def _committed(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "bid.committed", "active")
    assert isinstance(model, p.BidCommitted)
    if state.tender_start and at < p.parse_datetime(state.tender_start):
        raise ConflictError(
            "type", f"the tender period opens at {state.tender_start}: no commitment before it (now {_stamp(at)})"
        )
    if at > _deadline(state):
        raise ConflictError(
            "type",
            f"the tender period closed at {state.tender_end}: commitments are refused after it (now {_stamp(at)})",
        )
    bidder = model.bidder
    if bidder.id in state.commitments:
        raise ConflictError("payload.bidder.id", f"bidder {bidder.id!r} has already committed a bid")
    state.commitments[bidder.id] = Commitment(name=bidder.name, commitment=model.commitment, recorded_at=_stamp(at))


def commitment_of(bid: Any, salt: str) -> str:
    """The commitment a sealed bid is revealed against: hex SHA-256 of RFC 8785(bid) || salt bytes."""
    return hashlib.sha256(canonical_bytes(bid) + bytes.fromhex(salt)).hexdigest()


def _revealed(state: TenderState, model: Any, raw: Any, at: datetime) -> None:
    _need(state, "bid.revealed", "active")
    assert isinstance(model, p.BidRevealed)
    if at <= _deadline(state):
        raise ConflictError(
            "type", f"sealed bids are revealed after the deadline {state.tender_end} (now {_stamp(at)})"
        )
    bidder = model.bid.tenderers[0]
    committed = state.commitments.get(bidder.id)
    if committed is None:
        raise InvalidArgumentError(
            "payload.bid.tenderers[0].id", f"bidder {bidder.id!r} recorded no commitment before the deadline"
        )
    if bidder.id in state.bids:
        raise ConflictError("payload.bid.tenderers[0].id", f"bidder {bidder.id!r} has already revealed its bid")
    if any(b.bid_id == model.bid.id for b in state.bids.values()):
        raise ConflictError("payload.bid.id", f"a bid {model.bid.id!r} was already revealed")
    digest = commitment_of(raw["bid"], model.salt)
    if digest != committed.commitment:
        raise InvalidArgumentError(
            "payload.bid",
            f"does not match bidder {bidder.id!r}'s commitment: SHA-256(RFC 8785(bid) || salt) is {digest}, "
            f"expected {committed.commitment}",
        )
    value = model.bid.value
    state.bids[bidder.id] = RevealedBid(
        bid_id=model.bid.id, name=bidder.name, amount=value.amount, currency=value.currency
    )


def _cancelled(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "tender.cancelled", "planned", "active")
    assert isinstance(model, p.Cancelled)
    _same_tender(state, model.tender.id)
    if state.contracts:
        raise ConflictError("type", f"tender {state.ocid} has signed contracts: it can no longer be cancelled")
    state.status = "cancelled"


def _award_issued(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "award.issued", "active")
    assert isinstance(model, p.AwardIssued)
    award = model.award
    if at <= _deadline(state):
        raise ConflictError("type", f"awards come after the deadline {state.tender_end} (now {_stamp(at)})")
    if award.id in state.awards:
        raise ConflictError("payload.award.id", f"award {award.id!r} was already issued")
    for i, supplier in enumerate(award.suppliers):
        if supplier.id not in state.bids:
            raise InvalidArgumentError(
                f"payload.award.suppliers[{i}].id", f"{supplier.id!r} did not reveal a bid in this tender"
            )
    state.awards[award.id] = AwardState(
        status=award.status or "active",
        supplier_ids=[s.id for s in award.suppliers],
        supplier_names=[s.name for s in award.suppliers],
        amount=award.value.amount,
        currency=award.value.currency,
        issued_at=_stamp(at),
    )


def _award_challenged(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "award.challenged", "active")
    assert isinstance(model, p.AwardChallenged)
    award = state.awards.get(model.award.id)
    if award is None:
        raise InvalidArgumentError("payload.award.id", f"no award {model.award.id!r} was issued")
    if award.status == "cancelled":
        raise ConflictError("payload.award.id", f"award {model.award.id!r} is already cancelled")
    if model.award.status == "cancelled" and any(c.award_id == model.award.id for c in state.contracts.values()):
        raise ConflictError(
            "payload.award.status", f"a contract is signed on award {model.award.id!r}: it can no longer be cancelled"
        )
    award.status = model.award.status or award.status


def _signed(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "contract.signed", "active")
    assert isinstance(model, p.ContractSigned)
    contract = model.contract
    award = state.awards.get(contract.awardID)
    if award is None:
        known = ", ".join(sorted(state.awards)) or "none"
        raise InvalidArgumentError(
            "payload.contract.awardID", f"no award {contract.awardID!r} was issued (issued: {known})"
        )
    if award.status != "active":
        raise ConflictError("payload.contract.awardID", f"award {contract.awardID!r} is {award.status}, not active")
    if contract.id in state.contracts:
        raise ConflictError("payload.contract.id", f"contract {contract.id!r} was already signed")
    value = contract.value
    state.contracts[contract.id] = ContractState(
        award_id=contract.awardID,
        status="active",
        amount=value.amount if value else None,
        currency=value.currency if value else None,
        signed_at=_stamp(at),
    )


def _contract_amended(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "contract.amended", "active")
    assert isinstance(model, p.ContractAmended)
    contract = _contract(state, model.contract.id, "contract.amended")
    contract.amended_at = contract.amended_at or _stamp(at)
    if model.contract.value is not None:
        contract.amount, contract.currency = model.contract.value.amount, model.contract.value.currency


def _payment(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "contract.payment", "active")
    assert isinstance(model, p.ContractPayment)
    contract = _contract(state, model.contract.id, "contract.payment")
    value = model.transaction.value
    if contract.currency is not None and value.currency != contract.currency:
        raise InvalidArgumentError(
            "payload.transaction.value.currency",
            f"must be the contract's currency: expected {contract.currency!r}, got {value.currency!r}",
        )
    if model.transaction.id in contract.transactions:
        raise ConflictError("payload.transaction.id", f"transaction {model.transaction.id!r} was already recorded")
    contract.transactions.append(model.transaction.id)
    contract.paid += value.amount


def _completed(state: TenderState, model: Any, _raw: Any, at: datetime) -> None:
    _need(state, "contract.completed", "active")
    assert isinstance(model, p.ContractCompleted)
    _contract(state, model.contract.id, "contract.completed").status = "terminated"
    if all(c.status == "terminated" for c in state.contracts.values()):
        state.status = "complete"


_RULES = {
    "tender.planned": _planned,
    "tender.published": _published,
    "tender.amended": _amended,
    "tender.clarified": _clarified,
    "bid.committed": _committed,
    "bid.revealed": _revealed,
    "tender.cancelled": _cancelled,
    "award.issued": _award_issued,
    "award.challenged": _award_challenged,
    "contract.signed": _signed,
    "contract.amended": _contract_amended,
    "contract.payment": _payment,
    "contract.completed": _completed,
}
