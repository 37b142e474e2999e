"""Officers' writes: create a tender, record its events (one, or many in one request), and
manage the officers' registry (administrators).

Every write needs an API key (:mod:`api.auth`): role ``officer`` for tender events, ``admin``
for the registry. Events go through :func:`ledger.procurement.record.record`, which validates
the payload for its type, checks the officer's signature when there is one (or requires one,
with ``TENDERPROOF_REQUIRE_SIGNATURES``) and the tender's rules, all in the transaction that
appends them: a refused request records nothing. With ``Idempotency-Key``, the response is
stored in that same transaction and a retry of the same request gets it back
(``Idempotent-Replayed: true``) instead of recording the event twice (:mod:`api.idempotency`).

A ``201`` means the event is durably recorded (and chained on its tender); it is ``pending``
until the next integration gives it a log index, and anchored later still.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from ledger.core.envelope import EVENT_TYPES, check_ocid, format_timestamp
from ledger.core.errors import (
    ConflictError,
    FieldError,
    InvalidArgumentError,
    InvariantError,
    LedgerError,
    SignatureError,
)
from ledger.core.heads import HEADS_TYPE
from ledger.core.signing import Submission as Signed
from ledger.log import Log
from ledger.procurement import officers, withholding
from ledger.procurement.record import OnRecorded, grouped, record
from ledger.submission import UNSET, Recorded, Submission, Unset
from settings import Settings

from .. import examples, handoff, idempotency, schemas
from ..auth import AdminDep, OfficerDep, PermissionDeniedError, Principal
from ..deps import Clock, ClockDep, LogDep, ReadLogDep, SettingsDep
from ..errors import COMMON_RESPONSES, ErrorResponse

#: Event types an officer records on a tender: docs/spec.md §3's, less the registry's (admin routes).
TENDER_EVENT_TYPES: tuple[str, ...] = tuple(
    sorted(EVENT_TYPES - officers.EVENT_TYPES - {HEADS_TYPE, withholding.EVENT_TYPE})
)
if TYPE_CHECKING:
    TenderEventType = str
else:
    TenderEventType = Literal[TENDER_EVENT_TYPES]

WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    400: {"model": ErrorResponse, "description": "The body is not JSON (malformed_json)."},
    401: {"model": ErrorResponse, "description": "No API key, or an unknown or revoked one."},
    403: {"model": ErrorResponse, "description": "The API key's role (or officer) may not do this (forbidden)."},
    409: {
        "model": ErrorResponse,
        "description": "`prev` is not the tender's head, the tender already exists, or the Idempotency-Key"
        " was used for another request (conflict, idempotency_key_reused).",
    },
}

#: The write routes' responses are declared on each (not on the router): ``GET /officers`` is a read.
router = APIRouter(tags=["writes"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any unique string (e.g. a UUID): retrying the same request with it returns the original"
        " response instead of recording again; reusing it for another request is refused (409).",
    ),
]
Ocid = Annotated[str, Path(description="The OCDS contracting-process id, e.g. ocds-213czf-000-00001.")]


class _Signable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(
        description="The OCDS-shaped object of the event type (see docs/api.md, what a payload must hold)."
    )
    submission: dict[str, Any] | None = Field(
        default=None, description="The officer's signed EIP-712 struct (docs/spec.md §7), with `signature`."
    )
    signature: str | None = Field(default=None, description="0x-prefixed 65-byte signature of `submission`.")
    disclosure: dict[str, Any] | None = Field(
        default=None,
        description="With a signed submission whose payloadSha256 is an envelope v2 payload_commitment: the"
        " disclosure it was made with (docs/spec.md §2.5; its fields must be those the privacy rules mark)."
        " Without it, a signed submission is over the payload's bare SHA-256 and recorded as envelope v1.",
    )


class EventIn(_Signable):
    """One event to record on a tender."""

    type: TenderEventType
    prev: schemas.Hash | None = Field(
        default=None,
        description="Optional optimistic check: the leaf hash of the tender's last event (null: the tender must be"
        " new). Refused with 409 when the tender has moved on. Omit it to append whatever the head is.",
    )


class TenderIn(_Signable):
    """A new tender and its first event."""

    type: Literal["tender.planned", "tender.published"]
    ocid: str | None = Field(
        default=None,
        description="The tender's ocid (required when signing, since the signature covers it); by default one is"
        " made with the deployment's OCDS prefix.",
    )


class BulkEventIn(EventIn):
    ocid: str


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[BulkEventIn] = Field(min_length=1, description="Recorded in order, all or none.")


class OfficerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: schemas.Address
    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=200, description="E.g. the officer's position.")


class OfficerRevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


def _submission(ocid: str, event: EventIn | TenderIn, prev: str | Unset | None) -> Submission:
    return Submission(
        ocid=ocid,
        type=event.type,
        payload=event.payload,
        submission=event.submission,
        signature=event.signature,
        disclosure=event.disclosure,
        prev=prev,
    )


def _prev(event: EventIn) -> str | Unset | None:
    """``prev`` as sent: a hash, null (a new tender), or left out (no check)."""
    return event.prev if "prev" in event.model_fields_set else UNSET


#: The envelope's members in the order the response shows them (schemas.Envelope's fields).
_ENVELOPE_MEMBERS = tuple(schemas.Envelope.model_fields)


def _recorded_json(done: Recorded) -> dict[str, Any]:
    """The 201 answer's JSON (schemas.RecordedEvent): the envelope exactly as hashed (members it
    does not carry, such as a null submission, left out), built as the model would dump it, not
    validated again (every member comes from an envelope the log has just built and hashed)."""
    envelope = done.envelope
    members = envelope.to_json()
    return {
        "event_id": done.event_id,
        "ocid": envelope.ocid,
        "seq": envelope.seq,
        "type": envelope.type,
        "recorded_at": envelope.recorded_at,
        "leaf_hash": done.leaf_hash.hex(),
        "status": "pending",
        "envelope": {name: members[name] for name in _ENVELOPE_MEMBERS if name in members},
    }


class _RecordedEvents(JSONResponse):
    """A bulk request's 201 when no event carries a signed submission: written by orjson, the
    same bytes as :class:`JSONResponse`'s ``json.dumps`` for what it then holds (integers below
    2**53, strings and nulls the log made: both escape ``"`` ``\\`` and the controls alike and
    write the rest as UTF-8) in a tenth of the time (``json.dumps`` was ~10 µs of a bulk event's
    ~200). A submission is the officer's own object and may hold floats, which the two write
    differently (``1e16``, ``1e+16``): those batches keep :class:`JSONResponse`."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _check_officer(principal: Principal, items: Sequence[Submission], where: list[str]) -> None:
    """A key that names its officer may only send submissions signed as that officer."""
    if principal.officer is None:
        return
    for item, field in zip(items, where, strict=True):
        if item.submission is None:
            continue
        try:
            signer = Signed.from_json(item.submission).officer
        except InvalidArgumentError as exc:
            raise exc.renamed(f"{field}{exc.field}") from exc
        if signer != principal.officer:
            raise PermissionDeniedError(
                f"{field}submission.officer",
                f"API key {principal.prefix} acts for {principal.officer}, not for {signer}",
            )


def _renamed(exc: LedgerError, bulk: bool) -> LedgerError:
    """The domain names fields in its terms (``payload.x``, ``items[2].prev``); name them in the
    request's (``body.payload.x``, ``body.events[2].prev``)."""
    if not isinstance(exc, FieldError) or exc.field.startswith("body."):
        return exc
    field = exc.field
    if bulk and field.startswith("items["):
        return exc.renamed("body.events" + field.removeprefix("items"))
    if field in ("submission", "signature", "payload", "prev", "type", "ocid") or field.startswith(
        ("submission.", "payload.")
    ):
        return exc.renamed("body." + field)
    return exc


@dataclass(frozen=True, slots=True)
class Recorder:
    """What every write needs from the request: the log, the settings, the clock and the
    ``Idempotency-Key``; :meth:`record` records and answers."""

    request: Request
    log: Log
    settings: Settings
    now: Clock
    key: str | None

    def record(
        self, principal: Principal, items: list[Submission], *, body: Callable[[], Any], bulk: bool = False
    ) -> JSONResponse:
        """Record ``items`` (idempotently with ``key``) and answer 201 with the recorded event, or
        ``{"events": [...]}`` when ``bulk``. ``body()`` gives the request's JSON, for the
        fingerprint (made only with a ``key``: a copy of the payloads each write would not use)."""
        _check_officer(principal, items, [f"body.events[{i}]." for i in range(len(items))] if bulk else ["body."])
        moment = self.now()
        settings = self.settings
        signatures = _policy(settings)

        def shape(recorded: list[Recorded]) -> Any:
            return {"events": [_recorded_json(done) for done in recorded]} if bulk else _recorded_json(recorded[0])

        def run(on_recorded: OnRecorded | None) -> list[Recorded]:
            try:
                return record(
                    self.log,
                    items,
                    now=moment,
                    signatures=signatures,
                    chain_id=settings.chain_id_for_signatures,
                    on_recorded=on_recorded,
                )
            except _REFUSALS as exc:
                raise _renamed(exc, bulk) from exc

        if self.key is None:
            recorded = run(None)
            content = shape(recorded)
            unsigned = bulk and all(done.envelope.submission is None for done in recorded)
            answer = _RecordedEvents if unsigned else JSONResponse
            return answer(content, status_code=201, headers=_location(content))

        def action(remember: idempotency.Remember) -> None:
            def on_recorded(conn: Connection, recorded: list[Recorded]) -> None:
                remember(conn, 201, shape(recorded))

            run(on_recorded)

        outcome = idempotency.perform(
            self.log.engine,
            principal=principal,
            key=self.key,
            fingerprint=idempotency.fingerprint(self.request.method, self.request.url.path, body()),
            now=moment,
            ttl=timedelta(seconds=settings.idempotency_ttl),
            action=action,
        )
        headers = _location(outcome.response.body)
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(outcome.response.body, status_code=outcome.response.status, headers=headers)

    async def record_one(self, principal: Principal, item: Submission, *, body: Callable[[], Any]) -> JSONResponse:
        """:meth:`record` of one event, from the event loop. An unsigned tender event without
        ``Idempotency-Key`` (nearly every single write) is queued to the log's group commit, whose
        batch's leader checks it (its payload, its bytes), writes it and answers it
        (:func:`handoff.submit`): no thread waits for it, where a waiting thread cost ~7-9 context
        switches a write (bench/RESULTS-writes.md, round 8). A signed event (its signature is
        verified before its batch, ~1 ms of CPU: not on a leader all wait for) or one with a key
        is :meth:`record` on the hand-off's thread, as before. Same answers either way."""
        group = self.log.group
        if self.key is None and item.submission is None and group.max_batch > 1:
            log, settings, moment = self.log, self.settings, self.now()

            def prepare() -> tuple[Any, str, Any]:
                plan = grouped(
                    log, item, now=moment, signatures=_policy(settings), chain_id=settings.chain_id_for_signatures
                )
                if plan is None:  # not a tender event (refused before): written alone, not grouped
                    raise InvariantError(f"{item.ocid}: not a tender's single event")
                return plan.work, plan.key, plan.together

            try:
                recorded = await handoff.submit(group, prepare)
            except _REFUSALS as exc:
                raise _renamed(exc, False) from exc
            content = _recorded_json(recorded[0])
            return JSONResponse(content, status_code=201, headers=_location(content))
        response: JSONResponse = await handoff.shared().run(
            self.record, {"principal": principal, "items": [item], "body": body}
        )
        return response


#: What recording refuses a write with, answered with the request's field names (:func:`_renamed`),
#: on either path of :class:`Recorder`.
_REFUSALS = (InvalidArgumentError, ConflictError, SignatureError)


def _policy(settings: Settings) -> Literal["optional", "required"]:
    return "required" if settings.require_signatures else "optional"


async def _recorder(
    request: Request, log: LogDep, settings: SettingsDep, now: ClockDep, key: IdempotencyKey = None
) -> Recorder:
    return Recorder(request, log, settings, now, key)


RecorderDep = Annotated[Recorder, Depends(_recorder)]


def _location(content: Any) -> dict[str, str]:
    if isinstance(content, dict) and isinstance(content.get("ocid"), str):
        return {"Location": f"/api/v1/tenders/{content['ocid']}"}
    return {}


@router.post(
    "/tenders",
    status_code=201,
    response_model=schemas.RecordedEvent,
    responses=WRITE_RESPONSES,
    summary="Create a tender (its first event)",
)
async def create_tender(
    recorder: RecorderDep,
    principal: OfficerDep,
    tender: Annotated[TenderIn, Body(openapi_examples=examples.tender_examples())],
) -> JSONResponse:
    """Record the first event of a new tender. 409 if a tender with that ocid already exists."""
    ocid = tender.ocid or f"{recorder.settings.ocid_prefix}-{uuid.uuid4().hex[:20]}"
    item = _submission(ocid, tender, None)  # a new tender: 409 if it exists
    return await recorder.record_one(principal, item, body=lambda: tender.model_dump(mode="json", exclude_unset=True))


@router.post(
    "/tenders/{ocid}/events",
    status_code=201,
    response_model=schemas.RecordedEvent,
    responses=WRITE_RESPONSES,
    summary="Record an event of a tender",
)
async def record_event(
    recorder: RecorderDep,
    principal: OfficerDep,
    ocid: Ocid,
    event: Annotated[EventIn, Body(openapi_examples=examples.event_examples())],
) -> JSONResponse:
    """Record one event; it is durable when the 201 arrives. Its payload is validated for its
    type and the tender's rules are checked (a bid revealed must match its commitment made
    before the deadline, an award must name a bidder, a contract an award...)."""
    check_ocid(ocid, field="path.ocid")
    _not_the_registry(ocid, "path.ocid")
    item = _submission(ocid, event, _prev(event))
    return await recorder.record_one(principal, item, body=lambda: event.model_dump(mode="json", exclude_unset=True))


@router.post(
    "/events/bulk",
    status_code=201,
    response_model=schemas.RecordedEvents,
    responses=WRITE_RESPONSES,
    summary="Record many events at once (all or none)",
)
def record_events(
    recorder: RecorderDep,
    principal: OfficerDep,
    bulk: Annotated[BulkIn, Body(openapi_examples=examples.bulk_examples())],
) -> JSONResponse:
    """Record up to ``TENDERPROOF_BULK_MAX_EVENTS`` events of any tenders in one transaction, in
    order (events of one tender chain on each other in the order given). One refusal refuses
    the whole request, naming the event (``body.events[3].payload.x``)."""
    limit = recorder.settings.bulk_max_events
    if len(bulk.events) > limit:
        raise InvalidArgumentError("body.events", f"at most {limit} events per request, got {len(bulk.events)}")
    for i, event in enumerate(bulk.events):
        _not_the_registry(event.ocid, f"body.events[{i}].ocid")
    items = [_submission(event.ocid, event, _prev(event)) for event in bulk.events]
    return recorder.record(principal, items, body=lambda: bulk.model_dump(mode="json", exclude_unset=True), bulk=True)


def _not_the_registry(ocid: str, field: str) -> None:
    if ocid == officers.REGISTRY_OCID:
        raise InvalidArgumentError(field, "the officers' registry is managed through /api/v1/officers")
    if ocid == officers.ORDERS_OCID:
        raise InvalidArgumentError(field, "withholding orders are recorded through /api/v1/withholding-orders")
    if ocid in officers.RESERVED_OCIDS:
        raise InvalidArgumentError(field, f"{ocid} is reserved for the log's heads commitments")


@router.post(
    "/officers",
    status_code=201,
    response_model=schemas.RecordedEvent,
    responses=WRITE_RESPONSES,
    summary="Register an officer's address (administrators)",
)
def register_officer(recorder: RecorderDep, principal: AdminDep, officer: OfficerIn) -> JSONResponse:
    """Record ``officer.registered`` in the log's officers' registry: from then on, submissions
    signed by this address are accepted."""
    payload = officer.model_dump(mode="json", exclude_none=True)
    item = Submission(ocid=officers.REGISTRY_OCID, type="officer.registered", payload=payload)
    return recorder.record(principal, [item], body=lambda: payload)


@router.post(
    "/officers/{address}/revoke",
    status_code=201,
    response_model=schemas.RecordedEvent,
    responses=WRITE_RESPONSES,
    summary="Revoke an officer's address (administrators)",
)
def revoke_officer(
    recorder: RecorderDep,
    principal: AdminDep,
    address: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")],
    revoke: OfficerRevokeIn,
) -> JSONResponse:
    """Record ``officer.revoked``: from then on, this address's signatures are refused."""
    payload = {"address": address, **revoke.model_dump(mode="json", exclude_none=True)}
    item = Submission(ocid=officers.REGISTRY_OCID, type="officer.revoked", payload=payload)
    return recorder.record(principal, [item], body=lambda: payload)


@router.get("/officers", response_model=schemas.Officers, tags=["officers"], summary="The registered officers")
def list_officers(log: ReadLogDep, now: ClockDep) -> schemas.Officers:
    """The addresses whose signatures are accepted now, as the log's officers' registry
    (events of ``ocds-tpreg0-officers``) has them."""
    return schemas.Officers(
        officers=[
            schemas.Officer(
                address=str(row["address"]),
                name=str(row["name"]),
                role=None if row["role"] is None else str(row["role"]),
                registered_at=format_timestamp(row["registered_at"]),  # type: ignore[arg-type]
            )
            for row in officers.registered(log.engine, at=now())
        ]
    )


class WithholdingTargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="The log index of the event to withhold.")
    fields: list[str] | None = Field(
        default=None,
        min_length=1,
        description="JSON Pointers (RFC 6901) of the payload fields to withhold (envelope v2 entries, separately"
        " committed fields only); left out: the whole payload.",
    )


class WithholdingOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=200, description="The order's reference (e.g. a case number).")
    authority: str = Field(
        min_length=1, max_length=500, description="Who ordered it (a court, a data-protection authority)."
    )
    legal_basis: str = Field(min_length=1, max_length=2000, description="The law or decision it rests on.")
    targets: list[WithholdingTargetIn] = Field(min_length=1, max_length=1000)


@router.post(
    "/withholding-orders",
    status_code=201,
    response_model=schemas.WithholdingRecorded,
    responses=WRITE_RESPONSES,
    tags=["privacy"],
    summary="Record a withholding order and withhold its targets (administrators)",
)
def record_withholding_order(
    log: LogDep, now: ClockDep, principal: AdminDep, order: WithholdingOrderIn
) -> JSONResponse:
    """Record a ``privacy.withholding`` event (docs/privacy.md) and, in the same transaction,
    integrate it and withhold the payloads (or fields) it names: the order is public and
    provable, the withheld bytes are removed from the payloads and every copy derived from them.
    Refused with nothing changed: a target that is not an integrated entry, an order or registry
    event, a target already withheld, a pointer into the envelope, fields of a v1 entry."""
    del principal  # an administrator: AdminDep has checked it
    payload = order.model_dump(mode="json", exclude_none=True)
    try:
        recorded, withheld = withholding.record_order(log, payload, now=now())
    except (InvalidArgumentError, ConflictError) as exc:
        raise exc.renamed("body." + exc.field.removeprefix("payload.")) from exc
    with log.engine.connect() as conn:
        index = withholding.index_of(conn, recorded.event_id)
    content = schemas.WithholdingRecorded(
        order=schemas.RecordedEvent.model_validate(_recorded_json(recorded)),
        index=index,
        withheld=[
            schemas.WithheldTarget(index=w.index, ocid=w.ocid, fields=None if w.fields is None else list(w.fields))
            for w in withheld
        ],
    ).model_dump(mode="json")
    return JSONResponse(content, status_code=201)
