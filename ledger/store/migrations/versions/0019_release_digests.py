"""Nothing guessable kept of a withheld release, and orders that build on orders (docs/privacy.md).

- ``deployment_keys`` (``name``, ``secret``, ``created_at``): the deployment's secrets kept with
  its data; ``release_digest``, a 32-byte key drawn at random here.
- ``ocds_releases.release_sha256`` (the bare SHA-256 of each imported release, which the import
  kept only to tell a repeat from a change, and which for a withheld release is a hash anyone can
  test guesses against) becomes ``release_digest``: HMAC-SHA256 of the release's RFC 8785 bytes
  under that key, NULL for a release an order withheld (whole or any field). Re-keyed in batches
  from the stored payloads, each checked first against the SHA-256 the row held: a payload that
  does not hash to it stops the upgrade with nothing changed. The dropped column's bytes stay in
  the database files until ``tenderproof privacy purge`` rewrites them.
- The ``payloads`` update guard also lets a later order withhold more of a payload an earlier
  order withheld in part (never a payload withheld whole; never un-withholding). A payload withheld
  whole before this revision loses the disclosure it kept (its salts would let anyone test a guessed
  payload against the envelope's commitment).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from ledger.store import guards

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_BATCH = 2000
_KEY = "release_digest"

_releases = sa.table(
    "ocds_releases",
    sa.column("event_id", Id),
    sa.column("release_sha256", sa.String),
    sa.column("release_digest", sa.String),
)
_payloads = sa.table(
    "payloads",
    sa.column("event_id", Id),
    sa.column("body", sa.LargeBinary),
    sa.column("disclosure", sa.LargeBinary),
    sa.column("withheld_by", sa.BigInteger),
)
_keys = sa.table(
    "deployment_keys",
    sa.column("name", sa.String),
    sa.column("secret", sa.LargeBinary),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _rekeyed(key: bytes, event_id: int, stated: str, body: bytes | None, withheld_by: int | None) -> str | None:
    """The new digest of one release: None when withheld; raises RuntimeError if its stored
    payload does not hash to the SHA-256 the row held."""
    if withheld_by is not None or body is None:
        return None
    data = bytes(body)
    found = hashlib.sha256(data).hexdigest()
    if found != stated:
        raise RuntimeError(
            f"migration 0019: imported release event {event_id}'s stored payload hashes to {found}, "
            f"ocds_releases says {stated}: nothing changed (audit the database first)"
        )
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    op.create_table(
        "deployment_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    key = secrets.token_bytes(32)
    conn.execute(_keys.insert().values(name=_KEY, secret=key, created_at=datetime.now(UTC)))
    op.add_column("ocds_releases", sa.Column("release_digest", sa.String(64), nullable=True))
    last = 0
    done = 0
    while True:
        rows = conn.execute(
            sa.select(_releases.c.event_id, _releases.c.release_sha256, _payloads.c.body, _payloads.c.withheld_by)
            .select_from(_releases.outerjoin(_payloads, _payloads.c.event_id == _releases.c.event_id))
            .where(_releases.c.event_id > last)
            .order_by(_releases.c.event_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].event_id
        digests = [
            {"id": r.event_id, "digest": _rekeyed(key, r.event_id, r.release_sha256, r.body, r.withheld_by)}
            for r in rows
        ]
        conn.execute(
            _releases.update()
            .where(_releases.c.event_id == sa.bindparam("id"))
            .values(release_digest=sa.bindparam("digest")),
            digests,
        )
        done += len(rows)
    total = conn.execute(sa.select(sa.func.count()).select_from(_releases)).scalar_one()
    if done != total:  # cannot happen in one transaction: said rather than assumed
        raise RuntimeError(f"migration 0019: {done} releases re-keyed of {total}")
    op.execute("ALTER TABLE ocds_releases DROP COLUMN release_sha256")
    for statement in guards.drop_payloads_ddl(dialect):
        op.execute(statement)
    # a payload withheld whole before this revision kept its disclosure: its salts go now
    conn.execute(
        _payloads.update()
        .where(_payloads.c.body.is_(None), _payloads.c.withheld_by.is_not(None), _payloads.c.disclosure.is_not(None))
        .values(disclosure=None)
    )
    for statement in guards.payloads_ddl(dialect):
        op.execute(statement)


def downgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    cleared = conn.execute(
        sa.select(sa.func.count()).select_from(_releases).where(_releases.c.release_digest.is_(None))
    ).scalar_one()
    if cleared:
        raise RuntimeError(
            f"migration 0019: {cleared} imported releases are withheld: their bare SHA-256 is not put back"
        )
    op.add_column("ocds_releases", sa.Column("release_sha256", sa.String(64), nullable=False, server_default=""))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(_releases.c.event_id, _payloads.c.body)
            .select_from(_releases.join(_payloads, _payloads.c.event_id == _releases.c.event_id))
            .where(_releases.c.event_id > last)
            .order_by(_releases.c.event_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1].event_id
        conn.execute(
            _releases.update()
            .where(_releases.c.event_id == sa.bindparam("id"))
            .values(release_sha256=sa.bindparam("digest")),
            [{"id": r.event_id, "digest": hashlib.sha256(bytes(r.body)).hexdigest()} for r in rows],
        )
    op.execute("ALTER TABLE ocds_releases DROP COLUMN release_digest")
    for statement in guards.drop_payloads_ddl(dialect):
        op.execute(statement)
    for statement in guards.payloads_ddl(dialect, once=True):
        op.execute(statement)
    op.drop_table("deployment_keys")
