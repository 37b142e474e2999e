"""A monitor's mirror: the log it follows, copied into the log's own schema (``ledger.store``,
migrated as the log's database is) in the monitor's database, so that ``tenderproof serve --mirror``
serves it read-only with the log's own read code: the same entries, tiles, proofs, heads tree,
procurement projection and bundles as the log it follows, for the sizes the monitor verified.

What goes in, as the monitor follows (:class:`monitor.follow.Monitor` with ``mirror=``):

- every page of entries, in the transaction that records the page in the monitor's own tables
  (a monitor killed at any moment resumes with both in step): events with their exact bytes
  (a payload withheld by the log is stored empty, with the order the log says withheld it:
  bundles cite and carry that order as the origin's do), the tree
  (:func:`ledger.log.replicate`), and the OCDS import records of the entries that are imported
  releases (recognised as the importer recognises a release: their payload is a valid release
  of the event's type);
- every final anchor the monitor checked and found true, with the checkpoint note the log kept
  for its size (with the witnesses' cosignatures), verified with the log's key;
- after each round that grew the mirror, the projections (tenders' search rows and red flags,
  officers, imported tenders' compiled releases: :func:`ledger.procurement.project.rebuild`) and
  the ledger-wide red flags (:func:`ledger.procurement.redflags.refresh_ledger_flags`), computed
  over the mirrored log, which ends at the signed checkpoint the round verified.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, inspect, select

from anchoring.cosigning import cosigned_note
from anchoring.schema import anchor_switches, anchor_targets, anchors, cosigned_checkpoints
from ledger.core import commitment
from ledger.core.canonical import sha256_hex
from ledger.core.checkpoint import Checkpoint
from ledger.core.envelope import VERSION_2
from ledger.core.errors import InvalidArgumentError, LedgerError
from ledger.core.note import Verifier, open_note
from ledger.log import Log, Replica, bind_origin, replicate
from ledger.procurement import importer, project, redflags
from ledger.store import db, keys
from ledger.store.reader import LogReader
from ledger.store.schema import events, log_config, log_state, ocds_releases

#: ``anchor_targets.instance`` of a target seen through a log's public API (which does not say
#: the chain instance): the chain id and contract name it.
_INSTANCE = "mirror:{chain_id}"


def prepare(engine: Engine, origin: str) -> None:
    """Make ``engine``'s database a mirror of the log ``origin``: the log's schema, migrated, and
    its origin bound (raises :class:`~ledger.core.errors.InvalidArgumentError` if it mirrors
    another); entries the monitor mirrored before (``--mirror`` given later) are copied in."""
    from . import store

    db.migrate(engine)
    bind_origin(engine, origin)
    while True:
        with engine.begin() as conn:
            start = int(conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar_one())
            e, d = store.entries.c, store.disclosures.c
            rows = conn.execute(
                select(e.idx, e.ocid, e.seq, e.leaf_hash, e.leaf_data, e.payload, d.disclosure)
                .select_from(store.entries.outerjoin(store.disclosures, d.idx == e.idx))
                .where(e.idx >= start)
                .order_by(e.idx)
                .limit(1000)
            ).all()
            if not rows:
                return
            add(conn, start, rows, now=datetime.now(UTC))


def _binds(envelope: dict[str, Any], digest: str, payload: bytes, disclosure: bytes | None) -> bool:
    """Whether the envelope binds this payload: its SHA-256 (v1) or its commitment (v2, with the
    disclosure's bytes)."""
    if envelope.get("v") == VERSION_2:
        if disclosure is None:
            return False
        try:
            bound = commitment.recompute(json.loads(payload), json.loads(disclosure))
            return bool(bound == envelope.get("payload_commitment"))
        except (LedgerError, ValueError):
            return False
    return digest == envelope.get("payload_sha256")


def _withheld_in_part(disclosure: Any) -> bool:
    """Whether a v2 disclosure shows fields withheld by an order."""
    if not isinstance(disclosure, dict):
        return False
    try:
        return bool(commitment.withheld_fields(disclosure))
    except LedgerError:
        return False


def add(conn: Connection, start: int, rows: Sequence[Sequence[Any]], *, now: datetime) -> None:
    """Copy one checked page of entries (the monitor's ``monitor_entries`` rows: index, ocid, seq,
    leaf hash, leaf data, payload bytes or None; then an envelope v2 entry's disclosure bytes as
    served, ``monitor_disclosures``, or None) at index ``start`` of the mirror, in the caller's
    transaction."""
    entries: list[Replica] = []
    releases: list[tuple[int, Any, bool]] = []
    key = keys.key(conn, keys.RELEASE_DIGEST)  # this mirror's own (docs/privacy.md)
    for offset, row in enumerate(rows):
        _, _, _, leaf_hash, leaf_data, stored = row[:6]
        disclosure = None if len(row) < 7 or row[6] is None else bytes(row[6])
        withheld_by = None if len(row) < 8 or row[7] is None or stored is not None else int(row[7])
        envelope = json.loads(leaf_data)
        payload = b"" if stored is None else bytes(stored)
        entries.append(
            Replica(
                ocid=str(envelope["ocid"]),
                seq=int(envelope["seq"]),
                type=str(envelope["type"]),
                recorded_at=datetime.fromisoformat(str(envelope["recorded_at"]).replace("Z", "+00:00")),
                envelope=bytes(leaf_data),
                payload=payload,
                leaf_hash=bytes(leaf_hash),
                disclosure=disclosure,
                withheld_by=withheld_by,
            )
        )
        if payload[:1] == b"{":
            release = importer.check_release(
                json.loads(payload), file="mirror", position=f"entries[{start + offset}]", digest_key=key
            )
            if (
                not isinstance(release, importer.Problem)
                and release.type == envelope["type"]
                and release.ocid == envelope["ocid"]
                and _binds(envelope, sha256_hex(release.data), payload, disclosure)
            ):
                releases.append((offset, release, _withheld_in_part(disclosure)))
    replicate(conn, start, entries, now=now)
    for offset, release, withheld in releases:
        entry = entries[offset]
        event_id = conn.execute(
            select(events.c.id).where(events.c.ocid == entry.ocid, events.c.seq == entry.seq)
        ).scalar_one()
        conn.execute(
            insert(ocds_releases).values(
                event_id=event_id,
                ocid=release.ocid,
                release_id=release.release_id,
                release_date=release.date,
                release_digest=None if withheld else release.digest,  # no hash of withheld data
                notes=json.dumps([{"path": p, "reason": m} for p, m in release.notes], ensure_ascii=False)
                if release.notes
                else None,
            )
        )


def add_anchor(
    conn: Connection, anchor: dict[str, Any], *, note: str | None, verifier: Verifier | None, origin: str
) -> None:
    """Record a final anchor the monitor checked (as the log lists it, same id) and, when
    ``note`` verifies with ``verifier`` as the checkpoint of its size and root, the note the
    log kept for it (bundles carry it). Requires the mirror to hold the anchor's tree size."""
    size, root = int(anchor["tree_size"]), bytes.fromhex(anchor["root_hash"])
    known = conn.execute(select(anchors.c.id).where(anchors.c.id == int(anchor["id"]))).first()
    if known is not None:
        return
    instance = _INSTANCE.format(chain_id=anchor["chain_id"])
    target = conn.execute(
        select(anchor_targets.c.id).where(
            anchor_targets.c.chain == anchor["chain"],
            anchor_targets.c.chain_id == anchor["chain_id"],
            anchor_targets.c.instance == instance,
            anchor_targets.c.contract == anchor["contract"],
        )
    ).scalar()
    now = datetime.now(UTC)
    if target is None:
        target = conn.execute(
            insert(anchor_targets).returning(anchor_targets.c.id),
            {"chain": anchor["chain"], "chain_id": anchor["chain_id"], "instance": instance,
             "contract": anchor["contract"], "created_at": now},
        ).scalar_one()  # fmt: skip
        conn.execute(insert(anchor_switches).values(target_id=target, switched_at=now))
    base = conn.execute(
        select(func.coalesce(func.max(anchors.c.tree_size), 0)).where(
            anchors.c.target_id == target, anchors.c.tree_size < size
        )
    ).scalar_one()
    created = datetime.fromisoformat(anchor["created_at"])
    final_at = datetime.fromisoformat(anchor["final_at"]) if anchor.get("final_at") else None
    conn.execute(
        insert(anchors).values(
            id=int(anchor["id"]), target_id=target, tree_size=size, root=root, base_size=base, status="final",
            account="", nonce=0, created_at=created, updated_at=final_at or created,
            tx_hash=bytes.fromhex(str(anchor["tx_hash"]).removeprefix("0x")), block_number=anchor["block_number"],
            block_hash=None, block_timestamp=anchor["block_timestamp"], anchor_id=anchor.get("anchor_id"),
            gas_used=anchor.get("gas_used"), final_at=final_at, error=None,
        )
    )  # fmt: skip
    if note is None or verifier is None:
        return
    try:
        text = open_note(note, verifier)
    except LedgerError:
        return
    if text != Checkpoint(origin=origin, size=size, root=root).to_text():
        return
    if conn.execute(select(cosigned_checkpoints.c.size).where(cosigned_checkpoints.c.size == size)).first() is None:
        cosignatures = sum(1 for line in note.split("\n\n", 1)[-1].splitlines() if line.startswith("— ")) - 1
        conn.execute(
            insert(cosigned_checkpoints).values(
                size=size, root=root, note=note, cosignatures=max(cosignatures, 0), updated_at=now
            )
        )


def reproject(engine: Engine, *, now: datetime) -> None:
    """Rebuild the mirror's projections and ledger-wide red flags from the mirrored entries."""
    project.rebuild(engine)
    redflags.refresh_ledger_flags(engine, now=now)


def size(engine: Engine) -> int:
    """How many entries the mirror holds (0 before its first page)."""
    with engine.connect() as conn:
        got = conn.execute(select(log_state.c.size).where(log_state.c.id == 1)).scalar()
    return int(got or 0)


class Notes:
    """What a mirror serves in place of the log's signing key: the log's verifier key the monitor
    pinned, the newest signed checkpoint it verified at the mirror's size, and the notes the log
    kept for its anchored sizes. ``monitor_engine`` holds the monitor's tables (``monitor.store``);
    usually the mirror's own database."""

    def __init__(self, engine: Engine, monitor_engine: Engine | None = None) -> None:
        self.engine = engine
        self.monitor_engine = monitor_engine or engine

    def key(self) -> str | None:
        from . import store

        with self.monitor_engine.connect() as conn:
            got = conn.execute(select(store.state.c.log_key).where(store.state.c.id == 1)).scalar()
        return None if got is None else str(got)

    def latest(self) -> str | None:
        """The newest signed checkpoint (as the log served it) whose root is the mirror's own at
        its size, of the mirror's current size: None when the mirror has none of that size."""
        from . import store

        head = LogReader(self.engine).tree_head()
        with self.monitor_engine.connect() as conn:
            rows = conn.execute(
                select(store.checkpoints.c.note, store.checkpoints.c.root)
                .where(store.checkpoints.c.size == head.size)
                .order_by(store.checkpoints.c.id.desc())
            ).all()
        for note, root in rows:
            if bytes(root) == head.root:
                return str(note)
        return None

    def kept(self, size: int, root: bytes) -> str | None:
        """The note the log kept for the checkpoint (size, root), with its cosignatures."""
        return cosigned_note(self.engine, size, root)


def open_log(url: str) -> Log:
    """The mirror in the database at ``url``, opened as a log (of the origin it mirrors).

    Raises :class:`~ledger.core.errors.InvalidArgumentError` if it holds no mirror yet."""
    engine = db.open_engine(url)
    try:
        origin = None
        if inspect(engine).has_table(log_config.name):
            with engine.connect() as conn:
                origin = conn.execute(select(log_config.c.value).where(log_config.c.key == "origin")).scalar()
    finally:
        engine.dispose()
    if origin is None:
        raise InvalidArgumentError(
            "--mirror",
            f"{engine.url.render_as_string(hide_password=True)} holds no mirror yet: run `tenderproof monitor URL --mirror --db ...` first",
        )
    return Log.open(url, origin=str(origin))
