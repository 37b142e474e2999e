"""The anchoring service against the real things: an in-process EVM (eth-tester on py-evm, a
fresh chain per test), SQLite and PostgreSQL, APScheduler and the command line."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from anchoring import embedded, scheduler, store
from anchoring.embedded import EmbeddedChain
from anchoring.errors import ChainConfigError, LeaseHeldError, LogMismatchError
from anchoring.schema import anchor_leases, anchor_targets, anchor_txs, anchors
from anchoring.service import AnchoringService, ChainAnchorer, Credentials, Policy, RoundResult, connect, deploy
from cli import main
from ledger.core.merkle import leaf_hash
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings
from tests.conftest import ORIGIN, PG_ADMIN_URL, T0
from tests.recording import append, append_many

#: The embedded chain, final at inclusion (one block).
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)
#: A JSON-RPC endpoint that refuses connections.
UNREACHABLE = "http://127.0.0.1:9"


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def dev() -> EmbeddedChain:
    """A chain of this test's own."""
    return EmbeddedChain()


@pytest.fixture
def sqlite_log(sqlite_url: str) -> Iterator[Log]:
    opened = Log.open(sqlite_url, origin=ORIGIN)
    try:
        yield opened
    finally:
        opened.close()


def grow(log: Log, count: int, *, tag: str = "a", now: datetime = T0) -> int:
    """Append ``count`` events and integrate them; returns the new tree size."""
    start = log.reader.tree_head().size
    append_many(
        log,
        [
            Submission(ocid=f"ocds-abc123-{tag}{start + i:04d}", type="tender.published", payload={"i": start + i})
            for i in range(count)
        ],
        now=now,
    )
    return log.integrate_all(now=now).size


def settle(anchorer: ChainAnchorer, *, force: bool = True, rounds: int = 10) -> RoundResult:
    """Rounds until nothing is in flight."""
    result = anchorer.run_round(force=force)
    for _ in range(rounds):
        if result.settled:
            return result
        result = anchorer.run_round()
    raise AssertionError(f"not settled after {rounds} rounds: {result}")


def nonce(dev: EmbeddedChain, address: str) -> int:
    return int(dev.w3.eth.get_transaction_count(address))  # type: ignore[arg-type]


def dev_address(dev: EmbeddedChain) -> str:
    return str(Account.from_key(dev.key.get_secret_value()).address)


def count(log: Log, table: Any) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def fresh_account(dev: EmbeddedChain, *, fund: int) -> LocalAccount:
    """A new random account, given ``fund`` wei by the development account."""
    account: LocalAccount = Account.create()
    if fund:
        tx = {"from": dev.w3.eth.accounts[0], "to": account.address, "value": fund}
        dev.w3.eth.wait_for_transaction_receipt(dev.w3.eth.send_transaction(tx))  # type: ignore[arg-type]
    return account


def deployed(dev: EmbeddedChain) -> str:
    """ProcurementAnchor deployed on ``dev`` by the development account (its admin and anchorer)."""
    address, _ = deploy(connect(CHAIN, Credentials(), dev))
    return address


def keyed(account: LocalAccount, **fields: Any) -> ChainSettings:
    return CHAIN.model_copy(update={"key": SecretStr(account.key.hex()), **fields})


# --- Anchoring ---------------------------------------------------------------------------


def test_anchors_the_tree_head_then_extends_it_with_a_consistency_proof(log: Log, dev: EmbeddedChain) -> None:
    size1 = grow(log, 7)
    anchorer = ChainAnchorer(log, CHAIN, dev=dev, holder="a", clock=Clock())

    first = settle(anchorer)

    head = log.reader.tree_head()
    assert first.action == "final"
    assert first.anchor is not None
    assert (first.anchor.status, first.anchor.tree_size, first.anchor.root) == ("final", size1, head.root)
    assert (first.anchor.base_size, first.anchor.anchor_id) == (0, 1)
    anchor_id, on_size, on_root, _ = anchorer.client.latest()
    assert (anchor_id, on_size, on_root) == (1, size1, head.root)
    contract = anchorer.client.contract
    entry = log.reader.entries(3, 4)[0]
    path = log.reader.inclusion_proof(3, size1)
    assert contract.functions.verifyInclusion(size1, 3, leaf_hash(entry.envelope), path).call() is True
    assert contract.functions.verifyInclusion(size1, 4, leaf_hash(entry.envelope), path).call() is False

    size2 = grow(log, 5, tag="b")
    second = settle(anchorer)

    head2 = log.reader.tree_head()
    assert second.anchor is not None
    assert (second.anchor.status, second.anchor.tree_size, second.anchor.root) == ("final", size2, head2.root)
    assert (second.anchor.base_size, second.anchor.anchor_id) == (size1, 2)
    assert anchorer.client.latest()[:3] == (2, size2, head2.root)
    assert anchorer.client.root_at(size1) == head.root
    last = log.reader.entries(size2 - 1, size2)[0]
    path = log.reader.inclusion_proof(size2 - 1, size2)
    assert contract.functions.verifyInclusion(size2, size2 - 1, leaf_hash(last.envelope), path).call() is True

    account = anchorer.client.account.address
    before = (nonce(dev, account), dev.w3.eth.block_number)
    idle = anchorer.run_round(force=True)
    assert idle.action == "up to date"
    assert idle.anchor is not None and idle.anchor.id == second.anchor.id
    assert (nonce(dev, account), dev.w3.eth.block_number) == before
    assert count(log, anchors) == 2
    assert count(log, anchor_txs) == 2


def test_policy_waits_for_the_interval_or_the_threshold(sqlite_log: Log, dev: EmbeddedChain) -> None:
    clock = Clock()
    anchorer = ChainAnchorer(
        sqlite_log, CHAIN, dev=dev, holder="a", clock=clock, policy=Policy(interval=600, threshold=10)
    )
    account = anchorer.client.account.address
    grow(sqlite_log, 3)
    first = settle(anchorer, force=False)  # nothing anchored yet: due at once
    assert first.anchor is not None and first.anchor.tree_size == 3

    grow(sqlite_log, 2, tag="b")
    clock.advance(599)
    sent = nonce(dev, account)
    waiting = anchorer.run_round()
    assert waiting.action == "waiting (2 entries not anchored)"
    assert waiting.anchor is not None and waiting.anchor.id == first.anchor.id
    assert nonce(dev, account) == sent
    assert anchorer.client.latest()[1] == 3

    clock.advance(1)
    due = settle(anchorer, force=False)
    assert due.anchor is not None
    assert (due.anchor.tree_size, due.anchor.base_size, due.anchor.status) == (5, 3, "final")

    clock.advance(1)
    grow(sqlite_log, 9, tag="c")
    below = anchorer.run_round()
    assert below.action.startswith("waiting"), below
    assert anchorer.client.latest()[1] == 5

    grow(sqlite_log, 1, tag="d")  # 10 waiting: the threshold
    at_threshold = settle(anchorer, force=False)
    assert at_threshold.anchor is not None
    assert (at_threshold.anchor.tree_size, at_threshold.anchor.base_size) == (15, 5)
    assert anchorer.client.latest()[1] == 15
    assert count(sqlite_log, anchors) == 3


# --- Leases ------------------------------------------------------------------------------


def test_second_anchorer_waits_until_the_lease_is_released(log: Log, dev: EmbeddedChain) -> None:
    grow(log, 4)
    clock = Clock()
    a = ChainAnchorer(log, CHAIN, dev=dev, holder="a", clock=clock)
    b = ChainAnchorer(log, CHAIN, dev=dev, holder="b", clock=clock)

    sent = a.run_round(force=True)
    assert sent.action == "sent"
    before = (nonce(dev, dev_address(dev)), dev.w3.eth.block_number)
    with pytest.raises(LeaseHeldError) as held:
        b.run_round(force=True)
    assert held.value.holder == "a"
    assert "chain:dev is held by a" in str(held.value)
    assert (nonce(dev, dev_address(dev)), dev.w3.eth.block_number) == before

    a.release()
    taken = b.run_round()
    assert taken.action == "final"  # b finishes a's anchor, it does not start another
    assert taken.anchor is not None and sent.anchor is not None and taken.anchor.id == sent.anchor.id
    assert count(log, anchors) == 1
    with pytest.raises(LeaseHeldError) as held:
        a.run_round()
    assert held.value.holder == "b"


def test_lease_of_a_stalled_anchorer_is_taken_over_after_its_ttl(log: Log, dev: EmbeddedChain) -> None:
    grow(log, 4)
    clock = Clock()
    policy = Policy(lease_ttl=30)
    a = ChainAnchorer(log, CHAIN, dev=dev, holder="a", clock=clock, policy=policy)
    b = ChainAnchorer(log, CHAIN, dev=dev, holder="b", clock=clock, policy=policy)
    assert a.run_round(force=True).action == "sent"  # then a stalls, holding the lease

    clock.advance(29)
    with pytest.raises(LeaseHeldError):
        b.run_round(force=True)
    clock.advance(1)
    finished = b.run_round()
    assert finished.anchor is not None and (finished.anchor.status, finished.anchor.tree_size) == ("final", 4)

    grow(log, 3, tag="b")
    extended = settle(b)
    assert extended.anchor is not None
    assert (extended.anchor.tree_size, extended.anchor.base_size, extended.anchor.status) == (7, 4, "final")
    assert count(log, anchors) == 2
    with pytest.raises(LeaseHeldError):
        a.run_round()


def test_fenced_write_by_a_holder_that_lost_the_lease_is_refused(log: Log) -> None:
    store.acquire(log.engine, "chain:x", "a", now=T0, ttl=10)
    store.acquire(log.engine, "chain:x", "b", now=T0 + timedelta(seconds=10), ttl=10)  # a's expired

    later = T0 + timedelta(seconds=11)
    with (
        pytest.raises(LeaseHeldError) as refused,
        store.fenced(log.engine, "chain:x", "a", now=later, ttl=10) as conn,
    ):
        conn.execute(
            insert(anchor_targets).values(chain="x", chain_id=1, instance="i", contract="0x" + "00" * 20, created_at=T0)
        )
    assert refused.value.holder == "b"
    assert count(log, anchor_targets) == 0
    with log.engine.connect() as conn:
        row = conn.execute(select(anchor_leases)).one()
    assert (row.holder, store.utc(row.expires_at)) == ("b", T0 + timedelta(seconds=20))

    with store.fenced(log.engine, "chain:x", "b", now=later, ttl=10) as conn:  # the holder writes, and renews
        conn.execute(
            insert(anchor_targets).values(chain="x", chain_id=1, instance="i", contract="0x" + "00" * 20, created_at=T0)
        )
    assert count(log, anchor_targets) == 1
    with log.engine.connect() as conn:
        assert store.utc(conn.execute(select(anchor_leases.c.expires_at)).scalar_one()) == later + timedelta(seconds=10)


# --- Refused configurations: nothing is sent --------------------------------------------


def _refused(log: Log, anchorer: ChainAnchorer, dev: EmbeddedChain, watch: list[str]) -> ChainConfigError:
    """Run a round that must fail its checks; assert it sent nothing and stored no anchor."""
    before = ([nonce(dev, a) for a in watch], dev.w3.eth.block_number)
    with pytest.raises(ChainConfigError) as refused:
        anchorer.run_round(force=True)
    assert ([nonce(dev, a) for a in watch], dev.w3.eth.block_number) == before
    assert count(log, anchors) == 0
    assert count(log, anchor_txs) == 0
    return refused.value


def test_chain_id_mismatch_is_refused_before_anything_is_sent(sqlite_log: Log, dev: EmbeddedChain) -> None:
    grow(sqlite_log, 3)
    anchorer = ChainAnchorer(sqlite_log, CHAIN.model_copy(update={"chain_id": 5}), dev=dev, holder="a")
    error = _refused(sqlite_log, anchorer, dev, [dev_address(dev)])
    assert error.field == "chains[dev].chain_id"
    assert f"is 5, but the node is on chain {dev.w3.eth.chain_id}" in error.reason
    assert dev.contract is None and dev.w3.eth.block_number == 0  # not even deployed
    assert count(sqlite_log, anchor_targets) == 0


@pytest.mark.parametrize("what", ["nothing", "account"])
def test_contract_address_without_code_is_refused(sqlite_log: Log, dev: EmbeddedChain, what: str) -> None:
    grow(sqlite_log, 3)
    address = "0x" + "12" * 20 if what == "nothing" else dev_address(dev)
    chain = CHAIN.model_copy(update={"contract": address})
    error = _refused(sqlite_log, ChainAnchorer(sqlite_log, chain, dev=dev, holder="a"), dev, [dev_address(dev)])
    assert error.field == "chains[dev].contract"
    assert error.reason.startswith(f"no contract at {address}")
    assert count(sqlite_log, anchor_targets) == 0


def test_contract_that_is_not_procurement_anchor_is_refused(sqlite_log: Log, dev: EmbeddedChain) -> None:
    grow(sqlite_log, 3)
    # Init code returning a one-byte runtime (STOP): PUSH1 0 PUSH1 0 MSTORE8 PUSH1 1 PUSH1 0 RETURN.
    init = "0x600060005360016000f3"
    account = Account.from_key(dev.key.get_secret_value())
    tx = {"data": init, "nonce": 0, "gas": 100_000, "gasPrice": 10**10, "chainId": dev.w3.eth.chain_id, "value": 0}
    signed = account.sign_transaction(tx)
    receipt = dev.w3.eth.wait_for_transaction_receipt(dev.w3.eth.send_raw_transaction(signed.raw_transaction))
    other = receipt["contractAddress"]
    assert other is not None and dev.w3.eth.get_code(other) == b"\x00"

    chain = CHAIN.model_copy(update={"contract": other})
    error = _refused(sqlite_log, ChainAnchorer(sqlite_log, chain, dev=dev, holder="a"), dev, [account.address])
    assert error.field == "chains[dev].contract"
    assert "is not this release's ProcurementAnchor" in error.reason


def test_account_that_is_not_an_anchorer_is_refused(sqlite_log: Log, dev: EmbeddedChain) -> None:
    grow(sqlite_log, 3)
    address = deployed(dev)
    stranger = fresh_account(dev, fund=10**18)
    anchorer = ChainAnchorer(sqlite_log, keyed(stranger, contract=address), dev=dev, holder="a")
    error = _refused(sqlite_log, anchorer, dev, [stranger.address, dev_address(dev)])
    assert error.field == "chains[dev].key"
    assert f"account {stranger.address} is not an anchorer of {address}" in error.reason
    assert "grantAnchorer" in error.reason
    assert anchorer.client.latest()[1] == 0


def _pauper(dev: EmbeddedChain) -> tuple[str, LocalAccount]:
    """A deployed contract, and an anchorer of it that holds no ether."""
    address = deployed(dev)
    pauper = fresh_account(dev, fund=0)
    contract = connect(CHAIN.model_copy(update={"contract": address}), Credentials(), dev).contract
    grant = contract.functions.grantAnchorer(pauper.address).transact({"from": dev.w3.eth.accounts[0]})
    dev.w3.eth.wait_for_transaction_receipt(grant)
    assert contract.functions.isAnchorer(pauper.address).call() is True
    return address, pauper


def test_anchorer_without_funds_is_refused(sqlite_log: Log, dev: EmbeddedChain) -> None:
    grow(sqlite_log, 3)
    address, pauper = _pauper(dev)
    anchorer = ChainAnchorer(sqlite_log, keyed(pauper, contract=address), dev=dev, holder="a")
    error = _refused(sqlite_log, anchorer, dev, [pauper.address, dev_address(dev)])
    assert error.field == "chains[dev].key"
    assert f"account {pauper.address} holds 0 wei on chain dev" in error.reason


def test_tick_goes_on_past_a_chain_whose_account_has_no_funds(sqlite_log: Log, dev: EmbeddedChain) -> None:
    grow(sqlite_log, 3)
    address, pauper = _pauper(dev)
    poor = keyed(pauper, name="poor", contract=address)
    service = AnchoringService(sqlite_log, [poor, CHAIN], dev=dev, holder="svc")
    results = {r.chain: r.action for r in service.tick()}
    assert results["poor"].startswith("error: chains[poor].key: account")
    assert results["dev"] == "sent"


@pytest.mark.parametrize("b_size", [3, 5, 8], ids=["shorter", "same-size", "longer"])
def test_contract_holding_another_logs_checkpoint_is_refused(
    sqlite_log: Log, dev: EmbeddedChain, tmp_path: Path, b_size: int
) -> None:
    grow(sqlite_log, 5)
    assert settle(ChainAnchorer(sqlite_log, CHAIN, dev=dev, holder="a")).action == "final"
    other = Log.open(f"sqlite:///{tmp_path / 'other.sqlite3'}", origin="other.test/log")
    try:
        grow(other, b_size, tag="z")
        before = (nonce(dev, dev_address(dev)), dev.w3.eth.block_number)
        with pytest.raises(LogMismatchError) as refused:
            ChainAnchorer(other, CHAIN, dev=dev, holder="b").run_round(force=True)
        assert (nonce(dev, dev_address(dev)), dev.w3.eth.block_number) == before
        expected = "this log only 3" if b_size < 5 else "this log's root there is"
        assert expected in str(refused.value)
        assert count(other, anchors) == 0
    finally:
        other.close()


# --- Stored transactions are immutable --------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    ["UPDATE anchor_txs SET nonce = nonce + 1", "UPDATE anchor_txs SET raw = raw", "DELETE FROM anchor_txs"],
)
def test_anchor_txs_rows_cannot_be_changed(log: Log, dev: EmbeddedChain, statement: str) -> None:
    grow(log, 2)
    settle(ChainAnchorer(log, CHAIN, dev=dev, holder="a"))
    with log.engine.connect() as conn:
        stored = conn.execute(select(anchor_txs)).all()
    assert len(stored) == 1

    with pytest.raises(DBAPIError, match="tenderproof: append-only"), log.engine.begin() as conn:
        conn.execute(text(statement))

    with log.engine.connect() as conn:
        assert conn.execute(select(anchor_txs)).all() == stored


# --- The service and its scheduler -------------------------------------------------------


def test_one_broken_chain_does_not_hold_back_the_others(
    sqlite_log: Log, dev: EmbeddedChain, caplog: pytest.LogCaptureFixture
) -> None:
    broken = ChainSettings(name="broken", rpc_url=UNREACHABLE, key=SecretStr("0x" + "11" * 32), rpc_timeout=1)
    service = AnchoringService(sqlite_log, [broken, CHAIN], dev=dev, holder="svc")
    append_many(
        sqlite_log,
        [Submission(ocid=f"ocds-abc123-{i:04d}", type="tender.published", payload={"i": i}) for i in range(4)],
        now=T0,
    )

    with caplog.at_level(logging.INFO, logger="anchoring.service"):
        results = {r.chain: r for r in service.tick()}  # integrates what is pending, then a round per chain

    assert results["broken"].action.startswith("error: chain broken: the JSON-RPC endpoint did not answer")
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert said == [results["broken"].action.removeprefix("error: ")]  # the chain named once, not twice
    assert results["broken"].anchor is None
    assert results["dev"].action == "sent"
    head = sqlite_log.reader.tree_head()
    assert head.size == 5  # the 4 events and the round's heads commitment
    assert service.anchorers[1].client.latest()[1:3] == (5, head.root)
    assert settle(service.anchorers[1]).action == "final"
    service.close()  # releases both leases: another process can take over at once
    now = datetime.now(UTC)
    for name in ("chain:broken", "chain:dev"):
        store.acquire(sqlite_log.engine, name, "next", now=now, ttl=10)


@pytest.mark.postgres
def test_tick_while_the_database_is_down_logs_one_line_not_a_traceback(
    pg_url: str, dev: EmbeddedChain, caplog: pytest.LogCaptureFixture
) -> None:
    opened = Log.open(pg_url, origin=ORIGIN)
    try:
        service = AnchoringService(opened, [CHAIN], dev=dev, holder="svc")
        grow(opened, 2)
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{make_url(pg_url).database}" WITH (FORCE)'))
        admin.dispose()
        with caplog.at_level(logging.DEBUG, logger="anchoring.service"):
            for _ in range(3):
                assert [r.action for r in service.tick()] == ["waiting: database unreachable"]
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(loud) == 1, [r.getMessage() for r in loud]  # once, then quiet while nothing changes
        assert loud[0].getMessage().startswith("database unreachable or failing, anchoring waits: ")
        assert "\n" not in loud[0].getMessage()
        assert loud[0].exc_info is None  # one clear line, no traceback
        assert sum(r.getMessage().startswith("still: database") for r in caplog.records) == 2
    finally:
        opened.close()


def _wait_final(log: Log, size: int, *, within: float = 30.0) -> store.Anchor:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        listed = store.listing(log.engine, chain="dev", limit=1)
        if listed and listed[0].anchor.tree_size == size and listed[0].anchor.status == "final":
            return listed[0].anchor
        time.sleep(0.05)
    raise AssertionError(f"tree size {size} not final within {within}s: {store.listing(log.engine)}")


def test_background_scheduler_anchors_new_entries(log: Log, dev: EmbeddedChain) -> None:
    service = AnchoringService(log, [CHAIN], dev=dev, policy=Policy(interval=3600, threshold=1))
    job = scheduler.start_background(service, poll=0.2)
    try:
        append_many(
            log,
            [Submission(ocid=f"ocds-abc123-{i:04d}", type="tender.published", payload={"i": i}) for i in range(3)],
            now=T0,
        )
        first = _wait_final(log, 4)  # 3 events and a heads commitment
        append(log, Submission(ocid="ocds-abc123-late", type="tender.published", payload={}), now=T0)
        second = _wait_final(log, 6)  # one entry waiting is the threshold, long before the interval
    finally:
        job.shutdown()
        service.close()
    assert (first.base_size, second.base_size) == (0, 4)
    assert second.root == log.reader.tree_head().root
    assert service.anchorers[0].client.latest()[1:3] == (6, second.root)


# --- The command line --------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a SQLite log, and a new process-wide embedded chain."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TENDERPROOF_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    for name in ("ORIGIN", "CHAINS", "ANCHOR_KEY", "KEYSTORE_PASSWORD", "ANCHOR_INTERVAL", "ANCHOR_THRESHOLD"):
        monkeypatch.delenv(f"TENDERPROOF_{name}", raising=False)
    monkeypatch.setattr(embedded, "_chain", None)
    return tmp_path


def _demo(capsys: pytest.CaptureFixture[str]) -> int:
    """Record the demo tenders (the command may anchor them too); returns the tree size."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    verified = next(line for line in out.splitlines() if line.startswith("verified: "))
    return int(verified.rsplit(" ", 1)[1])


def test_cli_anchors_and_lists(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    size = _demo(capsys)
    published = {  # through the procurement rules, as every write: a real tender.published payload
        "tender": {
            "id": "cli-1",
            "title": "One more",
            "tenderPeriod": {"startDate": "2026-01-01T00:00:00Z", "endDate": "2099-01-01T00:00:00Z"},
        },
        "buyer": {"id": "B-1", "name": "Buyer"},
    }
    (cli_env / "event.json").write_text(json.dumps(published), encoding="utf-8")
    assert main(["record", "ocds-abc123-cli", "tender.published", str(cli_env / "event.json")]) == 0
    capsys.readouterr()

    assert main(["anchor"]) == 0
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    anchored = json.loads(line)
    assert {k: anchored[k] for k in ("chain", "status", "tree_size", "action")} == {
        "chain": "dev",
        "status": "final",
        "tree_size": size + 2,  # the new event and the round's heads commitment
        "action": "final",
    }
    assert anchored["tx_hash"].startswith("0x") and anchored["error"] is None
    assert "embedded development chain" in err
    latest = embedded.chain()
    assert latest.contract is not None

    assert main(["anchors"]) == 0
    listed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    keys = ("chain", "status", "tree_size", "root_hash", "tx_hash", "anchor_id")
    assert {k: listed[0][k] for k in keys} == {k: anchored[k] for k in keys}  # newest first
    assert (listed[0]["chain_id"], listed[0]["contract"]) == (latest.w3.eth.chain_id, latest.contract)
    assert [x["tree_size"] for x in listed[1:]] in ([], [size])  # the demo's own anchor, if it made one

    assert main(["anchor"]) == 0  # nothing new
    again = json.loads(capsys.readouterr().out)
    assert (again["action"], again["tree_size"], again["tx_hash"]) == ("up to date", size + 2, anchored["tx_hash"])


def test_cli_unknown_chain_is_a_usage_error(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anchor", "--chain", "nope"]) == 2
    assert "--chain: no chain named 'nope' is configured (TENDERPROOF_CHAINS has: dev)" in capsys.readouterr().err


KEY = "11" * 32


def _unreachable_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    chains = [{"name": "x", "rpc_url": UNREACHABLE, "key": "0x" + KEY, "chain_id": 5, "rpc_timeout": 1}]
    monkeypatch.setenv("TENDERPROOF_CHAINS", json.dumps(chains))


def test_cli_unreachable_chain_exits_3_without_showing_the_key(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _unreachable_chain(monkeypatch)
    assert main(["anchor"]) == 3
    out, err = capsys.readouterr()
    assert "error: chain x: the JSON-RPC endpoint did not answer" in err
    assert KEY not in out + err and KEY.upper() not in out + err
    assert out == ""


def test_cli_failed_anchor_releases_the_lease(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _unreachable_chain(monkeypatch)
    assert main(["anchor"]) == 3
    capsys.readouterr()
    assert main(["anchor"]) == 3, capsys.readouterr().err  # still unreachable, not "lease held"


def test_cli_malformed_chains_setting_is_a_usage_error(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TENDERPROOF_CHAINS", "[{not json")
    assert main(["anchor"]) == 2
    assert "TENDERPROOF_CHAINS" in capsys.readouterr().err
