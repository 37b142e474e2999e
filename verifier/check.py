"""The auditor's verifier: checks a proof bundle (``tenderproof-bundle/1``, docs/spec.md §9) with nothing
but the bundle and, optionally, a JSON-RPC endpoint of the chain.

It imports the pure core and the thin chain reader only (no database, no server code), and
checks, in order:

1. the bundle names one tender of one log: every envelope has the bundle's ``origin`` and ``ocid``;
2. the tender's history is complete and in order: ``seq`` runs 0, 1, 2... and each ``prev`` is the
   leaf hash of the event before (so no event can be removed, inserted or reordered unseen);
3. every payload hashes (RFC 8785, SHA-256) to its envelope's ``payload_sha256`` (a withheld
   payload is reported, not failed: its hash is still bound by the envelope);
4. every envelope hashes (RFC 9162 leaf hash of its RFC 8785 bytes) to its ``leaf_hash``;
5. every signed submission recovers the officer it names (EIP-712, docs/spec.md §7);
6. every inclusion path leads from the event's leaf to the root of a checkpoint in ``anchors``;
7. the anchors are linked oldest to newest by consistency proofs (one history, not several);
8. with a chain: the chain id is the bundle's, the contract's ``rootAt`` returns each anchor's root,
   and each anchor's transaction succeeded in the stated block, at the stated time, and emitted
   ``Anchored`` for that tree size and root.

Every failure names where (the event's ``seq``, the anchor's tree size) and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ledger.core import verify
from ledger.core.bundle import Bundle, BundleAnchor, BundleEvent
from ledger.core.canonical import canonical_bytes, sha256_hex
from ledger.core.errors import LedgerError
from ledger.core.signing import verify_submission

from .chain import ChainReader

#: Checks an envelope's signature; returns the signer's address (``ledger.core.signing``).
SignatureCheck = Callable[[Any], str]


@dataclass(slots=True)
class EventReport:
    seq: int
    type: str
    index: int | None
    #: "valid", "pending" (not yet anchored; everything else checked) or "invalid".
    status: str = "valid"
    tree_size: int | None = None
    block_number: int | None = None
    block_timestamp: int | None = None
    tx_hash: str | None = None
    signer: str | None = None
    withheld: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Failure:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(slots=True)
class Report:
    origin: str
    ocid: str
    chain_id: int
    contract: str
    chain_checked: bool
    events: list[EventReport]
    failures: list[Failure]

    @property
    def valid(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "origin": self.origin,
            "ocid": self.ocid,
            "chain": {"chain_id": self.chain_id, "contract": self.contract, "checked": self.chain_checked},
            "events": [
                {
                    "seq": e.seq,
                    "type": e.type,
                    "index": e.index,
                    "status": e.status,
                    "tree_size": e.tree_size,
                    "block_number": e.block_number,
                    "block_timestamp": e.block_timestamp,
                    "tx_hash": e.tx_hash,
                    "signer": e.signer,
                    "withheld": e.withheld,
                    "problems": e.problems,
                }
                for e in self.events
            ],
            "failures": [{"where": f.where, "reason": f.reason} for f in self.failures],
        }


class _Checker:
    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.failures: list[Failure] = []
        self.reports: list[EventReport] = []

    def fail(self, where: str, reason: str, report: EventReport | None = None) -> None:
        self.failures.append(Failure(where, reason))
        if report is not None:
            report.status = "invalid"
            report.problems.append(reason)


def _where(position: int, event: BundleEvent) -> str:
    return f"event seq {event.envelope.seq} (events[{position}])"


def verify_bundle(
    bundle: Bundle, *, chain: ChainReader | None = None, check_signature: SignatureCheck | None = None
) -> Report:
    """Check everything the bundle claims; with ``chain``, also against the chain.

    Signed events are checked with ``check_signature`` (default: EIP-712 recovery with
    :func:`ledger.core.signing.verify_submission`), which returns the signer's address. The
    signed domain binds the log's origin; its chain id is the one the deployment signs with,
    which need not be the chain of this bundle's anchors when a log anchors to several. Whether
    the signer was a registered officer is not in the bundle.
    """
    c = _Checker(bundle)
    anchors = {a.tree_size: a for a in bundle.anchors}
    previous_leaf: bytes | None = None
    previous_index = -1
    for position, event in enumerate(bundle.events):
        env = event.envelope
        report = EventReport(seq=env.seq, type=env.type, index=event.index)
        c.reports.append(report)
        where = _where(position, event)
        if env.origin != bundle.origin:
            c.fail(where, f"envelope origin {env.origin!r} is not the bundle's {bundle.origin!r}", report)
        if env.ocid != bundle.ocid:
            c.fail(where, f"envelope ocid {env.ocid!r} is not the bundle's {bundle.ocid!r}", report)
        if env.seq != position:
            c.fail(where, f"expected seq {position}: the history must be complete and in order from 0", report)
        expected_prev = None if previous_leaf is None else previous_leaf.hex()
        if position > 0 and env.prev != expected_prev:
            c.fail(where, f"prev {env.prev} is not the leaf hash of the event before ({expected_prev})", report)
        # Payload and envelope hashes.
        if event.payload is None:
            report.withheld = event.withheld
        else:
            try:
                digest = sha256_hex(canonical_bytes(event.payload, field="payload"))
            except LedgerError as exc:
                c.fail(where, f"payload has no canonical form: {exc}", report)
            else:
                if digest != env.payload_sha256:
                    c.fail(where, f"payload hashes to {digest}, the envelope says {env.payload_sha256}", report)
        leaf = env.leaf_hash()
        if leaf != event.leaf_hash:
            c.fail(where, f"envelope hashes to leaf {leaf.hex()}, the bundle says {event.leaf_hash.hex()}", report)
        previous_leaf = leaf
        # Signature.
        if env.signature is not None:
            try:
                if check_signature is None:
                    report.signer = verify_submission(env)
                else:
                    report.signer = check_signature(env)
            except LedgerError as exc:
                c.fail(where, f"signature: {exc}", report)
        # Inclusion.
        if event.index is not None:
            if event.index <= previous_index:
                c.fail(where, f"log index {event.index} is not after the previous event's ({previous_index})", report)
            previous_index = event.index
        if event.inclusion is None:
            if report.status == "valid":
                report.status = "pending"
            continue
        size = event.inclusion.tree_size
        report.tree_size = size
        anchor = anchors.get(size)
        if anchor is None:
            c.fail(where, f"its inclusion proof is for tree size {size}, which no anchor in the bundle has", report)
            continue
        report.block_number, report.block_timestamp, report.tx_hash = (
            anchor.block_number,
            anchor.block_timestamp,
            anchor.tx_hash,
        )
        assert event.index is not None  # the bundle loader requires it with an inclusion proof
        try:
            verify.verify_inclusion(event.index, size, leaf, event.inclusion.path, anchor.root_hash)
        except LedgerError as exc:
            c.fail(where, f"inclusion in tree size {size}: {exc}", report)
    _check_anchors(c, bundle)
    if chain is not None:
        _check_chain(c, bundle, chain)
    return Report(
        origin=bundle.origin,
        ocid=bundle.ocid,
        chain_id=bundle.chain_id,
        contract=bundle.contract,
        chain_checked=chain is not None,
        events=c.reports,
        failures=c.failures,
    )


def _check_anchors(c: _Checker, bundle: Bundle) -> None:
    ordered = list(bundle.anchors)
    for earlier, later in pairwise(ordered):
        if later.tree_size <= earlier.tree_size:
            c.fail(
                f"anchor of tree size {later.tree_size}", "anchors must be listed oldest (smallest) first, once each"
            )
    links = {(link.from_size, link.to_size): link for link in bundle.consistency}
    if len(links) != len(bundle.consistency):
        c.fail("consistency", "a link is listed twice")
    wanted = set(pairwise(a.tree_size for a in ordered))
    for extra in sorted(set(links) - wanted):
        c.fail(f"consistency {extra[0]} -> {extra[1]}", "does not link two consecutive anchors of the bundle")
    by_size = {a.tree_size: a for a in ordered}
    for size1, size2 in sorted(wanted):
        link = links.get((size1, size2))
        where = f"consistency {size1} -> {size2}"
        if link is None:
            c.fail(where, "missing: the anchors are not shown to be one history")
            continue
        try:
            verify.verify_consistency(size1, size2, by_size[size1].root_hash, by_size[size2].root_hash, link.path)
        except LedgerError as exc:
            c.fail(where, str(exc))


def _check_chain(c: _Checker, bundle: Bundle, chain: ChainReader) -> None:
    chain_id = chain.chain_id()
    if chain_id != bundle.chain_id:
        c.fail("chain", f"the endpoint is on chain {chain_id}, the bundle's anchors are on chain {bundle.chain_id}")
        return
    for anchor in bundle.anchors:
        _check_anchor_on_chain(c, bundle, chain, anchor)


def _check_anchor_on_chain(c: _Checker, bundle: Bundle, chain: ChainReader, anchor: BundleAnchor) -> None:
    where = f"anchor of tree size {anchor.tree_size}"
    held = chain.root_at(bundle.contract, anchor.tree_size)
    if held == bytes(32):
        c.fail(where, f"the contract {bundle.contract} holds no checkpoint of that size")
    elif held != anchor.root_hash:
        c.fail(where, f"the contract holds root {held.hex()}, the bundle says {anchor.root_hash.hex()}")
    tx = chain.anchor_tx(bundle.contract, anchor.tx_hash)
    if tx is None:
        c.fail(where, f"transaction {anchor.tx_hash} is not on the chain")
        return
    if not tx.succeeded:
        c.fail(where, f"transaction {anchor.tx_hash} reverted")
    if (anchor.tree_size, anchor.root_hash) not in tx.anchored:
        c.fail(where, f"transaction {anchor.tx_hash} did not anchor this tree size and root")
    if tx.block_number != anchor.block_number:
        c.fail(where, f"transaction is in block {tx.block_number}, the bundle says {anchor.block_number}")
    if tx.block_timestamp != anchor.block_timestamp:
        c.fail(where, f"block time is {tx.block_timestamp}, the bundle says {anchor.block_timestamp}")
