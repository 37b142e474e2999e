"""A thin, read-only view of the anchor contract for verifiers: the chain id, ``rootAt``,
``latest``, and an anchoring transaction's receipt and block. No keys, no database, nothing sent.

It speaks JSON-RPC through a :data:`Transport` (a function of a method name and its params that
returns the answer's ``result``): :func:`http_transport` for a node's HTTP endpoint, with a
timeout on every call, or any other (an in-process chain in tests). Only four read methods are
used: ``eth_chainId``, ``eth_call``, ``eth_getTransactionReceipt``, ``eth_getBlockByNumber``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from .errors import ChainUnavailableError

#: topic0 of ``Anchored(uint256 indexed anchorId, uint64 treeSize, bytes32 rootHash, uint64 timestamp)``.
ANCHORED_TOPIC = keccak(text="Anchored(uint256,uint64,bytes32,uint64)")
_ROOT_AT = keccak(text="rootAt(uint64)")[:4]
_LATEST = keccak(text="latest()")[:4]
#: Seconds before a JSON-RPC call is abandoned (the endpoint then counts as unavailable).
DEFAULT_TIMEOUT = 10.0
#: Largest JSON-RPC answer read: the answers used here are a few kilobytes.
MAX_ANSWER_BYTES = 4 * 1024 * 1024

#: ``transport(method, params)`` returns the JSON-RPC answer's ``result`` (``None`` included);
#: it raises :class:`ChainUnavailableError` when the endpoint cannot be asked or answers an error.
Transport = Callable[[str, list[Any]], Any]


def http_transport(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> Transport:
    """JSON-RPC 2.0 over HTTP(S) POST to ``url``, one request per call, ``timeout`` seconds each."""

    def call(method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise ChainUnavailableError(url, f"{method}: HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:  # refused, timed out, DNS, TLS, a malformed URL
            raise ChainUnavailableError(url, f"{method}: {exc}") from exc
        if len(raw) > MAX_ANSWER_BYTES:
            raise ChainUnavailableError(url, f"{method}: answer larger than {MAX_ANSWER_BYTES} bytes")
        return _result(url, method, raw)

    return call


def _result(endpoint: str, method: str, raw: bytes) -> Any:
    try:
        answer = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ChainUnavailableError(endpoint, f"{method}: the answer is not JSON") from exc
    if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
        raise ChainUnavailableError(endpoint, f"{method}: the answer is not a JSON-RPC answer")
    if "error" in answer:
        error = answer["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ChainUnavailableError(endpoint, f"{method}: the node answered an error: {str(message)[:200]}")
    return answer["result"]


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

    def latest_size(self, contract: str) -> int: ...


class RpcChainReader:
    """:class:`ChainReader` over a JSON-RPC :data:`Transport`.

    Every method raises :class:`ChainUnavailableError` when the endpoint cannot be asked or its
    answer cannot be read (``name`` says which endpoint in the message).
    """

    def __init__(self, transport: Transport, *, name: str = "JSON-RPC") -> None:
        self._call = transport
        self.name = name

    @classmethod
    def at(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> RpcChainReader:
        """The reader of the node at ``url`` (``http://`` or ``https://``)."""
        return cls(http_transport(url, timeout=timeout), name=url)

    def _bad(self, method: str, what: str) -> ChainUnavailableError:
        return ChainUnavailableError(self.name, f"{method}: {what}")

    def _quantity(self, value: Any, method: str) -> int:
        if not isinstance(value, str) or not value.startswith("0x") or not 2 < len(value) <= 66:
            raise self._bad(method, f"expected a hex quantity, got {str(value)[:80]!r}")
        try:
            return int(value, 16)
        except ValueError:
            raise self._bad(method, f"expected a hex quantity, got {value[:80]!r}") from None

    def _data(self, value: Any, method: str) -> bytes:
        if not isinstance(value, str) or not value.startswith("0x"):
            raise self._bad(method, f"expected 0x-prefixed hex data, got {str(value)[:80]!r}")
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise self._bad(method, f"expected 0x-prefixed hex data, got {value[:80]!r}") from None

    def _eth_call(self, contract: str, data: bytes, types: list[str]) -> tuple[Any, ...] | None:
        """The decoded return values of a view call, ``None`` if there is no contract at ``contract``."""
        out = self._data(
            self._call("eth_call", [{"to": contract.lower(), "data": "0x" + data.hex()}, "latest"]), "eth_call"
        )
        if not out:
            return None
        try:
            # Static types only: words beyond them (version 1's rootAt timestamp) are not read.
            return tuple(abi_decode(types, out[: 32 * len(types)]))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise self._bad("eth_call", f"the answer does not decode as ({', '.join(types)}): {exc}") from exc

    def chain_id(self) -> int:
        return self._quantity(self._call("eth_chainId", []), "eth_chainId")

    def genesis_hash(self) -> bytes:
        """The hash of block 0: what tells one chain instance from another with the same id."""
        block = self._call("eth_getBlockByNumber", ["0x0", False])
        if not isinstance(block, dict):
            raise self._bad("eth_getBlockByNumber", "no genesis block")
        return self._data(block.get("hash"), "eth_getBlockByNumber")

    def root_at(self, contract: str, tree_size: int) -> bytes:
        """The root the contract holds for ``tree_size``; 32 zero bytes if none (or no contract there).

        Only the answer's first word is read: version 1 of the contract answers (root, timestamp),
        version 2 the root alone. Either way an anchor's time is its transaction's block's
        (:meth:`anchor_tx`), never the contract's word."""
        got = self._eth_call(contract, _ROOT_AT + abi_encode(["uint64"], [tree_size]), ["bytes32"])
        return bytes(32) if got is None else bytes(got[0])

    def latest_size(self, contract: str) -> int:
        """The largest tree size the contract has anchored (0 if none, or no contract there)."""
        got = self._eth_call(contract, _LATEST, ["uint256", "uint64", "bytes32", "uint64"])
        return 0 if got is None else int(got[1])

    def anchor_tx(self, contract: str, tx_hash: str) -> AnchorTx | None:
        """What the chain says of transaction ``tx_hash``; ``None`` if it is not (or no longer) mined."""
        method = "eth_getTransactionReceipt"
        receipt = self._call(method, [tx_hash])
        if receipt is None:
            return None
        if not isinstance(receipt, dict):
            raise self._bad(method, "the receipt is not a JSON object")
        if receipt.get("blockNumber") is None:
            return None
        number = self._quantity(receipt["blockNumber"], method)
        block = self._call("eth_getBlockByNumber", [hex(number), False])
        if not isinstance(block, dict):
            return None  # reorganised away between the two calls
        logs = receipt.get("logs")
        if not isinstance(logs, list):
            raise self._bad(method, "the receipt has no list of logs")
        anchored = []
        for entry in logs:
            if not isinstance(entry, dict) or not isinstance(entry.get("topics"), list):
                raise self._bad(method, "a log entry is not an object with topics")
            topics = entry["topics"]
            address = entry.get("address")
            if not isinstance(address, str) or address.lower() != contract.lower() or not topics:
                continue
            if self._data(topics[0], method) != ANCHORED_TOPIC:
                continue
            try:
                size, root, _ = abi_decode(["uint64", "bytes32", "uint64"], self._data(entry.get("data"), method))
            except (DecodingError, ValueError, OverflowError) as exc:
                raise self._bad(method, f"an Anchored event does not decode: {exc}") from exc
            anchored.append((int(size), bytes(root)))
        return AnchorTx(
            succeeded=self._quantity(receipt.get("status"), method) == 1,
            block_number=number,
            block_timestamp=self._quantity(block.get("timestamp"), "eth_getBlockByNumber"),
            anchored=tuple(anchored),
        )
