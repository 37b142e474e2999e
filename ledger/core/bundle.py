"""The proof bundle an auditor downloads: ``tenderproof-bundle/2`` (docs/spec.md §15), and
``tenderproof-bundle/1`` (§9), which keeps loading.

This module fixes the document's shape: :func:`load_bundle` parses and checks
the structure (and refuses any other ``format``), :meth:`Bundle.to_json` writes
it back byte-for-byte equivalent. Checking that the proofs *hold* is the
verifier's job; it uses :mod:`ledger.core.verify` on what this module parses.

Encodings: hashes are 64 lowercase hex digits without ``0x``; Ethereum values
(contract address, transaction hash) keep their usual ``0x`` form.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from dataclasses import dataclass
from typing import Any, Literal

from .canonical import canonical_bytes, sha256_hex
from .commitment import withheld_fields
from .envelope import VERSION_1, Envelope, check_ocid
from .errors import FormatError, InvalidArgumentError
from .heads import EMPTY as _EMPTY
from .heads import HEADS_OCID, HEADS_TYPE
from .merkle import HASH_SIZE

#: Encodings of the ``completeness`` member of a bundle/2 (docs/spec.md §15.1): 1, the first
#: release's full form (no ``v``); 2, the compact form (``"v": 2``) the server writes.
COMPLETENESS_FULL = 1
COMPLETENESS_COMPACT = 2
#: An inclusion path into a tree of at most 2**63 leaves has at most 63 hashes.
_MAX_PATH = 63

BUNDLE_FORMAT_V1 = "tenderproof-bundle/1"
BUNDLE_FORMAT_V2 = "tenderproof-bundle/2"
#: The format the server writes.
BUNDLE_FORMAT = BUNDLE_FORMAT_V2
_FORMATS = {BUNDLE_FORMAT_V1: 1, BUNDLE_FORMAT_V2: 2}
_V1_MEMBERS = {"format", "origin", "ocid", "chain", "events", "anchors", "consistency"}
_V2_MEMBERS = _V1_MEMBERS | {"completeness", "officers", "checkpoint"}
#: Members a version 2 bundle may carry: ``range`` only in a range bundle (docs/spec.md §15.3).
_V2_OPTIONAL = {"range", "orders"}
#: The largest integer a bundle may carry (RFC 8785 / IEEE 754 exact range): larger ones are refused.
MAX_UINT = 2**53 - 1

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_HASH = re.compile(r"0x[0-9a-f]{64}")


def _hash(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise FormatError(field, f"must be {HASH_SIZE * 2} lowercase hex digits, got {value!r}")
    return bytes.fromhex(value)


def _uint(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_UINT:
        shown = (
            value if not isinstance(value, int) or abs(value) < 10**30 else f"an integer of {len(str(value))} digits"
        )
        raise FormatError(field, f"must be an integer in [0, 2**53 - 1], got {shown!r}")
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


def _check_strings(doc: Any) -> None:
    """Every string (and member name) of the document is Unicode text (no lone surrogate, which
    JSON escapes can carry but no UTF-8 text holds); walked without recursion."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            _text(value, path or "bundle")
        elif isinstance(value, dict):
            for key, item in value.items():
                _text(key, f"{path}.{key[:40]!r}" if path else repr(key[:40]))
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))


def _text(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(field, f"holds a lone surrogate (\\u{ord(value[exc.start]):04x}), not Unicode text") from None


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
    #: Why the payload is left out: a reason, or the withholding order (``{"order": <log index>,
    #: "reference": str}``, docs/privacy.md).
    withheld: str | dict[str, Any] | None
    leaf_hash: bytes
    inclusion: Inclusion | None
    #: A version 2 envelope's disclosure (docs/spec.md §2.5), carried beside its payload.
    disclosure: dict[str, Any] | None = None

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
        if self.disclosure is not None:
            obj["disclosure"] = self.disclosure
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
class CommittedHead:
    """Another key's leaf met on the proven key's path (a non-membership proof)."""

    key: bytes
    size: int
    leaf_hash: bytes

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key.hex(), "size": self.size, "leaf_hash": self.leaf_hash.hex()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Completeness:
    """The proof that the bundle's history is the tender's whole history as of the newest anchor
    it cites (docs/spec.md §15): the heads commitment entry, the tender's committed head and its
    sparse Merkle proof."""

    commitment: BundleEvent
    head_size: int
    head_leaf_hash: bytes | None
    siblings: tuple[bytes, ...]
    other: CommittedHead | None
    #: How :meth:`to_json` writes it (and how it was read): :data:`COMPLETENESS_COMPACT` or
    #: :data:`COMPLETENESS_FULL`. The proof is the same either way.
    encoding: int = COMPLETENESS_COMPACT

    def to_json(self) -> dict[str, Any]:
        if self.encoding == COMPLETENESS_COMPACT:
            return self._compact_json()
        commitment = self.commitment.to_json()
        del commitment["status"]
        return {
            "commitment": commitment,
            "head": {
                "size": self.head_size,
                "leaf_hash": None if self.head_leaf_hash is None else self.head_leaf_hash.hex(),
            },
            "siblings": [s.hex() for s in self.siblings],
            "other": None if self.other is None else self.other.to_json(),
        }

    def _compact_json(self) -> dict[str, Any]:
        """The compact form (§15.1): the commitment entry by the fields nothing else determines,
        proof hashes as base64, the heads proof's EMPTY siblings by their positions."""
        c = self.commitment
        if c.payload is None or c.inclusion is None:
            raise InvalidArgumentError("completeness.commitment", "needs its payload and inclusion proof")
        return {
            "v": COMPLETENESS_COMPACT,
            "commitment": {
                "seq": c.envelope.seq,
                "prev": c.envelope.prev,
                "recorded_at": c.envelope.recorded_at,
                "heads_root": c.payload["heads_root"],
                "tenders": c.payload["tenders"],
            },
            "path": _b64(c.inclusion.path),
            "head": {
                "size": self.head_size,
                "leaf_hash": None if self.head_leaf_hash is None else self.head_leaf_hash.hex(),
            },
            "siblings": _b64(s for s in self.siblings if s != _EMPTY),
            "empty": [i for i, s in enumerate(self.siblings) if s == _EMPTY],
            "other": None if self.other is None else self.other.to_json(),
        }


def _b64(hashes: Any) -> str:
    return base64.b64encode(b"".join(hashes)).decode("ascii")


def _unb64(value: Any, field: str, limit: int) -> tuple[bytes, ...]:
    """Hashes concatenated and base64-encoded (RFC 4648 §4, padded), at most ``limit`` of them."""
    if not isinstance(value, str):
        raise FormatError(field, f"must be a base64 string, got {type(value).__name__}")
    if len(value) > 4 * ((limit * HASH_SIZE + 2) // 3):
        raise FormatError(field, f"holds more than {limit} hashes")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(field, f"is not padded base64: {exc}") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise FormatError(field, "is not canonical base64")
    if len(raw) % HASH_SIZE:
        raise FormatError(field, f"must decode to a multiple of {HASH_SIZE} bytes, got {len(raw)}")
    return tuple(raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE))


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    """What a range bundle carries (docs/spec.md §15.3): the tender's events ``from_seq`` to
    ``to_seq`` out of the ``of`` it had when the bundle was built, and ``before``, the event
    ``from_seq - 1`` (payload left out) whose leaf hash the first event's ``prev`` must be, with
    its own inclusion proof; ``None`` exactly when ``from_seq`` is 0."""

    from_seq: int
    to_seq: int
    of: int
    before: BundleEvent | None

    def to_json(self) -> dict[str, Any]:
        return {
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "of": self.of,
            "before": None if self.before is None else self.before.to_json(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    origin: str
    ocid: str
    chain_id: int
    contract: str
    events: tuple[BundleEvent, ...]
    anchors: tuple[BundleAnchor, ...]
    consistency: tuple[ConsistencyLink, ...]
    #: 1 or 2: the format version read or to write. The members below exist from version 2.
    version: int = 2
    completeness: Completeness | None = None
    officers: tuple[BundleEvent, ...] = ()
    checkpoint: str | None = None
    #: Set in a range bundle (version 2 only): the events are that part of the history.
    range: Range | None = None
    #: The withholding orders (docs/privacy.md) the events' ``withheld`` name, with their
    #: inclusion proofs (version 2; the member is left out when there are none).
    orders: tuple[BundleEvent, ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": BUNDLE_FORMAT_V1 if self.version == 1 else BUNDLE_FORMAT_V2,
            "origin": self.origin,
            "ocid": self.ocid,
            "chain": {"chain_id": self.chain_id, "contract": self.contract},
            "events": [e.to_json() for e in self.events],
            "anchors": [a.to_json() for a in self.anchors],
            "consistency": [c.to_json() for c in self.consistency],
        }
        if self.version >= 2:
            doc["completeness"] = None if self.completeness is None else self.completeness.to_json()
            doc["officers"] = [e.to_json() for e in self.officers]
            doc["checkpoint"] = self.checkpoint
            if self.range is not None:
                doc["range"] = self.range.to_json()
            if self.orders:
                doc["orders"] = [e.to_json() for e in self.orders]
        return doc


def load_bundle(obj: Any) -> Bundle:
    """Parse a bundle document. Raises :class:`FormatError` naming the bad field.

    Reads ``tenderproof-bundle/1`` and ``tenderproof-bundle/2``; refuses any other ``format``.
    """
    if not isinstance(obj, dict):
        raise FormatError("bundle", f"must be a JSON object, got {type(obj).__name__}")
    _check_strings(obj)
    fmt = obj.get("format")
    version = _FORMATS.get(fmt) if isinstance(fmt, str) else None
    if version is None:
        shown = fmt if isinstance(fmt, str | int | float | bool | None) else type(fmt).__name__
        raise FormatError(
            "format", f"unsupported bundle format {shown!r}, expected {BUNDLE_FORMAT_V1!r} or {BUNDLE_FORMAT_V2!r}"
        )
    doc = _obj(obj, "bundle", _V1_MEMBERS if version == 1 else _V2_MEMBERS, set() if version == 1 else _V2_OPTIONAL)
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
    completeness: Completeness | None = None
    officers: tuple[BundleEvent, ...] = ()
    checkpoint: str | None = None
    part: Range | None = None
    orders: tuple[BundleEvent, ...] = ()
    if version == 2:
        if "orders" in doc:
            orders = tuple(_load_event(e, f"orders[{i}]") for i, e in enumerate(_list(doc["orders"], "orders")))
        if "range" in doc:
            part = _load_range(doc["range"], "range", len(events))
        if doc["completeness"] is not None:
            if isinstance(doc["completeness"], dict) and "v" in doc["completeness"]:
                completeness = _load_compact_completeness(doc["completeness"], "completeness", doc["origin"], anchors)
            else:
                completeness = _load_completeness(doc["completeness"], "completeness")
        officers = tuple(_load_event(e, f"officers[{i}]") for i, e in enumerate(_list(doc["officers"], "officers")))
        checkpoint = doc["checkpoint"]
        if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint):
            raise FormatError("checkpoint", f"must be a signed note (a non-empty string) or null, got {checkpoint!r}")
    return Bundle(
        origin=doc["origin"],
        ocid=doc["ocid"],
        chain_id=_uint(chain["chain_id"], "chain.chain_id"),
        contract=chain["contract"],
        events=events,
        anchors=anchors,
        consistency=links,
        version=version,
        completeness=completeness,
        officers=officers,
        checkpoint=checkpoint,
        range=part,
        orders=orders,
    )


def _load_compact_completeness(value: Any, field: str, origin: str, anchors: tuple[BundleAnchor, ...]) -> Completeness:
    """The compact form (docs/spec.md §15.1), expanded into the commitment entry it stands for:
    the entry of index ``N-1`` proven into the newest cited anchor (tree size ``N``)."""
    c = _obj(value, field, {"v", "commitment", "path", "head", "siblings", "empty", "other"})
    if type(c["v"]) is not int or c["v"] != COMPLETENESS_COMPACT:
        raise FormatError(
            f"{field}.v", f"unsupported completeness encoding {c['v']!r}, expected {COMPLETENESS_COMPACT}"
        )
    if not anchors:
        raise FormatError(field, "a completeness proof needs the anchor it is proven against (no anchors)")
    n = max(a.tree_size for a in anchors)
    if n < 1:
        raise FormatError(field, "the newest anchor has tree size 0: no commitment can end it")
    entry = _obj(c["commitment"], f"{field}.commitment", {"seq", "prev", "recorded_at", "heads_root", "tenders"})
    payload = {
        "heads_root": _hash(entry["heads_root"], f"{field}.commitment.heads_root").hex(),
        "tenders": _uint(entry["tenders"], f"{field}.commitment.tenders"),
        "tree_size": n - 1,
    }
    try:
        envelope = Envelope(
            origin=origin,
            ocid=HEADS_OCID,
            seq=entry["seq"],
            prev=entry["prev"],
            type=HEADS_TYPE,
            recorded_at=entry["recorded_at"],
            payload_sha256=sha256_hex(canonical_bytes(payload)),
        )
        leaf = envelope.leaf_hash()
    except InvalidArgumentError as exc:
        raise FormatError(f"{field}.commitment.{exc.field}", exc.reason) from exc
    commitment = BundleEvent(
        index=n - 1,
        envelope=envelope,
        payload=payload,
        withheld=None,
        leaf_hash=leaf,
        inclusion=Inclusion(tree_size=n, path=_unb64(c["path"], f"{field}.path", _MAX_PATH)),
    )
    size, leaf_hash = _load_head(c["head"], f"{field}.head")
    present = _unb64(c["siblings"], f"{field}.siblings", 256)
    if _EMPTY in present:
        raise FormatError(f"{field}.siblings", "holds an EMPTY hash: EMPTY siblings are listed in empty")
    empty = _list(c["empty"], f"{field}.empty")
    depth = len(present) + len(empty)
    if depth > 256:
        raise FormatError(f"{field}.empty", f"a proof has at most 256 siblings, got {depth}")
    positions = [_uint(i, f"{field}.empty[{j}]") for j, i in enumerate(empty)]
    if any(b <= a for a, b in itertools.pairwise(positions)) or (positions and positions[-1] >= depth):
        raise FormatError(f"{field}.empty", f"must be increasing positions below {depth} (the proof's depth)")
    holes = set(positions)
    rest = iter(present)
    siblings = tuple(_EMPTY if i in holes else next(rest) for i in range(depth))
    return Completeness(
        commitment=commitment,
        head_size=size,
        head_leaf_hash=leaf_hash,
        siblings=siblings,
        other=_load_other(c["other"], f"{field}.other"),
        encoding=COMPLETENESS_COMPACT,
    )


def _load_head(value: Any, field: str) -> tuple[int, bytes | None]:
    head = _obj(value, field, {"size", "leaf_hash"})
    size = _uint(head["size"], f"{field}.size")
    leaf = None if head["leaf_hash"] is None else _hash(head["leaf_hash"], f"{field}.leaf_hash")
    if (size == 0) != (leaf is None):
        raise FormatError(field, "size 0 comes with a null leaf_hash, and only size 0")
    return size, leaf


def _load_other(value: Any, field: str) -> CommittedHead | None:
    if value is None:
        return None
    o = _obj(value, field, {"key", "size", "leaf_hash"})
    other = CommittedHead(
        key=_hash(o["key"], f"{field}.key"),
        size=_uint(o["size"], f"{field}.size"),
        leaf_hash=_hash(o["leaf_hash"], f"{field}.leaf_hash"),
    )
    if other.size < 1:
        raise FormatError(f"{field}.size", "must be >= 1")
    return other


def _load_range(value: Any, field: str, count: int) -> Range:
    r = _obj(value, field, {"from_seq", "to_seq", "of", "before"})
    first, last, of = (_uint(r[k], f"{field}.{k}") for k in ("from_seq", "to_seq", "of"))
    if not first <= last < of:
        raise FormatError(field, f"needs from_seq <= to_seq < of, got {first}, {last}, {of}")
    if count != last - first + 1:
        raise FormatError("events", f"a range of seq {first} to {last} holds {last - first + 1} events, got {count}")
    before = None
    if r["before"] is not None:
        before = _load_event(r["before"], f"{field}.before")
        if before.payload is not None:
            raise FormatError(f"{field}.before.payload", "must be null: only the event's leaf hash and proof count")
    if (first == 0) != (before is None):
        raise FormatError(f"{field}.before", "is null exactly when the range starts at seq 0")
    return Range(from_seq=first, to_seq=last, of=of, before=before)


def _load_completeness(value: Any, field: str) -> Completeness:
    c = _obj(value, field, {"commitment", "head", "siblings", "other"})
    raw = c["commitment"]
    if isinstance(raw, dict) and "status" not in raw:
        raw = {**raw, "status": "pending" if raw.get("inclusion") is None else "anchored"}
    commitment = _load_event(raw, f"{field}.commitment")
    if commitment.inclusion is None or commitment.payload is None:
        raise FormatError(f"{field}.commitment.inclusion", "the commitment needs its payload and an inclusion proof")
    size, leaf = _load_head(c["head"], f"{field}.head")
    siblings = _list(c["siblings"], f"{field}.siblings")
    if len(siblings) > 256:
        raise FormatError(f"{field}.siblings", f"at most 256 siblings, got {len(siblings)}")
    other = _load_other(c["other"], f"{field}.other")
    return Completeness(
        commitment=commitment,
        head_size=size,
        head_leaf_hash=leaf,
        siblings=tuple(_hash(s, f"{field}.siblings[{j}]") for j, s in enumerate(siblings)),
        other=other,
        encoding=COMPLETENESS_FULL,
    )


def _load_event(value: Any, field: str) -> BundleEvent:
    e = _obj(
        value, field, {"index", "envelope", "payload", "leaf_hash", "status", "inclusion"}, {"withheld", "disclosure"}
    )
    try:
        envelope = Envelope.from_json(e["envelope"])
        envelope.canonical_bytes()  # every envelope must have its RFC 8785 form (its leaf hash)
    except InvalidArgumentError as exc:
        raise FormatError(f"{field}.{exc.field}", exc.reason) from exc
    except (TypeError, ValueError) as exc:  # a field of a type no check expected
        raise FormatError(f"{field}.envelope", f"is not a valid envelope: {exc}") from exc
    payload, withheld = e["payload"], e.get("withheld")
    if isinstance(payload, dict):
        try:
            canonical_bytes(payload, field="payload")
        except InvalidArgumentError as exc:
            raise FormatError(f"{field}.{exc.field}", exc.reason) from exc
    if payload is None:
        if isinstance(withheld, dict):
            _load_order_citation(withheld, f"{field}.withheld", {"earlier"})
            earlier = withheld.get("earlier")
            if earlier is not None:  # the orders that withheld fields of it before: at least one, in order
                cited = [
                    _load_order_citation(o, f"{field}.withheld.earlier[{j}]", set())
                    for j, o in enumerate(_list(earlier, f"{field}.withheld.earlier"))
                ]
                if not cited or cited != sorted(set(cited)) or cited[-1] >= withheld["order"]:
                    raise FormatError(
                        f"{field}.withheld.earlier",
                        "must list at least one order, each once, in log order, all before withheld.order",
                    )
        elif not isinstance(withheld, str) or not withheld:
            raise FormatError(
                f"{field}.withheld",
                "a null payload needs a non-empty withheld reason or its order ({order, reference})",
            )
    elif not isinstance(payload, dict):
        raise FormatError(f"{field}.payload", f"must be a JSON object or null, got {type(payload).__name__}")
    elif withheld is not None:
        raise FormatError(f"{field}.withheld", "only a withheld (null) payload has a reason")
    disclosure = _disclosure(e.get("disclosure"), envelope, payload, f"{field}.disclosure")
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
        disclosure=disclosure,
    )


def _load_order_citation(value: Any, field: str, optional: set[str]) -> int:
    """``{order, reference}`` naming a withholding order; returns its log index."""
    order = _obj(value, field, {"order", "reference"}, optional)
    index = _uint(order["order"], f"{field}.order")
    if not isinstance(order["reference"], str) or not order["reference"]:
        raise FormatError(f"{field}.reference", "must be the order's reference, a non-empty string")
    return index


def _disclosure(value: Any, envelope: Envelope, payload: Any, field: str) -> dict[str, Any] | None:
    """A bundle event's ``disclosure``: present exactly when a version 2 envelope's payload is, its
    shape checked (whether it recomputes the commitment is the verifier's check)."""
    if envelope.v == VERSION_1 or payload is None:
        if value is not None:
            why = "a version 1 envelope has none" if envelope.v == VERSION_1 else "a withheld payload has none"
            raise FormatError(field, f"must be left out: {why}")
        return None
    if value is None:
        raise FormatError(field, "missing: a version 2 payload is checked with its disclosure")
    try:
        withheld_fields(value)
    except InvalidArgumentError as exc:
        raise FormatError(field + exc.field.removeprefix("disclosure"), exc.reason) from exc
    return dict(value)


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
