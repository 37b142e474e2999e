"""Rebuilding the projections (tenders' search index and red flags, officers' registry, used
submission ids) from the log itself: after migrating a database whose events were recorded before
migration 0004, or to check that the stored projections are what the events say. Tenders imported
from OCDS releases are reprojected from their compiled releases, as the import does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, select

from ledger.core.errors import ConflictError, FormatError, InvalidArgumentError
from ledger.core.heads import HEADS_OCID
from ledger.store.db import write_transaction
from ledger.store.reader import EVENT_COLUMNS, EVENTS_FROM, stored_event
from ledger.store.schema import (
    events,
    ocds_releases,
    officers,
    organisation_rivals,
    submission_ids,
    supplier_wins,
    tender_awarded,
    tender_flags,
    tender_index,
    tender_parties,
    tender_suppliers,
)

from . import importer, rules
from . import officers as registry
from .record import store_state


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """An event the rules refuse: the projection of its tender stops before it."""

    ocid: str
    seq: int
    type: str
    field: str
    reason: str


def rebuild(engine: Engine, *, batch: int = 5000) -> list[Refusal]:
    """Replace ``tender_index``, ``officers`` and ``submission_ids`` with what the recorded events
    give, in one transaction; return the events the rules refuse (their tender's projection is
    then the state before its first refused event, and later events of it are not applied).

    Holds the write lock for the whole rebuild on SQLite; on PostgreSQL writers recording
    meanwhile wait for its commit on their tender's ``tender_index`` row.
    """
    with write_transaction(engine) as conn:
        return rebuild_in(conn, batch=batch)


def rebuild_in(conn: Connection, *, batch: int = 5000) -> list[Refusal]:
    """:func:`rebuild` in the caller's transaction ``conn`` (a migration's)."""
    refusals: list[Refusal] = []
    states: dict[str, rules.TenderState] = {}
    stopped: set[str] = set()
    conn.execute(delete(tender_awarded))
    conn.execute(delete(tender_index))
    conn.execute(delete(tender_flags))
    conn.execute(delete(tender_suppliers))
    conn.execute(delete(tender_parties))
    conn.execute(delete(supplier_wins))
    conn.execute(delete(organisation_rivals))
    imported = set(conn.execute(select(ocds_releases.c.ocid).distinct()).scalars())
    conn.execute(delete(submission_ids))
    conn.execute(delete(officers))
    last = 0
    while True:
        rows = conn.execute(
            select(*EVENT_COLUMNS).select_from(EVENTS_FROM).where(events.c.id > last).order_by(events.c.id).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            last = row.id
            if row.ocid in stopped or row.ocid in imported or row.ocid in (HEADS_OCID, registry.ORDERS_OCID):
                continue
            event = stored_event(row)
            if event.payload is None:  # withheld by an order: its type still moves the tender
                if event.withheld_by is not None and row.ocid != registry.REGISTRY_OCID:
                    at = datetime.fromisoformat(event.parsed_envelope.recorded_at).astimezone(UTC)
                    state = states.get(row.ocid) or rules.TenderState(ocid=row.ocid)
                    states[row.ocid] = rules.apply_withheld(state, row.type, at, seq=row.seq, order=event.withheld_by)
                continue
            try:
                envelope, payload = event.parsed_envelope, event.parsed_payload
            except FormatError as exc:  # stored before input was bounded: too deep to read
                refusals.append(Refusal(ocid=row.ocid, seq=row.seq, type=row.type, field=exc.field, reason=exc.reason))
                continue
            at = datetime.fromisoformat(envelope.recorded_at).astimezone(UTC)
            try:
                if row.ocid == registry.REGISTRY_OCID:
                    registry.apply(conn, row.type, payload, event_id=row.id, at=at)
                else:
                    state = states.get(row.ocid) or rules.TenderState(ocid=row.ocid)
                    states[row.ocid] = rules.apply(state, row.type, payload, at)
            except (InvalidArgumentError, ConflictError) as exc:
                refusals.append(Refusal(ocid=row.ocid, seq=row.seq, type=row.type, field=exc.field, reason=exc.reason))
                stopped.add(row.ocid)
                continue
            submission = envelope.submission
            if submission is None:
                continue
            used = conn.execute(
                select(submission_ids.c.event_id).where(submission_ids.c.submission_id == submission["submissionId"])
            ).first()
            if used is not None:
                reason = f"{submission['submissionId']!r} was already recorded (event {used.event_id})"
                refusals.append(
                    Refusal(ocid=row.ocid, seq=row.seq, type=row.type, field="submission.submissionId", reason=reason)
                )
                continue
            conn.execute(
                insert(submission_ids).values(
                    submission_id=submission["submissionId"], event_id=row.id, signer=submission["officer"]
                )
            )
    for state in states.values():
        if state.status is None:  # only withheld events that imply no status: nothing to list
            continue
        assert state.updated_at is not None
        store_state(conn, state, datetime.fromisoformat(state.updated_at))
    importer.reproject(conn, sorted(imported))
    return refusals
