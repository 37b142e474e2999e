"""Which chains the audit can ask: every configured JSON-RPC chain that answers, each known by
its instance (the hash of its genesis block), read with the verifier's chain reader."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from settings import ChainSettings
from verifier.chain import RpcChainReader
from verifier.errors import ChainUnavailableError

from .log import AnchorTarget, ChainLatest, ChainRoot


def configured(chains: Sequence[ChainSettings], *, warn: Callable[[str], None]) -> tuple[ChainRoot, ChainLatest]:
    """A :data:`ChainRoot` and a :data:`ChainLatest` over every chain of ``chains`` that answers.

    An unreachable chain is reported through ``warn`` and its anchors counted as unchecked. The
    embedded chain lives only as long as the process that anchored to it, so its anchors are
    never checkable from here. A chain that stops answering during the audit raises
    :class:`ChainUnavailableError`.
    """
    readers: dict[str, RpcChainReader] = {}
    for chain in chains:
        if chain.embedded:
            continue
        reader = RpcChainReader.at(chain.rpc_url, timeout=chain.rpc_timeout)
        try:
            instance = "genesis:" + reader.genesis_hash().hex()
        except ChainUnavailableError as exc:
            warn(f"chain {chain.name} ({chain.rpc_url}) unreachable, its anchors are not checked: {exc.reason}")
            continue
        readers[instance] = reader

    def chain_root(target: AnchorTarget, tree_size: int) -> bytes | None:
        reader = readers.get(target.instance)
        return None if reader is None else reader.root_at(target.contract, tree_size)

    def chain_latest(target: AnchorTarget) -> int | None:
        reader = readers.get(target.instance)
        return None if reader is None else reader.latest_size(target.contract)

    return chain_root, chain_latest
