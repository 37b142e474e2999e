"""Chains named in words, with their block explorers: a small table keyed by chain id, which a
deployment extends or overrides (``TENDERPROOF_KNOWN_CHAINS``)."""

from __future__ import annotations

from dataclasses import dataclass

from settings import EMBEDDED_CHAIN_ID, KnownChain, Settings

#: How a development chain is named (translated on the pages).
LOCAL = "local development chain"
#: chain id -> (name, block explorer). Public chains an anchor contract is likely deployed on.
KNOWN: dict[int, tuple[str, str | None]] = {
    1: ("Ethereum", "https://etherscan.io"),
    11155111: ("Ethereum Sepolia", "https://sepolia.etherscan.io"),
    17000: ("Ethereum Holesky", "https://holesky.etherscan.io"),
    137: ("Polygon", "https://polygonscan.com"),
    80002: ("Polygon Amoy", "https://amoy.polygonscan.com"),
    10: ("OP Mainnet", "https://optimistic.etherscan.io"),
    8453: ("Base", "https://basescan.org"),
    84532: ("Base Sepolia", "https://sepolia.basescan.org"),
    42161: ("Arbitrum One", "https://arbiscan.io"),
    100: ("Gnosis", "https://gnosisscan.io"),
    31337: (LOCAL, None),
    1337: (LOCAL, None),
    EMBEDDED_CHAIN_ID: (LOCAL, None),
}


@dataclass(frozen=True, slots=True)
class ChainName:
    #: The chain in words ("Ethereum Sepolia"), or None when its id is not known.
    name: str | None
    chain_id: int | None
    #: Its block explorer's base URL (links <url>/block/<n>, <url>/tx/<hash>), or None.
    explorer: str | None


def describe(settings: Settings, chain_id: int | None, *, embedded: bool = False) -> ChainName:
    """The chain ``chain_id`` in words: the deployment's table first, then :data:`KNOWN`; the
    configured block explorer (``TENDERPROOF_BLOCK_EXPLORER_URL``) wins over the table's."""
    known: KnownChain | None = settings.known_chains.get(chain_id) if chain_id is not None else None
    name, explorer = (known.name, known.explorer) if known else KNOWN.get(chain_id or -1, (None, None))
    if embedded:
        name, explorer = LOCAL, None
    return ChainName(name=name, chain_id=chain_id, explorer=settings.block_explorer_url or explorer)
