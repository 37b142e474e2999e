"""Fixtures of the explorer tests: a ledger recorded through the procurement rules (so the search
projection is filled) with a signed tender, anchored on a real chain (the in-process EVM, or a
real `hardhat node`), then one more event integrated but not anchored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from pydantic import SecretStr

from anchoring import service
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer, Credentials
from api.app import create_app
from demo import tenders as demo
from demo.ocds import import_demo
from ledger.log import Log
from ledger.procurement.officers import REGISTRY_OCID
from ledger.procurement.record import record
from settings import ChainSettings, Settings
from tests.conftest import ORIGIN, PG_ADMIN_URL
from tests.explorer.browser import chromium
from tests.pg import scratch_database
from tests.procurement import helpers

EMBEDDED = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)
#: The tender whose events are signed by a registered officer (helpers.history, all signed).
SIGNED = helpers.OCID


@dataclass(frozen=True)
class Ledger:
    url: str
    log: Log
    chain: ChainSettings
    dev: EmbeddedChain | None
    anchored_size: int
    size: int


def _record(log: Log, items: list[Any], when: Any) -> None:
    record(log, items, now=when, signatures="optional", chain_id=helpers.CHAIN_ID)


def anchor_final(anchorer: ChainAnchorer, *, rounds: int = 100) -> int:
    """Integrate nothing, anchor the log now with ``anchorer`` until final, release the chain;
    the anchored tree size."""
    try:
        result = anchorer.run_round(force=True)
        for _ in range(rounds):
            if result.settled:
                break
            result = anchorer.run_round()
    finally:
        anchorer.release()
    if result.anchor is None or result.anchor.status != "final":
        raise AssertionError(f"the anchor did not become final: {result}")
    return result.anchor.tree_size


def record_ledger(url: str, chain: ChainSettings, *, dev: EmbeddedChain | None = None) -> Ledger:
    log = Log.open(url, origin=ORIGIN)
    start = helpers.at(-40)
    _record(
        log,
        [helpers.item("officer.registered", {"address": helpers.OFFICER, "name": "Ana Ruiz"}, REGISTRY_OCID)],
        start,
    )
    for n, (kind, payload, when) in enumerate(helpers.history()):
        _record(log, [helpers.signed(helpers.item(kind, payload), submission_id=f"sub-{n}", origin=ORIGIN)], when)
    demo.record_demo(log, chain_id=helpers.CHAIN_ID)
    last = max(moment for moment, _ in demo.timeline())
    log.integrate_all(now=last, commit_heads=True)  # as an anchoring round integrates
    anchored = anchor_final(ChainAnchorer(log, chain, dev=dev, holder="tests", clock=lambda: last))
    later = last + timedelta(days=1)
    clarification = {"tender": {"id": "SI-ED-2026-004", "enquiries": [{"id": "q9", "answer": "Yes"}]}}
    _record(log, [helpers.item("tender.clarified", clarification, demo.SCHOOL)], later)
    size = log.integrate_all(now=later).size
    return Ledger(url=url, log=log, chain=chain, dev=dev, anchored_size=anchored, size=size)


@contextmanager
def recorded_ledger(engine: str, directory: Path) -> Iterator[Ledger]:
    """:func:`record_ledger` on the embedded chain in a scratch database of ``engine`` (a SQLite file
    in ``directory``), closed and dropped afterwards."""
    database: AbstractContextManager[str]
    if engine == "sqlite":
        database = nullcontext(f"sqlite:///{directory / 'tenderproof.sqlite3'}")
    else:
        database = scratch_database(PG_ADMIN_URL)
    with database as url:
        recorded = record_ledger(url, EMBEDDED, dev=EmbeddedChain())
        try:
            yield recorded
        finally:
            recorded.log.close()


def settings_for(ledger: Ledger, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": ledger.url,
        "origin": ORIGIN,
        "chains": [ledger.chain],
        "rate_limit": None,
        "signing_chain_id": helpers.CHAIN_ID,
    }
    return Settings(**{**values, **overrides})


def app_for(ledger: Ledger, **overrides: Any) -> FastAPI:
    return create_app(settings_for(ledger, **overrides), log=ledger.log, dev_chain=ledger.dev)


@contextmanager
def imported_demo(engine: str, directory: Path) -> Iterator[Log]:
    """A log on ``engine`` ("sqlite" or "postgresql") holding the demo's imported OCDS tenders
    (:func:`demo.ocds.import_demo`), for the pages that read imported data."""
    database: AbstractContextManager[str]
    if engine == "sqlite":
        database = nullcontext(f"sqlite:///{directory / 'tenderproof.sqlite3'}")
    else:
        database = scratch_database(PG_ADMIN_URL)
    with database as url:
        opened = Log.open(url, origin=ORIGIN)
        try:
            import_demo(opened, now=datetime(2026, 11, 1, tzinfo=UTC))
            yield opened
        finally:
            opened.close()


@contextmanager
def imported_client(log: Log) -> Iterator[TestClient]:
    """The app over :func:`imported_demo`'s log, with the embedded chain for /rpc."""
    settings = Settings(
        database_url=str(log.engine.url),
        origin=ORIGIN,
        chains=[EMBEDDED],
        rate_limit=None,
        signing_chain_id=helpers.CHAIN_ID,
    )
    with TestClient(create_app(settings, log=log, dev_chain=EmbeddedChain())) as test_client:
        yield test_client


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    """One recorded, anchored ledger per engine on the embedded chain, shared by a module's tests."""
    with recorded_ledger(request.param, tmp_path_factory.mktemp("explorer")) as recorded:
        yield recorded


@pytest.fixture
def client(ledger: Ledger) -> Iterator[TestClient]:
    with TestClient(app_for(ledger)) as test_client:
        yield test_client


def hardhat_chain(url: str) -> ChainSettings:
    """A real node's chain settings, with the contract deployed on it."""
    from tests.anchoring.nodes import CHAIN_ID, KEYS

    settings = ChainSettings(
        name="local", rpc_url=url, chain_id=CHAIN_ID, key=SecretStr(KEYS[0]), confirmations=1, rpc_timeout=5.0
    )
    address, _ = service.deploy(service.connect(settings, Credentials()))
    return settings.model_copy(update={"contract": address})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A Chromium of its own for each browser test module (Debian's, see :func:`tests.explorer.browser.chromium`)."""
    with chromium() as started:
        yield started
