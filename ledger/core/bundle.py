"""The proof bundle an auditor downloads: ``tenderproof-bundle/1`` (docs/spec.md §9).

This module fixes the document's shape: :func:`load_bundle` parses and checks
the structure (and refuses any other ``format``), :meth:`Bundle.to_json` writes
it back byte-for-byte equivalent. Checking that the proofs *hold* is the
verifier's job; it uses :mod:`ledger.core.verify` on what this module parses.

Encodings: hashes are 64 lowercase hex digits without ``0x``; Ethereum values
(contract address, transaction hash) keep their usual ``0x`` form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from .envelope import Envelope, check_ocid
from .errors import FormatError, InvalidArgumentError
from .merkle import HASH_SIZE

BUNDLE_FORMAT = "tenderproof-bundle/1"

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_HASH = re.compile(r"0x[0-9a-f]{64}")


def _hash(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise FormatError(field, f"must be {HASH_SIZE * 2} lowercase hex digits, got {value!r}")
    return bytes.fromhex(value)


def _uint(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(field, f"must be an integer >= 0, got {value!r}")
    return value


def _obj(value: Any, field: str, keys: set[str], optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    if not isinstance(value, dict):
        raise FormatError(field, f"must be a JSON object, got {type(value).__name__}")
    missing = sorted(keys - set(value))
    if missing:
        raise FormatError(f"{field}.{missing[0]}", "missing")
    unknown = sorted(set(value) - keys - optional)
    if unknown:
        raise FormatError(f"{field}.{unknown[0]}", "unknown field")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise FormatError(field, f"must be a JSON array, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Inclusion:
    tree_size: int
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleEvent:
    index: int | None
    envelope: Envelope
    payload: dict[str, Any] | None
    withheld: str | None
    leaf_hash: bytes
    inclusion: Inclusion | None

    @property
    def status(self) -> Literal["anchored", "pending"]:
        return "pending" if self.inclusion is None else "anchored"

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "index": self.index,
            "envelope": self.envelope.to_json(),
            "payload": self.payload,
            "leaf_hash": self.leaf_hash.hex(),
            "status": self.status,
            "inclusion": None
            if self.inclusion is None
            else {"tree_size": self.inclusion.tree_size, "path": [p.hex() for p in self.inclusion.path]},
        }
        if self.withheld is not None:
            obj["withheld"] = self.withheld
        return obj


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleAnchor:
    tree_size: int
    root_hash: bytes
    tx_hash: str
    block_number: int
    block_timestamp: int

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_timestamp": self.block_timestamp,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsistencyLink:
    from_size: int
    to_size: int
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"from_size": self.from_size, "to_size": self.to_size, "path": [p.hex() for p in self.path]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    origin: str
    ocid: str
    chain_id: int
    contract: str
    events: tuple[BundleEvent, ...]
    anchors: tuple[BundleAnchor, ...]
    consistency: tuple[ConsistencyLink, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "origin": self.origin,
            "ocid": self.ocid,
            "chain": {"chain_id": self.chain_id, "contract": self.contract},
            "events": [e.to_json() for e in self.events],
            "anchors": [a.to_json() for a in self.anchors],
            "consistency": [c.to_json() for c in self.consistency],
        }


def load_bundle(obj: Any) -> Bundle:
    """Parse a bundle document. Raises :class:`FormatError` naming the bad field.

    Refuses any ``format`` other than ``tenderproof-bundle/1``.
    """
    if not isinstance(obj, dict):
        raise FormatError("bundle", f"must be a JSON object, got {type(obj).__name__}")
    if obj.get("format") != BUNDLE_FORMAT:
        raise FormatError("format", f"unsupported bundle format {obj.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    doc = _obj(obj, "bundle", {"format", "origin", "ocid", "chain", "events", "anchors", "consistency"})
    if not isinstance(doc["origin"], str) or not doc["origin"]:
        raise FormatError("origin", f"must be a non-empty string, got {doc['origin']!r}")
    try:
        check_ocid(doc["ocid"], recorded=True)
    except InvalidArgumentError as exc:
        raise FormatError("ocid", exc.reason) from exc
    chain = _obj(doc["chain"], "chain", {"chain_id", "contract"})
    if not isinstance(chain["contract"], str) or not _ADDRESS.fullmatch(chain["contract"]):
        raise FormatError("chain.contract", f"must be a 0x-prefixed 20-byte address, got {chain['contract']!r}")
    events = tuple(_load_event(e, f"events[{i}]") for i, e in enumerate(_list(doc["events"], "events")))
    anchors = tuple(_load_anchor(a, f"anchors[{i}]") for i, a in enumerate(_list(doc["anchors"], "anchors")))
    links = tuple(_load_link(c, f"consistency[{i}]") for i, c in enumerate(_list(doc["consistency"], "consistency")))
    return Bundle(
        origin=doc["origin"],
        ocid=doc["ocid"],
        chain_id=_uint(chain["chain_id"], "chain.chain_id"),
        contract=chain["contract"],
        events=events,
        anchors=anchors,
        consistency=links,
    )


def _load_event(value: Any, field: str) -> BundleEvent:
    e = _obj(value, field, {"index", "envelope", "payload", "leaf_hash", "status", "inclusion"}, {"withheld"})
    try:
        envelope = Envelope.from_json(e["envelope"])
    except InvalidArgumentError as exc:
        raise FormatError(f"{field}.{exc.field}", exc.reason) from exc
    payload, withheld = e["payload"], e.get("withheld")
    if payload is None:
        if not isinstance(withheld, str) or not withheld:
            raise FormatError(f"{field}.withheld", "a null payload needs a non-empty withheld reason")
    elif not isinstance(payload, dict):
        raise FormatError(f"{field}.payload", f"must be a JSON object or null, got {type(payload).__name__}")
    elif withheld is not None:
        raise FormatError(f"{field}.withheld", "only a withheld (null) payload has a reason")
    inclusion = None
    if e["inclusion"] is not None:
        inc = _obj(e["inclusion"], f"{field}.inclusion", {"tree_size", "path"})
        inclusion = Inclusion(
            tree_size=_uint(inc["tree_size"], f"{field}.inclusion.tree_size"),
            path=tuple(
                _hash(p, f"{field}.inclusion.path[{j}]")
                for j, p in enumerate(_list(inc["path"], f"{field}.inclusion.path"))
            ),
        )
    status = "pending" if inclusion is None else "anchored"
    if e["status"] != status:
        raise FormatError(
            f"{field}.status",
            f"must be {status!r} for an event with{'out' if inclusion is None else ''} an inclusion proof, got {e['status']!r}",
        )
    index = None if e["index"] is None else _uint(e["index"], f"{field}.index")
    if inclusion is not None and index is None:
        raise FormatError(f"{field}.index", "an anchored event needs its log index")
    return BundleEvent(
        index=index,
        envelope=envelope,
        payload=payload,
        withheld=withheld,
        leaf_hash=_hash(e["leaf_hash"], f"{field}.leaf_hash"),
        inclusion=inclusion,
    )


def _load_anchor(value: Any, field: str) -> BundleAnchor:
    a = _obj(value, field, {"tree_size", "root_hash", "tx_hash", "block_number", "block_timestamp"})
    if not isinstance(a["tx_hash"], str) or not _TX_HASH.fullmatch(a["tx_hash"]):
        raise FormatError(f"{field}.tx_hash", f"must be a 0x-prefixed 32-byte lowercase hex hash, got {a['tx_hash']!r}")
    return BundleAnchor(
        tree_size=_uint(a["tree_size"], f"{field}.tree_size"),
        root_hash=_hash(a["root_hash"], f"{field}.root_hash"),
        tx_hash=a["tx_hash"],
        block_number=_uint(a["block_number"], f"{field}.block_number"),
        block_timestamp=_uint(a["block_timestamp"], f"{field}.block_timestamp"),
    )


def _load_link(value: Any, field: str) -> ConsistencyLink:
    c = _obj(value, field, {"from_size", "to_size", "path"})
    return ConsistencyLink(
        from_size=_uint(c["from_size"], f"{field}.from_size"),
        to_size=_uint(c["to_size"], f"{field}.to_size"),
        path=tuple(_hash(p, f"{field}.path[{j}]") for j, p in enumerate(_list(c["path"], f"{field}.path"))),
    )
