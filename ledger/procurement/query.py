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
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import MAXYEAR, UTC, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    FromClause,
    Select,
    and_,
    cast,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY

from ledger.core import jsonsafe
from ledger.core.envelope import format_timestamp
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.store.schema import tender_index, tender_suppliers, tenders

from . import fulltext, redflags
from .reading import connection as _connection
from .rules import STATUSES, TenderState

Sort = Literal["relevance", "published_desc", "published_asc", "value_desc", "value_asc"]
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
    #: Sorted by relevance with more than :data:`RANK_AMONG` tenders matching (the words and every
    #: other filter): the ranking is of the newest :data:`RANK_AMONG` of them (None: of every match).
    ranked_among: int | None = None


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Filters:
    """What a search keeps: every filter given must hold (None: not filtered).

    - ``q``: full text (:mod:`.fulltext`): every word of it (the last also as a prefix) in the title,
      description, items, the buyer's name or id or a supplier's name; case, accents and
      apostrophe forms do not matter;
    - ``status``: OCDS tender.status; ``method``: procurementMethod; ``buyer``: the buyer's id;
      ``supplier``: a supplier's organisation key (ledger.procurement.organisations: scheme/id,
      else ``name:`` and the normalised name, as the supplier facet gives it); ``flag``: a red flag's code, or ``any``;
    - ``currency`` with ``value_min`` / ``value_max`` (the estimate) and ``awarded_min`` /
      ``awarded_max`` (the sum of the live awards in the tender's currency), inclusive;
    - ``year``: of publication (or planning, before it); ``published_from`` / ``published_to``
      (inclusive, aware): when it was published (tenders only planned are left out by these).
    """

    q: str | None = None
    status: str | None = None
    method: str | None = None
    buyer: str | None = None
    supplier: str | None = None
    flag: str | None = None
    currency: str | None = None
    year: int | None = None
    published_from: datetime | None = None
    published_to: datetime | None = None
    value_min: float | None = None
    value_max: float | None = None
    awarded_min: float | None = None
    awarded_max: float | None = None

    def check(self) -> None:
        """Raise :class:`InvalidArgumentError` naming the first bad filter."""
        if self.status is not None and self.status not in STATUSES:
            raise InvalidArgumentError(
                "status", f"must be one of {', '.join(STATUSES)} (OCDS tender.status), got {self.status!r}"
            )
        if self.flag is not None and self.flag != "any" and self.flag not in redflags.CODES:
            raise InvalidArgumentError(
                "flag", f"must be 'any' or a red flag code of /api/v1/redflags, got {self.flag!r}"
            )
        if self.year is not None and not 1900 <= self.year <= 9999:
            raise InvalidArgumentError("year", f"must be a year from 1900 to 9999, got {self.year}")
        for name, moment in (("published_from", self.published_from), ("published_to", self.published_to)):
            if moment is not None and moment.tzinfo is None:
                raise InvalidArgumentError(name, "needs a timezone-aware date and time")
        for low, high in (("value_min", "value_max"), ("awarded_min", "awarded_max")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise InvalidArgumentError(high, f"must be >= {low} ({lo}), got {hi}")

    def words(self) -> list[str]:
        return fulltext.query_terms(self.q) if self.q else []

    def words_alone(self) -> bool:
        """Whether no filter but ``q`` is given."""
        return all(getattr(self, f.name) is None for f in fields(Filters) if f.name != "q")


_SEARCH = table("tender_search", column("rowid"), column("rank"))
#: SQLite: each tender's FTS5 rowid (migration 0018), an INTEGER PRIMARY KEY that VACUUM keeps.
_KEYS = table("tender_search_keys", column("id"), column("ocid"))
#: SQLite: a listing in another order than relevance walks its own index and probes the matches
#: when a query matches more tenders than this (a page then needs few rows of the walk); fewer
#: are read from the full-text index and sorted.
PROBE_ABOVE = 2000
#: Relevance ranks at most this many matches, the newest (the words alone on SQLite: the highest
#: full-text keys, given in listing order by migration 0018 and in recording order after it;
#: otherwise the latest ``listed_at``, ties by ocid): ranking a word common to a tenth of a million
#: tenders would otherwise score every one of them for each page.
RANK_AMONG = 2000


def _tsvector() -> ColumnElement[Any]:
    """PostgreSQL's stored words (migration 0018: a generated column, GIN indexed)."""
    return literal_column("tender_index.search_vector")


def _sqlite_match(words: list[str]) -> ColumnElement[bool]:
    return literal_column("tender_search").op("MATCH")(fulltext.sqlite_match(words))


def _postgres_match(words: list[str]) -> ColumnElement[bool]:
    return _tsvector().op("@@")(cast(literal(fulltext.postgres_tsquery(words)), TSQUERY))


#: The relevance score's BM25 constants: term frequency saturation and length normalisation,
#: over documents of this many words.
_K1, _B, _AVERAGE_WORDS = 1.2, 0.75, 32


def _score(words: list[str]) -> ColumnElement[Any]:
    """The relevance of a tender (higher is better), plain SQL that both engines compute alike:
    for each word, how often the document holds it (the last word: words beginning with it, as it
    is matched), saturated and normalised by the document's number of words as BM25 does, summed
    over the words (each weighs the same: they are all required).

    Computed from ``search_text`` of the rows ranked only. FTS5's bm25 (and the rank) first
    counts every tender holding each word to weigh it: a word in every tender read 1,000,000
    entries for a page of one match; PostgreSQL's ts_rank weighs words otherwise, so the engines
    ranked alike matches in different orders. Matches read already with their text (see
    :func:`_matches`) are scored in Python (:func:`score_text`), the same bits."""
    text = tender_index.c.search_text
    # " a b a ": every word between two spaces (replace() does not overlap: a word repeated
    # right after itself counts once for the pair)
    padded = literal(" ").concat(text).concat(" ")
    count = cast(func.length(text) - func.length(func.replace(text, " ", "")) + 1, Float)
    norm = _K1 * (1 - _B + _B * count / _AVERAGE_WORDS)
    total: ColumnElement[Any] | None = None
    for i, word in enumerate(words):
        needle = f" {word}" if i == len(words) - 1 else f" {word} "
        frequency = cast(func.length(text) + 2 - func.length(func.replace(padded, needle, "")), Float) / len(needle)
        part = frequency * (_K1 + 1) / (frequency + norm)
        total = part if total is None else total + part
    assert total is not None
    return total


def score_text(text: str, words: list[str]) -> float:
    """:func:`_score` of one tender's ``search_text``, in Python: the same operations in the same
    order on the same doubles, so the same bits (a cursor holds the score of its page's last row)."""
    padded = f" {text} "
    norm = _K1 * (1 - _B + _B * float(len(text) - len(text.replace(" ", "")) + 1) / _AVERAGE_WORDS)
    total = 0.0
    for i, word in enumerate(words):
        needle = f" {word}" if i == len(words) - 1 else f" {word} "
        frequency = float(len(text) + 2 - len(padded.replace(needle, ""))) / len(needle)
        part = frequency * (_K1 + 1) / (frequency + norm)
        total = part if i == 0 else total + part
    return total


@dataclass(frozen=True, slots=True)
class _Search:
    """A search as SQL: the rows to read from, the conditions, the relevance (with ``q``)."""

    source: FromClause
    where: list[ColumnElement[bool]]
    score: ColumnElement[Any] | None
    #: SQLite, words matching more than :data:`PROBE_ABOVE` tenders listed by time: the words,
    #: and ``where`` holds the other filters (the page is found by :func:`_walk`).
    walk: tuple[str, ...] = ()
    #: Relevance of matches read already (the newest :data:`RANK_AMONG`, listed first by time):
    #: each one's ocid and ``search_text``, scored in Python (:func:`_ranked`).
    texts: tuple[tuple[str, str], ...] | None = None


#: SQLite: the longest prefix of FTS5's prefix index, in characters (migration 0018: ``prefix='2 3 4'``).
PREFIX_INDEXED = 4


def _prefix_cut(words: list[str]) -> tuple[list[str], str | None]:
    """SQLite: the words to match in FTS5, and the last word when the text must confirm it. A last
    word longer than :data:`PREFIX_INDEXED` is matched by its first that many characters, one list
    of the prefix index read in key order as far as needed, and its rows kept when a word of their
    text begins with the whole of it (:func:`_begins`): FTS5 matches a longer prefix by merging the
    lists of every word it begins, whole, at each read (``renov``, a prefix of every tender: 3.5 ms
    at 100,000, ten times that at 1,000,000, whatever the ``rowid`` bounds or LIMIT)."""
    if not words or len(words[-1]) <= PREFIX_INDEXED:
        return words, None
    return [*words[:-1], words[-1][:PREFIX_INDEXED]], words[-1]


def _begins(word: str) -> ColumnElement[bool]:
    """That a word of the tender's text begins with ``word`` (words are separated by one space)."""
    return func.instr(literal(" ").concat(tender_index.c.search_text), f" {word}") > 0


def _newest_keys(conn: Connection, words: list[str], most: int) -> list[int]:
    """SQLite: the full-text keys of the newest ``most`` matches of the words, newest first (the
    highest keys: given in listing order by migration 0018, in recording order after it). One
    read of FTS5 in ``rowid`` order, stopped after ``most``. A last word longer than the prefix
    index (:func:`_prefix_cut`) is confirmed on the text of at most twice ``most`` candidates; when
    fewer than ``most`` of them hold it, the words are matched exactly (FTS5's merge)."""
    match, last = _prefix_cut(words)
    if last is not None:
        candidates = select(_SEARCH.c.rowid).where(_sqlite_match(match)).order_by(_SEARCH.c.rowid.desc())
        bound = candidates.limit(2 * most).subquery()
        read, oldest = conn.execute(select(func.count(), func.min(bound.c.rowid))).one()
        if not read:  # nothing begins with its first characters
            return []
        confirmed = (
            candidates.join(_KEYS, _KEYS.c.id == _SEARCH.c.rowid)
            .join(tender_index, tender_index.c.ocid == _KEYS.c.ocid)
            .where(_SEARCH.c.rowid >= oldest, _begins(last))
            .limit(most)
        )
        keys = list(conn.execute(confirmed).scalars())
        if len(keys) == most or read < 2 * most:
            return keys
    newest = select(_SEARCH.c.rowid).where(_sqlite_match(words)).order_by(_SEARCH.c.rowid.desc()).limit(most)
    return list(conn.execute(newest).scalars())


def _texts(conn: Connection, found: _Search, most: int | None = None) -> list[tuple[str, str]]:
    """The ocid and ``search_text`` of the rows ``found`` keeps; with ``most``, of the ``most``
    latest listed (listing order, ties by ocid: the order :func:`_walk` follows)."""
    t = tender_index.c
    rows = select(t.ocid, t.search_text).select_from(found.source).where(*found.where)
    if most is not None:
        rows = rows.order_by(t.listed_at.desc(), t.ocid.desc()).limit(most)
    return [(ocid, text) for ocid, text in conn.execute(rows)]


def _keyed(keys: list[int]) -> tuple[FromClause, ColumnElement[bool]]:
    """SQLite: the rows of these full-text keys (a join of ``tender_search_keys``). The keys are
    one parameter, a JSON array read by ``json_each``: the same plan as a list of 2,000 bound
    parameters (each key sought in turn), without compiling and binding each of them."""
    listed: Select[Any] = select(literal_column("value")).select_from(func.json_each(json.dumps(keys)))
    return tender_index.join(_KEYS, _KEYS.c.ocid == tender_index.c.ocid), _KEYS.c.id.in_(listed)


def _text_filter(dialect: str, words: list[str], *, probe: bool) -> ColumnElement[bool]:
    """The condition that a tender holds every word. On SQLite, with ``probe``, each row of
    another index's walk looks its key up in the matches (the planner cannot start from them),
    else the matches are the rows read."""
    if dialect == "postgresql":
        return _postgres_match(words)
    match, last = _prefix_cut(words)
    matches = select(_SEARCH.c.rowid).where(_sqlite_match(match))
    if probe:
        key = select(_KEYS.c.id).where(_KEYS.c.ocid == tender_index.c.ocid).scalar_subquery()
        found = key.in_(matches)
    else:
        found = tender_index.c.ocid.in_(select(_KEYS.c.ocid).where(_KEYS.c.id.in_(matches)))
    return found if last is None else and_(found, _begins(last))


def _search(
    dialect: str,
    filters: Filters,
    *,
    ranked: bool = False,
    probe: bool = False,
    keys: list[int] | None = None,
) -> _Search:
    """The search's SQL; with ``ranked`` (and words to search for), its relevance (:func:`_score`)
    too. The tenders holding the words: with ``keys`` (SQLite), exactly those (the matches, read
    already); else by the full-text index (``probe``: see :func:`_text_filter`)."""
    filters.check()
    t = tender_index.c
    where: list[ColumnElement[bool]] = []
    source: FromClause = tender_index
    words = filters.words()
    if words and keys is not None:
        source, keyed = _keyed(keys)
        where.append(keyed)
    elif words:
        where.append(_text_filter(dialect, words, probe=probe))
    score = _score(words) if words and ranked else None
    for column_, value in ((t.status, filters.status), (t.method, filters.method), (t.buyer_id, filters.buyer)):
        if value is not None:
            where.append(column_ == value)
    if filters.currency is not None:
        where.append(t.currency == filters.currency)
    for column_, low, high in (
        (t.value_amount, filters.value_min, filters.value_max),
        (t.awarded_amount, filters.awarded_min, filters.awarded_max),
    ):
        if low is not None:
            where.append(column_ >= low)
        if high is not None:
            where.append(column_ <= high)
    if filters.supplier is not None:
        s = tender_suppliers.c
        where.append(t.ocid.in_(select(s.ocid).where(s.supplier == filters.supplier)))
    if filters.flag is not None:
        rows = redflags.flag_rows().subquery()
        flagged = select(rows.c.ocid)
        where.append(t.ocid.in_(flagged if filters.flag == "any" else flagged.where(rows.c.code == filters.flag)))
    if filters.year is not None:
        where.append(t.listed_at >= datetime(filters.year, 1, 1, tzinfo=UTC))
        if filters.year < MAXYEAR:  # the last year a datetime holds has no next January to stop at
            where.append(t.listed_at < datetime(filters.year + 1, 1, 1, tzinfo=UTC))
    if filters.published_from is not None or filters.published_to is not None:
        # Once published, listed_at is the publication time: filter on the indexed column.
        where.append(t.published_at.is_not(None))
        if filters.published_from is not None:
            where.append(t.listed_at >= filters.published_from.astimezone(UTC))
        if filters.published_to is not None:
            where.append(t.listed_at <= filters.published_to.astimezone(UTC))
    return _Search(source, where, score)


def matching_ocids(source: Connection | Engine, filters: Filters) -> Select[tuple[str]]:
    """A select of the ocids of the tenders ``filters`` keep (for exports of a search's results).
    Raises :class:`InvalidArgumentError` naming a bad filter."""
    with _connection(source) as conn:
        found = _search(conn.dialect.name, filters)
    return select(tender_index.c.ocid).select_from(found.source).where(*found.where)


def search_tenders(
    source: Connection | Engine,
    *,
    sort: Sort | None = None,
    cursor: str | None = None,
    limit: int = 50,
    **filters: Any,
) -> Page:
    """One page of the tenders matching every filter given (the fields of :class:`Filters`).

    ``sort``: ``relevance`` (best match first; the default with ``q``) ranks by :func:`_score`
    (the same on both engines, ties by ocid in code point order), more than :data:`RANK_AMONG`
    tenders matching: their newest that many (``Page.ranked_among``);
    ``published_desc`` (newest first, the default without ``q``) or ``published_asc`` order by
    the publication (or, before it, planning) time; ``value_desc`` / ``value_asc`` by estimated
    value and list only tenders that have one. Ties are broken by ocid.

    Raises :class:`InvalidArgumentError` naming the parameter (a bad ``limit``, ``sort``, filter,
    range or ``cursor``).
    """
    wanted = Filters(**filters)
    if sort is None:
        sort = "relevance" if wanted.words() else "published_desc"
    if sort not in SORTS:
        raise InvalidArgumentError("sort", f"must be one of {', '.join(SORTS)}, got {sort!r}")
    if sort == "relevance" and not wanted.words():
        raise InvalidArgumentError("sort", "relevance needs words to search for (q)")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgumentError("limit", f"must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    t = tender_index.c
    descending = sort.endswith("_desc") or sort == "relevance"
    with _connection(source) as conn:
        found, cut = _matches(conn, wanted, sort)
        where = list(found.where)
        key_column: ColumnElement[Any]
        if found.score is not None and sort == "relevance":
            key_column = found.score
        else:
            key_column = t.listed_at if sort.startswith("published") else t.value_amount
        # relevance's ties: by code point on both engines, as Python sorts the matches it ranks
        # (listings by time or value keep the listing indexes' order)
        tie = _bytewise(conn.dialect.name, t.ocid) if sort == "relevance" else t.ocid
        if sort.startswith("value"):
            where.append(t.value_amount.is_not(None))
        if cursor is not None:
            where += _after(key_column, *_decode_cursor(cursor, sort), descending=descending, tie=tie)
        order = (key_column.desc(), tie.desc()) if descending else (key_column.asc(), tie.asc())
        if found.walk:
            where = [t.ocid.in_(_walk(conn, found, where, descending=descending, wanted=limit + 1))]
        elif found.texts is not None:
            after = _decode_cursor(cursor, sort) if cursor is not None else None
            where = [t.ocid.in_(_ranked(found.texts, wanted.words(), after, limit + 1))]
        elif conn.dialect.name == "sqlite":
            where = [t.ocid.in_(_cut(conn, found.source, where, order, limit + 1))]
        # the page is cut from tender_index alone, then joined to its tenders' event counts (a
        # join before the cut let PostgreSQL hash-join every tender for a few hundred matches)
        page = (
            select(*_COLUMNS[:-1], key_column.label("sort_key"))
            .select_from(found.source)
            .where(*where)
            .order_by(*order)
            .limit(limit + 1)
            .subquery("page")
        )
        page_tie = _bytewise(conn.dialect.name, page.c.ocid) if sort == "relevance" else page.c.ocid
        outer = (page.c.sort_key.desc(), page_tie.desc()) if descending else (page.c.sort_key, page_tie)
        query = select(page, tenders.c.event_count).join(tenders, tenders.c.ocid == page.c.ocid).order_by(*outer)
        rows = conn.execute(query).all()
    items = [_summary(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        sort_key = _utc(last.listed_at) if sort.startswith("published") else last.sort_key
        assert sort_key is not None
        next_cursor = _encode_cursor(sort, sort_key, last.ocid)
    return Page(items, next_cursor, RANK_AMONG if cut else None)


def _cut(
    conn: Connection, source: FromClause, where: list[ColumnElement[bool]], order: Sequence[Any], wanted: int
) -> list[str]:
    """SQLite: the ocids of a page, found before its rows are read. Sorting only the ocids and
    their sort keys lets the planner answer from an index that holds them (a value range listed by
    time: ``ix_tender_index_value_amount_ocid_listed_at``; the listing and status indexes) and keeps
    the sorter's records small (relevance: the score and the ocid of each ranked match, not every
    column of it); the page's rows are then read by ocid."""
    cut = select(tender_index.c.ocid).select_from(source).where(*where).order_by(*order).limit(wanted)
    return list(conn.execute(cut).scalars())


def _ranked(
    texts: Sequence[tuple[str, str]], words: list[str], after: tuple[Any, str] | None, wanted: int
) -> list[str]:
    """The ocids of a relevance page among matches read already (each one's ocid and
    ``search_text``), the best first, ties by ocid, after the cursor's (score,
    ocid) if given. Scored in Python (:func:`score_text`): the SQL score and its sort cost about
    twice as much on SQLite (1,000,000 tenders, 2,000 matches of three words: 16.9 ms CPU against
    9.6) and four times as much on PostgreSQL (2,000 matches: 31 -> 116 ms p95 under load)."""
    scored = sorted(((score_text(text, words), ocid) for ocid, text in texts), reverse=True)
    if after is not None:
        scored = [pair for pair in scored if pair < after]
    return [ocid for _, ocid in scored[:wanted]]


def _after(
    key_column: ColumnElement[Any],
    key: Any,
    ocid: str,
    *,
    descending: bool,
    tie: ColumnElement[Any] | None = None,
) -> list[ColumnElement[bool]]:
    """The rows after (key, ocid) in the listing's order (``tie``: the ocid as the order compares
    it, by default the column itself). The plain bound beside the OR lets the planner walk the
    sort's index from there (with the OR alone SQLite read both branches' rows and sorted them all)."""
    tie = tender_index.c.ocid if tie is None else tie
    if descending:
        return [key_column <= key, or_(key_column < key, and_(key_column == key, tie < ocid))]
    return [key_column >= key, or_(key_column > key, and_(key_column == key, tie > ocid))]


def _matches(conn: Connection, wanted: Filters, sort: str) -> tuple[_Search, bool]:
    """The search of a listing in ``sort`` order, and whether its relevance ranks only the
    newest :data:`RANK_AMONG` matches (more match). Relevance ranks, in Python, the newest
    :data:`RANK_AMONG` tenders that hold the words and meet every other filter, read once with
    their text (PostgreSQL: one GIN match and a top-N by listing time; SQLite: the words' newest
    keys in the full-text index when they are the matches — the words alone, or no more than
    :data:`PROBE_ABOVE` of them —, else a walk of the listing index, :func:`_walk`). Scoring every
    match of a broad word with a filter cost 0.6-0.9 s at 1,000,000 tenders (180,000 matches).
    A listing by time with words matching more than :data:`PROBE_ABOVE` walks its index
    (SQLite), by value probes each row of its walk."""
    dialect, words = conn.dialect.name, wanted.words()
    alone, ranked = wanted.words_alone(), sort == "relevance"
    if not words or (dialect == "postgresql" and not ranked):
        return _search(dialect, wanted, ranked=ranked), False
    if dialect == "postgresql":
        return _newest_ranked(conn, _search(dialect, wanted, ranked=True))
    newest = _newest_keys(conn, words, max(RANK_AMONG, PROBE_ABOVE) + 1)
    if ranked and alone:
        found = _search(dialect, wanted, ranked=True, keys=newest[:RANK_AMONG])
        return replace(found, texts=tuple(_texts(conn, found))), len(newest) > RANK_AMONG
    if len(newest) <= PROBE_ABOVE:
        found = _search(dialect, wanted, ranked=ranked, keys=newest)
        return _newest_ranked(conn, found) if ranked else (found, False)
    if ranked:
        found = _search(dialect, wanted, ranked=True)
        if len(newest) / (newest[0] - newest[-1] + 1) < WALK_DENSER_THAN:
            # the words are sparse in the listing: a walk would read most of it; read every match
            every = _listed_texts(conn, found, READ_EVERY_UP_TO + 1)
            if len(every) <= READ_EVERY_UP_TO:
                every.sort(reverse=True)  # newest first, ties by ocid: the walk's order
                newest_texts = tuple((ocid, text) for _, ocid, text in every[:RANK_AMONG])
                return replace(found, texts=newest_texts), len(every) > RANK_AMONG
        walked = replace(_search(dialect, replace(wanted, q=None)), walk=tuple(words))
        ocids = _walk(conn, walked, list(walked.where), descending=True, wanted=RANK_AMONG + 1)
        keyed = replace(found, where=[tender_index.c.ocid.in_(ocids[:RANK_AMONG])])
        return replace(found, texts=tuple(_texts(conn, keyed))), len(ocids) > RANK_AMONG
    if sort.startswith("value"):
        return _search(dialect, wanted, probe=True), False
    return replace(_search(dialect, replace(wanted, q=None)), walk=tuple(words)), False


#: SQLite, relevance of words matching more than :data:`PROBE_ABOVE` tenders with another filter:
#: the newest matches are found by a walk of the listing index (:func:`_walk`) when the words are
#: in at least this share of the listing (read from the spread of their newest full-text keys,
#: which follow the listing order), else by reading every match with its listing time, up to
#: :data:`READ_EVERY_UP_TO` of them (1,000,000 tenders: `hospital`, 10 %, and a status, 2,001 of
#: 180,000 matches walked in ~27 ms; a three-word query in ~0.1 % of the listing and a status,
#: 5,752 matches: the walk ~650 ms of CPU, reading them all ~45 ms).
WALK_DENSER_THAN = 0.02
READ_EVERY_UP_TO = 10_000


def _listed_texts(conn: Connection, found: _Search, most: int) -> list[tuple[Any, str, str]]:
    """The listing time, ocid and ``search_text`` of at most ``most`` of the rows ``found``
    keeps (any of them)."""
    t = tender_index.c
    rows = select(t.listed_at, t.ocid, t.search_text).select_from(found.source).where(*found.where).limit(most)
    return [(listed, ocid, text) for listed, ocid, text in conn.execute(rows)]


def _newest_ranked(conn: Connection, found: _Search) -> tuple[_Search, bool]:
    """``found`` (ranked) with the text of its newest :data:`RANK_AMONG` matches, and whether
    more match (one read of at most one more)."""
    read = _texts(conn, found, RANK_AMONG + 1)
    return replace(found, texts=tuple(read[:RANK_AMONG])), len(read) > RANK_AMONG


#: The first batch of :func:`_walk` (each next one four times the last, up to :data:`WALK_MOST`).
WALK_FIRST, WALK_MOST = 512, 65_536


def _walk(
    conn: Connection, found: _Search, where: list[ColumnElement[bool]], *, descending: bool, wanted: int
) -> list[str]:
    """SQLite: the ocids of the first ``wanted`` tenders, in listing order, that meet ``where``
    and hold ``found.walk``. The listing index is walked a batch at a time (the rows and their
    full-text keys), and the words' matches among each batch's keys are read from FTS5 in one
    read bounded by the batch's lowest and highest key: as keys follow the listing order (see
    :func:`_newest_keys`), that read covers about the batch's rows, whatever the number of
    matches elsewhere (a broad word's list of every match was built before each page). Exact
    whatever the order of the keys: a tender out of that order only widens its batch's read."""
    t = tender_index.c
    order = (t.listed_at.desc(), t.ocid.desc()) if descending else (t.listed_at.asc(), t.ocid.asc())
    walk = select(t.ocid, t.listed_at, _KEYS.c.id).select_from(found.source.join(_KEYS, _KEYS.c.ocid == t.ocid))
    match, last = _prefix_cut(list(found.walk))
    if last is not None:  # the hits of the prefix index, kept when their text holds the whole prefix
        confirm = select(_KEYS.c.id).join(tender_index, tender_index.c.ocid == _KEYS.c.ocid).where(_begins(last))
    page: list[str] = []
    batch, after = WALK_FIRST, list(where)
    while len(page) < wanted:
        rows = conn.execute(walk.where(*after).order_by(*order).limit(batch)).all()
        if not rows:
            break
        keys = [row.id for row in rows]
        bounded = _sqlite_match(match), _SEARCH.c.rowid.between(min(keys), max(keys))
        hits = set(conn.execute(select(_SEARCH.c.rowid).where(*bounded)).scalars())
        if last is not None and hits:
            hits = set(conn.execute(confirm.where(_KEYS.c.id.in_(hits))).scalars())
        page += [row.ocid for row in rows if row.id in hits]
        if len(rows) < batch:
            break
        after = [*where, *_after(t.listed_at, rows[-1].listed_at, rows[-1].ocid, descending=descending)]
        batch = min(batch * 4, WALK_MOST)
    return page[:wanted]


#: The facets of a search, in the order pages show them.
FACETS = ("status", "method", "flag", "year", "currency", "buyer", "supplier")
#: Most values shown of one facet (the commonest; ties by value).
FACET_VALUES = 10


#: Facet counts are counted over at most this many matching tenders, the newest: a broad
#: search's facets then cost the same as a narrow one's.
FACET_SAMPLE = 2000
#: The total is counted exactly up to this many matching tenders (reading at most one more);
#: above it, it is estimated (``Facets.estimated``) from how densely the newest matches lie in
#: the listing, so that counting a broad search does not read every match.
COUNT_EXACT_UP_TO = 10_000


@dataclass(frozen=True, slots=True)
class Facets:
    #: How many tenders match.
    total: int
    #: Facet -> [(value, label, count)], the commonest first. ``flag`` counts each code (a
    #: tender may raise several) and ``any`` (tenders raising at least one).
    counts: dict[str, list[tuple[str, str, int]]]
    #: When more than :data:`FACET_SAMPLE` tenders match: the counts are of that many, the newest
    #: (None: of every matching tender).
    sampled: int | None = None
    #: True when more than :data:`COUNT_EXACT_UP_TO` tenders match: ``total`` is then an estimate
    #: (never below that bound), to be shown as one ("about").
    estimated: bool = False


def flags_of(source: Connection | Engine, ocids: list[str]) -> dict[str, list[str]]:
    """The red flag codes each of ``ocids`` raises, in catalogue order (for the list's markers);
    tenders raising none are left out."""
    rows = redflags.flag_rows().subquery()
    with _connection(source) as conn:
        found = conn.execute(select(rows.c.ocid, rows.c.code).where(rows.c.ocid.in_(ocids))).all()
    raised: dict[str, set[str]] = {}
    for ocid, code in found:
        raised.setdefault(ocid, set()).add(code)
    return {ocid: [c for c in redflags.CODES if c in codes] for ocid, codes in raised.items()}


def _supplier_labels(conn: Connection, keys: list[tuple[str, int]]) -> list[tuple[str, str, int]]:
    """Supplier facet rows: each organisation key (ledger.procurement.organisations) with a name it
    won under (that of a tender with that one supplier), else the key itself."""
    s, t = tender_suppliers.c, tender_index.c
    names = dict(
        conn.execute(
            select(s.supplier, func.min(t.suppliers))
            .join(tender_index, t.ocid == s.ocid)
            .where(s.supplier.in_([k for k, _ in keys]), t.suppliers != "", ~t.suppliers.contains("\n"))
            .group_by(s.supplier)
        ).all()
    )
    return [(key, names.get(key) or key.removeprefix("name:"), n) for key, n in keys]


def _buyer_labels(conn: Connection, keys: list[tuple[str, int]]) -> list[tuple[str, str, int]]:
    """Buyer facet rows: each buyer id with the name its latest tender gives it (a walk of the
    buyer's listing index, one row), else the id itself."""
    t = tender_index.c
    latest = [
        select(
            select(t.buyer_id, t.buyer_name)
            .where(t.buyer_id == key, t.buyer_name.is_not(None))
            .order_by(t.listed_at.desc(), t.ocid.desc())
            .limit(1)
            .subquery()
        )
        for key, _ in keys
    ]
    names: dict[str, str] = dict(conn.execute(union_all(*latest)).all())
    return [(key, names.get(key) or key, n) for key, n in keys]


def _top(counter: Counter[Any]) -> list[tuple[str, str, int]]:
    """The :data:`FACET_VALUES` commonest values of ``counter``, ties by value."""
    rows = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:FACET_VALUES]
    return [(str(value), str(value), n) for value, n in rows]


def _listed(conn: Connection) -> int:
    """How many tenders are listed, estimated without reading the table (SQLite: the largest
    rowid; PostgreSQL: the planner's row count, if the table was analysed)."""
    if conn.dialect.name == "sqlite":
        return int(conn.exec_driver_sql("SELECT coalesce(max(rowid), 0) FROM tender_index").scalar_one())
    rows = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'tender_index'::regclass").scalar_one()
    if rows is not None and rows > 0:
        return int(rows)
    return int(conn.execute(select(func.count()).select_from(tender_index)).scalar_one())


def _estimate(conn: Connection, counted: int, oldest: str | None, floor: int) -> int:
    """How many tenders match, from the newest ``counted`` of them, the oldest of which is
    ``oldest``: as many as their share of the tenders listed since it, over every listed tender;
    at least ``floor`` (how many are known to match). The count since it is a walk of the listing
    index from its time, given as a value (a bound the planner cannot see let PostgreSQL read the
    whole table)."""
    if not counted or oldest is None:
        return floor
    t = tender_index.c
    moment = conn.execute(select(t.listed_at).where(t.ocid == oldest)).scalar_one()
    since = int(conn.execute(select(func.count()).where(t.listed_at >= moment)).scalar_one())
    return max(floor, round(counted * _listed(conn) / max(since, 1)))


def _counted(conn: Connection, wanted: Filters, sample: int) -> tuple[_Search, int]:
    """The search whose newest ``sample`` rows the facets count, and how many tenders match (up
    to :data:`COUNT_EXACT_UP_TO` and one). SQLite, with words: their newest matches are read
    once from the full-text index (:func:`_newest_keys`); when no more than :data:`PROBE_ABOVE`
    match, those are the rows; when more and no other filter is given, the matches are counted
    in the index alone and the sample is the newest by full-text key (as relevance ranks them);
    with other filters, the newest are found by a walk of the listing index that probes each row."""
    dialect, words = conn.dialect.name, wanted.words()
    found = _search(dialect, wanted)
    if dialect == "sqlite" and words:
        newest = _newest_keys(conn, words, max(sample, PROBE_ABOVE) + 1)
        if len(newest) <= PROBE_ABOVE:
            found = _search(dialect, wanted, keys=newest)
        elif wanted.words_alone():
            hits = select(_SEARCH.c.rowid).where(_sqlite_match(words)).limit(COUNT_EXACT_UP_TO + 1).subquery()
            total = int(conn.execute(select(func.count()).select_from(hits)).scalar_one())
            return _search(dialect, wanted, keys=newest[:sample]), total
    some = select(literal(1)).select_from(found.source).where(*found.where).limit(COUNT_EXACT_UP_TO + 1)
    total = int(conn.execute(select(func.count()).select_from(some.subquery())).scalar_one())
    if total > sample and dialect == "sqlite" and words and found.source is tender_index:
        found = _search(dialect, wanted, probe=True)  # the newest, by a walk of the listing index
    return found, total


def _bytewise(dialect: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """``value`` compared by code point on both engines (PostgreSQL's text follows the database's
    collation; SQLite's BINARY and Python's str order by code point already), so that ties and
    labels come out the same on both."""
    return value.collate("C") if dialect == "postgresql" else value


def _year(dialect: str, listed_at: ColumnElement[Any]) -> ColumnElement[Any]:
    """The UTC year of a listing time, as four digits of text (SQLite stores instants as UTC text)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", listed_at), "YYYY")
    return func.substr(listed_at, 1, 4)


def _facet_counts(conn: Connection, found: _Search, sample: int) -> list[Any]:
    """The facets of the newest ``sample`` rows of ``found``, counted by the database in one
    statement (rows of facet, value, label, count): status, method, year and currency whole, the
    :data:`FACET_VALUES` commonest buyers and suppliers, each red flag code and ``any``, ``rows``
    (how many were counted) and ``oldest`` (value: the ocid of the oldest counted)."""
    dialect, t = conn.dialect.name, tender_index.c
    newest = (
        select(t.ocid, t.status, t.method, t.listed_at, t.currency, t.buyer_id)
        .select_from(found.source)
        .where(*found.where)
        .order_by(t.listed_at.desc(), t.ocid.desc())
        .limit(sample)
        .cte("newest")
    )
    n, none = func.count().label("n"), cast(literal(None), tender_index.c.title.type).label("label")
    ocids = select(newest.c.ocid)

    def grouped(name: str, value: ColumnElement[Any], *, top: bool = False) -> Any:
        rows = select(literal(name).label("facet"), value.label("value"), none, n).where(value.is_not(None))
        rows = rows.group_by(value)
        if top:  # the commonest, ties by value as _top orders them
            rows = rows.order_by(n.desc(), _bytewise(dialect, value)).limit(FACET_VALUES)
        return select(rows.subquery())

    c, s = newest.c, tender_suppliers.c
    flagged = redflags.flag_rows(ocids).subquery()
    parts = [
        grouped("status", c.status),
        grouped("method", c.method),
        grouped("currency", c.currency),
        grouped("year", _year(dialect, c.listed_at)),
        grouped("buyer", c.buyer_id, top=True),
        select(
            select(literal("supplier").label("facet"), s.supplier.label("value"), none, n)
            .where(s.ocid.in_(ocids))
            .group_by(s.supplier)
            .order_by(n.desc(), _bytewise(dialect, s.supplier))
            .limit(FACET_VALUES)
            .subquery()
        ),
        select(literal("flag").label("facet"), flagged.c.code.label("value"), none, n).group_by(flagged.c.code),
        select(
            literal("flag").label("facet"),
            literal("any").label("value"),
            none,
            func.count(func.distinct(flagged.c.ocid)),
        ),
        select(literal("rows").label("facet"), literal("").label("value"), none, func.count()).select_from(newest),
        select(
            select(literal("oldest").label("facet"), c.ocid.label("value"), none, literal(1).label("n"))
            .order_by(c.listed_at, c.ocid)
            .limit(1)
            .subquery()
        ),
    ]
    return list(conn.execute(union_all(*parts)).all())


def facets(source: Connection | Engine, *, sample: int | None = None, **filters: Any) -> Facets:
    """The number of tenders matching ``filters`` (the fields of :class:`Filters`) and, per facet,
    how many of them have each value: of every matching tender, or of the newest ``sample``
    (default :data:`FACET_SAMPLE`) when more match (``Facets.sampled`` then says so). The number
    is exact up to :data:`COUNT_EXACT_UP_TO`, estimated above it (``Facets.estimated``). Raises
    :class:`InvalidArgumentError` naming a bad filter."""
    wanted = Filters(**filters)
    sample = FACET_SAMPLE if sample is None else sample
    with _connection(source) as conn:
        found, total = _counted(conn, wanted, sample)
        estimated = total > COUNT_EXACT_UP_TO
        by_facet: dict[str, Counter[str]] = {name: Counter() for name in (*FACETS, "rows", "oldest")}
        for row in _facet_counts(conn, found, sample):
            by_facet[row.facet][row.value] = int(row.n)
        top_buyers = _top(by_facet["buyer"])
        buyers_ = _buyer_labels(conn, [(key, n) for key, _, n in top_buyers]) if top_buyers else []
        if estimated:
            total = _estimate(conn, by_facet["rows"][""], next(iter(by_facet["oldest"]), None), total)
        top_suppliers = _top(by_facet["supplier"])
        suppliers_ = _supplier_labels(conn, [(key, n) for key, _, n in top_suppliers]) if top_suppliers else []
    counts: dict[str, list[tuple[str, str, int]]] = {
        name: _top(by_facet[name]) for name in ("status", "method", "year", "currency")
    }
    counts["buyer"] = buyers_
    counts["supplier"] = suppliers_
    flags = by_facet["flag"]
    counts["flag"] = [("any", "any", flags["any"])] if flags["any"] else []
    counts["flag"] += [(code, code, flags[code]) for code in redflags.CODES if flags.get(code)]
    return Facets(total, {name: counts[name] for name in FACETS}, sample if total > sample else None, estimated)


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
