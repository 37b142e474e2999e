"""The relational schema of the log (SQLAlchemy Core tables).

The schema itself is created and evolved by the Alembic migrations in
``ledger/store/migrations``; these table objects are what the code queries with,
and a test checks they match what the migrations build.

Append-only tables (``events``, ``log_entries``, ``tree_heads``) are guarded by
database triggers that refuse UPDATE and DELETE; ``tiles`` may only be
extended (a new value must start with the old bytes). ``pending`` is the
integration queue and ``tenders`` / ``log_state`` hold derived heads, so those
three may change.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ledger.store.db import MANY_ROWS

#: BIGINT on PostgreSQL; INTEGER on SQLite, so that a primary key is the rowid and autoincrements.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: One row per deployment setting that must never drift (the log's origin, the contract...).
log_config = Table(
    "log_config",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(1024), nullable=False),
)

#: One row per tender (OCDS contracting process); its head is where the next event chains on.
tenders = Table(
    "tenders",
    metadata,
    Column("ocid", String(256), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    #: Number of events recorded, i.e. the next event's seq.
    Column("event_count", BigInteger, nullable=False),
    #: Lowercase hex leaf hash of the last event; NULL before the first.
    Column("head_hash", String(64), nullable=True),
)

#: Every recorded event: the exact envelope bytes (leaf data) and the leaf hash; its payload is
#: stored apart, in ``payloads`` (migration 0017), so that it can be withheld by an order.
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ocid", String(256), ForeignKey("tenders.ocid"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    UniqueConstraint("ocid", "seq"),
)

#: Each event's payload, stored apart from its entry (migration 0017), written in the transaction
#: that appends the event. Guarded by triggers: never deleted; updated only to withhold it, by a
#: withholding order (``withheld_by`` goes from NULL to the order's log index, once).
payloads = Table(
    "payloads",
    metadata,
    Column("event_id", Id, ForeignKey("events.id"), primary_key=True, autoincrement=False),
    #: The payload's stored bytes (RFC 8785); NULL when the whole payload is withheld, the body
    #: with the withheld fields set to JSON null when fields are (envelope v2 only).
    Column("body", LargeBinary, nullable=True),
    #: RFC 8785 JSON of the envelope v2 disclosure (ledger.core.commitment); NULL for v1 entries.
    Column("disclosure", LargeBinary, nullable=True),
    #: Log index of the withholding order that withheld (part of) the payload; NULL when none.
    Column("withheld_by", BigInteger, nullable=True),
)

#: Events sequenced but not yet integrated into the tree (the integration queue).
pending = Table(
    "pending",
    metadata,
    Column("event_id", Id, ForeignKey("events.id"), primary_key=True, autoincrement=False),
)

#: The log itself: dense global index -> event.
log_entries = Table(
    "log_entries",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False, unique=True),
)

#: Tree tiles (see ledger.core.tiles): concatenated 32-byte node hashes.
tiles = Table(
    "tiles",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
)

#: Every tree head the log has had (size 0 included): its checkpoints.
tree_heads = Table(
    "tree_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("integrated_at", DateTime(timezone=True), nullable=False),
)

#: The current tree head, one row (id = 1); integrators lock it to take turns.
log_state = Table(
    "log_state",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
)

#: The heads commitment's sparse Merkle tree (ledger.core.heads, docs/spec.md §14.4) in strata
#: of 8 levels (ledger.store.heads), every version kept copy-on-write: a row is the stratum whose
#: keys begin with ``prefix`` (0 to 31 bytes) as of commitment ``version`` (the commitment entry's
#: seq) and later, until a row of a larger version replaces it. ``leaves`` holds its lifted leaves,
#: ``inners`` the inner nodes on its bottom edge. Migration 0016 (0007 kept one row per node).
heads_strata = Table(
    "heads_strata",
    metadata,
    Column("prefix", LargeBinary(32), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("inners", LargeBinary, nullable=False),
    Column("leaves", LargeBinary, nullable=False),
)

APPEND_ONLY_TABLES = ("events", "log_entries", "tree_heads")

# --- Procurement (migration 0004) ----------------------------------------------------------

#: The search projection of each tender, derived from its events (ledger.procurement): mutable,
#: rewritten in the transaction that records each event. ``state`` is the rules' TenderState as
#: JSON; the other columns are what search filters and sorts on.
tender_index = Table(
    "tender_index",
    metadata,
    Column("ocid", String(256), ForeignKey("tenders.ocid"), primary_key=True),
    Column("title", String(1024), nullable=True),
    Column("buyer_id", String(256), nullable=True),
    Column("buyer_name", String(1024), nullable=True),
    #: OCDS tender.status: planned, active, cancelled or complete.
    Column("status", String(16), nullable=False),
    Column("method", String(32), nullable=True),
    Column("value_amount", Float, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("tender_start", DateTime(timezone=True), nullable=True),
    Column("tender_end", DateTime(timezone=True), nullable=True),
    Column("awarded_amount", Float, nullable=True),
    #: Supplier names of the active awards, one per line.
    Column("suppliers", Text, nullable=False),
    #: The words of the title, description, items, buyer name and id and supplier names, as
    #: ledger.procurement.fulltext.document makes them: what ``q`` searches (full-text indexed by
    #: migrations 0015 and 0018: the contentless FTS5 table ``tender_search`` keyed by
    #: ``tender_search_keys`` on SQLite, the stored GIN-indexed ``search_vector`` on PostgreSQL).
    Column("search_text", Text, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    #: When the tender was published, or planned if it was not yet: what the listing sorts by.
    Column("listed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("state", Text, nullable=False),
    Index("ix_tender_index_listed_at_ocid", "listed_at", "ocid"),
    Index("ix_tender_index_status_listed_at_ocid", "status", "listed_at", "ocid"),
    #: A buyer's tenders by listing time, with the facets' columns (migration 0021: count + facets
    #: of a buyer's newest tenders without reading their rows).
    Index("ix_tender_index_buyer_id_facets", "buyer_id", "listed_at", "ocid", "status", "method", "currency"),
    #: A value range listed by time finds its page in the index alone (migration 0020).
    Index("ix_tender_index_value_amount_ocid_listed_at", "value_amount", "ocid", "listed_at"),
    #: An organisation's latest tenders: their ocids sorted by listing time without reading the rows;
    #: with the facets' columns (migration 0021), a search's matches counted by facet alike.
    Index("ix_tender_index_ocid_facets", "ocid", "listed_at", "status", "method", "currency", "buyer_id"),
    #: its inserts write ``tender_search`` (FTS5, SQLite triggers): inserted many rows a statement
    info={MANY_ROWS: True},
)

#: The officers' registry projected from officer.registered / officer.revoked events: one row
#: per period during which an address was registered (``revoked_at`` NULL while it still is).
officers = Table(
    "officers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("address", String(42), nullable=False),
    Column("name", String(256), nullable=False),
    Column("role", String(256), nullable=True),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("registered_event", Id, ForeignKey("events.id"), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_event", Id, ForeignKey("events.id"), nullable=True),
    Index("ix_officers_address_registered_at", "address", "registered_at"),
)

#: Every signed submission id ever recorded: a signed submission is recorded once.
submission_ids = Table(
    "submission_ids",
    metadata,
    Column("submission_id", String(128), primary_key=True),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False, unique=True),
    Column("signer", String(42), nullable=False),
)

# --- OCDS import and red flags (migration 0005) ----------------------------------------------

#: Every OCDS release imported as an event (ledger.procurement.importer): the event's payload IS
#: the release. A release is imported once per (ocid, release id); ``release_digest`` (migration
#: 0019: HMAC-SHA256 of its RFC 8785 bytes under the deployment's ``release_digest`` key, hex) tells
#: a repeat of the same release from a different one under a used id. NULL once a withholding
#: order withholds the release (whole or any field): no hash of withheld data is kept.
ocds_releases = Table(
    "ocds_releases",
    metadata,
    Column("event_id", Id, ForeignKey("events.id"), primary_key=True, autoincrement=False),
    Column("ocid", String(256), ForeignKey("tenders.ocid"), nullable=False),
    Column("release_id", String(256), nullable=False),
    Column("release_date", DateTime(timezone=True), nullable=False),
    Column("release_digest", String(64), nullable=True),
    #: JSON array of the release's schema problems ({"path", "reason"}), null when none (migration 0008):
    #: in default mode a release that parses is recorded with them, shown as data-quality notes.
    Column("notes", Text, nullable=True),
    UniqueConstraint("ocid", "release_id"),
    # no index of release_date (migration 0023): no query can use one (the export filters on
    # coalesce(release_date, recorded_at)), and each imported release wrote one in a random leaf
)

#: Each imported tender's compiled release (ocdsmerge) as of the release with the greatest
#: ``date`` so far (``last_date``, compared as text, as ocdsmerge sorts), with what the projection
#: needs of its releases' dates (``summary``, JSON: count, first, last, first of tender stage): a new release dated at or after it is merged into it (constant cost per release);
#: an older one recompiles the tender from all its releases (migration 0008).
#: Each tender's awarded value per currency (awards not cancelled), rewritten with its projection:
#: what the ledger-wide totals and charts sum, so that an award in a currency other than the
#: tender's is never dropped (migration 0010).
tender_awarded = Table(
    "tender_awarded",
    metadata,
    Column("ocid", String(256), ForeignKey("tenders.ocid"), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("amount", Float, nullable=False),
)

ocds_compiled = Table(
    "ocds_compiled",
    metadata,
    Column("ocid", String(256), ForeignKey("tenders.ocid"), primary_key=True),
    Column("compiled", Text, nullable=False),
    Column("last_date", String(64), nullable=False),
    Column("summary", Text, nullable=False),
)

#: The red flags each tender raises (ledger.procurement.redflags), rewritten with its projection.
tender_flags = Table(
    "tender_flags",
    metadata,
    Column("ocid", String(256), ForeignKey("tenders.ocid"), primary_key=True),
    Column("code", String(64), primary_key=True),
    #: JSON object: the figures the flag was computed from.
    Column("evidence", Text, nullable=False),
    Index("ix_tender_flags_code", "code"),
)

#: Each supplier of a tender's live awards, with the tender's buyer: what "repeat supplier" counts.
tender_suppliers = Table(
    "tender_suppliers",
    metadata,
    Column("ocid", String(256), ForeignKey("tenders.ocid"), primary_key=True),
    Column("supplier", String(1024), primary_key=True),
    Column("buyer_id", String(256), nullable=False),
    Index("ix_tender_suppliers_buyer_id_supplier", "buyer_id", "supplier"),
    #: the search's supplier filter and facet (migration 0013)
    Index("ix_tender_suppliers_supplier", "supplier"),
)

#: How many tenders each supplier won from each buyer (the count of its ``tender_suppliers`` rows),
#: kept up to date with them, so that "repeat supplier" needs no aggregate over every tender.
supplier_wins = Table(
    "supplier_wins",
    metadata,
    Column("buyer_id", String(256), primary_key=True),
    Column("supplier", String(1024), primary_key=True),
    Column("wins", Integer, nullable=False),
    Index("ix_supplier_wins_wins", "wins"),
)


#: Every organisation of each tender, keyed as ``ledger.procurement.organisations`` keys them
#: (scheme/id, else normalised name), in each role it has there: ``buyer``, ``procuring_entity``,
#: ``tenderer`` (bidders) and ``supplier`` (of a live award, with ``amounts``: JSON object of the
#: awarded value per currency). Rewritten with the tender's red flags (ledger.procurement.profiles),
#: what the buyer and supplier pages read (migration 0013).
tender_parties = Table(
    "tender_parties",
    metadata,
    Column("ocid", String(256), ForeignKey("tenders.ocid"), primary_key=True),
    Column("role", String(32), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("name", String(1024), nullable=True),
    Column("amounts", Text, nullable=True),
    #: The tender's listing time (``tender_index.listed_at``; migration 0018): an organisation's
    #: latest tenders are an index walk of ``(key, listed_at)``, whatever its number of tenders.
    Column("listed_at", DateTime(timezone=True), nullable=True),
    Index("ix_tender_parties_key_role_ocid", "key", "role", "ocid"),
    Index("ix_tender_parties_name", "name"),
    Index("ix_tender_parties_key_listed_at_ocid", "key", "listed_at", "ocid"),
)

#: How many tenders each pair of organisations both competed in (as tenderer or supplier: the
#: ``tender_parties`` rows in those roles), both ways round; kept up to date with them (migration
#: 0018), so that an organisation's competitors are its rows here, not a join of all its tenders.
organisation_rivals = Table(
    "organisation_rivals",
    metadata,
    Column("key", String(1024), primary_key=True),
    Column("rival", String(1024), primary_key=True),
    Column("tenders", Integer, nullable=False),
    Index("ix_organisation_rivals_key_tenders", "key", "tenders"),
)


#: The red flags whose fences come from the whole ledger (ledger.procurement.redflags,
#: :func:`refresh_ledger_flags`): Cardinal's R024 and R058 per tender (``role``
#: "contracting_process", ``subject`` the ocid) and R025, R038, R044, R048, R055 per organisation
#: (``role`` buyer, procuring_entity or tenderer, ``subject`` its organisation key). Derived, not
#: recorded: replaced whole at each refresh, with the last event id it read (migration 0010).
ledger_flags = Table(
    "ledger_flags",
    metadata,
    Column("role", String(32), primary_key=True),
    Column("subject", String(1024), primary_key=True),
    Column("code", String(16), primary_key=True),
    #: JSON object: the figures, fences and settings the flag was computed from.
    Column("evidence", Text, nullable=False),
    #: The greatest event id the computation read (the ledger as of that event).
    Column("through_event", BigInteger, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    Index("ix_ledger_flags_code", "code"),
)


#: Secrets of this deployment kept with its data (migration 0019), by name: ``release_digest``, the
#: 32-byte HMAC key of ``ocds_releases.release_digest``, drawn at random once. Never served, never
#: exported; docs/privacy.md says why it lives here.
deployment_keys = Table(
    "deployment_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
