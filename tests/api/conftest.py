"""Fixtures of the HTTP API tests: a log with a real history on SQLite and PostgreSQL, anchored
twice on an in-process EVM (eth-tester), and applications built by the real factory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from api.app import create_app
from demo import tenders as demo
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings, Settings
from tests.conftest import ORIGIN, PG_ADMIN_URL, T0
from tests.pg import scratch_database
from tests.recording import append, append_many

#: The embedded chain, final at inclusion.
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)
#: A tender of the fixture besides the demo's: anchored in the second batch, then one event
#: integrated but not anchored, then one recorded but not integrated.
LATE = "ocds-abc123-late01"


@dataclass(frozen=True)
class History:
    """What the fixture recorded, to check the API's answers against."""

    url: str
    log: Log
    first_anchor: int  # tree size of the first final anchor
    second_anchor: int  # ... of the second
    size: int  # tree size now (one entry past the second anchor)


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": url, "origin": ORIGIN, "chains": [CHAIN], "rate_limit": None}
    return Settings(**{**values, **overrides})


def _late(seq: int) -> Submission:
    kinds = ["tender.planned", "tender.published", "tender.clarified", "tender.amended"]
    payload = {"tender": {"id": "late-01", "title": f"Street lighting, step {seq}", "status": "planning"}}
    return Submission(ocid=LATE, type=kinds[seq], payload=payload)


def record_history(url: str) -> History:
    log = Log.open(url, origin=ORIGIN)
    anchorer = ChainAnchorer(log, CHAIN, dev=EmbeddedChain(), holder="tests", clock=lambda: T0)

    def anchor_now() -> int:
        result = anchorer.run_round(force=True)
        for _ in range(10):
            if result.settled:
                break
            result = anchorer.run_round()
        assert result.anchor is not None and result.anchor.status == "final", result
        return result.anchor.tree_size

    append_many(log, demo.submissions(), now=T0)
    log.integrate_all(now=T0)
    first = anchor_now()
    append_many(log, [_late(0), _late(1)], now=T0 + timedelta(minutes=1))
    log.integrate_all(now=T0 + timedelta(minutes=1))
    second = anchor_now()
    append(log, _late(2), now=T0 + timedelta(minutes=2))
    size = log.integrate_all(now=T0 + timedelta(minutes=2)).size
    append(log, _late(3), now=T0 + timedelta(minutes=3))  # stays pending
    anchorer.release()
    return History(url=url, log=log, first_anchor=first, second_anchor=second, size=size)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """One recorded and anchored history per engine, shared by a module's read-only tests."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("api") / "tenderproof.sqlite3"
        recorded = record_history(f"sqlite:///{path}")
        try:
            yield recorded
        finally:
            recorded.log.close()
    else:
        with scratch_database(PG_ADMIN_URL) as url:
            recorded = record_history(url)
            try:
                yield recorded
            finally:
                recorded.log.close()


@pytest.fixture
def app(history: History) -> FastAPI:
    return create_app(settings_for(history.url), log=history.log)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
