"""Searching tenders: filters over the ``tender_index`` projection, keyset pagination.

Pages are cut with an opaque cursor holding the sort key of the last row returned (its
``listed_at`` or ``value_amount``, and its ocid), never an offset: a page costs the same at
any depth, and tenders recorded between two requests neither repeat nor shift rows (those that
sort before the cursor are simply not seen by that walk).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, Connection, Engine, and_, func, or_, select

from ledger.core import jsonsafe
from ledger.core.envelope import format_timestamp
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.store.schema import tender_index, tenders

from .rules import STATUSES, TenderState

Sort = Literal["published_desc", "published_asc", "value_desc", "value_asc"]
SORTS: tuple[str, ...] = get_args(Sort)
MAX_LIMIT = 200
_CURSOR_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TenderSummary:
    """One tender as listings show it. Amounts are the tender's own currency's units."""

    ocid: str
    title: str | None
    buyer_id: str | None
    buyer_name: str | None
    #: OCDS tender.status: planned, active, cancelled or complete.
    status: str
    procurement_method: str | None
    value_amount: float | None
    currency: str | None
    tender_start: datetime | None
    tender_end: datetime | None
    awarded_amount: float | None
    suppliers: list[str]
    published_at: datetime | None
    updated_at: datetime
    events: int

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = format_timestamp(value)
        return out


@dataclass(frozen=True, slots=True)
class Page:
    items: list[TenderSummary]
    #: Pass back as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None


@contextmanager
def _connection(source: Connection | Engine) -> Iterator[Connection]:
    if isinstance(source, Engine):
        with source.connect() as conn:
            yield conn
    else:
        yield source


def _utc(moment: datetime | None) -> datetime | None:
    """Stored instants are UTC; SQLite returns them without a zone."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_COLUMNS = (
    tender_index.c.ocid,
    tender_index.c.title,
    tender_index.c.buyer_id,
    tender_index.c.buyer_name,
    tender_index.c.status,
    tender_index.c.method,
    tender_index.c.value_amount,
    tender_index.c.currency,
    tender_index.c.tender_start,
    tender_index.c.tender_end,
    tender_index.c.awarded_amount,
    tender_index.c.suppliers,
    tender_index.c.published_at,
    tender_index.c.listed_at,
    tender_index.c.updated_at,
    tenders.c.event_count,
)


def _summary(row: Any) -> TenderSummary:
    updated = _utc(row.updated_at)
    assert updated is not None
    return TenderSummary(
        ocid=row.ocid,
        title=row.title,
        buyer_id=row.buyer_id,
        buyer_name=row.buyer_name,
        status=row.status,
        procurement_method=row.method,
        value_amount=row.value_amount,
        currency=row.currency,
        tender_start=_utc(row.tender_start),
        tender_end=_utc(row.tender_end),
        awarded_amount=row.awarded_amount,
        suppliers=row.suppliers.split("\n") if row.suppliers else [],
        published_at=_utc(row.published_at),
        updated_at=updated,
        events=int(row.event_count),
    )


def _encode_cursor(sort: str, key: datetime | float, ocid: str) -> str:
    value = format_timestamp(key) if isinstance(key, datetime) else key
    raw = json.dumps([_CURSOR_VERSION, sort, value, ocid], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[datetime | float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, cursor_sort, value, ocid = jsonsafe.loads(raw, field="cursor", max_depth=2, max_bytes=1024)
        if version != _CURSOR_VERSION or cursor_sort not in SORTS or not isinstance(ocid, str):
            raise ValueError("unknown cursor")
        key: datetime | float
        if cursor_sort.startswith("published"):
            key = datetime.fromisoformat(value).astimezone(UTC)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            key = float(value)
        else:
            raise ValueError("bad value key")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, InvalidArgumentError) as exc:
        raise InvalidArgumentError("cursor", "is not a cursor this listing returned") from exc
    if cursor_sort != sort:
        raise InvalidArgumentError("cursor", f"was returned for sort {cursor_sort!r}, not {sort!r}")
    return key, ocid


def search_tenders(
    source: Connection | Engine,
    *,
    q: str | None = None,
    status: str | None = None,
    buyer: str | None = None,
    currency: str | None = None,
    published_from: datetime | None = None,
    published_to: datetime | None = None,
    value_min: float | None = None,
    value_max: float | None = None,
    sort: Sort = "published_desc",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of the tenders matching every filter given.

    - ``q``: case-insensitive substring of the title, the buyer's name or id, or a supplier's name;
    - ``status``: OCDS tender.status (planned, active, cancelled, complete); ``buyer``: the buyer's id;
    - ``currency`` with ``value_min`` / ``value_max`` (inclusive): the tender's estimated value;
    - ``published_from`` / ``published_to`` (inclusive, aware): when it was published (tenders
      only planned have no publication date and are left out by these filters);
    - ``sort``: ``published_desc`` (newest first, the default) or ``published_asc`` order by
      the publication (or, before it, planning) time; ``value_desc`` / ``value_asc`` by estimated
      value and list only tenders that have one. Ties are broken by ocid.

    Raises :class:`InvalidArgumentError` naming the parameter (a bad ``limit``, ``sort``,
    ``status``, range or ``cursor``).
    """
    if sort not in SORTS:
        raise InvalidArgumentError("sort", f"must be one of {', '.join(SORTS)}, got {sort!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError("limit", f"must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    if status is not None and status not in STATUSES:
        raise InvalidArgumentError(
            "status", f"must be one of {', '.join(STATUSES)} (OCDS tender.status), got {status!r}"
        )
    for name, moment in (("published_from", published_from), ("published_to", published_to)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidArgumentError(name, "needs a timezone-aware date and time")
    if value_min is not None and value_max is not None and value_min > value_max:
        raise InvalidArgumentError("value_max", f"must be >= value_min ({value_min}), got {value_max}")
    t = tender_index.c
    where: list[ColumnElement[bool]] = []
    if q is not None and q.strip():
        where.append(t.search_text.contains(q.strip().lower(), autoescape=True))
    if status is not None:
        where.append(t.status == status)
    if buyer is not None:
        where.append(t.buyer_id == buyer)
    if currency is not None:
        where.append(t.currency == currency)
    if value_min is not None:
        where.append(t.value_amount >= value_min)
    if value_max is not None:
        where.append(t.value_amount <= value_max)
    if published_from is not None or published_to is not None:
        # Once published, listed_at is the publication time: filter on the indexed column.
        where.append(t.published_at.is_not(None))
        if published_from is not None:
            where.append(t.listed_at >= published_from.astimezone(UTC))
        if published_to is not None:
            where.append(t.listed_at <= published_to.astimezone(UTC))
    key_column = t.listed_at if sort.startswith("published") else t.value_amount
    if key_column is t.value_amount:
        where.append(t.value_amount.is_not(None))
    descending = sort.endswith("_desc")
    if cursor is not None:
        key, ocid = _decode_cursor(cursor, sort)
        if descending:
            where.append(or_(key_column < key, and_(key_column == key, t.ocid < ocid)))
        else:
            where.append(or_(key_column > key, and_(key_column == key, t.ocid > ocid)))
    order = (key_column.desc(), t.ocid.desc()) if descending else (key_column.asc(), t.ocid.asc())
    query = select(*_COLUMNS).join(tenders, tenders.c.ocid == t.ocid).where(*where).order_by(*order).limit(limit + 1)
    with _connection(source) as conn:
        rows = conn.execute(query).all()
    items = [_summary(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        sort_key = _utc(last.listed_at) if sort.startswith("published") else last.value_amount
        assert sort_key is not None
        next_cursor = _encode_cursor(sort, sort_key, last.ocid)
    return Page(items, next_cursor)


def parse_moment(text: str | None, *, field: str, end: bool) -> datetime | None:
    """A date (``2026-03-01``: its first instant in UTC, or its last when ``end``) or an RFC 3339
    date-time with its offset; None for None. Raises :class:`InvalidArgumentError` naming ``field``."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1) if end else day
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidArgumentError(field, f"is not a valid date or date-time: {exc}") from exc
    if moment.tzinfo is None:
        raise InvalidArgumentError(field, f"needs its UTC offset, got {text!r}")
    return moment


def count_tenders(source: Connection | Engine) -> int:
    """How many tenders the search projection holds."""
    with _connection(source) as conn:
        return int(conn.execute(select(func.count()).select_from(tender_index)).scalar_one())


def tender_summary(source: Connection | Engine, ocid: str) -> TenderSummary:
    """The listing row of one tender. Raises :class:`NotFoundError` if no event of it was recorded."""
    query = select(*_COLUMNS).join(tenders, tenders.c.ocid == tender_index.c.ocid).where(tender_index.c.ocid == ocid)
    with _connection(source) as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"tender {ocid!r}: not found")
    return _summary(row)


def tender_state(source: Connection | Engine, ocid: str) -> TenderState:
    """The rules' full state of one tender (bids, awards, contracts). Raises :class:`NotFoundError`."""
    with _connection(source) as conn:
        text = conn.execute(select(tender_index.c.state).where(tender_index.c.ocid == ocid)).scalar_one_or_none()
    if text is None:
        raise NotFoundError(f"tender {ocid!r}: not found")
    return TenderState.from_json(text)
