"""Errors of the anchoring service, under the ledger's one root :class:`LedgerError`.

:class:`ChainConfigError` (a chain's settings cannot work) is the settings' own error, re-exported here.
"""

from __future__ import annotations

from typing import Any

from ledger.core.errors import ConflictError, LedgerError
from settings import ChainConfigError

__all__ = [
    "AnchoringError",
    "ChainConfigError",
    "ChainUnavailableError",
    "ContractRefusalError",
    "LeaseHeldError",
    "LogMismatchError",
    "about_chain",
]


def about_chain(name: str, said: str) -> str:
    """``said`` as a line about chain ``name``: prefixed with ``chain <name>:`` unless the
    message already names the chain that way (the chain client's errors do)."""
    return said if said.startswith(f"chain {name}:") else f"chain {name}: {said}"


class AnchoringError(LedgerError):
    """Root of the anchoring service's errors."""


class ChainUnavailableError(AnchoringError):
    """The chain's JSON-RPC endpoint did not answer (after retries). Nothing is lost: the round
    is retried later from the state stored in the database."""


class ContractRefusalError(AnchoringError):
    """The contract refused a call with one of its custom errors (found when the call is
    simulated, before the transaction is sent)."""

    def __init__(self, error: str, args: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={v.hex() if isinstance(v, bytes) else v}" for k, v in args.items())
        super().__init__(f"the contract refused: {error}({shown})")
        self.error = error
        self.arguments = args


class LogMismatchError(AnchoringError):
    """The contract holds a checkpoint this log does not have: the contract belongs to
    another log, or this log's history differs from what was anchored. Nothing is sent."""


class LeaseHeldError(ConflictError, AnchoringError):
    """Another anchoring process holds the chain's lease."""

    def __init__(self, name: str, holder: str, expires: str) -> None:
        super().__init__("lease", f"{name} is held by {holder} until {expires}")
        self.holder = holder
