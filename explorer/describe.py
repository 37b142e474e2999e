"""Plain-language lines for a tender's events: who did what, with which value, from the payload
(OCDS 1.1 objects, see ledger.procurement.payloads). Pure; the templates translate the labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: What each event type means, in English (the msgids of the translations).
EVENT_LABELS: dict[str, str] = {
    "tender.planned": "Tender planned",
    "tender.published": "Tender published",
    "tender.amended": "Tender amended",
    "tender.clarified": "Clarification published",
    "bid.committed": "Sealed bid committed",
    "bid.revealed": "Bid revealed",
    "tender.cancelled": "Tender cancelled",
    "award.issued": "Award issued",
    "award.challenged": "Award challenged",
    "contract.signed": "Contract signed",
    "contract.amended": "Contract amended",
    "contract.payment": "Payment made",
    "contract.completed": "Contract completed",
    "officer.registered": "Officer registered",
    "officer.revoked": "Officer revoked",
    "privacy.withholding": "Withholding order",
}

#: The roles an organisation raises red flags in (Cardinal's Buyer, ProcuringEntity, Tenderer).
ROLE_LABELS: dict[str, str] = {
    "buyer": "Buyer",
    "procuring_entity": "Procuring entity",
    "tenderer": "Tenderer",
    "supplier": "Supplier",
}
STATUS_LABELS: dict[str, str] = {
    "planning": "Planning",
    "planned": "Planned",
    "active": "Open",
    "cancelled": "Cancelled",
    "unsuccessful": "Unsuccessful",
    "complete": "Complete",
    "withdrawn": "Withdrawn",
}


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    #: The document's own digest when the publisher gave one (OCDS has no hash field; we read
    #: ``hash`` / ``sha256`` if present), else None.
    digest: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class Part:
    """One award, contract or payment of an imported release: to whom, how much, in its own currency."""

    #: "award", "contract" or "payment" (the templates translate it).
    kind: str
    who: list[str]
    amount: float | None
    currency: str | None
    status: str | None = None


@dataclass(frozen=True, slots=True)
class Described:
    label: str
    who: list[str] = field(default_factory=list)
    amount: float | None = None
    currency: str | None = None
    detail: str | None = None
    documents: list[Document] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)


def _names(parties: Any) -> list[str]:
    if not isinstance(parties, list):
        return []
    return [
        str(p.get("name") or p.get("id")) for p in parties if isinstance(p, dict) and (p.get("name") or p.get("id"))
    ]


def _value(obj: Any) -> tuple[float | None, str | None]:
    value = obj.get("value") if isinstance(obj, dict) else None
    if isinstance(value, dict) and isinstance(value.get("amount"), int | float):
        currency = value.get("currency")
        return float(value["amount"]), currency if isinstance(currency, str) else None
    return None, None


def _documents(payload: dict[str, Any]) -> list[Document]:
    found: list[Document] = []
    for key in ("tender", "award", "contract"):
        section = payload.get(key)
        docs = section.get("documents") if isinstance(section, dict) else None
        for doc in docs if isinstance(docs, list) else []:
            if not isinstance(doc, dict):
                continue
            digest = doc.get("sha256") or doc.get("hash")
            found.append(
                Document(
                    title=str(doc.get("title") or doc.get("id") or "document"),
                    digest=str(digest) if digest else None,
                    url=str(doc["url"]) if isinstance(doc.get("url"), str) else None,
                )
            )
    return found


def describe(event_type: str, payload: dict[str, Any] | None) -> Described:
    """The plain-language line of one event (``payload`` None when withheld)."""
    label = EVENT_LABELS.get(event_type, event_type)
    if payload is None:
        return Described(label)
    who: list[str] = []
    amount: float | None = None
    currency: str | None = None
    detail: str | None = None
    tender = payload.get("tender") if isinstance(payload.get("tender"), dict) else None
    if event_type.startswith("tender.") and tender is not None:
        amount, currency = _value(tender)
        detail = tender.get("title") if isinstance(tender.get("title"), str) else None
        buyer = payload.get("buyer")
        if isinstance(buyer, dict):
            who = _names([buyer])
    elif event_type == "tender.planned" and isinstance(payload.get("buyer"), dict):
        who = _names([payload["buyer"]])
    elif event_type == "bid.committed":
        who = _names([payload.get("bidder")])
    elif event_type == "bid.revealed" and isinstance(payload.get("bid"), dict):
        who = _names(payload["bid"].get("tenderers"))
        amount, currency = _value(payload["bid"])
    elif event_type.startswith("award.") and isinstance(payload.get("award"), dict):
        who = _names(payload["award"].get("suppliers"))
        amount, currency = _value(payload["award"])
    elif event_type == "contract.payment" and isinstance(payload.get("transaction"), dict):
        amount, currency = _value(payload["transaction"])
        payee = payload["transaction"].get("payee")
        who = _names([payee]) if isinstance(payee, dict) else []
    elif event_type.startswith("contract.") and isinstance(payload.get("contract"), dict):
        amount, currency = _value(payload["contract"])
        detail = payload["contract"].get("title") if isinstance(payload["contract"].get("title"), str) else None
    if event_type == "tender.planned" and isinstance(payload.get("buyer"), dict) and not who:
        who = _names([payload["buyer"]])
    return Described(label, who, amount, currency, detail, _documents(payload))


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _money(obj: dict[str, Any], *keys: str) -> tuple[float | None, str | None]:
    for key in keys:
        value = obj.get(key)
        if (
            isinstance(value, dict)
            and isinstance(value.get("amount"), int | float)
            and not isinstance(value.get("amount"), bool)
        ):
            currency = value.get("currency")
            return float(value["amount"]), currency if isinstance(currency, str) else None
    return None, None


def describe_release(event_type: str, release: dict[str, Any]) -> Described:
    """The plain-language line of an imported event: its release as published (OCDS 1.0 or 1.1).
    Every award, contract and payment the release carries is a :class:`Part` with its supplier
    (payee) and amount in its own currency."""
    label = EVENT_LABELS.get(event_type, event_type)
    tender = release.get("tender") if isinstance(release.get("tender"), dict) else {}
    assert isinstance(tender, dict)
    amount, currency = _money(tender, "value")
    detail = tender.get("title") if isinstance(tender.get("title"), str) else None
    buyer = release.get("buyer")
    who = _names([buyer]) if isinstance(buyer, dict) and event_type.startswith("tender.") else []
    parts: list[Part] = []
    awards = _dicts(release.get("awards"))
    suppliers_of = {a.get("id"): _names(a.get("suppliers")) for a in awards}
    for award in awards:
        money = _money(award, "value")
        parts.append(Part("award", _names(award.get("suppliers")), *money, _status(award)))
    for contract in _dicts(release.get("contracts")):
        money = _money(contract, "value")
        parts.append(Part("contract", suppliers_of.get(contract.get("awardID"), []), *money, _status(contract)))
        implementation = contract.get("implementation")
        for payment in _dicts(implementation.get("transactions") if isinstance(implementation, dict) else None):
            paid = _money(payment, "value", "amount")  # OCDS 1.0 named it amount
            payee = payment.get("payee") or payment.get("receiverOrganization")
            parts.append(Part("payment", _names([payee]) if isinstance(payee, dict) else [], *paid))
    documents = _documents({"tender": tender})
    for key in ("awards", "contracts"):
        for part in _dicts(release.get(key)):
            documents += _documents({"tender": part})
    if detail is None and parts and not tender:
        detail = next((p.get("title") for p in awards if isinstance(p.get("title"), str)), None)
    return Described(label, who, amount, currency, detail, documents, parts)


def _status(obj: dict[str, Any]) -> str | None:
    status = obj.get("status")
    return status if isinstance(status, str) else None


#: One sentence per red flag saying what this tender's data showed (msgids; placeholders filled
#: with locale-formatted values by explorer.pages.flag_items).
FLAG_EVIDENCE: dict[str, str] = {
    "single_bidder": "Only one bid was received in an open or selective procedure ({method}).",
    "short_tender_period": "Bids could be submitted for {days} days (fewer than {threshold}).",
    "award_above_estimate": "Awarded {awarded} against an estimate of {estimate} ({ratio} of it).",
    "contract_amended_soon_after_award": "Contract {contract} was amended {days} days after its award (fewer than {threshold}).",
    "repeat_supplier": "{suppliers} won at least {threshold} tenders of this buyer.",
}
