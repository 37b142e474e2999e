"""A chain as the anchoring service sees it: a JSON-RPC node (or the in-process development
chain), the ProcurementAnchor contract on it, and the account that signs anchors.

Every transaction is signed here, locally, and sent raw (``eth_sendRawTransaction``), so its
bytes and hash are known, and stored, before the node ever sees it. Transport failures become
:class:`ChainUnavailableError` (after web3's own retries of read calls); a contract refusal
found by simulation becomes :class:`ContractRefusalError` naming the custom error.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_typing import URI
from eth_utils.crypto import keccak
from web3 import Web3
from web3._utils.http_session_manager import HTTPSessionManager
from web3.exceptions import ContractCustomError, ContractLogicError, ProviderConnectionError, TransactionNotFound
from web3.logs import DISCARD
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from ledger.core.jsonsafe import json_depth
from settings import ChainSettings

from .compile import CURRENT, VERSIONS, load_artifact
from .errors import ChainConfigError, ChainUnavailableError, ContractRefusalError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Gas added to the node's estimate: the estimate is exact for the state it ran on, and a block
#: or two later the same call can touch a cold slot more.
GAS_MARGIN_PERCENT = 20
GAS_MARGIN = 10_000


@dataclass(frozen=True)
class Fees:
    """Fee per gas in wei. ``priority_fee`` is None on a chain without EIP-1559 (legacy gas price)."""

    max_fee: int
    priority_fee: int | None

    def bumped(self, percent: int) -> Fees:
        """At least ``percent`` more in every field (nodes refuse a replacement below +10%)."""

        def up(value: int) -> int:
            return value + max(1, -(-value * percent // 100))

        return Fees(up(self.max_fee), None if self.priority_fee is None else up(self.priority_fee))

    def at_least(self, other: Fees) -> Fees:
        """Field-wise maximum (a replacement must never offer less than today's market)."""
        priority = (
            None
            if self.priority_fee is None or other.priority_fee is None
            else max(self.priority_fee, other.priority_fee)
        )
        return Fees(max(self.max_fee, other.max_fee), priority)


@dataclass(frozen=True)
class Signed:
    tx_hash: bytes
    raw: bytes
    nonce: int
    gas_limit: int
    fees: Fees


@dataclass(frozen=True)
class Receipt:
    tx_hash: bytes
    succeeded: bool
    block_number: int
    block_hash: bytes
    gas_used: int
    #: The contract's ``anchorId`` from the Anchored event, when the transaction anchored.
    anchor_id: int | None
    #: The address of the contract the transaction created, if it did.
    contract_address: str | None = None


@contextmanager
def _transport(chain: str) -> Iterator[None]:
    """Turn "the node did not answer" into :class:`ChainUnavailableError`."""
    try:
        yield
    except (requests.ConnectionError, requests.Timeout, ProviderConnectionError, ConnectionError, TimeoutError) as exc:
        raise ChainUnavailableError(
            f"chain {chain}: the JSON-RPC endpoint did not answer: {type(exc).__name__}"
        ) from exc
    except (requests.HTTPError, AnswerTooLargeError) as exc:
        raise ChainUnavailableError(f"chain {chain}: the JSON-RPC endpoint failed: {exc}") from exc


#: Largest JSON-RPC answer read from a node (the answers used here are a few kilobytes; a
#: receipt with many logs a few hundred), and the deepest nesting parsed.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_ANSWER_DEPTH = 32


class AnswerTooLargeError(requests.RequestException):
    """The node's answer exceeds :data:`MAX_ANSWER_BYTES` or :data:`MAX_ANSWER_DEPTH`."""


class BoundedSessionManager(HTTPSessionManager):
    """web3's HTTP session manager, reading at most :data:`MAX_ANSWER_BYTES` of an answer (streamed,
    so a hostile or broken node cannot make this process hold more) nested at most
    :data:`MAX_ANSWER_DEPTH` levels."""

    def make_post_request(self, endpoint_uri: URI, data: bytes | dict[str, Any], **kwargs: Any) -> bytes:
        kwargs["stream"] = True
        with self.get_response_from_post_request(endpoint_uri, data=data, **kwargs) as response:
            response.raise_for_status()
            body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        if len(body) > MAX_ANSWER_BYTES:
            raise AnswerTooLargeError(f"the node's answer is larger than {MAX_ANSWER_BYTES} bytes")
        if (depth := json_depth(body)) > MAX_ANSWER_DEPTH:
            raise AnswerTooLargeError(f"the node's answer nests {depth} levels, more than {MAX_ANSWER_DEPTH}")
        return bytes(body)


def http_web3(chain: ChainSettings) -> Web3:
    """A Web3 client for ``chain.rpc_url``; read calls are retried with exponential backoff, and
    answers are read within bounds (:class:`BoundedSessionManager`)."""
    retry = ExceptionRetryConfiguration(
        errors=(requests.ConnectionError, requests.HTTPError, requests.Timeout), retries=4, backoff_factor=0.25
    )
    provider = Web3.HTTPProvider(
        chain.rpc_url, request_kwargs={"timeout": chain.rpc_timeout}, exception_retry_configuration=retry
    )
    provider._request_session_manager = BoundedSessionManager()  # web3 offers no other way to bound answers
    return Web3(provider)


class ChainClient:
    """The contract at ``address`` on ``w3``'s chain, driven by ``account``."""

    def __init__(self, w3: Web3, *, name: str, account: LocalAccount, address: str | None = None) -> None:
        self.w3 = w3
        self.name = name
        self.account = account
        #: Every contract version this release drives, by interface version.
        self.artifacts = {version: load_artifact(version) for version in VERSIONS}
        #: What :func:`~anchoring.service.deploy` deploys: the current version.
        self.artifact = self.artifacts[CURRENT]
        self._errors = {
            keccak(text=f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")[:4]: e
            for artifact in self.artifacts.values()
            for e in artifact["abi"]
            if e["type"] == "error"
        }
        self._versions: dict[str, int | None] = {}
        self.address: str | None = Web3.to_checksum_address(address) if address else None

    def _call(self, fn: Callable[[], T]) -> T:
        with _transport(self.name):
            return fn()

    @property
    def contract(self) -> Any:
        if self.address is None:
            raise ValueError("no contract address")
        abi = self.artifacts[self.version() or CURRENT]["abi"]
        return self.w3.eth.contract(address=Web3.to_checksum_address(self.address), abi=abi)

    # --- Chain ---------------------------------------------------------------------------

    def chain_id(self) -> int:
        return self._call(lambda: int(self.w3.eth.chain_id))

    def genesis_hash(self) -> bytes:
        return self._call(lambda: bytes(self.w3.eth.get_block(0)["hash"]))

    def head(self) -> int:
        return self._call(lambda: int(self.w3.eth.block_number))

    def block(self, number: int) -> tuple[bytes, int] | None:
        """Hash and timestamp of the canonical block at ``number`` (None beyond the head)."""

        def get() -> tuple[bytes, int] | None:
            try:
                block = self.w3.eth.get_block(number)
            except Exception as exc:  # eth-tester raises its own BlockNotFound
                if "not found" in str(exc).lower() or type(exc).__name__ == "BlockNotFound":
                    return None
                raise
            return bytes(block["hash"]), int(block["timestamp"])

        return self._call(get)

    def code(self, address: str) -> bytes:
        return self._call(lambda: bytes(self.w3.eth.get_code(Web3.to_checksum_address(address))))

    def balance(self) -> int:
        return self._call(lambda: int(self.w3.eth.get_balance(self.account.address)))

    def nonce(self, block: str = "pending") -> int:
        return self._call(lambda: int(self.w3.eth.get_transaction_count(self.account.address, block)))  # type: ignore[arg-type]

    def fees(self) -> Fees:
        """Today's fees: twice the base fee plus the node's suggested tip (EIP-1559), or the gas price."""

        def get() -> Fees:
            base = self.w3.eth.get_block("latest").get("baseFeePerGas")
            if base is None:
                return Fees(int(self.w3.eth.gas_price), None)
            tip = int(self.w3.eth.max_priority_fee)
            return Fees(2 * int(base) + tip, tip)

        return self._call(get)

    # --- Contract ------------------------------------------------------------------------

    def version(self) -> int | None:
        """The interface version of the contract at :attr:`address`, told by its runtime code (1:
        ``ProcurementAnchor``, 2: ``ProcurementAnchorV2``); ``None`` if the code is neither."""
        assert self.address is not None
        if self.address not in self._versions:
            code = self.code(self.address)
            self._versions[self.address] = next(
                (
                    version
                    for version, artifact in self.artifacts.items()
                    if code == bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x"))
                ),
                None,
            )
        return self._versions[self.address]

    def runtime_matches(self) -> bool:
        """True if the code at :attr:`address` is one of this release's anchor contracts (any version)."""
        return self.version() is not None

    def latest(self) -> tuple[int, int, bytes, int]:
        """The contract's latest anchor: (anchorId, treeSize, rootHash, timestamp)."""
        anchor_id, size, root, ts = self._call(lambda: self.contract.functions.latest().call())
        return int(anchor_id), int(size), bytes(root), int(ts)

    def root_at(self, size: int) -> bytes:
        """The root anchored for ``size`` (32 zero bytes if none)."""
        answer = self._call(lambda: self.contract.functions.rootAt(size).call())
        # Version 1 answers (root, timestamp), version 2 the root alone (its time is its block's).
        return bytes(answer[0] if isinstance(answer, (list, tuple)) else answer)

    def is_anchorer(self, address: str) -> bool:
        return bool(self._call(lambda: self.contract.functions.isAnchorer(Web3.to_checksum_address(address)).call()))

    def anchor_calldata(self, size: int, root: bytes, proof: list[bytes]) -> bytes:
        return bytes.fromhex(self.contract.encode_abi("anchor", args=[size, root, proof]).removeprefix("0x"))

    def estimate(self, data: bytes, to: str | None) -> int:
        """Gas for the call (with a margin); raises :class:`ContractRefusalError` if it would revert."""
        tx: dict[str, Any] = {"from": self.account.address, "data": data}
        if to is not None:
            tx["to"] = to
        try:
            gas = self._call(lambda: int(self.w3.eth.estimate_gas(tx)))  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._refusal(_revert_data(exc.data), str(exc)) from exc
        except Exception as exc:
            text = str(exc).lower()
            if "insufficient funds" in text or "cannot afford" in text:  # some nodes simulate with the fee
                raise ChainConfigError(
                    f"chains[{self.name}].key", f"account {self.account.address} cannot pay for the transaction's gas"
                ) from exc
            if type(exc).__name__ != "TransactionFailed":  # eth-tester's revert
                raise
            raise self._refusal(_tester_revert_data(exc), str(exc)) from exc
        return gas + gas * GAS_MARGIN_PERCENT // 100 + GAS_MARGIN

    def _refusal(self, data: str | bytes | None, message: str) -> ContractRefusalError:
        raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
        if raw and raw[:4] in self._errors:
            spec = self._errors[raw[:4]]
            values = abi_decode([i["type"] for i in spec["inputs"]], raw[4:])
            return ContractRefusalError(
                spec["name"], dict(zip([i["name"] for i in spec["inputs"]], values, strict=True))
            )
        return ContractRefusalError("revert", {"message": message})

    def sign(self, *, data: bytes, to: str | None, nonce: int, gas: int, fees: Fees) -> Signed:
        tx: dict[str, Any] = {"data": data, "nonce": nonce, "gas": gas, "chainId": self.chain_id(), "value": 0}
        if to is not None:
            tx["to"] = to
        if fees.priority_fee is None:
            tx["gasPrice"] = fees.max_fee
        else:
            tx.update(type=2, maxFeePerGas=fees.max_fee, maxPriorityFeePerGas=fees.priority_fee)
        signed = self.account.sign_transaction(tx)
        return Signed(bytes(signed.hash), bytes(signed.raw_transaction), nonce, gas, fees)

    def broadcast(self, raw: bytes) -> str | None:
        """Send signed bytes. Returns None if the node took them, else the node's refusal text.

        A refusal is not an error here: the same bytes may be known already, or mined (after a
        crash or a reorg), and the caller finds out from receipts and nonces what happened.
        """
        try:
            self._call(lambda: self.w3.eth.send_raw_transaction(raw))
        except ChainUnavailableError:
            raise
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        return None

    def is_known(self, tx_hash: bytes) -> bool:
        """True if the node has the transaction (in its pool or mined)."""

        def get() -> bool:
            try:
                return self.w3.eth.get_transaction(tx_hash) is not None  # type: ignore[arg-type]
            except TransactionNotFound:
                return False

        return self._call(get)

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        """The transaction's receipt in the canonical chain, or None."""

        def get() -> Any:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None

        found = self._call(get)
        if found is None or found.get("blockNumber") is None:
            return None
        anchor_id = None
        if self.address is not None:
            for event in self.contract.events.Anchored().process_receipt(found, errors=DISCARD):
                anchor_id = int(event["args"]["anchorId"])
        return Receipt(
            tx_hash=tx_hash,
            succeeded=int(found["status"]) == 1,
            block_number=int(found["blockNumber"]),
            block_hash=bytes(found["blockHash"]),
            gas_used=int(found["gasUsed"]),
            anchor_id=anchor_id,
            contract_address=found.get("contractAddress"),
        )


def _revert_data(data: Any) -> str | None:
    """The revert data web3 found: a hex string, or (from some nodes) inside {"message", "data"}."""
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, str) else None


def _tester_revert_data(exc: Exception) -> bytes | None:
    """eth-tester reports a revert as the text "execution reverted: <bytes literal>"."""
    message = str(exc.args[0]) if exc.args else ""
    prefix = "execution reverted: "
    if not message.startswith(prefix):
        return None
    try:
        data = ast.literal_eval(message[len(prefix) :])
    except (ValueError, SyntaxError):
        return None
    return data if isinstance(data, bytes) else None
