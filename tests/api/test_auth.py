"""API keys on SQLite and PostgreSQL: only hashes stored, authentication, revocation, roles."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, event, inspect, select, text
from sqlalchemy.exc import IntegrityError

from api import auth
from api.auth import AuthenticationError, Principal
from api.schema import api_keys
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.log import Log
from ledger.store import db
from tests.conftest import T0

OFFICER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example address


def _dump(engine: Engine) -> str:
    """Every row of every table, as text (bytes as hex and as latin-1)."""
    out: list[str] = []
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out += [bytes(value).hex(), bytes(value).decode("latin-1")]
                    else:
                        out.append(str(value))
    return "\n".join(out)


def test_create_key_stores_only_its_hash(log: Log, tmp_path: Path) -> None:
    record, key = auth.create_key(log.engine, name="Ana Pérez (procurement)", role="officer", now=T0, officer=OFFICER)
    match = re.fullmatch(r"tp_([0-9a-f]{12})_([a-z2-7]{52})", key)
    assert match is not None, key
    prefix, secret = match.groups()
    assert record.prefix == prefix
    assert record.name == "Ana Pérez (procurement)"
    assert record.role == "officer"
    assert record.officer == OFFICER
    assert record.created_at == T0
    assert record.revoked_at is None and record.last_used_at is None and record.active
    with log.engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.key_hash).where(api_keys.c.id == record.id)).scalar_one()
    assert bytes(stored) == hashlib.sha256(key.encode()).digest()
    dump = _dump(log.engine)
    assert prefix in dump  # the identifier is stored in clear ...
    assert secret not in dump and key not in dump  # ... the secret is not
    assert secret.upper() not in dump
    if log.engine.dialect.name == "sqlite":
        database = Path(log.engine.url.database or "")
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert len(raw) > 0
        assert secret.encode() not in raw and hashlib.sha256(key.encode()).digest() in raw


def test_keys_are_unique_and_random(log: Log) -> None:
    made = [auth.create_key(log.engine, name=f"k{i}", role="admin", now=T0) for i in range(20)]
    assert len({key for _, key in made}) == 20
    assert len({record.prefix for record, _ in made}) == 20
    assert [record.id for record, _ in made] == sorted(record.id for record, _ in made)


def test_authenticate_accepts_the_key_and_records_its_use(log: Log) -> None:
    record, key = auth.create_key(log.engine, name="ana", role="officer", now=T0, officer=OFFICER.lower())
    assert record.officer == OFFICER  # stored checksummed
    principal = auth.authenticate(log.engine, key, now=T0 + timedelta(hours=1))
    assert principal == Principal(id=record.id, name="ana", role="officer", prefix=record.prefix, officer=OFFICER)
    assert auth.get_key(log.engine, record.id).last_used_at == T0 + timedelta(hours=1)
    # within a minute it is not written again; after, it is
    auth.authenticate(log.engine, key, now=T0 + timedelta(hours=1, seconds=30))
    assert auth.get_key(log.engine, record.id).last_used_at == T0 + timedelta(hours=1)
    auth.authenticate(log.engine, key, now=T0 + timedelta(hours=1, minutes=2))
    assert auth.get_key(log.engine, record.id).last_used_at == T0 + timedelta(hours=1, minutes=2)


def _refused(
    engine: Engine,
    presented: str,
    code: str = "invalid_api_key",
    now: datetime = T0,
    cache: auth.KeyCache | None = None,
) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as err:
        auth.authenticate(engine, presented, now=now, cache=cache)
    assert err.value.code == code
    assert err.value.field == "Authorization"
    return err.value


def test_authenticate_refuses_unknown_and_malformed_keys_alike(log: Log) -> None:
    record, key = auth.create_key(log.engine, name="ana", role="officer", now=T0)
    prefix, secret = key[3:15], key[16:]
    other_secret = ("b" if secret[0] == "a" else "a") + secret[1:]
    flipped = f"tp_{prefix}_{other_secret}"  # right prefix, wrong secret
    unknown = f"tp_{'f' * 12 if prefix != 'f' * 12 else 'e' * 12}_{secret}"  # right secret, unknown prefix
    cases = [flipped, unknown, key.upper(), key + "a", key[:-1], "", "tp_", "Bearer " + key, "x" * 5000, key + "\n"]
    messages = {str(_refused(log.engine, presented)) for presented in cases}
    assert messages == {"Authorization: is not a valid API key"}  # which part was wrong is not said
    assert auth.get_key(log.engine, record.id).last_used_at is None


def test_revoked_key_is_refused(log: Log) -> None:
    record, key = auth.create_key(log.engine, name="ana", role="admin", now=T0)
    keep, kept = auth.create_key(log.engine, name="bob", role="officer", now=T0)
    revoked = auth.revoke_key(log.engine, record.id, now=T0 + timedelta(days=1))
    assert revoked.revoked_at == T0 + timedelta(days=1) and not revoked.active
    error = _refused(log.engine, key, code="api_key_revoked")
    assert str(error) == f"Authorization: API key {record.prefix} was revoked at 2026-11-24T12:00:00+00:00"
    assert error.www_authenticate == 'Bearer realm="tenderproof", error="invalid_token"'
    # revoking again keeps the first instant; the other key still works
    assert auth.revoke_key(log.engine, record.id, now=T0 + timedelta(days=9)).revoked_at == T0 + timedelta(days=1)
    assert auth.authenticate(log.engine, kept, now=T0).id == keep.id
    # a revoked key's secret with a wrong last character is just invalid
    _refused(log.engine, key[:-1] + ("a" if key[-1] != "a" else "b"))


class _Monotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cached_key_revocation_takes_effect_within_the_bound(log: Log) -> None:
    record, key = auth.create_key(log.engine, name="ana", role="officer", now=T0)
    _other, other = auth.create_key(log.engine, name="bob", role="officer", now=T0)
    clock = _Monotonic()
    cache = auth.KeyCache(5.0, clock=clock)
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        reads.append(statement)

    assert auth.authenticate(log.engine, key, now=T0, cache=cache).id == record.id
    auth.revoke_key(log.engine, record.id, now=T0 + timedelta(seconds=1))
    event.listen(log.engine, "before_cursor_execute", seen)
    try:
        clock.now += 4.9  # within the bound: still accepted, from the cache, with no query
        assert auth.authenticate(log.engine, key, now=T0 + timedelta(seconds=2), cache=cache).id == record.id
        assert reads == []
        # only the whole key finds the entry: another key, or this one altered, is read and checked
        assert cache.get(key[:-1] + ("a" if key[-1] != "a" else "b"), now=T0) is None
        assert cache.get(other, now=T0) is None
        clock.now += 0.1  # the bound reached: read again, and refused
        _refused(log.engine, key, code="api_key_revoked", cache=cache)
        assert reads
        assert cache.get(key, now=T0) is None  # a refused key is not cached
    finally:
        event.remove(log.engine, "before_cursor_execute", seen)


def test_cache_never_serves_an_expired_key_and_zero_turns_it_off(log: Log) -> None:
    record, key = auth.create_key(log.engine, name="ana", role="officer", now=T0, expires_in=timedelta(hours=1))
    clock = _Monotonic()
    cache = auth.KeyCache(60.0, clock=clock)
    assert auth.authenticate(log.engine, key, now=T0, cache=cache).id == record.id
    assert cache.get(key, now=T0 + timedelta(minutes=59)) is not None
    assert cache.get(key, now=T0 + timedelta(hours=1)) is None
    _refused(log.engine, key, code="api_key_expired", now=T0 + timedelta(hours=1), cache=cache)
    off = auth.KeyCache(0)
    _record, fresh = auth.create_key(log.engine, name="bob", role="officer", now=T0)
    auth.authenticate(log.engine, fresh, now=T0, cache=off)
    assert off.get(fresh, now=T0) is None
    small = auth.KeyCache(60.0, size=1, clock=clock)
    auth.authenticate(log.engine, fresh, now=T0, cache=small)
    auth.authenticate(log.engine, key, now=T0, cache=small)
    assert small.get(fresh, now=T0) is None and small.get(key, now=T0) is not None  # least recently used out
    with pytest.raises(InvalidArgumentError, match="ttl"):
        auth.KeyCache(-1)


def test_list_and_revoke(log: Log) -> None:
    assert auth.list_keys(log.engine) == []
    a, _ = auth.create_key(log.engine, name="a", role="admin", now=T0)
    b, _ = auth.create_key(log.engine, name="b", role="officer", now=T0 + timedelta(seconds=1))
    auth.revoke_key(log.engine, a.id, now=T0 + timedelta(seconds=2))
    listed = auth.list_keys(log.engine)
    assert [(k.id, k.name, k.active) for k in listed] == [(a.id, "a", False), (b.id, "b", True)]
    assert [k.id for k in auth.list_keys(log.engine, include_revoked=False)] == [b.id]
    with pytest.raises(NotFoundError, match=r"^API key 999: no such key$"):
        auth.revoke_key(log.engine, 999, now=T0)
    with pytest.raises(NotFoundError, match=r"^API key 999: no such key$"):
        auth.get_key(log.engine, 999)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "  "}, "name: must be 1 to 128 printable characters, got '  '"),
        ({"name": "x" * 129}, "name: must be 1 to 128 printable characters"),
        ({"name": "a\nb"}, "name: must be 1 to 128 printable characters"),
        ({"role": "root"}, "role: must be one of officer, admin, got 'root'"),
        ({"officer": "0x1234"}, "officer: must be an Ethereum address (0x and 40 hex digits), got '0x1234'"),
        ({"officer": OFFICER.replace("a", "A", 1)}, "officer: has a wrong EIP-55 checksum"),
    ],
)
def test_create_key_refuses_bad_arguments(sqlite_url: str, kwargs: dict[str, str], message: str) -> None:
    log = Log.open(sqlite_url, origin="tenderproof.test/log")
    try:
        arguments = {"name": "ana", "role": "officer", **kwargs}
        with pytest.raises(InvalidArgumentError) as err:
            auth.create_key(log.engine, now=T0, **arguments)
        assert str(err.value).startswith(message)
        assert auth.list_keys(log.engine) == []
    finally:
        log.close()


def test_role_is_checked_by_the_database_too(log: Log) -> None:
    with (
        pytest.raises(IntegrityError, match=r"ck_api_keys_role|CHECK constraint failed: role"),
        log.engine.begin() as conn,
    ):
        conn.execute(
            text("INSERT INTO api_keys (name, role, prefix, key_hash, created_at) VALUES ('x', 'root', 'abc', :h, :t)"),
            {"h": b"\0" * 32, "t": T0},
        )
    assert "ck_api_keys_role" in {c["name"] for c in inspect(log.engine).get_check_constraints("api_keys")}


def test_principal_roles() -> None:
    admin = Principal(id=1, name="a", role="admin", prefix="0" * 12, officer=None)
    officer = Principal(id=2, name="o", role="officer", prefix="1" * 12, officer=None)
    assert admin.allows("admin") and admin.allows("officer")
    assert officer.allows("officer") and not officer.allows("admin")


def test_recording_use_is_best_effort(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A database that refuses the write of last_used_at does not refuse a valid key."""
    log = Log.open(sqlite_url, origin="tenderproof.test/log")
    reader = db.open_engine(sqlite_url)

    @event.listens_for(reader, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = ON")

    try:
        record, key = auth.create_key(log.engine, name="ana", role="officer", now=T0)
        with caplog.at_level(logging.WARNING, logger="api.auth"):
            assert auth.authenticate(reader, key, now=T0).id == record.id
        assert auth.get_key(log.engine, record.id).last_used_at is None
        assert f"API key {record.id}: could not record its use: attempt to write a readonly database" in caplog.text
    finally:
        reader.dispose()
        log.close()


def test_prefix_is_unique(log: Log) -> None:
    record, _ = auth.create_key(log.engine, name="ana", role="officer", now=T0)
    assert {u["name"] for u in inspect(log.engine).get_unique_constraints("api_keys")} == {"uq_api_keys_prefix"}
    with pytest.raises(IntegrityError), log.engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(name="x", role="admin", prefix=record.prefix, key_hash=b"\1" * 32, created_at=T0)
        )


def test_expired_key_is_refused_from_its_expiry_on(log: Log) -> None:
    record, key = auth.create_key(log.engine, name="temp", role="officer", now=T0, expires_in=timedelta(hours=2))
    assert record.expires_at == T0 + timedelta(hours=2) and record.active
    assert auth.authenticate(log.engine, key, now=T0 + timedelta(hours=2) - timedelta(seconds=1)).id == record.id
    error = _refused(log.engine, key, code="api_key_expired", now=T0 + timedelta(hours=2))
    assert str(error) == f"Authorization: API key {record.prefix} expired at 2026-11-23T14:00:00+00:00"
    # a key without expiry is valid years later
    forever, kept = auth.create_key(log.engine, name="forever", role="officer", now=T0)
    assert forever.expires_at is None
    assert auth.authenticate(log.engine, kept, now=T0 + timedelta(days=3650)).id == forever.id
    with pytest.raises(InvalidArgumentError, match=r"expires_in: must be positive, got -1 s"):
        auth.create_key(log.engine, name="x", role="officer", now=T0, expires_in=timedelta(seconds=-1))
