"""A read-only JSON-RPC endpoint (``POST /rpc``) for the embedded development chain only.

The embedded chain (:mod:`anchoring.embedded`, an in-process EVM) has no HTTP endpoint of its own,
so visitors' browsers could not check anchors against it. This exposes the few read methods the
in-browser verifier needs; everything else is a JSON-RPC error. A real deployment anchors to a
real chain and points browsers at a public RPC endpoint of that chain instead
(``TENDERPROOF_PUBLIC_RPC_URL``); then this route answers 404.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from eth_utils.address import to_checksum_address
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from web3 import Web3

from anchoring import embedded
from anchoring.embedded import EmbeddedChain

#: Largest request body: one call of the methods below is a few hundred bytes.
MAX_BODY = 16_384
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


def _error(request_id: Any, code: int, message: str, status: int = 200) -> Response:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


async def handle(request: Request, chain: EmbeddedChain | None) -> Response:
    """Answer one JSON-RPC request on ``chain`` (default: this process's embedded chain)."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(None, -32600, f"request larger than {MAX_BODY} bytes", status=413)
    try:
        message = json.loads(body)
    except ValueError:
        return _error(None, -32700, "parse error: the body is not JSON", status=400)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or not isinstance(message.get("method"), str):
        return _error(None, -32600, "invalid request: one JSON-RPC 2.0 object (batches are not served)", status=400)
    request_id = message.get("id")
    method = METHODS.get(message["method"])
    if method is None:
        return _error(
            request_id, -32601, f"method {message['method']!r} is not served (read-only: {', '.join(METHODS)})"
        )
    dev = chain or embedded.chain()
    try:
        with dev.lock:
            result = method(dev.w3, message.get("params"))
    except RpcError as exc:
        return _error(request_id, exc.code, exc.message)
    except Exception as exc:  # the EVM refused the call (revert, bad block): say so, as a node would
        return _error(request_id, -32000, f"{type(exc).__name__}: {exc}")
    return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result})
