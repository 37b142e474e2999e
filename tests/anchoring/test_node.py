"""The anchoring service against a real JSON-RPC node (``hardhat node`` from npm, started and
stopped here): anchoring and reading back, refusals by the contract, a transaction stuck in the
mempool, reorgs, the endpoint down for a while, and SIGKILL after every state of an anchor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from anchoring import failpoints, service, store
from anchoring.chain import ChainClient
from anchoring.errors import ChainConfigError, ChainUnavailableError, ContractRefusalError
from anchoring.schema import anchor_txs, anchors
from anchoring.service import ChainAnchorer, Credentials, Policy, RoundResult
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings
from tests.anchoring.nodes import CHAIN_ID, KEYS, HardhatNode, Proxy, chain_settings, hardhat_node
from tests.conftest import ORIGIN, T0
from tests.recording import append_many

pytestmark = pytest.mark.slow

OCID = "ocds-abc123-node"


@pytest.fixture(scope="module")
def node() -> Iterator[HardhatNode]:
    with hardhat_node() as started:
        yield started


@pytest.fixture
def fresh(node: HardhatNode) -> Iterator[HardhatNode]:
    """The node with automine on and no interval mining, whatever the previous test left."""
    node.automine(True)
    node.rpc("evm_setIntervalMining", 0)
    yield node
    node.automine(True)
    node.rpc("evm_setIntervalMining", 0)


def _settings(url: str, contract: str | None = None, **overrides: Any) -> ChainSettings:
    return chain_settings(url, contract, **{"rpc_timeout": 2.0, **overrides})


def _deploy(url: str) -> str:
    address, _ = service.deploy(service.connect(_settings(url), Credentials()))
    return address


def _record(log: Log, count: int, start: int = 0) -> int:
    append_many(
        log, [Submission(ocid=OCID, type="tender.amended", payload={"n": start + i}) for i in range(count)], now=T0
    )
    return log.integrate_all(now=T0, commit_heads=True).size


def _settle(anchorer: ChainAnchorer, *, force: bool = True, rounds: int = 50) -> RoundResult:
    result = anchorer.run_round(force=force)
    for _ in range(rounds):
        if result.settled:
            return result
        result = anchorer.run_round()
    raise AssertionError(f"not settled: {result}")


def _anchored_sizes(client: ChainClient) -> Counter[int]:
    """How many Anchored events the canonical chain holds per tree size."""
    return Counter(int(e["args"]["treeSize"]) for e in client.contract.events.Anchored().get_logs(from_block=0))


def _rows(log: Log) -> list[store.Anchor]:
    return [listed.anchor for listed in store.listing(log.engine)]


def test_anchors_checkpoints_and_reads_them_back(fresh: HardhatNode, log: Log) -> None:
    anchorer = ChainAnchorer(log, _settings(fresh.url, _deploy(fresh.url)))
    sizes = []
    for batch in (3, 1, 17, 64):
        size = _record(log, batch, start=sum(sizes))
        result = _settle(anchorer)
        assert result.anchor is not None
        assert (result.anchor.status, result.anchor.tree_size) == (store.FINAL, size)
        sizes.append(size)
    client = anchorer.client
    _, latest_size, latest_root, _ = client.latest()
    assert (latest_size, latest_root) == (sizes[-1], log.reader.root_at(sizes[-1]))
    for size in sizes:
        assert client.root_at(size) == log.reader.root_at(size)
    assert _anchored_sizes(client) == Counter(sizes)
    rows = sorted(_rows(log), key=lambda a: a.tree_size)
    assert [(a.base_size, a.tree_size) for a in rows] == list(zip([0, *sizes[:-1]], sizes, strict=True))
    assert all(a.block_number and a.block_timestamp and a.gas_used and a.anchor_id for a in rows)
    # Each anchor's block is where the chain says its transaction is.
    for a in rows:
        assert a.tx_hash is not None
        receipt = client.receipt(a.tx_hash)
        assert receipt is not None and receipt.block_hash == a.block_hash


def test_contract_refuses_an_inconsistent_checkpoint_and_a_non_anchorer(fresh: HardhatNode, sqlite_url: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    contract = _deploy(fresh.url)
    anchorer = ChainAnchorer(log, _settings(fresh.url, contract))
    first = _record(log, 5)
    _settle(anchorer)
    second = _record(log, 5, start=5)
    client = anchorer.client
    proof = log.reader.consistency_proof(first, second)
    forged = bytes(32)
    with pytest.raises(ContractRefusalError) as refused:
        client.estimate(client.anchor_calldata(second, forged, proof), contract)
    assert refused.value.error == "ProcurementAnchorInconsistentCheckpoint"
    assert refused.value.arguments["latestTreeSize"] == first and refused.value.arguments["rootHash"] == forged
    # Sent anyway (signed by hand, gas given): the chain itself reverts it.
    signed = client.sign(
        data=client.anchor_calldata(second, forged, proof),
        to=contract,
        nonce=client.nonce(),
        gas=200_000,
        fees=client.fees(),
    )
    client.broadcast(signed.raw)  # Hardhat mines it, and answers with the revert
    receipt = client.receipt(signed.tx_hash)
    assert receipt is not None and not receipt.succeeded
    # An account without the anchorer role: the service refuses before sending ...
    outsider = ChainAnchorer(log, _settings(fresh.url, contract, key=SecretStr(KEYS[1])), holder="outsider")
    anchorer.release()
    nonce = outsider.client.nonce()
    with pytest.raises(ChainConfigError) as config:
        outsider.run_round(force=True)
    assert config.value.field == "chains[local].key" and "grantAnchorer" in config.value.reason
    assert outsider.client.nonce() == nonce
    # ... and the contract refuses it.
    with pytest.raises(ContractRefusalError) as unauthorized:
        outsider.client.estimate(outsider.client.anchor_calldata(second, log.reader.root_at(second), proof), contract)
    assert unauthorized.value.error == "ProcurementAnchorUnauthorized"
    assert client.latest()[1] == first


def test_bad_configuration_is_refused_before_sending(fresh: HardhatNode, sqlite_url: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    contract = _deploy(fresh.url)
    _record(log, 3)
    probe = service.connect(_settings(fresh.url), Credentials())
    nonce = probe.nonce()
    cases = [
        (_settings(fresh.url, contract, chain_id=1), "chains[local].chain_id", "node is on chain 31337"),
        (_settings(fresh.url, "0x" + "11" * 20), "chains[local].contract", "no contract at"),
        (_settings(fresh.url, probe.account.address), "chains[local].contract", "no contract at"),
        (_settings(fresh.url, contract, key=SecretStr("0x1234")), "chains[local].key", "32-byte hex"),
    ]
    for n, (chain, field, reason) in enumerate(cases):
        with pytest.raises(ChainConfigError) as refused:
            ChainAnchorer(log, chain, holder=f"h{n}").run_round(force=True)
        assert refused.value.field == field and reason in refused.value.reason
        store.release(log.engine, "chain:local", f"h{n}", now=service.utc_now())
    assert probe.nonce() == nonce
    assert _rows(log) == []


def test_stuck_transaction_is_replaced_with_a_higher_fee(fresh: HardhatNode, sqlite_url: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    anchorer = ChainAnchorer(log, _settings(fresh.url, _deploy(fresh.url), stuck_after=0))
    size = _record(log, 9)
    fresh.automine(False)
    assert anchorer.run_round(force=True).action == "sent"
    assert anchorer.run_round().action == "replaced"
    (anchor,) = _rows(log)
    txs = store.transactions(log.engine, anchor.id)
    assert len(txs) == 2 and txs[0].nonce == txs[1].nonce == anchor.nonce
    assert txs[1].max_fee >= txs[0].max_fee * 125 // 100
    fresh.mine()
    fresh.automine(True)
    result = _settle(anchorer, force=False)
    assert result.anchor is not None and result.anchor.status == store.FINAL
    assert result.anchor.tx_hash == txs[1].tx_hash  # the node kept the better-paying one
    assert _anchored_sizes(anchorer.client) == Counter({size: 1})


def test_reorg_before_finality_is_detected_and_the_same_transaction_sent_again(
    fresh: HardhatNode, sqlite_url: str
) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    anchorer = ChainAnchorer(log, _settings(fresh.url, _deploy(fresh.url), confirmations=3))
    size = _record(log, 6)
    before = fresh.snapshot()
    result = anchorer.run_round(force=True)
    while result.anchor is None or result.anchor.status != store.INCLUDED:
        result = anchorer.run_round()
    mined = result.anchor.tx_hash
    fresh.revert(before)  # the block holding the anchor is gone, and the transaction with it
    assert anchorer.client.receipt(mined) is None  # type: ignore[arg-type]
    result = anchorer.run_round()
    assert result.action == "reorged out; sent again"
    assert result.anchor is not None and result.anchor.status == store.SENT
    while result.anchor is None or result.anchor.status != store.FINAL:
        fresh.mine()
        result = anchorer.run_round()
    assert result.anchor.tx_hash == mined  # the same signed bytes, mined again
    assert _anchored_sizes(anchorer.client) == Counter({size: 1})
    assert len(store.transactions(log.engine, result.anchor.id)) == 1


def test_reorg_after_finality_is_detected_and_anchored_again(fresh: HardhatNode, sqlite_url: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    anchorer = ChainAnchorer(log, _settings(fresh.url, _deploy(fresh.url)))
    size = _record(log, 4)
    before = fresh.snapshot()
    final = _settle(anchorer).anchor
    assert final is not None and final.status == store.FINAL
    fresh.revert(before)  # deeper than the confirmations
    fresh.automine(False)  # see the anchor back in flight before the node mines it again
    result = anchorer.run_round()
    assert result.anchor is not None and result.anchor.status == store.SENT and result.anchor.final_at is None
    assert result.anchor.error is not None and result.anchor.error.startswith("reorged out after it was final")
    fresh.automine(True)
    fresh.mine()
    result = _settle(anchorer, force=False)
    assert result.anchor is not None and (result.anchor.status, result.anchor.tree_size) == (store.FINAL, size)
    assert result.anchor.tx_hash == final.tx_hash  # the same signed bytes, mined again
    assert [a.status for a in _rows(log)] == [store.FINAL]
    assert anchorer.client.root_at(size) == log.reader.root_at(size)
    assert _anchored_sizes(anchorer.client) == Counter({size: 1})


def test_endpoint_down_for_a_while_then_anchoring_catches_up(fresh: HardhatNode, sqlite_url: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    contract = _deploy(fresh.url)
    proxy = Proxy(fresh.port)
    proxy.up()
    try:
        job = service.AnchoringService(log, [_settings(proxy.url, contract)], policy=Policy(threshold=1))
        first = _record(log, 2)
        assert job.tick()[0].action == "sent"
        assert _settle(job.anchorers[0], force=False).anchor.tree_size == first  # type: ignore[union-attr]
        proxy.down()
        second = _record(log, 5, start=2)  # recording does not need the chain
        (result,) = job.tick()
        assert result.action.startswith("error: chain local: the JSON-RPC endpoint did not answer")
        with pytest.raises(ChainUnavailableError):
            job.anchorers[0].run_round(force=True)
        _record(log, 1, start=7)
        proxy.up()
        results = [job.tick()[0] for _ in range(3)]
        final = next(r.anchor for r in results if r.anchor is not None and r.anchor.status == store.FINAL)
        assert final.tree_size == second + 2  # one more event and its heads commitment
    finally:
        proxy.down()
    client = service.connect(_settings(fresh.url, contract), Credentials())
    assert _anchored_sizes(client) == Counter({first: 1, second + 2: 1})


def _cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def cli_env(fresh: HardhatNode, tmp_path: Path) -> dict[str, str]:
    chain = {"name": "local", "rpc_url": fresh.url, "chain_id": CHAIN_ID, "key": KEYS[0], "confirmations": 2}
    return {
        **os.environ,
        "TENDERPROOF_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "TENDERPROOF_ORIGIN": ORIGIN,
        "TENDERPROOF_CHAINS": json.dumps([chain]),
        "TENDERPROOF_LEASE_TTL": "1",
    }


def _anchor_until_done(env: dict[str, str]) -> dict[str, Any]:
    """Run `tenderproof anchor` until it succeeds (the killed run's lease expires after 1 s)."""
    deadline = time.monotonic() + 60
    while True:
        done = _cli(env, "anchor", "--timeout", "60")
        if done.returncode == 0:
            return dict(json.loads(done.stdout.splitlines()[-1]))
        assert "lease" in done.stderr, done.stderr
        assert time.monotonic() < deadline, done.stderr
        time.sleep(0.5)


@pytest.mark.parametrize("point", [p for p in failpoints.POINTS if p != "anchor.replacement"])
def test_sigkill_after_each_state_resumes_without_loss_or_conflict(
    fresh: HardhatNode, cli_env: dict[str, str], point: str
) -> None:
    fresh.rpc("evm_setIntervalMining", 300)  # blocks keep coming, for the confirmations
    deployed = _cli(cli_env, "deploy", "--chain", "local")
    assert deployed.returncode == 0, deployed.stderr
    contract = json.loads(deployed.stdout)["contract"]
    chains = json.loads(cli_env["TENDERPROOF_CHAINS"])
    env = {**cli_env, "TENDERPROOF_CHAINS": json.dumps([{**chains[0], "contract": contract}])}
    log = Log.open(env["TENDERPROOF_DATABASE_URL"], origin=ORIGIN)
    size = _record(log, 11)
    client = service.connect(_settings(fresh.url, contract), Credentials())
    nonce = client.nonce()

    killed = _cli({**env, failpoints.ENV: point}, "anchor", "--timeout", "60")
    assert killed.returncode == -9, killed.stderr

    final = _anchor_until_done(env)
    assert (final["status"], final["tree_size"]) == ("final", size)
    assert _anchored_sizes(client) == Counter({size: 1})
    assert client.nonce() == nonce + 1  # one transaction took effect, no conflicting one was sent
    with log.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(anchors)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(anchor_txs)).scalar_one() == 1
    # And the log goes on: the next checkpoint extends the one anchored across the crash.
    more = _record(log, 2, start=11)
    assert _anchor_until_done(env)["tree_size"] == more
    assert _anchored_sizes(client) == Counter({size: 1, more: 1})


def test_sigkill_after_storing_a_replacement(fresh: HardhatNode, cli_env: dict[str, str]) -> None:
    deployed = _cli(cli_env, "deploy", "--chain", "local")
    assert deployed.returncode == 0, deployed.stderr
    contract = json.loads(deployed.stdout)["contract"]
    chain = {**json.loads(cli_env["TENDERPROOF_CHAINS"])[0], "contract": contract, "confirmations": 1}
    env = {**cli_env, "TENDERPROOF_CHAINS": json.dumps([{**chain, "stuck_after": 0}])}
    log = Log.open(env["TENDERPROOF_DATABASE_URL"], origin=ORIGIN)
    size = _record(log, 7)
    fresh.automine(False)
    killed = _cli({**env, failpoints.ENV: "anchor.replacement"}, "anchor", "--timeout", "60")
    assert killed.returncode == -9, killed.stderr
    fresh.automine(True)
    fresh.mine()  # the original, still in the pool, is mined: the stored replacement can no longer be
    final = _anchor_until_done({**env, "TENDERPROOF_CHAINS": json.dumps([{**chain, "stuck_after": 600}])})
    assert (final["status"], final["tree_size"]) == ("final", size)
    client = service.connect(_settings(fresh.url, contract), Credentials())
    assert _anchored_sizes(client) == Counter({size: 1})
    with log.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(anchor_txs)).scalar_one() == 2


def test_bundle_verifies_against_the_node_and_fails_against_another_history(
    fresh: HardhatNode, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`tenderproof bundle` then `tenderproof verify --rpc` (which needs no database) on a real node."""
    fresh.rpc("evm_setIntervalMining", 300)
    deployed = _cli(cli_env, "deploy", "--chain", "local")
    assert deployed.returncode == 0, deployed.stderr
    chain = {**json.loads(cli_env["TENDERPROOF_CHAINS"])[0], "contract": json.loads(deployed.stdout)["contract"]}
    env = {**cli_env, "TENDERPROOF_CHAINS": json.dumps([chain])}
    log = Log.open(env["TENDERPROOF_DATABASE_URL"], origin=ORIGIN)
    for batch in (3, 4):
        _record(log, batch, start=0 if batch == 3 else 3)
        assert _anchor_until_done(env)["status"] == "final"
    _record(log, 1, start=7)  # pending
    made = _cli(env, "bundle", OCID)
    assert made.returncode == 0, made.stderr
    path = tmp_path / "bundle.json"
    path.write_text(made.stdout)
    bare = {k: v for k, v in os.environ.items() if not k.startswith("TENDERPROOF_")}
    checked = _cli(bare, "verify", str(path), "--rpc", fresh.url)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "VERIFIED: 8 events, 1 pending" in checked.stdout and "NOT checked" not in checked.stdout
    offline = _cli(bare, "verify", str(path), "--json")
    assert offline.returncode == 0 and json.loads(offline.stdout)["chain"]["checked"] is False

    audited = _cli(env, "audit", "--json")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert json.loads(audited.stdout)["anchors_on_chain"] == 2  # both final anchors compared with rootAt

    # The same contract address on another chain history: a fresh contract anchored by another log.
    other = Log.open(f"sqlite:///{tmp_path / 'other.db'}", origin=ORIGIN)
    append_many(
        other, [Submission(ocid="ocds-abc123-other", type="tender.planned", payload={"n": n}) for n in range(8)], now=T0
    )
    other.integrate_all(now=T0, commit_heads=True)
    bundle = json.loads(made.stdout)
    forged_contract = _deploy(fresh.url)
    # 3 then 4 events, each batch ending with its heads commitment
    assert [a["tree_size"] for a in bundle["anchors"]] == [4, 9]
    # the other log holds 9 (8 events + its commitment) with another root, not 4
    _settle(ChainAnchorer(other, _settings(fresh.url, forged_contract)))
    path.write_text(json.dumps({**bundle, "chain": {**bundle["chain"], "contract": forged_contract}}))
    refused = _cli(bare, "verify", str(path), "--rpc", fresh.url, "--json")
    assert refused.returncode == 1, refused.stderr
    failures = json.loads(refused.stdout)["failures"]
    reasons = {(f["where"], f["reason"].split(",")[0]) for f in failures}
    assert ("anchor of tree size 4", f"the contract {forged_contract} holds no checkpoint of that size") in reasons
    assert any(where == "anchor of tree size 9" and "the contract holds root" in why for where, why in reasons)
    assert all(f["where"].startswith("anchor of tree size") for f in failures)
