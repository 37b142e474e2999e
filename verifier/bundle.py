"""Reading a bundle document: JSON bytes in, a parsed :class:`~ledger.core.bundle.Bundle` out, or
a :class:`~verifier.errors.BundleError` that names where the document is wrong."""

from __future__ import annotations

import json
from typing import Any

from ledger.core.bundle import Bundle
from ledger.core.bundle import load_bundle as _load
from ledger.core.errors import FormatError

from .errors import BundleError


def load_bundle(document: Any) -> Bundle:
    """Parse a bundle document (decoded JSON). Raises :class:`BundleError` naming the bad field."""
    try:
        return _load(document)
    except FormatError as exc:
        raise BundleError(exc.field, exc.reason) from exc


def read_bundle(data: bytes | str) -> Bundle:
    """Parse a bundle from its JSON text. Raises :class:`BundleError` if it is not JSON or not a bundle."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BundleError("bundle", f"is not JSON: {exc}") from exc
    return load_bundle(document)
