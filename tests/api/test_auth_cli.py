"""`tenderproof keys create / list / revoke`, through the real entry point (cli.main)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from api import auth, idempotency
from cli import main
from ledger.log import Log
from ledger.store.db import write_transaction
from tests.conftest import ORIGIN, T0

OFFICER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def _run(db_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--database-url", db_url, "--origin", ORIGIN, "keys", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_revoke(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(db_url, capsys, "create", "--name", "Ana", "--role", "officer", "--officer", OFFICER.lower())
    assert code == 0, err
    created = json.loads(out)
    key = created.pop("key")
    assert re.fullmatch(r"tp_[0-9a-f]{12}_[a-z2-7]{52}", key)
    assert key.startswith(f"tp_{created['prefix']}_")
    assert created["name"] == "Ana" and created["role"] == "officer" and created["officer"] == OFFICER
    assert created["revoked_at"] is None and created["last_used_at"] is None
    assert "shown only once" in err and created["prefix"] in err and key not in err

    code, out, err = _run(db_url, capsys, "create", "--name", "Root", "--role", "admin")
    assert code == 0, err
    admin = json.loads(out)
    admin.pop("key")

    log = Log.open(db_url, origin=ORIGIN)
    try:
        assert auth.authenticate(log.engine, key, now=auth.get_key(log.engine, created["id"]).created_at).name == "Ana"
        used = auth.get_key(log.engine, created["id"]).last_used_at
        assert used is not None
        created["last_used_at"] = used.isoformat()
    finally:
        log.close()

    code, out, err = _run(db_url, capsys, "list")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [created, admin]
    assert key[16:] not in out and "key" not in json.loads(out.splitlines()[0])

    code, out, err = _run(db_url, capsys, "revoke", str(created["id"]))
    assert code == 0, err
    revoked = json.loads(out)
    assert revoked["id"] == created["id"] and revoked["revoked_at"] is not None

    code, out, err = _run(db_url, capsys, "list", "--active")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [admin["id"]]
    code, out, err = _run(db_url, capsys, "list")
    assert [json.loads(line)["revoked_at"] is not None for line in out.splitlines()] == [True, False]


def test_errors(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(sqlite_url, capsys, "revoke", "42") == (1, "", "error: API key 42: no such key\n")
    code, out, err = _run(sqlite_url, capsys, "create", "--name", "Ana", "--role", "officer", "--officer", "0x12")
    assert (code, out) == (2, "")
    assert err == "error: officer: must be an Ethereum address (0x and 40 hex digits), got '0x12'\n"
    code, out, err = _run(sqlite_url, capsys, "create", "--name", "Ana", "--role", "root")
    assert (code, out) == (2, "")
    assert "Invalid value for '--role'" in err
    code, out, err = _run(sqlite_url, capsys, "create", "--name", " ", "--role", "admin")
    assert (code, out) == (2, "")
    assert err == "error: name: must be 1 to 128 printable characters, got ' '\n"
    assert _run(sqlite_url, capsys, "list") == (0, "", "")


def test_purge_idempotency(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    try:
        _, key = auth.create_key(log.engine, name="ana", role="officer", now=T0)
        ana = auth.authenticate(log.engine, key, now=T0)
        now = datetime.now(UTC)
        with write_transaction(log.engine) as conn:
            idempotency.store(conn, ana, "old", b"\0" * 32, 201, {}, now=now - timedelta(hours=3))
            idempotency.store(conn, ana, "new", b"\0" * 32, 201, {}, now=now - timedelta(minutes=50))
    finally:
        log.close()
    assert _run(sqlite_url, capsys, "purge-idempotency") == (0, '{"deleted": 0}\n', "")
    assert _run(sqlite_url, capsys, "purge-idempotency", "--older-than", "2") == (0, '{"deleted": 1}\n', "")
    assert _run(sqlite_url, capsys, "purge-idempotency", "--older-than", "0.5") == (0, '{"deleted": 1}\n', "")
    assert _run(sqlite_url, capsys, "purge-idempotency", "--older-than", "0") == (0, '{"deleted": 0}\n', "")


def test_create_with_expiry(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(sqlite_url, capsys, "create", "--name", "Temp", "--role", "officer", "--expires-in", "0.5")
    assert code == 0, err
    created = json.loads(out)
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(created["created_at"])
    assert lifetime == timedelta(hours=12)
    code, out, err = _run(sqlite_url, capsys, "create", "--name", "Temp", "--role", "officer", "--expires-in", "0")
    assert code == 2 and "--expires-in" in err
