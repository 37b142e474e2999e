"""A scratch PostgreSQL database, for tests and benchmarks that need one of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger.store.db import normalize_url


@contextmanager
def scratch_database(admin_url: str, *, prefix: str = "tp", icu_locale: str | None = None) -> Iterator[str]:
    """Create a fresh database on the server of ``admin_url``; yield its URL; drop it after.
    ``icu_locale`` (e.g. ``en-US``): its text is collated by that ICU locale instead of the
    server's default (a collation other than code point order)."""
    admin_url = normalize_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    collated = f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'" if icu_locale else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{collated}'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
