"""Reading a bundle document: JSON bytes in, a parsed :class:`~ledger.core.bundle.Bundle` out, or
a :class:`~verifier.errors.BundleError` that names where the document is wrong."""

from __future__ import annotations

from typing import Any

from ledger.core import jsonsafe
from ledger.core.bundle import Bundle
from ledger.core.bundle import load_bundle as _load
from ledger.core.errors import FormatError

from .errors import BundleError

#: The deepest nesting a bundle needs is an event's payload (OCDS objects: a dozen levels); far
#: more is an attack on the parser, refused before parsing.
MAX_DEPTH = 64
#: A bundle of a very long history is tens of megabytes; beyond this, refused before parsing.
MAX_BYTES = 256 * 1024 * 1024


def load_bundle(document: Any) -> Bundle:
    """Parse a bundle document (decoded JSON). Raises :class:`BundleError` naming the bad field."""
    try:
        return _load(document)
    except FormatError as exc:
        raise BundleError(exc.field, exc.reason) from exc


def read_bundle(data: bytes | str) -> Bundle:
    """Parse a bundle from its JSON text. Raises :class:`BundleError` if it is not JSON or not a bundle."""
    try:
        document = jsonsafe.loads(data, field="bundle", max_depth=MAX_DEPTH, max_bytes=MAX_BYTES)
    except FormatError as exc:
        raise BundleError(exc.field, exc.reason) from exc
    return load_bundle(document)
