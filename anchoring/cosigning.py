"""The publishing round's cosigning (C2SP tlog-witness, docs/spec.md §17): the log signs the
checkpoint it is about to anchor, asks each configured witness to cosign it with a consistency
proof from the last size that witness cosigned, and keeps the note with every valid cosignature
for the bundles. A witness that is down, slow or refusing never stops anchoring: the round goes
on and the shortfall against the policy is logged and returned."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy import Engine, insert, select, update

from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import AddCheckpoint, CosignerKey, parse_line
from ledger.core.errors import LedgerError
from ledger.core.note import Signer
from ledger.log import Log

from .schema import cosigned_checkpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Witness:
    url: str
    key: CosignerKey


@dataclass(slots=True)
class Outcome:
    size: int
    cosigned: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wanted: int = 0

    @property
    def shortfall(self) -> int:
        return max(0, self.wanted - len(self.cosigned))


class Cosigning:
    """Collects cosignatures for the log's checkpoints from ``witnesses``."""

    def __init__(
        self,
        log_: Log,
        signer: Signer,
        witnesses: Sequence[Witness],
        *,
        quorum: int | None = None,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.log = log_
        self.signer = signer
        self.witnesses = list(witnesses)
        self.quorum = len(self.witnesses) if quorum is None else quorum
        self.client = client or httpx.Client(timeout=timeout)
        self._known: dict[str, int] = {}  # witness url -> the size it last cosigned (0: ask)

    def round(self, *, now: datetime) -> Outcome | None:
        """Cosign the checkpoint of the size the next anchor covers; ``None`` for an empty log."""
        size = self.log.reader.committed_size()
        if size == 0:
            return None
        cp = Checkpoint(origin=self.log.origin, size=size, root=self.log.reader.root_at(size))
        note = self.signer.sign(cp.to_text())
        outcome = Outcome(size=size, wanted=self.quorum)
        lines: list[str] = []
        for witness in self.witnesses:
            try:
                lines.append(self._ask(witness, cp, note))
                outcome.cosigned.append(witness.key.name)
            except (httpx.HTTPError, LedgerError, ValueError) as exc:
                outcome.failed[witness.key.name] = str(exc)[:300]
                log.warning("witness %s (%s): no cosignature for size %d: %s", witness.key.name, witness.url, size, exc)
        if outcome.shortfall:
            log.warning(
                "checkpoint %d: %d of %d cosignatures wanted (witness policy short by %d)",
                size, len(outcome.cosigned), outcome.wanted, outcome.shortfall,
            )  # fmt: skip
        self._keep(self.log.engine, cp, note + "".join(lines), len(lines), now)
        return outcome

    def _ask(self, witness: Witness, cp: Checkpoint, note: str) -> str:
        old = self._known.get(witness.url, 0)
        for _ in range(2):  # the second time with the size a 409 named
            old = min(old, cp.size)
            proof = self.log.reader.consistency_proof(old, cp.size) if 0 < old < cp.size else []
            body = AddCheckpoint(old, tuple(proof), note).to_text()
            answer = self.client.post(f"{witness.url.rstrip('/')}/add-checkpoint", content=body)
            if answer.status_code == 409 and answer.headers.get("content-type", "").startswith("text/x.tlog.size"):
                told = int(answer.text.strip())
                if told == old or told > cp.size:
                    raise LedgerError(
                        f"the witness holds size {told}, the log's checkpoint is {cp.size}: {answer.text}"
                    )
                old = told
                continue
            if answer.status_code != 200:
                raise LedgerError(f"HTTP {answer.status_code}: {answer.text.strip()[:200]}")
            for line in answer.text.splitlines():
                cosig = parse_line(line)
                if cosig is not None and witness.key.verify(cp.to_text(), cosig):
                    self._known[witness.url] = cp.size
                    return line + "\n"
            raise LedgerError("the answer holds no valid cosignature by the configured key")
        raise LedgerError("the witness kept answering 409")

    @staticmethod
    def _keep(engine: Engine, cp: Checkpoint, note: str, count: int, now: datetime) -> None:
        with engine.begin() as conn:
            held = conn.execute(
                select(cosigned_checkpoints.c.cosignatures).where(cosigned_checkpoints.c.size == cp.size)
            ).scalar()
            values = {"root": cp.root, "note": note, "cosignatures": count, "updated_at": now}
            if held is None:
                conn.execute(insert(cosigned_checkpoints).values(size=cp.size, **values))
            elif count > held:  # only ever more cosignatures
                conn.execute(
                    update(cosigned_checkpoints).where(cosigned_checkpoints.c.size == cp.size).values(**values)
                )


def cosigned_note(engine: Engine, size: int, root: bytes) -> str | None:
    """The stored note for the checkpoint (size, root) with its cosignatures, if any."""
    with engine.connect() as conn:
        row = conn.execute(
            select(cosigned_checkpoints.c.note, cosigned_checkpoints.c.root).where(cosigned_checkpoints.c.size == size)
        ).first()
    if row is None or bytes(row[1]) != root:
        return None
    return str(row[0])


def latest_cosigned(engine: Engine) -> str | None:
    """The note of the largest checkpoint the publishing round kept, with its cosignatures."""
    with engine.connect() as conn:
        note = conn.execute(
            select(cosigned_checkpoints.c.note).order_by(cosigned_checkpoints.c.size.desc()).limit(1)
        ).scalar()
    return None if note is None else str(note)
