"""Red-flag indicators with the Open Contracting Partnership's Cardinal definitions
(https://github.com/open-contracting/cardinal-rs, ``docs/cli/indicators/R/*.md`` and
``src/indicators/r*.rs``), named by their codes, computed from compiled releases. Pure: no I/O.

Done here (issue 18, first part): R003, R018, R035, R036 per contracting process and R038 per
buyer, procuring entity and tenderer with its upper fence computed from the data itself
(``Q3 + 1.5 IQR`` of the ratios). Not yet: R024, R025, R028, R030, R048, R058, R044, R055, and
the wiring of these into the stored flags, the explorer and the downloads (the catalogue of
:mod:`redflags` is still what the ledger stores and shows).

Every result carries its evidence: the fields it read, the threshold or fence used, and
:data:`RULE_VERSION`; thresholds come from :class:`Settings` (per deployment, and for R003 per
``procurementMethodDetails`` as Cardinal's settings file allows). A flag is a reason to look
closer, never proof of wrongdoing.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .ocds import parse_datetime
from .organisations import keys_of, organisation_key

#: Version of these rules: part of every result's evidence.
RULE_VERSION = "tenderproof-cardinal/1 (cardinal-rs definitions, 2025)"

#: Plain-words explanations (English, Spanish): what the data showed, never an accusation.
EXPLANATIONS: dict[str, tuple[str, str]] = {
    "R003": (
        "The time to submit bids was shorter than the minimum set for this kind of procedure.",
        "El plazo para presentar ofertas fue más corto que el mínimo fijado para este tipo de procedimiento.",
    ),
    "R018": (
        "Only one tenderer took part in a competitive procedure.",
        "Solo un licitante participó en un procedimiento competitivo.",
    ),
    "R035": (
        "Every bid except the winner's was disqualified.",
        "Se descalificaron todas las ofertas salvo la del ganador.",
    ),
    "R036": (
        "The lowest bid was disqualified although an award was made.",
        "La oferta más baja fue descalificada aunque se adjudicó el contrato.",
    ),
    "R038": (
        "This organisation's share of disqualified bids is unusually high compared with the others in this ledger.",
        "La proporción de ofertas descalificadas de esta organización es inusualmente alta frente a las demás del registro.",
    ),
}
NOT_PROOF = (
    "A red flag is a reason to look closer, not proof of wrongdoing.",
    "Una alerta es un motivo para mirar con más atención, no una prueba de irregularidad.",
)


@dataclass(frozen=True)
class Settings:
    """Thresholds (Cardinal's defaults), per deployment."""

    r003_threshold_days: int = 15
    #: R003's threshold per ``tender.procurementMethodDetails`` (e.g. a country's legal minimums).
    r003_by_method_details: dict[str, int] = field(default_factory=dict)
    #: R003 only for these ``tender.procurementMethod`` values (empty: all).
    r003_procurement_methods: frozenset[str] = frozenset()
    r018_procurement_methods: frozenset[str] = frozenset({"open", "selective"})
    r035_threshold: int = 1
    #: R036: procurement method details whose prices are predetermined (no price comparison).
    no_price_comparison_method_details: frozenset[str] = frozenset()
    #: R038: a fixed upper fence instead of Q3 + 1.5 IQR (None: computed from the data).
    r038_threshold: float | None = None
    r038_minimum_submitted_bids: int = 2
    r038_minimum_contracting_processes: int = 2


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _tender(compiled: dict[str, Any]) -> dict[str, Any]:
    tender = compiled.get("tender")
    return tender if isinstance(tender, dict) else {}


def submitted_bids(compiled: dict[str, Any]) -> list[dict[str, Any]]:
    """Cardinal's submitted bids: ``bids.details`` with a status other than invited or withdrawn."""
    bids = compiled.get("bids")
    details = _dicts(bids.get("details")) if isinstance(bids, dict) else []
    return [b for b in details if isinstance(b.get("status"), str) and b["status"] not in ("invited", "withdrawn")]


def _evidence(fields: list[str], **values: Any) -> dict[str, Any]:
    return {"fields": fields, "rule_version": RULE_VERSION, **values}


def r003(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Short submission period: ``tenderPeriod`` end - start in whole days < the threshold."""
    tender = _tender(compiled)
    method = tender.get("procurementMethod")
    if settings.r003_procurement_methods and method not in settings.r003_procurement_methods:
        return None
    period = tender.get("tenderPeriod") if isinstance(tender.get("tenderPeriod"), dict) else {}
    assert isinstance(period, dict)
    start, end = parse_datetime(period.get("startDate")), parse_datetime(period.get("endDate"))
    if start is None or end is None or (start.tzinfo is None) != (end.tzinfo is None):
        return None  # missing data: not flagged
    days = (end - start).days if end >= start else -((start - end).days)
    details = tender.get("procurementMethodDetails")
    threshold = (
        settings.r003_by_method_details.get(details, settings.r003_threshold_days)
        if isinstance(details, str)
        else settings.r003_threshold_days
    )
    if days < threshold:
        return _evidence(
            ["tender.tenderPeriod.startDate", "tender.tenderPeriod.endDate", "tender.procurementMethodDetails"],
            days=days,
            threshold_days=threshold,
            procurementMethodDetails=details if isinstance(details, str) else None,
        )
    return None


def r018(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Single bid received: ``numberOfTenderers`` is 1 in a competitive procurement method."""
    tender = _tender(compiled)
    method = tender.get("procurementMethod")
    number = tender.get("numberOfTenderers")
    if method in settings.r018_procurement_methods and number == 1 and not isinstance(number, bool):
        return _evidence(
            ["tender.procurementMethod", "tender.numberOfTenderers"],
            numberOfTenderers=1,
            procurementMethod=method,
            competitive_methods=sorted(settings.r018_procurement_methods),
        )
    return None


def _tenderer_keys(compiled: dict[str, Any], bid: dict[str, Any]) -> list[str]:
    return keys_of(compiled, _dicts(bid.get("tenderers")))


def r035(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """All except winning bid disqualified: one tenderer has valid bids, it is the supplier of
    every active award, and at least ``threshold`` other tenderers had bids disqualified.
    Excluded when an award is pending or invalid."""
    awards = _dicts(compiled.get("awards"))
    if any(a.get("status") in ("pending", "invalid") for a in awards):
        return None
    bids = submitted_bids(compiled)
    valid = {k for b in bids if b.get("status") == "valid" for k in _tenderer_keys(compiled, b)}
    if len(valid) != 1:
        return None
    winners = set(
        keys_of(compiled, [s for a in awards if a.get("status") == "active" for s in _dicts(a.get("suppliers"))])
    )
    if winners != valid:
        return None
    disqualified = {k for b in bids if b.get("status") == "disqualified" for k in _tenderer_keys(compiled, b)} - valid
    if len(disqualified) >= settings.r035_threshold:
        return _evidence(
            ["bids.details.status", "bids.details.tenderers", "awards.status", "awards.suppliers"],
            winner=sorted(valid)[0],
            disqualified_tenderers=len(disqualified),
            threshold=settings.r035_threshold,
        )
    return None


def r036(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Lowest bid disqualified: an active award, valid bids with amounts, and the lowest
    submitted bid (in the first currency met) is disqualified. Excluded when prices are predetermined."""
    if _tender(compiled).get("procurementMethodDetails") in settings.no_price_comparison_method_details:
        return None
    if not any(a.get("status") == "active" for a in _dicts(compiled.get("awards"))):
        return None
    lowest: tuple[float, str] | None = None
    currency: str | None = None
    has_valid = False
    for bid in submitted_bids(compiled):
        value = bid.get("value")
        amount = value.get("amount") if isinstance(value, dict) else None
        bid_currency = value.get("currency") if isinstance(value, dict) else None
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not isinstance(bid_currency, str):
            continue
        currency = currency or bid_currency
        if bid_currency != currency:
            continue
        if lowest is None or amount < lowest[0]:
            lowest = (float(amount), str(bid.get("status")))
        has_valid = has_valid or bid.get("status") == "valid"
    if lowest is not None and has_valid and lowest[1] == "disqualified":
        return _evidence(
            ["awards.status", "bids.details.status", "bids.details.value"], lowest_amount=lowest[0], currency=currency
        )
    return None


TENDER_INDICATORS = {"R003": r003, "R018": r018, "R035": r035, "R036": r036}


def evaluate(compiled: dict[str, Any], settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """The contracting-process indicators one compiled release raises: code -> evidence."""
    settings = settings or Settings()
    out: dict[str, dict[str, Any]] = {}
    for code, rule in TENDER_INDICATORS.items():
        found = rule(compiled, settings)
        if found is not None:
            out[code] = found
    return out


def upper_fence(values: list[float]) -> float | None:
    """Cardinal's upper fence Q3 + 1.5 IQR of ``values`` (None with fewer than 2 values)."""
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q3 + 1.5 * (q3 - q1)


def r038(
    releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Excessive disqualified bids, per buyer, procuring entity and tenderer, over ``releases``
    ((ocid, compiled release) pairs): ``{"buyer"|"procuring_entity"|"tenderer": {key: evidence}}``
    for the flagged organisations (ratio >= the upper fence computed from all ratios)."""
    settings = settings or Settings()
    counts: dict[str, dict[str, list[Any]]] = {"buyer": {}, "procuring_entity": {}, "tenderer": {}}
    for ocid, compiled in releases:
        bids = submitted_bids(compiled)
        if not bids:
            continue
        disqualified = sum(1 for b in bids if b.get("status") == "disqualified")
        tender = _tender(compiled)
        parties = {str(p.get("id")): p for p in _dicts(compiled.get("parties"))}
        for role, reference in (("buyer", compiled.get("buyer")), ("procuring_entity", tender.get("procuringEntity"))):
            key = organisation_key(reference, parties)
            if key is not None:
                row = counts[role].setdefault(key, [0, 0, set()])
                row[0] += disqualified
                row[1] += len(bids)
                row[2].add(ocid)
        for bid in bids:
            for key in _tenderer_keys(compiled, bid):
                row = counts["tenderer"].setdefault(key, [0, 0, set()])
                row[0] += bid.get("status") == "disqualified"
                row[1] += 1
                row[2].add(ocid)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for role, rows in counts.items():
        if role == "tenderer":
            eligible = {k: r for k, r in rows.items() if r[1] >= settings.r038_minimum_submitted_bids}
        else:
            eligible = {k: r for k, r in rows.items() if len(r[2]) >= settings.r038_minimum_contracting_processes}
        ratios = {k: r[0] / r[1] for k, r in eligible.items()}
        fence = settings.r038_threshold if settings.r038_threshold is not None else upper_fence(list(ratios.values()))
        if fence is None:
            continue
        flagged = {
            key: _evidence(
                ["bids.details.status", "bids.details.tenderers", "buyer", "tender.procuringEntity"],
                ratio=round(ratio, 6),
                disqualified=eligible[key][0],
                submitted=eligible[key][1],
                upper_fence=round(fence, 6),
                fence_from="settings" if settings.r038_threshold is not None else "Q3 + 1.5 IQR of the ledger's ratios",
                ocids=sorted(eligible[key][2]),
            )
            for key, ratio in ratios.items()
            if ratio >= fence and ratio > 0
        }
        if flagged:
            out[role] = flagged
    return out
