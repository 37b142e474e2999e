"""The contract's verifyInclusion and its on-chain consistency check agree with ledger.core,
on valid and corrupted proofs of random trees, on an in-process EVM (eth-tester, py-evm)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

import pytest
from eth_tester.exceptions import TransactionFailed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3

from anchoring.compile import load_artifact
from ledger.core import merkle, proof, tiles, verify
from ledger.core.errors import LedgerError
from tests.core.test_merkle import TileStore

#: Selector of ProcurementAnchorInconsistentCheckpoint(uint64,bytes32,uint64,bytes32).
INCONSISTENT = Web3.keccak(text="ProcurementAnchorInconsistentCheckpoint(uint64,bytes32,uint64,bytes32)")[:4]


@pytest.fixture(scope="module", params=[1, 2], ids=["v1", "v2"])
def chain(request: pytest.FixtureRequest) -> Iterator[tuple[Web3, Any, str]]:
    """Each contract version on its own chain: version 2's consistency check is a separate
    (assembly) implementation, held to the same answers as the core's."""
    w3 = Web3(Web3.EthereumTesterProvider())
    admin = w3.eth.accounts[0]
    artifact = load_artifact(request.param)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(admin).transact({"from": admin}))
    yield w3, w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"]), admin


def _corrupt(path: list[bytes], how: str, where: int, bit: int) -> list[bytes]:
    if how == "flip" and path:
        i = where % len(path)
        bad = bytearray(path[i])
        bad[bit // 8] ^= 1 << (bit % 8)
        return [*path[:i], bytes(bad), *path[i + 1 :]]
    if how == "drop" and path:
        i = where % len(path)
        return path[:i] + path[i + 1 :]
    return [*path, merkle.leaf_hash(bytes([bit]))]


def _revert_data(exc: TransactionFailed) -> bytes:
    """eth-tester reports a revert as the text "execution reverted: <bytes literal>"."""
    message = str(exc.args[0])
    prefix = "execution reverted: "
    assert message.startswith(prefix), message
    data = ast.literal_eval(message[len(prefix) :])
    assert isinstance(data, bytes)
    return data


def _core_accepts(check: Any) -> bool:
    try:
        check()
    except LedgerError:
        return False
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(st.binary(max_size=6), min_size=2, max_size=70),
    pick=st.tuples(st.integers(min_value=0), st.integers(min_value=0), st.integers(min_value=0)),
    how=st.sampled_from(["flip", "drop", "add"]),
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=255),
)
def test_contract_agrees_with_core(
    chain: tuple[Web3, Any, str], data: list[bytes], pick: tuple[int, int, int], how: str, where: int, bit: int
) -> None:
    w3, contract, admin = chain
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    snapshot = tester.take_snapshot()
    try:
        store = TileStore()
        leaves = [merkle.leaf_hash(d) for d in data]
        store.append(leaves)
        n = len(data)
        m = pick[0] % (n - 1) + 1  # the anchored older size, 1 <= m < n
        index = pick[1] % m
        root_m = merkle.root_from_leaf_hashes(leaves[:m])
        root_n = merkle.root_from_leaf_hashes(leaves)
        w3.eth.wait_for_transaction_receipt(contract.functions.anchor(m, root_m, []).transact({"from": admin}))

        nodes = proof.inclusion(index, m)
        path = nodes.assemble(tiles.read_nodes(nodes.ids, store.read))
        for candidate in (path, _corrupt(path, how, where, bit)):
            core = _core_accepts(lambda c=candidate: verify.verify_inclusion(index, m, leaves[index], c, root_m))
            assert contract.functions.verifyInclusion(m, index, leaves[index], candidate).call() is core

        nodes = proof.consistency(m, n)
        path = nodes.assemble(tiles.read_nodes(nodes.ids, store.read))
        for candidate in (path, _corrupt(path, how, where, bit)):
            core = _core_accepts(lambda c=candidate: verify.verify_consistency(m, n, root_m, root_n, c))
            try:
                contract.functions.anchor(n, root_n, candidate).call({"from": admin})
                chain_accepts = True
            except TransactionFailed as exc:
                # eth-tester does not decode custom errors: check the selector in the revert data.
                assert _revert_data(exc)[:4] == INCONSISTENT
                chain_accepts = False
            assert chain_accepts is core, f"m={m} n={n} proof of {len(candidate)}"
        assert _core_accepts(lambda: verify.verify_consistency(m, n, root_m, root_n, path))
    finally:
        tester.revert_to_snapshot(snapshot)
