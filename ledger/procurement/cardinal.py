"""Red-flag indicators with the Open Contracting Partnership's Cardinal definitions
(https://github.com/open-contracting/cardinal-rs, ``docs/cli/indicators/R/*.md`` and
``src/indicators/r*.rs``), named by their codes, computed from compiled releases. Pure: no I/O.

Per contracting process: R003, R018, R028, R030, R035, R036, R044, and R024 / R058 with their
fences (``Q1 - 1.5 IQR`` / ``Q3 + 1.5 IQR`` of the differences between the second-lowest valid bid
and the winning bid) computed from the data itself. Per organisation (over the whole ledger,
:func:`organisation_indicators`): R025 and R048 per tenderer, R038 and R055 per buyer, procuring
entity and tenderer, R044 per tenderer, their fences computed from the data.

R044 and R055 are not in a Cardinal release yet: they follow the ``r044`` branch (documentation
``docs/cli/indicators/R/044.md`` of commit 1891189) and the ``r055`` branch (``src/indicators/r055.rs``
of commit 7e7737f) of cardinal-rs; each function's doc says where this ledger chose among what
those drafts leave open.

Every result carries its evidence: the fields it read, the threshold or fence used, and
:data:`RULE_VERSION`; thresholds come from :class:`Settings` (per deployment, and for R003 per
``procurementMethodDetails`` as Cardinal's settings file allows). A flag is a reason to look
closer, never proof of wrongdoing.
"""

from __future__ import annotations

import configparser
import dataclasses
import datetime
import hashlib
import itertools
import json
import statistics
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .ocds import parse_datetime
from .organisations import key_each, keys_of, organisation_key

#: Version of these rules: part of every result's evidence.
RULE_VERSION = "tenderproof-cardinal/2 (cardinal-rs definitions, 2025; R044, R055 from their draft branches)"

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
    "R044": (
        "Different tenderers of the same process published the same address or the same contact details.",
        "Distintos licitantes del mismo proceso publicaron la misma dirección o los mismos datos de contacto.",
    ),
    "R048": (
        "This supplier was awarded items of unusually many different kinds compared with the others in this ledger.",
        "A este proveedor se le adjudicaron artículos de muchos más tipos distintos que a los demás del registro.",
    ),
    "R055": (
        "The awards from one buyer to one supplier add up to at least the value of the smallest open tender.",
        "Las adjudicaciones de un comprador a un mismo proveedor suman al menos el valor de la licitación abierta más pequeña.",
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
    #: R003's threshold per ``tender.procurementMethod`` (this ledger's addition; details win).
    r003_by_method: dict[str, int] = field(default_factory=dict)
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
    #: R048: the leading digits of an item classification that make one kind of item, a fixed
    #: upper fence (None: Q3 + 1.5 IQR of the data), and the contracting processes a supplier
    #: must have been awarded in to count.
    r048_digits: int = 2
    r048_threshold: int | None = None
    r048_minimum_contracting_processes: int = 20
    #: R055: a fixed minimum amount instead of the smallest open tender's value; the window of
    #: tender-period starts and award dates counted (ISO dates, inclusive; None: unbounded); the
    #: currency compared (None: the first met); the procurement methods whose awards are summed
    #: (empty: all, as Cardinal's draft does).
    r055_threshold: float | None = None
    r055_start_date: str | None = None
    r055_end_date: str | None = None
    r055_currency: str | None = None
    r055_procurement_methods: frozenset[str] = frozenset({"direct", "limited"})

    @classmethod
    def from_ini(cls, text: str, *, source: str = "settings") -> Settings:
        """Settings from a Cardinal settings file (``ocdscardinal init``'s INI format: a
        ``currency`` and ``no_price_comparison_procurement_methods`` at the top, one ``[Rnnn]``
        section per indicator, ``[R003.procurement_method_details]``), plus this ledger's
        ``[R003.procurement_method]`` (a threshold per ``procurementMethod``) and R055's
        ``procurement_methods``. Lists are pipe-separated, as in Cardinal. An unknown section or
        key, or a value of the wrong kind, raises :class:`ValueError` naming ``source``, the
        section and the key."""
        parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are OCDS values
        try:
            parser.read_string("[top]\n" + text, source=source)
        except configparser.Error as exc:
            raise ValueError(f"{source}: is not a settings file: {exc}") from None
        values: dict[str, Any] = {}
        for section in parser.sections():
            if section not in _INI:
                raise ValueError(f"{source}: [{section}]: unknown section, expected one of {sorted(_INI)}")
            for key, raw in parser.items(section, raw=True):
                spec = _INI[section]
                if section.startswith("R003.procurement_method"):
                    name, kind = spec["*"]
                    values.setdefault(name, {})[key] = _ini_value(raw, kind, f"{source}: [{section}] {key}")
                    continue
                if key not in spec:
                    raise ValueError(f"{source}: [{section}] {key}: unknown key, expected one of {sorted(spec)}")
                name, kind = spec[key]
                values[name] = _ini_value(raw, kind, f"{source}: [{section}] {key}")
        return cls(**values)

    def digest(self) -> str:
        """A short digest of these settings (in each stored flag's evidence: which settings made it)."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=sorted)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ini_value(raw: str, kind: str, where: str) -> Any:
    text = raw.strip()
    try:
        if kind == "int":
            value = int(text)
            if value < 0:
                raise ValueError
            return value
        if kind == "float":
            return float(text)
        if kind == "date":
            return datetime.date.fromisoformat(text).isoformat()
        if kind == "set":
            return frozenset(v.strip() for v in text.split("|") if v.strip())
        return text
    except ValueError:
        raise ValueError(f"{where}: expected a {_KIND_WORDS[kind]}, got {raw!r}") from None


_KIND_WORDS = {"int": "natural number", "float": "number", "date": "date (YYYY-MM-DD)", "set": "|-list", "str": "text"}
#: INI section -> key -> (Settings field, kind).
_INI: dict[str, dict[str, tuple[str, str]]] = {
    "top": {
        "currency": ("r055_currency", "str"),
        "no_price_comparison_procurement_methods": ("no_price_comparison_method_details", "set"),
    },
    "R003": {
        "threshold": ("r003_threshold_days", "int"),
        "procurement_methods": ("r003_procurement_methods", "set"),
    },
    "R003.procurement_method_details": {"*": ("r003_by_method_details", "int")},
    "R003.procurement_method": {"*": ("r003_by_method", "int")},
    "R018": {"procurement_methods": ("r018_procurement_methods", "set")},
    "R024": {"threshold": ("r024_threshold", "float")},
    "R025": {"percentile": ("r025_percentile", "int"), "threshold": ("r025_threshold", "float")},
    "R028": {},
    "R030": {},
    "R035": {"threshold": ("r035_threshold", "int")},
    "R036": {},
    "R038": {
        "threshold": ("r038_threshold", "float"),
        "minimum_submitted_bids": ("r038_minimum_submitted_bids", "int"),
        "minimum_contracting_processes": ("r038_minimum_contracting_processes", "int"),
    },
    "R044": {},
    "R048": {
        "digits": ("r048_digits", "int"),
        "threshold": ("r048_threshold", "int"),
        "minimum_contracting_processes": ("r048_minimum_contracting_processes", "int"),
    },
    "R055": {
        "threshold": ("r055_threshold", "float"),
        "start_date": ("r055_start_date", "date"),
        "end_date": ("r055_end_date", "date"),
        "procurement_methods": ("r055_procurement_methods", "set"),
    },
    "R058": {"threshold": ("r058_threshold", "float")},
}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _tender(compiled: dict[str, Any]) -> dict[str, Any]:
    tender = compiled.get("tender")
    return tender if isinstance(tender, dict) else {}


#: The release being read (:func:`reading`) and what was found in it: the indicators ask the same
#: questions of one release many times (its submitted bids, each bid's tenderers' keys, its awards).
_READING: list[Any] = [None, None]


class _Reading:
    """The block of :func:`reading` (a plain context manager: entered three times per release in
    a ledger pass, where a generator-based one cost about 5 % of the pass)."""

    __slots__ = ("_compiled", "_saved")

    def __init__(self, compiled: dict[str, Any]) -> None:
        self._compiled = compiled
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> None:
        if _READING[0] is not self._compiled:  # re-entered for the same release: nothing to do
            self._saved = (_READING[0], _READING[1])
            _READING[0], _READING[1] = self._compiled, {}

    def __exit__(self, *_: object) -> None:
        if self._saved is not None:
            _READING[0], _READING[1] = self._saved
            self._saved = None


def reading(compiled: dict[str, Any]) -> _Reading:
    """While the block runs, what the indicators find in ``compiled`` (its submitted bids with
    their amounts, currencies and tenderers' keys, its awards and which are active or excluding,
    the keys of its active awards' suppliers, its buyer's and procuring entity's keys) is found once
    and kept. Requires ``compiled`` not to be changed in the block; the answers are not to be
    changed by their callers. Re-entrant for the same release."""
    return _Reading(compiled)


def _memo(compiled: dict[str, Any]) -> dict[Any, Any] | None:
    return _READING[1] if _READING[0] is compiled else None


def submitted_bids(compiled: dict[str, Any]) -> list[dict[str, Any]]:
    """Cardinal's submitted bids: ``bids.details`` with a status other than invited or withdrawn."""
    bids = compiled.get("bids")
    details = _dicts(bids.get("details")) if isinstance(bids, dict) else []
    return [b for b in details if isinstance(b.get("status"), str) and b["status"] not in ("invited", "withdrawn")]


@dataclass(slots=True)
class _Bid:
    """One submitted bid as the indicators read it, found once per release (:func:`_bids`).
    Positional and not frozen: one is made per bid of every tender, and keywords or a frozen
    ``__init__`` make that 2-3x dearer (a NamedTuple too, and its fields read slower)."""

    status: str
    amount: int | float | None  # the published number; None when not a number
    currency: str | None  # None when not text
    keys: list[str]  # its tenderers' keys, each once, in order
    listed: int  # how many tenderers it lists
    bid: dict[str, Any]  # the bid itself


def _bids(compiled: dict[str, Any]) -> list[_Bid]:
    """The submitted bids (:func:`submitted_bids`) with what the indicators read of each, found
    once while the release is being read (:func:`reading`): eight indicators read the bids, and
    each used to find the amounts, currencies and tenderers' keys again."""
    memo = _memo(compiled)
    if memo is not None and "facts" in memo:
        return memo["facts"]  # type: ignore[no-any-return]
    found: list[_Bid] = []
    bids = compiled.get("bids")
    details = bids.get("details") if isinstance(bids, dict) else None
    for bid in details if isinstance(details, list) else ():  # submitted_bids(), in the same loop
        if not isinstance(bid, dict):
            continue
        status = bid.get("status")
        if not isinstance(status, str) or status in ("invited", "withdrawn"):
            continue
        value = bid.get("value")
        if isinstance(value, dict):
            amount, currency = value.get("amount"), value.get("currency")
        else:
            amount = currency = None
        tenderers = _dicts(bid.get("tenderers"))
        found.append(
            _Bid(
                status,
                None if isinstance(amount, bool) or not isinstance(amount, int | float) else amount,
                currency if isinstance(currency, str) else None,
                keys_of(compiled, tenderers),
                len(tenderers),
                bid,
            )
        )
    if memo is not None:
        memo["facts"] = found
    return found


def _awards(compiled: dict[str, Any]) -> list[dict[str, Any]]:
    memo = _memo(compiled)
    if memo is not None and "awards" in memo:
        return memo["awards"]  # type: ignore[no-any-return]
    found = _dicts(compiled.get("awards"))
    if memo is not None:
        memo["awards"] = found
    return found


def _award_states(compiled: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    """Whether an award is pending or invalid (Cardinal then excludes the process from R024,
    R025, R035 and R058), and the active awards; found once per release (:func:`reading`)."""
    memo = _memo(compiled)
    if memo is not None and "states" in memo:
        return memo["states"]  # type: ignore[no-any-return]
    awards = _awards(compiled)
    found = (
        any(a.get("status") in ("pending", "invalid") for a in awards),
        [a for a in awards if a.get("status") == "active"],
    )
    if memo is not None:
        memo["states"] = found
    return found


def _active_supplier_keys(compiled: dict[str, Any]) -> list[str]:
    """The keys of the suppliers of the active awards, each once, in order."""
    memo = _memo(compiled)
    if memo is not None and "winners" in memo:
        return memo["winners"]  # type: ignore[no-any-return]
    found = keys_of(
        compiled, [s for a in _awards(compiled) if a.get("status") == "active" for s in _dicts(a.get("suppliers"))]
    )
    if memo is not None:
        memo["winners"] = found
    return found


def _owner_keys(compiled: dict[str, Any]) -> tuple[str | None, str | None]:
    """The keys of the buyer and of the procuring entity as R038 and R055 read them (against the
    release's parties by their ``id`` as text, no shared identifiers set aside), found once per
    release while it is being read (:func:`reading`)."""
    memo = _memo(compiled)
    if memo is not None and "owners" in memo:
        return memo["owners"]  # type: ignore[no-any-return]
    parties = {str(p.get("id")): p for p in _dicts(compiled.get("parties"))}
    found = (
        organisation_key(compiled.get("buyer"), parties),
        organisation_key(_tender(compiled).get("procuringEntity"), parties),
    )
    if memo is not None:
        memo["owners"] = found
    return found


def _note(ocids: list[str], ocid: str) -> None:
    """Add ``ocid`` to a ledger-wide indicator's processes of one organisation: a list in the
    order fed (a tenth of a set's memory at a million tenders), an ocid met again at once not
    added twice; its readers take ``set()`` of it (an ocid fed twice apart is counted once)."""
    if not ocids or ocids[-1] != ocid:
        ocids.append(ocid)


def _evidence(fields: list[str], **values: Any) -> dict[str, Any]:
    return {"fields": fields, "rule_version": RULE_VERSION, **values}


def r003_threshold(tender: dict[str, Any], settings: Settings) -> int:
    """R003's minimum days for ``tender``: by its ``procurementMethodDetails``, else by its
    ``procurementMethod``, else the deployment's threshold."""
    details, method = tender.get("procurementMethodDetails"), tender.get("procurementMethod")
    if isinstance(details, str) and details in settings.r003_by_method_details:
        return settings.r003_by_method_details[details]
    if isinstance(method, str) and method in settings.r003_by_method:
        return settings.r003_by_method[method]
    return settings.r003_threshold_days


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
    threshold = r003_threshold(tender, settings)
    if days < threshold:
        return _evidence(
            [
                "tender.tenderPeriod.startDate",
                "tender.tenderPeriod.endDate",
                "tender.procurementMethod",
                "tender.procurementMethodDetails",
            ],
            days=days,
            threshold_days=threshold,
            procurementMethod=method if isinstance(method, str) else None,
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


def r035(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """All except winning bid disqualified: one tenderer has valid bids, it is the supplier of
    every active award, and at least ``threshold`` other tenderers had bids disqualified.
    Excluded when an award is pending or invalid."""
    if _award_states(compiled)[0]:
        return None
    bids = _bids(compiled)
    valid = {k for b in bids if b.status == "valid" for k in b.keys}
    if len(valid) != 1:
        return None
    winners = set(_active_supplier_keys(compiled))
    if winners != valid:
        return None
    disqualified = {k for b in bids if b.status == "disqualified" for k in b.keys} - valid
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
    if not any(a.get("status") == "active" for a in _awards(compiled)):
        return None
    lowest: tuple[float, str] | None = None
    currency: str | None = None
    has_valid = False
    for b in _bids(compiled):
        if b.amount is None or b.currency is None:
            continue
        currency = currency or b.currency
        if b.currency != currency:
            continue
        if lowest is None or b.amount < lowest[0]:
            lowest = (float(b.amount), b.status)
        has_valid = has_valid or b.status == "valid"
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
    for b in _bids(compiled):
        if b.amount is not None and b.currency is not None:
            by_price.setdefault((float(b.amount), b.currency), set()).update(b.keys)
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
    winners = set(_active_supplier_keys(compiled))
    late: set[str] = set()
    for b in _bids(compiled):
        if b.status != "valid":
            continue
        received = parse_datetime(b.bid.get("date"))
        if received is None or (received.tzinfo is None) != (deadline.tzinfo is None):
            continue
        if received > deadline:
            late.update(k for k in b.keys if k in winners)
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
    excluded, active = _award_states(compiled)
    if excluded or len(active) != 1:
        return None
    suppliers = _dicts(active[0].get("suppliers"))
    if len(suppliers) != 1:
        return None
    winner_keys = keys_of(compiled, suppliers)
    if not winner_keys:
        return None
    valid: list[tuple[float, str, str]] = []
    for b in _bids(compiled):
        if b.listed > 1:
            return None
        if b.status == "valid" and b.keys and b.amount is not None and b.currency is not None:
            valid.append((float(b.amount), b.currency, b.keys[0]))
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


T = TypeVar("T")


class _Accumulator(Generic[T]):
    """A ledger-wide indicator fed one compiled release at a time (:meth:`add`), its fences and
    flags computed at the end (:meth:`result`): several are fed in the same streaming pass
    (:func:`ledger_indicators`), and memory holds only their aggregates."""

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        raise NotImplementedError

    def result(self) -> T:
        raise NotImplementedError

    def merge(self, later: Any) -> None:
        """Take in ``later``, an accumulator of the same kind fed the releases that come after
        this one's in the ledger's order (a later partition): afterwards this one is as if it had
        been fed both streams, one after the other, and gives exactly the same :meth:`result`."""
        raise NotImplementedError


def _fed(accumulator: _Accumulator[T], releases: Iterable[tuple[str, dict[str, Any]]]) -> T:
    for ocid, compiled in releases:
        accumulator.add(ocid, compiled)
    return accumulator.result()


def r024_r058(
    releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """R024 (price close to winning bid: difference <= the lower fence) and R058 (heavily
    discounted bid: difference >= the upper fence), the fences computed from the differences of
    all ``releases``: ``{"R024": {ocid: evidence}, "R058": {ocid: evidence}}``."""
    return _fed(_R024R058(settings or Settings()), releases)


class _R024R058(_Accumulator[dict[str, dict[str, dict[str, Any]]]]):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        #: Per tender with a difference, in the order fed: its ocid, the difference, the winner's
        #: and the second-lowest bidder's keys (columns, not a dict of tuples: a tenth of the
        #: memory at a million tenders; each key string kept once, :attr:`_keys`).
        self._ocids: list[str] = []
        self._values = array("d")
        self._winners: list[str] = []
        self._seconds: list[str] = []
        self._keys: dict[str, str] = {}

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        if (difference := winning_difference(compiled)) is not None:
            value, winner, second = difference
            keys = self._keys
            self._ocids.append(ocid)
            self._values.append(value)
            self._winners.append(keys.setdefault(winner, winner))
            self._seconds.append(keys.setdefault(second, second))

    def merge(self, later: _R024R058) -> None:
        self._ocids += later._ocids
        self._values += later._values
        keys = self._keys
        self._winners += [keys.setdefault(k, k) for k in later._winners]
        self._seconds += [keys.setdefault(k, k) for k in later._seconds]

    def _differences(self) -> tuple[list[float], Iterable[tuple[str, float, str, str]]]:
        """Every difference (for the fences) and (ocid, difference, winner, second) in ocid order,
        one per ocid (the last fed wins, as in a dict keyed by ocid)."""
        ocids = self._ocids
        rows = zip(ocids, self._values, self._winners, self._seconds, strict=True)
        if all(a < b for a, b in zip(ocids, itertools.islice(ocids, 1, None), strict=False)):
            return self._values.tolist(), rows  # fed in ocid order, each once: the ledger's pass
        by_ocid = {ocid: (value, winner, second) for ocid, value, winner, second in rows}
        return [v[0] for v in by_ocid.values()], ((o, *v) for o, v in sorted(by_ocid.items()))

    def result(self) -> dict[str, dict[str, dict[str, Any]]]:
        settings = self._settings
        values, differences = self._differences()
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
        for ocid, difference, winner, second in differences:
            if low is not None and difference <= low:
                out["R024"][ocid] = _evidence(
                    fields,
                    difference=round(difference, 6),
                    lower_fence=round(low, 6),
                    winner=winner,
                    second_lowest=second,
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
    return _fed(_R025(settings or Settings()), releases)


class _R025(_Accumulator[dict[str, dict[str, Any]]]):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._valid: dict[str, int] = {}
        self._won: dict[str, int] = {}

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        excluded, active = _award_states(compiled)
        if excluded or len(active) > 1:
            return
        if any(len(_dicts(a.get("suppliers"))) > 1 for a in active):
            return
        bids = _bids(compiled)
        if any(b.listed > 1 for b in bids):
            return
        winners = set(_active_supplier_keys(compiled))
        valid, won = self._valid, self._won
        for b in bids:
            if b.status != "valid":
                continue
            for key in b.keys:
                valid[key] = valid.get(key, 0) + 1
                won[key] = won.get(key, 0) + (key in winners)

    def merge(self, later: _R025) -> None:
        valid, won = self._valid, self._won
        for key, count in later._valid.items():
            valid[key] = valid.get(key, 0) + count
            won[key] = won.get(key, 0) + later._won[key]

    def result(self) -> dict[str, dict[str, Any]]:
        settings, valid, won = self._settings, self._valid, self._won
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


#: R044: the address fields compared (lower-cased and trimmed, joined), and the contact point's.
_ADDRESS_FIELDS = ("streetAddress", "locality", "region", "postalCode", "countryName")
_CONTACT_FIELDS = ("name", "email", "telephone", "faxNumber", "url")


def _address(party: dict[str, Any]) -> str | None:
    address = party.get("address")
    if not isinstance(address, dict):
        return None
    street = address.get("streetAddress")
    if not isinstance(street, str) or not street.strip():
        return None
    return " ".join([v.strip().lower() for f in _ADDRESS_FIELDS if isinstance(v := address.get(f), str)])


#: The release R044's pairs were last found for, and its pairs: R044 per process and per tenderer
#: ask about each release in turn (the release is kept, so its identity is not reused while cached).
_LAST_SIMILARITIES: list[Any] = [None, {}]


def _similarities(compiled: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """R044's pairs of tenderers (organisation keys, sorted) of one release with what they share:
    ``address`` and/or ``contactPoint.<field>``. Requires the release not to be changed in place
    between calls about it (the last release's pairs are cached); the result is not to be changed."""
    if _LAST_SIMILARITIES[0] is compiled:
        found: dict[tuple[str, str], list[str]] = _LAST_SIMILARITIES[1]
        return found
    found = _similarities_of(compiled)
    _LAST_SIMILARITIES[:] = [compiled, found]
    return found


def _similarities_of(compiled: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    parties = {str(p.get("id")): p for p in _dicts(compiled.get("parties"))}
    candidates = [p for p in parties.values() if isinstance(p.get("roles"), list) and "tenderer" in p["roles"]]
    if len(candidates) < 2:
        return {}
    # a pair shares an address or a contact point field only if two candidates have the same
    # address or two have contact points: otherwise there is no pair, whatever their keys
    known = [a for a in map(_address, candidates) if a is not None]
    if len(set(known)) == len(known) and sum(isinstance(p.get("contactPoint"), dict) for p in candidates) < 2:
        return {}
    tenderers: dict[str, dict[str, Any]] = {}
    for key, party in zip(key_each(compiled, candidates), candidates, strict=True):
        if key is not None:
            tenderers.setdefault(key, party)
    out: dict[tuple[str, str], list[str]] = {}
    ordered = sorted(tenderers.items())
    addresses = {key: _address(party) for key, party in ordered}
    for i, (key_a, a) in enumerate(ordered):
        for key_b, b in ordered[i + 1 :]:
            shared: list[str] = []
            if addresses[key_a] is not None and addresses[key_a] == addresses[key_b]:
                shared.append("address")
            contact_a, contact_b = a.get("contactPoint"), b.get("contactPoint")
            if isinstance(contact_a, dict) and isinstance(contact_b, dict):
                for name in _CONTACT_FIELDS:
                    value = contact_a.get(name)
                    if isinstance(value, str) and value.strip() and value.strip() == str(contact_b.get(name)).strip():
                        shared.append(f"contactPoint.{name}")
            if shared:
                out[(key_a, key_b)] = shared
    return out


def r044(compiled: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """Business similarities between suppliers: different tenderers (parties with the
    ``tenderer`` role) of one process have the same address (``streetAddress`` published;
    street, locality, region, postal code and country compared lower-cased and trimmed) or the
    same value of any contact point field (name, email, telephone, fax, url). Cardinal's draft
    code stops at the first contact field both publish; its documentation says "any contact
    point fields", which is what is done here."""
    pairs = _similarities(compiled)
    if not pairs:
        return None
    return _evidence(
        ["parties.roles", "parties.address", "parties.contactPoint", "parties.identifier"],
        pairs=[{"tenderers": list(pair), "shared": shared} for pair, shared in sorted(pairs.items())],
    )


def r044_tenderers(releases: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """R044 per tenderer: the tenderers sharing an address or contact details with another
    tenderer of the same process, with the processes and the organisations they share them with."""
    return _fed(_R044Tenderers(), releases)


class _R044Tenderers(_Accumulator[dict[str, dict[str, Any]]]):
    def __init__(self) -> None:
        #: Per tenderer: the processes (in the order fed, :func:`_note`) and the tenderers it is similar to.
        self._found: dict[str, tuple[list[str], set[str]]] = {}

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        for (a, b), _ in _similarities(compiled).items():
            for key, other in ((a, b), (b, a)):
                row = self._found.get(key)
                if row is None:
                    row = self._found[key] = ([], set())
                _note(row[0], ocid)
                row[1].add(other)

    def merge(self, later: _R044Tenderers) -> None:
        for key, found in later._found.items():
            row = self._found.setdefault(key, ([], set()))
            row[0].extend(found[0])
            row[1].update(found[1])

    def result(self) -> dict[str, dict[str, Any]]:
        return {
            key: _evidence(
                ["parties.roles", "parties.address", "parties.contactPoint", "parties.identifier"],
                ocids=sorted(set(row[0])),
                similar_to=sorted(row[1]),
            )
            for key, row in sorted(self._found.items())
        }


def r048(releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Heterogeneous supplier, per tenderer: the variety (distinct first ``r048_digits`` digits of
    the classification ids of the items of its active awards, counting only awards to it alone)
    >= the upper fence Q3 + 1.5 IQR of the varieties of the suppliers awarded in at least
    ``r048_minimum_contracting_processes`` processes."""
    return _fed(_R048(settings or Settings()), releases)


class _R048(_Accumulator[dict[str, dict[str, Any]]]):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._counts: dict[str, list[Any]] = {}

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        for award in _awards(compiled):
            suppliers = _dicts(award.get("suppliers"))
            if award.get("status") != "active" or len(suppliers) != 1:
                continue
            keys = keys_of(compiled, suppliers)
            if not keys:
                continue
            for item in _dicts(award.get("items")):
                classification = item.get("classification")
                code = classification.get("id") if isinstance(classification, dict) else None
                if not isinstance(code, str | int) or isinstance(code, bool):
                    continue
                row = self._counts.get(keys[0])
                if row is None:
                    row = self._counts[keys[0]] = [[], set()]
                _note(row[0], ocid)
                row[1].add(str(code)[: self._settings.r048_digits])

    def merge(self, later: _R048) -> None:
        for key, (ocids, prefixes) in later._counts.items():
            row = self._counts.setdefault(key, [[], set()])
            row[0] += ocids
            row[1] |= prefixes

    def result(self) -> dict[str, dict[str, Any]]:
        settings = self._settings
        processes = {k: set(r[0]) for k, r in self._counts.items()}
        eligible = {
            k: r for k, r in self._counts.items() if len(processes[k]) >= settings.r048_minimum_contracting_processes
        }
        varieties = {k: float(len(r[1])) for k, r in eligible.items()}
        fence = (
            float(settings.r048_threshold)
            if settings.r048_threshold is not None
            else upper_fence(list(varieties.values()))
        )
        if fence is None:
            return {}
        return {
            key: _evidence(
                ["awards.status", "awards.suppliers", "awards.items.classification.id"],
                variety=int(variety),
                classification_prefixes=sorted(eligible[key][1]),
                digits=settings.r048_digits,
                contracting_processes=len(processes[key]),
                minimum_contracting_processes=settings.r048_minimum_contracting_processes,
                upper_fence=round(fence, 6),
                fence_from="settings"
                if settings.r048_threshold is not None
                else "Q3 + 1.5 IQR of the ledger's varieties",
                ocids=sorted(processes[key]),
            )
            for key, variety in sorted(varieties.items())
            if variety >= fence
        }


def _in_window(text: Any, settings: Settings) -> bool:
    moment = parse_datetime(text)
    if moment is None:
        return False
    if settings.r055_start_date is None and settings.r055_end_date is None:
        return True  # an unbounded window (the default): every dated award and tender
    day = moment.date().isoformat()
    return (settings.r055_start_date is None or day >= settings.r055_start_date) and (
        settings.r055_end_date is None or day <= settings.r055_end_date
    )


def r055(
    releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Awards adding up past the open-procedure amount, per buyer, procuring entity and tenderer:
    the sum of the amounts of the active awards (one supplier each, dated in the window, in the
    compared currency) from one buyer (or procuring entity) to one supplier >= the smallest
    estimated value of the open tenders whose tender period starts in the window (or the fixed
    ``r055_threshold``). As in Cardinal's draft, the first currency met is compared unless one is
    set, and the buyer and the supplier are both flagged. The draft names its sums "direct
    awarded amounts" but reads every award; here the awards summed are those of the procurement
    methods in ``r055_procurement_methods`` (direct and limited by default; empty: every award)."""
    return _fed(_R055(settings or Settings()), releases)


class _R055(_Accumulator[dict[str, dict[str, dict[str, Any]]]]):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        #: The currency compared: the settings', else the first met.
        self._currency = settings.r055_currency
        #: Per currency (the compared one is known only once every partition is merged): the
        #: smallest open tender (value, ocid; the first met wins ties) and, per role, per (owner,
        #: supplier), the amounts summed in the order met (so that their float sum is the same
        #: however the ledger was partitioned) and the processes.
        self._smallest_open: dict[str, tuple[float, str]] = {}
        self._sums: dict[str, dict[str, dict[tuple[str, str], list[Any]]]] = {}

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        settings = self._settings
        tender = _tender(compiled)
        method = tender.get("procurementMethod")
        period = tender.get("tenderPeriod")
        value = tender.get("value")
        if method == "open" and isinstance(period, dict) and _in_window(period.get("startDate"), settings):
            amount = value.get("amount") if isinstance(value, dict) else None
            unit = value.get("currency") if isinstance(value, dict) else None
            if isinstance(amount, int | float) and not isinstance(amount, bool) and isinstance(unit, str):
                self._currency = self._currency or unit
                smallest = self._smallest_open.get(unit)
                if smallest is None or amount < smallest[0]:
                    self._smallest_open[unit] = (float(amount), ocid)
        if settings.r055_procurement_methods and method not in settings.r055_procurement_methods:
            return
        buyer, entity = _owner_keys(compiled)
        owners = {"buyer": buyer, "procuring_entity": entity}
        for award in _awards(compiled):
            suppliers = _dicts(award.get("suppliers"))
            value = award.get("value")
            amount = value.get("amount") if isinstance(value, dict) else None
            unit = value.get("currency") if isinstance(value, dict) else None
            if award.get("status") != "active" or len(suppliers) != 1 or not _in_window(award.get("date"), settings):
                continue
            if isinstance(amount, bool) or not isinstance(amount, int | float) or not isinstance(unit, str):
                continue
            self._currency = self._currency or unit
            if settings.r055_currency is not None and unit != settings.r055_currency:
                continue
            supplier = keys_of(compiled, suppliers)
            if not supplier:
                continue
            sums = self._sums.get(unit)
            if sums is None:
                sums = self._sums[unit] = {"buyer": {}, "procuring_entity": {}}
            for role, owner in owners.items():
                if owner is not None:
                    row = sums[role].get((owner, supplier[0]))
                    if row is None:
                        row = sums[role][(owner, supplier[0])] = [[], []]
                    row[0].append(float(amount))
                    _note(row[1], ocid)

    def merge(self, later: _R055) -> None:
        self._currency = self._currency or later._currency
        for unit, smallest in later._smallest_open.items():
            mine = self._smallest_open.get(unit)
            if mine is None or smallest[0] < mine[0]:
                self._smallest_open[unit] = smallest
        for unit, by_role in later._sums.items():
            sums = self._sums.setdefault(unit, {"buyer": {}, "procuring_entity": {}})
            for role, pairs in by_role.items():
                for pair, (amounts, ocids) in pairs.items():
                    row = sums[role].setdefault(pair, [[], []])
                    row[0].extend(amounts)
                    row[1] += ocids

    def result(self) -> dict[str, dict[str, dict[str, Any]]]:
        settings, currency = self._settings, self._currency
        smallest_open = self._smallest_open.get(currency) if currency is not None else None
        if settings.r055_threshold is not None:
            minimum, fence_from = settings.r055_threshold, "settings"
        elif smallest_open is not None:
            minimum, fence_from = smallest_open[0], f"the smallest open tender's value ({smallest_open[1]})"
        else:
            return {}
        out: dict[str, dict[str, dict[str, Any]]] = {}
        fields = ["awards.status", "awards.suppliers", "awards.value", "awards.date", "buyer", "tender.procuringEntity"]
        fields += ["tender.procurementMethod", "tender.value", "tender.tenderPeriod.startDate"]
        by_role = self._sums.get(currency, {}) if currency is not None else {}
        for role, pairs in by_role.items():
            for (owner, winner), (amounts, ocids) in sorted(pairs.items()):
                total = 0.0
                for amount in amounts:  # in the order met, as one stream would have added them
                    total += amount
                if total < minimum:
                    continue
                for side, key, other in ((role, owner, winner), ("tenderer", winner, owner)):
                    evidence = out.setdefault(side, {}).get(key)
                    if evidence is None:
                        evidence = _evidence(
                            fields,
                            minimum_amount=minimum,
                            minimum_from=fence_from,
                            currency=currency,
                            window=[settings.r055_start_date, settings.r055_end_date],
                            procurement_methods=sorted(settings.r055_procurement_methods),
                            pairs=[],
                        )
                        out[side][key] = evidence
                    evidence["pairs"].append(
                        {"with": other, "as": role, "total": round(total, 2), "ocids": sorted(set(ocids))}
                    )
        return out


TENDER_INDICATORS = {
    "R003": r003,
    "R018": r018,
    "R028": r028,
    "R030": r030,
    "R035": r035,
    "R036": r036,
    "R044": r044,
}


def evaluate(compiled: dict[str, Any], settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """The contracting-process indicators one compiled release raises: code -> evidence."""
    settings = settings or Settings()
    out: dict[str, dict[str, Any]] = {}
    with reading(compiled):
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
    return _fed(_R038(settings or Settings()), releases)


class _R038(_Accumulator[dict[str, dict[str, dict[str, Any]]]]):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._counts: dict[str, dict[str, list[Any]]] = {"buyer": {}, "procuring_entity": {}, "tenderer": {}}

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        bids = _bids(compiled)
        if not bids:
            return
        counts = self._counts
        disqualified = sum(1 for b in bids if b.status == "disqualified")
        for role, key in zip(("buyer", "procuring_entity"), _owner_keys(compiled), strict=True):
            if key is not None:
                row = counts[role].get(key)
                if row is None:
                    row = counts[role][key] = [0, 0, []]
                row[0] += disqualified
                row[1] += len(bids)
                _note(row[2], ocid)
        tenderers = counts["tenderer"]
        for b in bids:
            for key in b.keys:
                found = tenderers.get(key)
                if found is None:  # not setdefault: its new row would be built for every bid
                    found = tenderers[key] = [0, 0, []]
                found[0] += b.status == "disqualified"
                found[1] += 1
                ocids = found[2]
                if not ocids or ocids[-1] != ocid:
                    ocids.append(ocid)

    def merge(self, later: _R038) -> None:
        for role, rows in later._counts.items():
            mine = self._counts[role]
            for key, (disqualified, submitted, ocids) in rows.items():
                row = mine.setdefault(key, [0, 0, []])
                row[0] += disqualified
                row[1] += submitted
                row[2] += ocids

    def result(self) -> dict[str, dict[str, dict[str, Any]]]:
        settings = self._settings
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for role, rows in self._counts.items():
            if role == "tenderer":
                eligible = {k: r for k, r in rows.items() if r[1] >= settings.r038_minimum_submitted_bids}
            else:
                eligible = {
                    k: r for k, r in rows.items() if len(set(r[2])) >= settings.r038_minimum_contracting_processes
                }
            ratios = {k: r[0] / r[1] for k, r in eligible.items()}
            fence = (
                settings.r038_threshold if settings.r038_threshold is not None else upper_fence(list(ratios.values()))
            )
            if fence is None:
                continue
            flagged = {
                key: _evidence(
                    ["bids.details.status", "bids.details.tenderers", "buyer", "tender.procuringEntity"],
                    ratio=round(ratio, 6),
                    disqualified=eligible[key][0],
                    submitted=eligible[key][1],
                    upper_fence=round(fence, 6),
                    fence_from="settings"
                    if settings.r038_threshold is not None
                    else "Q3 + 1.5 IQR of the ledger's ratios",
                    ocids=sorted(set(eligible[key][2])),
                )
                for key, ratio in ratios.items()
                if ratio >= fence and ratio > 0
            }
            if flagged:
                out[role] = flagged
        return out


#: The roles an organisation is flagged in (Cardinal's Buyer, ProcuringEntity, Tenderer).
ROLES = ("buyer", "procuring_entity", "tenderer")


def organisation_indicators(
    releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Every organisation-level indicator over ``releases`` (all the ledger's compiled releases,
    iterated once, every indicator fed in the same pass): ``{role: {organisation key: {code:
    evidence}}}`` for R025, R038, R044, R048, R055."""
    return _fed(_Organisations(settings or Settings()), releases)


class _Organisations(_Accumulator[dict[str, dict[str, dict[str, dict[str, Any]]]]]):
    def __init__(self, settings: Settings) -> None:
        self._r025, self._r038, self._r044 = _R025(settings), _R038(settings), _R044Tenderers()
        self._r048, self._r055 = _R048(settings), _R055(settings)

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        for accumulator in (self._r025, self._r038, self._r044, self._r048, self._r055):
            accumulator.add(ocid, compiled)

    def merge(self, later: _Organisations) -> None:
        self._r025.merge(later._r025)
        self._r038.merge(later._r038)
        self._r044.merge(later._r044)
        self._r048.merge(later._r048)
        self._r055.merge(later._r055)

    def result(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {role: {} for role in ROLES}

        def put(role: str, code: str, found: dict[str, dict[str, Any]]) -> None:
            for key, evidence in found.items():
                out[role].setdefault(key, {})[code] = evidence

        put("tenderer", "R025", self._r025.result())
        for role, found in self._r038.result().items():
            put(role, "R038", found)
        put("tenderer", "R044", self._r044.result())
        put("tenderer", "R048", self._r048.result())
        for role, found in self._r055.result().items():
            put(role, "R055", found)
        return out


def _by_process(found: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for code, flagged in found.items():
        for ocid, evidence in flagged.items():
            out.setdefault(ocid, {})[code] = evidence
    return out


def process_fence_indicators(
    releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """The contracting-process indicators whose fences come from the whole ledger (R024, R058):
    ``{ocid: {code: evidence}}``."""
    return _by_process(r024_r058(releases, settings))


class LedgerIndicators(
    _Accumulator[tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, dict[str, dict[str, Any]]]]]]
):
    """Every ledger-wide indicator (:func:`process_fence_indicators` and
    :func:`organisation_indicators`) fed one release at a time (:meth:`add`). The ledger can be
    cut into partitions in its order, each fed to its own accumulator (in another process), and
    the partitions' accumulators merged in that order (:meth:`merge`): the result is exactly that
    of one stream. Picklable (sent back by a process pool's workers)."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        self._fences, self._organisations = _R024R058(settings), _Organisations(settings)

    def add(self, ocid: str, compiled: dict[str, Any]) -> None:
        with reading(compiled):
            self._fences.add(ocid, compiled)
            self._organisations.add(ocid, compiled)

    def merge(self, later: LedgerIndicators) -> None:
        self._fences.merge(later._fences)
        self._organisations.merge(later._organisations)

    def result(
        self,
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, dict[str, dict[str, Any]]]]]:
        """``(by process, by organisation)``: ``{ocid: {code: evidence}}`` for R024 and R058,
        ``{role: {organisation key: {code: evidence}}}`` for the others."""
        return _by_process(self._fences.result()), self._organisations.result()


def ledger_indicators(
    releases: Iterable[tuple[str, dict[str, Any]]], settings: Settings | None = None
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, dict[str, dict[str, Any]]]]]:
    """:func:`process_fence_indicators` and :func:`organisation_indicators` in ONE streaming pass
    over ``releases`` (each release read once, every indicator fed from it; memory: the
    indicators' aggregates, not the releases): ``(by process, by organisation)``, the same
    results as the two functions called apart."""
    return _fed(LedgerIndicators(settings), releases)
