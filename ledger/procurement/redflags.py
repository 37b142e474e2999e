"""Integrity red flags: a small catalogue of indicators computed from each tender's data.

The indicators and their titles follow the Open Contracting Partnership's guide "Red flags for
integrity: giving the green light to open data solutions" (2016) where they match it. Each is
computed from the tender's OCDS compiled release (imported tenders) or from the same figures as
the tender's rules keep them (tenders recorded natively, :func:`compiled_of_state`), so both kinds
raise them alike:

- ``single_bidder``: the tender received exactly one bid (``tender.numberOfTenderers``, else the
  tenderers or bids listed) although its method was open or selective;
- ``short_tender_period``: the tender period lasted less than R003's minimum for its procurement
  method details or method (:func:`cardinal.r003_threshold`; default :data:`SHORT_TENDER_PERIOD_DAYS`);
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

The indicators whose fences come from the whole ledger (Cardinal's R024 and R058 per tender;
R025, R038, R044, R048 and R055 per buyer, procuring entity and tenderer) cannot be computed from
one tender: :func:`refresh_ledger_flags` computes them over every tender's compiled release and
replaces the stored ones (``ledger_flags``, with the log size they were computed at); the import
runs it at its end, ``tenderproof redflags refresh`` whenever asked (after recording natively, or
after changing the thresholds).

The thresholds are the deployment's (:func:`configure`, called by the API and the command line
with ``TENDERPROOF_REDFLAGS_SETTINGS``, a Cardinal settings file); every process of a deployment
must use the same file. Each stored flag's evidence names the settings' digest.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Delete,
    Engine,
    Select,
    Table,
    Text,
    bindparam,
    case,
    delete,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)

from ledger.core import jsonsafe
from ledger.core.errors import InvalidArgumentError
from ledger.store.db import add_to_counter, insert_many, insert_rows, open_engine, write_transaction
from ledger.store.reader import MAX_STORED_DEPTH
from ledger.store.schema import (
    events,
    ledger_flags,
    log_entries,
    ocds_compiled,
    organisation_rivals,
    supplier_wins,
    tender_index,
    tender_parties,
    tender_suppliers,
)
from ledger.store.schema import tender_flags as flags_table

from . import cardinal, organisations
from .ocds import parse_datetime
from .reading import connection as _connection
from .rules import TenderState

#: A tender period shorter than this many days is short unless the deployment's settings give a
#: minimum for the tender's procurement method or details (the EU's shortest accelerated open
#: procedure allows 15 days; Cardinal's R003 default).
SHORT_TENDER_PERIOD_DAYS = cardinal.Settings().r003_threshold_days
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
    "R044": "Business similarities between suppliers (R044)",
}
#: Cardinal's indicators whose fences come from the whole ledger: per tender (R024, R058) and per
#: organisation (the others), stored by :func:`refresh_ledger_flags`.
LEDGER_TITLES: dict[str, str] = {
    "R024": "Price close to winning bid (R024)",
    "R058": "Heavily discounted bid (R058)",
    "R025": "Excessive unsuccessful bids (R025)",
    "R038": "Excessive disqualified bids (R038)",
    "R044": "Business similarities between suppliers (R044)",
    "R048": "Heterogeneous supplier (R048)",
    "R055": "Awards adding up past the open-procedure amount (R055)",
}
FLAGS += tuple(RedFlag(code, title, cardinal.EXPLANATIONS[code][0]) for code, title in CARDINAL_TITLES.items())
FLAGS += tuple(
    RedFlag(code, title, cardinal.EXPLANATIONS[code][0])
    for code, title in LEDGER_TITLES.items()
    if code in ("R024", "R058")
)
CODES: tuple[str, ...] = tuple(flag.code for flag in FLAGS)
#: The indicators raised by organisations (buyers, procuring entities, tenderers).
ORGANISATION_FLAGS: tuple[RedFlag, ...] = tuple(
    RedFlag(code, LEDGER_TITLES[code], cardinal.EXPLANATIONS[code][0])
    for code in ("R025", "R038", "R044", "R048", "R055")
)
#: The settings of Cardinal's indicators this deployment uses (defaults: Cardinal's); see :func:`configure`.
CARDINAL_SETTINGS = cardinal.Settings()
#: Their digest (in each flag's evidence), computed once per :func:`configure`.
CARDINAL_DIGEST = CARDINAL_SETTINGS.digest()
#: The role under which a tender's ledger-wide flags (R024, R058) are stored in ``ledger_flags``.
PROCESS = "contracting_process"


def configure(settings: cardinal.Settings) -> None:
    """Use ``settings`` (the deployment's thresholds) for the flags computed from now on in this
    process. Called at the edges (API, command line) before anything is recorded."""
    global CARDINAL_SETTINGS, CARDINAL_DIGEST
    CARDINAL_SETTINGS, CARDINAL_DIGEST = settings, settings.digest()


def configure_file(path: str | os.PathLike[str] | None) -> None:
    """:func:`configure` with the thresholds of a Cardinal settings file (the deployment's
    ``TENDERPROOF_REDFLAGS_SETTINGS``; Cardinal's defaults when None). Raises
    :class:`InvalidArgumentError` naming the setting, the file, section and key when it is bad."""
    try:
        configure(settings_of_file(None if path is None else str(path)))
    except ValueError as exc:
        raise InvalidArgumentError("TENDERPROOF_REDFLAGS_SETTINGS", str(exc)) from None


def settings_of_file(path: str | None) -> cardinal.Settings:
    """The thresholds of a Cardinal settings file (Cardinal's defaults when ``path`` is None)."""
    if path is None:
        return cardinal.Settings()
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the red-flag settings: {exc.strerror}") from None
    return cardinal.Settings.from_ini(text, source=str(path))


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
        minimum = cardinal.r003_threshold(tender, CARDINAL_SETTINGS)
        if days < minimum:
            out["short_tender_period"] = {"days": round(days, 2), "threshold_days": minimum}
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
    for code, evidence in cardinal.evaluate(compiled, CARDINAL_SETTINGS).items():
        out[code] = {**evidence, "settings": CARDINAL_DIGEST}
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
    contracts = _dicts(compiled.get("contracts"))
    if not contracts:  # most tenders: no award date to read
        return None
    award_dates = {a.get("id"): _instant(a.get("date")) for a in _dicts(compiled.get("awards"))}
    for contract in contracts:
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
    unnamed = [ocid for ocid, buyer_id, compiled in tenders if buyer_id and not compiled.get("buyer")]
    t = tender_index.c
    # a natively recorded tender's buyer is its state's, named in its projection row
    buyer_names = dict(conn.execute(select(t.ocid, t.buyer_name).where(t.ocid.in_(unnamed))).all()) if unnamed else {}
    store_rows(
        conn,
        ocids,
        [rows_of(ocid, buyer_id, compiled, buyer_name=buyer_names.get(ocid)) for ocid, buyer_id, compiled in tenders],
    )


@dataclass(frozen=True, slots=True)
class Rows:
    """What :func:`store_rows` writes of one tender: its flags (``tender_flags``), its
    buyer-supplier pairs (``tender_suppliers``) and its parties (``tender_parties``). Computed
    from the compiled release alone (:func:`rows_of`, no database: a worker process may compute
    it), so two states whose rows are equal need nothing rewritten."""

    flags: list[dict[str, str]]
    pairs: list[dict[str, str]]
    parties: list[dict[str, str | None]]


def rows_of(ocid: str, buyer_id: str | None, compiled: dict[str, Any], *, buyer_name: str | None = None) -> Rows:
    """The rows of one tender (buyer id and name as for :func:`party_rows`; ``buyer_name``: the
    name of a natively recorded tender's buyer id); a function of its arguments and the configured
    thresholds alone."""
    parties = party_rows(ocid, buyer_id, compiled, buyer_name=buyer_name)
    flags = [
        {"ocid": ocid, "code": code, "evidence": json.dumps(evidence)} for code, evidence in evaluate(compiled).items()
    ]
    # the buyer by identifier (scheme/id, else normalised name); a natively recorded tender's
    # buyer id is the ledger's own
    buyer_key = organisations.buyer_key(compiled) or buyer_id
    pairs = (
        [{"ocid": ocid, "supplier": name[:1024], "buyer_id": buyer_key[:256]} for name in suppliers(compiled)]
        if buyer_key is not None
        else []
    )
    return Rows(flags, pairs, parties)


#: A tender's rows as sets of tuples (each table's key makes its rows a set): flags (code,
#: evidence), pairs (supplier, buyer id), parties (role, key, name, amounts).
RowSets = tuple[frozenset[tuple[Any, ...]], frozenset[tuple[Any, ...]], frozenset[tuple[Any, ...]]]


def row_sets(rows: Rows) -> RowSets:
    """``rows`` as :func:`stored_rows` reads them back."""
    return (
        frozenset((r["code"], r["evidence"]) for r in rows.flags),
        frozenset((r["supplier"], r["buyer_id"]) for r in rows.pairs),
        frozenset((r["role"], r["key"], r["name"], r["amounts"]) for r in rows.parties),
    )


def stored_rows(conn: Connection, ocid: str) -> RowSets:
    """The flags, buyer-supplier pairs and parties the database holds for ``ocid`` (what
    :func:`store_rows` wrote), as :func:`row_sets` gives them; read in one statement."""
    return stored_rows_of(conn, [ocid])[ocid]


def _stored_rows_queries() -> tuple[Select[Any], ...]:
    f, s, p = flags_table.c, tender_suppliers.c, tender_parties.c
    text = null().cast(Text)
    ocids: BindParameter[list[str]] = bindparam("ocids", expanding=True)
    return (
        select(f.ocid, literal_column("'f'"), f.code, f.evidence, text, text).where(f.ocid.in_(ocids)),
        select(s.ocid, literal_column("'s'"), s.supplier, s.buyer_id, text, text).where(s.ocid.in_(ocids)),
        select(p.ocid, literal_column("'p'"), p.role, p.key, p.name, p.amounts).where(p.ocid.in_(ocids)),
    )


#: The stored flags (``'f'``), buyer-supplier pairs (``'s'``) and parties (``'p'``) of the tenders
#: ``ocids`` (an expanding parameter), each row ``(ocid, table, four text columns)``: selects to
#: join with ``UNION ALL`` (:func:`row_sets_read` reads what they give).
STORED_ROWS = _stored_rows_queries()

#: :func:`stored_rows_of`'s statement, built once (built per call, its cache key was computed each
#: time: ~1 % of a single write's CPU).
_STORED_ROWS_OF = union_all(*STORED_ROWS)


def stored_rows_of(conn: Connection, ocids: Sequence[str]) -> dict[str, RowSets]:
    """:func:`stored_rows` of each of ``ocids`` (a batch's, a few hundred at most; empty sets for
    a tender without rows), in one statement."""
    wanted = list(dict.fromkeys(ocids))
    if not wanted:
        return {}
    return row_sets_read(wanted, conn.execute(_STORED_ROWS_OF, {"ocids": wanted}))


def row_sets_read(ocids: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, RowSets]:
    """The :func:`stored_rows` of each of ``ocids`` from ``rows`` as :data:`STORED_ROWS` read them
    (``(ocid, table, ...)``; for a caller that reads them in a statement of its own)."""
    found: dict[str, dict[str, set[tuple[Any, ...]]]] = {o: {"f": set(), "s": set(), "p": set()} for o in ocids}
    for ocid, table, *values in rows:
        found[ocid][table].add(tuple(values) if table == "p" else tuple(values[:2]))
    return {o: (frozenset(t["f"]), frozenset(t["s"]), frozenset(t["p"])) for o, t in found.items()}


def store_rows(
    conn: Connection,
    ocids: Sequence[str],
    tenders: Sequence[Rows],
    *,
    new: Collection[str] = (),
    listed: Mapping[str, Any] | None = None,
    before: Mapping[str, RowSets] | None = None,
) -> None:
    """Replace the stored flags, buyer-supplier pairs and parties of ``ocids`` by ``tenders``' rows
    (of the same tenders), and move the suppliers' win counts (``supplier_wins``) and the
    organisations' rivalries (``organisation_rivals``) accordingly. ``new``: those of ``ocids``
    that have no rows yet (tenders first projected in this transaction), not looked up.
    ``listed``: each tender's ``tender_index.listed_at`` as the caller has just written it (else
    read), kept with its parties. ``before``: the rows of ``ocids`` not in ``new`` as
    :func:`stored_rows_of` read them in this transaction: they are not read again, and a table
    that holds none of them is not deleted from (else they are read, and every table deleted from:
    on PostgreSQL a round trip each, which every member of a group commit's batch waits on)."""
    old: Counter[tuple[Any, Any]] = Counter()
    old_rivals: Counter[tuple[str, str]] = Counter()
    stored = [o for o in ocids if o not in new]
    # SQLite: parties kept in place (_replace_parties); PostgreSQL: replaced, as the other rows
    spare = conn.dialect.name == "sqlite"
    held: list[tuple[str, str, str]] = []
    if stored:
        given = {"ocids": stored}
        if before is None:
            old.update((r.buyer_id, r.supplier) for r in conn.execute(_STORED_PAIRS, given))
            held = [(r.ocid, r.role, r.key) for r in conn.execute(_STORED_PARTIES, given)]
        else:
            old.update((buyer_id, supplier) for o in stored for supplier, buyer_id in before[o][1])
            held = [(o, role, key) for o in stored for role, key, _name, _amounts in before[o][2]]
        old_rivals = rival_pairs((o, key) for o, role, key in held if role in COMPETING)
        emptied = [
            table
            for table, holds in (
                (flags_table, before is None or any(before[o][0] for o in stored)),
                (tender_suppliers, before is None or bool(old)),
                (tender_parties, not spare and (before is None or bool(held))),
            )
            if holds
        ]
        _delete_stored(conn, emptied, given)
    flags = [row for rows in tenders for row in rows.flags]
    pairs = [row for rows in tenders for row in rows.pairs]
    parties = [row for rows in tenders for row in rows.parties]
    if parties and listed is None:
        listed = {row.ocid: row.listed_at for row in conn.execute(_LISTED_AT, {"ocids": list(ocids)})}
    placed = [{**row, "listed_at": (listed or {}).get(str(row["ocid"]))} for row in parties]
    if spare:
        if flags:
            insert_many(conn, flags_table, flags)
        if pairs:
            insert_many(conn, tender_suppliers, pairs)
        _replace_parties(conn, placed, held)
    elif flags or pairs or placed:
        conn.exec_driver_sql(_INSERT_STORED, _by_column(_INSERTED, {"f": flags, "s": pairs, "p": placed}))
    rivals = rival_pairs((row["ocid"], row["key"]) for row in parties if row["role"] in COMPETING)
    rivals.subtract(old_rivals)
    moved_rivals = [{"key": a, "rival": b, "tenders": d} for (a, b), d in sorted(rivals.items()) if d]
    if moved_rivals:
        conn.execute(add_to_counter(conn, organisation_rivals, keys=("key", "rival"), column="tenders"), moved_rivals)
    change = Counter((p["buyer_id"], p["supplier"]) for p in pairs)
    change.subtract(old)
    moved = [{"buyer_id": b, "supplier": n, "wins": d} for (b, n), d in sorted(change.items()) if d]
    if moved:
        conn.execute(add_to_counter(conn, supplier_wins, keys=("buyer_id", "supplier"), column="wins"), moved)


def _by_column(columns: dict[str, tuple[str, ...]], rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """``rows`` of each table (by its prefix in ``columns``) as one list a column, named
    ``prefix_column``: :data:`_INSERT_STORED`'s parameters."""
    return {
        f"{prefix}_{name}": [row[name] for row in rows[prefix]] for prefix, names in columns.items() for name in names
    }


def _delete_stored(conn: Connection, tables: list[Table], given: dict[str, Any]) -> None:
    """Delete the rows of the tenders ``given["ocids"]`` from ``tables``: on PostgreSQL in one
    statement (data-modifying CTEs, one round trip where there was one a table), elsewhere one a
    table."""
    if conn.dialect.name == "postgresql" and len(tables) > 1:
        conn.execute(_deleted_together(tuple(tables)), given)
        return
    for table in tables:
        conn.execute(_DELETE_STORED[table.name], given)


@lru_cache(maxsize=8)
def _deleted_together(tables: tuple[Table, ...]) -> Delete:
    """One statement deleting the rows of the tenders ``ocids`` from each of ``tables`` (built
    once for each set of them)."""
    *first, last = tables
    statement = _DELETE_STORED[last.name]
    for table in first:
        statement = statement.add_cte(_DELETE_STORED[table.name].cte(f"gone_{table.name}"))
    return statement


def _replace_parties(conn: Connection, rows: list[dict[str, Any]], held: list[tuple[str, str, str]]) -> None:
    """SQLite: make the parties of the tenders whose stored party keys are ``held`` (ocid, role,
    key) ``rows``: those no longer there deleted, the others inserted or, where their name, amounts
    or listing time changed, updated; a row that stays as it was is not written. A later release of
    a tender mostly leaves its parties as they were, and rewriting them all (delete, insert) dirtied
    a leaf of the table and of each of its four indexes a row, in the order tenders come, not their
    keys' (bench/RESULTS-import.md, t33i). The rows are those a delete and insert leave; a kept row
    keeps its rowid (the table's storage order is not the insertion order of the rows' last write)."""
    kept = {(r["ocid"], r["role"], r["key"]) for r in rows}
    gone = [{"o": o, "r": role, "k": key} for o, role, key in held if (o, role, key) not in kept]
    if gone:
        conn.execute(_DELETE_PARTY, gone)
    if rows:
        key = ("ocid", "role", "key")
        insert_rows(conn, tender_parties, rows, replace_on=key, replace_when=tuple(k for k in rows[0] if k not in key))


#: Roles in which an organisation competes for a tender (its rivals: the others in these roles).
COMPETING = ("tenderer", "supplier")


def rival_pairs(rows: Iterable[tuple[Any, Any]]) -> Counter[tuple[str, str]]:
    """Each ordered pair of distinct organisations competing in one tender, once per tender, from
    (ocid, key) rows of the roles :data:`COMPETING`."""
    by_tender: dict[str, set[str]] = {}
    for ocid, key in rows:
        by_tender.setdefault(str(ocid), set()).add(str(key))
    return Counter((a, b) for keys in by_tender.values() for a in keys for b in keys if a != b)


def tender_flags(source: Connection | Engine, ocid: str) -> list[dict[str, Any]]:
    """The flags one tender raises, in catalogue order: ``[{"code", "evidence"}]`` ([] when none
    or when the tender is unknown)."""
    s = tender_suppliers.c
    with _connection(source) as conn:
        stored = {
            row.code: jsonsafe.loads(row.evidence, field=f"flag {row.code} of {ocid}", max_depth=MAX_STORED_DEPTH)
            for row in conn.execute(
                select(flags_table.c.code, flags_table.c.evidence).where(flags_table.c.ocid == ocid)
            )
        }
        f = ledger_flags.c
        for row in conn.execute(
            select(f.code, f.evidence).where(f.role == PROCESS, f.subject == ocid[:1024])
        ):  # R024, R058: fences from the whole ledger, as of the last refresh
            stored[row.code] = jsonsafe.loads(
                row.evidence, field=f"flag {row.code} of {ocid}", max_depth=MAX_STORED_DEPTH
            )
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


def flag_rows(of: Select[Any] | None = None) -> Select[tuple[str, str]]:
    """Every (ocid, code) a tender raises, from the three places flags live: the tender's own
    (``tender_flags``), those computed over the whole ledger (``ledger_flags``) and repeat
    suppliers (``supplier_wins`` at or above :data:`REPEAT_SUPPLIER_MIN_WINS`). For the list's
    flag filter and facet (ledger.procurement.query); :func:`flag_counts` counts the same rows.
    With ``of`` (a select of ocids), those of these tenders only: each place is read by their
    keys (a condition on the union's result would read every flag first)."""
    s, f, w = tender_suppliers.c, ledger_flags.c, supplier_wins.c
    own = select(flags_table.c.ocid.label("ocid"), flags_table.c.code.label("code"))
    ledger = select(f.subject.label("ocid"), f.code.label("code")).where(f.role == PROCESS)
    repeat = (
        select(s.ocid.label("ocid"), literal("repeat_supplier").label("code"))
        .select_from(supplier_wins)
        .join(tender_suppliers, (s.buyer_id == w.buyer_id) & (s.supplier == w.supplier))
        .where(w.wins >= REPEAT_SUPPLIER_MIN_WINS)
    )
    if of is not None:
        own, ledger = own.where(flags_table.c.ocid.in_(of)), ledger.where(f.subject.in_(of))
        repeat = repeat.where(s.ocid.in_(of))
    return select(own.union(ledger, repeat).subquery())


def flag_counts(source: Connection | Engine) -> dict[str, int]:
    """Code -> number of tenders raising it; every code of :data:`FLAGS` is present (0 allowed)."""
    s = tender_suppliers.c
    out = dict.fromkeys(CODES, 0)
    with _connection(source) as conn:
        for code, count in conn.execute(select(flags_table.c.code, func.count()).group_by(flags_table.c.code)).all():
            if code in out:
                out[code] = int(count)
        f = ledger_flags.c
        for code, count in conn.execute(select(f.code, func.count()).where(f.role == PROCESS).group_by(f.code)).all():
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


# --- flags over the whole ledger ----------------------------------------------------------------

#: Version of the downloadable evidence documents (:func:`evidence_document`).
EVIDENCE_VERSION = "tenderproof-redflags/1"
#: The stored compiled releases read per query while refreshing (bounded memory per batch).
_REFRESH_BATCH = 2000


def _each_tender(
    engine: Engine, *, after: str = "", through: str | None = None
) -> Iterator[tuple[str, dict[str, Any], TenderState | None]]:
    """Every tender in ocid order (those after ``after`` and up to ``through`` when given), read a
    batch at a time (bounded memory): (ocid, compiled release, None) for an imported one
    (ocdsmerge's compiled release), (ocid, :func:`compiled_of_state`, its state) for a native one.
    A tender's state is read only when it has no compiled release."""
    c, t = ocds_compiled.c, tender_index.c
    state = case((c.compiled.is_(None), t.state), else_=null()).label("state")
    last = after
    while True:
        query = (
            select(t.ocid, state, c.compiled)
            .select_from(tender_index.outerjoin(ocds_compiled, c.ocid == t.ocid))
            .where(t.ocid > last)
            .order_by(t.ocid)
            .limit(_REFRESH_BATCH)
        )
        if through is not None:
            query = query.where(t.ocid <= through)
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            if row.compiled is not None:
                field = f"{row.ocid} compiled release"
                yield row.ocid, jsonsafe.loads(row.compiled, field=field, max_depth=MAX_STORED_DEPTH), None
            else:
                state_of = TenderState.from_json(row.state)
                yield row.ocid, compiled_of_state(state_of), state_of
        if len(rows) < _REFRESH_BATCH:
            return
        last = rows[-1].ocid


def _all_compiled(
    engine: Engine, *, after: str = "", through: str | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every tender's compiled release (imported: ocdsmerge's; native: :func:`compiled_of_state`
    with its buyer) in ocid order (within the bounds of :func:`_each_tender`), streamed."""
    for ocid, compiled, state in _each_tender(engine, after=after, through=through):
        yield ocid, compiled if state is None else _native_compiled(state, compiled)


#: A partition of the ledger: the tenders whose ocid is after the first and up to the second
#: (None: to the end), in the database's order of ocids.
Bounds = tuple[str, str | None]
#: Tenders per worker process below which the ledger is read in this process (starting a worker
#: costs about a second: a small ledger is read faster than that).
POOL_MINIMUM_TENDERS = 50_000
#: Partitions per worker: the pool hands out the next partition to whichever worker is free.
_PARTITIONS_PER_WORKER = 2


def _partitions(engine: Engine, workers: int | None) -> list[Bounds]:
    """The ledger cut into consecutive ocid ranges of about equal size, :data:`_PARTITIONS_PER_WORKER`
    per worker (one range when the ledger is read in this process: ``workers`` 1, an in-memory
    SQLite database, or fewer than :data:`POOL_MINIMUM_TENDERS` tenders per worker when ``workers``
    is None, which takes up to four of this machine's processors)."""
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return [("", None)]
    t = tender_index.c
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(tender_index)).scalar_one())
        if workers is None:
            workers = max(1, min(os.cpu_count() or 1, 4, count // POOL_MINIMUM_TENDERS))
        parts = min(count, workers * _PARTITIONS_PER_WORKER) if workers > 1 else 1
        bounds: list[str] = []
        for i in range(1, parts):
            ocid = conn.execute(select(t.ocid).order_by(t.ocid).offset(i * count // parts).limit(1)).scalar_one()
            if not bounds or ocid > bounds[-1]:
                bounds.append(ocid)
    edges = ["", *bounds]
    return [(after, edges[i + 1] if i + 1 < len(edges) else None) for i, after in enumerate(edges)]


def _partition_pass(
    engine: Engine, bounds: Bounds, settings: cardinal.Settings, own: bool
) -> tuple[cardinal.LedgerIndicators, Counter[str]]:
    """One partition's ledger-wide accumulator and, when ``own``, how many tenders raise each
    of their own flags (:func:`evaluate`)."""
    indicators = cardinal.LedgerIndicators(settings)
    raised: Counter[str] = Counter()
    for ocid, compiled in _all_compiled(engine, after=bounds[0], through=bounds[1]):
        with cardinal.reading(compiled):  # what both ask of the release found once
            if own:
                raised.update(evaluate(compiled).keys())
            indicators.add(ocid, compiled)
    return indicators, raised


def _partition_worker(
    url: str, bounds: Bounds, settings: cardinal.Settings, own: bool
) -> tuple[cardinal.LedgerIndicators, Counter[str]]:
    """:func:`_partition_pass` in a worker process, on an engine of its own."""
    configure(settings)
    engine = open_engine(url, pool_size=1)
    try:
        return _partition_pass(engine, bounds, settings, own)
    finally:
        engine.dispose()


def ledger_pass(
    engine: Engine, settings: cardinal.Settings, *, workers: int | None = None, own: bool = False
) -> tuple[cardinal.LedgerIndicators, Counter[str]]:
    """Read every tender once and feed the ledger-wide indicators (and count each tender's own
    flags when ``own``): in this process, or with ``workers`` processes (None: chosen by
    :func:`_partitions`) each reading consecutive ocid ranges, their accumulators merged in the
    ledger's order, so that the result is exactly that of one reading in this process."""
    ranges = _partitions(engine, workers)
    if len(ranges) == 1:
        return _partition_pass(engine, ranges[0], settings, own)
    url = engine.url.render_as_string(hide_password=False)
    count = len(ranges)
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no engine or lock inherited
    with ProcessPoolExecutor(max_workers=min(count, workers or os.cpu_count() or 1), mp_context=spawn) as pool:
        parts = pool.map(_partition_worker, [url] * count, ranges, [settings] * count, [own] * count)
        merged, raised = next(parts)
        for later, counted in parts:  # in the ledger's order, each merged as it comes and let go
            merged.merge(later)
            raised.update(counted)
    return merged, raised


def reevaluate_tender_flags(engine: Engine) -> int:
    """Recompute every tender's own flags (:func:`evaluate`, with the deployment's current
    settings) and store them as the projection does, a batch per transaction; return how many
    tenders were read."""
    done = 0
    batch: list[tuple[str, dict[str, Any], TenderState | None]] = []
    for found in _each_tender(engine):
        batch.append(found)
        if len(batch) == _REFRESH_BATCH:
            done += _restore(engine, batch)
            batch = []
    return done + (_restore(engine, batch) if batch else 0)


def _restore(engine: Engine, batch: list[tuple[str, dict[str, Any], TenderState | None]]) -> int:
    with write_transaction(engine) as conn:
        rows = []
        for ocid, compiled, state in batch:
            buyer = state.buyer_id if state is not None else _indexed_buyer(conn, ocid)
            rows.append((ocid, buyer, compiled))
        store(conn, rows)
    return len(batch)


def _indexed_buyer(conn: Connection, ocid: str) -> str | None:
    buyer: str | None = conn.execute(
        select(tender_index.c.buyer_id).where(tender_index.c.ocid == ocid)
    ).scalar_one_or_none()
    return buyer


def refresh_ledger_flags(engine: Engine, *, now: datetime, workers: int | None = None) -> dict[str, dict[str, int]]:
    """Compute the ledger-wide indicators (:data:`LEDGER_TITLES`) over every tender with the
    deployment's settings and replace the stored ones (``ledger_flags``) in one transaction;
    return role -> code -> how many are flagged. The ledger is read by ``workers`` processes
    (:func:`ledger_pass`; None: as many as this machine's processors, up to four, on a large
    ledger), with the same results as one."""
    settings = CARDINAL_SETTINGS
    digest = settings.digest()
    with engine.connect() as conn:
        through = int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())
    rows: list[dict[str, Any]] = []

    def add(role: str, subject: str, code: str, evidence: dict[str, Any]) -> None:
        evidence = {**evidence, "settings": digest}
        rows.append(
            {
                "role": role,
                "subject": subject[:1024],
                "code": code,
                "evidence": json.dumps(evidence, ensure_ascii=False, sort_keys=True),
                "through_event": through,
                "computed_at": now,
            }
        )

    # one streaming pass of the ledger feeds every indicator (memory: a batch and their aggregates)
    by_process, by_organisation = ledger_pass(engine, settings, workers=workers)[0].result()
    for ocid, found in by_process.items():
        for code, evidence in found.items():
            add(PROCESS, ocid, code, evidence)
    for role, organisations_found in by_organisation.items():
        for key, found in organisations_found.items():
            for code, evidence in found.items():
                add(role, key, code, evidence)
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        by_code = counts.setdefault(row["role"], {})
        by_code[row["code"]] = by_code.get(row["code"], 0) + 1
    with write_transaction(engine) as conn:
        conn.execute(delete(ledger_flags))
        for start in range(0, len(rows), _REFRESH_BATCH):
            insert_many(conn, ledger_flags, rows[start : start + _REFRESH_BATCH])
    return counts


def _ledger_rows(conn: Connection, role: str | None, subjects: list[str]) -> list[Any]:
    f = ledger_flags.c
    query = select(f.role, f.subject, f.code, f.evidence, f.through_event, f.computed_at).where(
        f.subject.in_([s[:1024] for s in subjects])
    )
    if role is not None:
        query = query.where(f.role == role)
    return list(conn.execute(query.order_by(f.role, f.subject, f.code)))


def _stored(row: Any) -> dict[str, Any]:
    at = row.computed_at if row.computed_at.tzinfo else row.computed_at.replace(tzinfo=UTC)
    return {
        "role": row.role,
        "organisation": row.subject,
        "code": row.code,
        "evidence": jsonsafe.loads(row.evidence, field=f"flag {row.code} of {row.subject}", max_depth=MAX_STORED_DEPTH),
        "through_event": int(row.through_event),
        "computed_at": at.isoformat().replace("+00:00", "Z"),
    }


def organisation_flags(source: Connection | Engine, key: str, *, role: str | None = None) -> list[dict[str, Any]]:
    """The stored flags of the organisation ``key`` (:mod:`organisations`' key: ``scheme/id``,
    an org-id, or ``name:<normalised name>``) in every role or in ``role``:
    ``[{"role", "organisation", "code", "evidence", "through_event", "computed_at"}]``."""
    if role is not None and role not in cardinal.ROLES:
        raise InvalidArgumentError("role", f"must be one of {', '.join(cardinal.ROLES)}, got {role!r}")
    with _connection(source) as conn:
        return [_stored(row) for row in _ledger_rows(conn, role, [key]) if row.role != PROCESS]


def organisation_flag_counts(source: Connection | Engine) -> dict[str, dict[str, int]]:
    """Role -> code of :data:`ORGANISATION_FLAGS` -> number of organisations flagged (0 allowed)."""
    out = {role: {flag.code: 0 for flag in ORGANISATION_FLAGS} for role in cardinal.ROLES}
    f = ledger_flags.c
    with _connection(source) as conn:
        for role, code, count in conn.execute(select(f.role, f.code, func.count()).group_by(f.role, f.code)):
            if role in out and code in out[role]:
                out[role][code] = int(count)
    return out


def party_keys(compiled: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The organisations of a compiled release: (role, key, name) for its buyer, procuring
    entity, tenderers and suppliers (the latter two as ``tenderer``, Cardinal's role), each once."""
    out: list[tuple[str, str, str]] = []
    tender = compiled.get("tender") if isinstance(compiled.get("tender"), dict) else {}
    assert isinstance(tender, dict)
    bids = compiled.get("bids") if isinstance(compiled.get("bids"), dict) else {}
    assert isinstance(bids, dict)
    references: list[tuple[str, Any]] = [
        ("buyer", compiled.get("buyer")),
        ("procuring_entity", tender.get("procuringEntity")),
    ]
    references += [("tenderer", t) for t in _dicts(tender.get("tenderers"))]
    references += [("tenderer", t) for b in _dicts(bids.get("details")) for t in _dicts(b.get("tenderers"))]
    references += [("tenderer", s) for a in _dicts(compiled.get("awards")) for s in _dicts(a.get("suppliers"))]
    references += [("tenderer", p) for p in _dicts(compiled.get("parties")) if "tenderer" in (p.get("roles") or [])]
    seen: set[tuple[str, str]] = set()
    names = {str(p.get("id")): p.get("name") for p in _dicts(compiled.get("parties"))}
    keys = organisations.key_each(compiled, [reference for _, reference in references])  # one lookup of the index
    for (role, reference), key in zip(references, keys, strict=True):
        if key is None or (role, key) in seen:
            continue
        seen.add((role, key))
        name = reference.get("name") if isinstance(reference, dict) else None
        name = name or (names.get(str(reference.get("id"))) if isinstance(reference, dict) else None) or key
        out.append((role, key, str(name)))
    return out


def party_rows(
    ocid: str, buyer_id: str | None, compiled: dict[str, Any], *, buyer_name: str | None = None
) -> list[dict[str, str | None]]:
    """The ``tender_parties`` rows of one tender: its buyer (``buyer_id``, the ledger's own id of a
    natively recorded tender, when the release names none), procuring entity and tenderers
    (:func:`party_keys`), and the suppliers of its live awards with what each was awarded per
    currency (a joint award counts whole for each of its suppliers). ``buyer_name`` names the
    ledger's own buyer id."""
    rows: dict[tuple[str, str], dict[str, str | None]] = {}
    for role, key, name in party_keys(compiled):
        rows[(role, key)] = {"ocid": ocid, "role": role, "key": key[:1024], "name": name[:1024], "amounts": None}
    if buyer_id and not any(role == "buyer" for role, _ in rows):
        named = buyer_name[:1024] if buyer_name else None
        rows[("buyer", buyer_id)] = {"ocid": ocid, "role": "buyer", "key": buyer_id, "name": named, "amounts": None}
    won: dict[str, dict[str, float]] = {}
    names: dict[str, str] = {}
    for award in live_awards(compiled):
        listed = _dicts(award.get("suppliers"))
        value = _amount(award.get("value"))
        for reference, supplier in zip(listed, organisations.key_each(compiled, listed), strict=True):
            if supplier is None:
                continue
            tenderer = rows.get(("tenderer", supplier), {})
            names.setdefault(supplier, str(reference.get("name") or tenderer.get("name") or supplier))
            totals = won.setdefault(supplier, {})
            if value is not None and value[1]:
                totals[value[1]] = totals.get(value[1], 0.0) + value[0]
    for key, totals in won.items():
        rows[("supplier", key)] = {
            "ocid": ocid,
            "role": "supplier",
            "key": key[:1024],
            "name": names[key][:1024],
            "amounts": json.dumps(totals, sort_keys=True),
        }
    return list(rows.values())


def party_flags(source: Connection | Engine, compiled: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored flags of a tender's parties (:func:`party_keys`) in the roles they have in it,
    each with the party's ``name``."""
    parties = party_keys(compiled)
    if not parties:
        return []
    wanted = {(role, key): name for role, key, name in parties}
    with _connection(source) as conn:
        rows = _ledger_rows(conn, None, sorted({key for _, key, _ in parties}))
    return [
        {**_stored(row), "name": wanted[(row.role, row.subject)]} for row in rows if (row.role, row.subject) in wanted
    ]


def _log_indices(conn: Connection, ocids: list[str], through: int | None) -> dict[str, dict[str, Any]]:
    """Per ocid, the log indices of its events (up to event id ``through``) and how many of them
    are not yet integrated."""
    out: dict[str, dict[str, Any]] = {ocid: {"log_indices": [], "pending": 0} for ocid in ocids}
    query = (
        select(events.c.ocid, log_entries.c.idx)
        .select_from(events.outerjoin(log_entries, log_entries.c.event_id == events.c.id))
        .where(events.c.ocid.in_(ocids))
        .order_by(events.c.ocid, events.c.seq)
    )
    if through is not None:
        query = query.where(events.c.id <= through)
    for ocid, idx in conn.execute(query):
        if idx is None:
            out[ocid]["pending"] += 1
        else:
            out[ocid]["log_indices"].append(int(idx))
    return out


def evidence_document(
    source: Connection | Engine, *, ocid: str | None = None, organisation: str | None = None
) -> dict[str, Any]:
    """The downloadable evidence of one tender's flags (``ocid``) or one organisation's: the
    flags with their evidence (fields read, thresholds or fences, rule version, settings
    digest), the deployment's settings, and the log indices of the entries of every tender the
    flags read, so that anyone can recompute them from the log's entries."""
    if (ocid is None) == (organisation is None):
        raise InvalidArgumentError("ocid", "give either a tender's ocid or an organisation key")
    with _connection(source) as conn:
        if ocid is not None:
            flags = tender_flags(conn, ocid)
            read = {ocid}
            through = None
        else:
            assert organisation is not None
            flags = organisation_flags(conn, organisation)
            read = {o for f in flags for o in _ocids_of(f["evidence"])}
            through = max((f["through_event"] for f in flags), default=None)
        entries = _log_indices(conn, sorted(read), through)
    settings = CARDINAL_SETTINGS
    return {
        "version": EVIDENCE_VERSION,
        "subject": {"ocid": ocid} if ocid is not None else {"organisation": organisation},
        "rule_version": cardinal.RULE_VERSION,
        "settings": {
            "digest": settings.digest(),
            "values": json.loads(json.dumps(dataclasses.asdict(settings), default=sorted)),
        },
        "flags": flags,
        "entries": entries,
        "note": {"en": cardinal.NOT_PROOF[0], "es": cardinal.NOT_PROOF[1]},
    }


def _ocids_of(evidence: dict[str, Any]) -> list[str]:
    found = list(evidence.get("ocids") or [])
    for pair in evidence.get("pairs") or []:
        if isinstance(pair, dict):
            found += pair.get("ocids") or []
    return [o for o in found if isinstance(o, str)]


def tender_compiled(conn: Connection, ocid: str) -> dict[str, Any] | None:
    """A tender's compiled release as the indicators read it (imported: ocdsmerge's; native:
    :func:`compiled_of_state` with its buyer); None for an unknown tender."""
    text = conn.execute(select(ocds_compiled.c.compiled).where(ocds_compiled.c.ocid == ocid)).scalar_one_or_none()
    if text is not None:
        loaded: dict[str, Any] = jsonsafe.loads(text, field=f"{ocid} compiled release", max_depth=MAX_STORED_DEPTH)
        return loaded
    state_text = conn.execute(select(tender_index.c.state).where(tender_index.c.ocid == ocid)).scalar_one_or_none()
    if state_text is None:
        return None
    return _native_compiled(TenderState.from_json(state_text))


def _native_compiled(state: TenderState, compiled: dict[str, Any] | None = None) -> dict[str, Any]:
    compiled = compiled_of_state(state) if compiled is None else compiled
    if state.buyer_id or state.buyer_name:
        compiled["buyer"] = {"id": state.buyer_id, "name": state.buyer_name}
    return compiled


def tender_party_flags(source: Connection | Engine, ocid: str) -> list[dict[str, Any]]:
    """The stored flags of one tender's buyer, procuring entity, tenderers and suppliers
    (:func:`party_flags`); [] for an unknown tender."""
    with _connection(source) as conn:
        compiled = tender_compiled(conn, ocid)
        return [] if compiled is None else party_flags(conn, compiled)


# The statements of store_rows, built once (SQLAlchemy finds their compiled forms by identity;
# building them was a few per cent of a group commit batch).
_OCIDS: BindParameter[Any] = bindparam("ocids", expanding=True)
_STORED_PAIRS = select(tender_suppliers.c.buyer_id, tender_suppliers.c.supplier).where(
    tender_suppliers.c.ocid.in_(_OCIDS)
)
_STORED_PARTIES = select(tender_parties.c.ocid, tender_parties.c.role, tender_parties.c.key).where(
    tender_parties.c.ocid.in_(_OCIDS)
)
_DELETE_PARTY = delete(tender_parties).where(
    tender_parties.c.ocid == bindparam("o"),
    tender_parties.c.role == bindparam("r"),
    tender_parties.c.key == bindparam("k"),
)
#: The columns of the rows :func:`store_rows` inserts: flags (``f``), pairs (``s``), parties (``p``).
_INSERTED = {
    "f": ("ocid", "code", "evidence"),
    "s": ("ocid", "supplier", "buyer_id"),
    "p": ("ocid", "role", "key", "name", "amounts", "listed_at"),
}

#: PostgreSQL: the flags, pairs and parties :func:`store_rows` writes, in one statement (one array
#: a column, as ``insert_rows`` sends them; a table's empty arrays insert nothing), where there was
#: a statement a table, each a round trip.
_INSERT_STORED = """
WITH flagged AS (
    INSERT INTO tender_flags (ocid, code, evidence)
    SELECT * FROM unnest(%(f_ocid)b::varchar[], %(f_code)b::varchar[], %(f_evidence)b::text[])
), paired AS (
    INSERT INTO tender_suppliers (ocid, supplier, buyer_id)
    SELECT * FROM unnest(%(s_ocid)b::varchar[], %(s_supplier)b::varchar[], %(s_buyer_id)b::varchar[])
)
INSERT INTO tender_parties (ocid, role, key, name, amounts, listed_at)
SELECT * FROM unnest(
    %(p_ocid)b::varchar[], %(p_role)b::varchar[], %(p_key)b::varchar[], %(p_name)b::varchar[],
    %(p_amounts)b::text[], %(p_listed_at)b::timestamptz[]
)
"""

#: Each table's delete of the rows of the tenders ``ocids``, by table name.
_DELETE_STORED = {
    table.name: delete(table).where(table.c.ocid.in_(_OCIDS))
    for table in (flags_table, tender_suppliers, tender_parties)
}
_LISTED_AT = select(tender_index.c.ocid, tender_index.c.listed_at).where(tender_index.c.ocid.in_(_OCIDS))
