"""Count + facets (ledger.procurement.query.facets) counted by the database: the same counts,
ties and labels on SQLite and PostgreSQL, following each recorded tender, and red flags read by
the sampled tenders' keys."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select

from ledger.log import Log
from ledger.procurement import importer, query, redflags
from ledger.store import db
from ledger.store.schema import tender_index
from tests.conftest import ORIGIN, T0

PACKAGE = {"uri": "u", "version": "1.1", "publishedDate": "2026-03-01T00:00:00Z", "publisher": {"name": "p"}}


def _release(n: int, buyer: tuple[str, str], *, status: str = "active", year: int = 2026) -> dict[str, Any]:
    return {
        "ocid": f"ocds-fc0000-{n}",
        "id": f"r{n}",
        "date": f"{year}-02-{n:02}T10:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        "buyer": {"id": buyer[0], "name": buyer[1]},
        "tender": {"id": f"t{n}", "title": f"Obra {n}", "status": status, "procurementMethod": "open"},
    }


def _import(log: Log, releases: list[dict[str, Any]]) -> None:
    raw = json.dumps({**PACKAGE, "releases": releases}).encode()
    report = importer.import_files(log, [("fc.json", io.BytesIO(raw))], now=T0)
    assert report.imported == len(releases)


#: Buyer ids that one tender each ties, whose order differs between code point (Python, SQLite)
#: and a language's collation (a PostgreSQL database's may be one): "B-10" < "a-2" < "b-9" < "Á-1" by code
#: point; buyer "b-9" is named "Zeta" on its latest tender, "alpha" on an older one.
TIED = [
    _release(1, ("b-9", "Zeta")),
    _release(2, ("Á-1", "Ágora")),
    _release(3, ("a-2", "Alfa")),
    _release(4, ("B-10", "Beta")),
    _release(5, ("b-9", "alpha"), status="cancelled", year=2025),
]


@pytest.mark.postgres
def test_facets_are_the_same_on_both_engines_ties_by_code_point(sqlite_url: str, pg_url: str) -> None:
    found: list[query.Facets] = []
    for url in (sqlite_url, pg_url):
        log = Log.open(url, origin=ORIGIN)
        try:
            _import(log, TIED)
            if log.engine.dialect.name == "postgresql":  # a collation of a language (the test cluster's is C)
                with log.engine.begin() as conn:
                    for name in ("buyer_id", "buyer_name"):
                        conn.exec_driver_sql(
                            f'ALTER TABLE tender_index ALTER COLUMN {name} TYPE text COLLATE "und-x-icu"'
                        )
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(query, "FACET_VALUES", 3)  # the database keeps the first 3 of the tie
                found.append(query.facets(log.engine))
        finally:
            log.close()
    on_sqlite, on_postgres = found
    assert on_sqlite == on_postgres
    assert on_sqlite.total == 5 and on_sqlite.sampled is None and not on_sqlite.estimated
    assert on_sqlite.counts["buyer"] == [("b-9", "Zeta", 2), ("B-10", "Beta", 1), ("a-2", "Alfa", 1)]
    assert on_sqlite.counts["status"] == [("active", "active", 4), ("cancelled", "cancelled", 1)]
    assert on_sqlite.counts["year"] == [("2026", "2026", 4), ("2025", "2025", 1)]
    assert on_sqlite.counts["method"] == [("open", "open", 5)]
    assert on_sqlite.counts["flag"] == [] and on_sqlite.counts["supplier"] == []


def test_facets_follow_each_recorded_tender(log: Log) -> None:
    _import(log, TIED[:2])
    before = query.facets(log.engine)
    assert before.total == 2
    assert before.counts["buyer"] == [("b-9", "Zeta", 1), ("Á-1", "Ágora", 1)]
    _import(log, [_release(6, ("Á-1", "Ágora"), status="cancelled"), _release(7, ("c-3", "Gamma"))])
    after = query.facets(log.engine)
    assert after.total == 4
    assert after.counts["buyer"] == [("Á-1", "Ágora", 2), ("b-9", "Zeta", 1), ("c-3", "Gamma", 1)]
    assert after.counts["status"] == [("active", "active", 3), ("cancelled", "cancelled", 1)]
    assert query.facets(log.engine, buyer="Á-1").counts["status"] == [
        ("active", "active", 1),
        ("cancelled", "cancelled", 1),
    ]
    # a sample of the newest: the two recorded last (by publication date)
    newest = query.facets(log.engine, sample=2)
    assert (newest.total, newest.sampled) == (4, 2)
    assert newest.counts["buyer"] == [("c-3", "Gamma", 1), ("Á-1", "Ágora", 1)]


def test_the_estimate_counts_the_tenders_listed_since_the_oldest_counted(log: Log) -> None:
    _import(log, TIED)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(query, "COUNT_EXACT_UP_TO", 1)
        # the newest 2 of 5 lie among the 2 listed since the oldest of them: 2 * 5 / 2
        assert (query.facets(log.engine, sample=2).total, query.facets(log.engine, sample=2).estimated) == (5, True)
        # buyer b-9's newest (2026-02-01) lies among the 4 listed since: 1 * 5 / 4, at least 2 known
        rough = query.facets(log.engine, buyer="b-9", sample=1)
        assert (rough.total, rough.estimated, rough.sampled) == (2, True, 1)


def test_flags_of_some_tenders_are_read_by_their_keys(log: Log) -> None:
    releases = [
        {
            **_release(n, ("B-1", "Uno")),
            "parties": [{"id": "S-1", "name": "Sole", "roles": ["supplier"]}],
            "tender": {
                "id": f"t{n}",
                "title": f"Obra {n}",
                "status": "complete",
                "numberOfTenderers": 1,
                "value": {"amount": 100, "currency": "EUR"},
            },
            "awards": [
                {
                    "id": "a1",
                    "status": "active",
                    "value": {"amount": 200, "currency": "EUR"},
                    "suppliers": [{"id": "S-1", "name": "Sole"}],
                }
            ],
        }
        for n in (1, 2, 3)
    ]
    _import(log, [*releases, _release(4, ("B-2", "Dos"))])
    some = select(tender_index.c.ocid).where(tender_index.c.ocid.in_(["ocds-fc0000-1", "ocds-fc0000-4"]))
    with log.engine.connect() as conn:
        every = set(conn.execute(redflags.flag_rows()).all())
        of_some = set(conn.execute(redflags.flag_rows(some)).all())
    assert {ocid for ocid, _ in every} == {"ocds-fc0000-1", "ocds-fc0000-2", "ocds-fc0000-3"}
    assert of_some == {(ocid, code) for ocid, code in every if ocid == "ocds-fc0000-1"}
    assert ("ocds-fc0000-1", "repeat_supplier") in of_some  # the third place flags live
    found = query.facets(log.engine)
    codes = {code for _, code in of_some}
    assert found.counts["flag"][0] == ("any", "any", 3)
    assert {value for value, _, _ in found.counts["flag"][1:]} == codes
    assert all(n == 3 for _, _, n in found.counts["flag"])
    assert found.counts["supplier"] == [("name:sole", "Sole", 3)]


def test_migration_0021_on_a_filled_database_keeps_the_counts(log: Log) -> None:
    """Downgraded to 0020 (the old indexes of 0021) and upgraded again over recorded tenders: the same
    counts, and the sample read from the new indexes alone."""
    _import(log, TIED)
    before = query.facets(log.engine)
    with log.engine.begin() as conn:
        config = db.alembic_config(log.engine)
        config.attributes["connection"] = conn
        command.downgrade(config, "0020")
    indexes = {ix["name"] for ix in inspect(log.engine).get_indexes("tender_index")}
    assert {"ix_tender_index_ocid_listed_at", "ix_tender_index_buyer_id_listed_at_ocid"} <= indexes
    assert query.facets(log.engine) == before
    db.migrate(log.engine)
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(log.engine).get_indexes("tender_index")}
    assert "ix_tender_index_ocid_listed_at" not in indexes
    assert indexes["ix_tender_index_buyer_id_facets"] == [
        "buyer_id",
        "listed_at",
        "ocid",
        "status",
        "method",
        "currency",
    ]
    assert query.facets(log.engine) == before == query.facets(log.engine, sample=5)
    if log.engine.dialect.name == "sqlite":
        with log.engine.connect() as conn:
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN SELECT status, method, currency, listed_at FROM tender_index "
                    "WHERE buyer_id = 'b-9' ORDER BY listed_at DESC LIMIT 2000"
                )
            )
        assert "COVERING INDEX ix_tender_index_buyer_id_facets" in plan
