"""Response models of the read API: what ``/openapi.json`` promises, field by field.

Hashes are lowercase hex (32 bytes: 64 digits) unless a field says base64; transaction hashes
carry the ``0x`` prefix as block explorers show them. Envelopes and payloads are returned as
the JSON objects they are; ``leaf_data`` carries the exact leaf bytes for mirrors.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="32 bytes, lowercase hex.")]
TxHash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$", description="0x-prefixed lowercase hex.")]
Address = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="EIP-55 checksummed address.")]
Size = Annotated[int, Field(ge=0)]


class Envelope(BaseModel):
    """An entry's envelope (docs/spec.md §2); its RFC 8785 bytes are the leaf data."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1, 2] = Field(description="1: payload_sha256; 2: payload_commitment (docs/spec.md §2.5).")
    origin: str
    ocid: str
    seq: Size
    prev: Hash | None
    type: str
    recorded_at: str = Field(description="RFC 3339 UTC with a Z.")
    payload_sha256: Hash | None = Field(default=None, description="Version 1: the payload's RFC 8785 SHA-256.")
    payload_commitment: Hash | None = Field(
        default=None, description="Version 2: the payload's salted, field-level commitment (docs/spec.md §2.5)."
    )
    submission: dict[str, Any] | None = Field(default=None, description="The officer's EIP-712 struct, if signed.")
    signature: str | None = Field(default=None, description="The officer's signature (0x hex), if signed.")


class Checkpoint(BaseModel):
    origin: str
    tree_size: Size
    root_hash: Hash
    text: str = Field(description="The C2SP tlog-checkpoint text (`origin\\nsize\\nbase64(root)\\n`).")


class Entry(BaseModel):
    index: Size
    leaf_hash: Hash
    leaf_data: str = Field(description="The exact leaf bytes (the envelope's RFC 8785 form), standard base64.")
    ocid: str
    seq: Size
    type: str
    envelope: Envelope
    payload: dict[str, Any] | None = Field(
        description="The event's payload (its RFC 8785 bytes hash to payload_sha256; in version 2 it recomputes"
        " to payload_commitment with its disclosure)."
    )
    disclosure: dict[str, Any] | None = Field(
        default=None,
        description="Version 2: the salts (and the digests of withheld fields) the payload is checked with"
        " (docs/spec.md §2.5).",
    )
    withheld_by: Size | None = Field(
        default=None,
        description="The log index of the withholding order (docs/privacy.md) that withheld the payload (null)"
        " or some of its fields (null in the payload, digests in the disclosure); left out when none did.",
    )


class Entries(BaseModel):
    start: Size
    end: Size = Field(description="Exclusive.")
    entries: list[Entry]


class InclusionProof(BaseModel):
    leaf_index: Size
    tree_size: Size
    leaf_hash: Hash
    root_hash: Hash
    path: list[Hash] = Field(description="RFC 9162 §2.1.3 inclusion path, leaf to root.")


class ConsistencyProof(BaseModel):
    from_size: Size
    to_size: Size
    from_root: Hash
    to_root: Hash
    path: list[Hash] = Field(description="RFC 9162 §2.1.4 consistency proof.")


class PersonalDataField(BaseModel):
    path: str = Field(description="RFC 9535 normalized path inside the payload, e.g. $['parties'][0]['name'].")
    rule: str = Field(description="The privacy rule that marks it (docs/privacy.md).")


class TenderEvent(BaseModel):
    seq: Size
    type: str
    index: Size | None = Field(description="Log index, once integrated.")
    status: Literal["integrated", "pending"] = Field(description="pending: recorded, not yet in the tree.")
    leaf_hash: Hash
    envelope: Envelope
    payload: dict[str, Any] | None
    payload_error: str | None = Field(
        default=None,
        description="Why the payload is not shown (null payload): stored before input was bounded, it nests too "
        "deep to read. Its bytes are still in the entry (GET /log/entries) and its hash in the envelope.",
    )
    personal_data: list[PersonalDataField] = Field(
        default_factory=list,
        description="The payload's fields that hold personal data of natural persons, by the deployment's privacy"
        " rules (docs/privacy.md).",
    )
    disclosure: dict[str, Any] | None = Field(
        default=None,
        description="Version 2: the salts (and digests of withheld fields) that recompute the envelope's"
        " payload_commitment with the payload (docs/spec.md §2.5).",
    )
    withheld_by: Size | None = Field(
        default=None,
        description="The log index of the withholding order (docs/privacy.md) that withheld the payload (then"
        " null, with payload_error saying so) or some of its fields; left out when none did.",
    )


class TenderEvents(BaseModel):
    ocid: str
    event_count: Size = Field(description="Events the tender has (all pages).")
    head_hash: Hash | None
    from_seq: Size = Field(default=0, description="The seq this page starts at.")
    next_from_seq: Size | None = Field(
        default=None, description="Where the next page starts (?from_seq=), null on the last page."
    )
    events: list[TenderEvent]


class BundleInclusion(BaseModel):
    tree_size: Size
    path: list[Hash]


class BundleEvent(BaseModel):
    index: Size | None
    envelope: Envelope
    payload: dict[str, Any] | None
    withheld: str | None = Field(default=None, description="Why the payload is left out, when it is.")
    leaf_hash: Hash
    status: Literal["anchored", "pending"]
    inclusion: BundleInclusion | None
    disclosure: dict[str, Any] | None = Field(
        default=None, description="Version 2: what the payload's commitment is recomputed with (docs/spec.md §2.5)."
    )


class BundleAnchor(BaseModel):
    tree_size: Size
    root_hash: Hash
    tx_hash: TxHash
    block_number: Size
    block_timestamp: Size


class BundleLink(BaseModel):
    from_size: Size
    to_size: Size
    path: list[Hash]


class BundleChain(BaseModel):
    chain_id: int
    contract: Address


class BundleCommitment(BaseModel):
    """The heads commitment entry by the fields nothing else determines (docs/spec.md §15.1)."""

    seq: Size
    prev: Hash | None
    recorded_at: str
    heads_root: Hash
    tenders: Size


class BundleHead(BaseModel):
    size: Size
    leaf_hash: Hash | None


class BundleOtherHead(BaseModel):
    key: Hash
    size: Size
    leaf_hash: Hash


Base64Hashes = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9+/]*={0,2}$", description="32-byte hashes concatenated, base64 (RFC 4648 §4).")
]


class BundleCompleteness(BaseModel):
    """The proof that the history is whole as of the newest anchor cited (docs/spec.md §15), in
    its compact encoding (§15.1; the first release's full form still verifies)."""

    v: Literal[2]
    commitment: BundleCommitment
    path: Base64Hashes = Field(description="The commitment's inclusion path into the newest anchor.")
    head: BundleHead
    siblings: Base64Hashes = Field(description="The heads proof's non-EMPTY siblings, bottom-up.")
    empty: list[Size] = Field(description="Positions (bottom-up, from 0) of the heads proof's EMPTY siblings.")
    other: BundleOtherHead | None


class Bundle(BaseModel):
    """A tender's proof bundle (docs/spec.md §15; §9 for ``format=1``), verifiable offline with
    `tenderproof verify`. The version 2 members are absent from a version 1 bundle."""

    format: Literal["tenderproof-bundle/1", "tenderproof-bundle/2"]
    origin: str
    ocid: str
    chain: BundleChain
    events: list[BundleEvent]
    anchors: list[BundleAnchor]
    consistency: list[BundleLink]
    completeness: BundleCompleteness | None = None
    officers: list[BundleEvent] | None = None
    checkpoint: str | None = None


class Anchor(BaseModel):
    id: int = Field(description="The anchor's id in this log's database (used in /anchors/{chain}/{id}).")
    chain: str
    chain_id: int
    contract: Address
    tree_size: Size
    root_hash: Hash
    status: Literal["prepared", "sent", "included", "final", "failed"]
    tx_hash: TxHash | None
    block_number: Size | None
    block_timestamp: Size | None
    anchor_id: int | None = Field(description="The contract's anchorId (from its Anchored event).")
    created_at: datetime
    final_at: datetime | None


class AnchorPage(BaseModel):
    chain: str
    anchors: list[Anchor] = Field(description="Newest first.")
    next_before: int | None = Field(description="Pass as `before` for the next page; null on the last page.")


class Batch(BaseModel):
    """The entries an anchor covers beyond the previous final anchor: ``[start, end)``."""

    start: Size
    end: Size
    count: Size


class AnchorDetail(Anchor):
    batch: Batch


class Health(BaseModel):
    status: Literal["ok"]


class Dependency(BaseModel):
    name: str = Field(description="'database' or 'chain:<name>'.")
    ok: bool
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: list[Dependency]


class RecordedEvent(BaseModel):
    """An event durably recorded (201): chained on its tender, not yet in the tree (``pending``)."""

    event_id: int
    ocid: str
    seq: Size
    type: str
    recorded_at: str
    leaf_hash: Hash
    status: Literal["pending"]
    envelope: Envelope


class RecordedEvents(BaseModel):
    events: list[RecordedEvent]


class WithheldTarget(BaseModel):
    """One event a withholding order withheld."""

    index: Size = Field(description="The event's log index.")
    ocid: str
    fields: list[str] | None = Field(description="The JSON Pointers withheld; null: the whole payload.")


class WithholdingRecorded(BaseModel):
    """A withholding order recorded, integrated and carried out (201), in one transaction."""

    order: RecordedEvent = Field(description="The order's event (its status says pending; it is in fact integrated).")
    index: Size = Field(description="The order's log index: what withheld payloads name (withheld_by).")
    withheld: list[WithheldTarget]


class TenderSummary(BaseModel):
    """A tender as listings show it (derived from its events; amounts in its own currency)."""

    ocid: str
    title: str | None
    buyer_id: str | None
    buyer_name: str | None
    status: Literal["planning", "planned", "active", "cancelled", "unsuccessful", "complete", "withdrawn"]
    procurement_method: str | None
    value_amount: float | None
    currency: str | None
    tender_start: str | None
    tender_end: str | None = Field(description="The deadline for bids (tenderPeriod.endDate).")
    awarded_amount: float | None
    suppliers: list[str]
    published_at: str | None
    updated_at: str
    events: Size


class TenderPage(BaseModel):
    items: list[TenderSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last one.")
    ranked_among: int | None = Field(
        None,
        description="Sorted by relevance with words alone that match more than this many tenders (2,000): the"
        " ranking is of the newest 2,000 of them. Null: of every match.",
    )


class FacetValue(BaseModel):
    value: str = Field(description="What the facet's filter takes (`flag`: a code, or `any`).")
    label: str = Field(description="How to show it (a buyer's or supplier's name).")
    count: int = Field(description="Matching tenders with this value.")


class TenderFacets(BaseModel):
    total: int = Field(
        description="How many tenders match: exact up to 10,000; above that an estimate (`estimated`), never below it."
    )
    estimated: bool = Field(
        False,
        description="True when more than 10,000 tenders match and `total` is an estimate (from how densely the newest"
        " matches lie among all tenders), to be shown as one.",
    )
    facets: dict[str, list[FacetValue]] = Field(
        description="Per facet (status, method, flag, year, currency, buyer, supplier), its commonest values."
    )
    sampled: int | None = Field(
        None,
        description="When more tenders match than this number (2,000): the facet counts are of that many, the newest"
        " (see `estimated` for the total). Null: the counts are of every matching tender.",
    )


class Officer(BaseModel):
    address: Address
    name: str
    role: str | None
    registered_at: str


class Officers(BaseModel):
    officers: list[Officer]
