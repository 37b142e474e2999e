"""Property-based conformance of the API to its own /openapi.json (Schemathesis): no 5xx,
every status, content type, header and body as documented, schema-invalid input refused. Runs
against the application serving a real, anchored history, on SQLite and PostgreSQL.

One default check is left out: ``positive_data_acceptance`` (every schema-valid request gets
2xx). Whether an index is inside the tree, or a tender exists, depends on the log's state, which
no OpenAPI schema can express; those requests get a documented 422 or 404, checked here for
conformance like every other answer. Writes are sent twice: without a key (401) and with an
administrator's key, so that their bodies reach validation, the rules and the database."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from api import auth
from api.app import create_app
from settings import Settings
from tests.api.conftest import History, settings_for
from tests.conftest import T0

# The document the application serves (building the app opens no database).
schema = schemathesis.openapi.from_dict(create_app(Settings(database_url="sqlite://")).openapi())


@pytest.fixture(scope="module")
def admin_key(history: History) -> str:
    return auth.create_key(history.log.engine, name="schemathesis", role="admin", now=T0)[1]


@pytest.fixture(scope="module")
def served(history: History) -> FastAPI:
    """One application per engine for every case, as a server has: a new one per case paid
    FastAPI's preparation of its routes (built at an application's first requests, ~0.3 s idle)
    with every request, which under the suite's load went past the 10 s read timeout."""
    return create_app(settings_for(history.url), log=history.log)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi(case: Any, served: FastAPI) -> None:
    case.call_and_validate(app=served, excluded_checks=[positive_data_acceptance])


@schema.include(method="POST").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_authenticated_writes_conform_to_the_openapi(case: Any, served: FastAPI, admin_key: str) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {admin_key}"}
    # ignored_auth would count our valid key as one Schemathesis made up; the test above sends none.
    case.call_and_validate(app=served, excluded_checks=[positive_data_acceptance, ignored_auth])
