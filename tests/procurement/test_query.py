"""Tender search on SQLite and PostgreSQL: filters, sorts and keyset pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.log import Log
from ledger.procurement import query
from ledger.procurement.record import record
from ledger.submission import Submission

from .helpers import CHAIN_ID, at, item, published

N = 30


def _ocid(n: int) -> str:
    return f"ocds-tptest-q{n:03}"


def _title(n: int) -> str:
    return f"Lot {n}: {'Road works' if n % 3 == 0 else 'School meals'}"


def _buyer(n: int) -> dict[str, str]:
    return {"id": f"B-{n % 2}", "name": "Ciudad Norte" if n % 2 else "Villa Sur_50%"}


def _submission(n: int) -> Submission:
    if n % 7 == 0:  # only planned
        return item("tender.planned", {"planning": {}, "buyer": _buyer(n), "tender": {"title": _title(n)}}, _ocid(n))
    payload = published(title=_title(n), amount=1000.0 * n)
    if n % 5 == 0:
        del payload["tender"]["value"]
    payload["buyer"] = _buyer(n)
    return item("tender.published", payload, _ocid(n))


def _when(n: int) -> datetime:
    return at(-30 + n // 2)  # two tenders share each instant: ties are broken by ocid


@pytest.fixture
def filled(log: Log) -> Log:
    for n in range(0, N, 2):
        record(log, [_submission(n), _submission(n + 1)], now=_when(n), signatures="optional", chain_id=CHAIN_ID)
    return log


def _walk(log: Log, limit: int, **filters: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = query.search_tenders(log.engine, cursor=cursor, limit=limit, **filters)
        assert len(page.items) <= limit
        seen += [t.ocid for t in page.items]
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor


def _expected(sort: str, keep: Any = lambda n: True) -> list[str]:
    rows = [n for n in range(N) if keep(n)]
    if sort.startswith("value"):
        rows = [n for n in rows if n % 7 and n % 5]
        keyed = sorted(rows, key=lambda n: (1000.0 * n, _ocid(n)))
    else:
        keyed = sorted(rows, key=lambda n: (_when(n), _ocid(n)))
    ocids = [_ocid(n) for n in keyed]
    return ocids[::-1] if sort.endswith("_desc") else ocids


ORDERS = [s for s in query.SORTS if s != "relevance"]  # relevance needs q: see test_fulltext.py


@pytest.mark.parametrize("sort", ORDERS)
@pytest.mark.parametrize("limit", [1, 7, 50])
def test_pages_walk_every_match_once_in_order(filled: Log, sort: str, limit: int) -> None:
    assert _walk(filled, limit, sort=sort) == _expected(sort)


def test_filters(filled: Log) -> None:
    def ocids(**filters: Any) -> list[str]:
        return _walk(filled, 50, sort="published_asc", **filters)

    assert ocids(status="planned") == _expected("published_asc", lambda n: n % 7 == 0)
    assert ocids(status="active") == _expected("published_asc", lambda n: n % 7 != 0)
    assert ocids(buyer="B-1") == _expected("published_asc", lambda n: n % 2 == 1)
    assert ocids(q="ROAD works") == _expected("published_asc", lambda n: n % 3 == 0)
    assert ocids(q="ciudad") == _expected("published_asc", lambda n: n % 2 == 1)
    assert ocids(q="_50%") == _expected("published_asc", lambda n: n % 2 == 0)  # LIKE wildcards are literal
    assert ocids(q="50") == _expected("published_asc", lambda n: n % 2 == 0)
    assert ocids(q="nothing like this") == []
    assert ocids(value_min=5000, value_max=12000, currency="EUR") == _expected(
        "published_asc", lambda n: 5 <= n <= 12 and n % 7 and n % 5
    )
    assert ocids(published_from=_when(10), published_to=_when(14)) == _expected(
        "published_asc", lambda n: 10 <= n <= 15 and n % 7
    )
    assert ocids(status="active", buyer="B-0", q="road", value_min=1) == _expected(
        "published_asc", lambda n: n % 7 and n % 2 == 0 and n % 3 == 0 and n % 5
    )


def test_supplier_names_are_searchable(log: Log) -> None:
    from .helpers import history

    for event_type, payload, when in history():
        record(log, [item(event_type, payload)], now=when, signatures="optional", chain_id=CHAIN_ID)
    [found] = query.search_tenders(log.engine, q="supplier 1 sl").items
    assert found.suppliers == ["Supplier 1 SL"]
    assert query.search_tenders(log.engine, q="supplier 2").items == []  # bid, not awarded


def test_pagination_is_stable_under_inserts(filled: Log) -> None:
    first = query.search_tenders(filled.engine, limit=10)
    # A newer tender and one in the middle arrive between two page requests.
    record(
        filled,
        [item("tender.published", published(title="Late"), "ocds-tptest-z999")],
        now=at(-1),
        signatures="optional",
        chain_id=CHAIN_ID,
    )
    rest = _walk_from(filled, first.next_cursor)
    walked = [t.ocid for t in first.items] + rest
    assert walked == _expected("published_desc")
    assert len(set(walked)) == len(walked)


def _walk_from(log: Log, cursor: str | None) -> list[str]:
    out: list[str] = []
    while cursor is not None:
        page = query.search_tenders(log.engine, limit=10, cursor=cursor)
        out += [t.ocid for t in page.items]
        cursor = page.next_cursor
    return out


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"sort": "title"}, "sort"),
        ({"status": "open"}, "status"),
        ({"value_min": 5, "value_max": 1}, "value_max"),
        ({"published_from": datetime(2026, 1, 1)}, "published_from"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_parameters_are_named(filled: Log, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        query.search_tenders(filled.engine, **kwargs)
    assert caught.value.field == field


def test_a_cursor_belongs_to_its_sort(filled: Log) -> None:
    cursor = query.search_tenders(filled.engine, limit=3, sort="value_asc").next_cursor
    assert cursor is not None
    with pytest.raises(InvalidArgumentError) as caught:
        query.search_tenders(filled.engine, cursor=cursor, sort="published_desc")
    assert caught.value.reason == "was returned for sort 'value_asc', not 'published_desc'"


def test_summary_of_an_unknown_tender(filled: Log) -> None:
    with pytest.raises(NotFoundError):
        query.tender_summary(filled.engine, "ocds-tptest-none")
    with pytest.raises(NotFoundError):
        query.tender_state(filled.engine, "ocds-tptest-none")
    planned = query.tender_summary(filled.engine, _ocid(7))
    assert (planned.status, planned.title, planned.published_at, planned.value_amount) == (
        "planned",
        _title(7),
        None,
        None,
    )
