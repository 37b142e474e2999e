"""Contract versions on a real JSON-RPC node (anvil): a log anchored to a version 1 contract
(``ProcurementAnchor``, the checkpoint's time in its own slot) switches to version 2
(``ProcurementAnchorV2``, the time from the Anchored event's block); bundles citing either keep
verifying against the chain, with each anchor's time taken from its block."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from anchoring import service
from anchoring.bundles import build_bundle, final_anchors
from anchoring.chain import ChainClient
from anchoring.operations import switch_contract
from anchoring.service import ChainAnchorer, Credentials, Policy
from ledger.core.bundle import load_bundle
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings
from tests.anchoring.nodes import AnvilNode, anvil_node, chain_settings
from tests.conftest import ORIGIN, T0
from tests.recording import append_many
from verifier.chain import RpcChainReader
from verifier.check import verify_bundle

pytestmark = pytest.mark.slow

OCID = "ocds-abc123-versions"


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    with anvil_node() as started:
        yield started


def _settings(url: str, contract: str | None = None) -> ChainSettings:
    return chain_settings(url, contract)


def _client(url: str, contract: str | None = None) -> ChainClient:
    return service.connect(_settings(url, contract), Credentials())


def _record_and_anchor(log: Log, url: str, contract: str, count: int) -> int:
    start = log.reader.tree_head().size
    append_many(
        log, [Submission(ocid=OCID, type="tender.amended", payload={"n": start + i}) for i in range(count)], now=T0
    )
    size = log.integrate_all(now=T0).size
    anchorer = ChainAnchorer(log, _settings(url, contract))
    try:
        result = anchorer.run_round(force=True)
        for _ in range(50):
            if result.settled:
                break
            result = anchorer.run_round()
        assert result.settled and result.anchor is not None and result.anchor.tree_size == size
    finally:
        anchorer.release()
    return size


def _verified(log: Log, url: str) -> dict[str, object]:
    """The tender's bundle as built now, checked against the node: valid, and each anchor's time
    is the timestamp of the block its transaction is in."""
    target = final_anchors(log.engine, "local")
    document = json.loads(json.dumps(build_bundle(log, OCID, target).to_json()))
    report = verify_bundle(load_bundle(document), chain=RpcChainReader.at(url))
    assert report.valid, [str(f) for f in report.failures]
    client = _client(url, target.contract)
    for anchor in document["anchors"]:  # type: ignore[union-attr]
        block = client.block(anchor["block_number"])
        assert block is not None and block[1] == anchor["block_timestamp"]
    return document


def test_v1_anchors_keep_verifying_after_the_switch_to_v2(anvil: AnvilNode, tmp_path: Path) -> None:
    url = anvil.url
    v1, _ = service.deploy(_client(url), version=1)
    v2, _ = service.deploy(_client(url))
    assert (_client(url, v1).version(), _client(url, v2).version()) == (1, 2)
    log = Log.open(f"sqlite:///{tmp_path / 'log.sqlite3'}", origin=ORIGIN)

    first = _record_and_anchor(log, url, v1, 3)
    old = _verified(log, url)
    assert old["chain"]["contract"].lower() == v1.lower()  # type: ignore[index]
    # Version 1 still answers rootAt with (root, timestamp): the verifier reads the root from it.
    reader = RpcChainReader.at(url)
    assert reader.root_at(v1, first) == log.reader.root_at(first)

    switch_contract(log, _settings(url), v2, credentials=Credentials(), policy=Policy(), now=service.utc_now())
    second = _record_and_anchor(log, url, v2, 2)
    new = _verified(log, url)
    assert new["chain"]["contract"].lower() == v2.lower()  # type: ignore[index]
    assert [a["tree_size"] for a in new["anchors"]] == [second]  # type: ignore[index]
    # Version 2 answers rootAt with the root alone, and nothing for a size it did not anchor.
    raw = reader._call("eth_call", [{"to": v2.lower(), "data": "0x" + _root_at(second).hex()}, "latest"])
    assert len(bytes.fromhex(raw[2:])) == 32
    assert reader.root_at(v2, second) == log.reader.root_at(second)
    assert reader.root_at(v2, first) == bytes(32)

    # The bundle built against version 1 before the switch verifies still.
    report = verify_bundle(load_bundle(old), chain=reader)
    assert report.valid, [str(f) for f in report.failures]
    # And a bundle claiming another time for a version 2 anchor is refused: the time is the block's.
    forged = json.loads(json.dumps(new))
    forged["anchors"][0]["block_timestamp"] += 1
    report = verify_bundle(load_bundle(forged), chain=reader)
    assert not report.valid
    assert any("block time is" in str(f) for f in report.failures)


def _root_at(size: int) -> bytes:
    return keccak(text="rootAt(uint64)")[:4] + encode(["uint64"], [size])
