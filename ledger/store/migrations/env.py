"""Alembic environment: runs on the connection handed in by ``ledger.store.db.migrate``,
or on ``sqlalchemy.url`` when invoked from the ``alembic`` command line."""

from __future__ import annotations

import importlib
import importlib.util

from alembic import context
from sqlalchemy import create_engine

from ledger.store.db import normalize_url
from ledger.store.schema import metadata

config = context.config

# Other layers' tables live on the same metadata, defined where they belong (anchoring's in
# anchoring/schema.py, the API's in api/schema.py); load them so that `alembic revision --autogenerate` sees the whole schema.
# By name, not by import: the store does not depend on the layers above it.
for module in ("anchoring.schema", "api.schema"):
    if importlib.util.find_spec(module.split(".")[0]) is not None:
        importlib.import_module(module)


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(normalize_url(config.get_main_option("sqlalchemy.url") or ""))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
