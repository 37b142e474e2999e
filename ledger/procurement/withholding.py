"""Withholding orders (docs/privacy.md): events of the log that withhold payloads, whole or field
by field, while every entry, leaf hash and proof stays as it was.

A ``privacy.withholding`` event is recorded by an administrator under :data:`ORDERS_OCID` (a
log-level pseudo-tender, like the officers' registry). Its payload names the order (``reference``,
``authority``, ``legal_basis``) and its ``targets``: log indices, each with the JSON Pointers of
the fields to withhold, or without them for the whole payload. :func:`apply` runs inside the
transaction that appends the order (``record``'s check hook): it integrates the order (so the
order has its log index when it takes effect), withholds every target's stored payload
(``payloads.body`` set to NULL, or rewritten with the fields as JSON null and the v2 disclosure's
salts replaced by digests; ``withheld_by`` = the order's index), then scrubs every copy derived
from the withheld bytes (projections and their full-text words, compiled releases, parties,
suppliers and red flags) by re-projecting the affected tenders from what remains. Anything
refused raises before anything is written: nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, or_, select, update

from ledger import sequencer
from ledger.core import commitment, jsonsafe
from ledger.core.canonical import canonical_bytes
from ledger.core.envelope import payload_bytes
from ledger.core.errors import ConflictError, FormatError, InvalidArgumentError, NotFoundError
from ledger.core.heads import HEADS_OCID
from ledger.log import Log
from ledger.store.reader import EVENT_COLUMNS, EVENTS_FROM, MAX_STORED_DEPTH, stored_event
from ledger.store.schema import (
    events,
    ledger_flags,
    log_entries,
    ocds_releases,
    payloads,
    tender_awarded,
    tender_index,
    tender_parties,
)
from ledger.submission import Recorded, Submission

from . import payloads as models
from . import redflags, rules
from .importer import reproject as reproject_imported
from .officers import ORDERS_OCID, REGISTRY_OCID
from .record import store_state

EVENT_TYPE = "privacy.withholding"
#: Log-level ocids whose events no order may target: the log's own bookkeeping, the registry, the orders.
UNTARGETABLE = (REGISTRY_OCID, ORDERS_OCID, HEADS_OCID)


@dataclass(frozen=True, slots=True, kw_only=True)
class Withheld:
    """What an order did to one event."""

    index: int
    event_id: int
    ocid: str
    fields: tuple[str, ...] | None  # None: the whole payload


def record_order(log: Log, order: Any, *, now: datetime) -> tuple[Recorded, list[Withheld]]:
    """Record the withholding order ``order`` (its payload) and carry it out, in one transaction;
    return the recorded event and what it withheld. Returns only after the commit: the order is
    then integrated (it has its log index) and its targets withheld.

    The door for orders (``ledger.procurement.record.record`` refuses them): callers check that
    an administrator asks. Raises :class:`InvalidArgumentError` for a payload that is not an
    order and as :func:`apply`; nothing is recorded then.
    """
    if now.tzinfo is None:
        raise InvalidArgumentError("now", "needs a timezone-aware datetime")
    models.validate(EVENT_TYPE, order)
    item = Submission(ocid=ORDERS_OCID, type=EVENT_TYPE, payload=order)
    done: list[Withheld] = []

    def check(conn: Connection, _items: Sequence[Submission], recorded: list[Recorded]) -> None:
        done.extend(apply(conn, order, event_id=recorded[0].event_id, now=now))

    [recorded] = sequencer.append_many(log.engine, [item], origin=log.origin, now=now, check=check, _single=True)
    return recorded, done


def apply(conn: Connection, payload: Any, *, event_id: int, now: datetime) -> list[Withheld]:
    """Carry out the order just appended as event ``event_id``, in the caller's transaction:
    check every target, integrate the order, withhold, scrub and re-project. Returns what it
    withheld.

    Orders build on orders: a target an earlier order withheld in part may be named again, for
    further fields (only those not yet withheld are withheld by this order) or the whole payload.
    Every withheld release's dedupe digest (``ocds_releases.release_digest``) is cleared.

    Raises :class:`InvalidArgumentError` (naming ``payload.targets[i]...``) for a target that is
    not an integrated entry, an entry of the log's own ocids or another order, a pointer naming
    the envelope, or fields on an entry whose payload is not committed field by field;
    :class:`ConflictError` for a target already withheld whole, or whose every named field is
    already withheld. Nothing is written then.
    """
    order = models.WithholdingOrder.model_validate(payload)
    seen: set[int] = set()
    planned: list[tuple[int, Withheld, Any]] = []
    rows = _targets(conn, [t.index for t in order.targets])
    for i, target in enumerate(order.targets):
        field = f"payload.targets[{i}]"
        if target.index in seen:
            raise InvalidArgumentError(f"{field}.index", f"log index {target.index} is named twice in this order")
        seen.add(target.index)
        row = rows.get(target.index)
        if row is None:
            raise InvalidArgumentError(
                f"{field}.index",
                f"log index {target.index} is not an entry of the log (not recorded, or not integrated)",
            )
        event = stored_event(row)
        if event.ocid in UNTARGETABLE:
            kind = {REGISTRY_OCID: "the officers' registry", ORDERS_OCID: "a withholding order"}.get(
                event.ocid, "the log's heads commitments"
            )
            raise InvalidArgumentError(
                f"{field}.index", f"log index {target.index} is an event of {kind}, which no order may withhold"
            )
        if event.payload is None:
            if event.withheld_by is not None:
                raise ConflictError(
                    f"{field}.index",
                    f"log index {target.index} ({event.ocid} seq {event.seq}) is already withheld whole by the"
                    f" order at log index {event.withheld_by}: nothing of it is left to withhold",
                )
            raise ConflictError(f"{field}.index", f"log index {target.index} has no payload stored to withhold")
        fields = None if target.fields is None else tuple(target.fields)
        if fields is not None:
            fields = _check_fields(event, fields, f"{field}.fields")
        planned.append(
            (target.index, Withheld(index=target.index, event_id=event.event_id, ocid=event.ocid, fields=fields), event)
        )
    index = sequencer.integrate_within(conn, event_id, now=now)
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # freed pages zeroed: the old bytes are not left in the file's free space
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    done: list[Withheld] = []
    for _, withheld, event in planned:
        if withheld.fields is None:
            # the disclosure goes too: its salts would let anyone test a guessed payload against the commitment
            values: dict[str, Any] = {"body": None, "disclosure": None, "withheld_by": index}
        else:
            values = {**_withhold_fields(event, withheld.fields, index), "withheld_by": index}
        conn.execute(update(payloads).where(payloads.c.event_id == withheld.event_id).values(**values))
        done.append(withheld)
    # the import's dedupe digest of a withheld release (whole or in part) goes in the same transaction
    conn.execute(
        update(ocds_releases)
        .where(ocds_releases.c.event_id.in_([w.event_id for w in done]))
        .values(release_digest=None)
    )
    reproject(conn, sorted({w.ocid for w in done}), now=now)
    if sqlite:
        conn.exec_driver_sql("PRAGMA secure_delete = OFF")
    return done


def _targets(conn: Connection, indices: Sequence[int]) -> dict[int, Any]:
    """The stored events at ``indices`` (those that exist), by index."""
    if not indices:
        return {}
    query = (
        select(*EVENT_COLUMNS, log_entries.c.idx)
        .select_from(EVENTS_FROM.join(log_entries, log_entries.c.event_id == events.c.id))
        .where(log_entries.c.idx.in_(sorted(set(indices))))
        .with_for_update()
    )
    return {int(row.idx): row for row in conn.execute(query)}


def _check_fields(event: Any, fields: Sequence[str], field: str) -> tuple[str, ...]:
    """Field pointers: never into the envelope; only on entries committed field by field (v2).
    Returns those not yet withheld (an order may build on an earlier one); raises
    :class:`ConflictError` when every one of them is already withheld."""
    for j, pointer in enumerate(fields):
        if pointer.split("/")[1] in ("envelope", "~envelope"):
            raise InvalidArgumentError(
                f"{field}[{j}]",
                f"{pointer!r} names the envelope: an entry is the log and is never withheld, only its payload",
            )
    if len(set(fields)) != len(fields):
        raise InvalidArgumentError(field, "names a pointer twice")
    if event.disclosure is None:
        raise InvalidArgumentError(
            field,
            f"the entry at log index {event.index} is an envelope v1 entry: its payload is committed as a whole"
            " and can only be withheld whole (leave out fields)",
        )
    disclosure = _disclosure(event)
    already = commitment.withheld_fields(disclosure)
    left = tuple(p for p in fields if p not in already)
    if not left:
        named = ", ".join(f"{p} (order at log index {already[p]})" for p in fields)
        raise ConflictError(
            field,
            f"log index {event.index} ({event.ocid} seq {event.seq}): every field it names is already withheld: {named}",
        )
    _check_v2_fields(event, disclosure, left, field)
    return left


def _check_v2_fields(event: Any, disclosure: dict[str, Any], fields: Sequence[str], field: str) -> None:
    """Envelope v2: every pointer must be a separately committed field (in F) not yet withheld
    (a dry run of :func:`ledger.core.commitment.withhold_fields`, its errors named in the order)."""
    try:
        commitment.withhold_fields(event.parsed_payload, disclosure, fields, 0)
    except InvalidArgumentError as exc:
        raise exc.renamed(field + exc.field.removeprefix("fields")) from exc


def _disclosure(event: Any) -> dict[str, Any]:
    found: dict[str, Any] = jsonsafe.loads(
        event.disclosure, field=f"{event.ocid} seq {event.seq} disclosure", max_depth=MAX_STORED_DEPTH
    )
    return found


def _withhold_fields(event: Any, fields: Sequence[str], order: int) -> dict[str, Any]:
    """The new ``body`` and ``disclosure`` of a v2 entry with ``fields`` withheld by ``order``."""
    body, disclosure = commitment.withhold_fields(event.parsed_payload, _disclosure(event), fields, order)
    return {"body": payload_bytes(body), "disclosure": canonical_bytes(disclosure, field="disclosure")}


def reproject(conn: Connection, ocids: Sequence[str], *, now: datetime) -> None:
    """Rewrite every copy derived from ``ocids``' payloads from what their stored payloads now
    hold: the compiled release of an imported tender; the search row (and so its full-text
    words), awarded values, red flags, suppliers and parties of every tender; ledger-wide flags
    about them or about organisations no longer in any tender (recomputed at the next refresh)."""
    imported = set(
        conn.execute(select(ocds_releases.c.ocid).where(ocds_releases.c.ocid.in_(ocids)).distinct()).scalars()
    )
    if imported:
        reproject_imported(conn, sorted(imported))
    for ocid in ocids:
        if ocid not in imported:
            _replay(conn, ocid, now=now)
    conn.execute(
        delete(ledger_flags).where(
            or_(
                ledger_flags.c.subject.in_(list(ocids)),
                (ledger_flags.c.role != "contracting_process")
                & ledger_flags.c.subject.not_in(select(tender_parties.c.key).distinct()),
            )
        )
    )


def _replay(conn: Connection, ocid: str, *, now: datetime) -> None:
    """A natively recorded tender's projection rebuilt from its events' stored payloads: an event
    withheld whole moves the tender as its type implies (:func:`rules.apply_withheld`), and an
    event the rules refuse without the withheld data is skipped."""
    rows = conn.execute(
        select(*EVENT_COLUMNS).select_from(EVENTS_FROM).where(events.c.ocid == ocid).order_by(events.c.seq)
    )
    state: rules.TenderState | None = None
    for row in rows:
        event = stored_event(row)
        if event.payload is None:  # its type still moves the tender; its data is withheld under the order
            if event.withheld_by is not None:
                at = datetime.fromisoformat(event.parsed_envelope.recorded_at).astimezone(UTC)
                state = rules.apply_withheld(
                    state or rules.TenderState(ocid=ocid), event.type, at, seq=event.seq, order=event.withheld_by
                )
            continue
        try:
            payload = event.parsed_payload
            at = datetime.fromisoformat(event.parsed_envelope.recorded_at).astimezone(UTC)
            state = rules.apply(state or rules.TenderState(ocid=ocid), event.type, payload, at)
        except (InvalidArgumentError, ConflictError, FormatError):
            continue
    if state is not None and state.status is not None:  # (withheld events alone may give it none)
        store_state(conn, state, now.astimezone(UTC), flags=True)
        return
    conn.execute(delete(tender_index).where(tender_index.c.ocid == ocid))
    conn.execute(delete(tender_awarded).where(tender_awarded.c.ocid == ocid))
    redflags.store(conn, [(ocid, None, {})])


def order_of(conn: Connection, index: int) -> dict[str, Any]:
    """The withholding order at log index ``index``: its payload (reference, authority,
    legal basis, targets). Raises :class:`NotFoundError` if there is none."""
    row = conn.execute(
        select(*EVENT_COLUMNS)
        .select_from(EVENTS_FROM.join(log_entries, log_entries.c.event_id == events.c.id))
        .where(log_entries.c.idx == index, events.c.ocid == ORDERS_OCID, events.c.type == EVENT_TYPE)
    ).first()
    if row is None or row.payload is None:
        raise NotFoundError(f"no withholding order at log index {index}")
    return jsonsafe.loads(bytes(row.payload), field=f"order {index}", max_depth=MAX_STORED_DEPTH)  # type: ignore[no-any-return]


def references(conn: Connection, indices: Sequence[int]) -> dict[int, str]:
    """The ``reference`` of each withholding order among ``indices`` (those that are orders)."""
    wanted = sorted(set(indices))
    if not wanted:
        return {}
    rows = conn.execute(
        select(log_entries.c.idx, payloads.c.body)
        .select_from(EVENTS_FROM.join(log_entries, log_entries.c.event_id == events.c.id))
        .where(log_entries.c.idx.in_(wanted), events.c.ocid == ORDERS_OCID, events.c.type == EVENT_TYPE)
    )
    out: dict[int, str] = {}
    for idx, body in rows:
        if body is not None:
            out[int(idx)] = str(
                jsonsafe.loads(bytes(body), field=f"order {idx}", max_depth=MAX_STORED_DEPTH).get("reference")
            )
    return out


def index_of(conn: Connection, event_id: int) -> int:
    """The log index of event ``event_id``; :class:`NotFoundError` if it is not integrated."""
    found = conn.execute(select(log_entries.c.idx).where(log_entries.c.event_id == event_id)).scalar()
    if found is None:
        raise NotFoundError(f"event {event_id} is not integrated")
    return int(found)


def earlier_orders(conn: Connection, index: int, before: int) -> list[int]:
    """The log indices of the orders, recorded after the entry at ``index`` and before the order
    at ``before`` (the one that withheld it whole), that withheld fields of it first: the orders a
    payload withheld whole was withheld in part by (its disclosure, which named them, is gone)."""
    rows = conn.execute(
        select(log_entries.c.idx, payloads.c.body)
        .select_from(EVENTS_FROM.join(log_entries, log_entries.c.event_id == events.c.id))
        .where(
            log_entries.c.idx > index,
            log_entries.c.idx < before,
            events.c.ocid == ORDERS_OCID,
            events.c.type == EVENT_TYPE,
        )
        .order_by(log_entries.c.idx)
    )
    out: list[int] = []
    for idx, body in rows:
        if body is None:
            continue
        order = jsonsafe.loads(bytes(body), field=f"order {idx}", max_depth=MAX_STORED_DEPTH)
        targets = order.get("targets") if isinstance(order, dict) else None
        if any(isinstance(t, dict) and t.get("index") == index and t.get("fields") for t in targets or []):
            out.append(int(idx))
    return out
