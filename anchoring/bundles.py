"""Build a tender's proof bundle (``tenderproof-bundle/1``, docs/spec.md §9) from the database.

Each integrated event is proven against the *first* final anchor that covers it (the earliest
moment the chain vouches for it); the bundle carries those anchors and the consistency proofs
that link them, oldest to newest. Events not yet covered by a final anchor are ``pending``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import pairwise

from sqlalchemy import Engine, select

from anchoring.schema import anchor_targets, anchors
from ledger.core.bundle import Bundle, BundleAnchor, BundleEvent, ConsistencyLink, Inclusion
from ledger.core.errors import InvariantError, NotFoundError
from ledger.log import Log
from ledger.store.db import read_transaction


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
    """The final anchors of the newest target (contract on a chain instance) named ``chain``."""
    with read_transaction(engine) as conn:
        target = conn.execute(
            select(anchor_targets).where(anchor_targets.c.chain == chain).order_by(anchor_targets.c.id.desc()).limit(1)
        ).first()
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


def build_bundle(log: Log, ocid: str, target: ChainTarget) -> Bundle:
    """The proof bundle of tender ``ocid`` against ``target``'s final anchors."""
    reader = log.reader
    stored = reader.tender_events(ocid)
    sizes = [a.tree_size for a in target.anchors]
    used: dict[int, AnchorRecord] = {}
    events = []
    for event in stored:
        inclusion = None
        if event.index is not None and (at := bisect.bisect_right(sizes, event.index)) < len(sizes):
            anchor = target.anchors[at]
            used[anchor.tree_size] = anchor
            path = reader.inclusion_proof(event.index, anchor.tree_size)
            inclusion = Inclusion(tree_size=anchor.tree_size, path=tuple(path))
        events.append(
            BundleEvent(
                index=event.index,
                envelope=event.parsed_envelope,
                payload=event.parsed_payload,
                withheld=None,
                leaf_hash=event.leaf_hash,
                inclusion=inclusion,
            )
        )
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
    )
