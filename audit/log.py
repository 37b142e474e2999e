"""The operator's audit: recompute the whole log from the database's bytes and name what disagrees.

:func:`audit` reads, in one consistent snapshot and never writing, every log entry in
index order (in batches, so a log of millions of entries runs in bounded memory) and

* recomputes each leaf hash from the stored envelope bytes and compares it with the
  stored ``leaf_hash`` and with the leaf hash the level-0 tiles serve for that index;
* parses the envelope (RFC 8785 bytes, a valid v1 envelope of this log's origin, the
  same ocid, seq and type as its ``events`` row) and checks that the stored payload is
  RFC 8785 bytes hashing to the envelope's ``payload_sha256`` (v1), or recomputing with its stored
  disclosure to its ``payload_commitment`` (v2);
* follows each tender's chain: seq contiguous from 0, ``prev`` the previous event's
  recomputed leaf hash;
* recomputes every heads commitment entry (docs/spec.md §14) from the entries before it and
  compares it with the entry's payload, naming the first tender whose stored head differs;
* checks the log's indices are dense from 0 and that every event is in the log or pending;
* rebuilds the tree from the recomputed leaf hashes and compares its root with every
  recorded tree head, the current head and every final anchor (and, given a
  :data:`ChainRoot`, with what the chain holds); the upper tiles are checked against
  the tree their own leaf hashes make.

Whatever was edited behind the triggers' back shows up as :class:`Finding` objects naming
the entry, tree size, tile or anchor, and why. The audit raises only when the database
cannot be read; corruption of any kind is reported, never raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, select

from anchoring.schema import anchor_targets, anchors
from ledger.core import commitment, heads
from ledger.core import tiles as tile_math
from ledger.core.canonical import canonical_bytes
from ledger.core.envelope import VERSION_1, VERSION_2, Envelope
from ledger.core.errors import InvalidArgumentError, LedgerError
from ledger.core.heads import HEADS_OCID
from ledger.core.jsonsafe import json_depth
from ledger.core.merkle import EMPTY_ROOT, CompactRange, leaf_hash
from ledger.procurement.officers import ORDERS_OCID
from ledger.procurement.withholding import EVENT_TYPE as ORDER_TYPE
from ledger.store import heads as heads_store
from ledger.store.db import snapshot
from ledger.store.reader import EVENT_COLUMNS
from ledger.store.schema import events, log_entries, log_state, payloads, pending, tiles, tree_heads

#: Deepest payload whose RFC 8785 form the audit checks (its parse and re-encoding recurse).
MAX_PARSED_DEPTH = 200
#: Entries read per query: bounds memory (about 1 KiB an entry) whatever the log's size.
DEFAULT_BATCH = 10_000
#: Findings kept in a report; beyond it they are only counted (a wholesale rewrite would list every entry).
DEFAULT_MAX_FINDINGS = 10_000
#: The anchoring service's state of an anchor deep enough on its chain to count on.
FINAL = "final"
_NOT_ANCHORED = bytes(32)
#: 16 digits in a row: maybe an integer outside RFC 8785's exact range (2**53 has 16 digits).
_LONG_NUMBER = re.compile(rb"[0-9]{16}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AnchorTarget:
    """A contract on one chain instance that the log was anchored to (a row of ``anchor_targets``)."""

    id: int
    chain: str
    chain_id: int
    instance: str
    contract: str


#: What a chain holds for a tree size: ``chain_root(target, tree_size)`` returns the contract's
#: ``rootAt(tree_size)`` (32 zero bytes when nothing is anchored there), or ``None`` when this
#: target cannot be asked from here (a chain not configured, a development chain long gone):
#: such anchors are counted in :attr:`AuditReport.anchors_unchecked`, not reported.
ChainRoot = Callable[[AnchorTarget, int], bytes | None]
#: The largest tree size a target's contract has anchored (``latest()``), or ``None`` when it
#: cannot be asked from here. A contract ahead of the database means entries the chain vouches
#: for are missing here: a database restored from an older backup, or entries deleted.
ChainLatest = Callable[[AnchorTarget], int | None]
#: Every (tree size, root) a target's contract has anchored, in the canonical chain (from its
#: ``Anchored`` events), or ``None`` when it cannot be asked from here. Each is compared with the
#: log's root at that size: a restored older backup, a lost tail and a foreign root are named.
ChainAnchors = Callable[[AnchorTarget], list[tuple[int, bytes]] | None]
#: Finding codes that say the log's history and the chain's differ as a whole (not an edited
#: row): what was lost or replaced, with the sizes. The operator restores, not investigates rows.
HISTORY_CODES = {
    "restored_backup": "RESTORED FROM AN OLDER BACKUP",
    "lost_tail": "LOST TAIL",
    "foreign_root": "FOREIGN ROOT ON CHAIN",
    "chain_ahead": "CHAIN AHEAD OF THE LOG",
}
#: ``progress(done, total)``: entries audited so far, of the ``total`` the log's head announces.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One disagreement. ``code`` is stable (for scripts and tests), ``reason`` is for people.

    Entry findings carry ``index`` (and what the row says of its event); tree findings
    ``tree_size``; anchor findings ``anchor_id`` and ``tree_size``; tile findings ``tile``.
    """

    code: str
    reason: str
    index: int | None = None
    event_id: int | None = None
    ocid: str | None = None
    seq: int | None = None
    tree_size: int | None = None
    anchor_id: int | None = None
    tile: tuple[int, int] | None = None

    @property
    def subject(self) -> str:
        """What the finding is about, e.g. ``entry 17 (event 18, ocds-abc123-1 seq 3)``."""
        if self.anchor_id is not None:
            return f"anchor {self.anchor_id} (tree size {self.tree_size})"
        if self.index is not None:
            about = [f"event {self.event_id}"] if self.event_id is not None else []
            if self.ocid is not None:
                about.append(f"{self.ocid} seq {self.seq}")
            return f"entry {self.index}" + (f" ({', '.join(about)})" if about else "")
        if self.tile is not None:
            return f"tile {self.tile[0]}/{self.tile[1]}"
        if self.tree_size is not None:
            return f"tree size {self.tree_size}"
        if self.event_id is not None:
            return f"event {self.event_id} ({self.ocid} seq {self.seq})"
        return "log"

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"


@dataclass(slots=True, kw_only=True)
class AuditReport:
    """What :func:`audit` checked and found."""

    #: Log entries read (each checked in full).
    entries_checked: int = 0
    #: Tree sizes whose stored root was compared with the recomputed one (tree heads and the current head).
    sizes_checked: int = 0
    #: Final anchors whose stored root was compared with the recomputed one.
    anchors_checked: int = 0
    #: Of those, the ones also compared with the chain.
    anchors_on_chain: int = 0
    #: Heads commitment entries recomputed from the entries before them (docs/spec.md §14).
    commitments_checked: int = 0
    #: Final anchors the given :data:`ChainRoot` could not ask (``None``); 0 without a ChainRoot.
    anchors_unchecked: int = 0
    #: Payloads nested deeper than :data:`MAX_PARSED_DEPTH` (stored before input was bounded):
    #: their hashes are checked, their RFC 8785 form is not (parsing could exhaust the stack).
    payloads_too_deep: int = 0
    #: The recomputed tree: its size and root.
    size: int = 0
    root: bytes = EMPTY_ROOT
    findings: list[Finding] = field(default_factory=list)
    #: Findings beyond ``max_findings``: counted, not kept.
    findings_dropped: int = 0

    @property
    def ok(self) -> bool:
        """Nothing disagrees."""
        return not self.findings and not self.findings_dropped

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries_checked": self.entries_checked,
            "sizes_checked": self.sizes_checked,
            "commitments_checked": self.commitments_checked,
            "anchors_checked": self.anchors_checked,
            "anchors_on_chain": self.anchors_on_chain,
            "anchors_unchecked": self.anchors_unchecked,
            "payloads_too_deep": self.payloads_too_deep,
            "tree_size": self.size,
            "root": self.root.hex(),
            "findings": [
                {"code": f.code, "subject": f.subject, "index": f.index, "tree_size": f.tree_size, "reason": f.reason}
                for f in self.findings
            ],
            "findings_dropped": self.findings_dropped,
        }


def audit(
    engine: Engine,
    *,
    origin: str,
    chain_root: ChainRoot | None = None,
    chain_latest: ChainLatest | None = None,
    chain_anchors: ChainAnchors | None = None,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH,
    max_findings: int = DEFAULT_MAX_FINDINGS,
) -> AuditReport:
    """Audit the log in ``engine``'s database, named ``origin``; never writes.

    ``chain_root``, when given, is asked for the root of every final anchor's tree size
    (see :data:`ChainRoot`); ``chain_latest`` for the newest tree size each target's contract
    holds, which must not exceed the recomputed tree (finding ``chain_ahead``, see
    :data:`ChainLatest`); ``chain_anchors`` for every (size, root) each target's contract holds,
    each compared with the log's root at that size (findings ``restored_backup``, ``lost_tail``,
    ``foreign_root``, see :func:`_check_history`); ``progress`` is called after every batch of ``batch_size`` entries.
    Requires ``batch_size >= 1`` and ``max_findings >= 0`` (InvalidArgumentError otherwise).
    Raises only what the database driver raises; every disagreement is a :class:`Finding`.
    """
    if batch_size < 1:
        raise InvalidArgumentError("batch_size", f"must be >= 1, got {batch_size}")
    if max_findings < 0:
        raise InvalidArgumentError("max_findings", f"must be >= 0, got {max_findings}")
    report = AuditReport()
    with snapshot(engine) as conn:
        state = conn.execute(select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1)).first()
        total = int(state.size) if state is not None else 0
        run = _Audit(conn, origin=origin, total=total, report=report, max_findings=max_findings)
        wanted = run.load_anchors()
        if state is not None:
            wanted.add(int(state.size))
        on_chain: dict[int, list[tuple[int, bytes]]] = {}
        if chain_anchors is not None:
            for target in run.targets.values():
                pairs = chain_anchors(target)
                if pairs is not None:
                    on_chain[target.id] = pairs
                    wanted |= {size for size, _ in pairs}
        run.check_sizes(_paged_heads(conn, batch_size), wanted)
        for batch in _paged_entries(conn, batch_size):
            run.check_batch(batch)
            if progress is not None:
                progress(report.entries_checked, max(total, report.entries_checked))
        run.finish(state=None if state is None else (int(state.size), bytes(state.root)))
        run.check_orphans()
        anchored = run.check_anchors()
    if chain_root is not None:
        for anchor, target, recomputed in anchored:
            _check_on_chain(run, chain_root, anchor, target, recomputed)
    if chain_latest is not None:
        for target in run.targets.values():
            held = chain_latest(target)
            if held is not None and held > run.tree.size:
                reason = (
                    f"{target.chain} contract {target.contract} has anchored tree size {held}, this database holds"
                    f" only {run.tree.size} entries: entries the chain vouches for are missing (restored from an"
                    " older backup?)"
                )
                run.add(Finding(code="chain_ahead", reason=reason, tree_size=held))
    for target_id, pairs in on_chain.items():
        _check_history(run, run.targets[target_id], pairs)
    report.size, report.root = run.tree.size, run.tree.root()
    return report


def _check_history(run: _Audit, target: AnchorTarget, held: list[tuple[int, bytes]]) -> None:
    """Compare the root the chain holds at every size it anchored with the log's root there.

    * beyond the log's size, and this database recorded that anchor: ``lost_tail`` (entries
      deleted after they were anchored);
    * beyond the log's size, or at a size the log has but with another root, and this database
      has no record of that anchor at or beyond it: ``restored_backup`` (a database restored from
      a backup older than that anchor; with new writes since, the log's entries there differ);
    * another root at a size below one this database did anchor: ``foreign_root`` (someone
      else anchored to the contract).

    Sizes where this database has a final anchor are compared by the anchor checks already.
    """
    known = {a.tree_size: a for a in run.anchors if a.target_id == target.id}
    newest_known = max(known, default=0)
    size = run.tree.size
    where = f"{target.chain} contract {target.contract}"
    for tree_size, root in sorted(held):
        if tree_size > size:
            if tree_size in known:
                reason = (
                    f"{where} holds tree size {tree_size}, anchored from this database (anchor {known[tree_size].id}),"
                    f" but the log has only {size} entries: entries {size}..{tree_size - 1} were lost after they"
                    " were anchored"
                )
                run.add(Finding(code="lost_tail", reason=reason, tree_size=tree_size))
            else:
                reason = (
                    f"{where} holds tree size {tree_size}, this database has only {size} entries and no record of"
                    f" that anchor: restored from a backup older than it; entries {size}..{tree_size - 1} are lost"
                    " here (restore a newer backup, or recover them from where they were published)"
                )
                run.add(Finding(code="restored_backup", reason=reason, tree_size=tree_size))
            continue
        if tree_size in known:
            continue
        ours = run.roots.get(tree_size)
        if ours is None or ours == root:
            continue
        if tree_size > newest_known:
            reason = (
                f"{where} anchored tree size {tree_size} with root {root.hex()}, this log's root there is"
                f" {ours.hex()} and this database has no record of that anchor: restored from a backup older than"
                f" it, then new entries were written: the entries anchored between tree sizes {newest_known} and"
                f" {tree_size} are lost here and others took their place"
            )
            run.add(Finding(code="restored_backup", reason=reason, tree_size=tree_size))
        else:
            reason = (
                f"{where} holds root {root.hex()} at tree size {tree_size}, which this log never anchored (its root"
                f" there is {ours.hex()}): another writer anchored to this contract"
            )
            run.add(Finding(code="foreign_root", reason=reason, tree_size=tree_size))


def parse_canonical(data: bytes, *, field: str = "$") -> tuple[Any, bool]:
    """Parse JSON ``data``; return the value and whether ``data`` is exactly its RFC 8785 form.

    Raises ``ValueError`` (or ``RecursionError``) if ``data`` is not JSON and
    :class:`~ledger.core.errors.CanonicalizationError` naming the place below ``field`` if the
    value has no RFC 8785 form. Most log data takes a fast path: for ASCII bytes without
    floats, NaN or Infinity, or integers of 16 digits or more, the RFC 8785 form is exactly
    ``json.dumps`` with sorted keys and no spaces (keys sort alike, strings escape alike,
    integers print alike), so bytes equal to that are canonical. Anything else, and any
    mismatch, goes to the reference encoder (:func:`ledger.core.canonical.canonical_bytes`).
    """
    if data.isascii() and _LONG_NUMBER.search(data) is None:
        try:
            value = json.loads(data, parse_float=_not_plain, parse_constant=_not_plain)
            if json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == data:
                return value, True
        except (_NotPlain, ValueError, RecursionError):
            pass  # the reference path below decides, and raises the right error
    value = json.loads(data)
    return value, canonical_bytes(value, field=field) == data


def chain_roots(contracts: Mapping[tuple[str, str], Callable[[int], bytes]]) -> ChainRoot:
    """A :data:`ChainRoot` over ``{(instance, contract): root_at}``, e.g. each configured
    chain's ``ChainClient.root_at`` keyed by its instance (``genesis:<hex>`` or the embedded
    chain's) and contract address (compared case-insensitively). Other targets: ``None``."""
    by_key = {(instance, contract.lower()): root_at for (instance, contract), root_at in contracts.items()}

    def chain_root(target: AnchorTarget, tree_size: int) -> bytes | None:
        root_at = by_key.get((target.instance, target.contract.lower()))
        return None if root_at is None else root_at(tree_size)

    return chain_root


# --- Internals ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Anchor:
    id: int
    target_id: int
    tree_size: int
    root: bytes


class _Audit:
    """The state of one audit: the rebuilt trees, each tender's last event, what was found."""

    def __init__(self, conn: Connection, *, origin: str, total: int, report: AuditReport, max_findings: int) -> None:
        self.conn = conn
        #: The log's size as its current head says.
        self.total = total
        self.origin = origin
        self.report = report
        self.max_findings = max_findings
        #: The tree of the recomputed leaf hashes: the log as its entries' bytes make it.
        self.tree = CompactRange.empty()
        #: The tree of the leaf hashes the level-0 tiles hold, to check the upper tiles against
        #: (None once a hole in both the entries and the tiles leaves its positions unknown).
        self.tile_tree: CompactRange | None = CompactRange.empty()
        #: ocid -> (seq, recomputed leaf hash, index) of the tender's last event so far.
        self.chains: dict[str, tuple[int, bytes, int]] = {}
        self.next_index = 0
        self.heads: Iterator[tuple[int, bytes]] = iter(())
        self.head: tuple[int, bytes] | None = None
        #: Tree sizes whose recomputed root is needed (anchors, the current head) -> the root.
        self.wanted: set[int] = set()
        self.roots: dict[int, bytes] = {}
        self.anchors: list[_Anchor] = []
        self.targets: dict[int, AnchorTarget] = {}
        #: tile level -> (tile index, its bytes or None if missing), the one tile being read per level.
        self.tile_cache: dict[int, tuple[int, bytes | None]] = {}
        self.tiles_reported: set[tuple[int, int]] = set()
        #: The heads tree recomputed from the entries (one version, in memory) and the ocids
        #: whose head moved since the last commitment entry.
        self.heads_nodes: dict[heads.Position, heads.Node] = {}
        self.changed: set[str] = set()
        #: Withholding orders seen (log index -> payload) and the withheld entries to check
        #: against them once every entry is read: (index, order index, fields or None, found).
        self.orders: dict[int, Any] = {}
        self.withheld: list[tuple[int, int, list[str] | None, Callable[[str, str], None]]] = []

    def add(self, finding: Finding) -> None:
        if len(self.report.findings) < self.max_findings:
            self.report.findings.append(finding)
        else:
            self.report.findings_dropped += 1

    # --- Setup ---

    def load_anchors(self) -> set[int]:
        """Read the final anchors and their targets; return the tree sizes they need roots of."""
        for row in self.conn.execute(select(anchor_targets)):
            self.targets[row.id] = AnchorTarget(
                id=row.id, chain=row.chain, chain_id=row.chain_id, instance=row.instance, contract=row.contract
            )
        query = (
            select(anchors.c.id, anchors.c.target_id, anchors.c.tree_size, anchors.c.root)
            .where(anchors.c.status == FINAL)
            .order_by(anchors.c.tree_size, anchors.c.id)
        )
        self.anchors = [_Anchor(r.id, r.target_id, int(r.tree_size), bytes(r.root)) for r in self.conn.execute(query)]
        return {anchor.tree_size for anchor in self.anchors}

    def check_sizes(self, heads: Iterator[tuple[int, bytes]], wanted: set[int]) -> None:
        """Start following ``heads`` (ascending sizes); check those of size 0 now."""
        self.heads, self.wanted = heads, wanted
        self.head = next(self.heads, None)
        self._at_size()

    # --- Entries ---

    def check_batch(self, batch: list[Any]) -> None:
        first = min(self.next_index, batch[0].idx) >> tile_math.TILE_HEIGHT
        last = batch[-1].idx >> tile_math.TILE_HEIGHT
        leaf_tiles = {
            int(idx): bytes(data)
            for idx, data in self.conn.execute(
                select(tiles.c.idx, tiles.c.hashes).where(tiles.c.level == 0, tiles.c.idx.between(first, last))
            )
        }
        for row in batch:
            self._check_entry(row, leaf_tiles)

    def _check_entry(self, row: Any, leaf_tiles: dict[int, bytes]) -> None:
        index = int(row.idx)
        self.report.entries_checked += 1
        if index != self.next_index:
            self.add(Finding(code="index_gap", reason=_gap(self.next_index, index), index=index))
            # The tiles still hold the missing indices' leaves: the upper tiles are checked over them.
            for missing in range(self.next_index, min(index, self.total)):
                served = _served(missing, leaf_tiles)
                if served is None:
                    self._tile_missing(0, missing >> tile_math.TILE_HEIGHT)
                    break
                self._grow_tiles(missing, served)
        self.next_index = index + 1
        if row.id is None:  # only possible with foreign keys off
            self.add(Finding(code="event_missing", reason=f"event {row.event_id} does not exist", index=index))
            self._grow(index, EMPTY_ROOT, leaf_tiles, None)
            return

        def found(code: str, reason: str) -> None:
            self.add(Finding(code=code, reason=reason, index=index, event_id=row.id, ocid=row.ocid, seq=int(row.seq)))

        envelope_bytes, stored_leaf = bytes(row.envelope), bytes(row.leaf_hash)
        recomputed = leaf_hash(envelope_bytes)
        if recomputed != stored_leaf:
            found("leaf_hash", f"stored leaf hash {stored_leaf.hex()}, the envelope bytes hash to {recomputed.hex()}")
        envelope = self._envelope(envelope_bytes, row, found)
        self._check_stored_payload(index, row, envelope, found)
        # The chain follows what the envelope says (the bytes the log commits to), the row's columns if unreadable.
        ocid, seq = (envelope.ocid, envelope.seq) if envelope is not None else (row.ocid, int(row.seq))
        last = self.chains.get(ocid)
        if last is None and seq != 0:
            found("seq", f"first event of {ocid} in the log has seq {seq}, expected 0")
        elif last is not None and seq != last[0] + 1:
            found("seq", f"seq {seq} of {ocid} follows seq {last[0]} (entry {last[2]}), expected {last[0] + 1}")
        elif last is not None and envelope is not None and envelope.prev != last[1].hex():
            found(
                "prev",
                f"prev is {envelope.prev}, the previous event of {ocid} (seq {last[0]}, entry {last[2]}) "
                f"hashes to {last[1].hex()}",
            )
        if ocid == HEADS_OCID:
            self._check_commitment(index, seq, b"" if row.payload is None else bytes(row.payload), found)
        else:
            self.changed.add(ocid)
        self.chains[ocid] = (seq, recomputed, index)
        self._grow(index, recomputed, leaf_tiles, found)

    def _check_commitment(self, index: int, seq: int, data: bytes, found: Callable[[str, str], None]) -> None:
        """Recompute the heads map as of ``index`` (docs/spec.md §14.2) and compare it with the
        commitment entry's payload; on a root that differs, name the first tender whose stored
        head (the server's tree nodes of that commitment) differs from the entries'."""
        changes = []
        for ocid in sorted(self.changed):
            last_seq, last_leaf, _ = self.chains[ocid]
            changes.append(heads.Leaf(heads.key(ocid), last_seq + 1, last_leaf))
        self.changed.clear()
        result = heads.update(self.heads_nodes.get((0, heads.EMPTY)), changes, self._heads_read)
        self.heads_nodes.update(result.writes)
        tenders = sum(1 for o in self.chains if o != HEADS_OCID)
        self.report.commitments_checked += 1
        try:
            payload = json.loads(data)
            claimed = (payload["tree_size"], payload["heads_root"], payload["tenders"])
        except (ValueError, TypeError, KeyError) as exc:
            found("commitment", f"heads commitment payload is unreadable: {exc!r}")
            return
        if claimed[0] != index:
            found("commitment", f"heads commitment says tree size {claimed[0]}, it is entry {index}")
        if claimed[2] != tenders:
            found("commitment", f"heads commitment counts {claimed[2]} tenders, the entries before it hold {tenders}")
        if claimed[1] != result.root.hex():
            found(
                "commitment", f"heads root {claimed[1]}, the entries recompute {result.root.hex()}" + self._culprit(seq)
            )

    def _heads_read(self, depth: int, prefixes: Sequence[bytes]) -> Mapping[bytes, heads.Node]:
        return {p: node for p in prefixes if (node := self.heads_nodes.get((depth, p))) is not None}

    def _culprit(self, version: int) -> str:
        """The first tender (by ocid) whose head in the stored tree of ``version`` differs."""
        prove = heads_store.prover(self.conn, version)
        for ocid in sorted(o for o in self.chains if o != HEADS_OCID):
            last_seq, last_leaf, _ = self.chains[ocid]
            stored = prove(heads.key(ocid)).leaf
            if stored is None or (stored.size, stored.head) != (last_seq + 1, last_leaf):
                said = "no head" if stored is None else f"{stored.size} events ending {stored.head.hex()}"
                return f"; first differing tender {ocid}: the entries give {last_seq + 1} events ending {last_leaf.hex()}, the stored tree {said}"
        return "; every stored tender head matches the entries (the root or the tree's shape differs)"

    def _envelope(self, data: bytes, row: Any, found: Callable[[str, str], None]) -> Envelope | None:
        try:
            obj, canonical = parse_canonical(data, field="envelope")
        except InvalidArgumentError as exc:
            obj, canonical = json.loads(data), True  # parses, but is no RFC 8785 value: say so below
            found("envelope", f"envelope has no RFC 8785 form: {exc}")
        except (ValueError, RecursionError) as exc:
            found("envelope", f"envelope bytes are not JSON: {exc}")
            return None
        if not canonical:
            found("envelope", "envelope bytes are not RFC 8785 canonical JSON")
        try:
            envelope = Envelope.from_json(obj)
        except (InvalidArgumentError, TypeError) as exc:
            found("envelope", f"not a valid v1 envelope: {exc}")
            return None
        if envelope.origin != self.origin:
            found("origin", f"envelope origin is {envelope.origin!r}, the log is {self.origin!r}")
        for name, stored in (("ocid", row.ocid), ("seq", int(row.seq)), ("type", row.type)):
            said = getattr(envelope, name)
            if said != stored:
                found("row", f"the envelope's {name} is {said!r}, its events row says {stored!r}")
        return envelope

    def _check_stored_payload(
        self, index: int, row: Any, envelope: Envelope | None, found: Callable[[str, str], None]
    ) -> None:
        """A payload as stored (payloads table): whole and bound to its envelope; withheld only
        by an order of the log that targets it (checked once every entry is read)."""
        order = row.withheld_by
        if row.payload is None:
            if order is None:
                found("payload_missing", "the payload is missing and no withholding order names it")
            else:
                self.withheld.append((index, int(order), None, found))
            return
        data = bytes(row.payload)
        disclosure = None if row.disclosure is None else bytes(row.disclosure)
        self._check_payload(data, envelope, found, disclosure)
        if order is not None:  # fields withheld (v2): each field's order must name it
            try:
                by_order = commitment.withheld_fields(json.loads(disclosure or b"null"))
            except (ValueError, LedgerError):
                by_order = {}  # reported by _check_payload
            groups: dict[int, list[str]] = {}
            for pointer, by in by_order.items():
                groups.setdefault(by, []).append(pointer)
            if int(order) not in groups:  # the row's order is the latest that withheld part of it
                groups[int(order)] = []
            for by, fields in sorted(groups.items()):
                self.withheld.append((index, by, fields, found))
        if row.ocid == ORDERS_OCID and row.type == ORDER_TYPE:
            with contextlib.suppress(ValueError):  # reported by _check_payload
                self.orders[index] = json.loads(data)

    def _check_withheld(self) -> None:
        """Every withheld payload names an order of the log, recorded after it, that targets it."""
        for index, order, fields, found in self.withheld:
            payload = self.orders.get(order)
            if payload is None:
                found("withheld_without_order", f"withheld by log index {order}, which is not a withholding order")
                continue
            if order <= index:
                found("withheld_without_order", f"withheld by the order at log index {order}, recorded before it")
            targets = [t for t in payload.get("targets", []) if isinstance(t, dict) and t.get("index") == index]
            ok = (
                any("fields" not in t for t in targets)
                if fields is None
                else any(set(fields) <= set(t.get("fields") or []) for t in targets)
            )
            if not ok:
                what = "the whole payload" if fields is None else ", ".join(fields)
                found("withheld_without_order", f"the order at log index {order} does not withhold {what}")

    def _check_payload(
        self, data: bytes, envelope: Envelope | None, found: Callable[[str, str], None], disclosure: bytes | None = None
    ) -> None:
        """The stored payload: RFC 8785 JSON object bytes hashing to the envelope's ``payload_sha256``
        (v1), or recomputing with the stored disclosure to its ``payload_commitment`` (v2)."""
        digest = hashlib.sha256(data).hexdigest()
        if envelope is not None and envelope.v == VERSION_1 and digest != envelope.payload_sha256:
            found(
                "payload_hash",
                f"the envelope's payload_sha256 is {envelope.payload_sha256}, the payload hashes to {digest}",
            )
        brackets = data.count(b"[") + data.count(b"{")  # a fast bound first: json_depth only if it may be deep
        if brackets > MAX_PARSED_DEPTH and json_depth(data) > MAX_PARSED_DEPTH:
            self.report.payloads_too_deep += 1  # its hashes are checked above; parsing it could exhaust the stack
            return
        try:
            parsed, canonical = parse_canonical(data, field="payload")
        except InvalidArgumentError as exc:
            found("payload", f"stored payload has no RFC 8785 form: {exc}")
            return
        except (ValueError, RecursionError) as exc:
            found("payload", f"stored payload is not JSON: {exc}")
            return
        if not isinstance(parsed, dict):
            found("payload", f"stored payload is a JSON {type(parsed).__name__}, not an object")
        elif not canonical:
            found("payload", "stored payload bytes are not RFC 8785 canonical JSON")
        if envelope is not None and envelope.v == VERSION_2:
            self._check_v2(parsed, envelope, found, disclosure)

    @staticmethod
    def _check_v2(
        payload: Any, envelope: Envelope, found: Callable[[str, str], None], disclosure: bytes | None
    ) -> None:
        """A v2 payload against its envelope's salted commitment, through its stored disclosure."""
        if disclosure is None:
            found("payload_hash", "a version 2 entry's disclosure is not stored: its payload cannot be checked")
            return
        try:
            bound = commitment.recompute(payload, json.loads(disclosure))
        except (LedgerError, ValueError, RecursionError) as exc:
            found("payload_hash", f"the payload cannot be checked against its commitment: {exc}")
            return
        if bound != envelope.payload_commitment:
            found(
                "payload_hash",
                f"the envelope's payload_commitment is {envelope.payload_commitment}, the payload and its"
                f" disclosure commit to {bound}",
            )

    # --- Trees ---

    def _grow(
        self, index: int, recomputed: bytes, leaf_tiles: dict[int, bytes], found: Callable[[str, str], None] | None
    ) -> None:
        """Add the entry's leaf to both trees; check the tile's leaf and every upper tile node completed.

        ``found`` is None when the entry has no bytes to compare the tile's leaf with.
        """
        self.tree.append(recomputed)
        served = _served(index, leaf_tiles)
        if served is None:
            self._tile_missing(0, index >> tile_math.TILE_HEIGHT)
        elif served != recomputed and found is not None:
            found(
                "tile_leaf",
                f"tile 0/{index >> tile_math.TILE_HEIGHT} serves leaf hash {served.hex()}, "
                f"the entry hashes to {recomputed.hex()}",
            )
        self._grow_tiles(index, recomputed if served is None else served)
        self._at_size()

    def _grow_tiles(self, index: int, served: bytes) -> None:
        """Add the tiles' leaf at ``index`` to the tiles' tree; check the upper tile nodes it completes."""
        if self.tile_tree is None:
            return
        if self.tile_tree.size != index:  # a hole the tiles could not fill: positions unknown from here
            self.tile_tree = None
            return
        for node, value in self.tile_tree.append(served)[1:]:
            if node.level % tile_math.TILE_HEIGHT == 0:
                self._check_node(node.level // tile_math.TILE_HEIGHT, node.index, value)

    def _check_node(self, level: int, index: int, value: bytes) -> None:
        tile_index, offset = index >> tile_math.TILE_HEIGHT, (index & (tile_math.TILE_WIDTH - 1)) * 32
        cached = self.tile_cache.get(level)
        if cached is None or cached[0] != tile_index:
            data = self.conn.execute(
                select(tiles.c.hashes).where(and_(tiles.c.level == level, tiles.c.idx == tile_index))
            ).scalar()
            cached = (tile_index, None if data is None else bytes(data))
            self.tile_cache[level] = cached
        stored = cached[1][offset : offset + 32] if cached[1] is not None else b""
        if len(stored) != 32:
            self._tile_missing(level, tile_index)
        elif stored != value:
            self.add(
                Finding(
                    code="tile_node",
                    reason=f"node {level * tile_math.TILE_HEIGHT}/{index} is {stored.hex()}, "
                    f"its tile's leaves make {value.hex()}",
                    tile=(level, tile_index),
                )
            )

    def _tile_missing(self, level: int, index: int) -> None:
        if (level, index) not in self.tiles_reported:
            self.tiles_reported.add((level, index))
            self.add(
                Finding(
                    code="tile_missing", reason="missing, or shorter than the log's entries need", tile=(level, index)
                )
            )

    def _at_size(self) -> None:
        """Compare the tree heads of the current size; keep the root if an anchor or the head needs it."""
        size = self.tree.size
        root: bytes | None = None
        while self.head is not None and self.head[0] <= size:
            head_size, stored = self.head
            if head_size == size:
                root = root or self.tree.root()
                self.report.sizes_checked += 1
                if stored != root:
                    self.add(
                        Finding(
                            code="tree_head",
                            reason=f"tree head root {stored.hex()}, the log recomputes {root.hex()}",
                            tree_size=size,
                        )
                    )
            self.head = next(self.heads, None)
        if size in self.wanted:
            self.roots[size] = root or self.tree.root()

    # --- After the entries ---

    def finish(self, *, state: tuple[int, bytes] | None) -> None:
        self._check_withheld()
        size = self.tree.size
        while self.head is not None:
            self.add(
                Finding(
                    code="tree_head",
                    reason=f"tree head beyond the log's {size} entries (root {self.head[1].hex()})",
                    tree_size=self.head[0],
                )
            )
            self.head = next(self.heads, None)
        if state is None:
            self.add(Finding(code="log_state", reason="no current tree head (log_state row 1 is missing)"))
            return
        state_size, state_root = state
        if state_size != size:
            self.add(
                Finding(
                    code="log_state",
                    reason=f"the current tree head says {state_size} entries, the log holds {size}",
                    tree_size=state_size,
                )
            )
        elif state_root != self.roots[size]:
            self.add(
                Finding(
                    code="log_state",
                    reason=f"current tree head root {state_root.hex()}, the log recomputes {self.roots[size].hex()}",
                    tree_size=size,
                )
            )
        self.report.sizes_checked += 1

    def check_orphans(self) -> None:
        """Every event is in the log or waiting to be integrated."""
        placed = exists().where(log_entries.c.event_id == events.c.id)
        queued = exists().where(pending.c.event_id == events.c.id)
        query = (
            select(events.c.id, events.c.ocid, events.c.seq)
            .where(~placed, ~queued)
            .order_by(events.c.id)
            .limit(self.max_findings + 1)
        )
        for row in self.conn.execute(query):
            self.add(
                Finding(
                    code="orphan",
                    reason="the event is neither in the log nor pending",
                    event_id=row.id,
                    ocid=row.ocid,
                    seq=int(row.seq),
                )
            )

    def check_anchors(self) -> list[tuple[_Anchor, AnchorTarget, bytes]]:
        """Compare each final anchor's root with the recomputed one; return those to ask the chain about."""
        out: list[tuple[_Anchor, AnchorTarget, bytes]] = []
        for anchor in self.anchors:
            self.report.anchors_checked += 1
            recomputed = self.roots.get(anchor.tree_size)
            if recomputed is None:
                self.add(_anchor_finding(anchor, "anchor", f"tree size beyond the log's {self.tree.size} entries"))
                continue
            if anchor.root != recomputed:
                self.add(
                    _anchor_finding(
                        anchor, "anchor", f"stored root {anchor.root.hex()}, the log recomputes {recomputed.hex()}"
                    )
                )
            target = self.targets.get(anchor.target_id)
            if target is None:  # only possible with foreign keys off
                self.add(_anchor_finding(anchor, "anchor", f"target {anchor.target_id} does not exist"))
                continue
            out.append((anchor, target, recomputed))
        return out


def _check_on_chain(run: _Audit, chain_root: ChainRoot, anchor: _Anchor, target: AnchorTarget, ours: bytes) -> None:
    held = chain_root(target, anchor.tree_size)
    if held is None:
        run.report.anchors_unchecked += 1
        return
    run.report.anchors_on_chain += 1
    where = f"on {target.chain} contract {target.contract}"
    if held == _NOT_ANCHORED:
        run.add(_anchor_finding(anchor, "chain", f"not anchored on chain ({where})"))
    elif held != ours:
        run.add(
            _anchor_finding(anchor, "chain", f"chain holds {held.hex()} ({where}), the log recomputes {ours.hex()}")
        )


class _NotPlain(Exception):
    """Raised while parsing: the JSON holds a float or a constant, so the fast path does not apply."""


def _not_plain(_: str) -> Any:
    raise _NotPlain


def _served(index: int, leaf_tiles: Mapping[int, bytes]) -> bytes | None:
    """The leaf hash the level-0 tiles hold for ``index``, or None if they do not."""
    tile = leaf_tiles.get(index >> tile_math.TILE_HEIGHT)
    offset = (index & (tile_math.TILE_WIDTH - 1)) * 32
    served = tile[offset : offset + 32] if tile is not None else b""
    return served if len(served) == 32 else None


def _anchor_finding(anchor: _Anchor, code: str, reason: str) -> Finding:
    return Finding(code=code, reason=reason, anchor_id=anchor.id, tree_size=anchor.tree_size)


def _gap(expected: int, got: int) -> str:
    if got < expected:  # cannot happen with idx the primary key, read in order
        return f"index {got} repeats or goes back, expected {expected}"
    missing = f"index {expected}" if got == expected + 1 else f"indices {expected}..{got - 1}"
    return f"log {missing} missing: the entry before has index {expected - 1}, this one {got}"


def _paged_entries(conn: Connection, batch_size: int) -> Iterator[list[Any]]:
    """Log entries joined with their events, in index order, ``batch_size`` rows per query."""
    after = -1
    while True:
        query = (
            select(log_entries.c.idx, log_entries.c.event_id, *EVENT_COLUMNS)
            .select_from(
                log_entries.outerjoin(events, events.c.id == log_entries.c.event_id).outerjoin(
                    payloads, payloads.c.event_id == events.c.id
                )
            )
            .where(log_entries.c.idx > after)
            .order_by(log_entries.c.idx)
            .limit(batch_size)
        )
        batch = list(conn.execute(query).all())
        if not batch:
            return
        yield batch
        after = batch[-1].idx


def _paged_heads(conn: Connection, batch_size: int) -> Iterator[tuple[int, bytes]]:
    """``(size, root)`` of every recorded tree head, ascending, ``batch_size`` rows per query."""
    after = -1
    while True:
        query = (
            select(tree_heads.c.size, tree_heads.c.root)
            .where(tree_heads.c.size > after)
            .order_by(tree_heads.c.size)
            .limit(batch_size)
        )
        rows = [(int(size), bytes(root)) for size, root in conn.execute(query)]
        if not rows:
            return
        yield from rows
        after = rows[-1][0]
