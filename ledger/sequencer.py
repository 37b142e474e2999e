"""Sequencing (append) and integration, kept apart as in Tessera.

Internal to :mod:`ledger`: only the procurement layer appends (``ledger.procurement.record``
and its importer), after checking what may be recorded; nothing above it imports this module
(a contract of the layer check, ``lint-imports``). Integration is reached through
:class:`ledger.log.Log`.

* :func:`append` / :func:`append_many` fix an event's place in its tender's own
  history (``seq``, ``prev``) and make it durable. They MUST NOT return before
  the event is committed; they do not give it a log index.
* :func:`integrate` later gives pending events dense global indices, extends
  the tree's tiles and records the new tree head, one atomic transaction per
  batch, so a crash at any point leaves either the old head or the new one and
  running it again simply continues.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from .core import commitment, heads
from .core import tiles as tile_math
from .core.canonical import sha256_hex
from .core.envelope import (
    VERSION_1,
    VERSION_2,
    Envelope,
    check_event_type,
    check_ocid,
    format_timestamp,
    payload_bytes,
    plain_leaf_data,
)
from .core.errors import ConflictError, FieldError, InvalidArgumentError, InvariantError, LedgerError, naming
from .core.merkle import leaf_hash
from .store import heads as heads_store
from .store.db import insert_columns, insert_many, insert_or_ignore, insert_rows, write_transaction
from .store.reader import TreeHead, read_payload, tile_reader
from .store.schema import events, log_entries, log_state, payloads, pending, tenders, tiles, tree_heads
from .submission import Recorded, Submission, Unset

_CHUNK = 500  # ocids per locking query, well under every engine's parameter limit


#: What :func:`prepare` computes of an item: the payload's bytes, what binds it in the envelope
#: (``payload_sha256`` in version 1, ``payload_commitment`` in version 2) and the v2 disclosure.
Prepared = tuple[bytes, str, dict[str, Any] | None]


def _prepare(item: Submission, position: str) -> Prepared:
    """Validate what can be validated before taking any lock; return the payload bytes, its hash
    or commitment, and its disclosure (version 2)."""
    with naming(position):
        check_ocid(item.ocid)
        check_event_type(item.type)
        data = item.canonical if item.canonical is not None else payload_bytes(item.payload)
        if item.version == VERSION_1 or (item.submission is not None and item.disclosure is None):
            # version 1; a signed submission without a disclosure: its officer signed the bare hash
            return data, sha256_hex(data), None
        if item.version != VERSION_2:
            raise InvalidArgumentError("v", f"unsupported envelope version {item.version!r}, expected 1 or 2")
        if item.disclosure is not None:
            if commitment.withheld_fields(item.disclosure):
                raise InvalidArgumentError("disclosure", "a new payload has no withheld field")
            return data, commitment.recompute(item.payload, item.disclosure), item.disclosure
        with naming("payload."):
            bound, disclosure = commitment.new_commitment(item.payload, item.fields, payload_bytes=data)
        return data, bound, disclosure


def append(engine: Engine, item: Submission, *, origin: str, now: datetime) -> Recorded:
    """Record one event. Returns only after the event is durably committed.

    Raises :class:`InvalidArgumentError` (naming the field) for bad input and
    :class:`ConflictError` if ``item.prev`` is given and is not the tender's
    head; in both cases nothing is written.
    """
    return append_many(engine, [item], origin=origin, now=now, _single=True)[0]


#: A check run inside :func:`append_many`'s transaction, after the inserts and before the commit.
Check = Callable[[Connection, Sequence["Submission"], list["Recorded"]], None]


def append_many(
    engine: Engine,
    items: Sequence[Submission],
    *,
    origin: str,
    now: datetime,
    check: Check | None = None,
    _single: bool = False,
) -> list[Recorded]:
    """Record ``items`` atomically, in order: all are committed or none is.

    Returns only after the commit. Events of the same tender chain on each
    other in the order given. Errors as :func:`append`, naming the item
    (``items[3].payload.x``) when there are several.

    ``check``, when given, is called with the transaction's connection, ``items``
    and what they became, after they are inserted and while every tender they
    touch is locked (so it sees and writes each tender's state alone); whatever it
    raises rolls the whole append back and propagates, and whatever it writes on
    the connection commits with the events.
    """
    if not items:
        return []
    prepared = [_prepare(item, "" if _single else f"items[{i}].") for i, item in enumerate(items)]
    with write_transaction(engine) as conn:
        return _append(conn, items, prepared, origin=origin, now=now, check=check, single=_single)


def append_in(
    conn: Connection, items: Sequence[Submission], *, origin: str, now: datetime, check: Check | None = None
) -> list[Recorded]:
    """As :func:`append_many`, inside the caller's write transaction (``db.write_transaction``):
    the events are committed with it, or not at all. For bulk writers that need several batches
    in one transaction (an all-or-nothing import)."""
    if not items:
        return []
    prepared = [_prepare(item, f"items[{i}].") for i, item in enumerate(items)]
    return _append(conn, items, prepared, origin=origin, now=now, check=check, single=False)


def prepare(items: Sequence[Submission]) -> list[Prepared]:
    """What :func:`append_prepared` needs of ``items`` that takes no lock: each payload's bytes and
    hash (errors name ``items[i].`` when there are several). Run it before entering a transaction."""
    single = len(items) == 1
    return [_prepare(item, "" if single else f"items[{i}].") for i, item in enumerate(items)]


def append_prepared(
    conn: Connection,
    items: Sequence[Submission],
    prepared: list[Prepared],
    *,
    origin: str,
    now: datetime,
    check: Check | None = None,
    placed: Placed | None = None,
) -> list[Recorded]:
    """As :func:`append_in`, with ``prepared`` from :func:`prepare` (errors named as there).

    ``placed``, from :func:`place` for the same ``items``, ``prepared``, ``origin`` and ``now``: its
    envelopes are used if the tenders' heads, once locked, are still those it read (else the
    items are placed again on the heads as locked)."""
    if not items:
        return []
    return _append(conn, items, prepared, origin=origin, now=now, check=check, single=len(items) == 1, placed=placed)


@dataclass(frozen=True, slots=True)
class Placed:
    """``items`` chained on their tenders' heads as read before any lock (:func:`place`): the heads
    read (``(0, None)`` for a tender not there yet), each item's envelope and rows, the heads after."""

    heads: dict[str, tuple[int, str | None]]
    chained: list[_Chained]
    after: dict[str, tuple[int, str | None]]


def place(
    conn: Connection, items: Sequence[Submission], prepared: list[Prepared], *, origin: str, now: datetime
) -> Placed | None:
    """Chain ``items`` on their tenders' heads as committed now, read without locking them: the
    envelopes and leaf hashes, computed before the write transaction so that the part of a bulk
    append done holding the tenders' locks (and SQLite's write lock) is reads and inserts.
    :func:`append_prepared` uses them only if the heads it locks are the ones read here. None if
    an item does not chain on them (its error is raised, as always, under the locks)."""
    ocids = sorted({item.ocid for item in items})
    read: dict[str, tuple[int, str | None]] = dict.fromkeys(ocids, (0, None))
    for start in range(0, len(ocids), _CHUNK):
        for ocid, count, head in conn.execute(_READ_HEADS, {"ocids": ocids[start : start + _CHUNK]}):
            read[ocid] = (count, head)
    heads = dict(read)
    try:
        chained = [
            _chain(item, made, heads, origin=origin, now=now) for item, made in zip(items, prepared, strict=True)
        ]
    except LedgerError:
        return None
    return Placed(read, chained, heads)


#: What :func:`chain_ahead` makes of an item without the log: the head it was chained on (``seq``,
#: ``prev``), its envelope's bytes (the leaf data), its leaf hash and its disclosure's bytes.
Ahead = tuple[int, str | None, bytes, bytes, bytes | None]


def chain_ahead(items: Sequence[Submission], prepared: list[Prepared], *, origin: str, now: datetime) -> list[Ahead]:
    """Chain ``items`` as if each tender were new to the log (its first item at seq 0, each next
    after the one before), touching no database: for bulk writers that make the envelopes and
    leaf hashes in other processes while one process records. :func:`append_ahead` uses an
    item's only if its tender's head, once locked, is the one it was chained on. Raises what
    :func:`append_prepared` would for an item that cannot be placed (``items[i].``)."""
    heads: dict[str, tuple[int, str | None]] = {}
    out: list[Ahead] = []
    stamp = format_timestamp(now) if items and now.tzinfo is not None else ""
    for i, (item, made) in enumerate(zip(items, prepared, strict=True)):
        seq, prev = heads.setdefault(item.ocid, (0, None))
        _, bound, disclosure = made
        # an unsigned item's envelope written directly (no Envelope built) when plainly valid;
        # else placed as every append places one, which names what is wrong
        leaf_data = None
        if item.submission is None and item.signature is None and isinstance(item.prev, Unset):
            version = VERSION_1 if disclosure is None else VERSION_2
            leaf_data = plain_leaf_data(v=version, origin=origin, ocid=item.ocid, seq=seq, prev=prev, kind=item.type,
                                        recorded_at=stamp, bound=bound)  # fmt: skip
        if leaf_data is None:
            with naming("" if len(items) == 1 else f"items[{i}]."):
                chained = _chain(item, made, heads, origin=origin, now=now)
            out.append((seq, prev, chained.row["envelope"], chained.row["leaf_hash"], chained.body["disclosure"]))
            continue
        digest = leaf_hash(leaf_data)
        heads[item.ocid] = (seq + 1, digest.hex())
        out.append(
            (seq, prev, leaf_data, digest, None if disclosure is None else commitment.disclosure_bytes(disclosure))
        )
    return out


def lock(conn: Connection, ocids: Collection[str], *, now: datetime) -> dict[str, tuple[int, str | None]]:
    """Lock the tenders ``ocids`` for :func:`append_ahead` in the caller's write transaction (those
    missing are created empty, as every append does) and return their heads: ``(events, hex
    leaf hash of the last)``, ``(0, None)`` for a tender without events. A bulk writer reads
    what it needs of the tenders that have events once they are locked."""
    return _lock_heads(conn, sorted(set(ocids)), now)


def append_ahead(
    conn: Connection,
    items: Sequence[Submission],
    prepared: list[Prepared],
    ahead: Sequence[Ahead | None],
    heads: dict[str, tuple[int, str | None]],
    *,
    origin: str,
    now: datetime,
) -> list[int]:
    """As :func:`append_prepared`, on tenders locked by :func:`lock` (``heads``, what it returned;
    advanced here), with what :func:`chain_ahead` made of each item for the same ``origin`` and
    ``now`` (``ahead``; None where nothing was): an item chained on the head its tender has when
    its turn comes is written as made, any other is placed again on that head. Returns the new
    events' ids in order (their envelopes are the leaf data written). Every tender of ``heads``
    left without events is removed again. The same errors as :func:`append_prepared`."""
    rows: list[dict[str, Any]] = []
    bodies: list[dict[str, Any]] = []
    for i, (item, made, chained) in enumerate(zip(items, prepared, ahead, strict=True)):
        head = heads[item.ocid]
        if chained is not None and chained[:2] == head and isinstance(item.prev, Unset):
            seq, _prev, envelope, digest, disclosure = chained
            heads[item.ocid] = (seq + 1, digest.hex())
            rows.append({"ocid": item.ocid, "seq": seq, "type": item.type, "recorded_at": now, "envelope": envelope,
                         "leaf_hash": digest})  # fmt: skip
            bodies.append({"body": made[0], "disclosure": disclosure})
            continue
        with naming("" if len(items) == 1 else f"items[{i}]."):
            placed = _chain(item, made, heads, origin=origin, now=now)
        rows.append(placed.row)
        bodies.append(placed.body)
    ocids = sorted(heads)
    changed = {item.ocid for item in items}
    moved = [{"o": o, "n": heads[o][0], "h": heads[o][1], "at": now} for o in ocids if o in changed]
    ids = _write_rows(conn, rows, bodies, moved) if rows else []
    unused = [ocid for ocid in ocids if heads[ocid][0] == 0]
    if unused:
        conn.execute(_DELETE_EMPTY, {"ocids": unused})
    return ids


def sketch(item: Submission, made: Prepared, *, origin: str, now: datetime) -> Envelope | None:
    """``item``'s envelope as if it began its tender (``seq`` 0): its origin, ocid, type, payload
    binding, submission and signature are those it will have wherever it is placed, so what reads
    only those (a signature's check) can run before any lock. None if it cannot be made (its
    error is raised when it is placed)."""
    try:
        envelope, _ = _envelope(
            item, origin=origin, seq=0, prev=None, stamp=format_timestamp(now), digest=made[1], v2=made[2] is not None
        )
    except LedgerError:
        return None
    return envelope


T = TypeVar("T")


#: Runs the work of several members at once, in the batch's transaction: given each one's
#: argument, returns each one's result or the error refusing it (the others unaffected). What
#: it writes is rolled back, and the members run one by one, if it raises a database error or
#: :class:`Apart`.
Together = Callable[[Connection, list[Any]], list[Any]]


class Apart(Exception):
    """Raised by a :data:`Together` function when its members cannot be written together
    (one of them would fail after its event was written with the others: an idempotency key a
    concurrent request stored first, say). Nothing it wrote is kept; each member then runs its
    own ``work`` in a savepoint, which refuses that member alone, with its own error."""


#: Called on the leader's thread with a submitted member's result, or the error it raised, once
#: that is final (:meth:`GroupCommit.submit`).
Answer = Callable[[Any, BaseException | None], None]

#: A submitted member's ``work``, ``key`` and ``together``, as :meth:`GroupCommit.run` takes them.
Planned = tuple[Callable[[Connection], Any], str, "tuple[Together, Any] | None"]


class _Member(Generic[T]):
    """One caller's work in a :class:`GroupCommit`, and what became of it."""

    __slots__ = (
        "answer", "done", "error", "key", "lead", "prepare", "result", "retry", "taken", "together", "wake", "work",
    )  # fmt: skip

    def __init__(
        self,
        work: Callable[[Connection], T],
        key: str,
        together: tuple[Together, Any] | None,
        answer: Answer | None = None,
        prepare: Callable[[], Planned] | None = None,
    ) -> None:
        self.work = work
        #: A submitted member's: what gives its work, key and together, run by its leader
        #: before the batch (:meth:`GroupCommit.submit`).
        self.prepare = prepare
        self.key = key
        self.together = together
        #: A submitted member's (:meth:`GroupCommit.submit`): no thread waits for it, the leader
        #: answers it. None: a thread waits in :meth:`GroupCommit.run`.
        self.answer = answer
        #: Held from the start; released (once) to wake this member's waiting thread, which takes
        #: it again: a bare lock, not a ``threading.Event`` (whose ``set`` takes a ``Condition``
        #: and notifies, and whose ``wait`` makes a lock of its own each time; a wake per member
        #: of every batch, ~4 % of a write's server CPU). None for a submitted member.
        self.wake: threading.Lock | None = None
        if answer is None:
            self.wake = threading.Lock()
            self.wake.acquire()
        self.lead = False  # this member's thread runs the next batch
        self.done = False  # committed (result) or refused (error)
        self.retry = False  # run it again, alone, in its own transaction
        self.taken = False  # a leader has taken it from the queue (under the lock)
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Group commit: concurrent writers of one process share one transaction and one flush.

    :meth:`run` queues the caller's ``work``; the first caller that finds no batch running
    leads: it takes up to ``max_batch`` queued members, runs each one's ``work(conn)`` in a
    savepoint of one write transaction (``db.write_transaction``) and commits once, then hands
    the lead to the oldest member still queued. Every caller waits in its own thread (no thread
    of its own is started) and returns only after the commit that made its work durable, with
    its own result, or raises its own error. :meth:`submit` queues work that no thread waits
    for (an event loop's request): its batch's leader answers it, and a thread of the group's
    own leads when no waiting thread does (see there). Either way:

    - an error raised by a member's ``work`` rolls back that member's savepoint only; it is
      raised to that member's caller, and its neighbours commit;
    - members that bring the same ``together`` function, next to each other in key order, run
      as one call of it instead (a batch of single events written as one bulk append, each
      still answered with its own result or error); if it raises a database error or
      :class:`Apart`, its savepoint is rolled back and they run one by one as above (a batch
      that is one such run has no savepoint: its transaction is rolled back, and its members
      run one by one in a new one);
    - a database error in a member (a PostgreSQL deadlock, say), or any failure of the batch's
      transaction itself (its commit included), sends the members concerned back to run alone,
      each in a transaction of its own, exactly as without grouping; nothing of a failed batch
      was committed, so nothing runs twice.

    Members run in the order of their ``key`` (their tender's ocid), the order single
    transactions lock tenders in, so two batches of two processes cannot deadlock on tenders.
    With ``max_batch`` 1 every member runs alone. Thread-safe; one per engine per process.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise InvalidArgumentError("max_batch", f"must be >= 1, got {max_batch}")
        self.engine = engine
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Member[Any]] = deque()
        self._leading = False
        #: Released (once) to have the group's own thread lead (:meth:`_start_leader`).
        self._call = threading.Lock()
        self._call.acquire()
        self._leader: tuple[int, threading.Thread] | None = None  # the process that started it, the thread
        #: Batches committed and members they held, since the start (for metrics and tests).
        self.batches = 0
        self.members = 0

    def run(self, work: Callable[[Connection], T], *, key: str = "", together: tuple[Together, Any] | None = None) -> T:
        """Run ``work(conn)`` in a write transaction shared with concurrent callers; return its
        result once committed, or raise what it raised (then nothing of it was committed).

        ``together``, a function and this member's argument to it: the same work, to be run with
        that of its neighbours in one call of the function (its result, or the exception it
        returns for this member, must be what ``work`` would return or raise)."""
        if self.max_batch == 1:
            return self._alone(work)
        member: _Member[T] = _Member(work, key, together)
        with self._lock:
            self._queue.append(member)
            if not self._leading:
                self._leading = member.lead = True
        wake = member.wake
        assert wake is not None  # a waiting member's
        while not member.done and not member.retry:
            if member.lead:
                member.lead = False
                self._lead()
            else:
                wake.acquire()
        if member.retry:
            return self._alone(work)
        if member.error is not None:
            raise member.error
        return member.result  # type: ignore[return-value]

    def submit(self, prepare: Callable[[], Planned], *, answer: Answer) -> _Member[Any]:
        """Queue a member as :meth:`run` does, without waiting: ``prepare()`` gives its ``work``,
        ``key`` and ``together``; ``answer(result, error)`` is called once, on the thread that led
        its batch, after the commit that made it durable (or with the error refusing it, or the
        one ``prepare`` raised; then nothing of it was committed), unless it is withdrawn first
        (:meth:`withdraw`). Its leader runs ``prepare`` before the batch's transaction, and runs
        the member alone if it is to be retried. Returns the member (for :meth:`withdraw`).

        No thread waits for such a member, so none can be handed the lead: a leader that finds
        one at the head of the queue leads on, and when no batch is running the group's own
        thread leads. An event loop submits a single write this way: the write costs one
        hand-off to a leader and one answer back, where a waiting thread cost a wake to start,
        a wake at its batch's end and one to answer (bench/RESULTS-writes.md, round 8); and the
        loop keeps to HTTP, the write's checks are its leader's."""
        if self.max_batch == 1:
            raise InvalidArgumentError("max_batch", "submit needs a group of more than one member")
        member: _Member[Any] = _Member(_unprepared, "", None, answer, prepare)
        with self._lock:
            self._queue.append(member)
            lead = not self._leading
            if lead:
                self._leading = True
        if lead:
            self._start_leader()
        return member

    def withdraw(self, member: _Member[Any]) -> bool:
        """Take a submitted ``member`` out of the queue if no leader has taken it yet (its caller
        gave up): it is then never run nor answered. False if a batch has taken it: it will be
        answered, committed or refused, as any other."""
        with self._lock:
            if member.taken:
                return False
            self._queue.remove(member)
            return True

    def _start_leader(self) -> None:
        """Have the group's own thread run :meth:`_lead` (started on first use, again in a
        process forked with it: threads are not inherited)."""
        leader = self._leader
        if leader is None or leader[0] != os.getpid():
            thread = threading.Thread(target=self._leading_thread, name="group-commit", daemon=True)
            self._leader = (os.getpid(), thread)
            thread.start()
        try:  # noqa: SIM105 (once a lead: no context manager on this path)
            self._call.release()
        except RuntimeError:  # a call not yet taken: that lead serves the queue as it finds it
            pass

    def _leading_thread(self) -> None:
        # A daemon: uvicorn waits for the requests in flight at shutdown, so the queue is drained.
        while True:
            self._call.acquire()
            self._lead()

    def _alone(self, work: Callable[[Connection], T]) -> T:
        with write_transaction(self.engine) as conn:
            return work(conn)

    def _lead(self) -> None:
        """Run one batch (this thread's member, if any, is its first), then pass the lead on to
        the oldest member still queued; lead on while that one is a submitted member (no thread
        of its own to hand the lead to)."""
        while True:
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                for member in batch:
                    member.taken = True
            try:
                ready = _prepared(batch)
                if ready:
                    self._run_batch(sorted(ready, key=lambda m: m.key))
            except BaseException:  # not the members' (those are theirs): this thread stops leading
                if self._hand_on(batch):
                    self._start_leader()
                raise
            if not self._hand_on(batch):
                return

    def _hand_on(self, batch: list[_Member[Any]]) -> bool:
        """After ``batch``: hand the lead to the oldest queued member's thread, or end it; answer
        the batch's members (:meth:`_finish`). True if this thread is to lead on (the oldest
        queued member is a submitted one)."""
        again = False
        with self._lock:
            if not self._queue:
                self._leading = False
            elif self._queue[0].answer is None:
                successor = self._queue[0]
                successor.lead = True
                _wake(successor)
            else:
                again = True
        try:
            self._finish(batch)
        except BaseException:
            if again:  # no one else leads: the group's own thread takes it up
                self._start_leader()
            raise
        return again

    def _finish(self, batch: list[_Member[Any]]) -> None:
        """Wake the batch's waiting members (each checks what became of it, and runs alone if it
        is to be retried); answer the submitted ones, running alone here those to be retried."""
        submitted: list[_Member[Any]] = []
        for member in batch:
            if not member.done:
                member.retry = True
            if member.answer is None:
                _wake(member)
            else:
                submitted.append(member)
        for member in submitted:
            result, error = member.result, member.error
            if member.retry:
                try:
                    result, error = self._alone(member.work), None
                except Exception as exc:  # the member's own error, answered to its caller
                    result, error = None, exc
            member.answer(result, error)  # type: ignore[misc]

    def _run_batch(self, batch: list[_Member[Any]]) -> None:
        if len(batch) == 1:  # no neighbour to protect: no savepoint, as alone
            (member,) = batch
            try:
                member.result = self._alone(member.work)
            except Exception as exc:  # the member's own error, raised to its caller
                member.error = exc
            member.done = True
            self.batches += 1
            self.members += 1
            return
        runs = _runs(batch)
        try:
            if len(runs) == 1 and runs[0][0].together is not None:
                try:
                    outcomes = self._all_together(batch)
                except _Apart:  # nothing written: its members run one savepoint each
                    outcomes = self._one_by_one([[member] for member in batch])
            else:
                outcomes = self._one_by_one(runs)
        except Exception:  # nothing committed (the commit failed): every member is retried alone
            return
        self.batches += 1
        self.members += len(batch)
        for member, result, error in outcomes:
            member.result, member.error, member.done = result, error, True

    def _all_together(self, batch: list[_Member[Any]]) -> Outcomes:
        """Run ``batch`` (members of one ``together`` function) as one call of it, in a transaction
        of its own without a savepoint (two round trips fewer on PostgreSQL: a batch of single
        events is most often one such run). Raises :class:`_Apart` (nothing written) where
        :func:`_together` would have rolled back its savepoint."""
        with write_transaction(self.engine) as conn:
            try:
                return _outcomes(batch, _call_together(conn, batch))
            except (DBAPIError, Apart) as exc:
                raise _Apart from exc

    def _one_by_one(self, runs: list[list[_Member[Any]]]) -> Outcomes:
        """Run ``runs`` in one transaction: each run of several members as one call of their
        ``together`` function in a savepoint, each other member in a savepoint of its own."""
        outcomes: Outcomes = []
        with write_transaction(self.engine) as conn:
            for run in runs:
                if len(run) > 1 and _together(conn, run, outcomes):
                    continue
                for member in run:
                    try:
                        with conn.begin_nested():
                            result = member.work(conn)
                    except DBAPIError:
                        continue  # left undone: retried alone after this batch
                    except Exception as exc:  # the member's own error, raised to its caller
                        outcomes.append((member, None, exc))
                    else:
                        outcomes.append((member, result, None))
        return outcomes


Outcomes = list[tuple[_Member[Any], Any, BaseException | None]]


class _Apart(Exception):
    """:meth:`GroupCommit._all_together`'s call raised a database error or :class:`Apart`: its
    transaction is rolled back and its members are to run one savepoint each."""


def _unprepared(conn: Connection) -> Any:
    raise InvariantError("a submitted member run before it was prepared")


def _prepared(batch: list[_Member[Any]]) -> list[_Member[Any]]:
    """``batch``'s members ready to run: each submitted one prepared (one whose ``prepare``
    raised is done, with that error)."""
    ready: list[_Member[Any]] = []
    for member in batch:
        prepare = member.prepare
        if prepare is not None:
            member.prepare = None
            try:
                member.work, member.key, member.together = prepare()
            except Exception as exc:  # the member's own error, answered to its caller
                member.error, member.done = exc, True
                continue
        ready.append(member)
    return ready


def _wake(member: _Member[Any]) -> None:
    """Wake ``member``'s thread (it checks what became of it, then waits again if need be)."""
    try:  # noqa: SIM105 (a wake per member of every batch: no context manager on this path)
        member.wake.release()  # type: ignore[union-attr]
    except RuntimeError:  # woken already and not yet awake: one wake is enough
        pass


def _runs(batch: list[_Member[Any]]) -> list[list[_Member[Any]]]:
    """``batch`` cut into runs of neighbours with the same ``together`` function (each member
    without one is a run of its own), in order."""
    runs: list[list[_Member[Any]]] = []
    for member in batch:
        fn = None if member.together is None else member.together[0]
        if fn is not None and runs and runs[-1][0].together is not None and runs[-1][0].together[0] is fn:
            runs[-1].append(member)
        else:
            runs.append([member])
    return runs


def _together(conn: Connection, run: list[_Member[Any]], outcomes: Outcomes) -> bool:
    """Run ``run``'s members in one call of their ``together`` function, in a savepoint, adding
    each one's outcome; False (nothing of it written) if that raised a database error or
    :class:`Apart`."""
    try:
        with conn.begin_nested():
            results = _call_together(conn, run)
    except (DBAPIError, Apart):
        return False
    outcomes.extend(_outcomes(run, results))
    return True


def _call_together(conn: Connection, run: list[_Member[Any]]) -> list[Any]:
    """``run``'s ``together`` function called once with each member's argument."""
    fn = run[0].together[0]  # type: ignore[index]
    return fn(conn, [member.together[1] for member in run])  # type: ignore[index]


def _outcomes(run: list[_Member[Any]], results: list[Any]) -> Outcomes:
    """Each of ``run``'s members with its result, or the exception returned for it as its error."""
    return [
        (member, None, result) if isinstance(result, Exception) else (member, result, None)
        for member, result in zip(run, results, strict=True)
    ]


def _append(
    conn: Connection,
    items: Sequence[Submission],
    prepared: list[Prepared],
    *,
    origin: str,
    now: datetime,
    check: Check | None,
    single: bool,
    placed: Placed | None = None,
) -> list[Recorded]:
    ocids = sorted({item.ocid for item in items})
    heads = _lock_heads(conn, ocids, now)
    chained: list[_Chained] = []
    if placed is not None and all(heads[ocid] == placed.heads.get(ocid) for ocid in ocids):
        chained, heads = placed.chained, dict(placed.after)  # no event came in between: as placed
    else:
        for i, (item, made) in enumerate(zip(items, prepared, strict=True)):
            with naming("" if single else f"items[{i}]."):
                chained.append(_chain(item, made, heads, origin=origin, now=now))
    result = _write(conn, chained, [{"o": ocid, "n": heads[ocid][0], "h": heads[ocid][1], "at": now} for ocid in ocids])
    if check is not None:
        check(conn, items, result)
    return result


@dataclass(frozen=True, slots=True)
class _Chained:
    """An event placed on its tender's chain, not yet written: its ``events`` row, its payload
    row (without the event id) and what its caller gets back."""

    row: dict[str, Any]
    body: dict[str, Any]
    envelope: Envelope
    disclosure: dict[str, Any] | None


def _chain(
    item: Submission, made: Prepared, heads: dict[str, tuple[int, str | None]], *, origin: str, now: datetime
) -> _Chained:
    """Place ``item`` after its tender's head in ``heads`` and advance that head. Raises
    :class:`ConflictError` (``heads`` unchanged) if ``item.prev`` is given and is not the head."""
    data, digest, disclosure = made
    count, head = heads[item.ocid]
    if not isinstance(item.prev, Unset) and item.prev != head:
        raise ConflictError("prev", f"tender {item.ocid} head is {head!r}, not {item.prev!r}")
    envelope, leaf_data = _envelope(
        item, origin=origin, seq=count, prev=head, stamp=format_timestamp(now), digest=digest, v2=disclosure is not None
    )
    digest_leaf = leaf_hash(leaf_data)
    heads[item.ocid] = (count + 1, digest_leaf.hex())
    row = {"ocid": item.ocid, "seq": count, "type": item.type, "recorded_at": now, "envelope": leaf_data,
           "leaf_hash": digest_leaf}  # fmt: skip
    body = {"body": data, "disclosure": None if disclosure is None else commitment.disclosure_bytes(disclosure)}
    return _Chained(row, body, envelope, disclosure)


def _write(conn: Connection, chained: list[_Chained], moved: list[dict[str, Any]]) -> list[Recorded]:
    """:func:`_write_rows` of the events ``chained``; what each event became."""
    ids = _write_rows(conn, [c.row for c in chained], [c.body for c in chained], moved)
    return [
        Recorded(event_id=event_id, envelope=c.envelope, leaf_hash=c.row["leaf_hash"], disclosure=c.disclosure)
        for event_id, c in zip(ids, chained, strict=True)
    ]


def _write_rows(
    conn: Connection, rows: list[dict[str, Any]], bodies: list[dict[str, Any]], moved: list[dict[str, Any]]
) -> list[int]:
    """Insert the events ``rows``, their pending entries and their payloads (``bodies``, in the
    same order, without the event id), and move their tenders' heads (``moved``:
    :data:`_UPDATE_HEADS`'s parameters, one a tender); the new events' ids, in order. Every
    writer of events goes through here (single writes, group commits, bulk requests, imports).

    On PostgreSQL all of it is one statement (:data:`_WRITE_EVENTS`), where it was four round
    trips (events, pending, payloads, heads), each a wait of the batch that every member of a
    group commit waits on (bench/RESULTS-writes.md, round 9). On SQLite (no round trips) one
    executemany a table."""
    if conn.dialect.name == "postgresql":
        return _write_events(conn, rows, bodies, moved)
    if len(rows) == 1:
        ids = [conn.execute(_INSERT_EVENT, rows[0]).scalar_one()]
        conn.execute(_INSERT_PENDING, {"event_id": ids[0]})
        conn.execute(_INSERT_PAYLOAD, {"event_id": ids[0], **bodies[0]})
    else:
        ids = _insert_events(conn, rows)
        insert_many(conn, pending, [{"event_id": event_id} for event_id in ids])
        insert_many(conn, payloads, [{"event_id": i, **body} for i, body in zip(ids, bodies, strict=True)])
    if moved:
        conn.execute(_UPDATE_HEADS, moved)
    return ids


class Admission(Protocol):
    """What the layer above checks and writes for :func:`append_each`, inside its transaction."""

    def locked(self, conn: Connection, ocids: list[str]) -> None:
        """Every tender of the batch (``ocids``, sorted) is locked: read what :meth:`admit` needs."""

    def admit(self, i: int, item: Submission, now: datetime, envelope: Envelope) -> None:
        """Accept ``item`` (the ``i``-th entry, placed as ``envelope``) after those admitted before
        it, or raise its own :class:`FieldError` (then it is left out, as if never sent). Runs
        between reads and writes, once per event: it writes nothing (reads only what
        :meth:`locked` could not know, a signer's registration)."""

    def finish(self, conn: Connection, items: Sequence[Submission], recorded: list[Recorded]) -> None:
        """Write what the admitted ``items`` (as ``recorded``) change, before the commit."""


#: One event of :func:`append_each`: the submission, what :func:`prepare` made of it, its time.
Entry = tuple[Submission, Prepared, datetime]


def append_each(
    conn: Connection, entries: Sequence[Entry], *, origin: str, admission: Admission
) -> list[Recorded | FieldError]:
    """Record each of ``entries`` that may be recorded, in order, in the caller's write transaction,
    written as a bulk append is (one lock of every tender, one executemany per table); return, in
    ``entries``' order, what each became or its own refusal.

    Unlike :func:`append_many`, the entries are independent requests: one refused (its ``prev``
    is not the head its tender has after the entries before it, or ``admission.admit`` raises)
    is left out and its neighbours are recorded as if it had not been sent; a tender created for
    refused entries only is removed again. Each event is recorded at its own time. Database
    errors propagate (the caller rolls back and runs the entries some other way).
    """
    ocids = sorted({item.ocid for item, _, _ in entries})
    heads = _lock_heads(conn, ocids, min(now for _, _, now in entries))
    admission.locked(conn, ocids)
    outcomes: list[Recorded | FieldError | None] = []
    admitted: list[Submission] = []
    chained: list[_Chained] = []
    last: dict[str, datetime] = {}
    for i, (item, made, now) in enumerate(entries):
        before = heads[item.ocid]
        try:
            placed = _chain(item, made, heads, origin=origin, now=now)
            admission.admit(i, item, now, placed.envelope)
        except FieldError as exc:
            heads[item.ocid] = before
            outcomes.append(exc)
            continue
        outcomes.append(None)
        admitted.append(item)
        chained.append(placed)
        last[item.ocid] = now
    moved = [{"o": o, "n": heads[o][0], "h": heads[o][1], "at": last[o]} for o in sorted(last)]
    recorded = _write(conn, chained, moved) if chained else []
    unused = [ocid for ocid in ocids if heads[ocid][0] == 0]
    if unused:
        conn.execute(_DELETE_EMPTY, {"ocids": unused})
    if admitted:
        admission.finish(conn, admitted, recorded)
    done = iter(recorded)
    return [next(done) if outcome is None else outcome for outcome in outcomes]


def _write_events(
    conn: Connection, rows: list[dict[str, Any]], bodies: list[dict[str, Any]], moved: list[dict[str, Any]]
) -> list[int]:
    """PostgreSQL: :data:`_WRITE_EVENTS` of ``rows`` (``events`` rows), ``bodies`` (their payload
    rows, in the same order, without the event id) and ``moved`` (the heads); the new events' ids
    in order, found by their ``(ocid, seq)`` and checked to increase in that order."""
    columns: dict[str, list[Any]] = {name: [row[name] for row in rows] for name in _EVENT_COLUMNS}
    columns["body"] = [body["body"] for body in bodies]
    columns["disclosure"] = [body["disclosure"] for body in bodies]
    for name in ("o", "n", "h", "at"):
        columns[name] = [head[name] for head in moved]
    made = {(ocid, seq): int(i) for i, ocid, seq in conn.exec_driver_sql(_WRITE_EVENTS, columns)}
    return _ids_in_order(made, rows)


def _ids_in_order(made: dict[tuple[str, int], int], rows: list[dict[str, Any]]) -> list[int]:
    """The ids ``made`` (by ``(ocid, seq)``) of the events ``rows``, in their order; raises
    :class:`InvariantError` unless each row has one and they increase in that order."""
    if len(made) != len(rows):
        raise InvariantError(f"events inserted: expected {len(rows)} new ids, got {len(made)}")
    ids = [made[(row["ocid"], row["seq"])] for row in rows]
    if any(a >= b for a, b in itertools.pairwise(ids)):
        raise InvariantError("events inserted: ids not increasing in the order given")
    return ids


_EVENT_COLUMNS = ("ocid", "seq", "type", "recorded_at", "envelope", "leaf_hash")

#: PostgreSQL: a batch's events, their pending entries and payloads inserted and their tenders'
#: heads moved, in one statement (data-modifying CTEs; the foreign keys of ``pending`` and
#: ``payloads`` are checked at its end, when the events are there). Events are inserted in the
#: arrays' order, so an identity column numbers them in the order given.
_WRITE_EVENTS = """
WITH given AS (
    SELECT * FROM unnest(
        %(ocid)b::varchar[], %(seq)b::bigint[], %(type)b::varchar[], %(recorded_at)b::timestamptz[],
        %(envelope)b::bytea[], %(leaf_hash)b::bytea[], %(body)b::bytea[], %(disclosure)b::bytea[]
    ) WITH ORDINALITY AS given (ocid, seq, type, recorded_at, envelope, leaf_hash, body, disclosure, position)
), made AS (
    INSERT INTO events (ocid, seq, type, recorded_at, envelope, leaf_hash)
    SELECT ocid, seq, type, recorded_at, envelope, leaf_hash FROM given ORDER BY position
    RETURNING id, ocid, seq
), queued AS (
    INSERT INTO pending (event_id) SELECT id FROM made
), stored AS (
    INSERT INTO payloads (event_id, body, disclosure)
    SELECT made.id, given.body, given.disclosure FROM made JOIN given USING (ocid, seq)
), moved AS (
    UPDATE tenders SET event_count = head.n, head_hash = head.h, updated_at = head.at
    FROM unnest(%(o)b::varchar[], %(n)b::bigint[], %(h)b::varchar[], %(at)b::timestamptz[]) AS head (o, n, h, at)
    WHERE tenders.ocid = head.o
)
SELECT id, ocid, seq FROM made
"""


def _insert_events(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """SQLite: insert ``rows`` into ``events`` in order, on ``conn``'s write transaction; their ids
    in order. One executemany of a prepared statement (SQLAlchemy's ``RETURNING`` with the ids in
    parameter order runs one statement per row there): the write transaction holds the database's
    write lock, so the rows are the only ones inserted and SQLite gives them increasing ids (one
    more than the largest so far), which are read back after the insert and counted. (PostgreSQL
    inserts them within :data:`_WRITE_EVENTS`.)
    """
    before = conn.execute(_LAST_EVENT_ID).scalar() or 0
    insert_many(conn, events, rows)
    ids = [int(i) for i in conn.execute(_EVENT_IDS_AFTER, {"after": before}).scalars()]
    if len(ids) != len(rows):
        raise InvariantError(f"events inserted: expected {len(rows)} new ids, got {len(ids)}")
    return ids


def _envelope(
    item: Submission, *, origin: str, seq: int, prev: str | None, stamp: str, digest: str, v2: bool
) -> tuple[Envelope, bytes]:
    """The envelope of ``item`` at ``seq`` after ``prev`` (version 2 when ``v2``: ``digest`` is the
    payload's commitment), and its bytes (the leaf data); its errors name the submission's fields."""
    try:
        envelope = Envelope(
            v=VERSION_2 if v2 else VERSION_1,
            origin=origin,
            ocid=item.ocid,
            seq=seq,
            prev=prev,
            type=item.type,
            recorded_at=stamp,
            payload_sha256=None if v2 else digest,
            payload_commitment=digest if v2 else None,
            submission=item.submission,
            signature=item.signature,
        )
        return envelope, envelope.canonical_bytes()
    except InvalidArgumentError as exc:
        raise exc.renamed(exc.field.removeprefix("envelope.")) from exc


#: Statements of every append, built once (SQLAlchemy caches their compiled forms by identity).
_LOCK_HEADS = (
    select(tenders.c.ocid, tenders.c.event_count, tenders.c.head_hash)
    .where(tenders.c.ocid.in_(bindparam("ocids", expanding=True)))
    .order_by(tenders.c.ocid)
    .with_for_update()
)
_INSERT_EVENTS = insert(events).returning(events.c.id, sort_by_parameter_order=True)
_INSERT_EVENT = insert(events).returning(events.c.id)
_INSERT_PENDING = insert(pending)
_INSERT_PAYLOAD = insert(payloads)
_UPDATE_HEADS = (
    update(tenders)
    .where(tenders.c.ocid == bindparam("o"))
    .values(event_count=bindparam("n"), head_hash=bindparam("h"), updated_at=bindparam("at"))
)


_DELETE_EMPTY = delete(tenders).where(
    tenders.c.ocid.in_(bindparam("ocids", expanding=True)), tenders.c.event_count == 0
)

_READ_HEADS = select(tenders.c.ocid, tenders.c.event_count, tenders.c.head_hash).where(
    tenders.c.ocid.in_(bindparam("ocids", expanding=True))
)

_LAST_EVENT_ID = select(func.max(events.c.id))
_EVENT_IDS_AFTER = select(events.c.id).where(events.c.id > bindparam("after")).order_by(events.c.id)

_LOCK_HEAD = (
    select(tenders.c.event_count, tenders.c.head_hash).where(tenders.c.ocid == bindparam("ocid")).with_for_update()
)


#: PostgreSQL: the tenders of a batch created where missing and locked, in ocid order (the order of
#: the rows inserted), returning their heads, in one statement: a tender already there is "updated"
#: to itself, which locks it (``FOR NO KEY UPDATE``, as the update of its head will) and returns it
#: as it is once locked (its last committed head, after any writer it waited for).
_CLAIM_HEADS = """
INSERT INTO tenders (ocid, created_at, updated_at, event_count, head_hash)
SELECT ocid, %(at)s::timestamptz, %(at)s::timestamptz, 0, NULL
FROM unnest(%(ocids)b::varchar[]) WITH ORDINALITY AS given (ocid, position) ORDER BY position
ON CONFLICT (ocid) DO UPDATE SET event_count = tenders.event_count
RETURNING ocid, event_count, head_hash
"""


def _lock_heads(conn: Connection, ocids: list[str], now: datetime) -> dict[str, tuple[int, str | None]]:
    """Create missing tenders, then lock every tender row, both in ocid order (no deadlocks).

    With several tenders the insert comes first even when every tender exists: locking the
    existing rows first and inserting the missing ones after would take locks out of ocid order,
    and concurrent appends over overlapping new tenders deadlock on PostgreSQL. One tender (every
    single-event write) holds one lock whatever the order: its row is locked first, and inserted
    only when missing (one statement where two were). On PostgreSQL one statement for any number
    (:data:`_CLAIM_HEADS`)."""
    if conn.dialect.name == "postgresql":
        return {
            ocid: (count, head) for ocid, count, head in conn.exec_driver_sql(_CLAIM_HEADS, {"ocids": ocids, "at": now})
        }
    if len(ocids) == 1:
        (ocid,) = ocids
        found = conn.execute(_LOCK_HEAD, {"ocid": ocid}).first()
        if found is not None:
            return {ocid: (found[0], found[1])}
    insert_rows(
        conn,
        tenders,
        [{"ocid": o, "created_at": now, "updated_at": now, "event_count": 0, "head_hash": None} for o in ocids],
        ignore_on=("ocid",),
    )
    return _select_heads(conn, ocids)


def _select_heads(conn: Connection, ocids: list[str]) -> dict[str, tuple[int, str | None]]:
    heads: dict[str, tuple[int, str | None]] = {}
    for start in range(0, len(ocids), _CHUNK):
        for ocid, count, head in conn.execute(_LOCK_HEADS, {"ocids": ocids[start : start + _CHUNK]}):
            heads[ocid] = (count, head)
    return heads


def integrate(engine: Engine, *, now: datetime, batch_size: int = 50_000, heads_origin: str | None = None) -> TreeHead:
    """Integrate up to ``batch_size`` pending events; return the (possibly new) tree head.

    One transaction: the entries, the tiles, the tree head and the queue are
    updated together or not at all. Integrators take turns on the ``log_state``
    row, so running several at once is safe. Idempotent.

    With ``heads_origin`` (an anchoring round's integration, docs/spec.md §14.1): when this batch
    empties the queue as this transaction sees it, and the last integrated entry is not already a
    commitment, one heads commitment entry (of that origin) is appended and integrated in the
    same transaction, so the tree head returned ends with a commitment.
    """
    if batch_size < 1:
        raise InvalidArgumentError("batch_size", f"must be >= 1, got {batch_size}")
    with write_transaction(engine) as conn:
        head, count = _integrate_batch(conn, now=now, batch_size=batch_size)
        if heads_origin is not None and count < batch_size:
            head = _commit_heads(conn, head, origin=heads_origin, now=now)
    return head


def _integrate_batch(conn: Connection, *, now: datetime, batch_size: int) -> tuple[TreeHead, int]:
    """Integrate up to ``batch_size`` pending events in ``conn``'s transaction, under the
    ``log_state`` lock; return the tree head and how many were integrated."""
    size, root = conn.execute(
        select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1).with_for_update()
    ).one()
    head = TreeHead(size, bytes(root))
    batch = conn.execute(
        select(pending.c.event_id, events.c.leaf_hash)
        .join(events, events.c.id == pending.c.event_id)
        .order_by(pending.c.event_id)
        .limit(batch_size)
    ).all()
    if batch:
        head = _extend(conn, size, [row.event_id for row in batch], [bytes(row.leaf_hash) for row in batch], now)
        conn.execute(
            delete(pending).where(
                pending.c.event_id.in_(select(log_entries.c.event_id).where(log_entries.c.idx >= size))
            )
        )
    return head, len(batch)


def integrate_within(conn: Connection, event_id: int, *, now: datetime, batch_size: int = 50_000) -> int:
    """Integrate, in the caller's write transaction, every pending event it sees up to and
    including ``event_id`` (appended in this transaction); return ``event_id``'s log index.

    For a withholding order, whose effect names its own log index: the order and what it
    withholds are committed together, or nothing is. Raises :class:`InvariantError` if
    ``event_id`` is not pending in this transaction."""
    while True:
        found = conn.execute(select(log_entries.c.idx).where(log_entries.c.event_id == event_id)).scalar()
        if found is not None:
            return int(found)
        _head, count = _integrate_batch(conn, now=now, batch_size=batch_size)
        if count == 0:
            raise InvariantError(f"event {event_id} is neither integrated nor pending")


def _extend(conn: Connection, size: int, event_ids: list[int], leaves: list[bytes], now: datetime) -> TreeHead:
    """Give ``event_ids`` the indices from ``size`` on, extend the tiles, record the new head."""
    result = tile_math.integrate(size, leaves, tile_reader(conn))
    insert_columns(conn, log_entries, {"idx": range(size, size + len(event_ids)), "event_id": event_ids})
    changed = [
        {"l": t.level, "i": t.index, "h": data} for t, data in result.tiles.items() if tile_math.tile_width(t, size)
    ]
    created = [
        {"level": t.level, "idx": t.index, "hashes": data}
        for t, data in result.tiles.items()
        if not tile_math.tile_width(t, size)
    ]
    if changed:
        conn.execute(
            update(tiles)
            .where(tiles.c.level == bindparam("l"), tiles.c.idx == bindparam("i"))
            .values(hashes=bindparam("h")),
            changed,
        )
    if created:
        conn.execute(insert(tiles), created)
    conn.execute(insert(tree_heads), {"size": result.size, "root": result.root, "integrated_at": now})
    conn.execute(update(log_state).where(log_state.c.id == 1).values(size=result.size, root=result.root))
    return TreeHead(result.size, result.root)


def _commit_heads(conn: Connection, head: TreeHead, *, origin: str, now: datetime) -> TreeHead:
    """Append and integrate the heads commitment of the log's first ``head.size`` entries, unless
    the last of them already is one (docs/spec.md §14.1). Runs under the ``log_state`` lock."""
    size = head.size
    if size == 0:
        return head
    last_ocid = conn.execute(
        select(events.c.ocid)
        .join(log_entries, log_entries.c.event_id == events.c.id)
        .where(log_entries.c.idx == size - 1)
    ).scalar_one()
    if last_ocid == heads.HEADS_OCID:
        return head
    previous = conn.execute(
        select(events.c.id, events.c.seq, events.c.leaf_hash)
        .where(events.c.ocid == heads.HEADS_OCID)
        .order_by(events.c.seq.desc())
        .limit(1)
    ).first()
    if previous is None:
        version, prev, start, tenders_before = 0, None, 0, 0
    else:
        body = json.loads(_commitment_body(conn, previous.id))
        version, prev = previous.seq + 1, bytes(previous.leaf_hash).hex()
        start, tenders_before = int(body["tree_size"]), int(body["tenders"])
    heads_root, fresh = _write_heads(conn, version, start, size)
    payload = {"tree_size": size, "heads_root": heads_root.hex(), "tenders": tenders_before + fresh}
    data = payload_bytes(payload)
    envelope = Envelope(
        origin=origin,
        ocid=heads.HEADS_OCID,
        seq=version,
        prev=prev,
        type=heads.HEADS_TYPE,
        recorded_at=format_timestamp(now),
        payload_sha256=sha256_hex(data),
    )
    leaf_data = envelope.canonical_bytes()
    digest = leaf_hash(leaf_data)
    conn.execute(
        insert_or_ignore(conn, tenders, keys=["ocid"]),
        {"ocid": heads.HEADS_OCID, "created_at": now, "updated_at": now, "event_count": 0, "head_hash": None},
    )
    conn.execute(
        update(tenders)
        .where(tenders.c.ocid == heads.HEADS_OCID)
        .values(event_count=version + 1, head_hash=digest.hex(), updated_at=now)
    )
    event_id = conn.execute(
        insert(events).returning(events.c.id),
        {"ocid": heads.HEADS_OCID, "seq": version, "type": heads.HEADS_TYPE, "recorded_at": now,
         "envelope": leaf_data, "leaf_hash": digest},
    ).scalar_one()  # fmt: skip
    conn.execute(_INSERT_PAYLOAD, {"event_id": event_id, "body": data, "disclosure": None})
    return _extend(conn, size, [event_id], [digest], now)


def _commitment_body(conn: Connection, event_id: int) -> bytes:
    """A heads commitment's payload bytes (never withheld: orders cannot target commitments)."""
    body = read_payload(conn, event_id).body
    if body is None:
        raise InvariantError(f"heads commitment event {event_id} has no payload")
    return body


def _write_heads(conn: Connection, version: int, start: int, size: int) -> tuple[bytes, int]:
    """Write version ``version`` of the heads tree: version ``version - 1`` updated with the heads
    of the tenders of entries ``[start, size)`` (``start``: the previous commitment's tree size).
    Returns the new heads root and how many of those entries began a tender (seq 0)."""
    last: dict[str, tuple[int, bytes]] = {}
    fresh = 0
    rows = conn.execute(
        select(events.c.ocid, events.c.seq, events.c.leaf_hash)
        .join(log_entries, log_entries.c.event_id == events.c.id)
        .where(log_entries.c.idx >= start, log_entries.c.idx < size, events.c.ocid != heads.HEADS_OCID)
        .order_by(log_entries.c.idx)
    )
    for ocid, seq, digest in rows:
        if seq == 0:
            fresh += 1
        last[ocid] = (seq + 1, bytes(digest))
    changes = [heads.Leaf(heads.key(ocid), n, digest) for ocid, (n, digest) in last.items()]
    return heads_store.update(conn, version, changes).root, fresh


@dataclass(frozen=True, slots=True, kw_only=True)
class Replica:
    """An entry of another log, exactly as that log serves it (a mirror's copy): its envelope's
    fields, the envelope bytes (leaf data), the payload bytes (empty when withheld), its leaf hash."""

    ocid: str
    seq: int
    type: str
    recorded_at: datetime
    envelope: bytes
    payload: bytes
    leaf_hash: bytes
    #: The v2 disclosure's bytes as served (None for v1 entries or when not served).
    disclosure: bytes | None = None
    #: The log index of the order the log says withheld the payload (None: not withheld, or not said).
    withheld_by: int | None = None


def replicate(conn: Connection, start: int, entries: Sequence[Replica], *, now: datetime) -> TreeHead:
    """Append ``entries`` at indices ``start``, ``start + 1``... of a mirror's log, integrated at
    once, in the caller's write transaction: the same events, tiles and heads tree as the log
    they come from (each heads commitment entry writes its version of the heads tree), so that
    the mirror's reader gives the same proofs. The caller has checked them (hashes, seq/prev).

    Raises :class:`InvariantError` unless the mirror holds exactly ``start`` entries.
    """
    size, root = conn.execute(
        select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1).with_for_update()
    ).one()
    if size != start:
        raise InvariantError(f"mirror: entries start at index {start}, the mirror holds {size}")
    if not entries:
        return TreeHead(size, bytes(root))
    _lock_heads(conn, sorted({e.ocid for e in entries}), now)
    rows = [
        {"ocid": e.ocid, "seq": e.seq, "type": e.type, "recorded_at": e.recorded_at, "envelope": e.envelope,
         "leaf_hash": e.leaf_hash}
        for e in entries
    ]  # fmt: skip
    ids = list(conn.execute(_INSERT_EVENTS, rows).scalars().all())
    insert_many(
        conn,
        payloads,
        [
            {"event_id": i, "body": e.payload or None, "disclosure": e.disclosure, "withheld_by": e.withheld_by}
            for i, e in zip(ids, entries, strict=True)
        ],
    )
    last = {e.ocid: {"o": e.ocid, "n": e.seq + 1, "h": e.leaf_hash.hex(), "at": e.recorded_at} for e in entries}
    conn.execute(_UPDATE_HEADS, [last[ocid] for ocid in sorted(last)])
    head = _extend(conn, start, ids, [e.leaf_hash for e in entries], now)
    for offset, entry in enumerate(entries):
        if entry.ocid == heads.HEADS_OCID and entry.type == heads.HEADS_TYPE:
            previous = conn.execute(
                select(events.c.id).where(events.c.ocid == heads.HEADS_OCID, events.c.seq == entry.seq - 1)
            ).scalar()
            begin = 0 if previous is None else int(json.loads(_commitment_body(conn, previous))["tree_size"])
            _write_heads(conn, entry.seq, begin, start + offset)
    return head


def integrate_all(
    engine: Engine, *, now: datetime, batch_size: int = 50_000, heads_origin: str | None = None
) -> TreeHead:
    """Integrate batch after batch until no event is pending; return the last tree head. With
    ``heads_origin``, the last batch ends with a heads commitment (see :func:`integrate`)."""
    while True:
        head = integrate(engine, now=now, batch_size=batch_size, heads_origin=heads_origin)
        with engine.connect() as conn:
            if conn.execute(select(pending.c.event_id).limit(1)).first() is None:
                if heads_origin is not None:
                    # The last batch may have been exactly full: commit now (a no-op when the
                    # last entry already is a commitment).
                    head = integrate(engine, now=now, batch_size=batch_size, heads_origin=heads_origin)
                return head
