"""What an operator asks of the anchoring service by hand (``tenderproof deploy`` and
``tenderproof anchor``): deploy the contract on a chain and record it as that chain's target, and
anchor the checkpoint now, waiting until it is final."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import OperationalError

from ledger.core.errors import LedgerError
from ledger.log import Log
from settings import ChainSettings

from . import embedded, store
from .errors import AnchoringError, ChainConfigError
from .service import ChainAnchorer, Credentials, Policy, connect, deploy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployed:
    chain: str
    chain_id: int
    contract: str
    tx_hash: bytes

    def to_json(self) -> dict[str, object]:
        return {
            "chain": self.chain,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "tx_hash": "0x" + self.tx_hash.hex(),
        }


def deploy_and_record(
    log: Log, chain: ChainSettings, *, credentials: Credentials, admin: str | None, now: datetime
) -> Deployed:
    """Deploy the current anchor contract (ProcurementAnchorV2) on ``chain`` (a JSON-RPC chain) with ``admin`` (default: the
    deploying account, also made an anchorer) and record it as the chain's contract.

    Raises :class:`ChainConfigError` for the embedded chain (deployed automatically) or when the
    node is on another chain than the configured ``chain_id``; nothing is sent then.
    """
    if chain.embedded:
        raise ChainConfigError("--chain", f"{chain.name} is the {embedded.LABEL}: it is deployed automatically")
    client = connect(chain, credentials)
    chain_id = client.chain_id()
    if chain.chain_id is not None and chain.chain_id != chain_id:
        raise ChainConfigError(
            f"chains[{chain.name}].chain_id", f"is {chain.chain_id}, but the node is on chain {chain_id}"
        )
    address, tx_hash = deploy(client, admin=admin)
    instance = "genesis:" + client.genesis_hash().hex()
    before = store.recorded_contract(log.engine, chain=chain.name, chain_id=chain_id, instance=instance)
    store.target(log.engine, chain=chain.name, chain_id=chain_id, instance=instance, contract=address, now=now)
    logger.warning(
        "chain %s: deployed ProcurementAnchor at %s, now the chain's contract%s",
        chain.name, address, f" (was {before})" if before else "",
    )  # fmt: skip
    return Deployed(chain=chain.name, chain_id=chain_id, contract=address, tx_hash=tx_hash)


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchored:
    """One chain's outcome of :func:`anchor_now`: what the last round did, and its anchor (with the
    target it is on), or the error that stopped that chain."""

    chain: ChainSettings
    action: str = ""
    anchor: store.Listed | None = None
    error: LedgerError | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"chain": self.chain.name} if self.anchor is None else self.anchor.to_json()
        return {**out, "action": self.action}


def anchor_now(
    log: Log,
    chains: list[ChainSettings],
    *,
    credentials: Credentials,
    policy: Policy,
    timeout: float,
    warn: Callable[[str], None],
) -> Iterator[Anchored]:
    """One anchoring round on each of ``chains`` now, then rounds until its anchor is final or
    ``timeout`` seconds have passed; yields each chain's outcome as it is known. A failing chain
    does not stop the others (its outcome carries the error). The lease is given back at once
    (``warn`` is told when it cannot be)."""
    for chain in chains:
        anchorer = ChainAnchorer(log, chain, credentials=credentials, policy=policy)
        try:
            result = anchorer.run_round(force=True)
            deadline = time.monotonic() + timeout
            while not result.settled and time.monotonic() < deadline:
                time.sleep(0.05 if chain.embedded else 1.0)
                result = anchorer.run_round()
            target = anchorer.target(anchorer.clock())
        except LedgerError as exc:
            yield Anchored(chain=chain, error=exc)
            continue
        finally:
            try:
                anchorer.release()
            except OperationalError as exc:
                warn(f"could not release the lease of chain {chain.name}: {exc.orig}")
        listed = None if result.anchor is None else store.Listed(target, result.anchor)
        yield Anchored(chain=chain, action=result.action, anchor=listed)


def switch_contract(
    log: Log, chain: ChainSettings, contract: str, *, credentials: Credentials, policy: Policy, now: datetime
) -> store.Target:
    """Make ``contract`` the one ``chain`` anchors to (and bundles cite), explicitly: under the
    chain's lease, after the same checks as anchoring (code, anchorer role, the contract's
    latest checkpoint is this log's), and only while nothing is in flight on the current one.
    Logged at WARNING. Nothing is recorded if a check fails."""
    configured = ChainSettings.model_validate({**chain.model_dump(), "contract": contract})
    anchorer = ChainAnchorer(log, configured, credentials=credentials, policy=policy, switching=True)
    store.acquire(log.engine, anchorer.lease, anchorer.holder, now=now, ttl=policy.lease_ttl)
    try:
        return anchorer.target(now)
    finally:
        anchorer.release()


def status(log: Log, chain: ChainSettings, *, credentials: Credentials | None = None) -> dict[str, object]:
    """What the anchoring of ``chain`` is doing and why it waits, from the database alone (no
    node is asked): its anchors in flight in nonce order, each with the reason it waits (funds,
    fee cap, re-mined, reorged out), and the newest final anchor. ``state`` is ``idle`` (nothing
    in flight), ``in flight`` (waiting for inclusion or confirmations), ``waiting`` (it needs
    the operator: see ``reason``), or, with ``credentials`` (the chain is asked too), ``stopped``:
    the chain cannot be anchored to as configured (a contract holding another history, a
    restored older backup, a refused setting), ``reason`` saying what to do."""
    stopped = None
    if credentials is not None:  # ask the chain too: is its contract's checkpoint this log's?
        anchorer = ChainAnchorer(log, chain, credentials=credentials)
        try:
            anchorer.target(anchorer.clock())
            anchorer.check_log_matches()
        except LedgerError as exc:
            stopped = str(exc)
    target = store.newest_target(log.engine, chain.name)
    if stopped is not None:
        return {"chain": chain.name, "state": "stopped", "reason": stopped, "in_flight": [], "final": None}
    if target is None:
        return {"chain": chain.name, "state": "idle", "reason": "nothing anchored yet", "in_flight": [], "final": None}
    pending = store.unsettled(log.engine, target.id)
    final = store.newest(log.engine, target.id, (store.FINAL,))
    blocked = next((a for a in pending if a.error is not None and a.error.startswith(WAITING)), None)
    if blocked is not None:
        state, reason = "waiting", f"anchor of tree size {blocked.tree_size}: {blocked.error}"
    elif pending:
        first = pending[0]
        state = "in flight"
        reason = f"anchor of tree size {first.tree_size} is {first.status}" + (
            f" ({first.error})" if first.error else ""
        )
    else:
        state, reason = "idle", "nothing in flight"
    return {
        "chain": chain.name,
        "chain_id": target.chain_id,
        "contract": target.contract,
        "state": state,
        "reason": reason,
        "in_flight": [
            {"tree_size": a.tree_size, "status": a.status, "nonce": a.nonce, "error": a.error} for a in pending
        ],
        "final": None if final is None else {"tree_size": final.tree_size, "block_number": final.block_number},
    }


#: How the reasons start that need the operator (an anchor that waits for them).
WAITING = ("insufficient funds", "stuck at the fee cap")


__all__ = ["Anchored", "AnchoringError", "Deployed", "anchor_now", "deploy_and_record", "status", "switch_contract"]
