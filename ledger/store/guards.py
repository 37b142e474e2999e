"""Database triggers that make recorded entries immutable, on SQLite and PostgreSQL.

The code never updates or deletes a recorded entry; these triggers make the
database itself refuse it, so a bug, a stray script or an operator with a SQL
prompt cannot quietly rewrite history (they would have to drop the triggers
first, which ``tenderproof audit`` then catches against the chain).
"""

from __future__ import annotations

from .schema import APPEND_ONLY_TABLES

#: Message prefix of every refusal, so callers can recognise it whatever the driver.
REFUSAL = "tenderproof: append-only"


#: The unique keys of each guarded SQLite table (see the ``*_no_replace`` triggers).
_SQLITE_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "events": (("id",), ("ocid", "seq")),
    "log_entries": (("idx",), ("event_id",)),
    "tree_heads": (("size",),),
    "tiles": (("level", "idx"),),
}


def _sqlite_collision(table: str, keys: tuple[tuple[str, ...], ...] | None = None) -> str:
    """SQL true when the row being inserted into ``table`` collides with a stored one, one EXISTS per key
    (so each is an index lookup). A BEFORE INSERT trigger sees NEW.id = -1 when SQLite picks the rowid."""
    tests = []
    for key in keys or _SQLITE_KEYS[table]:
        match = " AND ".join(f"{column} = NEW.{column}" for column in key)
        guard = "NEW.id > 0 AND " if key == ("id",) else ""
        tests.append(f"({guard}EXISTS (SELECT 1 FROM {table} WHERE {match}))")
    return " OR ".join(tests)


def sqlite_ddl() -> list[str]:
    out: list[str] = []
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            out.append(
                f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: {op} of {table} refused'); END"
            )
    # INSERT OR REPLACE deletes the row it collides with without firing DELETE triggers
    # (unless recursive_triggers is on), so an insert that would collide is refused up front.
    out += [sqlite_no_replace_ddl(table, _SQLITE_KEYS[table]) for table in _SQLITE_KEYS]
    out.append(
        "CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE of tiles refused'); END"
    )
    out.append(
        "CREATE TRIGGER tiles_extend_only BEFORE UPDATE ON tiles "
        "WHEN typeof(NEW.hashes) IS NOT 'blob' OR NEW.level IS NOT OLD.level OR NEW.idx IS NOT OLD.idx "
        "OR length(NEW.hashes) <= length(OLD.hashes) "
        "OR substr(NEW.hashes, 1, length(OLD.hashes)) IS NOT OLD.hashes "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: a tile may only be extended'); END"
    )
    return out


def sqlite_no_replace_ddl(table: str, keys: tuple[tuple[str, ...], ...]) -> str:
    """SQLite: refuse an insert into ``table`` that collides with a stored row on one of ``keys``."""
    return (
        f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} WHEN {_sqlite_collision(table, keys)} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: INSERT colliding with a stored row of {table} refused'); END"
    )


def sqlite_drop_ddl() -> list[str]:
    names = [f"{t}_no_{op}" for t in APPEND_ONLY_TABLES for op in ("update", "delete")]
    names += [f"{t}_no_replace" for t in _SQLITE_KEYS]
    return [f"DROP TRIGGER IF EXISTS {n}" for n in [*names, "tiles_no_delete", "tiles_extend_only"]]


def postgresql_ddl() -> list[str]:
    out = [
        f"""
        CREATE OR REPLACE FUNCTION tenderproof_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{REFUSAL}: % of % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END $$
        """,
        f"""
        CREATE OR REPLACE FUNCTION tenderproof_tile_extend_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.level IS DISTINCT FROM OLD.level OR NEW.idx IS DISTINCT FROM OLD.idx
               OR length(NEW.hashes) <= length(OLD.hashes)
               OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) IS DISTINCT FROM OLD.hashes THEN
                RAISE EXCEPTION '{REFUSAL}: a tile may only be extended'
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$
        """,
    ]
    for table in APPEND_ONLY_TABLES:
        out.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION tenderproof_refuse_change()"
        )
        out.append(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tenderproof_refuse_change()"
        )
    out.append(
        "CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles "
        "FOR EACH ROW EXECUTE FUNCTION tenderproof_refuse_change()"
    )
    out.append(
        "CREATE TRIGGER tiles_no_truncate BEFORE TRUNCATE ON tiles "
        "FOR EACH STATEMENT EXECUTE FUNCTION tenderproof_refuse_change()"
    )
    out.append(
        "CREATE TRIGGER tiles_extend_only BEFORE UPDATE ON tiles "
        "FOR EACH ROW EXECUTE FUNCTION tenderproof_tile_extend_only()"
    )
    return out


def postgresql_drop_ddl() -> list[str]:
    out = []
    for table in APPEND_ONLY_TABLES:
        out.append(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        out.append(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    out += [
        "DROP TRIGGER IF EXISTS tiles_no_delete ON tiles",
        "DROP TRIGGER IF EXISTS tiles_no_truncate ON tiles",
        "DROP TRIGGER IF EXISTS tiles_extend_only ON tiles",
        "DROP FUNCTION IF EXISTS tenderproof_refuse_change()",
        "DROP FUNCTION IF EXISTS tenderproof_tile_extend_only()",
    ]
    return out


def install_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return sqlite_ddl()
    if dialect == "postgresql":
        return postgresql_ddl()
    raise ValueError(f"unsupported database dialect {dialect!r}: use sqlite or postgresql")


def drop_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return sqlite_drop_ddl()
    if dialect == "postgresql":
        return postgresql_drop_ddl()
    raise ValueError(f"unsupported database dialect {dialect!r}: use sqlite or postgresql")


def immutable_rows_ddl(dialect: str, table: str) -> list[str]:
    """Triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL) of ``table``'s rows.

    For tables added after the log's own (migration 0001 installed the PostgreSQL function).
    """
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: {op} of {table} refused'); END"
            for op in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION tenderproof_refuse_change()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION tenderproof_refuse_change()",
        ]
    raise ValueError(f"unsupported database dialect {dialect!r}: use sqlite or postgresql")


def drop_immutable_rows_ddl(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {table}_no_{op}" for op in ("update", "delete")]
    return [
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
    ]


#: The only change a stored payload may take: withheld once, by an order (migration 0017).
_PAYLOAD_UPDATE_REFUSAL = f"{REFUSAL}: a payload may only be withheld, once, by an order"
#: Since migration 0019 a later order may withhold more of a payload an order withheld in part.
_PAYLOAD_FURTHER_REFUSAL = f"{REFUSAL}: a payload may only be withheld, by an order later than any before"


def payloads_ddl(dialect: str, *, once: bool = False) -> list[str]:
    """Triggers guarding ``payloads``: no DELETE (nor TRUNCATE, nor a colliding INSERT); an UPDATE
    only when ``withheld_by`` goes from NULL to a value, or (migration 0019: orders that build on
    orders) from one order to a later one while the body is still stored, with ``event_id``
    unchanged (no un-withholding; a payload withheld whole takes no change). With ``once``, the
    guard of migration 0017 (withheld once, by one order). Requires the PostgreSQL function of
    migration 0001."""
    if not once:
        refusal = _PAYLOAD_FURTHER_REFUSAL
        sqlite_when = (
            "NEW.withheld_by IS NULL OR NEW.event_id IS NOT OLD.event_id OR (OLD.withheld_by IS NOT NULL"
            " AND (OLD.body IS NULL OR NEW.withheld_by <= OLD.withheld_by))"
        )
        pg_when = (
            "NEW.withheld_by IS NULL OR NEW.event_id IS DISTINCT FROM OLD.event_id OR (OLD.withheld_by IS NOT NULL"
            " AND (OLD.body IS NULL OR NEW.withheld_by <= OLD.withheld_by))"
        )
    else:
        refusal = _PAYLOAD_UPDATE_REFUSAL
        sqlite_when = "OLD.withheld_by IS NOT NULL OR NEW.withheld_by IS NULL OR NEW.event_id IS NOT OLD.event_id"
        pg_when = "OLD.withheld_by IS NOT NULL OR NEW.withheld_by IS NULL OR NEW.event_id IS DISTINCT FROM OLD.event_id"
    if dialect == "sqlite":
        return [
            "CREATE TRIGGER payloads_no_delete BEFORE DELETE ON payloads "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE of payloads refused'); END",
            f"CREATE TRIGGER payloads_withhold_only BEFORE UPDATE ON payloads WHEN {sqlite_when} "
            f"BEGIN SELECT RAISE(ABORT, '{refusal}'); END",
            sqlite_no_replace_ddl("payloads", (("event_id",),)),
        ]
    if dialect == "postgresql":
        return [
            f"""
            CREATE OR REPLACE FUNCTION tenderproof_payload_withhold_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF {pg_when} THEN
                    RAISE EXCEPTION '{refusal}'
                        USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                RETURN NEW;
            END $$
            """,
            "CREATE TRIGGER payloads_no_delete BEFORE DELETE ON payloads "
            "FOR EACH ROW EXECUTE FUNCTION tenderproof_refuse_change()",
            "CREATE TRIGGER payloads_no_truncate BEFORE TRUNCATE ON payloads "
            "FOR EACH STATEMENT EXECUTE FUNCTION tenderproof_refuse_change()",
            "CREATE TRIGGER payloads_withhold_only BEFORE UPDATE ON payloads "
            "FOR EACH ROW EXECUTE FUNCTION tenderproof_payload_withhold_only()",
        ]
    raise ValueError(f"unsupported database dialect {dialect!r}: use sqlite or postgresql")


def drop_payloads_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS payloads_{name}" for name in ("no_delete", "withhold_only", "no_replace")]
    return [
        *(
            f"DROP TRIGGER IF EXISTS payloads_{name} ON payloads"
            for name in ("no_delete", "no_truncate", "withhold_only")
        ),
        "DROP FUNCTION IF EXISTS tenderproof_payload_withhold_only()",
    ]
