"""The officers' desk's forms (the routes and sessions are :mod:`api.desk`): one form per event
type, the payload a form's fields make, and the validation errors in the page's language.

A form only gathers fields: the payload it makes is checked by the same rules as the write API's
(:mod:`ledger.procurement.payloads` and :mod:`ledger.procurement.record`, called by api.desk), and
their errors, which name JSON paths (``payload.tender.title``), are shown beside the field of that
path. The payload is built the same way for the browser's signature (``/desk/payload``) and for
the recording, so what the officer signs is what is recorded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from ledger.core.errors import InvalidArgumentError
from ledger.procurement.payloads import validate

from .i18n import Formatter

Kind = Literal["text", "number", "currency", "datetime", "hash", "salt", "select", "textarea"]


@dataclass(frozen=True, slots=True)
class Field:
    """One input: ``path`` is the payload's JSON path it fills (``award.suppliers[0].name``)."""

    path: str
    label: str
    kind: Kind = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    hint: str | None = None

    @property
    def name(self) -> str:
        """The input's name and id: the path (ids may hold dots and brackets)."""
        return self.path


def _value(prefix: str, *, required: bool = False) -> tuple[Field, Field]:
    return (
        Field(f"{prefix}.amount", "Amount", "number", required=required),
        Field(f"{prefix}.currency", "Currency (ISO 4217, e.g. MXN)", "currency", required=required),
    )


def _org(prefix: str, what: str) -> tuple[Field, Field]:
    return (
        Field(f"{prefix}.id", f"{what}: identifier", required=True),
        Field(f"{prefix}.name", f"{what}: name", required=True),
    )


_METHODS = ("", "open", "selective", "limited", "direct")

#: The form of each event type an officer records on a tender (api.routes.writes.TENDER_EVENT_TYPES).
FORMS: dict[str, tuple[Field, ...]] = {
    "tender.planned": (
        *_org("buyer", "Buyer"),
        Field("tender.title", "Title"),
        *_value("planning.budget.amount"),
        Field("planning.budget.description", "Budget description"),
    ),
    "tender.published": (
        Field("tender.id", "Tender identifier", required=True),
        Field("tender.title", "Title", required=True),
        Field("tender.procurementMethod", "Procurement method", "select", choices=_METHODS),
        *_value("tender.value"),
        Field("tender.tenderPeriod.startDate", "Bids open (UTC)", "datetime"),
        Field("tender.tenderPeriod.endDate", "Bid deadline (UTC)", "datetime", required=True),
        *_org("buyer", "Buyer"),
    ),
    "tender.amended": (
        Field("tender.id", "Tender identifier", required=True),
        Field("tender.title", "New title"),
        *_value("tender.value"),
        Field("tender.tenderPeriod.endDate", "New bid deadline (UTC)", "datetime"),
        Field("tender.amendments[0].id", "Amendment identifier", required=True),
        Field("tender.amendments[0].rationale", "Rationale", "textarea"),
    ),
    "tender.clarified": (
        Field("tender.id", "Tender identifier", required=True),
        Field("tender.enquiries[0].id", "Enquiry identifier", required=True),
        Field("tender.enquiries[0].title", "Question"),
        Field("tender.enquiries[0].answer", "Answer", "textarea"),
    ),
    "bid.committed": (
        *_org("bidder", "Bidder"),
        Field(
            "commitment",
            "Commitment (SHA-256 of the sealed bid and its salt)",
            "hash",
            required=True,
            hint="64 lowercase hex digits, from the bidder.",
        ),
    ),
    "bid.revealed": (
        Field("bid.id", "Bid identifier", required=True),
        *_org("bid.tenderers[0]", "Bidder"),
        *_value("bid.value", required=True),
        Field("salt", "Salt", "salt", required=True, hint="The bidder's salt, 16 to 64 bytes as lowercase hex."),
    ),
    "tender.cancelled": (
        Field("tender.id", "Tender identifier", required=True),
        Field("tender.statusDetails", "Why it is cancelled", "textarea", required=True),
    ),
    "award.issued": (
        Field("award.id", "Award identifier", required=True),
        Field("award.status", "Award status", "select", choices=("", "pending", "active")),
        *_org("award.suppliers[0]", "Supplier"),
        *_value("award.value", required=True),
        Field("award.date", "Award date (UTC)", "datetime"),
    ),
    "award.challenged": (
        Field("award.id", "Award identifier", required=True),
        Field("award.status", "Award status", "select", choices=("", "pending", "active", "cancelled")),
        Field("challenge.id", "Challenge identifier", required=True),
        Field("challenge.description", "What is challenged", "textarea", required=True),
        Field("challenge.date", "Challenge date (UTC)", "datetime"),
    ),
    "contract.signed": (
        Field("contract.id", "Contract identifier", required=True),
        Field("contract.awardID", "Award identifier", required=True),
        *_value("contract.value"),
        Field("contract.dateSigned", "Date signed (UTC)", "datetime"),
    ),
    "contract.amended": (
        Field("contract.id", "Contract identifier", required=True),
        *_value("contract.value"),
        Field("contract.amendments[0].id", "Amendment identifier", required=True),
        Field("contract.amendments[0].rationale", "Rationale", "textarea"),
    ),
    "contract.payment": (
        Field("contract.id", "Contract identifier", required=True),
        Field("transaction.id", "Payment identifier", required=True),
        *_value("transaction.value", required=True),
        Field("transaction.date", "Payment date (UTC)", "datetime"),
    ),
    "contract.completed": (
        Field("contract.id", "Contract identifier", required=True),
        Field("contract.status", "How it ended", "select", choices=("", "terminated")),
    ),
}
#: The types that create a tender (its first event).
FIRST_TYPES = ("tender.published", "tender.planned")

_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at ``path`` (``a.b[0].c``) in ``target``, making the objects and lists on the way."""
    steps = [(m.group(1), None if m.group(2) is None else int(m.group(2))) for m in _STEP.finditer(path)]
    node: Any = target
    for position, (key, index) in enumerate(steps):
        last = position == len(steps) - 1
        if index is None:
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
            continue
        items = node.setdefault(key, [])
        while len(items) <= index:
            items.append({})
        if last:
            items[index] = value
        else:
            node = items[index]


def _number(text: str, path: str) -> int | float:
    """A form's amount as a JSON number (an integer when it is whole: ``1200000``, not ``1200000.0``)."""
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        raise InvalidArgumentError(f"payload.{path}", f"must be a number >= 0, got {text!r}") from None
    if not math.isfinite(number):
        raise InvalidArgumentError(f"payload.{path}", f"must be a number >= 0, got {text!r}")
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _moment(text: str) -> str:
    """A ``datetime-local`` input (``2026-03-30T23:59``), read as UTC, as RFC 3339 with ``Z``."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text):
        return text + ":00Z"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", text):
        return text + "Z"
    return text  # anything else is left for the payload's own check to name


def payload_from_form(event_type: str, form: dict[str, str]) -> dict[str, Any]:
    """The payload the form of ``event_type`` makes of ``form`` (the submitted fields): empty
    fields are left out; amounts become numbers, local date-times UTC date-times.

    Raises :class:`InvalidArgumentError` naming ``type`` for a type without a form, or
    ``payload.<path>`` for an amount that is not a number (every such amount, in ``others``). The payload's rules are the caller's
    to check (:func:`ledger.procurement.payloads.validate`, through the recording).
    """
    fields = FORMS.get(event_type)
    if fields is None:
        raise InvalidArgumentError("type", f"no desk form for event type {event_type!r}")
    payload: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for field in fields:
        text = form.get(field.name, "").strip()
        if not text:
            continue
        value: Any = text
        if field.kind == "number":
            try:
                value = _number(text, field.path)
            except InvalidArgumentError as exc:
                problems.append((exc.field, exc.reason))
                continue
        elif field.kind == "datetime":
            value = _moment(text)
        _put(payload, field.path, value)
    if problems:
        # Name the payload's other problems too, so that the form shows each beside its field;
        # the amounts left out are already named (not as "is required").
        try:
            validate(event_type, payload)
        except InvalidArgumentError as exc:
            named = {field for field, _ in problems}
            problems += [(p.field, p.reason) for p in exc.all_problems() if p.field not in named]
        raise InvalidArgumentError.every(problems)
    return payload


def field_of(error_field: str, event_type: str) -> str | None:
    """The form field an error's JSON path names (``body.payload.award.value.amount`` ->
    ``award.value.amount``), or None when the error is not about one of the form's fields."""
    path = error_field.removeprefix("body.").removeprefix("payload.")
    names = {field.path for field in FORMS.get(event_type, ())}
    while path:
        if path in names:
            return path
        # an error about a whole object (``award.suppliers``) goes to its first field
        for name in names:
            if name.startswith((path + ".", path + "[")):
                return name
        if "." not in path:
            break
        path = path.rsplit(".", 1)[0]
    return None


#: The payload rules' reasons (ledger.procurement.payloads), as messages to translate: each
#: pattern's groups fill the message's placeholders. A reason matched by none is shown as it is.
REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (r"is required", "is required"),
        (r"must be a number >= 0, got (?P<got>.*)", "must be a number, 0 or more (got {got})"),
        (r"must be a non-empty string, got (?P<got>.*)", "must not be empty"),
        (r"must be a non-empty string or an integer, got (?P<got>.*)", "must not be empty"),
        (
            r"must be an ISO 4217 currency code of 3 capital letters, got (?P<got>.*)",
            "must be a currency code of 3 capital letters, like MXN (got {got})",
        ),
        (
            r"must be an RFC 3339 date-time with a time zone.*, got (?P<got>.*)",
            "must be a date and time (got {got})",
        ),
        (
            r"must be a SHA-256 digest, 64 lowercase hex digits, got (?P<got>.*)",
            "must be a SHA-256 digest: 64 lowercase hexadecimal digits (got {got})",
        ),
        (
            r"must be 16 to 64 random bytes as lowercase hex, got (?P<got>.*)",
            "must be 16 to 64 bytes as lowercase hexadecimal (got {got})",
        ),
        (r"must be one of (?P<choices>.*), got (?P<got>.*)", "must be one of {choices} (got {got})"),
        (
            r"endDate (?P<end>.*) must be after startDate (?P<start>.*)",
            "the end {end} must come after the start {start}",
        ),
        # the tender's rules (ledger.procurement.rules) an officer meets most
        (
            r"the tender period opens at (?P<start>\S+): no commitment before it \(now (?P<now>\S+)\)",
            "the tender period opens at {start}: no bid may be committed before (now {now})",
        ),
        (
            r"the tender period closed at (?P<end>\S+): commitments are refused after it \(now (?P<now>\S+)\)",
            "the tender period closed at {end}: no bid may be committed after it (now {now})",
        ),
        (
            r"sealed bids are revealed after the deadline (?P<deadline>\S+) \(now (?P<now>\S+)\)",
            "sealed bids are revealed after the deadline {deadline} (now {now})",
        ),
        (
            r"awards come after the deadline (?P<deadline>\S+) \(now (?P<now>\S+)\)",
            "awards come after the deadline {deadline} (now {now})",
        ),
        (
            r"tender (?P<ocid>\S+)'s tender period is withheld by an order: no deadline to check",
            "the tender period of {ocid} is withheld by an order: there is no deadline to check",
        ),
        (r"bidder (?P<bidder>.+) has already committed a bid", "bidder {bidder} has already committed a bid"),
        (r"bidder (?P<bidder>.+) has already revealed its bid", "bidder {bidder} has already revealed its bid"),
        (r"award (?P<award>.+) was already issued", "award {award} was already issued"),
        # the payload's other shapes
        (r"must be a JSON object, got (?P<got>.*)", "must be a group of fields (got {got})"),
        (r"must be a JSON array, got (?P<got>.*)", "must be a list (got {got})"),
        (r"must be a string, got (?P<got>.*)", "must be text (got {got})"),
        (r"must be a number, got (?P<got>.*)", "must be a number (got {got})"),
        (r"must be an integer, got (?P<got>.*)", "must be a whole number (got {got})"),
        (r"must be true or false, got (?P<got>.*)", "must be yes or no (got {got})"),
        (r"must have at least (?P<count>\d+) item\(s\), got (?P<got>\d+)", "must have at least {count} (got {got})"),
        (r"must have at most (?P<count>\d+) item\(s\), got (?P<got>\d+)", "must have at most {count} (got {got})"),
        (
            r"must be an Ethereum address, 0x \+ 40 hex digits, got (?P<got>.*)",
            "must be an Ethereum address: 0x and 40 hexadecimal digits (got {got})",
        ),
        (
            r"must be EIP-55 checksummed: expected (?P<expected>.*), got (?P<got>.*)",
            "must be written with its EIP-55 capitals: {expected} (got {got})",
        ),
        (
            r"unknown event type (?P<event_type>\S+); known: (?P<known>.*)",
            "unknown event type {event_type}; the types are: {known}",
        ),
        # every other refusal of the tender's rules (ledger.procurement.rules)
        (r"(?P<event_type>\S+) is not an event of a tender", "{event_type} is not an event of a tender"),
        (
            r"tender (?P<ocid>\S+) was imported from OCDS releases: record its later releases by import",
            "tender {ocid} was imported from OCDS releases: its later releases are recorded by import",
        ),
        (
            r"tender (?P<ocid>\S+) is (?P<status>\w+): no (?P<event_type>\S+) may follow",
            "tender {ocid} is {status}: no {event_type} may follow",
        ),
        (
            r"(?P<event_type>\S+) needs a tender that is (?P<wanted>.+); tender (?P<ocid>\S+) is (?P<stage>.+)",
            "{event_type} needs a tender that is {wanted}; tender {ocid} is {stage}",
        ),
        (
            r"must be this tender's id: expected (?P<expected>.*), got (?P<got>.*)",
            "must be this tender's id, {expected} (got {got})",
        ),
        (
            r"must be the planned buyer: expected (?P<expected>.*), got (?P<got>.*)",
            "must be the planned buyer, {expected} (got {got})",
        ),
        (
            r"must be after the publication \((?P<at>[^)]*)\), got (?P<got>.*)",
            "must come after the publication, {at} (got {got})",
        ),
        (
            r"must be after the amendment \((?P<at>[^)]*)\), got (?P<got>.*)",
            "must come after the amendment, {at} (got {got})",
        ),
        (
            r"the tender period closed at (?P<end>\S+): it cannot be changed",
            "the tender period closed at {end}: it can no longer be changed",
        ),
        (
            r"tender (?P<ocid>\S+) has awards: amend its contracts instead",
            "tender {ocid} has awards: amend its contracts instead",
        ),
        (
            r"tender (?P<ocid>\S+) has signed contracts: it can no longer be cancelled",
            "tender {ocid} has signed contracts: it can no longer be cancelled",
        ),
        (
            r"bidder (?P<bidder>.+) recorded no commitment before the deadline",
            "bidder {bidder} committed no bid before the deadline",
        ),
        (r"a bid (?P<bid>.+) was already revealed", "a bid {bid} was already revealed"),
        (
            r"does not match bidder (?P<bidder>.+)'s commitment: SHA-256\(RFC 8785\(bid\) \|\| salt\) is "
            r"(?P<digest>\S+), expected (?P<expected>\S+)",
            "does not match the commitment of bidder {bidder}: SHA-256(RFC 8785(bid) || salt) is {digest}, "
            "the commitment {expected}",
        ),
        (r"(?P<supplier>.+) did not reveal a bid in this tender", "{supplier} did not reveal a bid in this tender"),
        (
            r"no award (?P<award>.+) was issued \(issued: (?P<known>.*)\)",
            "no award {award} was issued (issued: {known})",
        ),
        (r"no award (?P<award>.+) was issued", "no award {award} was issued"),
        (r"award (?P<award>.+) is already cancelled", "award {award} is already cancelled"),
        (
            r"a contract is signed on award (?P<award>.+): it can no longer be cancelled",
            "a contract is signed on award {award}: it can no longer be cancelled",
        ),
        (r"award (?P<award>.+) is (?P<status>\w+), not active", "award {award} is {status}, not active"),
        (r"contract (?P<contract>.+) was already signed", "contract {contract} was already signed"),
        (
            r"no contract (?P<contract>.+) was signed \(signed: (?P<known>.*)\)",
            "no contract {contract} was signed (signed: {known})",
        ),
        (
            r"contract (?P<contract>.+) is completed: no (?P<event_type>\S+) may follow",
            "contract {contract} is completed: no {event_type} may follow",
        ),
        (
            r"must be the contract's currency: expected (?P<expected>.*), got (?P<got>.*)",
            "must be the contract's currency, {expected} (got {got})",
        ),
        (r"transaction (?P<transaction>.+) was already recorded", "transaction {transaction} was already recorded"),
    )
)


def reason_text(fmt: Formatter, reason: str) -> str:
    """``reason`` (a validation error's, in English) in ``fmt``'s language."""
    for pattern, message in REASONS:
        found = pattern.fullmatch(reason)
        if found is not None:
            return fmt.gettext(message, **found.groupdict())
    return reason


#: What the desk's script (explorer/js/desk.js) says while signing, by key; given to it in the page's language.
JS_TEXTS: dict[str, str] = {
    "signing": "Signing in your browser…",
    "no_key": "Choose your keystore file and type its password, or use a browser wallet.",
    "bad_keystore": "This is not a keystore file (JSON V3): {reason}",
    "bad_password": "Wrong password for this keystore file.",
    "wrong_officer": "This key is {address}; your API key acts for {officer}.",
    "wallet_refused": "The browser wallet did not sign: {reason}",
    "failed": "Could not sign: {reason}",
    "sending": "Signed by {address}. Recording…",
}

#: The title of the page refusing a form without its CSRF token.
FORBIDDEN = "Forbidden"
#: Texts of the desk's pages that are not in its templates (the catalog collects them).
MESSAGES = (
    FORBIDDEN,
    "Sign-in failed: {reason}",
    "The form has expired or was not sent from this site: reload the page and try again.",
    "Your desk session has ended: sign in again.",
)


def message_ids() -> list[str]:
    """Every text of the forms and errors, for :mod:`explorer.catalog`."""
    texts = [field.label for fields in FORMS.values() for field in fields]
    texts += [field.hint for fields in FORMS.values() for field in fields if field.hint]
    texts += [message for _pattern, message in REASONS]
    return [*dict.fromkeys([*texts, *MESSAGES, *JS_TEXTS.values()])]
