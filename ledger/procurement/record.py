"""Recording procurement events: validation, signatures, rules and projections in one transaction.

:func:`record` is what the HTTP API (and the import and demo commands) call to record events.
Everything it checks is checked inside the transaction that appends the events, while every
tender concerned is locked (``ledger.sequencer.append_many``'s ``check`` hook), so either the
events, the tenders' new states, the officers' registry, the used submission ids and whatever
``on_recorded`` writes are all committed, or nothing is. Writers to one tender take turns on its
row lock: each sees the state the previous one committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Text, bindparam, delete, insert, literal_column, null, select, union_all
from sqlalchemy.exc import IntegrityError

from ledger import sequencer
from ledger.core.envelope import VERSION_1, VERSION_2, Envelope, check_event_type, check_ocid, format_timestamp
from ledger.core.errors import (
    ConflictError,
    FieldError,
    InvalidArgumentError,
    InvariantError,
    LedgerError,
    SignatureError,
    naming,
)
from ledger.core.heads import HEADS_OCID, HEADS_TYPE
from ledger.log import Log
from ledger.store.db import insert_many, read_transaction, write_transaction
from ledger.store.schema import submission_ids, tender_awarded, tender_index, tenders
from ledger.submission import Recorded, Submission

from . import fulltext, officers, payloads, privacy, redflags, rules

SignaturePolicy = Literal["optional", "required"]
OnRecorded = Callable[[Connection, list[Recorded]], None]


def record(
    log: Log,
    items: Sequence[Submission],
    *,
    now: datetime,
    signatures: SignaturePolicy,
    chain_id: int,
    on_recorded: OnRecorded | None = None,
) -> list[Recorded]:
    """Record ``items`` atomically, in order, if every one of them is acceptable; return them.

    Returns only after the commit. Checks, naming the field (``items[2].`` first when there are
    several items):

    - each payload against its type (:mod:`payloads`); officer events only under
      :data:`officers.REGISTRY_OCID`, tender events never there;
    - each signed submission (``item.submission`` + ``item.signature``): it must be the
      envelope's own, on ``chain_id``, recover the officer it names, that officer must be
      registered at ``now`` and its submission id never recorded before; with
      ``signatures="required"`` an unsigned tender event is refused (registry events may be
      unsigned: the HTTP layer admits them from administrators only);
    - the tender's rules (:mod:`rules`), against the state its earlier events left.

    Then ``on_recorded(conn, recorded)`` runs in the same transaction (for example to store an
    idempotency key). Raises :class:`InvalidArgumentError`, :class:`ConflictError` or
    :class:`SignatureError`; nothing is recorded then.
    """
    plan = _plan(log, items, now=now, signatures=signatures, chain_id=chain_id, on_recorded=on_recorded)
    if isinstance(plan, Grouped):
        return log.group.run(plan.work, key=plan.key, together=plan.together)
    return plan()


@dataclass(frozen=True, slots=True)
class Grouped:
    """A single tender event's write as :func:`record` hands it to the log's group commit
    (``log.group``): the work each member can run alone in a savepoint, its key (the ocid), and
    what writes it together with its neighbours."""

    work: Callable[[Connection], list[Recorded]]
    key: str
    together: tuple[sequencer.Together, Any]


def grouped(
    log: Log,
    item: Submission,
    *,
    now: datetime,
    signatures: SignaturePolicy,
    chain_id: int,
    on_recorded: OnRecorded | None = None,
) -> Grouped | None:
    """What :func:`record` of the single event ``item`` hands to ``log.group``, checked as far as
    it can be without the database (raising what :func:`record` raises then); for a caller that
    queues it itself (:meth:`sequencer.GroupCommit.submit`). None for an event :func:`record`
    writes alone (the officers' registry's), then not started."""
    plan = _plan(log, [item], now=now, signatures=signatures, chain_id=chain_id, on_recorded=on_recorded)
    return plan if isinstance(plan, Grouped) else None


def _plan(
    log: Log,
    items: Sequence[Submission],
    *,
    now: datetime,
    signatures: SignaturePolicy,
    chain_id: int,
    on_recorded: OnRecorded | None,
) -> Grouped | Callable[[], list[Recorded]]:
    """:func:`record`'s checks that need no database, then what records ``items``: a single tender
    event's group commit member, or the function that records them."""
    if signatures not in ("optional", "required"):
        raise InvalidArgumentError("signatures", f"must be 'optional' or 'required', got {signatures!r}")
    if now.tzinfo is None:
        raise InvalidArgumentError("now", "needs a timezone-aware datetime")
    if not items:
        return list
    single = len(items) == 1
    models: list[BaseModel] = []  # each payload as validated, for the rules (not validated twice)
    for i, item in enumerate(items):
        with naming("" if single else f"items[{i}]."):
            models.append(_precheck(item, signatures))
    items = [committing(item) for item in items]
    registry = {item.ocid == officers.REGISTRY_OCID for item in items}
    if len(registry) > 1:
        # Kept apart so that lock order stays acyclic: see _hold_registry.
        raise InvalidArgumentError(
            "items", "officer events are recorded in batches of their own, not with tender events"
        )
    at = now.astimezone(UTC)
    ocids = sorted({item.ocid for item in items} - {officers.REGISTRY_OCID})
    guess: _Guess | None = None
    verified: str | FieldError | None = None  # a single signed event's signer, checked before its batch

    def check(conn: Connection, _items: Sequence[Submission], recorded: list[Recorded]) -> None:
        if registry == {False} and any(item.submission is not None for item in items):
            _hold_registry(conn)
        texts = _read_states(conn, ocids)  # each tender's state as stored, read once for all of them
        if guess is not None and guess.texts == texts:  # as when guessed: the same rules, the same states
            for i, (item, done) in enumerate(zip(items, recorded, strict=True)):
                if item.submission is not None:
                    with naming("" if single else f"items[{i}]."):
                        _check_signature(conn, item, done, chain_id=chain_id, at=at, verified=verified)
            _write_store(conn, guess.store)
        else:
            before = _parse_states(texts)
            states: dict[str, rules.TenderState] = {}
            for i, (item, done) in enumerate(zip(items, recorded, strict=True)):
                with naming("" if single else f"items[{i}]."):
                    _check_signature(conn, item, done, chain_id=chain_id, at=at, verified=verified)
                    if item.ocid == officers.REGISTRY_OCID:
                        officers.apply(conn, item.type, item.payload, event_id=done.event_id, at=at)
                    else:
                        _advance(states, before, item, at, models[i])
            _write_store(conn, _plan_store(states, _wases(before), dict.fromkeys(states, at)))
        if on_recorded is not None:
            on_recorded(conn, recorded)

    if single and registry == {False}:
        # Concurrent single events share a transaction (group commit); registry events, which
        # lock the registry exclusively, stay alone so that batches lock tenders in ocid order.
        # They are written together (_record_together), signed or not, with their on_recorded;
        # ``work`` (one savepoint each) is what they run when they cannot be.
        prepared = sequencer.prepare(items)
        verified = _verified(items[0], prepared[0], log.origin, now, chain_id)
        single_item = _Single(
            origin=log.origin, entry=(items[0], prepared[0], now), model=models[0], chain_id=chain_id,
            on_recorded=on_recorded, verified=verified,
        )  # fmt: skip
        return Grouped(
            lambda conn: sequencer.append_prepared(conn, items, prepared, origin=log.origin, now=now, check=check),
            items[0].ocid,
            (_record_together, single_item),
        )
    if single or registry == {True}:
        return lambda: sequencer.append_many(log.engine, items, origin=log.origin, now=now, check=check, _single=single)
    # A batch of tender events: what does not need the tenders' locks is computed before taking
    # them, on the heads and states as they are now (each payload's bytes and commitment, the
    # envelopes and leaf hashes, the rules, the new states and their rows); under the locks the
    # heads and states are read again and what was computed is written if they have not moved,
    # else computed again there. The locked part of a bulk request is then mostly reads and inserts.

    def write() -> list[Recorded]:
        nonlocal guess
        prepared = sequencer.prepare(items)
        placed = None
        if _early(log):
            with read_transaction(log.engine) as conn:
                placed = sequencer.place(conn, items, prepared, origin=log.origin, now=now)
                guess = _guess(_read_states(conn, ocids), items, models, at)
        with write_transaction(log.engine) as conn:
            return sequencer.append_prepared(
                conn, items, prepared, origin=log.origin, now=now, check=check, placed=placed
            )

    return write


def _early(log: Log) -> bool:
    """Whether a bulk request computes before taking its tenders' locks (then checks under them):
    on SQLite, where the write lock is the database's and what it holds is what other writers
    wait for. PostgreSQL locks only the request's tenders, and the early work, read and checked
    twice, cost more CPU an event than it saved (bench/RESULTS-writes.md, round 5b)."""
    return log.engine.dialect.name == "sqlite"


@dataclass(frozen=True, slots=True)
class _Guess:
    """A batch's rules and new states computed before its tenders are locked: the states as read
    then (their JSON), and what storing the states they move to writes."""

    texts: dict[str, str | None]
    store: _Store


def _guess(
    texts: dict[str, str | None], items: Sequence[Submission], models: list[BaseModel], at: datetime
) -> _Guess | None:
    """The rules applied to ``items`` from the stored states ``texts`` (no database): None when an
    item is refused (its error is raised, as always, under the locks)."""
    before = _parse_states(texts)
    states: dict[str, rules.TenderState] = {}
    try:
        for item, model in zip(items, models, strict=True):
            _advance(states, before, item, at, model)
    except LedgerError:
        return None
    return _Guess(texts, _plan_store(states, _wases(before), dict.fromkeys(states, at)))


def _advance(
    states: dict[str, rules.TenderState],
    before: dict[str, rules.TenderState | None],
    item: Submission,
    at: datetime,
    model: BaseModel,
) -> None:
    """Apply ``item`` to its tender's state in ``states`` (copied from ``before`` on its first event)."""
    state = states.get(item.ocid)
    if state is None:  # copied once, then advanced by each of its events in turn
        stored = before[item.ocid]
        state = states[item.ocid] = (
            rules.TenderState(ocid=item.ocid) if stored is None else stored.model_copy(deep=True)
        )
    rules.advance(state, item.type, item.payload, at, model=model)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Single:
    """One request of one tender event, as :func:`_record_together` records it: the log's origin,
    the event (what :func:`sequencer.prepare` made of it, its time), its payload as validated, the
    chain its signature must be on, and what the request writes with it (an idempotency key)."""

    origin: str
    entry: sequencer.Entry
    model: BaseModel
    chain_id: int
    on_recorded: OnRecorded | None
    #: A signed event's signer, or why its signature is refused, found before the batch (None:
    #: unsigned, or to be verified in the batch).
    verified: str | FieldError | None = None


def _verified(
    item: Submission, made: sequencer.Prepared, origin: str, now: datetime, chain_id: int
) -> str | FieldError | None:
    """The signer of ``item``'s submission or the error refusing its signature, checked before its
    batch's locks (the secp256k1 recovery is most of a signed write's extra CPU): what it checks
    is the same wherever the event is placed. Raised, if an error, at the event's turn in the
    batch (after its ``prev``), as when checked there."""
    if item.submission is None:
        return None
    envelope = sequencer.sketch(item, made, origin=origin, now=now)
    if envelope is None:
        return None
    try:
        return _signer(envelope, chain_id=chain_id)
    except FieldError as exc:
        return exc


def _signer(envelope: Envelope, *, chain_id: int) -> str:
    """:func:`signing.verify_submission`, imported at the first signed event: eth-account (~7 MB
    of modules) stays out of the processes that import this module for its projections alone
    (the import's checking workers, :mod:`importer`)."""
    from ledger.core.signing import verify_submission

    return verify_submission(envelope, chain_id=chain_id)


def _record_together(conn: Connection, singles: list[_Single]) -> list[Any]:
    """Concurrent requests of one tender event each, recorded as one bulk append (``log.group``'s
    ``together``): what each request's :func:`record` returns, or the error it raises; each event
    is checked (its signature, the rules) against its tender's state as the events before it left
    it, and each request's ``on_recorded`` runs after all are written. Raises
    :class:`sequencer.Apart` if an ``on_recorded`` fails (a concurrent request stored its
    idempotency key first): the requests then run one savepoint each, that one refused alone."""
    admission = _Rules(singles)
    results = sequencer.append_each(conn, [one.entry for one in singles], origin=singles[0].origin, admission=admission)
    for one, done in zip(singles, results, strict=True):
        if one.on_recorded is not None and not isinstance(done, Exception):
            try:
                one.on_recorded(conn, [done])
            except LedgerError as exc:
                raise sequencer.Apart(str(exc)) from exc
    return [done if isinstance(done, Exception) else [done] for done in results]


#: What storing a tender's new state compares with its state as stored (:func:`_was`): the buyer,
#: the figures its red flags are a function of, and its awarded values per currency; None for a
#: tender without a stored state.
_Was = tuple[str | None, str | None, dict[str, Any], dict[str, float]] | None


def _wases(states: Mapping[str, rules.TenderState | None]) -> dict[str, _Was]:
    return {ocid: _was(state) for ocid, state in states.items()}


def _was(state: rules.TenderState | None) -> _Was:
    if state is None:
        return None
    return state.buyer_id, state.buyer_name, redflags.compiled_of_state(state), dict(state.awarded_by_currency)


class _Rules:
    """The checks of :func:`record` as :func:`sequencer.append_each` asks them, for a batch of
    single events (``singles``): each tender's state read once and advanced in place by each event
    admitted (a refused event's tender is rebuilt from the stored state and the events admitted
    before it), each signature verified and its officer's registration and submission id checked,
    the new states and the submission ids stored once for all."""

    def __init__(self, singles: list[_Single]) -> None:
        self.singles = singles
        self.conn: Connection | None = None
        self.texts: dict[str, str | None] = {}
        self.held: dict[str, redflags.RowSets] = {}  # each tender's red-flag rows as stored
        self.was: dict[str, _Was] = {}
        self.states: dict[str, rules.TenderState] = {}
        self.at: dict[str, datetime] = {}
        self.admitted: dict[str, list[int]] = {}  # the entries admitted, per tender
        self.used: dict[str, int] = {}  # submission ids recorded before (their event)
        self.signed: list[tuple[str, str] | None] = []  # per admitted entry: submission id, signer
        self.taken: set[str] = set()  # the submission ids admitted in this batch

    def locked(self, conn: Connection, ocids: list[str]) -> None:
        self.conn = conn
        self.texts, self.held = _read_states_and_rows(conn, ocids)
        for ocid, text in self.texts.items():
            state = None if text is None else rules.TenderState.from_json(text)
            self.was[ocid] = _was(state)
            self.states[ocid] = state or rules.TenderState(ocid=ocid)
        ids = [_submission_id(one.entry[0]) for one in self.singles if one.entry[0].submission is not None]
        if ids:
            _hold_registry(conn)
            self.used = {str(k): int(v) for k, v in conn.execute(_USED_IDS, {"ids": sorted(set(ids))})}

    def admit(self, i: int, item: Submission, now: datetime, envelope: Envelope) -> None:
        one = self.singles[i]
        at = now.astimezone(UTC)
        signed = None
        if item.submission is not None:
            if self.conn is None:
                raise InvariantError("append_each admits an event before locking its tenders")
            signer = _signer(envelope, chain_id=one.chain_id) if one.verified is None else one.verified
            if isinstance(signer, FieldError):
                raise signer
            if not officers.is_registered(self.conn, signer, at=at):
                raise SignatureError(
                    "submission.officer", f"{signer} is not a registered officer at {format_timestamp(at)}"
                )
            submission_id = _submission_id(item)
            used = self.used.get(submission_id)
            if used is not None:
                raise ConflictError("submission.submissionId", f"{submission_id!r} was already recorded (event {used})")
            if submission_id in self.taken:
                raise ConflictError("submission.submissionId", f"{submission_id!r} was already recorded")
            signed = (submission_id, signer)
        state = self.states[item.ocid]
        try:
            rules.advance(state, item.type, item.payload, at, model=one.model)
        except LedgerError:
            self.states[item.ocid] = self._rebuilt(item.ocid)  # advance may have left it half changed
            raise
        self.admitted.setdefault(item.ocid, []).append(i)
        self.at[item.ocid] = at
        self.signed.append(signed)
        if signed is not None:
            self.taken.add(signed[0])

    def _rebuilt(self, ocid: str) -> rules.TenderState:
        """``ocid``'s state as stored, advanced by the events admitted so far."""
        text = self.texts[ocid]
        state = rules.TenderState(ocid=ocid) if text is None else rules.TenderState.from_json(text)
        for i in self.admitted.get(ocid, []):
            item, _, now = self.singles[i].entry
            rules.advance(state, item.type, item.payload, now.astimezone(UTC), model=self.singles[i].model)
        return state

    def finish(self, conn: Connection, items: Sequence[Submission], recorded: list[Recorded]) -> None:
        del items  # the states were moved as they were admitted
        moved = {ocid: self.states[ocid] for ocid in self.admitted}
        _write_store(conn, _plan_store(moved, self.was, self.at), held=self.held)
        rows = [
            {"submission_id": signed[0], "event_id": done.event_id, "signer": signed[1]}
            for signed, done in zip(self.signed, recorded, strict=True)
            if signed is not None
        ]
        if rows:  # a concurrent transaction's id makes this fail: the batch then runs one by one
            conn.execute(_INSERT_USED, rows)


def _submission_id(item: Submission) -> str:
    submission = item.submission
    return str(submission.get("submissionId")) if isinstance(submission, dict) else ""


_USED_IDS = select(submission_ids.c.submission_id, submission_ids.c.event_id).where(
    submission_ids.c.submission_id.in_(bindparam("ids", expanding=True))
)
_INSERT_USED = insert(submission_ids)


def committing(item: Submission) -> Submission:
    """``item`` as it is recorded: an envelope v2 whose separately committed fields (F) are the
    personal data the privacy rules mark (docs/spec.md §2.5). A signed submission keeps what its
    officer signed: with a disclosure, the commitment (v2); without one, the payload's bare SHA-256
    (recorded as v1, docs/spec.md §7)."""
    if item.version != VERSION_2:
        return item
    if item.submission is not None and item.disclosure is None:
        return replace(item, version=VERSION_1, fields=())
    fields = privacy.committed_fields(privacy.places(item.type, item.payload))
    if item.disclosure is None:
        return item if item.fields == fields else replace(item, fields=fields)
    if item.submission is None:
        raise InvalidArgumentError("disclosure", "only a signed submission brings its own disclosure")
    given = item.disclosure.get("fields") if isinstance(item.disclosure, dict) else None
    if not isinstance(given, dict) or sorted(given) != list(fields):
        shown = sorted(given) if isinstance(given, dict) else given
        raise InvalidArgumentError(
            "disclosure.fields",
            f"must commit separately to the fields the privacy rules mark, {list(fields)}, got {shown!r}",
        )
    return item


def _precheck(item: Submission, signatures: SignaturePolicy) -> BaseModel:
    """What needs no database: ocid and type, where the type may be recorded, the payload;
    returns the payload as validated (:func:`payloads.validate`)."""
    check_ocid(item.ocid)
    check_event_type(item.type)
    if item.ocid == HEADS_OCID:
        raise InvalidArgumentError("ocid", f"{HEADS_OCID} is reserved for the log's heads commitments")
    if item.type == HEADS_TYPE:
        raise InvalidArgumentError("type", f"{HEADS_TYPE} is recorded by the log itself, never by a client")
    if item.ocid == officers.ORDERS_OCID or item.type == "privacy.withholding":
        raise InvalidArgumentError(
            "type" if item.ocid != officers.ORDERS_OCID else "ocid",
            "withholding orders are recorded only as orders, by an administrator"
            " (POST /api/v1/withholding-orders, tenderproof privacy withhold)",
        )
    registry = item.ocid == officers.REGISTRY_OCID
    if registry and item.type not in officers.EVENT_TYPES:
        raise InvalidArgumentError("type", f"only officer events are recorded under {officers.REGISTRY_OCID}")
    if not registry and item.type in officers.EVENT_TYPES:
        raise InvalidArgumentError(
            "ocid", f"officer events are recorded under {officers.REGISTRY_OCID}, not {item.ocid}"
        )
    model = payloads.validate(item.type, item.payload)
    if signatures == "required" and not registry and item.submission is None:
        raise InvalidArgumentError("signature", "is required: this log records only submissions signed by an officer")
    return model


def _hold_registry(conn: Connection) -> None:
    """Share-lock the registry's head until commit, so no officer is registered or revoked while
    a signature is being accepted on the strength of the registry as it is (PostgreSQL; SQLite
    writers are serialised anyway). Registry batches hold only this row and tender batches take
    it last, after their own, so the locks cannot form a cycle."""
    conn.execute(_HOLD_REGISTRY)


_HOLD_REGISTRY = select(tenders.c.ocid).where(tenders.c.ocid == officers.REGISTRY_OCID).with_for_update(read=True)


def _check_signature(
    conn: Connection,
    item: Submission,
    done: Recorded,
    *,
    chain_id: int,
    at: datetime,
    verified: str | FieldError | None,
) -> None:
    """``verified``: the signer, or the error refusing the signature, when :func:`_verified` found
    them before the transaction (one event), else None (verified here)."""
    if item.submission is None:
        return
    signer = _signer(done.envelope, chain_id=chain_id) if verified is None else verified
    if isinstance(signer, FieldError):
        raise signer
    if not officers.is_registered(conn, signer, at=at):
        raise SignatureError("submission.officer", f"{signer} is not a registered officer at {format_timestamp(at)}")
    submission_id = str(item.submission["submissionId"])
    used = conn.execute(
        select(submission_ids.c.event_id).where(submission_ids.c.submission_id == submission_id)
    ).scalar_one_or_none()
    if used is not None:
        raise ConflictError("submission.submissionId", f"{submission_id!r} was already recorded (event {used})")
    try:
        with conn.begin_nested():
            conn.execute(
                insert(submission_ids).values(submission_id=submission_id, event_id=done.event_id, signer=signer)
            )
    except IntegrityError as exc:  # recorded by a concurrent transaction since the select above
        raise ConflictError("submission.submissionId", f"{submission_id!r} was already recorded") from exc


_STATE_OF = select(tender_index.c.state).where(tender_index.c.ocid == bindparam("ocid"))
_STATES_OF = select(tender_index.c.ocid, tender_index.c.state).where(
    tender_index.c.ocid.in_(bindparam("ocids", expanding=True))
)
_CHUNK = 500  # ocids per query, well under every engine's parameter limit


def _read_states(conn: Connection, ocids: Sequence[str]) -> dict[str, str | None]:
    """Each tender's state as its projection stores it, its JSON (``None`` for a tender without
    one), in one query per 500 tenders (a bulk request of 50 tenders made 50 queries). One tender
    (every single-event write) is read with a plain equality, which needs no rendering of an ``IN``
    list."""
    found: dict[str, str | None] = dict.fromkeys(ocids)
    if len(ocids) == 1:
        found[ocids[0]] = conn.execute(_STATE_OF, {"ocid": ocids[0]}).scalar_one_or_none()
        return found
    for start in range(0, len(ocids), _CHUNK):
        for ocid, text in conn.execute(_STATES_OF, {"ocids": list(ocids[start : start + _CHUNK])}):
            found[ocid] = text
    return found


def _read_states_and_rows(
    conn: Connection, ocids: Sequence[str]
) -> tuple[dict[str, str | None], dict[str, redflags.RowSets]]:
    """:func:`_read_states` and :func:`redflags.stored_rows_of` of ``ocids`` in one statement (a
    round trip fewer on PostgreSQL for a batch of single events, which reads both once its tenders
    are locked)."""
    texts: dict[str, str | None] = dict.fromkeys(ocids)
    rows: list[Sequence[Any]] = []
    for start in range(0, len(ocids), _CHUNK):
        for row in conn.execute(_STATES_AND_ROWS, {"ocids": list(ocids[start : start + _CHUNK])}):
            if row[1] == "x":
                texts[row[0]] = row[2]
            else:
                rows.append(row)
    return texts, redflags.row_sets_read(ocids, rows)


#: Each tender's stored state (a row ``(ocid, 'x', its JSON, ...)``) and its red-flag rows.
_STATES_AND_ROWS = union_all(
    select(tender_index.c.ocid, literal_column("'x'"), tender_index.c.state, *[null().cast(Text)] * 3).where(
        tender_index.c.ocid.in_(bindparam("ocids", expanding=True))
    ),
    *redflags.STORED_ROWS,
)


def _parse_states(texts: Mapping[str, str | None]) -> dict[str, rules.TenderState | None]:
    return {ocid: None if text is None else rules.TenderState.from_json(text) for ocid, text in texts.items()}


@dataclass(frozen=True, slots=True)
class _Store:
    """What storing a batch's new states writes, computed without the database (:func:`_plan_store`):
    their projection rows, the states whose awarded values moved, and the red-flag rows of those
    whose figures moved."""

    projections: list[dict[str, Any]]
    awarded: list[rules.TenderState]
    moved: dict[str, redflags.Rows]


def _plan_store(states: dict[str, rules.TenderState], was: Mapping[str, _Was], at: Mapping[str, datetime]) -> _Store:
    """What :func:`_write_store` writes for the new ``states`` (their projection updated at
    ``at[ocid]``). Red flags, buyer-supplier pairs and parties (:func:`redflags.rows_of`) are a
    function of the buyer and the figures :func:`redflags.compiled_of_state` takes (method, value,
    period, bidders, awards, contracts), so an event that moves none of them from ``was`` (the
    states as stored, :func:`_was`; a clarification, a reveal, a payment...) leaves them as they
    are; when those figures move (a bid commitment counts one more bidder), the new rows are
    computed once here."""
    moved: dict[str, redflags.Rows] = {}
    for ocid, state in states.items():
        stored = was[ocid]
        after = redflags.compiled_of_state(state)
        if stored is not None and stored[:3] == (state.buyer_id, state.buyer_name, after):
            continue
        moved[ocid] = redflags.rows_of(ocid, state.buyer_id, after, buyer_name=state.buyer_name)
    return _Store(
        projections=[{**projection(state), "updated_at": at[ocid]} for ocid, state in states.items()],
        awarded=[
            state
            for ocid, state in states.items()
            if (stored := was[ocid]) is None or stored[3] != state.awarded_by_currency
        ],
        moved=moved,
    )


def _write_store(conn: Connection, store: _Store, *, held: Mapping[str, redflags.RowSets] | None = None) -> None:
    """Write ``store``: the projection rows in one executemany, the awarded values and the red flags
    of the tenders that need them, each in one set of statements for all. The red-flag rows of a
    tender that had rows are compared with those the database holds for it (read for all such
    tenders at once, unless ``held`` has them: read with the tenders' states, under their locks)
    and written only when they differ."""
    if not store.projections:
        return
    # every moved tender's rows as stored (a new tender's: none), to compare with and to hand to
    # store_rows, which then reads none of them again
    if held is None:
        held = redflags.stored_rows_of(conn, list(store.moved))
    flagged = [(ocid, rows) for ocid, rows in store.moved.items() if held[ocid] != redflags.row_sets(rows)]
    upsert_projection(conn, store.projections)
    if store.awarded:
        store_awarded(conn, store.awarded)
    if flagged:
        ocids = [ocid for ocid, _ in flagged]
        redflags.store_rows(
            conn,
            ocids,
            [rows for _, rows in flagged],
            listed={row["ocid"]: row["listed_at"] for row in store.projections},  # as just written
            before=held,
        )


def _instant(text: str | None) -> datetime | None:
    return None if text is None else payloads.parse_datetime(text).astimezone(UTC)


def projection(state: rules.TenderState) -> dict[str, Any]:
    """The ``tender_index`` columns of ``state`` (except ``updated_at``)."""
    suppliers = state.suppliers
    return {
        "ocid": state.ocid,
        "title": state.title,
        "buyer_id": state.buyer_id,
        "buyer_name": state.buyer_name,
        "status": state.status,
        "method": state.method,
        "value_amount": state.value_amount,
        "currency": state.currency,
        "tender_start": _instant(state.tender_start),
        "tender_end": _instant(state.tender_end),
        "awarded_amount": state.awarded_amount,
        "suppliers": "\n".join(suppliers),
        "search_text": fulltext.document(
            state.title, state.description, *state.items, state.buyer_name, state.buyer_id, *suppliers
        ),
        "published_at": _instant(state.published_at),
        "listed_at": _instant(state.listed_at),
        "state": state.to_json(),
    }


def store_state(
    conn: Connection,
    state: rules.TenderState,
    at: datetime,
    *,
    flags: bool = True,
    rows: redflags.Rows | None = None,
    awarded: bool = True,
) -> None:
    """Write ``state``'s projection row (``updated_at`` = ``at``) and, with ``awarded``, its
    awarded value per currency, with ``flags`` its red flags (leave them out only where the stored
    ones are known to be the same; ``rows``: those already computed by :func:`redflags.rows_of`
    for ``state``)."""
    upsert_projection(conn, [{**projection(state), "updated_at": at}])
    if awarded:
        store_awarded(conn, [state])
    if flags and rows is not None:
        redflags.store_rows(conn, [state.ocid], [rows])
    elif flags:
        redflags.store(conn, [(state.ocid, state.buyer_id, redflags.compiled_of_state(state))])


def store_awarded(conn: Connection, states: Sequence[rules.TenderState]) -> None:
    """Replace the awarded value per currency (``tender_awarded``) of each of ``states``."""
    store_awarded_rows(conn, [s.ocid for s in states], [row for state in states for row in awarded_rows(state)])


def awarded_rows(state: rules.TenderState) -> list[dict[str, Any]]:
    """The ``tender_awarded`` rows of one tender: what it awarded per currency."""
    return [
        {"ocid": state.ocid, "currency": currency[:3], "amount": amount}
        for currency, amount in sorted(state.awarded_by_currency.items())
    ]


def store_awarded_rows(conn: Connection, ocids: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Replace the ``tender_awarded`` rows of ``ocids`` by ``rows`` (:func:`awarded_rows`; rows of
    other tenders are added: tenders first projected now, which have none to replace)."""
    if ocids:
        conn.execute(_DELETE_AWARDED, {"ocids": list(ocids)})
    if rows:
        insert_many(conn, tender_awarded, rows)


def upsert_projection(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert or replace ``tender_index`` rows (all with the same columns), in one executemany."""
    insert_many(conn, tender_index, rows, replace_on=("ocid",))


_DELETE_AWARDED = delete(tender_awarded).where(tender_awarded.c.ocid.in_(bindparam("ocids", expanding=True)))
