"""One error shape for everything: domain errors, validation errors, malformed JSON, unknown
routes and methods, unexpected exceptions; never a stack trace or a secret."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from anchoring.errors import ChainConfigError, ChainUnavailableError, LeaseHeldError
from api.app import create_app
from ledger.core.errors import (
    ConflictError,
    InvalidArgumentError,
    InvariantError,
    NotFoundError,
    RootMismatchError,
)
from tests.api.conftest import History, settings_for

SECRET = "s3cret-key-0123456789"


class Item(BaseModel):
    ocid: str
    amount: int = Field(ge=0)


class Order(BaseModel):
    items: list[Item]


RAISED: dict[str, Exception] = {
    "invalid": InvalidArgumentError("payload.amount", "must be >= 0, got -1"),
    "notfound": NotFoundError("tender 'ocds-abc123-x' not found"),
    "conflict": ConflictError("prev", "the tender's head moved on"),
    "lease": LeaseHeldError("chain:dev", "other", "2026-11-23T12:00:00Z"),
    "verification": RootMismatchError("inclusion", expected=b"\x01" * 32, calculated=b"\x02" * 32),
    "chain": ChainUnavailableError("chain dev: the JSON-RPC endpoint did not answer: ConnectionError"),
    "chainconfig": ChainConfigError("chains[dev].key", f"key {SECRET} is not an anchorer"),
    "invariant": InvariantError(f"tile 3 is corrupt near {SECRET}"),
    "bug": KeyError(SECRET),
}


def with_test_routes(app: FastAPI) -> FastAPI:
    """Routes that raise each kind of error, or take a JSON body, beside the real ones."""

    @app.get("/api/v1/_raise/{kind}")
    def raise_(kind: str) -> None:
        raise RAISED[kind]

    @app.post("/api/v1/_orders")
    def order(body: Order) -> dict[str, int]:
        return {"items": len(body.items)}

    return app


@pytest.fixture
def errors_client(history: History) -> Iterator[TestClient]:
    app = with_test_routes(create_app(settings_for(history.url), log=history.log))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    ("kind", "status", "code", "field", "message"),
    [
        ("invalid", 422, "invalid_argument", "payload.amount", "payload.amount: must be >= 0, got -1"),
        ("notfound", 404, "not_found", None, "tender 'ocds-abc123-x' not found"),
        ("conflict", 409, "conflict", "prev", "prev: the tender's head moved on"),
        ("lease", 409, "conflict", "lease", "lease: chain:dev is held by other until 2026-11-23T12:00:00Z"),
        (
            "verification",
            422,
            "verification_failed",
            None,
            f"inclusion: root mismatch: expected {'01' * 32}, calculated {'02' * 32}",
        ),
        ("chain", 503, "chain_unavailable", None, "chain dev: the JSON-RPC endpoint did not answer: ConnectionError"),
        (
            "chainconfig",
            503,
            "chain_misconfigured",
            None,
            "a configured chain cannot be used; the operator has to fix its settings",
        ),
        ("invariant", 500, "internal_error", None, "internal error; it has been logged"),
        ("bug", 500, "internal_error", None, "internal error; it has been logged"),
    ],
)
def test_domain_errors_map_to_status_and_stable_code(
    errors_client: TestClient, kind: str, status: int, code: str, field: str | None, message: str
) -> None:
    got = errors_client.get(f"/api/v1/_raise/{kind}")
    assert got.status_code == status
    assert got.headers["content-type"] == "application/json"
    expected = {"code": code, "message": message}
    if field is not None:
        expected["field"] = field
    assert got.json() == {"error": expected}
    assert SECRET not in got.text and "Traceback" not in got.text
    if status == 503:
        assert int(got.headers["retry-after"]) > 0
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["cache-control"] == "no-store"


def test_unexpected_errors_are_logged_with_their_traceback_not_sent(
    errors_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    got = errors_client.get("/api/v1/_raise/bug")
    assert got.status_code == 500
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], KeyError)]
    assert logged, "the traceback must reach the server's log"


def test_validation_errors_name_the_field_path_and_list_every_problem(errors_client: TestClient) -> None:
    got = errors_client.post("/api/v1/_orders", json={"items": [{"ocid": "a", "amount": 1}, {"amount": -1}]})
    assert got.status_code == 422
    error = got.json()["error"]
    assert error["code"] == "invalid_argument"
    assert error["field"] == "body.items[1].ocid"
    assert error["message"] == "body.items[1].ocid: Field required"
    assert error["details"] == [
        {"field": "body.items[1].ocid", "message": "Field required"},
        {"field": "body.items[1].amount", "message": "Input should be greater than or equal to 0"},
    ]
    query = errors_client.get("/api/v1/anchors", params={"limit": "lots"}).json()["error"]
    assert query == {
        "code": "invalid_argument",
        "field": "query.limit",
        "message": "query.limit: Input should be a valid integer, unable to parse string as an integer",
    }
    assert errors_client.post("/api/v1/_orders", json={"items": [{"ocid": "a", "amount": 2}]}).json() == {"items": 1}


def test_malformed_json_is_400(errors_client: TestClient) -> None:
    got = errors_client.post("/api/v1/_orders", content=b'{"items": [', headers={"Content-Type": "application/json"})
    assert got.status_code == 400
    assert got.json() == {"error": {"code": "malformed_json", "message": "body: is not valid JSON", "field": "body"}}


def test_unknown_route_and_wrong_method_are_json(errors_client: TestClient) -> None:
    unknown = errors_client.get("/api/v1/nothing/here")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "/api/v1/nothing/here: no such resource"}}
    assert errors_client.get("/nothing").json()["error"]["code"] == "not_found"
    wrong = errors_client.delete("/api/v1/checkpoint")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    assert wrong.json() == {
        "error": {"code": "method_not_allowed", "message": "/api/v1/checkpoint: method DELETE not allowed"}
    }
    for response in (unknown, wrong):
        assert response.headers["x-frame-options"] == "DENY"


def test_openapi_documents_the_error_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schema = spec["components"]["schemas"]["ErrorResponse"]
    assert schema["required"] == ["error"]
    body = spec["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "field", "details"}
    entries = spec["paths"]["/api/v1/entries"]["get"]["responses"]
    for status in ("422", "429", "503"):
        assert entries[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    bundle = spec["paths"]["/api/v1/tenders/{ocid}/bundle"]["get"]["responses"]
    assert bundle["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Bundle"}
    assert bundle["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
