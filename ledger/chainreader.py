"""A thin, read-only view of the anchor contract for verifiers: the chain id, ``rootAt``, and
an anchoring transaction's receipt and block. No keys, no database, nothing sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput, TransactionNotFound

#: topic0 of ``Anchored(uint256 indexed anchorId, uint64 treeSize, bytes32 rootHash, uint64 timestamp)``.
ANCHORED_TOPIC = keccak(text="Anchored(uint256,uint64,bytes32,uint64)")

_ROOT_AT_ABI = [
    {
        "type": "function",
        "name": "rootAt",
        "stateMutability": "view",
        "inputs": [{"name": "treeSize", "type": "uint64"}],
        "outputs": [{"name": "rootHash", "type": "bytes32"}, {"name": "timestamp", "type": "uint64"}],
    },
    {
        "type": "function",
        "name": "latest",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "anchorId", "type": "uint256"},
            {"name": "treeSize", "type": "uint64"},
            {"name": "rootHash", "type": "bytes32"},
            {"name": "timestamp", "type": "uint64"},
        ],
    },
]


@dataclass(frozen=True, slots=True)
class AnchorTx:
    """What the chain says of an anchoring transaction."""

    succeeded: bool
    block_number: int
    block_timestamp: int
    #: (treeSize, rootHash) of every ``Anchored`` event the contract emitted in it.
    anchored: tuple[tuple[int, bytes], ...]


class ChainReader(Protocol):
    def chain_id(self) -> int: ...

    def root_at(self, contract: str, tree_size: int) -> bytes: ...

    def anchor_tx(self, contract: str, tx_hash: str) -> AnchorTx | None: ...


class RpcChainReader:
    """:class:`ChainReader` over a JSON-RPC endpoint (or any web3 provider)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    @classmethod
    def at(cls, url: str, *, timeout: float = 15.0) -> RpcChainReader:
        return cls(Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout})))

    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def root_at(self, contract: str, tree_size: int) -> bytes:
        """The root the contract holds for ``tree_size``; 32 zero bytes if none (or no contract there)."""
        anchor = self.w3.eth.contract(address=Web3.to_checksum_address(contract), abi=_ROOT_AT_ABI)
        try:
            root, _ = anchor.functions.rootAt(tree_size).call()
        except BadFunctionCallOutput:  # no code at the address
            return bytes(32)
        return bytes(root)

    def latest_size(self, contract: str) -> int:
        """The largest tree size the contract has anchored (0 if none, or no contract there)."""
        anchor = self.w3.eth.contract(address=Web3.to_checksum_address(contract), abi=_ROOT_AT_ABI)
        try:
            _, tree_size, _, _ = anchor.functions.latest().call()
        except BadFunctionCallOutput:
            return 0
        return int(tree_size)

    def anchor_tx(self, contract: str, tx_hash: str) -> AnchorTx | None:
        try:
            receipt: Any = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if receipt is None or receipt.get("blockNumber") is None:
            return None
        block = self.w3.eth.get_block(receipt["blockNumber"])
        anchored = []
        for entry in receipt["logs"]:
            topics = entry["topics"]
            if entry["address"].lower() != contract.lower() or not topics or bytes(topics[0]) != ANCHORED_TOPIC:
                continue
            size, root, _ = abi_decode(["uint64", "bytes32", "uint64"], bytes(entry["data"]))
            anchored.append((int(size), bytes(root)))
        return AnchorTx(
            succeeded=int(receipt["status"]) == 1,
            block_number=int(receipt["blockNumber"]),
            block_timestamp=int(block["timestamp"]),
            anchored=tuple(anchored),
        )
