"""Read-only JSON-RPC answers of the embedded development chain.

The embedded chain (:mod:`anchoring.embedded`, an in-process EVM) has no JSON-RPC endpoint of its
own. :func:`answer` gives the few read methods a verifier needs (``eth_chainId``,
``eth_blockNumber``, ``eth_call``, ``eth_getBlockByNumber``, ``eth_getTransactionReceipt``), in
JSON-RPC's own encoding; everything else is refused. The explorer serves it at ``POST /rpc``
(:mod:`explorer.rpc`) and :func:`transport` hands it to a :class:`verifier.chain.RpcChainReader`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from eth_utils.address import to_checksum_address
from web3 import Web3

from verifier.chain import Transport
from verifier.errors import ChainUnavailableError

from . import embedded
from .embedded import EmbeddedChain

_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_DATA = re.compile(r"^0x([0-9a-fA-F]{2}){0,4096}$")
_QUANTITY = re.compile(r"^0x[0-9a-f]{1,16}$")


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _hex(value: int) -> str:
    return hex(value)


BlockId = int | Literal["latest", "earliest", "pending"]


def _block_id(value: Any) -> BlockId:
    if value in ("latest", "safe", "finalized"):
        return "latest"
    if value in ("earliest", "pending"):
        return "earliest" if value == "earliest" else "pending"
    if isinstance(value, str) and _QUANTITY.match(value):
        return int(value, 16)
    raise RpcError(-32602, f"invalid block: {value!r} (a 0x quantity or a tag)")


def _params(params: Any, count: int, method: str) -> list[Any]:
    if params is None:
        params = []
    if not isinstance(params, list) or len(params) > count:
        raise RpcError(-32602, f"{method}: params must be a list of at most {count}")
    return params + [None] * (count - len(params))


def _call(w3: Web3, params: Any) -> str:
    call, block = _params(params, 2, "eth_call")
    if not isinstance(call, dict) or set(call) - {"to", "data", "input", "from"}:
        raise RpcError(-32602, "eth_call: the call object takes to, data (or input) and from only")
    to, data = call.get("to"), call.get("data", call.get("input", "0x"))
    if not isinstance(to, str) or not _ADDRESS.match(to) or not isinstance(data, str) or not _DATA.match(data):
        raise RpcError(-32602, "eth_call: to must be an address and data 0x-prefixed hex of at most 4096 bytes")
    result = w3.eth.call({"to": to_checksum_address(to), "data": data}, _block_id(block or "latest"))  # type: ignore[typeddict-item,unused-ignore]
    return "0x" + bytes(result).hex()


def _block(w3: Web3, params: Any) -> dict[str, Any] | None:
    number, _full = _params(params, 2, "eth_getBlockByNumber")
    block_id = _block_id(number)
    if isinstance(block_id, int) and block_id > w3.eth.block_number:
        return None
    block = w3.eth.get_block(block_id)
    return {
        "number": _hex(block["number"]),
        "hash": "0x" + bytes(block["hash"]).hex(),
        "parentHash": "0x" + bytes(block["parentHash"]).hex(),
        "timestamp": _hex(block["timestamp"]),
        "transactions": ["0x" + bytes(tx).hex() for tx in block["transactions"]],  # type: ignore[arg-type]
    }


def _receipt(w3: Web3, params: Any) -> dict[str, Any] | None:
    (tx_hash,) = _params(params, 1, "eth_getTransactionReceipt")
    if not isinstance(tx_hash, str) or not _HASH.match(tx_hash):
        raise RpcError(-32602, "eth_getTransactionReceipt: a transaction hash is 0x + 64 hex digits")
    try:
        receipt = w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    except Exception:  # eth-tester raises TransactionNotFound (or its own) for an unknown hash
        return None
    return {
        "transactionHash": "0x" + bytes(receipt["transactionHash"]).hex(),
        "blockNumber": _hex(receipt["blockNumber"]),
        "status": _hex(receipt["status"]),
        "logs": [
            {
                "address": entry["address"],
                "topics": ["0x" + bytes(t).hex() for t in entry["topics"]],
                "data": "0x" + bytes(entry["data"]).hex(),
            }
            for entry in receipt["logs"]
        ],
    }


METHODS: dict[str, Callable[[Web3, Any], Any]] = {
    "eth_chainId": lambda w3, _p: _hex(w3.eth.chain_id),
    "eth_blockNumber": lambda w3, _p: _hex(w3.eth.block_number),
    "eth_call": _call,
    "eth_getBlockByNumber": _block,
    "eth_getTransactionReceipt": _receipt,
}


def answer(chain: EmbeddedChain | None, method: str, params: Any) -> Any:
    """The ``result`` of JSON-RPC call ``method(params)`` on ``chain`` (default: this process's
    embedded chain). Raises :class:`RpcError` (with its JSON-RPC code) for a method not served,
    bad params, or a call the EVM refused."""
    served = METHODS.get(method)
    if served is None:
        raise RpcError(-32601, f"method {method!r} is not served (read-only: {', '.join(METHODS)})")
    dev = chain or embedded.chain()
    try:
        with dev.lock:
            return served(dev.w3, params)
    except RpcError:
        raise
    except Exception as exc:  # the EVM refused the call (revert, bad block): say so, as a node would
        raise RpcError(-32000, f"{type(exc).__name__}: {exc}") from exc


def transport(chain: EmbeddedChain) -> Transport:
    """A verifier's :data:`~verifier.chain.Transport` to ``chain``."""

    def call(method: str, params: list[Any]) -> Any:
        try:
            return answer(chain, method, params)
        except RpcError as exc:
            raise ChainUnavailableError(chain.instance, f"{method}: {exc.message}") from exc

    return call
