"""The anchoring service's tables: targets, anchors, their signed transactions, leases.

All writes of an anchor's state go through :func:`fenced`, a write transaction that first
checks (and renews) the caller's lease on the chain, so a process that lost its lease (it
stalled past the lease's expiry and another took over) cannot write a stale decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, Select, insert, select, update

from anchoring.schema import anchor_leases, anchor_switches, anchor_targets, anchor_txs, anchors
from ledger.core.errors import NotFoundError
from ledger.store import db

from .errors import LeaseHeldError

#: States of an anchor. In flight: the first three; a target has at most one anchor in flight.
PREPARED, SENT, INCLUDED, FINAL, FAILED = "prepared", "sent", "included", "final", "failed"
IN_FLIGHT = (PREPARED, SENT, INCLUDED)
#: States in which the anchor is on chain (final: deep enough to count on it).
ON_CHAIN = (INCLUDED, FINAL)


def utc(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    id: int
    chain: str
    chain_id: int
    instance: str
    contract: str
    created_at: datetime


@dataclass(frozen=True)
class Anchor:
    id: int
    target_id: int
    tree_size: int
    root: bytes
    base_size: int
    status: str
    account: str
    nonce: int
    created_at: datetime
    updated_at: datetime
    tx_hash: bytes | None
    block_number: int | None
    block_hash: bytes | None
    block_timestamp: int | None
    anchor_id: int | None
    gas_used: int | None
    final_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, mapping: Mapping[Any, Any]) -> Anchor:
        values = {column.name: mapping[column.name] for column in anchors.columns}
        for key in ("created_at", "updated_at", "final_at"):
            if values[key] is not None:
                values[key] = utc(values[key])
        for key in ("root", "tx_hash", "block_hash"):
            if values[key] is not None:
                values[key] = bytes(values[key])
        return cls(**values)


@dataclass(frozen=True)
class Tx:
    tx_hash: bytes
    anchor_id: int
    nonce: int
    raw: bytes
    gas_limit: int
    max_fee: int
    priority_fee: int | None
    created_at: datetime


# --- Leases ------------------------------------------------------------------------------


def _lock_lease(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(anchor_leases).where(anchor_leases.c.name == name).with_for_update()).first()


def acquire(engine: Engine, name: str, holder: str, *, now: datetime, ttl: float) -> None:
    """Take or renew the lease ``name`` for ``holder``; raises :class:`LeaseHeldError` if another
    holder's lease has not expired."""
    expires = now + timedelta(seconds=ttl)
    with db.write_transaction(engine) as conn:
        conn.execute(
            db.insert_or_ignore(conn, anchor_leases, keys=["name"]).values(
                name=name, holder=holder, acquired_at=now, expires_at=expires
            )
        )
        row = _lock_lease(conn, name)
        assert row is not None
        if row.holder == holder:
            conn.execute(update(anchor_leases).where(anchor_leases.c.name == name).values(expires_at=expires))
        elif utc(row.expires_at) <= now:
            conn.execute(
                update(anchor_leases)
                .where(anchor_leases.c.name == name)
                .values(holder=holder, acquired_at=now, expires_at=expires)
            )
        else:
            raise LeaseHeldError(name, row.holder, utc(row.expires_at).isoformat())


def release(engine: Engine, name: str, holder: str, *, now: datetime) -> None:
    """Let the lease expire now, if ``holder`` has it (another process can take over at once)."""
    with db.write_transaction(engine) as conn:
        conn.execute(
            update(anchor_leases)
            .where(anchor_leases.c.name == name, anchor_leases.c.holder == holder)
            .values(expires_at=now)
        )


@contextmanager
def fenced(engine: Engine, name: str, holder: str, *, now: datetime, ttl: float) -> Iterator[Connection]:
    """A write transaction that proceeds only while ``holder`` still has the lease ``name``."""
    with db.write_transaction(engine) as conn:
        row = _lock_lease(conn, name)
        if row is None or row.holder != holder:
            raise LeaseHeldError(name, row.holder if row else "nobody", utc(row.expires_at).isoformat() if row else "-")
        conn.execute(
            update(anchor_leases).where(anchor_leases.c.name == name).values(expires_at=now + timedelta(seconds=ttl))
        )
        yield conn


# --- Targets -----------------------------------------------------------------------------


def target(engine: Engine, *, chain: str, chain_id: int, instance: str, contract: str, now: datetime) -> Target:
    """The target row for this contract on this chain instance, created if new, and made the
    chain's target now (a row of ``anchor_switches`` when it was not)."""
    where = (
        anchor_targets.c.chain == chain,
        anchor_targets.c.chain_id == chain_id,
        anchor_targets.c.instance == instance,
        anchor_targets.c.contract == contract,
    )
    with db.write_transaction(engine) as conn:
        conn.execute(
            db.insert_or_ignore(conn, anchor_targets).values(
                chain=chain, chain_id=chain_id, instance=instance, contract=contract, created_at=now
            )
        )
        row = conn.execute(select(anchor_targets).where(*where)).one()
        if conn.execute(current_target(chain).with_only_columns(anchor_targets.c.id)).scalar() != row.id:
            conn.execute(insert(anchor_switches).values(target_id=row.id, switched_at=now))
    return Target(**{**row._asdict(), "created_at": utc(row.created_at)})


def current_target(chain: str, *where: ColumnElement[bool]) -> Select[Any]:
    """The target ``chain`` anchors to now (its newest switch), among those matching ``where``."""
    return (
        select(anchor_targets)
        .join(anchor_switches, anchor_switches.c.target_id == anchor_targets.c.id)
        .where(anchor_targets.c.chain == chain, *where)
        .order_by(anchor_switches.c.id.desc())
        .limit(1)
    )


def find_target(engine: Engine, *, chain: str, chain_id: int, instance: str, contract: str) -> Target | None:
    """The target row of this contract on this chain instance, if it was ever used."""
    with db.read_transaction(engine) as conn:
        row = conn.execute(
            select(anchor_targets).where(
                anchor_targets.c.chain == chain,
                anchor_targets.c.chain_id == chain_id,
                anchor_targets.c.instance == instance,
                anchor_targets.c.contract == contract,
            )
        ).first()
    return None if row is None else Target(**{**row._asdict(), "created_at": utc(row.created_at)})


def recorded_contract(engine: Engine, *, chain: str, chain_id: int, instance: str) -> str | None:
    """The contract this chain instance anchors to now (the one most recently used, deployed or
    switched to)."""
    query = current_target(chain, anchor_targets.c.chain_id == chain_id, anchor_targets.c.instance == instance)
    with db.read_transaction(engine) as conn:
        return conn.execute(query.with_only_columns(anchor_targets.c.contract)).scalar_one_or_none()


# --- Anchors -----------------------------------------------------------------------------


def in_flight(engine: Engine, target_id: int) -> Anchor | None:
    with db.read_transaction(engine) as conn:
        return in_flight_on(conn, target_id)


def in_flight_on(conn: Connection, target_id: int) -> Anchor | None:
    row = conn.execute(
        select(anchors).where(anchors.c.target_id == target_id, anchors.c.status.in_(IN_FLIGHT)).order_by(anchors.c.id)
    ).first()
    return Anchor.of(row._mapping) if row else None


def unsettled(engine: Engine, target_id: int) -> list[Anchor]:
    """The target's anchors in flight, in nonce order (after a deep reorg there can be several:
    they must take effect in that order, a gap first)."""
    with db.read_transaction(engine) as conn:
        rows = conn.execute(
            select(anchors)
            .where(anchors.c.target_id == target_id, anchors.c.status.in_(IN_FLIGHT))
            .order_by(anchors.c.nonce, anchors.c.id)
        ).all()
    return [Anchor.of(row._mapping) for row in rows]


def recent_final(engine: Engine, target_id: int, *, above_block: int, limit: int = 256) -> list[Anchor]:
    """The target's final anchors in blocks above ``above_block`` (not yet deep enough to stop
    re-checking them), and always the newest final one, in nonce order."""
    with db.read_transaction(engine) as conn:
        rows = conn.execute(
            select(anchors)
            .where(
                anchors.c.target_id == target_id,
                anchors.c.status == FINAL,
                anchors.c.block_number > above_block,
            )
            .order_by(anchors.c.nonce.desc(), anchors.c.id.desc())
            .limit(limit)
        ).all()
    found = {row.id: Anchor.of(row._mapping) for row in rows}
    newest_final = newest(engine, target_id, (FINAL,))
    if newest_final is not None:
        found.setdefault(newest_final.id, newest_final)
    return sorted(found.values(), key=lambda a: (a.nonce, a.id))


def get(engine: Engine, anchor_id: int) -> Anchor:
    with db.read_transaction(engine) as conn:
        return Anchor.of(conn.execute(select(anchors).where(anchors.c.id == anchor_id)).one()._mapping)


def newest(engine: Engine, target_id: int, statuses: Sequence[str]) -> Anchor | None:
    """The anchor of the largest tree size among those in ``statuses``."""
    with db.read_transaction(engine) as conn:
        row = conn.execute(
            select(anchors)
            .where(anchors.c.target_id == target_id, anchors.c.status.in_(statuses))
            .order_by(anchors.c.tree_size.desc(), anchors.c.id.desc())
            .limit(1)
        ).first()
    return Anchor.of(row._mapping) if row else None


def finals(engine: Engine, target_id: int) -> list[Anchor]:
    """The target's final anchors, smallest tree size first."""
    with db.read_transaction(engine) as conn:
        rows = conn.execute(
            select(anchors)
            .where(anchors.c.target_id == target_id, anchors.c.status == FINAL)
            .order_by(anchors.c.tree_size, anchors.c.id)
        ).all()
    return [Anchor.of(row._mapping) for row in rows]


def transactions(engine: Engine, anchor_id: int) -> list[Tx]:
    """An anchor's signed transactions, oldest first."""
    with db.read_transaction(engine) as conn:
        rows = conn.execute(
            select(anchor_txs).where(anchor_txs.c.anchor_id == anchor_id).order_by(anchor_txs.c.id)
        ).all()
    return [
        Tx(
            tx_hash=bytes(r.tx_hash),
            anchor_id=r.anchor_id,
            nonce=r.nonce,
            raw=bytes(r.raw),
            gas_limit=r.gas_limit,
            max_fee=int(r.max_fee),
            priority_fee=None if r.priority_fee is None else int(r.priority_fee),
            created_at=utc(r.created_at),
        )
        for r in rows
    ]


def insert_anchor(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(anchors).values(**values).returning(anchors.c.id)).scalar_one())


def insert_tx(conn: Connection, *, anchor_id: int, tx_hash: bytes, nonce: int, raw: bytes, gas_limit: int,
              max_fee: int, priority_fee: int | None, now: datetime) -> None:  # fmt: skip
    conn.execute(
        insert(anchor_txs).values(
            tx_hash=tx_hash,
            anchor_id=anchor_id,
            nonce=nonce,
            raw=raw,
            gas_limit=gas_limit,
            max_fee=str(max_fee),
            priority_fee=None if priority_fee is None else str(priority_fee),
            created_at=now,
        )
    )


def set_state(conn: Connection, row_id: int, /, *, expect: str, now: datetime, **values: Any) -> None:
    """Move anchor ``row_id`` out of state ``expect`` (compare-and-set: a stale caller fails)."""
    done = conn.execute(
        update(anchors).where(anchors.c.id == row_id, anchors.c.status == expect).values(updated_at=now, **values)
    )
    if done.rowcount != 1:
        raise LeaseHeldError(f"anchor {row_id}", "another process", "its state moved on")


@dataclass(frozen=True)
class Listed:
    target: Target
    anchor: Anchor

    def to_json(self) -> dict[str, Any]:
        """The anchor as the API, the explorer and the command line show it (JSON types)."""
        anchor = self.anchor
        return {
            "id": anchor.id,
            "chain": self.target.chain,
            "chain_id": self.target.chain_id,
            "contract": self.target.contract,
            "tree_size": anchor.tree_size,
            "root_hash": anchor.root.hex(),
            "status": anchor.status,
            "tx_hash": None if anchor.tx_hash is None else "0x" + anchor.tx_hash.hex(),
            "block_number": anchor.block_number,
            "block_timestamp": anchor.block_timestamp,
            "anchor_id": anchor.anchor_id,
            "gas_used": anchor.gas_used,
            "created_at": anchor.created_at.isoformat(),
            "final_at": None if anchor.final_at is None else anchor.final_at.isoformat(),
            "error": anchor.error,
        }


def listing(
    engine: Engine,
    *,
    chain: str | None = None,
    instance: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[Listed]:
    """Newest anchors first, with their targets; with ``before``, only those of ``id < before``
    (the next page: no gaps or repeats, however many anchors are added meanwhile); with
    ``instance``, only those of that chain instance (an embedded chain is a new instance at every
    start: the anchors of an earlier one are gone with it, and re-anchoring the same checkpoint on
    the new one must not show it twice)."""
    query = _with_targets().order_by(anchors.c.id.desc()).limit(limit)
    if chain is not None:
        query = query.where(anchor_targets.c.chain == chain)
    if instance is not None:
        query = query.where(anchor_targets.c.instance == instance)
    if before is not None:
        query = query.where(anchors.c.id < before)
    with db.read_transaction(engine) as conn:
        return [_listed(row) for row in conn.execute(query)]


def _with_targets() -> Select[Any]:
    return select(
        anchors,
        anchor_targets.c.chain,
        anchor_targets.c.chain_id,
        anchor_targets.c.instance,
        anchor_targets.c.contract,
        anchor_targets.c.created_at.label("target_created_at"),
    ).join(anchor_targets, anchor_targets.c.id == anchors.c.target_id)


def find(engine: Engine, *, chain: str, anchor_id: int) -> Listed:
    """Anchor ``anchor_id`` (the database id) of chain ``chain``; raises :class:`NotFoundError`."""
    query = _with_targets().where(anchors.c.id == anchor_id, anchor_targets.c.chain == chain)
    with db.read_transaction(engine) as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"anchor {anchor_id} of chain {chain!r} not found")
    return _listed(row)


def _listed(row: Row[Any]) -> Listed:
    values = row._asdict()
    tgt = Target(
        id=values["target_id"],
        chain=values.pop("chain"),
        chain_id=values.pop("chain_id"),
        instance=values.pop("instance"),
        contract=values.pop("contract"),
        created_at=utc(values.pop("target_created_at")),
    )
    return Listed(tgt, Anchor.of(values))


def batch_start(engine: Engine, anchor: Anchor) -> int:
    """Where ``anchor``'s batch starts: the tree size of the previous final anchor on the same
    target (0 if none). The batch is the entries ``[batch_start, anchor.tree_size)``."""
    with db.read_transaction(engine) as conn:
        previous = conn.execute(
            select(anchors.c.tree_size)
            .where(
                anchors.c.target_id == anchor.target_id,
                anchors.c.status == FINAL,
                anchors.c.tree_size < anchor.tree_size,
            )
            .order_by(anchors.c.tree_size.desc())
            .limit(1)
        ).scalar()
    return int(previous or 0)


def newest_target(engine: Engine, chain: str) -> Target | None:
    """The target ``chain`` anchors to now (the newest used or switched to)."""
    with db.read_transaction(engine) as conn:
        row = conn.execute(current_target(chain)).first()
    return None if row is None else Target(**{**row._asdict(), "created_at": utc(row.created_at)})


def latest_final(engine: Engine, chain: str) -> Anchor | None:
    """The final anchor of the largest tree size on the target ``chain`` anchors to now."""
    with db.read_transaction(engine) as conn:
        target_id = conn.execute(current_target(chain).with_only_columns(anchor_targets.c.id)).scalar()
        if target_id is None:
            return None
        row = conn.execute(
            select(anchors)
            .where(anchors.c.target_id == target_id, anchors.c.status == FINAL)
            .order_by(anchors.c.tree_size.desc())
            .limit(1)
        ).first()
    return Anchor.of(row._mapping) if row else None
