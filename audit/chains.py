"""Which chains the audit can ask: every configured JSON-RPC chain that answers, each known by
its instance (the hash of its genesis block), read with the verifier's chain reader."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from settings import ChainSettings
from verifier.chain import ANCHORED_TOPIC, RpcChainReader, Transport, http_transport
from verifier.errors import ChainUnavailableError

from .log import AnchorTarget, ChainAnchors, ChainLatest, ChainRoot

#: Blocks asked per ``eth_getLogs`` call (nodes limit the range; each answer is size-bounded).
LOG_RANGE = 50_000


def anchored(
    transport: Transport, contract: str, *, name: str, block_range: int = LOG_RANGE
) -> list[tuple[int, bytes]]:
    """Every (tree size, root) ``contract`` has anchored in the canonical chain, from its
    ``Anchored`` events, asked ``block_range`` blocks at a time. Raises
    :class:`ChainUnavailableError` when an answer cannot be read."""
    head = _quantity(transport("eth_blockNumber", []), name, "eth_blockNumber")
    out: list[tuple[int, bytes]] = []
    for start in range(0, head + 1, block_range):
        logs = transport(
            "eth_getLogs",
            [
                {
                    "address": contract.lower(),
                    "topics": ["0x" + ANCHORED_TOPIC.hex()],
                    "fromBlock": hex(start),
                    "toBlock": hex(min(head, start + block_range - 1)),
                }
            ],
        )
        if not isinstance(logs, list):
            raise ChainUnavailableError(name, "eth_getLogs: the answer is not a list")
        for entry in logs:
            data = entry.get("data") if isinstance(entry, dict) else None
            if isinstance(entry, dict) and entry.get("removed"):
                continue
            try:
                size, root, _ = abi_decode(["uint64", "bytes32", "uint64"], bytes.fromhex(str(data)[2:]))
            except (DecodingError, ValueError, OverflowError) as exc:
                raise ChainUnavailableError(name, f"eth_getLogs: an Anchored event does not decode: {exc}") from exc
            out.append((int(size), bytes(root)))
    return out


def _quantity(value: Any, name: str, method: str) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainUnavailableError(name, f"{method}: expected a hex quantity, got {str(value)[:80]!r}")
    return int(value, 16)


def configured(
    chains: Sequence[ChainSettings], *, warn: Callable[[str], None]
) -> tuple[ChainRoot, ChainLatest, ChainAnchors]:
    """A :data:`ChainRoot`, a :data:`ChainLatest` and a :data:`ChainAnchors` over every chain of
    ``chains`` that answers.

    An unreachable chain is reported through ``warn`` and its anchors counted as unchecked. The
    embedded chain lives only as long as the process that anchored to it, so its anchors are
    never checkable from here. A chain that stops answering during the audit raises
    :class:`ChainUnavailableError`.
    """
    readers: dict[str, RpcChainReader] = {}
    transports: dict[str, tuple[Transport, str]] = {}
    for chain in chains:
        if chain.embedded:
            continue
        transport = http_transport(chain.rpc_url, timeout=chain.rpc_timeout)
        reader = RpcChainReader(transport, name=chain.rpc_url)
        try:
            instance = "genesis:" + reader.genesis_hash().hex()
        except ChainUnavailableError as exc:
            warn(f"chain {chain.name} ({chain.rpc_url}) unreachable, its anchors are not checked: {exc.reason}")
            continue
        readers[instance] = reader
        transports[instance] = (transport, chain.rpc_url)

    def chain_root(target: AnchorTarget, tree_size: int) -> bytes | None:
        reader = readers.get(target.instance)
        return None if reader is None else reader.root_at(target.contract, tree_size)

    def chain_latest(target: AnchorTarget) -> int | None:
        reader = readers.get(target.instance)
        return None if reader is None else reader.latest_size(target.contract)

    def chain_anchors(target: AnchorTarget) -> list[tuple[int, bytes]] | None:
        found = transports.get(target.instance)
        return None if found is None else anchored(found[0], target.contract, name=found[1])

    return chain_root, chain_latest, chain_anchors
