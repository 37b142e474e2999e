"""A scratch PostgreSQL database, for tests and benchmarks that need one of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger.store.db import normalize_url


@contextmanager
def scratch_database(admin_url: str, *, prefix: str = "tp") -> Iterator[str]:
    """Create a fresh database on the server of ``admin_url``; yield its URL; drop it after."""
    admin_url = normalize_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
