"""Alembic migrations: idempotent, reversible, and equal to the schema the code queries."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from ledger.log import Log
from ledger.store import db
from ledger.store.schema import metadata
from tests.conftest import ORIGIN


def test_migrated_schema_matches_the_code(db_url: str) -> None:
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine)
        db.migrate(engine)  # idempotent
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine)
        assert db.is_migrated(engine)
        db.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        db.migrate(engine)
        log = Log(engine=engine, origin=ORIGIN)
        assert log.reader.tree_head().size == 0
    finally:
        engine.dispose()
