"""The embedded development chain: an in-process EVM (eth-tester on py-evm).

It exists only as long as the process does; every start is a new chain (a new ``instance``),
on which the contract is deployed again and the database's checkpoints anchored again. It is
for development and demos: nothing anchored on it can be checked by anyone else.
"""

from __future__ import annotations

import threading
import uuid

from eth_tester import EthereumTester, PyEVMBackend
from pydantic import SecretStr
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from settings import EMBEDDED_CHAIN_ID as CHAIN_ID
from settings import EMBEDDED_LABEL as LABEL
from settings.runtime import bound_recursion

bound_recursion("eth")  # py-evm raised it on import: deeply nested data must raise, not crash

__all__ = ["CHAIN_ID", "LABEL", "EmbeddedChain", "chain"]


class EmbeddedChain:
    """One in-process chain; every block is mined as soon as a transaction arrives."""

    def __init__(self) -> None:
        self.tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self.instance = f"embedded:{uuid.uuid4().hex}"
        #: The contract deployed on this chain, once the anchoring service has deployed it.
        self.contract: str | None = None
        self.lock = threading.Lock()

    @property
    def key(self) -> SecretStr:
        """The pre-funded development account's key (a well-known test key, worthless elsewhere)."""
        return SecretStr(self.tester.backend.account_keys[0].to_hex())


_chain: EmbeddedChain | None = None
_chain_lock = threading.Lock()


def chain() -> EmbeddedChain:
    """This process's embedded chain, started on first use."""
    global _chain
    with _chain_lock:
        if _chain is None:
            _chain = EmbeddedChain()
        return _chain
