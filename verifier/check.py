"""The auditor's verifier: checks a proof bundle (``tenderproof-bundle/1`` or ``/2``, docs/spec.md §9
and §15) with nothing but the bundle and, optionally, a JSON-RPC endpoint of the chain.

It imports the pure core and the thin chain reader only (no database, no server code), and
checks, in the order of docs/spec.md §10 (a range bundle's event before the range first, §15.3):

1. the bundle names one tender of one log: every envelope has the bundle's ``origin`` and ``ocid``;
2. the tender's history is complete and in order: ``seq`` runs 0, 1, 2... and each ``prev`` is the
   leaf hash of the event before (so no event can be removed, inserted or reordered unseen);
3. every payload hashes (RFC 8785, SHA-256) to its envelope's ``payload_sha256`` (version 1), or
   recomputes with its disclosure to the envelope's salted ``payload_commitment`` (version 2,
   docs/spec.md §2.5); a withheld payload or field is reported, not failed: its hash is still
   bound by the envelope;
4. every envelope hashes (RFC 9162 leaf hash of its RFC 8785 bytes) to its ``leaf_hash``;
5. every signed submission recovers the officer it names (EIP-712, docs/spec.md §7);
6. the log indexes increase, and every event with an inclusion proof is included in a cited anchor:
   its path leads from the event's leaf to the root of the anchor of its tree size (the same
   check, :func:`_check_included`, for the event before a range and the officers' and orders'
   entries);
7. the anchors are linked oldest to newest by consistency proofs (one history, not several);
8. no event escapes its proof: an event below a cited anchored size must carry an inclusion proof;
9. with a chain: the chain id is the bundle's, no event escapes its proof below the contract's
   latest size either, the contract's ``rootAt`` returns each anchor's root, and each anchor's
   transaction succeeded in the stated block, at the stated time, and emitted ``Anchored`` for that
   tree size and root.

And, from version 2 (docs/spec.md §15.2), after 8 and before 9: the heads commitment of the
newest cited anchor proves the history whole (nothing cut off at the end); each signer was a
registered, not revoked, officer at the signed event's log position; each payload or field left
out is withheld under an order of the log the bundle proves; the signed checkpoint is the newest
anchor's.

Every failure names where (the event's ``seq``, the anchor's tree size) and why. Outcomes, per
event and for the bundle: ``verified`` (checked against the chain), ``invalid``, ``not checked``
(the chain was not or could not be asked), ``pending`` (not yet anchored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from ledger.core import heads, verify
from ledger.core.bundle import Bundle, BundleAnchor, BundleEvent
from ledger.core.canonical import canonical_bytes
from ledger.core.checkpoint import Checkpoint
from ledger.core.commitment import withheld_fields
from ledger.core.envelope import VERSION_1, VERSION_2
from ledger.core.errors import FormatError, LedgerError
from ledger.core.signing import verify_submission

from .chain import ChainReader
from .errors import ChainUnavailableError

#: The officers' registry's ocid (docs/spec.md §7.5).
REGISTRY_OCID = "ocds-tpreg0-officers"
#: The ocid of withholding orders (docs/privacy.md), and their event type.
ORDERS_OCID = "ocds-tpreg0-orders"
ORDER_TYPE = "privacy.withholding"
#: The four outcomes, per event and per bundle.
VERIFIED, INVALID, NOT_CHECKED, PENDING = "verified", "invalid", "not checked", "pending"
_HEX64 = re.compile(r"[0-9a-f]{64}")

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
    #: Fields of a version 2 payload withheld by an order: JSON Pointer -> the order's log index.
    withheld_fields: dict[str, int] = field(default_factory=dict)
    #: The signer as the registry records them (bundle version 2), e.g. "Ana Pérez (buyer)".
    officer: str | None = None
    problems: list[str] = field(default_factory=list)
    #: One of the four outcomes (set once everything is checked).
    outcome: str = PENDING


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
    version: int = 1
    #: Why the chain could not be asked (the endpoint's error), when it could not.
    chain_error: str | None = None
    #: "complete as of tree size N, anchored at T", or why completeness is not proven.
    completeness: str = "completeness not proven"
    complete: bool = False
    #: Whether the bundle's signed checkpoint was checked against a verifier key.
    checkpoint: str = "no signed checkpoint in the bundle"
    #: A range bundle's part of the history: (from_seq, to_seq, of); ``None`` for a whole one.
    range: tuple[int, int, int] | None = None

    @property
    def scope(self) -> str:
        """What the bundle holds: "the whole history", or "events N..M of a history of K"."""
        if self.range is None:
            return "the whole history"
        first, last, of = self.range
        return f"events {first}..{last} of a history of {of:,}"

    @property
    def valid(self) -> bool:
        return not self.failures

    @property
    def outcome(self) -> str:
        """verified / invalid / not checked / pending, for the bundle as a whole."""
        if self.failures:
            return INVALID
        if not any(e.tree_size is not None for e in self.events):
            return PENDING
        return VERIFIED if self.chain_checked and self.chain_error is None else NOT_CHECKED

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "outcome": self.outcome,
            "format": f"tenderproof-bundle/{self.version}",
            "origin": self.origin,
            "ocid": self.ocid,
            "completeness": {"complete": self.complete, "text": self.completeness},
            "range": None
            if self.range is None
            else {"from_seq": self.range[0], "to_seq": self.range[1], "of": self.range[2], "text": self.scope},
            "checkpoint": self.checkpoint,
            "chain": {
                "chain_id": self.chain_id,
                "contract": self.contract,
                "checked": self.chain_checked and self.chain_error is None,
                "error": self.chain_error,
            },
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
                    "officer": e.officer,
                    "withheld": e.withheld,
                    "withheld_fields": e.withheld_fields,
                    "outcome": e.outcome,
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


def payload_problem(event: BundleEvent) -> str | None:
    """Why ``event``'s (shown) payload is not the one its envelope binds, or ``None``: in version 1
    its RFC 8785 SHA-256 must be ``payload_sha256``; in version 2 the commitment recomputed from the
    payload (nulls at withheld fields) and its disclosure must be ``payload_commitment``."""
    env = event.envelope
    try:
        canonical_bytes(event.payload, field="payload")
    except LedgerError as exc:
        return f"payload has no canonical form: {exc}"
    try:
        bound = env.payload_binding(event.payload, disclosure=event.disclosure)
    except LedgerError as exc:
        return f"payload cannot be checked against its commitment: {exc}"
    if bound != env.payload_hash:
        if env.v == VERSION_1:
            return f"payload hashes to {bound}, the envelope says {env.payload_sha256}"
        return f"payload and disclosure commit to {bound}, the envelope says {env.payload_commitment}"
    return None


def _where(position: int, event: BundleEvent) -> str:
    return f"event seq {event.envelope.seq} (events[{position}])"


def verify_bundle(
    bundle: Bundle,
    *,
    chain: ChainReader | None = None,
    check_signature: SignatureCheck | None = None,
    check_checkpoint: Callable[[str, BundleAnchor], str] | None = None,
) -> Report:
    """Check everything the bundle claims; with ``chain``, also against the chain.

    Signed events are checked with ``check_signature`` (default: EIP-712 recovery with
    :func:`ledger.core.signing.verify_submission`), which returns the signer's address. The
    signed domain binds the log's origin; its chain id is the one the deployment signs with,
    which need not be the chain of this bundle's anchors when a log anchors to several. From
    version 2, the bundle carries each signer's registry events, checked here.

    ``check_checkpoint(note, anchor)``, when given, checks the bundle's signed checkpoint against
    the newest cited anchor and returns what it found (raising :class:`LedgerError` if it fails).

    A chain endpoint that cannot be asked leaves the report's ``chain_error`` set (outcome "not
    checked"); it does not raise.
    """
    c = _Checker(bundle)
    anchors = {a.tree_size: a for a in bundle.anchors}
    previous_leaf: bytes | None = None
    previous_index = -1
    first = 0 if bundle.range is None else bundle.range.from_seq
    if bundle.range is not None and bundle.range.before is not None:
        previous_leaf, previous_index = _check_before(c, bundle, bundle.range.before, anchors)
    for position, event in enumerate(bundle.events):
        env = event.envelope
        report = EventReport(seq=env.seq, type=env.type, index=event.index)
        c.reports.append(report)
        where = _where(position, event)
        if env.origin != bundle.origin:
            c.fail(where, f"envelope origin {env.origin!r} is not the bundle's {bundle.origin!r}", report)
        if env.ocid != bundle.ocid:
            c.fail(where, f"envelope ocid {env.ocid!r} is not the bundle's {bundle.ocid!r}", report)
        if env.seq != first + position:
            start = "from 0" if bundle.range is None else f"from seq {first} (the range)"
            c.fail(where, f"expected seq {first + position}: the history must be complete and in order {start}", report)
        expected_prev = None if previous_leaf is None else previous_leaf.hex()
        if (position > 0 or first > 0) and env.prev != expected_prev:
            before = "the event before" if position > 0 else "range.before, the event before the range"
            c.fail(where, f"prev {env.prev} is not the leaf hash of {before} ({expected_prev})", report)
        # Payload and envelope hashes.
        if event.payload is None:
            report.withheld = _withheld_text(event.withheld)
            if bundle.version < 2 and isinstance(event.withheld, dict):
                c.fail(where, "names a withholding order, which only a tenderproof-bundle/2 carries (proven)", report)
            elif bundle.version >= 2 and env.v == VERSION_2 and isinstance(event.withheld, str):
                # docs/spec.md §9.1: a version 2 entry's payload is left out only under an order of
                # the log (a reason alone is for version 1 entries whose stored bytes cannot be read)
                c.fail(where, f"payload left out without a withholding order of this log: {event.withheld}", report)
        else:
            problem = payload_problem(event)
            if problem is not None:
                c.fail(where, problem, report)
            elif event.disclosure is not None:
                report.withheld_fields = withheld_fields(event.disclosure)
        leaf, _ = _check_leaf(c, where, event, report)
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
        report.tree_size = event.inclusion.tree_size
        if (anchor := anchors.get(report.tree_size)) is not None:
            report.block_number, report.block_timestamp, report.tx_hash = (
                anchor.block_number,
                anchor.block_timestamp,
                anchor.tx_hash,
            )
        _check_included(c, where, event, leaf, anchors, report, unknown="which no anchor in the bundle has")
    _check_anchors(c, bundle)
    result = Report(
        origin=bundle.origin,
        ocid=bundle.ocid,
        chain_id=bundle.chain_id,
        contract=bundle.contract,
        chain_checked=chain is not None,
        events=c.reports,
        failures=c.failures,
        version=bundle.version,
        range=None if bundle.range is None else (bundle.range.from_seq, bundle.range.to_seq, bundle.range.of),
    )
    if not bundle.events:
        c.fail("events", "a bundle with no events proves no history (the server never hands one out)")
    cited = max((a.tree_size for a in bundle.anchors), default=0)
    _no_escape(c, bundle, cited, "a tree size the bundle cites as anchored")
    if check_checkpoint is not None and bundle.checkpoint is None:
        c.fail("checkpoint", "a log key or witness policy was given, but the bundle carries no signed checkpoint")
    if bundle.version >= 2:
        _check_completeness(c, bundle, result)
        _check_officers(c, bundle, anchors)
        _check_orders(c, bundle, anchors)
        if bundle.checkpoint is not None:
            if not bundle.anchors:
                c.fail("checkpoint", "there is no anchor to compare the signed checkpoint with")
            elif check_checkpoint is None:
                if _checkpoint_matches(c, bundle.checkpoint, bundle.origin, bundle.anchors[-1]):
                    result.checkpoint = (
                        "signed checkpoint matches the newest anchor; its signature was NOT checked (no --log-key)"
                    )
            else:
                try:
                    result.checkpoint = check_checkpoint(bundle.checkpoint, bundle.anchors[-1])
                except LedgerError as exc:
                    c.fail("checkpoint", str(exc))
    if chain is not None:
        try:
            _check_chain(c, bundle, chain)
        except ChainUnavailableError as exc:
            result.chain_error = str(exc)
    _outcomes(c, result)
    return result


def _check_before(
    c: _Checker, bundle: Bundle, before: BundleEvent, anchors: dict[int, BundleAnchor]
) -> tuple[bytes, int]:
    """A range bundle's event before the range (docs/spec.md §15.3): this tender's seq
    ``from_seq - 1``, its envelope hashing to its leaf hash, included where it says; returns
    its leaf hash (the first event's ``prev``) and its log index (-1 if none)."""
    assert bundle.range is not None
    where, env = "range.before", before.envelope
    wanted = bundle.range.from_seq - 1
    if (env.origin, env.ocid, env.seq) != (bundle.origin, bundle.ocid, wanted):
        c.fail(
            where,
            f"is seq {env.seq} of {env.ocid!r} in {env.origin!r}, expected seq {wanted} of {bundle.ocid!r} in "
            f"{bundle.origin!r}",
        )
    leaf, _ = _check_leaf(c, where, before)
    cited = max(anchors, default=0)
    if before.inclusion is None:
        if before.index is not None and before.index < cited:
            c.fail(where, f"log index {before.index} lies below a cited anchored size ({cited}), yet it has no proof")
    else:
        _check_included(c, where, before, leaf, anchors, unknown="which no anchor has")
    return leaf, -1 if before.index is None else before.index


def _check_leaf(c: _Checker, where: str, entry: BundleEvent, report: EventReport | None = None) -> tuple[bytes, bool]:
    """docs/spec.md §10 step 4 for one entry (an event, the event before a range, an officers' or
    orders' entry): its envelope's leaf hash, recomputed (what the later checks use, never the
    bundle's word), and whether it is the bundle's ``leaf_hash``; a failure at ``where`` (and in
    ``report``) when not."""
    leaf = entry.envelope.leaf_hash()
    if leaf != entry.leaf_hash:
        c.fail(where, f"envelope hashes to leaf {leaf.hex()}, the bundle says {entry.leaf_hash.hex()}", report)
        return leaf, False
    return leaf, True


def _check_included(
    c: _Checker,
    where: str,
    entry: BundleEvent,
    leaf: bytes,
    anchors: dict[int, BundleAnchor],
    report: EventReport | None = None,
    *,
    unknown: str,
) -> bool:
    """docs/spec.md §10 step 7 for one entry (an event, the event before a range, an officers' or
    orders' entry): its inclusion proof is for the tree size of an anchor the bundle cites, and its
    path leads from ``leaf`` to that anchor's root. The one place this is checked, so that every
    entry the verifier relies on is held to the same proof. Records a failure at ``where`` (and in ``report``) and
    returns False when it does not hold; ``unknown`` ends the message for a tree size no anchor has.

    Requires ``entry.inclusion``, and so ``entry.index`` (the bundle loader requires it with one).
    """
    assert entry.inclusion is not None and entry.index is not None
    size = entry.inclusion.tree_size
    anchor = anchors.get(size)
    if anchor is None:
        c.fail(where, f"its inclusion proof is for tree size {size}, {unknown}", report)
        return False
    try:
        verify.verify_inclusion(entry.index, size, leaf, entry.inclusion.path, anchor.root_hash)
    except LedgerError as exc:
        c.fail(where, f"inclusion in tree size {size}: {exc}", report)
        return False
    return True


def _check_relied_on(
    c: _Checker, where: str, entry: BundleEvent, leaf: bytes, anchors: dict[int, BundleAnchor]
) -> bool:
    """An officers' or orders' entry the verifier relies on is proven into the log: included in a
    cited anchor or, without an inclusion proof, logged after the newest cited anchor (which would
    otherwise have to include it). Records a failure at ``where`` and returns False when not.
    Requires ``entry.index``."""
    assert entry.index is not None
    newest = max(anchors, default=0)
    if entry.inclusion is not None:
        return _check_included(c, where, entry, leaf, anchors, unknown="no anchor has it")
    if entry.index < newest:
        c.fail(where, f"log index {entry.index} lies below the anchored tree size {newest}, yet no inclusion proof")
        return False
    return True


def _checkpoint_matches(c: _Checker, note: str, origin: str, anchor: BundleAnchor) -> bool:
    """Rule 7 of docs/spec.md §15.2 without a key: the signed note's checkpoint (the text before its
    blank line) names this log, and the size and root of the newest cited anchor."""
    body, sep, _ = note.partition("\n\n")
    try:
        if not sep:
            raise FormatError("checkpoint", "a signed note has a blank line between its text and its signatures")
        cp = Checkpoint.from_text(body + "\n")
    except LedgerError as exc:
        c.fail("checkpoint", f"not a signed checkpoint: {exc}")
        return False
    if (cp.origin, cp.size, cp.root) != (origin, anchor.tree_size, anchor.root_hash):
        c.fail(
            "checkpoint",
            f"the signed checkpoint is ({cp.origin}, {cp.size}, {cp.root.hex()}), the newest anchor is "
            f"({origin}, {anchor.tree_size}, {anchor.root_hash.hex()})",
        )
        return False
    return True


def _outcomes(c: _Checker, report: Report) -> None:
    """Each event's outcome, once every check ran."""
    chain_ok = report.chain_checked and report.chain_error is None
    bad_anchors = {f.where for f in c.failures if f.where.startswith("anchor of tree size ")}
    for e in report.events:
        if e.tree_size is not None and f"anchor of tree size {e.tree_size}" in bad_anchors:
            e.status = "invalid"
            e.problems.append(f"the chain contradicts the anchor of tree size {e.tree_size}")
        if e.status == "invalid":
            e.outcome = INVALID
        elif e.tree_size is None:
            e.outcome = PENDING
        else:
            e.outcome = VERIFIED if chain_ok else NOT_CHECKED


def _no_escape(c: _Checker, bundle: Bundle, size: int, what: str) -> None:
    """docs/spec.md §10 step 10 (rule 4 of §15.2): an event below ``size`` must carry an inclusion proof."""
    for position, event in enumerate(bundle.events):
        if event.inclusion is None and event.index is not None and event.index < size:
            c.fail(
                _where(position, event),
                f"log index {event.index} lies below {what} ({size}), yet the event carries no inclusion proof",
                c.reports[position],
            )


def _moment(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"Unix time {timestamp}"


def _check_completeness(c: _Checker, bundle: Bundle, report: Report) -> None:
    """Rules 1 to 3 of docs/spec.md §15."""
    proof = bundle.completeness
    if proof is None:
        report.completeness = "completeness not proven: no anchor the bundle cites ends with a heads commitment"
        if bundle.range is not None:
            report.completeness = f"not the complete history: {report.scope} (a range bundle); {report.completeness}"
        return
    where = "completeness"
    if not bundle.anchors:
        c.fail(where, "a completeness proof needs the anchor it is proven against")
        return
    newest = bundle.anchors[-1]
    n = newest.tree_size
    commitment = proof.commitment
    env = commitment.envelope
    failures = len(c.failures)
    if env.type != heads.HEADS_TYPE or env.ocid != heads.HEADS_OCID:
        c.fail(
            where, f"the commitment is a {env.type} event of {env.ocid}, not {heads.HEADS_TYPE} of {heads.HEADS_OCID}"
        )
    if env.origin != bundle.origin:
        c.fail(where, f"the commitment's origin {env.origin!r} is not the bundle's {bundle.origin!r}")
    payload = commitment.payload
    if payload is None:
        c.fail(where, "the commitment's payload is missing")
        return
    problem = payload_problem(commitment)
    if problem is not None:
        c.fail(where, f"the commitment's {problem}")
        if "no canonical form" in problem:
            return
    leaf = env.leaf_hash()
    if leaf != commitment.leaf_hash:
        c.fail(where, f"the commitment's envelope hashes to {leaf.hex()}, the bundle says {commitment.leaf_hash.hex()}")
    if commitment.index != n - 1:
        c.fail(where, f"the commitment is entry {commitment.index}, the newest anchor (tree size {n}) ends at {n - 1}")
    tree_size, root_hex = payload.get("tree_size"), payload.get("heads_root")
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size != n - 1:
        c.fail(where, f"the commitment covers tree size {tree_size!r}, expected {n - 1}")
    if not isinstance(root_hex, str) or not _HEX64.fullmatch(root_hex):
        c.fail(where, f"the commitment's heads_root {root_hex!r} is not 64 lowercase hex digits")
        return
    inclusion = commitment.inclusion
    if inclusion is None or inclusion.tree_size != n:
        c.fail(where, f"the commitment must be proven into the newest anchor (tree size {n})")
    else:
        try:
            verify.verify_inclusion(n - 1, n, leaf, inclusion.path, newest.root_hash)
        except LedgerError as exc:
            c.fail(where, f"the commitment's inclusion in tree size {n}: {exc}")
    try:
        heads.verify(
            bytes.fromhex(root_hex),
            heads.key(bundle.ocid),
            proof.head_size,
            proof.head_leaf_hash,
            proof.siblings,
            None if proof.other is None else heads.Leaf(proof.other.key, proof.other.size, proof.other.leaf_hash),
        )
    except LedgerError as exc:
        c.fail(where, f"the tender's committed head does not lead to the heads root: {exc}")
    if len(c.failures) > failures:
        return
    if bundle.range is not None:
        _check_range_head(c, bundle, proof.head_size, proof.head_leaf_hash, n, report)
        return
    # Rule 3: the events below the commitment are exactly the committed history.
    below = [(i, e) for i, e in enumerate(bundle.events) if e.index is not None and e.index < n - 1]
    shown = len(below)
    if shown != proof.head_size or any(e.envelope.seq != i for i, (_, e) in enumerate(below)):
        last = below[-1][1].envelope.seq if below else None
        stops = "holds no event" if last is None else f"stops at seq {last}"
        c.fail(
            "history",
            f"history {stops} ({shown} events below tree size {n - 1}), the log committed {proof.head_size} events "
            f"as of tree size {n}",
        )
        return
    if below and below[-1][1].leaf_hash != proof.head_leaf_hash:
        c.fail("history", "the committed head is not the bundle's last anchored event")
        return
    report.complete = True
    report.completeness = f"complete as of tree size {n}, anchored at {_moment(newest.block_timestamp)}"


def _check_range_head(
    c: _Checker, bundle: Bundle, head_size: int, head_leaf: bytes | None, n: int, report: Report
) -> None:
    """Rule 3 for a range bundle (docs/spec.md §15.3): within the range, the events below the
    commitment are exactly those with ``seq`` below the committed head's size, and the committed
    head, when in the range (or the event before it), is that event. Never a complete history."""
    assert bundle.range is not None
    first, last, of = bundle.range.from_seq, bundle.range.to_seq, bundle.range.of
    if head_size > of:
        c.fail("range.of", f"the log committed {head_size} events as of tree size {n}, the range says {of} in all")
        return
    for position, event in enumerate(bundle.events):
        committed = event.envelope.seq < head_size
        below = event.index is not None and event.index < n - 1
        if committed != below:
            c.fail(
                _where(position, event),
                f"the log committed {head_size} events as of tree size {n}, yet this event is "
                + ("not among them" if committed else "below the commitment"),
                c.reports[position],
            )
            return
    head = head_size - 1
    holder = bundle.range.before if head == first - 1 else None
    if first <= head <= last:
        holder = bundle.events[head - first]
    if holder is not None and holder.leaf_hash != head_leaf:
        c.fail("history", f"the committed head (seq {head}) is not the bundle's event of that seq")
        return
    report.completeness = (
        f"not the complete history: {report.scope} (a range bundle); the log committed {head_size:,} events as of "
        f"tree size {n}, anchored at {_moment(bundle.anchors[-1].block_timestamp)}"
    )


def _check_officers(c: _Checker, bundle: Bundle, anchors: dict[int, BundleAnchor]) -> None:
    """Rule 5 of docs/spec.md §15: every signer was registered, and not revoked, before signing."""
    registry: dict[str, list[tuple[int, str, BundleEvent]]] = {}
    for i, event in enumerate(bundle.officers):
        where = f"officers[{i}]"
        env = event.envelope
        ok = True
        if env.ocid != REGISTRY_OCID or env.type not in ("officer.registered", "officer.revoked"):
            c.fail(where, f"is a {env.type} event of {env.ocid}, not an officers' registry event")
            continue
        if env.origin != bundle.origin:
            c.fail(where, f"origin {env.origin!r} is not the bundle's {bundle.origin!r}")
            ok = False
        payload = event.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("address"), str):
            c.fail(where, "the registry event's payload (with the officer's address) is missing")
            continue
        problem = payload_problem(event)
        if problem is not None:
            c.fail(where, problem)
            if "no canonical form" in problem:
                continue
            ok = False
        leaf, held = _check_leaf(c, where, event)
        if not held:
            ok = False
        if event.index is None:
            c.fail(where, "a registry event the verifier relies on must have its log index")
            continue
        if not _check_relied_on(c, where, event, leaf, anchors):
            ok = False
        if ok:
            registry.setdefault(payload["address"].lower(), []).append((event.index, env.type, event))
    for position, (event, report) in enumerate(zip(bundle.events, c.reports, strict=True)):
        if report.signer is None:
            continue
        where = _where(position, event)
        records = sorted(registry.get(report.signer.lower(), []), key=lambda r: r[0])
        at = event.index if event.index is not None else 2**64
        registered = [r for r in records if r[1] == "officer.registered" and r[0] < at]
        revoked = [r for r in records if r[1] == "officer.revoked" and r[0] < at]
        if not registered:
            later = [r for r in records if r[1] == "officer.registered"]
            why = (
                f"was registered only at log index {later[0][0]}, after this event (index {event.index})"
                if later
                else "is not a registered officer: the bundle carries no registry event registering them"
            )
            c.fail(where, f"signer {report.signer} {why}", report)
            continue
        if revoked and revoked[-1][0] > registered[-1][0]:
            c.fail(
                where,
                f"signer {report.signer} was revoked at log index {revoked[-1][0]}, before this event (index {event.index})",
                report,
            )
            continue
        payload = registered[-1][2].payload or {}
        name = str(payload.get("name", ""))
        role = payload.get("role")
        report.officer = f"{name} ({role})" if role else name


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
    latest = chain.latest_size(bundle.contract)
    _no_escape(c, bundle, latest, "the contract's latest anchored tree size")
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


def _withheld_text(withheld: str | dict[str, Any] | None) -> str | None:
    """How a withheld payload is reported: the bundle's reason, or its order."""
    if isinstance(withheld, dict):
        return f"withheld under order {withheld['reference']} (log index {withheld['order']})"
    return withheld


def _check_orders(c: _Checker, bundle: Bundle, anchors: dict[int, BundleAnchor]) -> None:
    """Withholding orders (docs/privacy.md): each order the bundle carries is an order of this log,
    hashes to its leaf and is included in an anchored tree; each event withheld under an order
    (whole, or fields of a v2 payload) names an order the bundle carries, which targets it."""
    orders: dict[int, dict[str, Any]] = {}
    for i, event in enumerate(bundle.orders):
        where = f"orders[{i}]"
        env = event.envelope
        if env.ocid != ORDERS_OCID or env.type != ORDER_TYPE or env.origin != bundle.origin:
            c.fail(where, f"is a {env.type} event of {env.ocid} ({env.origin}), not a withholding order of this log")
            continue
        if not isinstance(event.payload, dict) or event.index is None:
            c.fail(where, "a withholding order must carry its payload and log index")
            continue
        problem = payload_problem(event)
        if problem is not None:
            c.fail(where, problem)
            continue
        leaf, held = _check_leaf(c, where, event)
        if not held:
            continue
        if not _check_relied_on(c, where, event, leaf, anchors):
            continue
        orders[event.index] = event.payload
    for position, (event, report) in enumerate(zip(bundle.events, c.reports, strict=True)):
        # order -> the fields it withheld (None: the whole payload; "earlier": fields it names)
        named: dict[int, list[str] | str | None] = {}
        claimed: dict[int, str] = {}  # order -> the reference the bundle gives it
        if isinstance(event.withheld, dict):
            named[int(event.withheld["order"])] = None
            claimed[int(event.withheld["order"])] = event.withheld["reference"]
            for cited in event.withheld.get("earlier") or []:
                named[int(cited["order"])] = "earlier"
                claimed[int(cited["order"])] = cited["reference"]
        for pointer, order in (report.withheld_fields or {}).items():
            fields = named.setdefault(order, [])
            assert isinstance(fields, list)
            fields.append(pointer)
        for order_index, fields in named.items():
            where = _where(position, event)
            carried = orders.get(order_index)
            if carried is None:
                c.fail(
                    where,
                    f"withheld under the order at log index {order_index}, which the bundle does not carry (proven)",
                    report,
                )
                continue
            if order_index in claimed and carried.get("reference") != claimed[order_index]:
                c.fail(
                    where,
                    f"names order reference {claimed[order_index]!r}, the order says {carried.get('reference')!r}",
                    report,
                )
            targets = [t for t in carried.get("targets", []) if isinstance(t, dict) and t.get("index") == event.index]
            if fields is None:
                ok = any("fields" not in t for t in targets)
            elif fields == "earlier":  # withheld whole since: the fields are those the order names
                pointers = [p for t in targets if isinstance(t.get("fields"), list) for p in t["fields"]]
                ok = bool(pointers) and (event.index is None or order_index > event.index)
                if ok:  # a field an earlier order withheld first stays reported under it
                    report.withheld_fields = {
                        **{str(p): order_index for p in pointers},
                        **(report.withheld_fields or {}),
                    }
            else:
                ok = any(set(fields) <= set(t.get("fields") or []) for t in targets)
            if not ok:
                what = "its payload" if fields is None else "fields" if fields == "earlier" else ", ".join(fields)
                c.fail(
                    where,
                    f"the order at log index {order_index} does not withhold {what} of log index {event.index}",
                    report,
                )
