"""Property-based conformance of the read API to its own /openapi.json (Schemathesis): no 5xx,
every status, content type, header and body as documented, schema-invalid input refused. Runs
against the application serving a real, anchored history, on SQLite and PostgreSQL.

One default check is left out: ``positive_data_acceptance`` (every schema-valid request gets
2xx). Whether an index is inside the tree, or a tender exists, depends on the log's state, which
no OpenAPI schema can express; those requests get a documented 422 or 404, checked here for
conformance like every other answer."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import History, settings_for

# The document the application serves (building the app opens no database).
schema = schemathesis.openapi.from_dict(create_app(Settings(database_url="sqlite://")).openapi())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_read_api_conforms_to_its_openapi(case: Any, history: History) -> None:
    app = create_app(settings_for(history.url), log=history.log)
    case.call_and_validate(app=app, excluded_checks=[positive_data_acceptance])
