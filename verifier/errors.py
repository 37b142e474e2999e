"""Errors of the verifier: one root, :class:`VerifierError`.

A bundle that fails verification is not an error: it is a :class:`~verifier.check.Report` with
failures. Errors are what keeps the verifier from giving a verdict at all: the input is not a
bundle (:class:`BundleError`), or the chain could not be asked (:class:`ChainUnavailableError`).
"""

from __future__ import annotations

from ledger.core.errors import FormatError, LedgerError


class VerifierError(LedgerError):
    """Root of every error the verifier raises."""


class BundleError(VerifierError, FormatError):
    """The input is not a bundle this verifier reads: not JSON, an unknown ``format``, a missing
    or malformed field. ``field`` names where (a JSON path), ``reason`` says what is wrong."""


class ChainUnavailableError(VerifierError):
    """The chain's JSON-RPC endpoint could not be asked: unreachable, timed out, or it answered
    something that is not a JSON-RPC answer. Nothing was concluded about the bundle."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"chain endpoint {endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
