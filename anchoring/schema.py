"""The anchoring service's own tables: the targets (a contract on one chain instance), each
checkpoint's anchoring on a target and its signed transactions, and the leases that decide which
process acts for a chain.

They are defined on the log's :data:`ledger.store.schema.metadata` (one database, one migration
chain: migration 0002 created them), but they belong to anchoring: the log below it never reads
them; the operator's audit, above it, does.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, LargeBinary, String, Table, UniqueConstraint

from ledger.store.schema import Id, metadata

#: A contract on one chain instance that checkpoints are anchored to. A chain's ``instance``
#: is its genesis block hash, or a fresh ``embedded:<uuid>`` each time the in-process
#: development chain starts: a new instance (or a new contract) starts anchoring from zero.
anchor_targets = Table(
    "anchor_targets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("chain", String(64), nullable=False),
    Column("chain_id", BigInteger, nullable=False),
    Column("instance", String(80), nullable=False),
    Column("contract", String(42), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("chain", "chain_id", "instance", "contract"),
)

#: One checkpoint's anchoring on one target, a state machine:
#: prepared -> sent -> included -> final, back to sent when a reorg removes it, or failed
#: (reverted, nonce used by another transaction). All of an anchor's transactions share one nonce, so at most one
#: of them can take effect.
anchors = Table(
    "anchors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target_id", Id, ForeignKey("anchor_targets.id"), nullable=False, index=True),
    Column("tree_size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    #: The anchored tree size this one extends (its consistency proof starts there).
    Column("base_size", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("account", String(42), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    #: Set once included: the effective transaction and where it is.
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("block_hash", LargeBinary(32), nullable=True),
    Column("block_timestamp", BigInteger, nullable=True),
    Column("anchor_id", BigInteger, nullable=True),
    Column("gas_used", BigInteger, nullable=True),
    Column("final_at", DateTime(timezone=True), nullable=True),
    Column("error", String(1024), nullable=True),
)

#: Every signed transaction of an anchor, stored before it is broadcast (append-only): after
#: a crash the same bytes are sent again, never a conflicting transaction. (A hash is unique
#: per chain instance only: a restarted development chain sees the same transactions again.)
anchor_txs = Table(
    "anchor_txs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("anchor_id", Id, ForeignKey("anchors.id"), nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False, index=True),
    Column("nonce", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("gas_limit", BigInteger, nullable=False),
    #: Wei per gas (EIP-1559 max fee, or the legacy gas price), as decimal text: wei exceed 64 bits.
    Column("max_fee", String(80), nullable=False),
    Column("priority_fee", String(80), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("anchor_id", "tx_hash"),
)

#: Which target each chain anchors to, over time (append-only): a row each time a target becomes
#: the one in use: when it is first used, and when the operator switches to it (``tenderproof
#: switch-contract``, back to an earlier contract too). A chain's newest row is its target now.
anchor_switches = Table(
    "anchor_switches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target_id", Id, ForeignKey("anchor_targets.id"), nullable=False, index=True),
    Column("switched_at", DateTime(timezone=True), nullable=False),
)

#: Who may act for a chain: a lease renewed by the holder, taken over only once expired.
anchor_leases = Table(
    "anchor_leases",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

#: The log's signed checkpoints with the witnesses' cosignatures collected for them by the
#: publishing round (C2SP tlog-witness; docs/spec.md §17): the note as bundles carry it.
#: Rewritten only to add cosignatures. Migration 0008.
cosigned_checkpoints = Table(
    "cosigned_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", String(65536), nullable=False),
    Column("cosignatures", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
