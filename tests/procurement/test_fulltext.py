"""Full-text search, facets and the new filters on SQLite (FTS5) and PostgreSQL (tsvector): the
same data gives the same results on both engines, whatever the case, accents or apostrophes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from sqlalchemy import select, text

from ledger.core.errors import InvalidArgumentError
from ledger.log import Log
from ledger.procurement import fulltext, importer, project, query
from ledger.procurement.record import record
from ledger.submission import Submission
from tests.conftest import T0

from .helpers import CHAIN_ID, at, bid, commitment, published


def test_words_are_folded_the_same_for_documents_and_queries() -> None:
    assert fulltext.terms("Constructora AZTLÁN, S.A.") == ["constructora", "aztlan", "s", "a"]
    assert fulltext.terms("Renovación") == fulltext.terms("renovacion") == ["renovacion"]
    assert (
        fulltext.terms("здоров\u2019я") == fulltext.terms("здоров'я") == fulltext.terms("ЗДОРОВ\u02bcЯ") == ["здоровя"]
    )
    assert fulltext.terms("O'Brien_50%") == ["obrien", "50"]
    assert fulltext.terms("Straße ﬁre") == ["strasse", "fire"]
    assert fulltext.document("Lot 1:  Roads", None, "Žilina") == "lot 1 roads zilina"
    assert fulltext.query_terms("road ROAD roads") == ["road", "roads"]
    assert fulltext.sqlite_match(["a", "b"]) == '"a" "b"*'
    assert fulltext.postgres_tsquery(["a", "b"]) == "'a' & 'b':*"


def _release(n: int, year: int, **extra: Any) -> dict[str, Any]:
    return {
        "ocid": f"ocds-ft0000-{n}",
        "id": f"r{n}",
        "date": f"{year}-02-01T10:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        **extra,
    }


def _party(pid: str, name: str, role: str) -> dict[str, Any]:
    return {"id": pid, "name": name, "roles": [role], "identifier": {"scheme": "XX-TEST", "id": pid}}


def _award(supplier: tuple[str, str], amount: float, currency: str) -> dict[str, Any]:
    return {
        "id": "a1",
        "status": "active",
        "value": {"amount": amount, "currency": currency},
        "suppliers": [{"id": supplier[0], "name": supplier[1]}],
    }


AZTLAN = ("S-1", "Constructora Aztlán SA")
ACME = ("S-2", "Acme Ltd")
RELEASES = [
    _release(
        1,
        2025,
        buyer={"id": "B-1", "name": "Municipio de Aztlán"},
        parties=[_party("B-1", "Municipio de Aztlán", "buyer"), _party(*AZTLAN, "supplier")],
        tender={
            "id": "t1",
            "title": "Renovación del mercado",
            "status": "complete",
            "procurementMethod": "open",
            "numberOfTenderers": 1,
            "value": {"amount": 1000, "currency": "EUR"},
        },
        awards=[_award(AZTLAN, 2000, "EUR")],
    ),
    _release(
        2,
        2026,
        buyer={"id": "B-2", "name": "Міністерство охорони здоров\u2019я"},
        parties=[_party("B-2", "Міністерство охорони здоров\u2019я", "buyer")],
        tender={
            "id": "t2",
            "title": "Закупівля для охорони здоров\u2019я",
            "status": "active",
            "procurementMethod": "limited",
            "items": [{"id": "i1", "description": "Вакцини"}],
            "value": {"amount": 5000, "currency": "UAH"},
        },
    ),
    _release(
        3,
        2026,
        buyer={"id": "B-1", "name": "Municipio de Aztlán"},
        parties=[_party("B-1", "Municipio de Aztlán", "buyer"), _party(*ACME, "supplier")],
        tender={
            "id": "t3",
            "title": "Renewal of the Aztec room",
            "description": "Advice by O\u2019Brien consulting",
            "status": "active",
            "procurementMethod": "open",
            "value": {"amount": 900, "currency": "EUR"},
        },
        awards=[_award(ACME, 500, "EUR")],
    ),
    _release(
        4,
        2026,
        buyer={"id": "B-3", "name": "Школа 5"},
        parties=[_party("B-3", "Школа 5", "buyer")],
        tender={"id": "t4", "title": "Здоров'я школярів", "status": "active"},
    ),
    _release(
        5,
        2024,
        buyer={"id": "B-4", "name": "Ciudad Norte"},
        parties=[_party("B-4", "Ciudad Norte", "buyer")],
        tender={
            "id": "t5",
            "title": "Informe anual",
            "description": " ".join(["palabra"] * 40) + " aztlan",
            "status": "active",
        },
    ),
]


@pytest.fixture
def imported(log: Log) -> Log:
    package = {"uri": "u", "version": "1.1", "publishedDate": "2026-03-01T00:00:00Z", "publisher": {"name": "p"}}
    raw = json.dumps({**package, "releases": RELEASES}).encode()
    report = importer.import_files(log, [("ft.json", io.BytesIO(raw))], now=T0)
    assert report.imported == len(RELEASES)
    return log


def _found(log: Log, **filters: Any) -> list[int]:
    page = query.search_tenders(log.engine, sort="published_asc", limit=50, **filters)
    return [int(t.ocid.rsplit("-", 1)[1]) for t in page.items]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Constructora Aztlan", [1]),
        ("constructora aztlán", [1]),
        ("AZTLAN", [5, 1, 3]),  # buyer, supplier, description: in publication order
        ("renovacion", [1]),
        ("Renovación", [1]),
        ("renov", [1]),  # a prefix
        ("renov mercado", []),  # only the last word is also a prefix
        ("renovacion merc", [1]),
        ("renewal", [3]),
        ("здоров'я", [2, 4]),
        ("здоров\u2019я", [2, 4]),
        ("ЗДОРОВ\u02bcЯ охорони", [2]),
        ("вакцини", [2]),  # an item's description
        ("obrien", [3]),
        ("O'Brien", [3]),  # the description
        ("acme", [3]),  # a supplier
        ("B-4", [5]),  # the buyer's id
        ("aztlan nothing", []),
        ("   ", [5, 1, 2, 3, 4]),  # no words: no text filter
    ],
)
def test_text_search_ignores_case_accents_and_apostrophes(imported: Log, q: str, expected: list[int]) -> None:
    assert _found(imported, q=q) == expected


def test_relevance_ranks_the_closer_match_first_on_both_engines(imported: Log) -> None:
    page = query.search_tenders(imported.engine, q="aztlan")  # relevance is the default with q
    assert page.items[0].ocid == "ocds-ft0000-1"
    assert page.items[-1].ocid == "ocds-ft0000-5"  # one word among 41
    first = query.search_tenders(imported.engine, q="aztlan", limit=1)
    rest = query.search_tenders(imported.engine, q="aztlan", limit=5, cursor=first.next_cursor)
    assert [t.ocid for t in first.items + rest.items] == [t.ocid for t in page.items]
    with pytest.raises(InvalidArgumentError) as caught:
        query.search_tenders(imported.engine, sort="relevance")
    assert caught.value.field == "sort"


def test_filters_on_awarded_value_supplier_method_year_and_flags(imported: Log) -> None:
    assert _found(imported, awarded_min=1500) == [1]
    assert _found(imported, awarded_max=1500) == [3]
    assert _found(imported, value_min=950) == [1, 2]  # the estimate
    assert _found(imported, supplier="XX-TEST/S-2") == [3]
    assert _found(imported, method="limited") == [2]
    assert _found(imported, year=2026) == [2, 3, 4]
    assert _found(imported, flag="single_bidder") == [1]
    assert _found(imported, flag="award_above_estimate") == [1]
    assert _found(imported, flag="any") == [1]
    assert _found(imported, flag="any", q="renewal") == []
    with pytest.raises(InvalidArgumentError) as caught:
        _found(imported, flag="no_such_flag")
    assert caught.value.field == "flag"
    with pytest.raises(InvalidArgumentError) as caught:
        _found(imported, awarded_min=5, awarded_max=1)
    assert caught.value.field == "awarded_max"


def test_facets_count_the_matching_tenders(imported: Log) -> None:
    found = query.facets(imported.engine, q="aztlan")
    assert found.total == 3
    assert found.counts["status"] == [("active", "active", 2), ("complete", "complete", 1)]
    assert found.counts["buyer"] == [("B-1", "Municipio de Aztlán", 2), ("B-4", "Ciudad Norte", 1)]
    assert found.counts["year"] == [("2024", "2024", 1), ("2025", "2025", 1), ("2026", "2026", 1)]
    assert found.counts["currency"] == [("EUR", "EUR", 2)]
    assert found.counts["method"] == [("open", "open", 2)]
    assert found.counts["supplier"] == [
        ("XX-TEST/S-1", "Constructora Aztlán SA", 1),
        ("XX-TEST/S-2", "Acme Ltd", 1),
    ]
    assert found.counts["flag"] == [
        ("any", "any", 1),
        ("single_bidder", "single_bidder", 1),
        ("award_above_estimate", "award_above_estimate", 1),
        ("R018", "R018", 1),  # Cardinal's single bid received
    ]
    everything = query.facets(imported.engine)
    assert everything.total == 5
    assert everything.counts["currency"] == [("EUR", "EUR", 2), ("UAH", "UAH", 1)]


def test_the_index_follows_rebuilds_and_uses_the_engine_index(imported: Log) -> None:
    project.rebuild(imported.engine)
    assert _found(imported, q="renovacion") == [1]
    with imported.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = " ".join(
                str(r[-1])
                for r in conn.execute(
                    text("EXPLAIN QUERY PLAN SELECT rowid FROM tender_search WHERE tender_search MATCH 'renovacion*'")
                )
            )
            assert "VIRTUAL TABLE INDEX" in plan
        else:
            conn.execute(text("SET enable_seqscan = off"))
            plan = " ".join(
                r[0]
                for r in conn.execute(
                    text("EXPLAIN SELECT ocid FROM tender_index WHERE search_vector @@ 'renovacion:*'::tsquery")
                )
            )
            assert "ix_tender_index_search" in plan


def test_the_index_survives_vacuum_read_either_way(imported: Log) -> None:
    """SQLite's VACUUM renumbers the implicit rowids of ``tender_index`` (which has no INTEGER
    PRIMARY KEY): the full-text index is keyed by ``tender_search_keys.id`` instead (migration
    0018), so the same words find the same tenders after a rebuild (new rowids) and a VACUUM."""
    before = {q: _found(imported, q=q) for q in ("aztlan", "renovacion", "acme")}
    project.rebuild(imported.engine)  # every projection row deleted and written again
    with imported.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("COMMIT")
            conn.exec_driver_sql("VACUUM")
            rowids = [r[0] for r in conn.exec_driver_sql("SELECT rowid FROM tender_index ORDER BY rowid")]
            assert rowids == list(range(1, len(rowids) + 1))  # renumbered by the VACUUM
    assert {q: _found(imported, q=q) for q in before} == before
    assert before["aztlan"] == [5, 1, 3]
    for sort in ("relevance", "published_desc", "value_desc"):
        # both ways of reading the matches (from the index, or probing them from a walk)
        for probe_above in (0, 10_000):
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(query, "PROBE_ABOVE", probe_above)
                page = query.search_tenders(imported.engine, q="aztlan", sort=sort)
            assert sorted(int(t.ocid.rsplit("-", 1)[1]) for t in page.items) == (
                [1, 3] if sort == "value_desc" else [1, 3, 5]
            ), (sort, probe_above)


def test_facets_of_a_broad_search_count_its_newest_matches_and_say_so(imported: Log) -> None:
    every = query.facets(imported.engine)
    assert (every.total, every.sampled) == (5, None)
    few = query.facets(imported.engine, sample=2)
    assert (few.total, few.sampled) == (5, 2)  # the total stays exact
    assert sum(n for _, _, n in few.counts["status"]) == 2
    by_year = {int(year): n for year, _, n in few.counts["year"]}
    wanted: dict[int, int] = {}
    for t in query.search_tenders(imported.engine, limit=2).items:
        assert t.published_at is not None
        wanted[t.published_at.year] = wanted.get(t.published_at.year, 0) + 1
    assert by_year == wanted
    # the same with words, on both ways of reading the matches (SQLite)
    for probe_above in (0, 10_000):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(query, "PROBE_ABOVE", probe_above)
            found = query.facets(imported.engine, q="aztlan", sample=1)
        assert (found.total, found.sampled) == (3, 1)
        assert sum(n for _, _, n in found.counts["status"]) == 1


def _terms_by_categories(text: str) -> list[str]:
    """The words of ``text`` as the Unicode walk of :func:`fulltext.terms` cuts them (no fast path)."""
    import unicodedata

    folded = "".join(
        c
        for c in unicodedata.normalize("NFKD", text)
        if unicodedata.category(c) != "Mn" and c not in fulltext.APOSTROPHES
    )
    out: list[str] = []
    word: list[str] = []
    for char in unicodedata.normalize("NFKD", folded.casefold()):
        if fulltext._is_word_char(char):
            word.append(char)
        elif word:
            out.append("".join(word))
            word = []
    return out + (["".join(word)] if word else [])


@pytest.mark.parametrize("seed", range(4))
def test_ascii_text_is_cut_into_the_same_words_as_by_unicode_categories(seed: int) -> None:
    import random

    rng = random.Random(seed)
    for _ in range(2000):
        text = "".join(chr(rng.randrange(128)) for _ in range(rng.randrange(40)))
        assert fulltext.terms(text) == _terms_by_categories(text), repr(text)
    assert fulltext.terms("Don't  BUY_it: O'Neil`s 12-B") == ["dont", "buy", "it", "oneils", "12", "b"]


@pytest.mark.parametrize("seed", range(4))
def test_accented_latin_text_is_cut_into_the_same_words_as_by_the_unicode_walk(seed: int) -> None:
    """Text that is ASCII once NFKD's combining marks are dropped (accented Latin: most
    publishers' names and titles) is read as ASCII: the same words as the walk by categories."""
    import random
    import unicodedata

    alphabet = (
        [chr(c) for c in range(32, 0x180)] + [chr(c) for c in range(0x300, 0x370)] + list("\u2019\u02bc\u00b4ﬁ²Ж")
    )
    rng = random.Random(seed)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        assert fulltext.terms(text) == fulltext._unicode_terms(unicodedata.normalize("NFKD", text)), repr(text)
    assert fulltext.terms("Pérez García, Ñandú S.A. d\u2019Alembert") == [
        "perez",
        "garcia",
        "nandu",
        "s",
        "a",
        "dalembert",
    ]


def _newest_matches(log: Log, q: str, among: int) -> set[int]:
    """The ``among`` newest matches of ``q`` as each engine orders them for ranking: SQLite by
    full-text key (recording order), PostgreSQL by listing time."""
    matches = _found(log, q=q)
    with log.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            keyed = conn.exec_driver_sql("SELECT ocid FROM tender_search_keys ORDER BY id DESC").scalars()
            ordered = [int(ocid.rsplit("-", 1)[1]) for ocid in keyed]
        else:
            newest_first = query.search_tenders(log.engine, sort="published_desc").items
            ordered = [int(t.ocid.rsplit("-", 1)[1]) for t in newest_first]
    return set([n for n in ordered if n in matches][:among])


def test_relevance_of_a_broad_word_ranks_its_newest_matches_and_says_so(imported: Log) -> None:
    whole = query.search_tenders(imported.engine, q="aztlan")
    assert whole.ranked_among is None
    assert [int(t.ocid.rsplit("-", 1)[1]) for t in whole.items] == [1, 3, 5]  # the closest match first
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(query, "RANK_AMONG", 3)  # exactly as many as match: nothing left out
        assert query.search_tenders(imported.engine, q="aztlan") == whole
        patch.setattr(query, "RANK_AMONG", 2)
        cut = query.search_tenders(imported.engine, q="aztlan")
        assert cut.ranked_among == 2
        newest = _newest_matches(imported, "aztlan", 2)
        # the best of the newest two, in the order the whole ranking gives them
        assert [t.ocid for t in cut.items] == [t.ocid for t in whole.items if int(t.ocid.rsplit("-", 1)[1]) in newest]
        # page by page, the same two and no more
        first = query.search_tenders(imported.engine, q="aztlan", limit=1)
        assert first.ranked_among == 2 and first.next_cursor is not None
        second = query.search_tenders(imported.engine, q="aztlan", limit=1, cursor=first.next_cursor)
        assert [t.ocid for t in first.items + second.items] == [t.ocid for t in cut.items]
        assert second.next_cursor is None
        # with another filter, or in another order, every match is read
        assert query.search_tenders(imported.engine, q="aztlan", status="active").ranked_among is None
        assert sorted(_found(imported, q="aztlan")) == [1, 3, 5]


def test_the_count_of_a_broad_search_is_an_estimate_and_says_so(imported: Log) -> None:
    exact = query.facets(imported.engine, q="aztlan")
    assert (exact.total, exact.estimated) == (3, False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(query, "COUNT_EXACT_UP_TO", 3)  # exactly as many as match: still exact
        assert query.facets(imported.engine, q="aztlan") == exact
        patch.setattr(query, "COUNT_EXACT_UP_TO", 2)
        # every match is in the sample: the estimate is their share of all tenders, times all
        whole = query.facets(imported.engine, q="aztlan")
        assert (whole.total, whole.estimated, whole.sampled) == (3, True, None)
        assert whole.counts == exact.counts
        everything = query.facets(imported.engine)
        assert (everything.total, everything.estimated) == (5, True)
        # from one sampled match: never below what is known to match (more than 2)
        for probe_above in (0, 10_000):
            patch.setattr(query, "PROBE_ABOVE", probe_above)
            rough = query.facets(imported.engine, q="aztlan", sample=1)
            assert rough.estimated and rough.total >= 3 and rough.sampled == 1


def _ocid_numbers(page: query.Page) -> list[int]:
    return [int(t.ocid.rsplit("-", 1)[1]) for t in page.items]


@pytest.mark.parametrize("sort", ["published_desc", "published_asc"])
def test_a_broad_listing_by_time_walks_its_index_in_batches_in_exact_order(imported: Log, sort: str) -> None:
    """Words matching more than PROBE_ABOVE tenders listed by time: the listing index is walked a
    batch at a time and each batch's matches read from the full-text index bounded by its keys.
    Tender 5 is the oldest listed but was imported last (the highest key): out of key order, it
    must still come where the listing puts it, in every batch size and across cursor pages."""
    whole = query.search_tenders(imported.engine, q="aztlan", sort=sort)  # read from the index
    expected = [3, 1, 5] if sort == "published_desc" else [5, 1, 3]
    assert _ocid_numbers(whole) == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(query, "PROBE_ABOVE", 0)
        for first in (1, 2, 512):
            patch.setattr(query, "WALK_FIRST", first)
            assert _ocid_numbers(query.search_tenders(imported.engine, q="aztlan", sort=sort)) == expected
            paged, cursor = [], None
            while True:
                page = query.search_tenders(imported.engine, q="aztlan", sort=sort, limit=1, cursor=cursor)
                paged += _ocid_numbers(page)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert paged == expected, first
            # with another filter the walk follows that filter's rows
            assert _ocid_numbers(query.search_tenders(imported.engine, q="aztlan", sort=sort, status="active")) == [
                n for n in expected if n != 1
            ]


def _bm25_like(text: str, words: list[str]) -> float:
    """query._score in Python: the formula the docs give (open-data.md, search)."""
    padded, count = f" {text} ", len(text.split(" "))
    norm = 1.2 * (1 - 0.75 + 0.75 * count / 32)
    total = 0.0
    for i, word in enumerate(words):
        needle = f" {word}" if i == len(words) - 1 else f" {word} "
        frequency = (len(padded) - len(padded.replace(needle, ""))) / len(needle)
        total += frequency * 2.2 / (frequency + norm)
    return total


def test_relevance_is_the_documented_formula(imported: Log) -> None:
    """The score is computed in plain SQL from each ranked tender's words, the same on both
    engines: the values equal the documented formula, a word said more often ranks higher at the
    same length, and the order of a search is exact."""
    from ledger.store.schema import tender_index

    for words in (["aztlan"], ["municipio", "azt"], ["palabra"]):
        with imported.engine.connect() as conn:
            rows = conn.execute(
                select(tender_index.c.search_text, query._score(words).label("score")).where(
                    tender_index.c.search_text != ""
                )
            ).all()
        assert rows
        for document, score in rows:
            assert score == pytest.approx(_bm25_like(document, words), rel=1e-12), (document, words)
            # the ranking of the newest matches scores in Python: the very same double
            assert query.score_text(document, words) == score, (document, words)
    assert _bm25_like("a b", ["a"]) < _bm25_like("a a", ["a"])  # more often, same length
    assert _bm25_like("a b", ["a"]) > _bm25_like("a b c d e f g h", ["a"])  # shorter
    ranked = query.search_tenders(imported.engine, q="aztlan")
    assert _ocid_numbers(ranked) == [1, 3, 5]


#: Last words longer than the FTS5 prefix index (4 characters), some sharing their first four.
PREFIXED = [
    _release(6, 2023, tender={"id": "t6", "title": "Renown bridge", "value": {"amount": 10, "currency": "EUR"}}),
    _release(7, 2023, tender={"id": "t7", "title": "Renovate the school", "value": {"amount": 20, "currency": "EUR"}}),
    _release(8, 2022, tender={"id": "t8", "title": "Renown park renown", "value": {"amount": 30, "currency": "EUR"}}),
    _release(9, 2027, tender={"id": "t9", "title": "Renown road", "status": "cancelled"}),
]


@pytest.fixture
def prefixed(imported: Log) -> Log:
    package = {"uri": "u", "version": "1.1", "publishedDate": "2026-03-01T00:00:00Z", "publisher": {"name": "p"}}
    raw = json.dumps({**package, "releases": PREFIXED}).encode()
    assert importer.import_files(imported, [("more.json", io.BytesIO(raw))], now=T0).imported == len(PREFIXED)
    return imported


def _holding(log: Log, prefix: str) -> set[int]:
    """The tenders a word of whose text begins with ``prefix`` (what ``q`` must find)."""
    with log.engine.connect() as conn:
        rows = conn.execute(text("SELECT ocid, search_text FROM tender_index")).all()
    return {int(ocid.rsplit("-", 1)[1]) for ocid, words in rows if any(w.startswith(prefix) for w in words.split())}


@pytest.mark.parametrize("q", ["renova", "renown", "renovate", "aztla", "renovx", "reno"])
def test_a_last_word_longer_than_the_prefix_index_finds_exactly_its_words(prefixed: Log, q: str) -> None:
    """SQLite matches a last word longer than 4 characters by its first four in the prefix index
    and confirms the whole of it on the text: every path (the newest matches read at once, the
    walk of the listing index, the probe of another index, the fallback to FTS5's own merge when
    too few candidates hold it) finds exactly the tenders holding a word that begins with it, in
    the same order, on both engines."""
    expected = _holding(prefixed, q)
    assert (q == "renovx") == (not expected)
    reference = {sort: _ocid_numbers(query.search_tenders(prefixed.engine, q=q, sort=sort)) for sort in query.SORTS}
    assert set(reference["published_desc"]) == expected
    assert set(reference["relevance"]) == expected
    assert sorted(reference["published_asc"], reverse=True) == sorted(reference["published_desc"], reverse=True)
    assert query.facets(prefixed.engine, q=q).total == len(expected)
    with prefixed.engine.connect() as conn:
        statuses = {
            int(o.rsplit("-", 1)[1]): st for o, st in conn.execute(text("SELECT ocid, status FROM tender_index"))
        }
    with pytest.MonkeyPatch.context() as patch:
        for probe_above, rank_among, walk_first in ((0, 1, 1), (0, 10_000, 2), (1, 1, 512), (10_000, 10_000, 1)):
            patch.setattr(query, "PROBE_ABOVE", probe_above)
            patch.setattr(query, "RANK_AMONG", rank_among)
            patch.setattr(query, "WALK_FIRST", walk_first)
            for sort in ("published_desc", "published_asc", "value_desc", "value_asc"):
                found = _ocid_numbers(query.search_tenders(prefixed.engine, q=q, sort=sort))
                assert found == reference[sort], (probe_above, rank_among, walk_first, sort)
            ranked = query.search_tenders(prefixed.engine, q=q)
            if ranked.ranked_among is None:
                assert _ocid_numbers(ranked) == reference["relevance"]
            else:  # the newest matches only, in the order of the whole ranking
                assert set(_ocid_numbers(ranked)) <= expected and len(ranked.items) == min(rank_among, len(expected))
            active = _ocid_numbers(query.search_tenders(prefixed.engine, q=q, sort="published_desc", status="active"))
            assert active == [n for n in reference["published_desc"] if statuses[n] == "active"]
            assert query.facets(prefixed.engine, q=q).total == len(expected)


def test_sqlite_confirms_a_long_prefix_on_the_text_or_falls_back_to_fts5(sqlite_url: str) -> None:
    """The newest matches of a last word longer than the prefix index: confirmed on the text of at
    most twice as many candidates of its first four characters; with fewer confirmed among them,
    FTS5's exact match answers (the same keys either way). SQLite's own path: PostgreSQL matches
    prefixes in its GIN index (the test above runs on both)."""
    log = Log.open(sqlite_url, origin="tenderproof.test/log")
    try:
        package = {"uri": "u", "version": "1.1", "publishedDate": "2026-03-01T00:00:00Z", "publisher": {"name": "p"}}
        raw = json.dumps({**package, "releases": RELEASES + PREFIXED}).encode()
        assert importer.import_files(log, [("all.json", io.BytesIO(raw))], now=T0).imported == 9
        with log.engine.connect() as conn:
            keyed = dict(conn.execute(text("SELECT ocid, id FROM tender_search_keys")).all())
            keys = {n: keyed[f"ocds-ft0000-{n}"] for n in (1, 6, 7, 8, 9)}
            assert keys[9] > keys[8] > keys[7] > keys[6] > keys[1]  # recorded in that order
            renown = [keys[9], keys[8], keys[6]]
            # 'reno' begins five tenders, 'renown' three: confirmed among the newest candidates
            assert query._newest_keys(conn, ["renown"], 2) == renown[:2]
            assert query._newest_keys(conn, ["renown"], 1) == renown[:1]
            assert query._newest_keys(conn, ["renown"], 10) == renown
            # the two newest candidates (9, 8) hold no 'renova': FTS5's exact match answers
            assert query._newest_keys(conn, ["renova"], 1) == [keys[7]]
            assert query._newest_keys(conn, ["renova"], 2) == [keys[7], keys[1]]
            assert query._newest_keys(conn, ["renovx"], 3) == []
            assert query._newest_keys(conn, ["park", "renown"], 3) == [keys[8]]
    finally:
        log.close()


def test_relevance_pages_follow_the_cursor_through_ties(prefixed: Log) -> None:
    """Tenders 6 and 9 ("Renown bridge", "Renown road") score the same for ``renown``: one page
    at a time, the cursor (score, ocid) continues exactly after the last row, ties by ocid,
    whether every match is ranked or only the newest (both engines)."""
    whole = _ocid_numbers(query.search_tenders(prefixed.engine, q="renown"))
    assert set(whole) == {6, 8, 9}
    assert whole == [8, 9, 6]  # "renown" twice first, then the tie by ocid (both engines)
    for rank_among in (10_000, 3):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(query, "RANK_AMONG", rank_among)
            paged, cursor = [], None
            while True:
                page = query.search_tenders(prefixed.engine, q="renown", limit=1, cursor=cursor)
                paged += _ocid_numbers(page)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert paged == whole


def _search_index(log: Log) -> list[tuple[Any, ...]]:
    """SQLite: the FTS5 index's own rows (its segments); PostgreSQL: each tender's stored words."""
    with log.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return [tuple(r) for r in conn.exec_driver_sql("SELECT id, block FROM tender_search_data ORDER BY id")]
        return [
            tuple(r) for r in conn.execute(text("SELECT ocid, search_vector::text FROM tender_index ORDER BY ocid"))
        ]


def test_the_index_is_rewritten_only_when_a_tenders_words_change(log: Log) -> None:
    """Events that leave a tender's words as they were (a clarification, a bid) leave the full-text
    index as it was (migration 0022: SQLite's trigger runs only when ``search_text`` changes); an
    amended title is found by its new words and no longer by the old ones, on both engines."""
    ocids = [f"ocds-ft0000-{n}" for n in (1, 2)]
    first = [
        Submission(ocid=o, type="tender.published", payload=published(title=f"Alpha bridge {o[-1]}")) for o in ocids
    ]
    record(log, first, now=at(1), signatures="optional", chain_id=CHAIN_ID)
    before = _search_index(log)
    assert _found(log, q="alpha") == [1, 2]
    clarified = {"tender": {"id": "T-1", "enquiries": [{"id": "q1", "answer": "Yes"}]}}
    b, salt = bid(1)
    same = [
        Submission(ocid=ocids[0], type="tender.clarified", payload=clarified),
        Submission(ocid=ocids[1], type="bid.committed", payload={"bidder": b["tenderers"][0], "commitment": commitment(b, salt)}),
    ]  # fmt: skip
    record(log, same, now=at(2), signatures="optional", chain_id=CHAIN_ID)
    record(log, [same[0]], now=at(3), signatures="optional", chain_id=CHAIN_ID)  # one event alone, too
    assert _search_index(log) == before
    amended = {"tender": {"id": "T-1", "title": "Gamma road", "amendments": [{"id": "a1"}]}}
    record(log, [Submission(ocid=ocids[0], type="tender.amended", payload=amended)], now=at(4), signatures="optional", chain_id=CHAIN_ID)  # fmt: skip
    assert _search_index(log) != before
    assert _found(log, q="gamma") == [1]
    assert _found(log, q="alpha") == [2]
    assert _found(log, q="bridge") == [2]
