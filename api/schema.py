"""The HTTP API's own tables: API keys and the responses remembered for ``Idempotency-Key``.

They are defined on the log's :data:`ledger.store.schema.metadata` (one database, one migration
chain: migration 0003 created them, 0006 added key expiry), but they belong to the API: nothing
below it reads or writes them.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, LargeBinary, SmallInteger, String, Table, Text

from ledger.store.schema import Id, metadata

#: Who may write through the HTTP API. Only a SHA-256 of each key is stored (see api.auth); the
#: ``prefix`` is the key's public identifier, shown in listings and used to find its row.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column(
        "role", String(16), CheckConstraint("role IN ('officer', 'admin')", name="ck_api_keys_role"), nullable=False
    ),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", LargeBinary(32), nullable=False),
    #: The officer's Ethereum address (EIP-55 checksummed), when the key acts for one.
    Column("officer", String(42), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    #: After this moment the key is refused (migration 0006); null: it never expires.
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

#: The response to each write made with an ``Idempotency-Key``, per API key, until it expires
#: (see api.idempotency): a retry gets the same response instead of recording the event twice.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", Id, ForeignKey("api_keys.id"), primary_key=True, autoincrement=False),
    Column("key", String(128), primary_key=True),
    #: SHA-256 of the request (method, path, canonical body): a reused key must carry the same request.
    Column("fingerprint", LargeBinary(32), nullable=False),
    Column("status", SmallInteger, nullable=False),
    #: The response body, JSON text.
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

#: The officers' desk (api.desk): sessions an API key was exchanged for (migration 0013). The
#: cookie holds a random secret; only its SHA-256 is stored, as for the keys themselves.
desk_sessions = Table(
    "desk_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("secret_hash", LargeBinary(32), nullable=False, unique=True),
    Column("api_key_id", Id, ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    #: Signed out (or ended by an operator): refused from then on.
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
