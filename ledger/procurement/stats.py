"""Figures of the whole ledger for the explorer: how many tenders, how much awarded, spend by
buyer and by month, the latest events. Aggregates read the projection only (``tender_index``,
one row per tender, and ``tender_awarded``, its awarded value per currency, so an award in another
currency than the tender's is counted in its own; never the log's entries); the latest events are the log's last entries
by index (a primary-key range).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select

from ledger.core.envelope import parse_timestamp
from ledger.core.heads import HEADS_OCID
from ledger.store.db import utc_month
from ledger.store.reader import LogReader
from ledger.store.schema import tender_awarded, tender_index

from .reading import connection as _connection


@dataclass(frozen=True, slots=True)
class Amount:
    currency: str
    amount: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    tenders: int
    #: Awarded value per currency, largest first (amounts in different currencies never add up).
    awarded: list[Amount]


@dataclass(frozen=True, slots=True, kw_only=True)
class BuyerSpend:
    buyer_id: str | None
    buyer_name: str | None
    currency: str
    amount: float
    tenders: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MonthSpend:
    #: ``YYYY-MM`` (UTC) of the tenders' publication (or planning) time.
    month: str
    currency: str
    amount: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentEvent:
    index: int
    ocid: str
    seq: int
    type: str
    recorded_at: datetime


def titles(source: Connection | Engine, ocids: list[str]) -> dict[str, str]:
    """The titles of the tenders ``ocids`` that have one (how lists name a tender in words)."""
    t = tender_index.c
    with _connection(source) as conn:
        found = conn.execute(select(t.ocid, t.title).where(t.ocid.in_(sorted(set(ocids))), t.title.is_not(None)))
        return {row.ocid: row.title for row in found}


def totals(source: Connection | Engine) -> Totals:
    """The number of tenders (the officers' registry is not one) and the awarded value per currency."""
    a = tender_awarded.c
    with _connection(source) as conn:
        count = conn.execute(select(func.count()).select_from(tender_index)).scalar_one()
        rows = conn.execute(
            select(a.currency, func.sum(a.amount).label("amount"))
            .group_by(a.currency)
            .order_by(func.sum(a.amount).desc(), a.currency)
        ).all()
    return Totals(tenders=int(count), awarded=[Amount(r.currency, float(r.amount)) for r in rows])


def spend_by_buyer(source: Connection | Engine, *, limit: int = 10) -> list[BuyerSpend]:
    """The ``limit`` buyers (per currency) with the largest awarded value, largest first."""
    t, a = tender_index.c, tender_awarded.c
    amount = func.sum(a.amount)
    query = (
        select(t.buyer_id, func.max(t.buyer_name).label("buyer_name"), a.currency, amount.label("amount"))
        .add_columns(func.count().label("tenders"))
        .select_from(tender_awarded.join(tender_index, t.ocid == a.ocid))
        .group_by(t.buyer_id, a.currency)
        .order_by(amount.desc(), t.buyer_id)
        .limit(limit)
    )
    with _connection(source) as conn:
        rows = conn.execute(query).all()
    return [
        BuyerSpend(
            buyer_id=r.buyer_id, buyer_name=r.buyer_name, currency=r.currency, amount=float(r.amount), tenders=r.tenders
        )
        for r in rows
    ]


def spend_by_month(source: Connection | Engine, *, since: datetime) -> list[MonthSpend]:
    """Awarded value per month (UTC) of the tenders listed (published, or planned) since ``since``
    (aware), oldest month first."""
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    t, a = tender_index.c, tender_awarded.c
    with _connection(source) as conn:
        month = utc_month(conn, t.listed_at)
        rows = conn.execute(
            select(month.label("month"), a.currency, func.sum(a.amount).label("amount"))
            .select_from(tender_awarded.join(tender_index, t.ocid == a.ocid))
            .where(t.listed_at >= since.astimezone(UTC))
            .group_by(month, a.currency)
            .order_by(month, a.currency)
        ).all()
    return [MonthSpend(month=r.month, currency=r.currency, amount=float(r.amount)) for r in rows]


def recent_events(reader: LogReader, *, size: int, limit: int = 10) -> list[RecentEvent]:
    """The last ``limit`` entries of the log of ``size`` entries, newest first; the log's own heads
    commitments (one per anchoring round) are left out: they are no tender's event."""
    start = max(0, size - 2 * limit)
    found = reader.entries(start, size)
    out: list[RecentEvent] = []
    for event in reversed(found):
        assert event.index is not None
        if event.ocid == HEADS_OCID:
            continue
        if len(out) == limit:
            break
        out.append(
            RecentEvent(
                index=event.index,
                ocid=event.ocid,
                seq=event.seq,
                type=event.type,
                recorded_at=parse_timestamp(event.parsed_envelope.recorded_at),
            )
        )
    return out
