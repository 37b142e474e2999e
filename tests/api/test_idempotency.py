"""Idempotency keys on SQLite and PostgreSQL: replay, reuse, expiry, atomicity and races."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, insert, select, text

from api import auth, idempotency
from api.auth import Principal
from api.idempotency import (
    DuplicateRequestError,
    IdempotencyKeyReusedError,
    Outcome,
    Remember,
    StoredResponse,
    check_key,
    fingerprint,
)
from api.schema import idempotency_keys
from ledger.core.errors import ConflictError, InvalidArgumentError, InvariantError
from ledger.log import Log
from ledger.store.db import read_transaction, write_transaction
from tests.conftest import T0

#: What the tests record in the same transaction as the key: stands for the recorded event.
effects = Table("test_effects", MetaData(), Column("id", Integer, primary_key=True), Column("by", String(32)))
BODY = {"ocid": "ocds-abc123-1", "type": "tender.published", "payload": {"title": "Road", "value": 10}}
FP = fingerprint("POST", "/api/v1/tenders/ocds-abc123-1/events", BODY)


@pytest.fixture
def engine(log: Log) -> Iterator[Engine]:
    effects.create(log.engine)
    yield log.engine


@pytest.fixture
def officer(engine: Engine) -> Principal:
    _, key = auth.create_key(engine, name="ana", role="officer", now=T0)
    return auth.authenticate(engine, key, now=T0)


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _record(engine: Engine, by: str, status: int = 201) -> Callable[[Remember], None]:
    """An action: records an effect and remembers the response, in one transaction."""

    def action(remember: Remember) -> None:
        with write_transaction(engine) as conn:
            conn.execute(insert(effects).values(by=by))
            remember(conn, status, {"by": by, "event_id": 7})

    return action


def test_check_key() -> None:
    for good in ("a", "0f8fad5b-d9cb-469f-a165-70867728950e", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "x" * 128, "aGk+/w==._~:"):
        assert check_key(good) == good
    for bad in ("", "x" * 129, "has space", 'quo"te', "semi;colon", "comma,", "ñ", "tab\t"):
        with pytest.raises(InvalidArgumentError) as err:
            check_key(bad)
        assert err.value.field == "Idempotency-Key"
        assert err.value.reason.startswith("must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ : / + = -, got ")


def test_fingerprint_is_of_the_canonical_request() -> None:
    same = fingerprint(
        "post",
        "/api/v1/tenders/ocds-abc123-1/events",
        {"payload": {"value": 10.0, "title": "Road"}, "type": "tender.published", "ocid": "ocds-abc123-1"},
    )
    assert same == FP and len(FP) == 32
    assert fingerprint("PUT", "/api/v1/tenders/ocds-abc123-1/events", BODY) != FP
    assert fingerprint("POST", "/api/v1/tenders/ocds-abc123-2/events", BODY) != FP
    assert fingerprint("POST", "/api/v1/tenders/ocds-abc123-1/events", {**BODY, "type": "tender.amended"}) != FP
    assert fingerprint("POST", "/x", None) != fingerprint("POST", "/x", {})


def test_store_then_lookup(engine: Engine, officer: Principal) -> None:
    with read_transaction(engine) as conn:
        assert idempotency.lookup(conn, officer, "k1", FP, now=T0) is None
    with write_transaction(engine) as conn:
        stored = idempotency.store(conn, officer, "k1", FP, 201, {"event_id": 1, "ñ": [1.5, None]}, now=T0)
    assert stored == StoredResponse(status=201, body={"event_id": 1, "ñ": [1.5, None]}, created_at=T0)
    with read_transaction(engine) as conn:
        assert idempotency.lookup(conn, officer, "k1", FP, now=T0 + timedelta(hours=23)) == stored
        with pytest.raises(IdempotencyKeyReusedError) as err:
            idempotency.lookup(conn, officer, "k1", fingerprint("POST", "/other", BODY), now=T0)
    assert str(err.value) == (
        "Idempotency-Key: 'k1' was already used for a different request; use a new key for a new request"
    )
    assert err.value.code == "idempotency_key_reused" and isinstance(err.value, ConflictError)
    # keys belong to one API key: another officer's "k1" is free
    _, other_key = auth.create_key(engine, name="bob", role="officer", now=T0)
    bob = auth.authenticate(engine, other_key, now=T0)
    with read_transaction(engine) as conn:
        assert idempotency.lookup(conn, bob, "k1", FP, now=T0) is None
    with write_transaction(engine) as conn:
        idempotency.store(conn, bob, "k1", FP, 200, {"bob": True}, now=T0)
    with read_transaction(engine) as conn:
        assert idempotency.lookup(conn, bob, "k1", FP, now=T0).body == {"bob": True}  # type: ignore[union-attr]
        assert idempotency.lookup(conn, officer, "k1", FP, now=T0) == stored


def test_store_is_part_of_the_callers_transaction(engine: Engine, officer: Principal) -> None:
    with pytest.raises(RuntimeError, match="crash"), write_transaction(engine) as conn:
        conn.execute(insert(effects).values(by="first"))
        idempotency.store(conn, officer, "k", FP, 201, {}, now=T0)
        raise RuntimeError("crash before commit")
    assert _count(engine, effects) == 0 and _count(engine, idempotency_keys) == 0
    # the key is free: the retry records
    outcome = idempotency.perform(
        engine, principal=officer, key="k", fingerprint=FP, now=T0, action=_record(engine, "a")
    )
    assert outcome == Outcome(
        response=StoredResponse(status=201, body={"by": "a", "event_id": 7}, created_at=T0), replayed=False
    )


def test_store_of_a_stored_key_refuses_and_rolls_back(engine: Engine, officer: Principal) -> None:
    with write_transaction(engine) as conn:
        idempotency.store(conn, officer, "k", FP, 201, {"n": 1}, now=T0)
    refused = r"^Idempotency-Key: 'k' was stored by a concurrent request$"
    with pytest.raises(DuplicateRequestError, match=refused), write_transaction(engine) as conn:
        conn.execute(insert(effects).values(by="second"))
        idempotency.store(conn, officer, "k", FP, 201, {"n": 2}, now=T0 + timedelta(seconds=1))
    assert _count(engine, effects) == 0
    with read_transaction(engine) as conn:
        assert idempotency.lookup(conn, officer, "k", FP, now=T0).body == {"n": 1}  # type: ignore[union-attr]


def test_store_refuses_what_is_not_a_response(engine: Engine, officer: Principal) -> None:
    bad: list[tuple[str, int, Any, str]] = [
        ("k", 99, {}, "status: must be an HTTP status (100-599), got 99"),
        ("k", 600, {}, "status: must be an HTTP status (100-599), got 600"),
        ("k", 201, {"x": float("nan")}, "body: is not JSON: Out of range float values are not JSON compliant"),
        ("k", 201, {"x": object()}, "body: is not JSON: Object of type object is not JSON serializable"),
        ("bad key", 201, {}, "Idempotency-Key: must be 1 to 128 characters"),
    ]
    for key, status, body, message in bad:
        with pytest.raises(InvalidArgumentError) as err, write_transaction(engine) as conn:
            idempotency.store(conn, officer, key, FP, status, body, now=T0)
        assert str(err.value).startswith(message)
    assert _count(engine, idempotency_keys) == 0


def test_perform_replays(engine: Engine, officer: Principal) -> None:
    first = idempotency.perform(engine, principal=officer, key="k", fingerprint=FP, now=T0, action=_record(engine, "a"))
    assert first.replayed is False
    assert first.response == StoredResponse(status=201, body={"by": "a", "event_id": 7}, created_at=T0)

    def must_not_run(_remember: Remember) -> None:
        raise AssertionError("a replay must not record again")

    later = T0 + timedelta(hours=1)
    again = idempotency.perform(engine, principal=officer, key="k", fingerprint=FP, now=later, action=must_not_run)
    assert again == Outcome(response=first.response, replayed=True)
    with pytest.raises(IdempotencyKeyReusedError):
        idempotency.perform(
            engine,
            principal=officer,
            key="k",
            fingerprint=fingerprint("POST", "/x", {}),
            now=later,
            action=must_not_run,
        )
    assert _count(engine, effects) == 1


def test_a_failed_action_stores_nothing(engine: Engine, officer: Principal) -> None:
    def refused(remember: Remember) -> None:
        with write_transaction(engine) as conn:
            conn.execute(insert(effects).values(by="refused"))
            raise InvalidArgumentError("payload.title", "is required")

    with pytest.raises(InvalidArgumentError, match=r"^payload\.title: is required$"):
        idempotency.perform(engine, principal=officer, key="k", fingerprint=FP, now=T0, action=refused)
    assert _count(engine, effects) == 0 and _count(engine, idempotency_keys) == 0

    # a domain conflict that no stored response explains is the caller's to see
    def stale(remember: Remember) -> None:
        raise ConflictError("prev", "tender ocds-abc123-1 head is 'ab', not 'cd'")

    with pytest.raises(ConflictError, match=r"^prev: tender"):
        idempotency.perform(engine, principal=officer, key="k", fingerprint=FP, now=T0, action=stale)
    assert idempotency.perform(
        engine, principal=officer, key="k", fingerprint=FP, now=T0, action=_record(engine, "b")
    ).response.body == {"by": "b", "event_id": 7}


def test_a_conflict_explained_by_a_concurrent_request_is_replayed(engine: Engine, officer: Principal) -> None:
    """The loser of a race may fail on the tender's moved head before reaching store()."""

    def moved_on(remember: Remember) -> None:
        idempotency.perform(
            engine, principal=officer, key="k", fingerprint=FP, now=T0, action=_record(engine, "winner")
        )
        raise ConflictError("prev", "tender ocds-abc123-1 head moved")

    outcome = idempotency.perform(engine, principal=officer, key="k", fingerprint=FP, now=T0, action=moved_on)
    assert outcome == Outcome(
        response=StoredResponse(status=201, body={"by": "winner", "event_id": 7}, created_at=T0), replayed=True
    )


def test_perform_checks_remember_is_called_once(engine: Engine, officer: Principal) -> None:
    with pytest.raises(InvariantError, match="returned without remembering its response for 'k'"):
        idempotency.perform(engine, principal=officer, key="k", fingerprint=FP, now=T0, action=lambda remember: None)

    def twice(remember: Remember) -> None:
        with write_transaction(engine) as conn:
            remember(conn, 201, {})
            remember(conn, 201, {})

    with pytest.raises(InvariantError, match=r"remember\(\) called twice for 'k'"):
        idempotency.perform(engine, principal=officer, key="k", fingerprint=FP, now=T0, action=twice)
    assert _count(engine, idempotency_keys) == 0


def test_expiry_and_purge(engine: Engine, officer: Principal, monkeypatch: pytest.MonkeyPatch) -> None:
    ttl = timedelta(hours=24)
    with write_transaction(engine) as conn:
        for i in range(7):
            idempotency.store(conn, officer, f"old{i}", FP, 201, {"i": i}, now=T0)
        idempotency.store(conn, officer, "new", FP, 201, {}, now=T0 + timedelta(hours=20))
    expired_at = T0 + ttl + timedelta(microseconds=1)
    with read_transaction(engine) as conn:
        assert idempotency.lookup(conn, officer, "old0", FP, now=T0 + ttl) is not None  # still valid at exactly ttl
        assert idempotency.lookup(conn, officer, "old0", FP, now=expired_at) is None
        # an expired key no longer binds its request: it may be reused for another one
        assert idempotency.lookup(conn, officer, "old1", fingerprint("POST", "/x", {}), now=expired_at) is None
    with write_transaction(engine) as conn:
        reused = idempotency.store(conn, officer, "old1", fingerprint("POST", "/x", {}), 202, {"re": 1}, now=expired_at)
    assert reused.status == 202
    monkeypatch.setattr(idempotency, "_PURGE_BATCH", 2)  # several batches
    assert idempotency.purge(engine, now=expired_at, ttl=ttl) == 6
    with engine.connect() as conn:
        left = conn.execute(select(idempotency_keys.c.key).order_by(idempotency_keys.c.key)).scalars().all()
    assert left == ["new", "old1"]
    assert idempotency.purge(engine, now=expired_at, ttl=ttl) == 0
    assert idempotency.purge(engine, now=T0 + timedelta(hours=20, minutes=1), ttl=timedelta(minutes=1)) == 0
    assert idempotency.purge(engine, now=T0 + timedelta(hours=20, minutes=1), ttl=timedelta(seconds=59)) == 1


def _wait_until_blocked(engine: Engine) -> bool:
    """True once another PostgreSQL session waits for a lock (the loser, on our uncommitted key)."""
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()
            conn.rollback()
            if waiting:
                return True
            time.sleep(0.01)
    return False


@pytest.mark.parametrize("same_request", [True, False])
def test_concurrent_requests_with_one_key_record_once(engine: Engine, officer: Principal, same_request: bool) -> None:
    """Both requests miss lookup(), both start recording; exactly one commits, the other replays it
    (or, for a different request under the same key, is refused)."""
    barrier = threading.Barrier(2, timeout=30)
    blocked: list[bool] = []
    prints = {"a": FP, "b": FP if same_request else fingerprint("POST", "/api/v1/other", BODY)}

    def request(name: str) -> Outcome:
        def action(remember: Remember) -> None:
            barrier.wait()  # both have looked the key up and found nothing
            with write_transaction(engine) as conn:
                conn.execute(insert(effects).values(by=name))
                remember(conn, 201, {"by": name})
                # the winner holds its transaction open until the loser is stuck behind it
                if engine.dialect.name == "postgresql":
                    blocked.append(_wait_until_blocked(engine))
                else:
                    time.sleep(0.3)  # the loser waits in BEGIN IMMEDIATE

        return idempotency.perform(
            engine, principal=officer, key="race", fingerprint=prints[name], now=T0, action=action
        )

    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(request, name) for name in ("a", "b")}
        results: dict[str, Outcome | BaseException] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=60)
            except (IdempotencyKeyReusedError, DuplicateRequestError) as exc:
                results[name] = exc
    with engine.connect() as conn:
        recorded = conn.execute(select(effects.c.by)).scalars().all()
    assert len(recorded) == 1, recorded
    winner = recorded[0]
    loser = "b" if winner == "a" else "a"
    assert _count(engine, idempotency_keys) == 1
    if engine.dialect.name == "postgresql":
        assert blocked == [True]
    won = results[winner]
    assert isinstance(won, Outcome) and won.replayed is False and won.response.body == {"by": winner}
    if same_request:
        assert results[loser] == Outcome(response=won.response, replayed=True)
    else:
        assert isinstance(results[loser], IdempotencyKeyReusedError)


def test_idempotent_single_writes_in_one_group_commit_batch(log: Log, engine: Engine, officer: Principal) -> None:
    """Idempotent single events are written with their batch's neighbours (one insert of events);
    two requests with one key in the same batch (both missed lookup()) record one event: the batch
    is then written one savepoint each, the second answered with the first's stored response, and
    the others of the batch recorded once each."""
    from ledger.procurement.record import record
    from ledger.submission import Recorded, Submission
    from tests.procurement.helpers import CHAIN_ID, at, published
    from tests.procurement.test_group_commit import _event_inserts, _in_one_batch

    ocid = "ocds-tptest-0001"
    record(log, [Submission(ocid=ocid, type="tender.published", payload=published())], now=at(0),
           signatures="optional", chain_id=CHAIN_ID)  # fmt: skip

    def write(key: str, n: int) -> Callable[[], Outcome]:
        payload = {"tender": {"id": "T-1", "enquiries": [{"id": f"q{n}", "answer": "Yes."}]}}
        one = Submission(ocid=ocid, type="tender.clarified", payload=payload)
        body = {"type": one.type, "payload": payload}

        def action(remember: Remember) -> None:
            def on_recorded(conn: Any, recorded: list[Recorded]) -> None:
                remember(conn, 201, {"seq": recorded[0].envelope.seq, "event_id": recorded[0].event_id})

            record(log, [one], now=at(1), signatures="optional", chain_id=CHAIN_ID, on_recorded=on_recorded)

        print_ = fingerprint("POST", f"/api/v1/tenders/{ocid}/events", body)
        return lambda: idempotency.perform(
            engine, principal=officer, key=key, fingerprint=print_, now=T0, action=action
        )  # fmt: skip

    inserts, stop = _event_inserts(log)
    try:
        plain = _in_one_batch(log, write("k-0", 0), [write("k-1", 1), write("k-2", 2)], ordered=True)
    finally:
        stop()
    assert len(inserts) == 2, inserts  # the held first write's, then one for the other two together
    assert [(o.replayed, o.response.body["seq"]) for o in plain] == [(False, 1), (False, 2), (False, 3)]
    same = _in_one_batch(log, write("k-3", 3), [write("k-4", 4), write("k-4", 4), write("k-5", 5)], ordered=True)
    assert all(isinstance(o, Outcome) for o in same), same
    assert [o.response.body["seq"] for o in same] == [4, 5, 5, 6]
    assert [o.replayed for o in same] == [False, False, True, False]
    assert same[2].response == same[1].response
    assert [e.seq for e in log.reader.tender_events(ocid)] == list(range(7))
    assert _count(engine, idempotency_keys) == 6
