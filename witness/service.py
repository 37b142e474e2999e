"""The witness's state and its one decision: cosign a checkpoint, or refuse it (and keep the
evidence when the refusal may show the log misbehaving)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import AddCheckpoint, Cosigner, split_note
from ledger.core.errors import FormatError, InvalidArgumentError, VerificationError
from ledger.core.note import Verifier, open_note
from ledger.core.verify import verify_consistency
from ledger.store import db
from ledger.store.db import write_transaction

metadata = MetaData()
Id = BigInteger().with_variant(Integer(), "sqlite")

#: The latest checkpoint cosigned per log (by origin).
latest = Table(
    "witness_latest",
    metadata,
    Column("origin", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("cosigned_at", BigInteger, nullable=False),
)

#: Requests refused that may show a log misbehaving: a fork (same size, other root) or a
#: consistency proof that does not verify, on a checkpoint the log did sign.
evidence = Table(
    "witness_evidence",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("origin", String(1024), nullable=False),
    Column("reason", String(1024), nullable=False),
    Column("request", Text, nullable=False),
    Column("latest_note", Text, nullable=True),
    Column("received_at", String(40), nullable=False),
)

SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


def open_engine(url: str) -> Engine:
    """The witness's state database at ``url`` (SQLite or PostgreSQL, configured as the log's own
    database is: :func:`ledger.store.db.open_engine`), its tables created if missing."""
    engine = db.open_engine(url)
    metadata.create_all(engine)
    return engine


class Witness:
    def __init__(
        self,
        engine: Engine,
        cosigner: Cosigner,
        logs: Mapping[str, Verifier],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.cosigner = cosigner
        self.logs = dict(logs)
        self.clock = clock
        self._lock = threading.Lock()  # the check and the update are one step (tlog-witness)

    def add_checkpoint(self, body: str) -> Answer:
        try:
            request = AddCheckpoint.parse(body)
            text, _ = split_note(request.note)
            cp = Checkpoint.from_text(text)
        except InvalidArgumentError as exc:
            return Answer(400, f"{exc}\n")
        verifier = self.logs.get(cp.origin)
        if verifier is None:
            return Answer(404, f"unknown log origin {cp.origin!r}\n")
        try:
            open_note(request.note, verifier)
        except FormatError as exc:
            return Answer(400, f"{exc}\n")
        except VerificationError as exc:
            return Answer(403, f"{exc}\n")
        if request.old_size > cp.size:
            return Answer(400, f"old size {request.old_size} is larger than the checkpoint's size {cp.size}\n")
        # The state is read in the transaction that updates it (another witness process may share
        # the database), and the answer leaves only after the commit returns: a cosigned
        # checkpoint is durable (SQLite synchronous=FULL, PostgreSQL's WAL flush) before its
        # cosignature is out.
        with self._lock, write_transaction(self.engine) as conn:
            query = select(latest).where(latest.c.origin == cp.origin)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).mappings().first()
            size = 0 if row is None else int(row["size"])
            if request.old_size != size:
                return Answer(409, f"{size}\n", SIZE_TYPE)
            old_root = None if row is None else bytes(row["root"])
            if cp.size == size and size > 0:
                if cp.root != old_root:
                    self._keep(conn, cp.origin, f"fork: two roots for tree size {size}", body, row)
                    return Answer(409, f"{size}\n", SIZE_TYPE)
            else:
                try:
                    if size == 0 and request.proof:
                        raise VerificationError("a consistency proof from size 0 must be empty")
                    if size > 0:
                        assert old_root is not None
                        verify_consistency(size, cp.size, old_root, cp.root, list(request.proof))
                except (VerificationError, InvalidArgumentError) as exc:
                    self._keep(conn, cp.origin, f"consistency proof from {size} to {cp.size} fails: {exc}", body, row)
                    return Answer(422, f"consistency proof from {size} to {cp.size} does not verify: {exc}\n")
            now = int(self.clock())
            values = {"size": cp.size, "root": cp.root, "note": request.note, "cosigned_at": now}
            if row is None:
                conn.execute(insert(latest).values(origin=cp.origin, **values))
            else:
                conn.execute(update(latest).where(latest.c.origin == cp.origin).values(**values))
            return Answer(200, self.cosigner.cosign(text, now).line())

    def _keep(self, conn: Connection, origin: str, reason: str, body: str, row: RowMapping | None) -> None:
        conn.execute(
            insert(evidence).values(
                origin=origin,
                reason=reason,
                request=body,
                latest_note=None if row is None else str(row["note"]),
                received_at=datetime.now(UTC).isoformat(),
            )
        )

    def evidence(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(evidence).order_by(evidence.c.id)).mappings().all()
        return [dict(row) for row in rows]


def evidence_json(rows: list[dict[str, object]]) -> str:
    return "\n".join(json.dumps(row, sort_keys=True) for row in rows)
