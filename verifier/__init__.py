"""The auditor's verifier: checks a Tenderproof proof bundle with nothing but the bundle and,
optionally, a JSON-RPC endpoint of the chain its anchors are on.

It depends on the pure core (:mod:`ledger.core`) and its own small JSON-RPC reader, nothing else
of Tenderproof: no database, no server. It installs on its own (``pip install ./verifier`` from
the repository; see ``docs/verifying.md``) and its command, ``tenderproof-verify``, is the same
command as ``tenderproof verify``.

    >>> import verifier
    >>> bundle = verifier.read_bundle(open("bundle.json", "rb").read())
    >>> report = verifier.verify_bundle(bundle, chain=verifier.RpcChainReader.at("https://rpc.example"))
    >>> report.valid, [str(f) for f in report.failures]

Every error it raises is a :class:`VerifierError`: :class:`BundleError` (the input is not a
bundle) or :class:`ChainUnavailableError` (the chain could not be asked). A bundle that does not
verify is not an error: its :class:`Report` lists the failures.

Names are loaded when first used, so that importing the package (or running its command's
``--help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BundleError, ChainUnavailableError, VerifierError

if TYPE_CHECKING:
    from .bundle import load_bundle, read_bundle
    from .chain import AnchorTx, ChainReader, RpcChainReader, Transport, http_transport
    from .check import EventReport, Failure, Report, SignatureCheck, verify_bundle

__all__ = [
    "AnchorTx",
    "BundleError",
    "ChainReader",
    "ChainUnavailableError",
    "EventReport",
    "Failure",
    "Report",
    "RpcChainReader",
    "SignatureCheck",
    "Transport",
    "VerifierError",
    "http_transport",
    "load_bundle",
    "read_bundle",
    "verify_bundle",
]

_WHERE = {
    "load_bundle": "bundle",
    "read_bundle": "bundle",
    "AnchorTx": "chain",
    "ChainReader": "chain",
    "RpcChainReader": "chain",
    "Transport": "chain",
    "http_transport": "chain",
    "EventReport": "check",
    "Failure": "check",
    "Report": "check",
    "SignatureCheck": "check",
    "verify_bundle": "check",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'verifier' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
