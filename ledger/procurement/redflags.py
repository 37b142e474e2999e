"""Integrity red flags: a small catalogue of indicators computed from each tender's data.

The indicators and their titles follow the Open Contracting Partnership's guide "Red flags for
integrity: giving the green light to open data solutions" (2016) where they match it. Each is
computed from the tender's OCDS compiled release (imported tenders) or from the same figures as
the tender's rules keep them (tenders recorded natively, :func:`compiled_of_state`), so both kinds
raise them alike:

- ``single_bidder``: the tender received exactly one bid (``tender.numberOfTenderers``, else the
  tenderers or bids listed) although its method was open or selective;
- ``short_tender_period``: the tender period lasted less than :data:`SHORT_TENDER_PERIOD_DAYS`;
- ``award_above_estimate``: the live awards add up to more than the estimate by more than
  :data:`AWARD_ABOVE_ESTIMATE_MARGIN` (same currency only);
- ``contract_amended_soon_after_award``: a contract was amended within
  :data:`AMENDED_SOON_DAYS` of its award (or of its signature when the award has no date);
- ``repeat_supplier``: a supplier of the tender won at least :data:`REPEAT_SUPPLIER_MIN_WINS`
  tenders of the same buyer, buyers and suppliers keyed by identifier (:mod:`organisations`:
  scheme and id where published, normalised name as a fallback, placeholder ids such as "1" not
  trusted), counted across the whole ledger when asked, never stored.

The per-tender flags are written with the tender's projection (``tender_flags``), each supplier of
its live awards with its buyer (``tender_suppliers``) and the count of tenders each supplier won
from each buyer (``supplier_wins``, moved in the same transaction), so :func:`flag_counts` reads an
index of the flags and the few repeated pairs, not every tender.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from ledger.store.db import insert_many, upsert
from ledger.store.schema import supplier_wins, tender_suppliers
from ledger.store.schema import tender_flags as flags_table

from . import cardinal, organisations
from .ocds import parse_datetime
from .query import _connection
from .rules import TenderState

#: A tender period shorter than this many days is short (the EU's shortest accelerated open
#: procedure allows 15 days).
SHORT_TENDER_PERIOD_DAYS = 15
#: Awards above the estimate by more than this fraction of it raise ``award_above_estimate``.
AWARD_ABOVE_ESTIMATE_MARGIN = 0.0
#: A contract amended within this many days of its award raises ``contract_amended_soon_after_award``.
AMENDED_SOON_DAYS = 30
#: A supplier winning at least this many tenders of one buyer raises ``repeat_supplier``.
REPEAT_SUPPLIER_MIN_WINS = 3
#: Procurement methods in which a single bid is a warning sign.
COMPETITIVE_METHODS = frozenset({"open", "selective"})


@dataclass(frozen=True)
class RedFlag:
    """One indicator of the catalogue."""

    code: str
    title: str
    description: str


FLAGS: tuple[RedFlag, ...] = (
    RedFlag(
        "single_bidder",
        "Single bid received",
        "An open or selective tender received exactly one bid (numberOfTenderers, else the tenderers or bids listed).",
    ),
    RedFlag(
        "short_tender_period",
        "Short time frame for bid submission",
        f"The tender period (startDate to endDate) lasted less than {SHORT_TENDER_PERIOD_DAYS} days.",
    ),
    RedFlag(
        "award_above_estimate",
        "Award value higher than the estimated value",
        "The awards not cancelled add up to more than the tender's estimated value, in the same currency.",
    ),
    RedFlag(
        "contract_amended_soon_after_award",
        "Contract amended shortly after award",
        f"A contract was amended within {AMENDED_SOON_DAYS} days of its award (or of its signature).",
    ),
    RedFlag(
        "repeat_supplier",
        "Same supplier wins repeatedly from one buyer",
        f"A supplier of this tender won at least {REPEAT_SUPPLIER_MIN_WINS} tenders of the same buyer.",
    ),
)
#: Cardinal's contracting-process indicators (:mod:`cardinal`, its definitions and default
#: thresholds), stored and shown with the others under their Cardinal codes.
CARDINAL_TITLES: dict[str, str] = {
    "R003": "Short submission period (R003)",
    "R018": "Single bid received (R018)",
    "R028": "Identical bid prices (R028)",
    "R030": "Late bid won (R030)",
    "R035": "All except winning bid disqualified (R035)",
    "R036": "Lowest bid disqualified (R036)",
}
FLAGS += tuple(RedFlag(code, title, cardinal.EXPLANATIONS[code][0]) for code, title in CARDINAL_TITLES.items())
CODES: tuple[str, ...] = tuple(flag.code for flag in FLAGS)
#: The settings of Cardinal's indicators this deployment uses (defaults: Cardinal's).
CARDINAL_SETTINGS = cardinal.Settings()
#: Live award statuses (OCDS award.status): those that count as won.
_LIVE_AWARD = frozenset({"active", "pending", None})


def _instant(text: Any) -> datetime | None:
    """An OCDS date-time with its offset (a naive one cannot be compared: None)."""
    moment = parse_datetime(text)
    return moment if moment is not None and moment.tzinfo is not None else None


def _amount(value: Any) -> tuple[float, str | None] | None:
    if not isinstance(value, dict):
        return None
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    currency = value.get("currency")
    return float(amount), currency if isinstance(currency, str) else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def live_awards(compiled: dict[str, Any]) -> list[dict[str, Any]]:
    """The awards of a compiled release that are not cancelled or unsuccessful."""
    return [a for a in _dicts(compiled.get("awards")) if a.get("status") in _LIVE_AWARD]


def evaluate(compiled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-tender flags (all but ``repeat_supplier``) a compiled release raises: code -> evidence."""
    out: dict[str, dict[str, Any]] = {}
    tender = compiled.get("tender") if isinstance(compiled.get("tender"), dict) else {}
    assert isinstance(tender, dict)
    bidders = _bidders(compiled, tender)
    method = tender.get("procurementMethod")
    if bidders == 1 and method in COMPETITIVE_METHODS:
        out["single_bidder"] = {"tenderers": 1, "procurementMethod": method}
    period = tender.get("tenderPeriod") if isinstance(tender.get("tenderPeriod"), dict) else {}
    assert isinstance(period, dict)
    start, end = _instant(period.get("startDate")), _instant(period.get("endDate"))
    if start is not None and end is not None and end >= start:  # zero length: the shortest of all
        days = (end - start).total_seconds() / 86400
        if days < SHORT_TENDER_PERIOD_DAYS:
            out["short_tender_period"] = {"days": round(days, 2), "threshold_days": SHORT_TENDER_PERIOD_DAYS}
    estimate = _amount(tender.get("value"))
    awards = live_awards(compiled)
    if estimate is not None and estimate[0] > 0 and awards:
        values = [_amount(a.get("value")) for a in awards]
        same = [v[0] for v in values if v is not None and v[1] == estimate[1]]
        if same and sum(same) > estimate[0] * (1 + AWARD_ABOVE_ESTIMATE_MARGIN):
            out["award_above_estimate"] = {
                "estimate": estimate[0],
                "awarded": sum(same),
                "currency": estimate[1],
                "ratio": round(sum(same) / estimate[0], 4),
            }
    soon = _amended_soon(compiled)
    if soon is not None:
        out["contract_amended_soon_after_award"] = soon
    out.update(cardinal.evaluate(compiled, CARDINAL_SETTINGS))
    return out


def _bidders(compiled: dict[str, Any], tender: dict[str, Any]) -> int | None:
    number = tender.get("numberOfTenderers")
    if isinstance(number, int) and not isinstance(number, bool):
        return number
    tenderers = _dicts(tender.get("tenderers"))
    if tenderers:
        return len({t.get("id") or t.get("name") for t in tenderers})
    bids = compiled.get("bids") if isinstance(compiled.get("bids"), dict) else {}
    assert isinstance(bids, dict)
    details = _dicts(bids.get("details"))
    return len(details) if details else None


def _amended_soon(compiled: dict[str, Any]) -> dict[str, Any] | None:
    award_dates = {a.get("id"): _instant(a.get("date")) for a in _dicts(compiled.get("awards"))}
    for contract in _dicts(compiled.get("contracts")):
        since = award_dates.get(contract.get("awardID")) or _instant(contract.get("dateSigned"))
        if since is None:
            continue
        for amendment in _dicts(contract.get("amendments")):
            when = _instant(amendment.get("date"))
            if when is not None and when >= since and (when - since).days < AMENDED_SOON_DAYS:
                return {
                    "contract": contract.get("id"),
                    "award": contract.get("awardID"),
                    "days": round((when - since).total_seconds() / 86400, 2),
                    "threshold_days": AMENDED_SOON_DAYS,
                }
    return None


def suppliers(compiled: dict[str, Any]) -> list[str]:
    """The organisation keys (:mod:`organisations`: scheme/id, else normalised name) of the
    suppliers of the live awards, each once, in award order."""
    return organisations.keys_of(compiled, [s for a in live_awards(compiled) for s in _dicts(a.get("suppliers"))])


def compiled_of_state(state: TenderState) -> dict[str, Any]:
    """The figures of a natively recorded tender's state, in the shape of an OCDS compiled release."""
    tender: dict[str, Any] = {"procurementMethod": state.method}
    if state.value_amount is not None:
        tender["value"] = {"amount": state.value_amount, "currency": state.currency}
    if state.tender_start or state.tender_end:
        tender["tenderPeriod"] = {"startDate": state.tender_start, "endDate": state.tender_end}
    if state.commitments:
        tender["numberOfTenderers"] = len(state.commitments)
    awards = [
        {
            "id": award_id,
            "status": award.status,
            "value": {"amount": award.amount, "currency": award.currency},
            "suppliers": [{"id": i, "name": n} for i, n in zip(award.supplier_ids, award.supplier_names, strict=True)],
            "date": award.issued_at,
        }
        for award_id, award in state.awards.items()
    ]
    contracts = [
        {
            "id": contract_id,
            "awardID": contract.award_id,
            "dateSigned": contract.signed_at,
            "amendments": [{"date": contract.amended_at}] if contract.amended_at else [],
        }
        for contract_id, contract in state.contracts.items()
    ]
    return {"ocid": state.ocid, "tender": tender, "awards": awards, "contracts": contracts}


def store(conn: Connection, tenders: list[tuple[str, str | None, dict[str, Any]]]) -> None:
    """Replace the stored flags and buyer-supplier rows of each (ocid, buyer id, compiled release),
    and move the suppliers' win counts (``supplier_wins``) accordingly."""
    ocids = [ocid for ocid, _, _ in tenders]
    s = tender_suppliers.c
    old = Counter(
        (r.buyer_id, r.supplier) for r in conn.execute(select(s.buyer_id, s.supplier).where(s.ocid.in_(ocids)))
    )
    conn.execute(delete(flags_table).where(flags_table.c.ocid.in_(ocids)))
    conn.execute(delete(tender_suppliers).where(s.ocid.in_(ocids)))
    flags: list[dict[str, str]] = []
    pairs: list[dict[str, str]] = []
    for ocid, buyer_id, compiled in tenders:
        raised = evaluate(compiled)
        flags += [{"ocid": ocid, "code": code, "evidence": json.dumps(evidence)} for code, evidence in raised.items()]
        # the buyer by identifier (scheme/id, else normalised name); a natively recorded tender's
        # buyer id is the ledger's own
        buyer_id = organisations.buyer_key(compiled) or buyer_id
        if buyer_id is not None:
            pairs += [
                {"ocid": ocid, "supplier": name[:1024], "buyer_id": buyer_id[:256]} for name in suppliers(compiled)
            ]
    if flags:
        insert_many(conn, flags_table, flags)
    if pairs:
        insert_many(conn, tender_suppliers, pairs)
    change = Counter((p["buyer_id"], p["supplier"]) for p in pairs)
    change.subtract(old)
    moved = [{"buyer_id": b, "supplier": n, "wins": d} for (b, n), d in sorted(change.items()) if d]
    if moved:
        add = upsert(
            conn,
            supplier_wins,
            keys=["buyer_id", "supplier"],
            set_=lambda new: {"wins": supplier_wins.c.wins + new.wins},
        )
        conn.execute(add, moved)


def tender_flags(source: Connection | Engine, ocid: str) -> list[dict[str, Any]]:
    """The flags one tender raises, in catalogue order: ``[{"code", "evidence"}]`` ([] when none
    or when the tender is unknown)."""
    s = tender_suppliers.c
    with _connection(source) as conn:
        stored = {
            row.code: json.loads(row.evidence)
            for row in conn.execute(
                select(flags_table.c.code, flags_table.c.evidence).where(flags_table.c.ocid == ocid)
            )
        }
        w = supplier_wins.c
        repeated = conn.execute(
            select(w.buyer_id, w.supplier, w.wins)
            .join(tender_suppliers, (s.buyer_id == w.buyer_id) & (s.supplier == w.supplier))
            .where(s.ocid == ocid, w.wins >= REPEAT_SUPPLIER_MIN_WINS)
            .order_by(w.supplier)
        ).all()
        if repeated:
            stored["repeat_supplier"] = {
                "buyer_id": repeated[0].buyer_id,
                "suppliers": [{"supplier": r.supplier, "wins": int(r.wins)} for r in repeated],
                "threshold_wins": REPEAT_SUPPLIER_MIN_WINS,
            }
    return [{"code": code, "evidence": stored[code]} for code in CODES if code in stored]


def flag_counts(source: Connection | Engine) -> dict[str, int]:
    """Code -> number of tenders raising it; every code of :data:`FLAGS` is present (0 allowed)."""
    s = tender_suppliers.c
    out = dict.fromkeys(CODES, 0)
    with _connection(source) as conn:
        for code, count in conn.execute(select(flags_table.c.code, func.count()).group_by(flags_table.c.code)).all():
            if code in out:
                out[code] = int(count)
        w = supplier_wins.c
        repeat = (
            select(func.count(func.distinct(s.ocid)))
            .select_from(supplier_wins)
            .join(tender_suppliers, (s.buyer_id == w.buyer_id) & (s.supplier == w.supplier))
            .where(w.wins >= REPEAT_SUPPLIER_MIN_WINS)
        )
        out["repeat_supplier"] = int(conn.execute(repeat).scalar_one())
    return out
