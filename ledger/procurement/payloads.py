"""What each event type's payload must hold (docs/spec.md §3), shaped as the matching OCDS 1.1 objects.

The models name only the fields the rules and the search rely on; everything else OCDS (or an
OCDS extension) allows passes through untouched (``extra="allow"``), since the payload recorded
is the caller's JSON, byte for byte, not these models. Types are strict: ``"12"`` is not a
number and ``1`` is not a string.

:func:`validate` raises :class:`InvalidArgumentError` whose ``field`` is the JSON path of the
first offending value (``payload.tender.value.amount``) and whose ``reason`` says what it must
be and what it was (``must be a number >= 0, got 'abc'``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, ValidationError, WithJsonSchema

from ledger.core.errors import InvalidArgumentError

_CURRENCY = re.compile(r"[A-Z]{3}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SALT = re.compile(r"(?:[0-9a-f]{2}){16,64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _number(value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"must be a number >= 0, got {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _identifier(value: object) -> str:
    """OCDS ids are strings or integers; both are kept as strings here (1 and "1" are one id)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string or an integer, got {value!r}")
    return value


def _currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ValueError(f"must be an ISO 4217 currency code of 3 capital letters, got {value!r}")
    return value


def _datetime(value: object) -> str:
    """OCDS dates: RFC 3339 date-times with a time zone (``2026-03-30T23:59:59Z``)."""
    if isinstance(value, str) and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return value
    raise ValueError(f"must be an RFC 3339 date-time with a time zone, like '2026-03-30T23:59:59Z', got {value!r}")


def _hex64(value: object) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"must be a SHA-256 digest, 64 lowercase hex digits, got {value!r}")
    return value


def _salt(value: object) -> str:
    if not isinstance(value, str) or not _SALT.fullmatch(value):
        raise ValueError(f"must be 16 to 64 random bytes as lowercase hex, got {value!r}")
    return value


def _address(value: object) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"must be an Ethereum address, 0x + 40 hex digits, got {value!r}")
    # imported when an address is checked: eth-utils (~8 MB of modules) stays out of the
    # processes that import the payload models and never meet one (the import's checking workers)
    from eth_utils.address import to_checksum_address

    checksummed = to_checksum_address(value)
    if value != checksummed:
        raise ValueError(f"must be EIP-55 checksummed: expected {checksummed!r}, got {value!r}")
    return value


Amount = Annotated[float, PlainValidator(_number), WithJsonSchema({"type": "number", "minimum": 0})]
Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string", "minLength": 1})]
Id = Annotated[str, PlainValidator(_identifier), WithJsonSchema({"type": ["string", "integer"], "minLength": 1})]
Currency = Annotated[str, PlainValidator(_currency), WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$"})]
DateTime = Annotated[str, PlainValidator(_datetime), WithJsonSchema({"type": "string", "format": "date-time"})]
Digest = Annotated[str, PlainValidator(_hex64), WithJsonSchema({"type": "string", "pattern": "^[0-9a-f]{64}$"})]
Salt = Annotated[str, PlainValidator(_salt), WithJsonSchema({"type": "string", "pattern": "^([0-9a-f]{2}){16,64}$"})]
Address = Annotated[str, PlainValidator(_address), WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"})]


def parse_datetime(value: str) -> datetime:
    """An OCDS date-time already validated by the models, as an aware datetime."""
    return datetime.fromisoformat(value)


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class Value(_Object):
    amount: Amount
    currency: Currency


class Period(_Object):
    startDate: DateTime | None = None
    endDate: DateTime | None = None


def _ordered(period: Period) -> Period:
    if period.startDate and period.endDate and parse_datetime(period.endDate) <= parse_datetime(period.startDate):
        raise ValueError(f"endDate {period.endDate!r} must be after startDate {period.startDate!r}")
    return period


class DeadlinePeriod(Period):
    endDate: DateTime


class OrganizationReference(_Object):
    id: Id
    name: Text


class _Identified(_Object):
    id: Id


Method = Literal["open", "selective", "limited", "direct"]
NonEmpty = Field(min_length=1)


class PlannedTender(_Object):
    id: Id | None = None
    title: Text | None = None
    value: Value | None = None
    procurementMethod: Method | None = None


class Planned(_Object):
    planning: dict[str, Any]
    buyer: OrganizationReference
    tender: PlannedTender | None = None


class PublishedTender(_Object):
    id: Id
    title: Text
    value: Value | None = None
    procurementMethod: Method | None = None
    tenderPeriod: Annotated[DeadlinePeriod, AfterValidator(_ordered)]


class Published(_Object):
    tender: PublishedTender
    buyer: OrganizationReference


class TenderAmendment(_Object):
    id: Id
    title: Text | None = None
    value: Value | None = None
    procurementMethod: Method | None = None
    tenderPeriod: Annotated[Period, AfterValidator(_ordered)] | None = None
    amendments: Annotated[list[_Identified], NonEmpty]


class Amended(_Object):
    tender: TenderAmendment


class Enquiries(_Object):
    id: Id
    enquiries: Annotated[list[_Identified], NonEmpty]


class Clarified(_Object):
    tender: Enquiries


class BidCommitted(_Object):
    bidder: OrganizationReference
    commitment: Digest


class Bid(_Object):
    id: Id
    tenderers: Annotated[list[OrganizationReference], Field(min_length=1, max_length=1)]
    value: Value


class BidRevealed(_Object):
    bid: Bid
    salt: Salt


class CancelledTender(_Object):
    id: Id
    status: Literal["cancelled"] | None = None
    statusDetails: Text


class Cancelled(_Object):
    tender: CancelledTender


class Award(_Object):
    id: Id
    status: Literal["pending", "active"] | None = None
    suppliers: Annotated[list[OrganizationReference], NonEmpty]
    value: Value
    date: DateTime | None = None


class AwardIssued(_Object):
    award: Award


class ChallengedAward(_Object):
    id: Id
    #: "cancelled" when the challenge is upheld and the award withdrawn.
    status: Literal["pending", "active", "cancelled"] | None = None


class Challenge(_Object):
    id: Id
    description: Text
    date: DateTime | None = None


class AwardChallenged(_Object):
    award: ChallengedAward
    challenge: Challenge


class Contract(_Object):
    id: Id
    awardID: Id
    value: Value | None = None
    dateSigned: DateTime | None = None


class ContractSigned(_Object):
    contract: Contract


class ContractAmendment(_Object):
    id: Id
    value: Value | None = None
    amendments: Annotated[list[_Identified], NonEmpty]


class ContractAmended(_Object):
    contract: ContractAmendment


class Transaction(_Object):
    id: Id
    value: Value
    date: DateTime | None = None


class ContractPayment(_Object):
    contract: _Identified
    transaction: Transaction


class CompletedContract(_Object):
    id: Id
    status: Literal["terminated"] | None = None


class ContractCompleted(_Object):
    contract: CompletedContract


class OfficerRegistered(_Object):
    address: Address
    name: Text
    role: Text | None = None


class OfficerRevoked(_Object):
    address: Address
    reason: Text | None = None


#: A JSON Pointer (RFC 6901) into a payload: ``/`` then reference tokens; the whole payload ("")
#: is not a field (an order withholds it by leaving ``fields`` out).
Pointer = Annotated[str, Field(strict=True, min_length=2, max_length=1000, pattern=r"^/")]


class WithholdingTarget(_Object):
    """One event an order withholds: the whole payload, or (envelope v2 only) some of its fields."""

    index: Annotated[int, Field(strict=True, ge=0)]
    fields: Annotated[list[Pointer], Field(min_length=1, max_length=1000)] | None = None


class WithholdingOrder(_Object):
    """A withholding order (docs/privacy.md): public, holds no personal data."""

    reference: Annotated[str, Field(strict=True, min_length=1, max_length=200)]
    authority: Annotated[str, Field(strict=True, min_length=1, max_length=500)]
    legal_basis: Annotated[str, Field(strict=True, min_length=1, max_length=2000)]
    targets: Annotated[list[WithholdingTarget], Field(min_length=1, max_length=1000)]


class HeadsCommitment(_Object):
    """The log's heads commitment (docs/spec.md §14.1): written by the log itself, never by a
    client (the recording layer refuses the type); the model documents and checks its shape."""

    tree_size: Annotated[int, Field(strict=True, ge=0)]
    heads_root: Digest
    tenders: Annotated[int, Field(strict=True, ge=0)]


MODELS: dict[str, type[_Object]] = {
    "tender.planned": Planned,
    "tender.published": Published,
    "tender.amended": Amended,
    "tender.clarified": Clarified,
    "bid.committed": BidCommitted,
    "bid.revealed": BidRevealed,
    "tender.cancelled": Cancelled,
    "award.issued": AwardIssued,
    "award.challenged": AwardChallenged,
    "contract.signed": ContractSigned,
    "contract.amended": ContractAmended,
    "contract.payment": ContractPayment,
    "contract.completed": ContractCompleted,
    "officer.registered": OfficerRegistered,
    "officer.revoked": OfficerRevoked,
    "log.heads": HeadsCommitment,
    "privacy.withholding": WithholdingOrder,
}


def json_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of ``event_type``'s payload (for API documentation). Raises KeyError."""
    return MODELS[event_type].model_json_schema()


def validate(event_type: str, payload: Any) -> _Object:
    """Check ``payload`` against ``event_type``'s model; return the parsed model.

    Raises :class:`InvalidArgumentError` naming ``type`` for an unknown type, or the JSON path
    of the first bad value of the payload (``payload.bid.value.amount``), with every other bad
    value in its ``others``.
    """
    model = MODELS.get(event_type)
    if model is None:
        raise InvalidArgumentError("type", f"unknown event type {event_type!r}; known: {', '.join(sorted(MODELS))}")
    if not isinstance(payload, dict):
        raise InvalidArgumentError("payload", f"must be a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise InvalidArgumentError.every([(_path(error["loc"]), _reason(error)) for error in errors]) from None


def _path(loc: tuple[int | str, ...]) -> str:
    out = "payload"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after", "function-plain") and not part.startswith(("function-", "literal[")):
            out += f".{part}"
    return out


_KINDS = {
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "list_type": "a JSON array",
    "string_type": "a string",
    "float_type": "a number",
    "int_type": "an integer",
    "bool_type": "true or false",
}


def _reason(error: Any) -> str:
    kind, got, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}, got {_json_repr(got)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_json_repr(got)}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s), got {len(got) if isinstance(got, list) else 0}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s), got {ctx.get('actual_length')}"
    return f"{error['msg']}, got {_json_repr(got)}"


def _json_repr(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return repr(value)
