"""Alembic migrations: idempotent, reversible, and equal to the schema the code queries."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

import anchoring.schema  # noqa: F401 - anchoring's tables, on the same metadata
import api.schema  # noqa: F401 - the API's tables, on the same metadata
from anchoring import store
from ledger.log import Log
from ledger.store import db, guards
from ledger.store.schema import metadata
from ledger.submission import Submission
from tests.conftest import ORIGIN, PG_ADMIN_URL, T0
from tests.pg import scratch_database
from tests.recording import append, append_many

from .helpers import check_log, snapshot

TABLES = {
    *("log_config", "tenders", "events", "pending", "log_entries", "tiles", "tree_heads", "log_state"),
    *("anchor_targets", "anchors", "anchor_txs", "anchor_leases", "anchor_switches"),
}
IMMUTABLE = ("events", "log_entries", "tree_heads", "anchor_txs", "heads_strata", "anchor_switches")
SQLITE_TRIGGERS = {
    *(f"{t}_no_{op}" for t in IMMUTABLE for op in ("update", "delete")),
    *(f"{t}_no_replace" for t in ("events", "log_entries", "tree_heads", "tiles", "heads_strata")),
    "tiles_no_delete",
    "tiles_extend_only",
    # migrations 0015 and 0018 keep the full-text table tender_search in step with tender_index
    *(f"tender_search_{op}" for op in ("ai", "ad", "au")),
    # migration 0017: a payload is never deleted, only withheld once by an order
    *(f"payloads_{kind}" for kind in ("no_delete", "withhold_only", "no_replace")),
}
POSTGRESQL_TRIGGERS = {
    *(f"{t}_{kind}" for t in IMMUTABLE for kind in ("append_only", "no_truncate")),
    "tiles_no_delete",
    "tiles_no_truncate",
    "tiles_extend_only",
    *(f"payloads_{kind}" for kind in ("no_delete", "no_truncate", "withhold_only")),
}


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _version(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return {row[0] for row in conn.execute(text(query))}


def _pg_functions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(text("SELECT proname FROM pg_proc WHERE proname LIKE 'tenderproof%'"))}


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                # the full-text index (migrations 0015 and 0018: SQLite's FTS5 table, its shadow
                # tables and its keys; PostgreSQL's stored tsvector and its GIN index): no
                # metadata can say them
                "include_name": lambda name, kind, _parent: (
                    not (
                        (kind == "table" and name.startswith("tender_search"))
                        or name in ("ix_tender_index_search", "search_vector")
                    )
                ),
            },
        )
        return list(compare_metadata(context, metadata))


def test_migrated_schema_matches_the_code(db_url: str) -> None:
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
        # Types, nullability, keys, indexes, unique constraints and server defaults all agree.
        assert _diff(engine) == []
        # compare_metadata does not compare constraint names; later migrations will refer to them.
        found = inspect(engine)
        for table in metadata.sorted_tables:
            assert found.get_pk_constraint(table.name)["name"] == f"pk_{table.name}"
            # the metadata's naming convention: fk_<table>_<column>_<referred table>
            wanted_fks = {
                (f"fk_{table.name}_{fk.parent.name}_{fk.column.table.name}", fk.parent.name)
                for fk in table.foreign_keys
            }
            got_fks = {(fk["name"], fk["constrained_columns"][0]) for fk in found.get_foreign_keys(table.name)}
            assert got_fks == wanted_fks, table.name
        assert {u["name"] for u in found.get_unique_constraints("events")} == {"uq_events_ocid_seq"}
        assert {u["name"] for u in found.get_unique_constraints("log_entries")} == {"uq_log_entries_event_id"}
        # Nor does it see triggers.
        expected = SQLITE_TRIGGERS if engine.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
        assert _triggers(engine) == expected
    finally:
        engine.dispose()


def test_migrate_is_idempotent_and_keeps_data(db_url: str) -> None:
    log = Log.open(db_url, origin=ORIGIN)
    try:
        assert _version(log.engine) == [_head_revision()]
        append_many(
            log,
            [Submission(ocid=f"ocds-abc123-{i % 4}", type="tender.amended", payload={"i": i}) for i in range(300)],
            now=T0,
        )
        log.integrate_all(now=T0)
        append(log, Submission(ocid="ocds-abc123-0", type="tender.amended", payload={}), now=T0)
        before = snapshot(log.engine)
        db.migrate(log.engine)
        db.migrate(log.engine, "head")
        assert snapshot(log.engine) == before
        assert _version(log.engine) == [_head_revision()]
        assert _triggers(log.engine) == (
            SQLITE_TRIGGERS if log.engine.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
        )
    finally:
        log.close()
    again = Log.open(db_url, origin=ORIGIN)  # migrates again on open
    try:
        assert snapshot(again.engine) == before
        assert again.integrate_all(now=T0).size == 301
        check_log(again, expect_events=301)
    finally:
        again.close()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine)
        log = Log(engine=engine, origin=ORIGIN)
        append(log, Submission(ocid="ocds-abc123-1", type="tender.planned", payload={}), now=T0)
        db.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert _version(engine) == []
        assert _triggers(engine) == set()
        if engine.dialect.name == "postgresql":
            assert _pg_functions(engine) == set()
        db.migrate(engine)
        assert db.is_migrated(engine)
        assert _version(engine) == [_head_revision()]
        assert _diff(engine) == []
        assert _triggers(engine) == (SQLITE_TRIGGERS if engine.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS)
        # A fresh log that works, guarded again.
        fresh = Log.open(db_url, origin=ORIGIN)
        try:
            assert fresh.reader.tree_head().size == 0
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 0
            append(fresh, Submission(ocid="ocds-abc123-1", type="tender.planned", payload={}), now=T0)
            assert fresh.integrate_all(now=T0).size == 1
            check_log(fresh, expect_events=1)
            with pytest.raises(DBAPIError) as err, engine.begin() as conn:
                conn.execute(text("DELETE FROM events"))
            assert guards.REFUSAL in str(err.value.orig)
        finally:
            fresh.close()
    finally:
        engine.dispose()


def test_0011_gives_each_existing_target_its_switch_in_creation_order(db_url: str) -> None:
    """A log anchored before 0011 keeps anchoring to the contract it used last."""
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine, "0009")
        with engine.begin() as conn:
            for contract in ("0x" + "aa" * 20, "0x" + "bb" * 20):
                conn.execute(
                    text(
                        "INSERT INTO anchor_targets (chain, chain_id, instance, contract, created_at) "
                        "VALUES ('local', 31337, 'genesis:00', :contract, :at)"
                    ),
                    {"contract": contract, "at": T0},
                )
        db.migrate(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT target_id FROM anchor_switches ORDER BY id")).scalars().all()
        assert rows == [1, 2]
        assert store.newest_target(engine, "local").contract == "0x" + "bb" * 20  # type: ignore[union-attr]
        with pytest.raises(DBAPIError) as err, engine.begin() as conn:
            conn.execute(text("DELETE FROM anchor_switches"))
        assert guards.REFUSAL in str(err.value.orig)
    finally:
        engine.dispose()


def test_alembic_command_line_environment(db_url: str) -> None:
    """env.py's other branch: no connection handed in, it connects to sqlalchemy.url itself."""
    engine = db.open_engine(db_url)
    try:
        config = db.alembic_config(engine)
        assert "connection" not in config.attributes
        command.upgrade(config, "head")
        assert _version(engine) == [_head_revision()]
        assert _diff(engine) == []
        command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_processes_starting_together_migrate_once() -> None:
    """Several processes opening a fresh PostgreSQL database at once (API workers and anchoring
    processes of a new deployment) take turns: one migrates, none fails."""
    import concurrent.futures

    with scratch_database(PG_ADMIN_URL) as url:

        def open_and_close(_: int) -> str:
            log = Log.open(url, origin=ORIGIN)
            try:
                return _version(log.engine)[0]
            finally:
                log.close()

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            versions = list(pool.map(open_and_close, range(4)))
        assert versions == [_head_revision()] * 4


def _envelope_0015(ocid: str, seq: int, payload: bytes, *, digest: str | None = None) -> bytes:
    stated = digest or hashlib.sha256(payload).hexdigest()
    # a whole v1 envelope (migration 0018 re-projects every event); the chain's prev is not checked there
    body = {
        "ocid": ocid,
        "origin": ORIGIN,
        "payload_sha256": stated,
        "prev": None if seq == 0 else "00" * 32,
        "recorded_at": "2026-11-01T00:00:00.000000Z",
        "seq": seq,
        "type": "tender.amended",
        "v": 1,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _event_0015(conn: Any, ocid: str, seq: int, payload: bytes, *, digest: str | None = None) -> None:
    """An event as a log before migration 0017 stored it (its payload in events.payload)."""
    envelope = _envelope_0015(ocid, seq, payload, digest=digest)
    conn.execute(
        text(
            "INSERT INTO events (ocid, seq, type, recorded_at, envelope, payload, leaf_hash) "
            "VALUES (:o, :s, 'tender.amended', :t, :e, :p, :h)"
        ),
        {"o": ocid, "s": seq, "t": T0, "e": envelope, "p": payload, "h": hashlib.sha256(b"\0" + envelope).digest()},
    )


def test_0017_moves_every_payload_checked_against_its_envelope(db_url: str) -> None:
    """Payloads move from events.payload to payloads in batches, byte for byte (a mirror's empty
    payload as NULL); a payload that does not hash to its envelope's payload_sha256 stops the
    upgrade with nothing changed."""
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine, "0016")
        payloads = [b'{"i":%d,"x":"%s"}' % (i, b"y" * (i * 37 % 3000)) for i in range(2500)]
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenders (ocid, created_at, updated_at, event_count) VALUES ('ocds-abc123-1', :t, :t, 0)"
                ),
                {"t": T0},
            )
            for i, data in enumerate(payloads):
                _event_0015(conn, "ocds-abc123-1", i, data)
            _event_0015(conn, "ocds-abc123-1", 2500, b"")  # withheld in a mirror: stored empty
            _event_0015(conn, "ocds-abc123-1", 2501, b'{"tampered":true}', digest="00" * 32)
        with pytest.raises(RuntimeError, match=r"hashes to .* its envelope says payload_sha256 0000"):
            db.migrate(engine)
        assert _version(engine) == ["0016"]
        assert "payloads" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM events WHERE payload IS NOT NULL")).scalar_one() == 2502
        # the operator restores the payload the envelope commits to (as from a backup), guards aside
        restored = b'{"restored":true}'
        with engine.begin() as conn:
            for statement in guards.drop_ddl(engine.dialect.name):
                if statement.startswith("DROP TRIGGER"):
                    conn.execute(text(statement))
            conn.execute(
                text("UPDATE events SET payload = :p, envelope = :e WHERE seq = 2501"),
                {"p": restored, "e": _envelope_0015("ocds-abc123-1", 2501, restored)},
            )
            for statement in guards.install_ddl(engine.dialect.name):
                if statement.startswith("CREATE TRIGGER"):
                    conn.execute(text(statement))
        db.migrate(engine)
        assert _version(engine) == [_head_revision()]
        with engine.connect() as conn:
            moved = conn.execute(
                text(
                    "SELECT e.seq, p.body, p.withheld_by FROM events e JOIN payloads p ON p.event_id = e.id ORDER BY e.seq"
                )
            ).all()
        bodies = [bytes(body) if body is not None else None for _, body, _ in moved]
        assert bodies == [*payloads, None, restored]
        assert {withheld for _, _, withheld in moved} == {None}
        assert "payload" not in {c["name"] for c in inspect(engine).get_columns("events")}
        assert _triggers(engine) == (SQLITE_TRIGGERS if engine.dialect.name == "sqlite" else POSTGRESQL_TRIGGERS)
    finally:
        engine.dispose()


def test_0019_rekeys_every_release_digest_checked_and_clears_the_withheld(db_url: str) -> None:
    """The imported releases' bare SHA-256 becomes an HMAC under a key drawn for the deployment,
    in batches, each row checked against its stored payload first (a mismatch stops the upgrade
    with nothing changed); a release an order withheld (whole or in part) keeps no digest."""
    engine = db.open_engine(db_url)
    try:
        db.migrate(engine, "0018")
        bodies = [b'{"id":"r%d","x":"%s"}' % (i, b"y" * (i * 37 % 700)) for i in range(2300)]
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenders (ocid, created_at, updated_at, event_count) VALUES ('ocds-abc123-1', :t, :t, 0)"
                ),
                {"t": T0},
            )
            for i, body in enumerate(bodies):
                envelope = _envelope_0015("ocds-abc123-1", i, body)
                event_id = conn.execute(
                    text(
                        "INSERT INTO events (ocid, seq, type, recorded_at, envelope, leaf_hash) "
                        "VALUES ('ocds-abc123-1', :s, 'tender.amended', :t, :e, :h) RETURNING id"
                    ),
                    {"s": i, "t": T0, "e": envelope, "h": hashlib.sha256(b"\0" + envelope).digest()},
                ).scalar_one()
                withheld = {0: (None, 9000), 1: (b'{"id":"r1","x":null}', 9001)}.get(i, (body, None))
                conn.execute(
                    text("INSERT INTO payloads (event_id, body, disclosure, withheld_by) VALUES (:e, :b, :d, :w)"),
                    {"e": event_id, "b": withheld[0], "d": b'{"salt":"ab"}' if i < 2 else None, "w": withheld[1]},
                )
                conn.execute(
                    text(
                        "INSERT INTO ocds_releases (event_id, ocid, release_id, release_date, release_sha256) "
                        "VALUES (:e, 'ocds-abc123-1', :r, :t, :d)"
                    ),
                    {"e": event_id, "r": f"r{i}", "t": T0, "d": hashlib.sha256(body).hexdigest()},
                )
            conn.execute(
                text("UPDATE ocds_releases SET release_sha256 = :d WHERE release_id = 'r2200'"), {"d": "0" * 64}
            )
        before = snapshot(engine, ("ocds_releases", "payloads"))
        with pytest.raises(
            RuntimeError, match=r"release event \d+'s stored payload hashes to .* ocds_releases says 0000"
        ):
            db.migrate(engine)
        assert _version(engine) == ["0018"]
        assert "deployment_keys" not in inspect(engine).get_table_names()
        assert snapshot(engine, ("ocds_releases", "payloads")) == before
        with engine.begin() as conn:  # the operator puts back the hash of what is stored
            conn.execute(
                text("UPDATE ocds_releases SET release_sha256 = :d WHERE release_id = 'r2200'"),
                {"d": hashlib.sha256(bodies[2200]).hexdigest()},
            )
        db.migrate(engine)
        assert _version(engine) == [_head_revision()]
        with engine.connect() as conn:
            key = bytes(
                conn.execute(text("SELECT secret FROM deployment_keys WHERE name = 'release_digest'")).scalar_one()
            )
            digests = dict(conn.execute(text("SELECT release_id, release_digest FROM ocds_releases")).all())
        assert len(key) == 32
        assert digests["r0"] is None and digests["r1"] is None  # withheld whole, withheld in part
        assert digests == {
            f"r{i}": None if i < 2 else hmac.new(key, body, hashlib.sha256).hexdigest() for i, body in enumerate(bodies)
        }
        assert "release_sha256" not in {c["name"] for c in inspect(engine).get_columns("ocds_releases")}
        with engine.connect() as conn:  # the whole payload's salts went; a partial one's stay
            kept = conn.execute(text("SELECT withheld_by, disclosure FROM payloads WHERE withheld_by IS NOT NULL"))
            assert sorted((w, None if d is None else bytes(d)) for w, d in kept) == [
                (9000, None),
                (9001, b'{"salt":"ab"}'),
            ]
        # a later order may now withhold more of a payload withheld in part, never one withheld whole
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE payloads SET body = :b, withheld_by = 9002 WHERE withheld_by = 9001"), {"b": b"{}"}
            )
        for statement, error in (
            ("UPDATE payloads SET withheld_by = 9003 WHERE withheld_by = 9000", "withheld"),
            ("UPDATE payloads SET body = NULL, withheld_by = 9001 WHERE withheld_by = 9002", "later than any before"),
            ("UPDATE payloads SET withheld_by = NULL WHERE withheld_by = 9002", "withheld"),
        ):
            with pytest.raises(DBAPIError, match=error), engine.begin() as conn:
                conn.execute(text(statement))
    finally:
        engine.dispose()
