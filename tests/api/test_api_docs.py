"""/api/docs served by the application itself (no CDN), and the OpenAPI examples: a real body for
every event type, each valid for its type's payload rules; reads do not document write errors.
(That the page renders in Chromium with every other host blocked: tests/explorer/test_desk_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api import examples
from api.app import create_app
from api.routes.writes import TENDER_EVENT_TYPES
from ledger.log import Log
from ledger.procurement import payloads
from tests.api.conftest import settings_for


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    log = Log.open(sqlite_url, origin="tenderproof.test/log")
    try:
        with TestClient(create_app(settings_for(sqlite_url), log=log)) as test_client:
            yield test_client
    finally:
        log.close()


def test_swagger_ui_loads_only_this_servers_files(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "script-src 'self';" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # nothing inline: docs.js starts Swagger UI
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert sources, page.text
    assert [s for s in sources if s.startswith(("http:", "https:", "//"))] == []
    assert "cdn" not in page.text.lower()
    for source in sources:
        if source.startswith("/api/docs/assets/"):
            asset = client.get(source, headers={"Accept-Encoding": "gzip"})
            assert asset.status_code == 200 and len(asset.content) > 0
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    script = next(s for s in sources if s.endswith(".js"))
    assert "SwaggerUIBundle" in client.get(script).text
    own = {re.sub(r"\.[0-9a-f]{12}\.", ".", s.rsplit("/", 1)[1]): s for s in sources}
    assert {"docs.css", "docs.js", "swagger-ui.css", "swagger-ui-bundle.js", "favicon.png"} <= set(own)
    etag = client.get(own["docs.css"]).headers["etag"]
    assert client.get(own["docs.css"], headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/api/docs/assets/redoc.standalone.js").status_code == 404  # only what the page needs


def test_every_event_type_has_a_real_example_the_rules_accept() -> None:
    found = examples.event_examples()
    assert sorted(found) == sorted(TENDER_EVENT_TYPES)
    for kind, example in found.items():
        assert example["value"]["type"] == kind
        payloads.validate(kind, example["value"]["payload"])  # raises if the rules refuse it
    for kind, example in examples.tender_examples().items():
        payloads.validate(kind, example["value"]["payload"])
    for event in examples.bulk_examples()["demo"]["value"]["events"]:
        payloads.validate(event["type"], event["payload"])


def test_openapi_carries_the_examples_and_reads_no_write_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/tenders/{ocid}/events"]["post"]["requestBody"]["content"]["application/json"]
    assert sorted(body["examples"]) == sorted(TENDER_EVENT_TYPES)
    assert body["examples"]["award.issued"]["value"]["payload"]["award"]["suppliers"][0]["name"]
    created = spec["paths"]["/api/v1/tenders"]["post"]
    assert set(created["requestBody"]["content"]["application/json"]["examples"]) == set(examples.tender_examples())
    assert {"401", "403", "409"} <= set(created["responses"])
    officers = spec["paths"]["/api/v1/officers"]
    assert {"401", "403", "409"} <= set(officers["post"]["responses"])
    assert not {"401", "403", "409"} & set(officers["get"]["responses"])
