"""Red team, anchoring (issue 16), against a real JSON-RPC node (anvil from npm): a reorg two
anchors deep, the same transaction re-mined in another block, funds drained while a transaction
is in flight. Each case shows the fixed behaviour: the service converges to what the chain holds."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text, update

from anchoring import service, store
from anchoring.bundles import build_bundle, final_anchors
from anchoring.chain import ChainClient
from anchoring.errors import ChainConfigError, LogMismatchError
from anchoring.operations import switch_contract
from anchoring.schema import anchor_targets, anchors
from anchoring.service import ChainAnchorer, Credentials, Policy, RoundResult
from audit import chains as audit_chains
from audit.log import AnchorTarget, audit
from cli import main
from cli.anchoring import NOT_FINAL
from ledger.log import Log
from ledger.store.db import write_transaction
from ledger.submission import Submission
from settings import ChainSettings
from tests.anchoring.nodes import KEYS, AnvilNode, anvil_node, chain_settings
from tests.conftest import ORIGIN, T0
from tests.recording import append_many
from tests.store.test_audit import unguarded
from verifier.chain import RpcChainReader, http_transport
from verifier.check import verify_bundle

pytestmark = pytest.mark.slow

OCID = "ocds-abc123-redteam"


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    with anvil_node() as started:
        yield started


@pytest.fixture
def fresh(anvil: AnvilNode) -> Iterator[AnvilNode]:
    anvil.automine(True)
    yield anvil
    anvil.automine(True)


def _settings(url: str, contract: str | None = None, **overrides: Any) -> ChainSettings:
    return chain_settings(url, contract, **{"rpc_timeout": 5.0, **overrides})


def _deploy(url: str, key: str = KEYS[0]) -> str:
    address, _ = service.deploy(service.connect(_settings(url, key=SecretStr(key)), Credentials()))
    return address


def _record(log: Log, count: int, tag: str = "") -> int:
    start = log.reader.tree_head().size
    append_many(
        log,
        [Submission(ocid=OCID, type="tender.amended", payload={"n": start + i, "tag": tag}) for i in range(count)],
        now=T0,
    )
    return log.integrate_all(now=T0).size


def _settle(
    anchorer: ChainAnchorer, *, force: bool = True, rounds: int = 50, node: AnvilNode | None = None
) -> RoundResult:
    """Rounds until nothing is in flight (``node``: mine a block between rounds)."""
    result = anchorer.run_round(force=force)
    for _ in range(rounds):
        if result.settled:
            return result
        if node is not None:
            node.mine()
        result = anchorer.run_round()
    raise AssertionError(f"not settled: {result}")


def _anchored_sizes(client: ChainClient) -> Counter[int]:
    return Counter(int(e["args"]["treeSize"]) for e in client.contract.events.Anchored().get_logs(from_block=0))


def _rows(log: Log) -> list[store.Anchor]:
    return sorted((listed.anchor for listed in store.listing(log.engine)), key=lambda a: a.tree_size)


def _matches_chain(client: ChainClient, anchor: store.Anchor) -> None:
    """The anchor's recorded transaction, block and time are the canonical chain's."""
    assert anchor.tx_hash is not None and anchor.block_number is not None
    receipt = client.receipt(anchor.tx_hash)
    assert receipt is not None, f"anchor of size {anchor.tree_size}: its transaction is not on chain"
    assert (receipt.block_number, receipt.block_hash) == (anchor.block_number, anchor.block_hash)
    block = client.block(anchor.block_number)
    assert block == (anchor.block_hash, anchor.block_timestamp)


def test_two_anchors_both_removed_after_final_are_both_rebroadcast(fresh: AnvilNode, sqlite_url: str) -> None:
    """The issue's case: anchors N and N+1 both final, both removed; the older one must not stay
    "final" while the newer one waits behind its missing nonce."""
    log = Log.open(sqlite_url, origin=ORIGIN)
    anchorer = ChainAnchorer(log, _settings(fresh.url, _deploy(fresh.url)))
    _record(log, 4)
    _settle(anchorer)
    before = fresh.snapshot()
    n1 = _record(log, 2)
    a1 = _settle(anchorer).anchor
    n2 = _record(log, 2)
    a2 = _settle(anchorer).anchor
    assert a1 is not None and a2 is not None and (a1.tree_size, a2.tree_size) == (n1, n2)
    assert (a1.status, a2.status) == (store.FINAL, store.FINAL) and a2.nonce == a1.nonce + 1
    fresh.revert(before)
    fresh.mine(4)
    client = anchorer.client
    assert client.receipt(a1.tx_hash) is None and client.receipt(a2.tx_hash) is None  # type: ignore[arg-type]
    fresh.automine(False)  # see the intermediate state: both back to sent, nothing final
    result = anchorer.run_round()
    assert result.anchor is not None and result.anchor.id == a1.id  # waiting for the lower nonce first
    states = {a.id: a.status for a in _rows(log)}
    assert (states[a1.id], states[a2.id]) == (store.SENT, store.SENT)
    assert all(a.final_at is None for a in _rows(log) if a.id in (a1.id, a2.id))
    fresh.mine()
    fresh.automine(True)
    result = _settle(anchorer, force=False)
    rows = {a.id: a for a in _rows(log)}
    assert (rows[a1.id].status, rows[a2.id].status) == (store.FINAL, store.FINAL)
    _matches_chain(client, rows[a1.id])
    _matches_chain(client, rows[a2.id])
    assert client.root_at(n1) == log.reader.root_at(n1) and client.root_at(n2) == log.reader.root_at(n2)
    assert _anchored_sizes(client)[n1] == 1 and _anchored_sizes(client)[n2] == 1


def test_same_transaction_re_mined_in_another_block_updates_block_and_time(fresh: AnvilNode, sqlite_url: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    anchorer = ChainAnchorer(log, _settings(fresh.url, _deploy(fresh.url), confirmations=2))
    size = _record(log, 7)
    final = _settle(anchorer, node=fresh).anchor
    assert final is not None and final.status == store.FINAL and final.tx_hash is not None
    (tx,) = store.transactions(log.engine, final.id)
    depth = fresh.block_number() - final.block_number + 1  # type: ignore[operator]
    fresh.reorg(depth, [(tx.raw, 1)])  # the same transaction, in the second of the new blocks
    receipt = anchorer.client.receipt(final.tx_hash)
    assert receipt is not None and receipt.block_hash != final.block_hash
    result = anchorer.run_round()
    assert result.anchor is not None and result.anchor.block_hash == receipt.block_hash
    result = _settle(anchorer, force=False, node=fresh)
    (row,) = _rows(log)
    assert row.status == store.FINAL and row.tree_size == size
    assert row.block_hash == receipt.block_hash and row.block_number == receipt.block_number
    assert row.block_number != final.block_number  # the stale block would break every bundle citing it
    _matches_chain(anchorer.client, row)
    assert row.error is not None and "re-mined" in row.error
    assert result.anchor is not None


def test_drained_funds_are_reported_and_anchoring_resumes_once_funded(
    fresh: AnvilNode,
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    chain = _settings(fresh.url, _deploy(fresh.url, KEYS[1]), key=SecretStr(KEYS[1]))
    anchorer = ChainAnchorer(log, chain)
    _record(log, 3)
    account = anchorer.client.account.address
    balance = anchorer.client.balance()
    fresh.automine(False)
    assert anchorer.run_round(force=True).action == "sent"
    fresh.set_balance(account, 0)
    with caplog.at_level(logging.ERROR, logger="anchoring.service"):
        result = anchorer.run_round()
    assert result.action.startswith("waiting: insufficient funds")
    assert result.anchor is not None and result.anchor.status == store.SENT
    assert (
        result.anchor.error is not None and account in result.anchor.error and "fund the account" in result.anchor.error
    )
    assert any(r.levelno == logging.ERROR and "insufficient funds" in r.getMessage() for r in caplog.records)
    assert not result.settled
    # The command line: `anchor` exits non-zero while the anchor is not final, --status says why.
    anchorer.release()
    monkeypatch.setenv("TENDERPROOF_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TENDERPROOF_ORIGIN", ORIGIN)
    monkeypatch.setenv(
        "TENDERPROOF_CHAINS",
        json.dumps([{**chain.model_dump(mode="json"), "key": KEYS[1]}]),
    )
    capsys.readouterr()
    assert main(["anchor", "--timeout", "0"]) == NOT_FINAL
    err = capsys.readouterr().err
    assert "not final" in err and "insufficient funds" in err, err
    assert main(["anchor", "--status"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "waiting" and "fund the account" in shown["reason"], shown
    assert [a["status"] for a in shown["in_flight"]] == [store.SENT]
    fresh.mine()  # the node drops or cannot include it: nothing becomes final
    assert anchorer.run_round().anchor.status != store.FINAL  # type: ignore[union-attr]
    fresh.set_balance(account, balance)
    fresh.automine(True)
    fresh.mine()
    result = _settle(anchorer, force=False)
    assert result.anchor is not None and result.anchor.status == store.FINAL
    assert result.anchor.error is None
    _matches_chain(anchorer.client, result.anchor)


def _once(log: Log, chain: ChainSettings) -> RoundResult:
    """Anchor now until settled, as one `tenderproof anchor` would, and give the lease back."""
    anchorer = ChainAnchorer(log, chain)
    try:
        return _settle(anchorer)
    finally:
        anchorer.release()


def _targets(log: Log) -> list[str]:
    with log.engine.connect() as conn:
        return [row.contract for row in conn.execute(select(anchor_targets).order_by(anchor_targets.c.id))]


def test_wrong_contract_leaves_no_trace_and_switching_is_explicit(
    fresh: AnvilNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours, foreign, spare = _deploy(fresh.url), _deploy(fresh.url), _deploy(fresh.url)
    other = Log.open(f"sqlite:///{tmp_path / 'other.sqlite3'}", origin=ORIGIN)  # another log on `foreign`
    _record(other, 20)
    _once(other, _settings(fresh.url, foreign))
    log = Log.open(f"sqlite:///{tmp_path / 'ours.sqlite3'}", origin=ORIGIN)
    _record(log, 5)
    # One run with the wrong contract: refused, and nothing recorded.
    with pytest.raises(LogMismatchError, match="holds tree size 20, this log only 5"):
        _once(log, _settings(fresh.url, foreign))
    assert _targets(log) == []
    # Corrected: the configured contract is the one used, and bundles cite it.
    size = _record(log, 2)
    assert _once(log, _settings(fresh.url, ours)).anchor.tree_size == size  # type: ignore[union-attr]
    assert _targets(log) == [ours]
    # Another contract in the setting (one the key may anchor to): refused, nothing recorded.
    with pytest.raises(ChainConfigError, match=f"anchors to {ours}: nothing was sent or recorded.*switch-contract"):
        _once(log, _settings(fresh.url, spare))
    assert _targets(log) == [ours]
    cited = final_anchors(log.engine, "local")
    assert cited.contract == ours and [a.tree_size for a in cited.anchors] == [size]
    at_ours = size
    # Switching is an explicit operation, logged; a contract of another log is refused there too.
    with pytest.raises(LogMismatchError):
        switch_contract(
            log, _settings(fresh.url), foreign, credentials=Credentials(), policy=Policy(), now=service.utc_now()
        )
    assert _targets(log) == [ours]
    with caplog.at_level(logging.WARNING, logger="anchoring.service"):
        switch_contract(
            log, _settings(fresh.url), spare, credentials=Credentials(), policy=Policy(), now=service.utc_now()
        )
    assert any(f"switching contracts from {ours} to {spare}" in r.getMessage() for r in caplog.records)
    assert _targets(log) == [ours, spare]
    size = _record(log, 1)
    assert _once(log, _settings(fresh.url, spare)).anchor.tree_size == size  # type: ignore[union-attr]
    cited = final_anchors(log.engine, "local")
    assert cited.contract == spare and [a.tree_size for a in cited.anchors] == [size]
    at_spare = size
    # Switching back to a contract used before: explicit and logged; anchoring goes on there from
    # its last anchor, and bundles cite it (its anchors, before and after, all this log's).
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="anchoring.service"):
        switch_contract(
            log, _settings(fresh.url), ours, credentials=Credentials(), policy=Policy(), now=service.utc_now()
        )
    said = [r.getMessage() for r in caplog.records if "switching contracts" in r.getMessage()]
    assert len(said) == 1 and f"from {spare} to {ours}, back to the contract it anchored to until" in said[0], said
    assert _targets(log) == [ours, spare]  # no new target: the earlier one is in use again
    assert service.store.newest_target(log.engine, "local").contract == ours  # type: ignore[union-attr]
    with pytest.raises(ChainConfigError, match=f"anchors to {ours}: nothing was sent or recorded"):
        _once(log, _settings(fresh.url, spare))  # the setting must follow the switch, as for any switch
    size = _record(log, 2)
    assert _once(log, _settings(fresh.url, ours)).anchor.tree_size == size  # type: ignore[union-attr]
    cited = final_anchors(log.engine, "local")
    assert cited.contract == ours and [a.tree_size for a in cited.anchors] == [at_ours, size]
    bundle = build_bundle(log, OCID, cited)
    assert verify_bundle(bundle, chain=RpcChainReader(http_transport(fresh.url))).valid
    # Back to `spare` once more, but the log's record of its anchor disagrees with the contract
    # (here: a database whose anchor row was changed): refused, nothing recorded.
    with log.engine.begin() as conn:
        conn.execute(update(anchors).where(anchors.c.tree_size == at_spare).values(root=b"\x01" * 32))
    with pytest.raises(ChainConfigError, match=f"cannot switch back to {spare}: this log recorded its anchor of tree "
                       f"size {at_spare} there with root 01010101"):  # fmt: skip
        switch_contract(
            log, _settings(fresh.url), spare, credentials=Credentials(), policy=Policy(), now=service.utc_now()
        )
    assert service.store.newest_target(log.engine, "local").contract == ours  # type: ignore[union-attr]


def _backup(url: str, into: Path) -> str:
    """A copy of the SQLite database at ``url`` (the online backup API), as a database URL."""
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    target = sqlite3.connect(into)
    with target:
        source.backup(target)
    source.close()
    target.close()
    return f"sqlite:///{into}"


def test_restored_old_backup_with_new_writes_is_named_and_anchoring_stops(
    fresh: AnvilNode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    chain = _settings(fresh.url, _deploy(fresh.url))
    log = Log.open(url, origin=ORIGIN)
    _record(log, 6)
    assert _once(log, chain).anchor.tree_size == 6  # type: ignore[union-attr]
    old = _backup(url, tmp_path / "backup.sqlite3")  # the backup: 6 entries, anchored at 6
    _record(log, 2)
    assert _once(log, chain).anchor.tree_size == 8  # type: ignore[union-attr]
    log.engine.dispose()
    # The live database is lost; the old backup is restored, and three new events are written.
    restored = Log.open(old, origin=ORIGIN)
    assert _record(restored, 3, tag="after the restore") == 9
    _, _, chain_anchors = audit_chains.configured([chain], warn=lambda message: None)
    report = audit(restored.engine, origin=ORIGIN, chain_anchors=chain_anchors)
    assert not report.ok
    (finding,) = report.findings
    assert finding.code == "restored_backup" and finding.tree_size == 8
    assert "between tree sizes 6 and 8" in finding.reason and chain.contract in finding.reason  # type: ignore[operator]
    # The command line names it so, never OK nor TAMPERED, and says what to do.
    monkeypatch.setenv("TENDERPROOF_DATABASE_URL", old)
    monkeypatch.setenv("TENDERPROOF_ORIGIN", ORIGIN)
    monkeypatch.setenv("TENDERPROOF_CHAINS", json.dumps([{**chain.model_dump(mode="json"), "key": KEYS[0]}]))
    capsys.readouterr()
    assert main(["audit"]) == 1
    out = capsys.readouterr().out
    assert "RESTORED FROM AN OLDER BACKUP: " in out and "TAMPERED" not in out and "OK:" not in out, out
    assert "what to do" in out
    # The anchoring service stops and says what the operator must do.
    with pytest.raises(LogMismatchError, match=r"anchoring is stopped on this chain.*at least as new as tree size 8"):
        _once(restored, chain)
    assert main(["anchor", "--status"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "stopped" and "tree size 8" in shown["reason"]


def test_restored_old_backup_before_new_writes_is_named(fresh: AnvilNode, tmp_path: Path) -> None:
    """The log shorter than the chain: named a restored backup with the lost entries' sizes."""
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    chain = _settings(fresh.url, _deploy(fresh.url))
    log = Log.open(url, origin=ORIGIN)
    _record(log, 5)
    _once(log, chain)
    old = _backup(url, tmp_path / "backup.sqlite3")
    _record(log, 4)
    _once(log, chain)
    _, _, chain_anchors = audit_chains.configured([chain], warn=lambda message: None)
    report = audit(Log.open(old, origin=ORIGIN).engine, origin=ORIGIN, chain_anchors=chain_anchors)
    (finding,) = report.findings
    assert (finding.code, finding.tree_size) == ("restored_backup", 9)
    assert "entries 5..8 are lost here" in finding.reason


def test_foreign_root_below_the_head_is_named(fresh: AnvilNode, tmp_path: Path) -> None:
    """A root on the contract at a size below one this log anchored, not this log's root there."""
    chain = _settings(fresh.url, _deploy(fresh.url))
    log = Log.open(f"sqlite:///{tmp_path / 'log.sqlite3'}", origin=ORIGIN)
    _record(log, 4)
    _once(log, chain)
    _record(log, 4)
    _once(log, chain)
    _, _, real = audit_chains.configured([chain], warn=lambda message: None)
    assert audit(log.engine, origin=ORIGIN, chain_anchors=real).ok

    def with_foreign(target: AnchorTarget) -> list[tuple[int, bytes]] | None:
        held = real(target)
        return None if held is None else [*held, (6, bytes.fromhex("ab" * 32))]

    report = audit(log.engine, origin=ORIGIN, chain_anchors=with_foreign)
    (finding,) = report.findings
    assert (finding.code, finding.tree_size) == ("foreign_root", 6)
    assert "another writer" in finding.reason


def test_lost_tail_is_named_with_its_sizes(fresh: AnvilNode, tmp_path: Path) -> None:
    """Entries deleted after they were anchored (behind the triggers' back): the chain vouches
    for tree size 8, the database recorded that anchor, the log holds 6 entries."""
    chain = _settings(fresh.url, _deploy(fresh.url))
    log = Log.open(f"sqlite:///{tmp_path / 'log.sqlite3'}", origin=ORIGIN)
    _record(log, 6)
    _once(log, chain)
    _record(log, 2)
    assert _once(log, chain).anchor.tree_size == 8  # type: ignore[union-attr]
    with unguarded(log.engine), write_transaction(log.engine) as conn:
        conn.execute(text("DELETE FROM log_entries WHERE idx >= 6"))
    _, _, chain_anchors = audit_chains.configured([chain], warn=lambda message: None)
    report = audit(log.engine, origin=ORIGIN, chain_anchors=chain_anchors)
    lost = [f for f in report.findings if f.code == "lost_tail"]
    assert [f.tree_size for f in lost] == [8], report.findings
    assert "entries 6..7 were lost after they were anchored" in lost[0].reason
