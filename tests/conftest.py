"""Shared fixtures: real databases (SQLite files and PostgreSQL), never stand-ins.

PostgreSQL tests use the server at ``TENDERPROOF_TEST_PG_URL`` (default: the
local server, database ``test``, user ``postgres``). Each test gets a database
of its own, dropped afterwards. They are not skipped when the server is down:
they fail, so CI cannot go green without having run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings

from ledger.log import Log
from ledger.store.db import normalize_url
from tests.pg import scratch_database

#: Hypothesis without its per-example time limit: the tests check behaviour, never speed (speed is
#: measured by bench/), and a shared two-core machine under load slows an example past the 200 ms
#: default now and then. A test's own ``@settings`` still sets its number of examples.
settings.register_profile("tenderproof", deadline=None)
settings.load_profile("tenderproof")

PG_ADMIN_URL = normalize_url(os.environ.get("TENDERPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
ORIGIN = "tenderproof.test/log"
#: A fixed instant for tests that don't care about time (effects are passed in, not patched).
T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def _pg_database() -> Iterator[str]:
    with scratch_database(PG_ADMIN_URL) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tenderproof.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each engine in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tenderproof.sqlite3'}"
    else:
        yield from _pg_database()


@pytest.fixture
def log(db_url: str) -> Iterator[Log]:
    """A migrated, empty log on each engine in turn."""
    opened = Log.open(db_url, origin=ORIGIN)
    try:
        yield opened
    finally:
        opened.close()
