"""Buyer and supplier pages: one organisation across the ledger, read from ``tender_parties``.

An organisation is its key (:mod:`organisations`: ``scheme/id``, else ``name:<normalised name>``).
Its profile gives how many tenders it had in each role, its latest tenders, what it was awarded
per currency (as supplier) and what its tenders awarded per currency (as buyer) — never summed
across currencies —, the companies it bid against (the other tenderers and suppliers of the
tenders it bid in or won), and its red flags (:func:`redflags.organisation_flags`).

The latest tenders are a walk of the ``(key, listed_at)`` index of ``tender_parties`` and the
competitors the organisation's rows of ``organisation_rivals`` (kept by
:func:`redflags.store` as tenders are recorded); the counts per role and the amounts read the
``(key, role, ocid)`` index: their cost follows the organisation's own number of tenders, not
the ledger's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select

from ledger.core import jsonsafe
from ledger.core.envelope import format_timestamp
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.store.schema import organisation_rivals, tender_awarded, tender_index, tender_parties

from . import redflags
from .query import _utc
from .reading import connection as _connection

#: The roles of ``tender_parties``, in the order a page lists them.
ROLES = ("buyer", "procuring_entity", "tenderer", "supplier")
#: Most tenders and competitors one profile lists.
TENDERS_SHOWN = 50
COMPETITORS_SHOWN = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganisationTender:
    """One tender of the organisation, with the roles it had in it."""

    ocid: str
    title: str | None
    status: str
    roles: list[str]
    value_amount: float | None
    currency: str | None
    #: What the organisation was awarded in this tender, per currency ({} unless a supplier).
    won: dict[str, float]
    listed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Competitor:
    key: str
    name: str
    #: How many of the organisation's tenders it also bid in or won.
    tenders: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    key: str
    name: str
    #: Role -> number of tenders in which the organisation had that role.
    roles: dict[str, int]
    #: As supplier: awarded per currency, largest first.
    won: list[tuple[str, float]]
    #: As buyer: its tenders' live awards per currency, largest first.
    bought: list[tuple[str, float]]
    tenders: list[OrganisationTender]
    competitors: list[Competitor]
    flags: list[dict[str, Any]] = field(default_factory=list)
    #: Pass back as ``before`` for its next (older) tenders; None when these are its oldest.
    next_before: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["won"] = [{"currency": c, "amount": a} for c, a in self.won]
        out["bought"] = [{"currency": c, "amount": a} for c, a in self.bought]
        for tender in out["tenders"]:
            tender["listed_at"] = format_timestamp(tender["listed_at"]) if tender["listed_at"] else None
        return out


def _ranked(totals: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def _amounts(text: str | None) -> dict[str, float]:
    loaded = json.loads(text) if text else {}
    return {str(c): float(a) for c, a in loaded.items()} if isinstance(loaded, dict) else {}


def _encode_before(listed_at: datetime, ocid: str) -> str:
    raw = json.dumps([format_timestamp(listed_at), ocid], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_before(before: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(before + "=" * (-len(before) % 4))
        moment, ocid = jsonsafe.loads(raw, field="before", max_depth=2, max_bytes=2048)
        if not isinstance(moment, str) or not isinstance(ocid, str):
            raise ValueError("not a pair of strings")
        return datetime.fromisoformat(moment).astimezone(UTC), ocid
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, InvalidArgumentError) as exc:
        raise InvalidArgumentError("before", "is not a cursor this organisation's page returned") from exc


def organisation_profile(source: Connection | Engine, key: str, *, before: str | None = None) -> Profile:
    """The profile of the organisation ``key`` (see the module doc); with ``before`` (a profile's
    ``next_before``), its next :data:`TENDERS_SHOWN` tenders older than those it listed.

    Raises NotFoundError when no tender names it, InvalidArgumentError for a bad ``before``."""
    older = _decode_before(before) if before is not None else None
    p = tender_parties.c
    with _connection(source) as conn:
        counts: dict[str, int] = {
            row.role: int(row.n)
            for row in conn.execute(select(p.role, func.count().label("n")).where(p.key == key).group_by(p.role))
        }
        if not counts:
            raise NotFoundError(f"organisation {key!r}: no tender names it")
        won: dict[str, float] = {}
        for text in conn.execute(select(p.amounts).where(p.key == key, p.role == "supplier")).scalars():
            for currency, amount in _amounts(text).items():
                won[currency] = won.get(currency, 0.0) + amount
        a = tender_awarded.c
        bought = {
            row.currency: float(row.amount)
            for row in conn.execute(
                select(a.currency, func.sum(a.amount).label("amount"))
                .select_from(tender_parties.join(tender_awarded, a.ocid == p.ocid))
                .where(p.key == key, p.role == "buyer")
                .group_by(a.currency)
            )
        }
        t = tender_index.c
        # the latest tenders: a walk of the (key, listed_at) index; an ocid has at most one row
        # per role, so the first TENDERS_SHOWN * len(ROLES) rows hold the latest TENDERS_SHOWN
        walk = select(p.ocid, p.listed_at).where(p.key == key)
        if older is not None:
            walk = walk.where(or_(p.listed_at < older[0], and_(p.listed_at == older[0], p.ocid < older[1])))
        walked = conn.execute(
            walk.order_by(p.listed_at.desc(), p.ocid.desc()).limit((TENDERS_SHOWN + 1) * len(ROLES))
        ).all()
        listed = {row.ocid: row.listed_at for row in walked}
        shown = list(listed)[:TENDERS_SHOWN]
        last = _utc(listed[shown[-1]]) if len(listed) > TENDERS_SHOWN else None
        next_before = _encode_before(last, shown[-1]) if last is not None else None
        found = {
            row.ocid: row
            for row in conn.execute(
                select(t.ocid, t.title, t.status, t.value_amount, t.currency, t.listed_at).where(t.ocid.in_(shown))
            )
        }
        latest = [found[ocid] for ocid in shown]
        roles: dict[str, list[str]] = {}
        amounts: dict[str, dict[str, float]] = {}
        names: Counter[str] = Counter()
        for row in conn.execute(select(p.ocid, p.role, p.amounts, p.name).where(p.key == key, p.ocid.in_(shown))):
            roles.setdefault(row.ocid, []).append(row.role)
            if row.name:
                names[row.name] += 1
            if row.role == "supplier":
                amounts[row.ocid] = _amounts(row.amounts)
        # the name its latest tenders give it most often
        name = min(names, key=lambda n: (-names[n], n)) if names else None
        if name is None:  # a natively recorded tender's buyer: its name as the projection holds it
            name = conn.execute(
                select(t.buyer_name).where(t.buyer_id == key, t.buyer_name.is_not(None)).limit(1)
            ).scalar_one_or_none()
        r, named = organisation_rivals.c, tender_parties.alias("named")
        # a rival's name: that of its latest tender (its index walk, one row)
        rival_name = (
            select(named.c.name)
            .where(named.c.key == r.rival, named.c.name.is_not(None))
            .order_by(named.c.listed_at.desc(), named.c.ocid.desc())
            .limit(1)
            .scalar_subquery()
        )
        competitors = conn.execute(
            select(r.rival.label("key"), rival_name.label("name"), r.tenders.label("n"))
            .where(r.key == key, r.tenders > 0)
            .order_by(r.tenders.desc(), r.rival)
            .limit(COMPETITORS_SHOWN)
        ).all()
        flags = redflags.organisation_flags(conn, key)
    return Profile(
        key=key,
        name=name or key,
        roles={role: int(counts[role]) for role in ROLES if role in counts},
        won=_ranked(won),
        bought=_ranked(bought),
        tenders=[
            OrganisationTender(
                ocid=row.ocid,
                title=row.title,
                status=row.status,
                roles=[role for role in ROLES if role in roles.get(row.ocid, [])],
                value_amount=row.value_amount,
                currency=row.currency,
                won=amounts.get(row.ocid, {}),
                listed_at=_utc(row.listed_at),
            )
            for row in latest
        ],
        competitors=[Competitor(key=row.key, name=row.name or row.key, tenders=int(row.n)) for row in competitors],
        flags=flags,
        next_before=next_before,
    )


def key_of_name(source: Connection | Engine, name: str) -> str:
    """The key of the organisation most often named ``name`` exactly (how a list that holds only
    names links to an organisation page); raises NotFoundError when no tender names it."""
    p = tender_parties.c
    with _connection(source) as conn:
        found = conn.execute(
            select(p.key).where(p.name == name).group_by(p.key).order_by(func.count().desc(), p.key).limit(1)
        ).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"organisation named {name!r}: no tender names it")
    return str(found)


def tender_party_names(source: Connection | Engine, ocid: str) -> set[str]:
    """The names one tender gives its organisations (those a page can link to their pages)."""
    p = tender_parties.c
    with _connection(source) as conn:
        return {name for name in conn.execute(select(p.name).where(p.ocid == ocid)).scalars() if name}
