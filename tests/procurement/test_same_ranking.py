"""Relevance ranks alike on SQLite and PostgreSQL: the same tenders, in the same order, page by
page, with the same cursors (which hold the score: the same bits on both engines)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.log import Log
from ledger.procurement import importer, query
from tests.conftest import ORIGIN, PG_ADMIN_URL, T0
from tests.pg import scratch_database

pytestmark = pytest.mark.postgres

AZTLAN = {"id": "S-1", "name": "Constructora Aztlán SA"}


def _release(ocid: str, n: int, title: str, **tender: Any) -> dict[str, Any]:
    date = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n)  # listed in the order recorded
    return {
        "ocid": f"ocds-ft0000-{ocid}",
        "id": f"r{ocid}",
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tag": ["tender"],
        "initiationType": "tender",
        "tender": {"id": f"t{ocid}", "title": title, "status": "active" if n % 3 else "cancelled", **tender},
    }


TITLES = [
    "Hospital renovación",
    "Renovacion del hospital, hospital central",  # a word twice
    "Hospital general de O'Brien",
    "Вакцини для охорони здоров\u2019я",  # U+2019
    "Здоров'я: hospital de campaña",
    "Renown bridge",
    "Renown road",
    "Renown road",  # ties: the same words, ocids 6 and 7
    "RENOVACIÓN de caminos",
    "Obras de renovación del HOSPITAL de O\u2019Brien y del hospital de Aztlán, segunda fase",
    "Mantenimiento",
    "Hospitalización domiciliaria",  # 'hospital' as a prefix only
    *[f"Suministro hospital lote {n}" for n in range(12)],  # ties at every length
    *[f"Suministro {'de material ' * (n % 4)}hospital" for n in range(8)],
]
RELEASES = [_release(str(n), n, title) for n, title in enumerate(TITLES)]
RELEASES[10]["buyer"] = {"id": "B-7", "name": "Hospital de Aztlán"}
RELEASES[11]["tender"]["description"] = "Servicio de hospital en casa; hospital de día"
# ties that only code point order breaks alike: 'B' sorts before 'a' there, after it in en-US
RELEASES += [_release("B90", 90, "Renown road"), _release("a91", 91, "Renown road")]
RELEASES += [
    {**_release("92", 92, "Renovación de caminos"), "awards": [{"id": "a", "status": "active", "suppliers": [AZTLAN]}]}
]

QUERIES = [
    "hospital",
    "HOSPITAL",
    "hosp",
    "h",
    "renovacion",
    "renovación",
    "RENOVACIÓN",
    "renov",
    "hospital renov",
    "здоров'я",
    "здоров\u2019я",
    "ЗДОРОВ\u02bcЯ",
    "o'brien",
    "obrien",
    "aztlan",
    "Aztlán",
    "renown",
    "renown road",
    "suministro hospital",
    "suministro de h",
    "zzzz",
]


def _import(url: str) -> Log:
    log = Log.open(url, origin=ORIGIN)
    package = {"uri": "u", "version": "1.1", "publishedDate": "2026-03-01T00:00:00Z", "publisher": {"name": "p"}}
    raw = json.dumps({**package, "releases": RELEASES}).encode()
    assert importer.import_files(log, [("same.json", io.BytesIO(raw))], now=T0).imported == len(RELEASES)
    return log


@pytest.fixture
def both(sqlite_url: str) -> Iterator[tuple[Log, Log]]:
    """The same tenders on SQLite and on PostgreSQL (a database collated by en-US, where text
    does not sort by code point)."""
    with scratch_database(PG_ADMIN_URL, icu_locale="en-US") as pg_url:
        lite, pg = _import(sqlite_url), _import(pg_url)
        try:
            yield lite, pg
        finally:
            lite.close()
            pg.close()


def _pages(log: Log, limit: int, **filters: Any) -> tuple[list[str], list[str], int | None]:
    """Every page of a relevance search: the ocids in order, the cursors, ``ranked_among``."""
    ocids: list[str] = []
    cursors: list[str] = []
    cursor = None
    while True:
        page = query.search_tenders(log.engine, limit=limit, cursor=cursor, **filters)
        ocids += [t.ocid for t in page.items]
        if page.next_cursor is None:
            return ocids, cursors, page.ranked_among
        cursors.append(cursor := page.next_cursor)


def _score_of_cursor(cursor: str) -> float:
    score, _ = query._decode_cursor(cursor, "relevance")
    assert isinstance(score, float)
    return score


def test_both_engines_rank_every_query_alike_page_by_page(both: tuple[Log, Log]) -> None:
    lite, pg = both
    found = 0
    for q in QUERIES:
        for filters in ({"q": q}, {"q": q, "status": "active"}):
            whole = _pages(lite, 200, **filters)
            assert _pages(pg, 200, **filters) == whole, filters
            ocids = whole[0]
            found += len(ocids)
            for limit in (1, 3):
                on_sqlite = _pages(lite, limit, **filters)
                assert on_sqlite[0] == ocids, (filters, limit)  # the pages walk the whole ranking
                assert _pages(pg, limit, **filters) == on_sqlite, (filters, limit)  # the same cursors
    assert found > 200
    # accents, apostrophe forms and case find the same tenders in the same order
    for same in (
        ("hospital", "HOSPITAL"),
        ("renovacion", "renovación", "RENOVACIÓN"),
        ("здоров'я", "здоров\u2019я", "ЗДОРОВ\u02bcЯ"),
        ("o'brien", "obrien"),
        ("aztlan", "Aztlán"),
    ):
        assert len({tuple(_pages(pg, 200, q=q)[0]) for q in same}) == 1, same


def test_ties_are_broken_by_ocid_in_code_point_order_on_both_engines(both: tuple[Log, Log]) -> None:
    lite, pg = both
    for log in both:
        ocids = _pages(log, 1, q="renown road")[0]
        # the same words: by ocid, highest first, 'a91' above 'B90' (code points), above '7' and '6'
        assert ocids == [f"ocds-ft0000-{n}" for n in ("a91", "B90", "7", "6")], log.engine.dialect.name
    assert _pages(lite, 1, q="renown road") == _pages(pg, 1, q="renown road")


def test_cursors_hold_the_same_score_bits_on_both_engines(both: tuple[Log, Log]) -> None:
    """The score in a cursor is what :func:`query.score_text` gives the page's last tender, to
    the bit, whichever engine computed it (SQL on PostgreSQL's page, Python among the matches)."""
    from sqlalchemy import text

    lite, pg = both
    with lite.engine.connect() as conn:
        words_of = {ocid: words for ocid, words in conn.execute(text("SELECT ocid, search_text FROM tender_index"))}
    for q in ("hospital", "suministro hospital", "renov", "здоров'я"):
        words = query.Filters(q=q).words()
        for log in both:
            ocids, cursors, _ = _pages(log, 1, q=q)
            assert len(cursors) == len(ocids) - 1 >= 1
            for last, cursor in zip(ocids, cursors, strict=False):
                assert _score_of_cursor(cursor).hex() == query.score_text(words_of[last], words).hex()
        assert _pages(lite, 1, q=q)[1] == _pages(pg, 1, q=q)[1]


@pytest.mark.parametrize(
    ("rank_among", "probe_above", "walk_denser_than", "read_every_up_to"),
    [
        (4, 4, 0.0, 10_000),  # SQLite: matches of words and filters found by a walk
        (4, 4, 2.0, 10_000),  # ... by reading every match
        (4, 4, 2.0, 3),  # ... more than that many: walked after all
        (4, 10_000, 0.0, 10_000),
        (10_000, 4, 2.0, 10_000),
        (10_000, 10_000, 0.0, 10_000),
        (2, 2, 2.0, 10_000),
    ],
)
def test_the_newest_matches_and_every_match_rank_alike(
    both: tuple[Log, Log], rank_among: int, probe_above: int, walk_denser_than: float, read_every_up_to: int
) -> None:
    """Whichever path ranks (the words' newest matches read at once, the matches of words and
    filters found by the full-text keys, by a walk of the listing index or by reading every one,
    cut to the newest few or not), both engines agree."""
    lite, pg = both
    active = len(_pages(lite, 200, q="hospital", status="active")[0])  # every one ranked
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(query, "RANK_AMONG", rank_among)
        patch.setattr(query, "PROBE_ABOVE", probe_above)
        patch.setattr(query, "WALK_DENSER_THAN", walk_denser_than)
        patch.setattr(query, "READ_EVERY_UP_TO", read_every_up_to)
        for q in ("hospital", "renov", "suministro", "renown road", "aztlan"):
            for filters in ({"q": q}, {"q": q, "status": "active"}):
                for limit in (1, 2, 50):
                    on_sqlite = _pages(lite, limit, **filters)
                    assert on_sqlite[0], filters
                    assert _pages(pg, limit, **filters) == on_sqlite, (filters, limit)
        assert _pages(pg, 50, q="hospital")[2] == (rank_among if rank_among < 20 else None)
        # with a filter too, more matches than RANK_AMONG: the newest RANK_AMONG ranked, and said
        cut = [_pages(log, 50, q="hospital", status="active") for log in both]
        assert [len(ocids) for ocids, _, _ in cut] == [min(active, rank_among)] * 2
        assert [among for _, _, among in cut] == [rank_among if rank_among < active else None] * 2
