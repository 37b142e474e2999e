"""The anchoring service: takes the log's checkpoints to every configured chain.

Each chain is driven by a :class:`ChainAnchorer`, independently of the others. An anchor is a
state machine persisted in the database (``anchoring.store``)::

    prepared --broadcast--> sent --mined--> included --N confirmations--> final
                              |  ^              |                            |
                              |  +----reorg-----+----------------------------+
                              +--reverted / nonce taken--> failed

* **prepared**: the transaction is signed and stored *before* it is broadcast, so a crash at
  any point is followed by sending the same bytes again, never a conflicting transaction.
* **sent**: broadcast. If it is not mined within ``stuck_after`` seconds it is replaced by a
  transaction with the same nonce and higher fees (also stored first); all of an anchor's
  transactions share one nonce, so at most one of them takes effect.
* **included**: mined; its block is remembered. If that block leaves the canonical chain
  (a reorg), the anchor goes back to *sent* and its transaction is broadcast again.
* **final**: ``confirmations`` blocks deep. The newest final anchor is still checked against
  the contract every round; if a reorg deeper than that removed it, it goes back to *sent*
  too. A transaction that can no longer take effect (its nonce used by another, or it
  reverts on the new chain) fails the anchor, and the next round anchors the checkpoint anew.

Before anything is signed the service checks the chain id, the code at the contract address,
the account's anchorer role and funds, and the contract's latest checkpoint against the log;
the anchor call is simulated (``eth_estimateGas``) so a refusal names the contract's error.
Only one process acts for a chain at a time: it must hold the chain's lease, and every state
change is written under it (``store.fenced``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_account.signers.local import LocalAccount
from pydantic import SecretStr
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError
from web3 import Web3

from ledger.log import Log
from ledger.store.reader import TreeHead
from settings import ChainSettings, Settings

from . import embedded, failpoints, keys, store
from .chain import ChainClient, Fees, Receipt, Signed, http_web3
from .compile import CURRENT
from .cosigning import Cosigning
from .cosigning import Witness as CosigningWitness
from .embedded import EmbeddedChain
from .errors import AnchoringError, ChainConfigError, LeaseHeldError, LogMismatchError, about_chain

log = logging.getLogger(__name__)

#: The topic of :meth:`AnchoringService._say` for the database (chain names are the others).
DATABASE = "\0database"


def _first_line(exc: OperationalError) -> str:
    """The driver's own message, first line, without SQLAlchemy's SQL and background link."""
    return (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]


#: How the reason of an anchor waiting for funds starts (in its ``error``).
FUNDS = "insufficient funds"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Policy:
    """When to anchor: every ``interval`` seconds while there are new entries, or at once when
    ``threshold`` entries are waiting."""

    interval: float = 600.0
    threshold: int = 10_000
    lease_ttl: float = 60.0

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(interval=settings.anchor_interval, threshold=settings.anchor_threshold, lease_ttl=settings.lease_ttl)


@dataclass(frozen=True)
class Credentials:
    """Where keys come from when a chain names none of its own."""

    anchor_key: SecretStr | None = None
    keystore_password: SecretStr | None = None

    @classmethod
    def of(cls, settings: Settings) -> Credentials:
        return cls(anchor_key=settings.anchor_key, keystore_password=settings.keystore_password)


def holder_name() -> str:
    """This process's name in leases: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def account_for(chain: ChainSettings, credentials: Credentials, dev: EmbeddedChain | None = None) -> LocalAccount:
    """The account that signs for ``chain``: its keystore, its key, the global key, or (embedded
    chain only) the development chain's funded account."""
    field = f"chains[{chain.name}]"
    if chain.keystore is not None:
        return keys.from_keystore(chain.keystore, credentials.keystore_password, field=f"{field}.keystore")
    if chain.key is not None:
        return keys.from_hex(chain.key, field=f"{field}.key")
    if credentials.anchor_key is not None:
        return keys.from_hex(credentials.anchor_key, field="anchor_key")
    if chain.embedded:
        return keys.from_hex((dev or embedded.chain()).key, field=f"{field}.key")
    raise ChainConfigError(f"{field}.key", "no key: set TENDERPROOF_ANCHOR_KEY, or the chain's key or keystore")


def connect(chain: ChainSettings, credentials: Credentials, dev: EmbeddedChain | None = None) -> ChainClient:
    """A client for ``chain`` (contract address not yet resolved). ``dev`` is the embedded chain
    to use for an embedded ``chain`` (default: this process's)."""
    account = account_for(chain, credentials, dev)
    w3 = (dev or embedded.chain()).w3 if chain.embedded else http_web3(chain)
    return ChainClient(w3, name=chain.name, account=account, address=chain.contract)


def deploy(
    client: ChainClient,
    *,
    admin: str | None = None,
    version: int = CURRENT,
    timeout: float = 120.0,
    poll: float = 0.5,
) -> tuple[str, bytes]:
    """Deploy the anchor contract of interface ``version`` (default: the current one,
    ProcurementAnchorV2; 1 is ProcurementAnchor, for tests of earlier deployments) with ``admin``
    (default: the client's account, which the constructor also makes an anchorer). Returns
    (address, transaction hash) once mined."""
    owner = Web3.to_checksum_address(admin or client.account.address)
    artifact = client.artifacts[version]
    factory = client.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    data = bytes.fromhex(factory.constructor(owner).data_in_transaction.removeprefix("0x"))
    gas = client.estimate(data, None)
    fees = client.fees()
    _check_funds(client, gas, fees)
    signed = client.sign(data=data, to=None, nonce=client.nonce("pending"), gas=gas, fees=fees)
    refusal = client.broadcast(signed.raw)
    if refusal is not None:
        raise AnchoringError(f"chain {client.name}: the node refused the deployment: {refusal}")
    deadline = time.monotonic() + timeout
    while (receipt := client.receipt(signed.tx_hash)) is None:
        if time.monotonic() > deadline:
            raise AnchoringError(f"chain {client.name}: deployment {signed.tx_hash.hex()} not mined within {timeout}s")
        time.sleep(poll)
    if not receipt.succeeded:
        raise AnchoringError(f"chain {client.name}: deployment {signed.tx_hash.hex()} reverted")
    assert receipt.contract_address is not None
    return Web3.to_checksum_address(receipt.contract_address), signed.tx_hash


def _check_funds(client: ChainClient, gas: int, fees: Fees) -> None:
    needed = gas * fees.max_fee
    have = client.balance()
    if have < needed:
        raise ChainConfigError(
            f"chains[{client.name}].key",
            f"account {client.account.address} holds {have} wei on chain {client.name}; this needs up to {needed}",
        )


@dataclass(frozen=True)
class RoundResult:
    """What one round did on one chain."""

    chain: str
    action: str
    anchor: store.Anchor | None = None

    @property
    def settled(self) -> bool:
        """Nothing is in flight on this chain."""
        return self.anchor is None or self.anchor.status not in store.IN_FLIGHT


class ChainAnchorer:
    """Anchors ``log`` to one chain. Call :meth:`run_round` periodically."""

    def __init__(
        self,
        log: Log,
        chain: ChainSettings,
        *,
        credentials: Credentials = Credentials(),
        policy: Policy = Policy(),
        holder: str | None = None,
        clock: Clock = utc_now,
        dev: EmbeddedChain | None = None,
        switching: bool = False,
    ) -> None:
        self.log = log
        self.chain = chain
        self.dev = dev
        #: Set by an operator's explicit switch of contracts: only then may the configured contract
        #: differ from the one recorded for the chain.
        self.switching = switching
        self.credentials = credentials
        self.policy = policy
        self.holder = holder or holder_name()
        self.clock = clock
        self.lease = f"chain:{chain.name}"
        self._client: ChainClient | None = None
        self._target: store.Target | None = None

    # --- Connection and checks -----------------------------------------------------------

    @property
    def client(self) -> ChainClient:
        if self._client is None:
            self._client = connect(self.chain, self.credentials, self.dev)
        return self._client

    def target(self, now: datetime) -> store.Target:
        """Check the chain and contract (once per chain instance) and return the target row."""
        client = self.client
        field = f"chains[{self.chain.name}]"
        chain_id = client.chain_id()
        if self.chain.chain_id is not None and chain_id != self.chain.chain_id:
            raise ChainConfigError(
                f"{field}.chain_id", f"is {self.chain.chain_id}, but the node is on chain {chain_id}"
            )
        if self.chain.embedded:
            dev = self.dev or embedded.chain()
            instance = dev.instance
            with dev.lock:
                if client.address is None:
                    if dev.contract is None:
                        dev.contract, _ = deploy(client)
                        log.info(
                            "chain %s: deployed ProcurementAnchor at %s on the %s",
                            self.chain.name,
                            dev.contract,
                            embedded.LABEL,
                        )
                    assert dev.contract is not None
                    client.address = Web3.to_checksum_address(dev.contract)
        else:
            instance = "genesis:" + client.genesis_hash().hex()
        if self._target is not None and (self._target.chain_id, self._target.instance) == (chain_id, instance):
            return self._target
        recorded = store.recorded_contract(self.log.engine, chain=self.chain.name, chain_id=chain_id, instance=instance)
        if client.address is None:
            if recorded is None:
                raise ChainConfigError(
                    f"{field}.contract",
                    f"not set and none deployed on this chain yet: run `tenderproof deploy --chain {self.chain.name}`",
                )
            client.address = Web3.to_checksum_address(recorded)
        elif recorded is not None and recorded.lower() != client.address.lower() and not self.switching:
            raise ChainConfigError(
                f"{field}.contract",
                f"is {client.address}, but chain {self.chain.name} anchors to {recorded}: nothing was sent or "
                f"recorded. Correct the setting, or switch contracts explicitly: `tenderproof switch-contract "
                f"--chain {self.chain.name} --contract {client.address}`",
            )
        if not client.code(client.address):
            raise ChainConfigError(f"{field}.contract", f"no contract at {client.address} on chain {chain_id}")
        if not client.runtime_matches():
            raise ChainConfigError(
                f"{field}.contract",
                f"the code at {client.address} is not this release's ProcurementAnchor (version 1 or 2)",
            )
        if not client.is_anchorer(client.account.address):
            raise ChainConfigError(
                f"{field}.key",
                f"account {client.account.address} is not an anchorer of {client.address}: "
                "the contract's admin must call grantAnchorer for it",
            )
        self.check_log_matches()  # a contract of another log is refused before anything is recorded
        if self.switching and recorded is not None and recorded.lower() != client.address.lower():
            if (current := store.newest_target(self.log.engine, self.chain.name)) is not None and store.unsettled(
                self.log.engine, current.id
            ):
                raise ChainConfigError(
                    f"{field}.contract",
                    f"an anchor is in flight on {recorded}: wait until it is final (`tenderproof anchor --status`)",
                )
            earlier = store.find_target(
                self.log.engine, chain=self.chain.name, chain_id=chain_id, instance=instance, contract=client.address
            )
            if earlier is not None:
                self._check_recorded_anchors(earlier, field)
            log.warning(
                "chain %s: switching contracts from %s to %s%s (operator's request)",
                self.chain.name, recorded, client.address,
                "" if earlier is None else f", back to the contract it anchored to until {earlier.created_at:%Y-%m-%d}",
            )  # fmt: skip
        self._target = store.target(
            self.log.engine,
            chain=self.chain.name,
            chain_id=chain_id,
            instance=instance,
            contract=client.address,
            now=now,
        )
        return self._target

    def _check_recorded_anchors(self, earlier: store.Target, field: str) -> None:
        """Before switching back to ``earlier`` (a contract this chain anchored to before): every
        final anchor recorded on it must still be on the contract with its root (none lost to a
        reorg, none overwritten), else the switch is refused and nothing is recorded."""
        client = self.client
        for anchor in store.finals(self.log.engine, earlier.id):
            on_chain = client.root_at(anchor.tree_size)
            if on_chain != anchor.root:
                found = "no root" if on_chain == bytes(32) else f"root {on_chain.hex()}"
                raise ChainConfigError(
                    f"{field}.contract",
                    f"cannot switch back to {client.address}: this log recorded its anchor of tree size "
                    f"{anchor.tree_size} there with root {anchor.root.hex()}, the contract holds {found}: "
                    "run `tenderproof audit`, or deploy a new contract with `tenderproof deploy`",
                )

    def check_log_matches(self) -> None:
        """Raise :class:`LogMismatchError` if the contract's latest checkpoint is not this log's."""
        client, reader = self.client, self.log.reader
        head = reader.tree_head()
        _, on_size, on_root, _ = client.latest()
        todo = (
            f"anchoring is stopped on this chain. Run `tenderproof audit`; if this database was restored from an "
            f"older backup, restore one at least as new as tree size {on_size} (or bring the lost entries back); "
            "if the contract belongs to another log, configure this log's contract"
        )
        if on_size > head.size:
            raise LogMismatchError(
                f"chain {self.chain.name}: contract {client.address} holds tree size {on_size}, "
                f"this log only {head.size}: entries were lost here (an older backup restored?) or it anchors "
                f"another log: {todo}"
            )
        if on_size > 0 and (ours := reader.root_at(on_size)) != on_root:
            raise LogMismatchError(
                f"chain {self.chain.name}: contract {client.address} holds root {on_root.hex()} for tree size "
                f"{on_size}, this log's root there is {ours.hex()}: the entries anchored up to {on_size} are not "
                f"this log's (an older backup restored, then new writes?): {todo}"
            )

    # --- A round -------------------------------------------------------------------------

    def run_round(self, *, force: bool = False) -> RoundResult:
        """Advance the anchor in flight by one step, or start one if it is due (``force``: now).

        Raises :class:`LeaseHeldError` if another process acts for this chain.
        """
        now = self.clock()
        store.acquire(self.log.engine, self.lease, self.holder, now=now, ttl=self.policy.lease_ttl)
        target = self.target(now)
        self._recheck_final(target)
        pending = store.unsettled(self.log.engine, target.id)
        if pending:
            return self._advance_all(target, pending)
        return self._maybe_prepare(target, force=force)

    def _advance_all(self, target: store.Target, pending: list[store.Anchor]) -> RoundResult:
        """Advance every anchor in flight, in nonce order. Only the lowest one not yet mined is
        driven fully (replaced when stuck); those after it wait behind its nonce and are only kept
        known to the node, so a gap left by a deep reorg is filled in order. The result is the
        first anchor that is not settled (what the service is waiting for)."""
        first: RoundResult | None = None
        blocked = False
        for anchor in pending:
            if blocked and anchor.status != store.INCLUDED:
                result = self._keep_known(anchor)
            else:
                result = self._advance(target, anchor)
            if result.anchor is not None and result.anchor.status in (store.PREPARED, store.SENT):
                blocked = True
            if first is None and not result.settled:
                first = result
        return first or result

    def _keep_known(self, anchor: store.Anchor) -> RoundResult:
        """An anchor behind an earlier nonce still in flight: broadcast once, then only again if
        the node lost it."""
        txs = store.transactions(self.log.engine, anchor.id)
        last = txs[-1]
        if anchor.status == store.PREPARED or not self.client.is_known(last.tx_hash):
            refusal = self.client.broadcast(last.raw)
            log.info(
                "chain %s: sent %s (nonce %d, after an earlier nonce in flight)%s",
                self.chain.name, last.tx_hash.hex(), anchor.nonce, f" ({refusal})" if refusal else "",
            )  # fmt: skip
            if anchor.status == store.PREPARED:
                with self._fenced() as conn:
                    store.set_state(conn, anchor.id, expect=store.PREPARED, now=self.clock(), status=store.SENT)
                anchor = self._reload(anchor.id)
        return RoundResult(self.chain.name, f"waiting behind an earlier nonce (nonce {anchor.nonce})", anchor)

    def release(self) -> None:
        store.release(self.log.engine, self.lease, self.holder, now=self.clock())

    def _fenced(self) -> AbstractContextManager[Connection]:
        return store.fenced(self.log.engine, self.lease, self.holder, now=self.clock(), ttl=self.policy.lease_ttl)

    def _reload(self, anchor_id: int) -> store.Anchor:
        return store.get(self.log.engine, anchor_id)

    def _maybe_prepare(self, target: store.Target, *, force: bool) -> RoundResult:
        client, reader = self.client, self.log.reader
        self.check_log_matches()
        # Anchor the newest size that ends with a heads commitment (docs/spec.md §14.1).
        committed = reader.committed_size()
        head = TreeHead(committed, reader.root_at(committed))
        _, on_size, _, _ = client.latest()
        if on_size >= head.size:
            return RoundResult(self.chain.name, "up to date", store.newest(self.log.engine, target.id, store.ON_CHAIN))
        now = self.clock()
        last = store.newest(self.log.engine, target.id, store.ON_CHAIN)
        waiting = head.size - on_size
        due = (
            force
            or waiting >= self.policy.threshold
            or last is None
            or (now - last.created_at).total_seconds() >= self.policy.interval
        )
        if not due:
            return RoundResult(self.chain.name, f"waiting ({waiting} entries not anchored)", last)
        data = self._calldata(on_size, head.size, head.root)
        _check_funds(client, 1, Fees(1, None))  # an empty account: say so, before a node's own wording
        gas = client.estimate(data, client.address)
        fees = self._capped(client.fees())
        _check_funds(client, gas, fees)
        signed = client.sign(data=data, to=client.address, nonce=client.nonce("pending"), gas=gas, fees=fees)
        with self._fenced() as conn:
            if store.in_flight_on(conn, target.id) is not None:  # pragma: no cover - guarded by the lease
                return RoundResult(self.chain.name, "another anchor is in flight")
            anchor_id = store.insert_anchor(
                conn,
                target_id=target.id,
                tree_size=head.size,
                root=head.root,
                base_size=on_size,
                status=store.PREPARED,
                account=client.account.address,
                nonce=signed.nonce,
                created_at=now,
                updated_at=now,
            )
            self._insert_tx(conn, anchor_id, signed, now)
        failpoints.reached("anchor.prepared")
        log.info(
            "chain %s: anchoring tree size %d (from %d), tx %s",
            self.chain.name,
            head.size,
            on_size,
            signed.tx_hash.hex(),
        )
        anchor = self._reload(anchor_id)
        return self._advance(target, anchor)

    def _calldata(self, base: int, size: int, root: bytes) -> bytes:
        proof = self.log.reader.consistency_proof(base, size) if base else []
        return self.client.anchor_calldata(size, root, proof)

    def _capped(self, fees: Fees) -> Fees:
        cap = int(self.chain.max_fee_gwei * 10**9)
        priority = None if fees.priority_fee is None else min(fees.priority_fee, cap)
        return Fees(min(fees.max_fee, cap), priority)

    @staticmethod
    def _insert_tx(conn: Connection, anchor_id: int, signed: Signed, now: datetime) -> None:
        store.insert_tx(
            conn,
            anchor_id=anchor_id,
            tx_hash=signed.tx_hash,
            nonce=signed.nonce,
            raw=signed.raw,
            gas_limit=signed.gas_limit,
            max_fee=signed.fees.max_fee,
            priority_fee=signed.fees.priority_fee,
            now=now,
        )

    # --- The state machine ---------------------------------------------------------------

    def _advance(self, target: store.Target, anchor: store.Anchor) -> RoundResult:
        if anchor.status == store.PREPARED:
            return self._send(target, anchor)
        if anchor.status == store.SENT:
            return self._await_inclusion(target, anchor)
        return self._await_finality(target, anchor)

    def _send(self, target: store.Target, anchor: store.Anchor) -> RoundResult:
        txs = store.transactions(self.log.engine, anchor.id)
        refusal = self.client.broadcast(txs[-1].raw)
        if refusal is not None:  # already known or mined (after a crash), or refused: receipts tell
            log.info("chain %s: node answered %s for %s", self.chain.name, refusal, txs[-1].tx_hash.hex())
        failpoints.reached("anchor.broadcast")
        with self._fenced() as conn:
            store.set_state(conn, anchor.id, expect=store.PREPARED, now=self.clock(), status=store.SENT)
        failpoints.reached("anchor.sent")
        return RoundResult(self.chain.name, "sent", self._reload(anchor.id))

    def _mined(self, txs: list[store.Tx]) -> Receipt | None:
        for tx in txs:
            if (receipt := self.client.receipt(tx.tx_hash)) is not None:
                return receipt
        return None

    def _await_inclusion(self, target: store.Target, anchor: store.Anchor) -> RoundResult:
        client = self.client
        txs = store.transactions(self.log.engine, anchor.id)
        receipt = self._mined(txs)
        if receipt is None and client.nonce("latest") > anchor.nonce:
            receipt = self._mined(txs)  # mined between the two reads?
            if receipt is None:
                return self._fail(target, anchor, f"nonce {anchor.nonce} was used by a transaction not of this anchor")
        if receipt is not None:
            if not receipt.succeeded:
                return self._fail(
                    target, anchor, f"transaction {receipt.tx_hash.hex()} reverted in block {receipt.block_number}"
                )
            if self._record_inclusion(anchor, receipt, expect=store.SENT, tx_hash=receipt.tx_hash, error=None) is None:
                return RoundResult(self.chain.name, "mined in a block not yet canonical", anchor)
            failpoints.reached("anchor.included")
            log.info(
                "chain %s: tree size %d included in block %d", self.chain.name, anchor.tree_size, receipt.block_number
            )
            return self._await_finality(target, self._reload(anchor.id))
        last = txs[-1]
        if (short := self._short_of_funds(anchor, last)) is not None:
            return short
        age = (self.clock() - last.created_at).total_seconds()
        if age >= self.chain.stuck_after:
            return self._replace(target, anchor, last)
        if not client.is_known(last.tx_hash):  # the node lost it (restart, reorg, eviction): send it again
            refusal = client.broadcast(last.raw)
            log.info(
                "chain %s: rebroadcast %s%s", self.chain.name, last.tx_hash.hex(), f" ({refusal})" if refusal else ""
            )
            return RoundResult(self.chain.name, "rebroadcast", anchor)
        return RoundResult(self.chain.name, "waiting for inclusion", anchor)

    def _short_of_funds(self, anchor: store.Anchor, last: store.Tx) -> RoundResult | None:
        """If the account can no longer pay for the anchor's transaction (drained while it was in
        flight), say so loudly (ERROR, the anchor's ``error``), and wait: nothing is sent until the
        account is funded again."""
        needed = last.gas_limit * last.max_fee
        have = self.client.balance()
        if have >= needed:
            if anchor.error is not None and anchor.error.startswith(FUNDS):
                with self._fenced() as conn:
                    store.set_state(conn, anchor.id, expect=anchor.status, now=self.clock(), error=None)
                log.warning("chain %s: account %s is funded again", self.chain.name, anchor.account)
            return None
        reason = (
            f"{FUNDS}: account {anchor.account} holds {have} wei, the anchor of tree size {anchor.tree_size} "
            f"needs up to {needed} wei (gas {last.gas_limit} x {last.max_fee} wei): fund the account"
        )
        log.error("chain %s: %s", self.chain.name, reason)
        return self._waiting(anchor, reason)

    def _waiting(self, anchor: store.Anchor, reason: str) -> RoundResult:
        """Keep ``reason`` as the anchor's error (written only when it changed) and say the round
        waits for it."""
        if anchor.error != reason:
            with self._fenced() as conn:
                store.set_state(conn, anchor.id, expect=anchor.status, now=self.clock(), error=reason)
        return RoundResult(self.chain.name, f"waiting: {reason}", self._reload(anchor.id))

    def _replace(self, target: store.Target, anchor: store.Anchor, last: store.Tx) -> RoundResult:
        client = self.client
        old = Fees(last.max_fee, last.priority_fee)
        fees = self._capped(old.bumped(self.chain.fee_bump_percent).at_least(client.fees()))
        if fees.max_fee < old.bumped(10).max_fee:
            reason = (
                f"stuck at the fee cap: the transaction offers {old.max_fee} wei per gas, a replacement needs "
                f"{old.bumped(10).max_fee}, max_fee_gwei allows {int(self.chain.max_fee_gwei * 10**9)}"
            )
            log.warning("chain %s: anchor of tree size %d is %s", self.chain.name, anchor.tree_size, reason)
            return self._waiting(anchor, reason)
        data = self._calldata(anchor.base_size, anchor.tree_size, anchor.root)
        signed = client.sign(data=data, to=client.address, nonce=anchor.nonce, gas=last.gas_limit, fees=fees)
        now = self.clock()
        with self._fenced() as conn:
            self._insert_tx(conn, anchor.id, signed, now)
        failpoints.reached("anchor.replacement")
        refusal = client.broadcast(signed.raw)
        log.info(
            "chain %s: replaced %s by %s (max fee %d -> %d wei)%s",
            self.chain.name, last.tx_hash.hex(), signed.tx_hash.hex(), old.max_fee, fees.max_fee,
            f": node answered {refusal}" if refusal else "",
        )  # fmt: skip
        return RoundResult(self.chain.name, "replaced", anchor)

    def _await_finality(self, target: store.Target, anchor: store.Anchor) -> RoundResult:
        return self._await_finality_of(anchor)

    def _await_finality_of(self, anchor: store.Anchor) -> RoundResult:
        client = self.client
        assert anchor.tx_hash is not None and anchor.block_number is not None
        receipt = client.receipt(anchor.tx_hash)
        if receipt is None:
            return self._back_to_sent(anchor, store.INCLUDED, "reorged out")
        if receipt.block_hash != anchor.block_hash:
            return self._moved(anchor, receipt)
        block = client.block(anchor.block_number)
        if block is None or block[0] != anchor.block_hash:
            return RoundResult(self.chain.name, "the node's receipt and blocks disagree (reorg under way)", anchor)
        depth = client.head() - anchor.block_number + 1
        if depth < self.chain.confirmations:
            return RoundResult(self.chain.name, f"included ({depth}/{self.chain.confirmations} confirmations)", anchor)
        now = self.clock()
        with self._fenced() as conn:
            store.set_state(conn, anchor.id, expect=store.INCLUDED, now=now, status=store.FINAL, final_at=now)
        failpoints.reached("anchor.final")
        log.info("chain %s: tree size %d final (%d confirmations)", self.chain.name, anchor.tree_size, depth)
        return RoundResult(self.chain.name, "final", self._reload(anchor.id))

    def _fail(self, target: store.Target, anchor: store.Anchor, reason: str) -> RoundResult:
        with self._fenced() as conn:
            store.set_state(conn, anchor.id, expect=anchor.status, now=self.clock(), status=store.FAILED, error=reason)
        log.warning("chain %s: anchor of tree size %d failed: %s", self.chain.name, anchor.tree_size, reason)
        return RoundResult(self.chain.name, "failed", self._reload(anchor.id))

    def _recheck_final(self, target: store.Target) -> None:
        """Final anchors are re-checked every round until their block is ``recheck_blocks`` deep
        (and the newest final one always): a reorg deeper than the confirmations sends each
        removed anchor back to *sent* and broadcasts its transaction again, in nonce order (so a
        reorg of several anchors is refilled from the lowest nonce up); a transaction re-mined in
        another block gets that block's number, hash and time, and counts its confirmations anew."""
        client = self.client
        head = client.head()
        for anchor in store.recent_final(self.log.engine, target.id, above_block=head - self.chain.recheck_blocks):
            assert anchor.tx_hash is not None
            receipt = client.receipt(anchor.tx_hash)
            if receipt is None:
                log.error(
                    "chain %s: final anchor of tree size %d is no longer on chain (a reorg deeper than %d blocks)",
                    self.chain.name, anchor.tree_size, self.chain.confirmations,
                )  # fmt: skip
                self._back_to_sent(anchor, store.FINAL, "reorged out after it was final")
            elif receipt.block_hash != anchor.block_hash:
                self._moved(anchor, receipt)

    def _record_inclusion(
        self, anchor: store.Anchor, receipt: Receipt, *, expect: str, **changes: Any
    ) -> tuple[bytes, int] | None:
        """Record ``anchor`` as included in ``receipt``'s block (its number, hash and time, the
        contract's anchor id, the gas used; ``changes`` adds columns) if that block is canonical,
        and return the block's (hash, time); None, recording nothing, when it is not canonical yet.
        Raises what :meth:`store.set_state` raises when the anchor is no longer in state ``expect``."""
        block = self.client.block(receipt.block_number)
        if block is None or block[0] != receipt.block_hash:
            return None
        with self._fenced() as conn:
            store.set_state(
                conn,
                anchor.id,
                expect=expect,
                now=self.clock(),
                status=store.INCLUDED,
                block_number=receipt.block_number,
                block_hash=receipt.block_hash,
                block_timestamp=block[1],
                anchor_id=receipt.anchor_id,
                gas_used=receipt.gas_used,
                **changes,
            )
        return block

    def _moved(self, anchor: store.Anchor, receipt: Receipt) -> RoundResult:
        """The anchor's transaction is now in another block (a reorg re-mined it): record that
        block's number, hash and time, and count its confirmations from there."""
        block = self._record_inclusion(
            anchor,
            receipt,
            expect=anchor.status,
            final_at=None,
            error=f"re-mined: was in block {anchor.block_number}, now in block {receipt.block_number}",
        )
        if block is None:
            return RoundResult(self.chain.name, "mined in a block not yet canonical", anchor)
        log.warning(
            "chain %s: anchor of tree size %d re-mined by a reorg: block %d -> %d (time %s -> %d)",
            self.chain.name, anchor.tree_size, anchor.block_number, receipt.block_number,
            anchor.block_timestamp, block[1],
        )  # fmt: skip
        return self._await_finality_of(self._reload(anchor.id))

    def _back_to_sent(self, anchor: store.Anchor, state: str, reason: str) -> RoundResult:
        with self._fenced() as conn:
            store.set_state(
                conn,
                anchor.id,
                expect=state,
                now=self.clock(),
                status=store.SENT,
                tx_hash=None,
                block_number=None,
                block_hash=None,
                block_timestamp=None,
                anchor_id=None,
                gas_used=None,
                final_at=None,
                error=f"{reason} (block {anchor.block_number})",
            )
        txs = store.transactions(self.log.engine, anchor.id)
        mined = next(tx for tx in txs if tx.tx_hash == anchor.tx_hash)
        refusal = self.client.broadcast(mined.raw)
        log.warning(
            "chain %s: anchor of tree size %d %s; sent %s again%s",
            self.chain.name, anchor.tree_size, reason, mined.tx_hash.hex(), f" ({refusal})" if refusal else "",
        )  # fmt: skip
        return RoundResult(self.chain.name, f"{reason}; sent again", self._reload(anchor.id))


class AnchoringService:
    """Every configured chain, each anchored independently: one failing chain (unreachable,
    misconfigured) does not hold back the others. :meth:`tick` is the periodic job's body."""

    def __init__(
        self,
        log: Log,
        chains: list[ChainSettings],
        *,
        credentials: Credentials = Credentials(),
        policy: Policy = Policy(),
        holder: str | None = None,
        clock: Clock = utc_now,
        integrate_batch: int = 50_000,
        cosigning: Cosigning | None = None,
        dev: EmbeddedChain | None = None,
    ) -> None:
        self.log = log
        self.clock = clock
        self.integrate_batch = integrate_batch
        self.cosigning = cosigning
        self.holder = holder or holder_name()
        #: The last error logged per chain (repeated every poll, it is logged once).
        self._said: dict[str, str] = {}
        self.anchorers = [
            ChainAnchorer(log, chain, credentials=credentials, policy=policy, holder=self.holder, clock=clock, dev=dev)
            for chain in chains
        ]

    def tick(self) -> list[RoundResult]:
        """Integrate what is pending, then one round on every chain. Never raises for one chain's
        failure: it is logged and that chain is tried again at the next tick. While the database
        cannot be reached, one line says so (once, not a traceback every run) and nothing is done."""
        try:
            self.log.integrate_all(now=self.clock(), batch_size=self.integrate_batch, commit_heads=True)
        except OperationalError as exc:
            self._say(DATABASE, logging.ERROR, f"database unreachable or failing, anchoring waits: {_first_line(exc)}")
            return [RoundResult(anchorer.chain.name, "waiting: database unreachable") for anchorer in self.anchorers]
        if self._said.pop(DATABASE, None) is not None:
            log.warning("database reachable again: anchoring resumes")
        if self.cosigning is not None:
            try:  # the witnesses' cosignatures: never a reason not to anchor
                self.cosigning.round(now=self.clock())
            except Exception:
                log.exception("cosigning round failed")
        results = []
        for anchorer in self.anchorers:
            name = anchorer.chain.name
            try:
                results.append(anchorer.run_round())
                self._said.pop(name, None)
            except LeaseHeldError as exc:
                results.append(RoundResult(name, f"standby: {exc.reason}"))
            except (AnchoringError, ChainConfigError) as exc:  # a chain that cannot work as configured, too
                level = logging.ERROR if isinstance(exc, LogMismatchError) else logging.WARNING
                self._say(name, level, about_chain(name, str(exc)))
                results.append(RoundResult(name, f"error: {exc}"))
                continue
            except OperationalError as exc:  # the database went away during the round
                said = f"database unreachable or failing, anchoring waits: {_first_line(exc)}"
                self._say(name, logging.ERROR, about_chain(name, said))
                results.append(RoundResult(name, "waiting: database unreachable"))
                continue
            except Exception as exc:  # a bug or an unforeseen node answer: logged, the other chains go on
                log.exception("chain %s: anchoring round failed", name)
                results.append(RoundResult(name, f"error: {type(exc).__name__}: {exc}"))
        return results

    def _say(self, topic: str, level: int, said: str) -> None:
        """Log ``said`` about ``topic`` (a chain's name, or the database) loudly once, then at
        debug level while it stays the same."""
        if self._said.get(topic) != said:
            log.log(level, "%s", said)
        else:
            log.debug("still: %s", said)
        self._said[topic] = said

    @classmethod
    def of(cls, log: Log, settings: Settings, chains: list[ChainSettings] | None = None) -> AnchoringService:
        """The service of ``settings`` (its chains, or only ``chains``)."""
        return cls(
            log,
            list(settings.chains) if chains is None else chains,
            credentials=Credentials.of(settings),
            policy=Policy.of(settings),
            integrate_batch=settings.integrate_batch,
            cosigning=cosigning_of(log, settings),
        )

    def close(self) -> None:
        """Release the leases this process holds, so another can take over at once."""
        for anchorer in self.anchorers:
            try:
                anchorer.release()
            except Exception:  # shutting down: the lease expires anyway
                log.exception("chain %s: releasing the lease failed", anchorer.chain.name)


def cosigning_of(log_: Log, settings: Settings) -> Cosigning | None:
    """The publishing round's cosigning of ``settings`` (its witnesses), ``None`` without any or
    without the log's signing key (a witness cosigns only a signed checkpoint)."""
    key = settings.log_signing_key_text()
    if not settings.witnesses:
        return None
    if key is None:
        raise ChainConfigError("witnesses", "witnesses cosign signed checkpoints: set TENDERPROOF_LOG_SIGNING_KEY")
    from ledger.core.cosignature import CosignerKey
    from ledger.core.note import Signer

    witnesses = [CosigningWitness(w.url, CosignerKey.parse(w.key)) for w in settings.witnesses]
    return Cosigning(
        log_, Signer.parse(key), witnesses, quorum=settings.witness_quorum, timeout=settings.witness_timeout
    )
