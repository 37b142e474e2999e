"""The FastAPI dependencies on a small app: 401 with a challenge, 403, and the principal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import auth, errors
from api.auth import AdminDep, OfficerDep
from ledger.log import Log
from tests.conftest import T0

CHALLENGE = 'Bearer realm="tenderproof"'
INVALID = 'Bearer realm="tenderproof", error="invalid_token"'


def _app(log: Log) -> FastAPI:
    app = FastAPI()
    app.state.log = log
    app.state.now = lambda: T0 + timedelta(hours=2)
    errors.install(app)

    @app.post("/record")
    def record(principal: OfficerDep) -> dict[str, object]:
        return {"id": principal.id, "name": principal.name, "role": principal.role, "officer": principal.officer}

    @app.post("/manage")
    def manage(principal: AdminDep) -> dict[str, object]:
        return {"admin": principal.name}

    return app


@pytest.fixture
def client(log: Log) -> Iterator[TestClient]:
    with TestClient(_app(log)) as test_client:
        yield test_client


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    return body["error"]  # type: ignore[no-any-return]


def test_officer_and_admin_keys(log: Log, client: TestClient) -> None:
    officer, officer_key = auth.create_key(
        log.engine, name="ana", role="officer", now=T0, officer="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    )
    admin, admin_key = auth.create_key(log.engine, name="root", role="admin", now=T0)
    response = client.post("/record", headers={"Authorization": f"Bearer {officer_key}"})
    assert response.status_code == 200
    assert response.json() == {
        "id": officer.id,
        "name": "ana",
        "role": "officer",
        "officer": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    }
    assert auth.get_key(log.engine, officer.id).last_used_at == T0 + timedelta(hours=2)
    # X-API-Key works too, and an admin may do what an officer may
    assert client.post("/record", headers={"X-API-Key": admin_key}).json()["role"] == "admin"
    assert client.post("/manage", headers={"authorization": f"bearer {admin_key}"}).json() == {"admin": "root"}
    same_twice = {"Authorization": f"Bearer {admin_key}", "X-API-Key": admin_key}
    assert client.post("/manage", headers=same_twice).status_code == 200
    # an officer may not manage
    response = client.post("/manage", headers={"X-API-Key": officer_key})
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers
    assert _error(response) == {
        "code": "forbidden",
        "message": f"role: API key {officer.prefix} (ana) has role officer; this needs admin",
        "field": "role",
    }
    assert admin.id != officer.id


def test_missing_credentials(client: TestClient) -> None:
    for path in ("/record", "/manage"):
        response = client.post(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == CHALLENGE
        error = _error(response)
        assert error["code"] == "unauthenticated"
        assert error["field"] == "Authorization"
        assert "an API key is required" in str(error["message"])


def test_invalid_credentials(log: Log, client: TestClient) -> None:
    record, key = auth.create_key(log.engine, name="ana", role="officer", now=T0)
    _, other = auth.create_key(log.engine, name="bob", role="officer", now=T0)
    cases = [
        ({"Authorization": f"Bearer {key[:-1]}x"}, "Authorization", "Authorization: is not a valid API key"),
        ({"Authorization": "Bearer tp_nope"}, "Authorization", "Authorization: is not a valid API key"),
        ({"X-API-Key": key[:-2]}, "X-API-Key", "X-API-Key: is not a valid API key"),
        ({"Authorization": f"Basic {key}"}, "Authorization", "Authorization: must be 'Bearer <API key>'"),
        ({"Authorization": key}, "Authorization", "Authorization: must be 'Bearer <API key>'"),
        (
            {"Authorization": f"Bearer {key}", "X-API-Key": other},
            "X-API-Key",
            "X-API-Key: differs from the key in Authorization",
        ),
    ]
    for headers, field, message in cases:
        response = client.post("/record", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == INVALID
        assert _error(response) == {"code": "invalid_api_key", "message": message, "field": field}
    auth.revoke_key(log.engine, record.id, now=T0 + timedelta(hours=1))
    response = client.post("/record", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID
    assert _error(response)["code"] == "api_key_revoked"


def test_openapi_declares_both_schemes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "HTTPBearer": {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer tp_...`"},
        "APIKeyHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An API key: `X-API-Key: tp_...`",
        },
    }
    assert schema["paths"]["/record"]["post"]["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
