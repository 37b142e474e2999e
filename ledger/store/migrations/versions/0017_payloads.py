"""Payloads stored apart from entries, so that an order can withhold one (docs/privacy.md): table
``payloads`` (``event_id``, ``body``, ``disclosure``, ``withheld_by``) guarded by triggers (no
DELETE; an UPDATE only to withhold, once), filled from ``events.payload`` in batches, each payload
checked against its envelope's ``payload_sha256`` before the column is dropped: a payload that
does not hash to what its entry says stops the upgrade with nothing changed.

An empty stored payload (a monitor's mirror keeps a payload its log withheld that way) becomes a
NULL body. After the upgrade the dropped column's bytes stay in the database files until
``tenderproof privacy purge`` (SQLite VACUUM, PostgreSQL VACUUM FULL) rewrites them.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

from ledger.store import guards

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_BATCH = 2000

_events = sa.table(
    "events", sa.column("id", Id), sa.column("envelope", sa.LargeBinary), sa.column("payload", sa.LargeBinary)
)
_payloads = sa.table(
    "payloads", sa.column("event_id", Id), sa.column("body", sa.LargeBinary), sa.column("withheld_by", sa.BigInteger)
)


def _checked(event_id: int, envelope: bytes, payload: bytes) -> bytes | None:
    """The body to store for ``payload``: None when empty (withheld in a mirror); raises
    RuntimeError if it does not hash to its envelope's ``payload_sha256``."""
    if not payload:
        return None
    stated = json.loads(envelope).get("payload_sha256")
    if stated is not None and hashlib.sha256(payload).hexdigest() != stated:
        raise RuntimeError(
            f"migration 0017: event {event_id}'s stored payload hashes to {hashlib.sha256(payload).hexdigest()}, "
            f"its envelope says payload_sha256 {stated}: nothing moved (audit the database first)"
        )
    return payload


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    op.create_table(
        "payloads",
        sa.Column("event_id", Id, sa.ForeignKey("events.id"), primary_key=True, autoincrement=False),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("disclosure", sa.LargeBinary, nullable=True),
        sa.Column("withheld_by", sa.BigInteger, nullable=True),
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_events.c.id, _events.c.envelope, _events.c.payload)
            .where(_events.c.id > last)
            .order_by(_events.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        conn.execute(
            _payloads.insert(),
            [
                {"event_id": r.id, "body": _checked(r.id, bytes(r.envelope), bytes(r.payload)), "withheld_by": None}
                for r in rows
            ],
        )
    moved = conn.execute(sa.select(sa.func.count()).select_from(_payloads)).scalar_one()
    events_count = conn.execute(sa.select(sa.func.count()).select_from(_events)).scalar_one()
    if moved != events_count:  # cannot happen in one transaction: said rather than assumed
        raise RuntimeError(f"migration 0017: {moved} payloads moved for {events_count} events")
    op.execute("ALTER TABLE events DROP COLUMN payload")
    for statement in guards.payloads_ddl(dialect, once=True):
        op.execute(statement)


def downgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    withheld = conn.execute(sa.select(sa.func.count()).select_from(_payloads).where(_payloads.c.body.is_(None)))
    if withheld.scalar_one():
        raise RuntimeError("migration 0017: payloads withheld by an order cannot go back into events")
    for statement in guards.drop_payloads_ddl(dialect):
        op.execute(statement)
    op.add_column(
        "events",
        sa.Column(
            "payload", sa.LargeBinary, nullable=False, server_default=sa.text("x''" if dialect == "sqlite" else "''")
        ),
    )
    guard = "events_no_update" if dialect == "sqlite" else "events_append_only"
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER {guard}")
    else:
        op.execute(f"ALTER TABLE events DISABLE TRIGGER {guard}")
    op.execute("UPDATE events SET payload = (SELECT body FROM payloads WHERE payloads.event_id = events.id)")
    if dialect == "sqlite":
        op.execute(
            f"CREATE TRIGGER {guard} BEFORE UPDATE ON events "
            f"BEGIN SELECT RAISE(ABORT, '{guards.REFUSAL}: UPDATE of events refused'); END"
        )
    else:
        op.execute(f"ALTER TABLE events ENABLE TRIGGER {guard}")
        op.execute("ALTER TABLE events ALTER COLUMN payload DROP DEFAULT")
    op.drop_table("payloads")
