"""The officers' registry (docs/spec.md §7): who may sign submissions, recorded in the log itself.

``officer.registered`` / ``officer.revoked`` events are recorded under one fixed ocid,
:data:`REGISTRY_OCID`, so the registry has its own hash chain like any tender. The ``officers``
table is their projection: one row per period an address is registered, written in the same
transaction as the event, so it never disagrees with the log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from ledger.core.envelope import check_ocid
from ledger.core.errors import ConflictError, InvalidArgumentError
from ledger.core.heads import HEADS_OCID
from ledger.store.schema import officers

from . import payloads as p

#: The ocid under which the officers' registry is recorded.
REGISTRY_OCID = check_ocid("ocds-tpreg0-officers")
EVENT_TYPES: frozenset[str] = frozenset({"officer.registered", "officer.revoked"})
#: The ocid under which withholding orders are recorded (ledger.procurement.withholding).
ORDERS_OCID = check_ocid("ocds-tpreg0-orders")
#: Ocids that are not tenders: the registry, the withholding orders, and the log's own heads
#: commitments (docs/spec.md §14.1), which no client may record under. Projections (lists,
#: exports, stats) skip them.
RESERVED_OCIDS: tuple[str, ...] = (REGISTRY_OCID, ORDERS_OCID, HEADS_OCID)


def apply(conn: Connection, event_type: str, payload: object, *, event_id: int, at: datetime) -> None:
    """Project one registry event onto the ``officers`` table, inside the caller's transaction.

    Raises :class:`ConflictError` when registering an address that is registered, or revoking
    one that is not; :class:`InvalidArgumentError` for a bad payload or another event type.
    """
    model = p.validate(event_type, payload)
    at = at.astimezone(UTC)
    current = _current(conn, getattr(model, "address", ""), at)
    if isinstance(model, p.OfficerRegistered):
        if current is not None:
            raise ConflictError("payload.address", f"officer {model.address} is already registered")
        conn.execute(
            insert(officers).values(
                address=model.address,
                name=model.name,
                role=model.role,
                registered_at=at,
                registered_event=event_id,
            )
        )
    elif isinstance(model, p.OfficerRevoked):
        if current is None:
            raise ConflictError("payload.address", f"officer {model.address} is not registered")
        conn.execute(update(officers).where(officers.c.id == current).values(revoked_at=at, revoked_event=event_id))
    else:
        raise InvalidArgumentError("type", f"{event_type} is not an event of the officers' registry")


def _current(conn: Connection, address: str, at: datetime) -> int | None:
    """Id of the row that registers ``address`` at ``at``, if any."""
    at = at.astimezone(UTC)  # SQLite keeps no zone: every stored instant is UTC
    row = conn.execute(_CURRENT, {"address": address, "at": at}).first()
    return None if row is None else int(row.id)


#: Built once: every signed write asks it (SQLAlchemy finds the compiled form by identity).
_CURRENT = (
    select(officers.c.id)
    .where(
        officers.c.address == bindparam("address"),
        officers.c.registered_at <= bindparam("at"),
        (officers.c.revoked_at.is_(None)) | (officers.c.revoked_at > bindparam("at")),
    )
    .order_by(officers.c.registered_at.desc())
    .limit(1)
)


def is_registered(conn: Connection | Engine, address: str, *, at: datetime) -> bool:
    """Whether ``address`` (EIP-55) was a registered officer at ``at``."""
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return _current(c, address, at) is not None
    return _current(conn, address, at) is not None


def registered(conn: Connection | Engine, *, at: datetime) -> list[dict[str, object]]:
    """The officers registered at ``at``: address, name, role, registered_at; by address."""
    at = at.astimezone(UTC)
    query = (
        select(officers.c.address, officers.c.name, officers.c.role, officers.c.registered_at)
        .where(officers.c.registered_at <= at, (officers.c.revoked_at.is_(None)) | (officers.c.revoked_at > at))
        .order_by(officers.c.address)
    )
    if isinstance(conn, Engine):
        with conn.connect() as c:
            rows = c.execute(query).all()
    else:
        rows = conn.execute(query).all()
    return [{**row._mapping, "registered_at": _utc(row.registered_at)} for row in rows]


def _utc(moment: datetime) -> datetime:
    """Stored instants are UTC; SQLite returns them without a zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
