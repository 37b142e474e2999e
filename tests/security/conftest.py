"""The HTTP API tests' fixtures (a recorded, anchored history on SQLite and PostgreSQL)."""

from tests.api.conftest import app, client, history  # noqa: F401
