"""One anchoring round on the in-process EVM, as the anchoring service runs it, for end-to-end
tests of imported data: the pending entries are integrated with a heads commitment
(``commit_heads``, as the service's tick does), so the tenders' version 2 bundles prove their
histories complete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from anchoring import rpc as embedded_rpc
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from ledger.log import Log
from settings import ChainSettings
from tests.conftest import T0
from verifier.chain import RpcChainReader

CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)


@contextmanager
def anchored_once(log: Log) -> Iterator[RpcChainReader]:
    """Anchor everything recorded in ``log`` once (final) on a fresh embedded chain; yield a
    reader of that chain for verifying bundles."""
    log.integrate_all(now=T0, commit_heads=True)  # as the anchoring service's tick: ends with a heads commitment
    dev = EmbeddedChain()
    anchorer = ChainAnchorer(log, CHAIN, dev=dev, holder="tests", clock=lambda: T0)
    try:
        result = anchorer.run_round(force=True)
        while not result.settled:
            result = anchorer.run_round()
        assert result.anchor is not None and result.anchor.status == "final"
        yield RpcChainReader(embedded_rpc.transport(dev))
    finally:
        anchorer.release()
