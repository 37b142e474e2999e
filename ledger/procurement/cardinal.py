"""Red-flag indicators with the Open Contracting Partnership's Cardinal definitions
(https://github.com/open-contracting/cardinal-rs, ``docs/cli/indicators/R/*.md`` and
``src/indicators/r*.rs``), named by their codes, computed from compiled releases. Pure: no I/O.

Done here (issue 18, first part): R003, R018, R028, R030, R035, R036 per contracting process;
R024 and R058 per contracting process with their fences (``Q1 - 1.5 IQR`` / ``Q3 + 1.5 IQR`` of
the differences between the second-lowest valid bid and the winning bid) computed from the data
itself; R025 and R038 per tenderer (R038 also per buyer and procuring entity) with their fences
from the data. Not yet: R048 (needs item classifications), R044, R055, and the wiring of these into the stored flags, the explorer and the downloads (the catalogue of
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
    "R024": (
        "The second-lowest valid bid was unusually close to the winning bid compared with other tenders in this ledger.",
        "La segunda oferta válida más baja estuvo inusualmente cerca de la ganadora frente a otras licitaciones del registro.",
    ),
    "R025": (
        "This tenderer submits many bids but wins unusually few of them compared with the others in this ledger.",
        "Este licitante presenta muchas ofertas pero gana inusualmente pocas frente a los demás del registro.",
    ),
    "R028": (
        "Different tenderers submitted bids with exactly the same price.",
        "Distintos licitantes presentaron ofertas con exactamente el mismo precio.",
    ),
    "R030": (
        "A bid received after the submission deadline was accepted and won.",
        "Una oferta recibida después del plazo fue aceptada y ganó.",
    ),
    "R058": (
        "The winning bid was unusually far below the next valid bid compared with other tenders in this ledger.",
        "La oferta ganadora fue inusualmente más baja que la siguiente oferta válida frente a otras licitaciones del registro.",
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
    #: R024 / R058: fixed fences instead of the data's (None: computed).
    r024_threshold: float | None = None
    r058_threshold: float | None = None
    #: R025: the percentile of valid bids that makes a top tenderer, and a fixed lower fence.
    r025_percentile: int = 75
    r025_threshold: float | None = None


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


def r028(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Identical bid prices: different tenderers submitted bids of the same amount and currency.
    Excluded when prices are predetermined."""
    if _tender(compiled).get("procurementMethodDetails") in settings.no_price_comparison_method_details:
        return None
    by_price: dict[tuple[float, str], set[str]] = {}
    for bid in submitted_bids(compiled):
        value = bid.get("value")
        amount = value.get("amount") if isinstance(value, dict) else None
        currency = value.get("currency") if isinstance(value, dict) else None
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not isinstance(currency, str):
            continue
        by_price.setdefault((float(amount), currency), set()).update(_tenderer_keys(compiled, bid))
    same = {price: keys for price, keys in by_price.items() if len(keys) > 1}
    if not same:
        return None
    return _evidence(
        ["bids.details.value", "bids.details.tenderers"],
        prices=[{"amount": a, "currency": c, "tenderers": sorted(k)} for (a, c), k in sorted(same.items())],
    )


def r030(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Late bid won: a valid bid received after the submission deadline (``tenderPeriod.endDate``)
    whose tenderer is a supplier of an active award."""
    period = _tender(compiled).get("tenderPeriod")
    deadline = parse_datetime(period.get("endDate")) if isinstance(period, dict) else None
    if deadline is None:
        return None
    winners = set(
        keys_of(
            compiled,
            [
                s
                for a in _dicts(compiled.get("awards"))
                if a.get("status") == "active"
                for s in _dicts(a.get("suppliers"))
            ],
        )
    )
    late: set[str] = set()
    for bid in submitted_bids(compiled):
        received = parse_datetime(bid.get("date"))
        if bid.get("status") != "valid" or received is None or (received.tzinfo is None) != (deadline.tzinfo is None):
            continue
        if received > deadline:
            late.update(k for k in _tenderer_keys(compiled, bid) if k in winners)
    if late:
        return _evidence(
            ["tender.tenderPeriod.endDate", "bids.details.date", "bids.details.status", "awards.suppliers"],
            deadline=period.get("endDate") if isinstance(period, dict) else None,
            tenderers=sorted(late),
        )
    return None


def winning_difference(compiled: dict[str, Any]) -> tuple[float, str, str] | None:
    """(second-lowest valid bid - winning bid) / winning bid, the winner and the second-lowest
    bidder, with Cardinal's exclusions (an award pending or invalid, several active awards, an
    award to several suppliers, a bid of several tenderers, a winning bid that is not the
    lowest); None when excluded or when the data are missing."""
    awards = _dicts(compiled.get("awards"))
    if any(a.get("status") in ("pending", "invalid") for a in awards):
        return None
    active = [a for a in awards if a.get("status") == "active"]
    if len(active) != 1 or len(_dicts(active[0].get("suppliers"))) != 1:
        return None
    winner_keys = keys_of(compiled, _dicts(active[0].get("suppliers")))
    if not winner_keys:
        return None
    valid: list[tuple[float, str, str]] = []
    for bid in submitted_bids(compiled):
        tenderers = _tenderer_keys(compiled, bid)
        if len(_dicts(bid.get("tenderers"))) > 1:
            return None
        value = bid.get("value")
        amount = value.get("amount") if isinstance(value, dict) else None
        currency = value.get("currency") if isinstance(value, dict) else None
        if bid.get("status") != "valid" or not tenderers or isinstance(amount, bool):
            continue
        if isinstance(amount, int | float) and isinstance(currency, str):
            valid.append((float(amount), currency, tenderers[0]))
    winning = [v for v in valid if v[2] == winner_keys[0]]
    if not winning:
        return None
    amount, currency, winner = winning[0]
    others = sorted(v for v in valid if v[2] != winner and v[1] == currency)
    if not others or amount <= 0 or others[0][0] < amount:
        return None  # no second bid, or the winning bid is not the lowest
    return (others[0][0] - amount) / amount, winner, others[0][2]


def lower_fence(values: list[float]) -> float | None:
    """Cardinal's lower fence Q1 - 1.5 IQR of ``values`` (None with fewer than 2 values)."""
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1 - 1.5 * (q3 - q1)


def r024_r058(
    releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """R024 (price close to winning bid: difference <= the lower fence) and R058 (heavily
    discounted bid: difference >= the upper fence), the fences computed from the differences of
    all ``releases``: ``{"R024": {ocid: evidence}, "R058": {ocid: evidence}}``."""
    settings = settings or Settings()
    differences = {ocid: d for ocid, compiled in releases if (d := winning_difference(compiled)) is not None}
    values = [d[0] for d in differences.values()]
    low = settings.r024_threshold if settings.r024_threshold is not None else lower_fence(values)
    high = settings.r058_threshold if settings.r058_threshold is not None else upper_fence(values)
    out: dict[str, dict[str, dict[str, Any]]] = {"R024": {}, "R058": {}}
    fields = [
        "awards.status",
        "awards.suppliers",
        "bids.details.status",
        "bids.details.value",
        "bids.details.tenderers",
    ]
    for ocid, (difference, winner, second) in sorted(differences.items()):
        if low is not None and difference <= low:
            out["R024"][ocid] = _evidence(
                fields, difference=round(difference, 6), lower_fence=round(low, 6), winner=winner, second_lowest=second
            )
        if high is not None and difference >= high:
            out["R058"][ocid] = _evidence(
                fields, difference=round(difference, 6), upper_fence=round(high, 6), winner=winner
            )
    return out


def r025(releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Excessive unsuccessful bids, per tenderer: among the top tenderers (valid bids >= the
    ``percentile``-th percentile of the numbers of valid bids), those whose ratio of winning to
    valid bids is <= the lower fence of all ratios. Processes with a pending or invalid award,
    several active awards, an award to several suppliers or a bid of several tenderers are excluded."""
    settings = settings or Settings()
    valid: dict[str, int] = {}
    won: dict[str, int] = {}
    for _, compiled in releases:
        awards = _dicts(compiled.get("awards"))
        active = [a for a in awards if a.get("status") == "active"]
        if any(a.get("status") in ("pending", "invalid") for a in awards) or len(active) > 1:
            continue
        if any(len(_dicts(a.get("suppliers"))) > 1 for a in active):
            continue
        bids = submitted_bids(compiled)
        if any(len(_dicts(b.get("tenderers"))) > 1 for b in bids):
            continue
        winners = set(keys_of(compiled, [s for a in active for s in _dicts(a.get("suppliers"))]))
        for bid in bids:
            if bid.get("status") != "valid":
                continue
            for key in _tenderer_keys(compiled, bid):
                valid[key] = valid.get(key, 0) + 1
                won[key] = won.get(key, 0) + (key in winners)
    if len(valid) < 2:
        return {}
    top = statistics.quantiles(sorted(valid.values()), n=100, method="inclusive")[settings.r025_percentile - 1]
    ratios = {k: won[k] / n for k, n in valid.items()}
    fence = settings.r025_threshold if settings.r025_threshold is not None else lower_fence(list(ratios.values()))
    if fence is None:
        return {}
    return {
        key: _evidence(
            ["bids.details.status", "bids.details.tenderers", "awards.status", "awards.suppliers"],
            valid_bids=valid[key],
            winning_bids=won[key],
            ratio=round(ratios[key], 6),
            top_tenderer_minimum=round(top, 6),
            lower_fence=round(fence, 6),
        )
        for key in sorted(valid)
        if valid[key] >= top and ratios[key] <= fence
    }


TENDER_INDICATORS = {"R003": r003, "R018": r018, "R028": r028, "R030": r030, "R035": r035, "R036": r036}


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
