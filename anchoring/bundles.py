"""Build a tender's proof bundle (``tenderproof-bundle/2``, docs/spec.md §15; ``/1`` on request,
§9) from the database.

Each integrated event is proven against the *first* final anchor that covers it (the earliest
moment the chain vouches for it); the bundle carries those anchors and the consistency proofs
that link them, oldest to newest. Events not yet covered by a final anchor are ``pending``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine, select

from anchoring import store
from anchoring.schema import anchors
from ledger.core import heads
from ledger.core.bundle import (
    Bundle,
    BundleAnchor,
    BundleEvent,
    CommittedHead,
    Completeness,
    ConsistencyLink,
    Inclusion,
    Range,
)
from ledger.core.checkpoint import Checkpoint
from ledger.core.commitment import withheld_fields
from ledger.core.envelope import VERSION_2
from ledger.core.errors import InvalidArgumentError, InvariantError, NotFoundError
from ledger.core.note import Signer
from ledger.log import Log
from ledger.procurement import withholding
from ledger.procurement.officers import ORDERS_OCID, REGISTRY_OCID
from ledger.store import heads as heads_store
from ledger.store.db import read_transaction
from ledger.store.reader import LogReader, StoredEvent

#: How a bundle says it leaves out a stored payload it cannot carry (nested deeper than readers
#: parse, recorded before input was bounded): the entry still verifies, through the envelope's
#: ``payload_sha256`` and its inclusion proof; the stored bytes are served by the entries API.
NOT_CARRIED = "not carried, the stored payload cannot be read back as JSON"


@dataclass(frozen=True, slots=True)
class AnchorRecord:
    tree_size: int
    root: bytes
    tx_hash: bytes
    block_number: int
    block_timestamp: int


@dataclass(frozen=True, slots=True)
class ChainTarget:
    chain: str
    chain_id: int
    contract: str
    anchors: tuple[AnchorRecord, ...]


def final_anchors(engine: Engine, chain: str) -> ChainTarget:
    """The final anchors of the target (contract on a chain instance) ``chain`` anchors to now."""
    with read_transaction(engine) as conn:
        target = conn.execute(store.current_target(chain)).first()
        if target is None:
            raise NotFoundError(f"nothing anchored on chain {chain!r} yet")
        rows = conn.execute(
            select(anchors)
            .where(anchors.c.target_id == target.id, anchors.c.status == "final")
            .order_by(anchors.c.tree_size)
        ).all()
    records = tuple(
        AnchorRecord(r.tree_size, bytes(r.root), bytes(r.tx_hash), r.block_number, r.block_timestamp) for r in rows
    )
    return ChainTarget(chain, target.chain_id, target.contract, records)


#: The most events one bundle carries: a larger history is served in range bundles (§15.3), so
#: that building one takes memory bounded by this, whatever the tender's size.
MAX_BUNDLE_EVENTS = 1_000
#: Why a range bundle's ``before`` event has no payload.
OUTSIDE_RANGE = "outside the range: only its leaf hash and inclusion are needed"


def build_bundle(
    log: Log,
    ocid: str,
    target: ChainTarget,
    *,
    version: int = 2,
    signer: Signer | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
    kept: Callable[[int, bytes], str | None] | None = None,
) -> Bundle:
    """The proof bundle of tender ``ocid`` against ``target``'s final anchors.

    Version 2 (docs/spec.md §15) also cites the newest final anchor, proves the tender's history
    whole as of it (when that anchored size ends with a heads commitment), and carries the
    registry events of every signer, and (with ``signer``, the log's key) the newest cited
    anchor's checkpoint as a signed note (a mirror, which holds no key, passes ``kept`` instead:
    the note the log published for a size and root, or None); version 1 (§9) is the earlier document.

    With ``from_seq`` or ``to_seq`` (version 2 only), a range bundle (§15.3): the events
    ``from_seq`` (default 0) to ``to_seq`` (default: as many as fit, up to the last), with the
    event before the range. Raises :class:`InvalidArgumentError` for a range outside the
    history or wider than :data:`MAX_BUNDLE_EVENTS`, and for a whole history longer than that.
    """
    if version not in (1, 2):
        raise InvalidArgumentError("format", f"bundle version must be 1 or 2, got {version}")
    reader = log.reader
    count, _ = reader.tender_head(ocid)
    part: Range | None = None
    before: StoredEvent | None = None
    if from_seq is None and to_seq is None:
        if count > MAX_BUNDLE_EVENTS:
            raise InvalidArgumentError(
                "query.to_seq",
                f"tender {ocid} has {count:,} events, more than the {MAX_BUNDLE_EVENTS:,} one bundle carries: "
                "ask for ranges of its history (from_seq, to_seq)",
            )
        stored = reader.tender_events(ocid)
    else:
        if version != 2:
            raise InvalidArgumentError("format", "range bundles are version 2 documents")
        first, last = _bounds(ocid, count, from_seq, to_seq)
        stored = reader.tender_events(ocid, from_seq=first, limit=last - first + 1)
        before = reader.tender_events(ocid, from_seq=first - 1, limit=1)[0] if first else None
        part = Range(from_seq=first, to_seq=last, of=count, before=None)
    sizes = [a.tree_size for a in target.anchors]
    used: dict[int, AnchorRecord] = {}

    def proven(event: StoredEvent) -> BundleEvent:
        inclusion = None
        if event.index is not None and (at := bisect.bisect_right(sizes, event.index)) < len(sizes):
            anchor = target.anchors[at]
            used[anchor.tree_size] = anchor
            inclusion = Inclusion(
                tree_size=anchor.tree_size, path=tuple(reader.inclusion_proof(event.index, anchor.tree_size))
            )
        payload, unreadable = event.readable_payload
        withheld: str | dict[str, Any] | None = None if unreadable is None else f"{NOT_CARRIED}: {unreadable}"
        if event.withheld_by is not None:
            reference = cite(event.withheld_by)
            if payload is None:
                cited: dict[str, Any] = {"order": event.withheld_by, "reference": reference}
                withheld = cited
                if event.index is not None and event.parsed_envelope.v == VERSION_2:
                    with read_transaction(log.engine) as conn:
                        earlier = withholding.earlier_orders(conn, event.index, event.withheld_by)
                    if earlier:  # orders that withheld fields of it before (docs/spec.md §15)
                        cited["earlier"] = [{"order": i, "reference": cite(i)} for i in earlier]
                if version == 1:
                    withheld = f"withheld under order {reference} (log index {event.withheld_by})"
            elif (disclosure := event.parsed_disclosure) is not None:  # each withheld field names its order
                for i in sorted(set(withheld_fields(disclosure).values())):
                    cite(i)
        return BundleEvent(
            index=event.index,
            envelope=event.parsed_envelope,
            payload=payload,
            withheld=withheld,
            leaf_hash=event.leaf_hash,
            inclusion=inclusion,
            disclosure=None if payload is None else event.parsed_disclosure,
        )

    order_events: dict[int, StoredEvent | None] = {}

    def cite(index: int) -> str:
        """The reference of the order at log index ``index``, which the bundle then carries."""
        if index not in order_events:
            order_events[index] = _order_event(reader, index)
        order = order_events[index]
        return str(order.parsed_payload.get("reference")) if order is not None else "?"

    events = [proven(event) for event in stored]
    if part is not None and before is not None:
        event = proven(before)
        hidden = BundleEvent(
            index=event.index, envelope=event.envelope, payload=None, withheld=OUTSIDE_RANGE,
            leaf_hash=event.leaf_hash, inclusion=event.inclusion,
        )  # fmt: skip
        part = Range(from_seq=part.from_seq, to_seq=part.to_seq, of=part.of, before=hidden)
    completeness = None
    signed = None
    officer_events: list[BundleEvent] = []
    orders: list[BundleEvent] = []
    if version == 2:
        if target.anchors:
            newest = target.anchors[-1]
            used[newest.tree_size] = newest
            completeness = _completeness(log, ocid, newest)
            if signer is not None:
                signed = signed_checkpoint(log, signer, Checkpoint(log.origin, newest.tree_size, newest.root))
            elif kept is not None:
                signed = kept(newest.tree_size, newest.root)
        officer_events = [proven(e) for e in _officer_events(reader, stored)]
        orders = [proven(e) for _, e in sorted(order_events.items()) if e is not None]
    chosen = [used[size] for size in sorted(used)]
    for anchor in chosen:
        if reader.root_at(anchor.tree_size) != anchor.root:
            raise InvariantError(f"anchor of tree size {anchor.tree_size} does not hold this log's root there")
    links = [
        ConsistencyLink(
            from_size=a.tree_size, to_size=b.tree_size, path=tuple(reader.consistency_proof(a.tree_size, b.tree_size))
        )
        for a, b in pairwise(chosen)
    ]
    return Bundle(
        origin=log.origin,
        ocid=ocid,
        chain_id=target.chain_id,
        contract=target.contract,
        events=tuple(events),
        anchors=tuple(
            BundleAnchor(
                tree_size=a.tree_size,
                root_hash=a.root,
                tx_hash="0x" + a.tx_hash.hex(),
                block_number=a.block_number,
                block_timestamp=a.block_timestamp,
            )
            for a in chosen
        ),
        consistency=tuple(links),
        version=version,
        completeness=completeness,
        officers=tuple(officer_events),
        checkpoint=signed,
        range=part,
        orders=tuple(orders),
    )


def _bounds(ocid: str, count: int, from_seq: int | None, to_seq: int | None) -> tuple[int, int]:
    """The first and last seq of a range bundle of tender ``ocid`` (``count`` events)."""
    first = from_seq or 0
    if first >= count:
        raise InvalidArgumentError(
            "query.from_seq", f"tender {ocid} has {count} events (seq 0 to {count - 1}), from_seq is {first}"
        )
    last = min(count - 1, first + MAX_BUNDLE_EVENTS - 1) if to_seq is None else to_seq
    if last < first:
        raise InvalidArgumentError("query.to_seq", f"must be at least from_seq ({first}), got {last}")
    if last >= count:
        raise InvalidArgumentError(
            "query.to_seq", f"tender {ocid} has {count} events (seq 0 to {count - 1}), to_seq is {last}"
        )
    if last - first + 1 > MAX_BUNDLE_EVENTS:
        raise InvalidArgumentError(
            "query.to_seq",
            f"a range bundle carries at most {MAX_BUNDLE_EVENTS:,} events, seq {first} to {last} is {last - first + 1:,}",
        )
    return first, last


def _completeness(log: Log, ocid: str, anchor: AnchorRecord) -> Completeness | None:
    """The proof of ``ocid``'s committed head as of ``anchor`` (None when the anchored size does
    not end with a heads commitment: anchored before this version)."""
    size = anchor.tree_size
    (entry,) = log.reader.entries(size - 1, size)
    if entry.ocid != heads.HEADS_OCID:
        return None
    with read_transaction(log.engine) as conn:
        proof = heads_store.prove(conn, entry.seq, heads.key(ocid))
    commitment = BundleEvent(
        index=size - 1,
        envelope=entry.parsed_envelope,
        payload=entry.parsed_payload,
        withheld=None,
        leaf_hash=entry.leaf_hash,
        inclusion=Inclusion(tree_size=size, path=tuple(log.reader.inclusion_proof(size - 1, size))),
    )
    other = None
    if proof.other is not None:
        other = CommittedHead(key=proof.other.key, size=proof.other.size, leaf_hash=proof.other.head)
    return Completeness(
        commitment=commitment,
        head_size=0 if proof.leaf is None else proof.leaf.size,
        head_leaf_hash=None if proof.leaf is None else proof.leaf.head,
        siblings=proof.siblings,
        other=other,
    )


def _order_event(reader: LogReader, index: int) -> StoredEvent | None:
    """The withholding order at log index ``index`` (None if the entry there is not one: only a
    tampered database says so, and the audit reports it)."""
    if index >= reader.tree_head().size:
        return None
    (entry,) = reader.entries(index, index + 1)
    return entry if entry.ocid == ORDERS_OCID and isinstance(entry.parsed_payload, dict) else None


def _officer_events(reader: LogReader, stored: list[StoredEvent]) -> list[StoredEvent]:
    """The registry events (registered, revoked) of every officer who signed one of ``stored``."""
    signers = set()
    for event in stored:
        submission = event.parsed_envelope.submission
        if submission is not None and isinstance(submission.get("officer"), str):
            signers.add(submission["officer"].lower())
    if not signers:
        return []
    try:
        registry = reader.tender_events(REGISTRY_OCID)
    except NotFoundError:
        return []
    return [
        e
        for e in registry
        if isinstance(e.parsed_payload, dict) and str(e.parsed_payload.get("address", "")).lower() in signers
    ]


def signed_checkpoint(log: Log, signer: Signer, checkpoint: Checkpoint) -> str:
    """The checkpoint as the publishing round kept it, with the witnesses' cosignatures
    (docs/spec.md §17), if it holds the current key's signature; else freshly signed (Ed25519
    signatures are deterministic: the same bytes each time). What bundles carry."""
    from ledger.core.errors import LedgerError
    from ledger.core.note import open_note

    from .cosigning import cosigned_note

    kept = cosigned_note(log.engine, checkpoint.size, checkpoint.root)
    if kept is not None:
        try:
            if open_note(kept, signer.verifier) == checkpoint.to_text():
                return kept
        except LedgerError:
            pass  # signed by an earlier key: sign afresh (without cosignatures)
    return signer.sign(checkpoint.to_text())
