"""Synthetic ``tenderproof-bundle/2`` documents for the browser's v2 checks (docs/spec.md §14-15),
built from a recorded ledger's real entries with the project's own primitives (ledger.core.heads,
merkle, proof): the log's first ``M`` entries, then the heads commitment at index ``M``, one anchor
of size ``M + 1`` (not on any chain: the browser is run without one, so "not checked", and the
checks of the bundle itself decide), and the mutations of issue 15."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ledger.core import heads, merkle
from ledger.core import proof as proofs
from ledger.core.canonical import canonical_bytes

REGISTRY_OCID = "ocds-tpreg0-officers"


@dataclass
class Entry:
    ocid: str
    envelope: dict[str, Any]
    payload: Any
    leaf: bytes
    #: An envelope v2 entry's disclosure (docs/spec.md §2.5), served beside its payload.
    disclosure: Any = None


def _leaf(envelope: dict[str, Any]) -> bytes:
    return merkle.leaf_hash(canonical_bytes(envelope))


def entries_of(stored: list[Any]) -> list[Entry]:
    return [
        Entry(e.ocid, json.loads(e.envelope), json.loads(e.payload), e.leaf_hash, e.parsed_disclosure) for e in stored
    ]


def revoke_after_registration(entries: list[Entry], address: str) -> list[Entry]:
    """``entries`` with an ``officer.revoked`` of ``address`` right after its registration."""
    at = next(
        i
        for i, e in enumerate(entries)
        if e.envelope["type"] == "officer.registered" and e.payload["address"].lower() == address.lower()
    )
    assert not any(e.ocid == REGISTRY_OCID for e in entries[at + 1 :]), "later registry entries to re-chain"
    registered = entries[at]
    payload = {"address": address, "reason": "left the office"}
    envelope = {
        **{k: v for k, v in registered.envelope.items() if k != "payload_commitment"},
        "v": 1,  # made here without a disclosure: a bare hash
        "seq": registered.envelope["seq"] + 1,
        "prev": registered.leaf.hex(),
        "type": "officer.revoked",
        "payload_sha256": hashlib.sha256(canonical_bytes(payload)).hexdigest(),
    }
    return [*entries[: at + 1], Entry(REGISTRY_OCID, envelope, payload, _leaf(envelope)), *entries[at + 1 :]]


def _commitment(entries: list[Entry], origin: str, seq: int = 0, prev: str | None = None) -> Entry:
    leaves = heads.heads_map((e.ocid, e.leaf) for e in entries)
    payload = {"tree_size": len(entries), "heads_root": heads.root(leaves.values()).hex(), "tenders": len(leaves)}
    envelope = {
        "v": 1,
        "origin": origin,
        "ocid": heads.HEADS_OCID,
        "seq": seq,
        "prev": prev,
        "type": "log.heads",
        "recorded_at": "2026-12-01T00:00:00.000000Z",
        "payload_sha256": hashlib.sha256(canonical_bytes(payload)).hexdigest(),
    }
    return Entry(heads.HEADS_OCID, envelope, payload, _leaf(envelope))


def _path(leaves: list[bytes], index: int, size: int) -> list[str]:
    ranges = proofs.inclusion_ranges(index, size)
    return [merkle.root_from_leaf_hashes(leaves[lo:hi]).hex() for lo, hi in ranges]


def _event(entries: list[Entry], leaves: list[bytes], index: int, size: int) -> dict[str, Any]:
    e = entries[index]
    return {
        "index": index,
        "envelope": e.envelope,
        "payload": e.payload,
        "leaf_hash": e.leaf.hex(),
        "status": "anchored",
        "inclusion": {"tree_size": size, "path": _path(leaves, index, size)},
    } | ({} if e.disclosure is None else {"disclosure": e.disclosure})


def build(entries: list[Entry], ocid: str, origin: str, chain: dict[str, Any]) -> dict[str, Any]:
    """The v2 bundle of ``ocid`` over ``entries`` followed by their commitment, anchored at M + 1."""
    log = [*entries, _commitment(entries, origin)]
    n = len(log)
    leaves = [e.leaf for e in log]
    tree = heads.MemoryTree()
    tree.apply(heads.heads_map((e.ocid, e.leaf) for e in entries).values())
    found = tree.prove(0, heads.key(ocid))
    events = [_event(log, leaves, i, n) for i, e in enumerate(entries) if e.ocid == ocid]
    signers = {e["envelope"]["submission"]["officer"].lower() for e in events if e["envelope"].get("signature")}
    officers = [
        _event(log, leaves, i, n)
        for i, e in enumerate(entries)
        if e.ocid == REGISTRY_OCID and e.payload["address"].lower() in signers
    ]
    return {
        "format": "tenderproof-bundle/2",
        "origin": origin,
        "ocid": ocid,
        "chain": chain,
        "events": events,
        "anchors": [
            {
                "tree_size": n,
                "root_hash": merkle.root_from_leaf_hashes(leaves).hex(),
                "tx_hash": "0x" + "ab" * 32,
                "block_number": 7,
                "block_timestamp": 1_795_600_000,
            }
        ],
        "consistency": [],
        "completeness": {
            "commitment": {**_event(log, leaves, n - 1, n), "status": None},
            "head": {
                "size": found.leaf.size if found.leaf else 0,
                "leaf_hash": found.leaf.head.hex() if found.leaf else None,
            },
            "siblings": [s.hex() for s in found.siblings],
            "other": None
            if found.other is None
            else {"key": found.other.key.hex(), "size": found.other.size, "leaf_hash": found.other.head.hex()},
        },
        "officers": officers,
        "checkpoint": None,
    }


def note_body(bundle: dict[str, Any]) -> str:
    """The tlog-checkpoint body of the bundle's newest anchor."""
    import base64

    anchor = bundle["anchors"][-1]
    root = base64.b64encode(bytes.fromhex(anchor["root_hash"])).decode()
    return f"{bundle['origin']}\n{anchor['tree_size']}\n{root}\n"


def mutated(bundle: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(bundle)
