"""Errors of the pure core.

One root, :class:`LedgerError`. Caller mistakes (:class:`InvalidArgumentError`)
are kept apart from broken internal invariants (:class:`InvariantError`), and
failed verifications (:class:`VerificationError`) carry what was expected and
what was found.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error raised by :mod:`ledger`."""


class InvalidArgumentError(LedgerError, ValueError):
    """The caller passed a value the function cannot accept.

    ``field`` names the offending field (a dotted JSON path where it applies),
    ``reason`` says what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CanonicalizationError(InvalidArgumentError):
    """A JSON value cannot be serialised under RFC 8785 (NaN, an integer outside
    the IEEE 754 safe range, a lone surrogate, a non-string key...)."""


class FormatError(InvalidArgumentError):
    """A serialised document (checkpoint, bundle, vector file) is malformed or of
    an unknown format version."""


class InvariantError(LedgerError, AssertionError):
    """An internal invariant does not hold: a bug or corrupted storage, never a
    caller mistake."""


class VerificationError(LedgerError):
    """A proof, hash or chain link did not verify."""


class RootMismatchError(VerificationError):
    """A proof led to a root other than the expected one."""

    def __init__(self, what: str, *, expected: bytes, calculated: bytes) -> None:
        super().__init__(f"{what}: root mismatch: expected {expected.hex()}, calculated {calculated.hex()}")
        self.expected = expected
        self.calculated = calculated


class ProofShapeError(VerificationError):
    """A proof has the wrong number of elements or an element of the wrong size
    for the tree sizes and index it claims."""


class ConflictError(LedgerError):
    """The state the caller based its request on is no longer current (for example
    the tender's head moved on since the caller read it)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFoundError(LedgerError, LookupError):
    """The named object (tender, entry, tree size) does not exist."""
