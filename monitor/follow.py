"""Following a deployment: one round reads the signed checkpoint, mirrors and re-hashes every new
entry and payload, rebuilds the tree and the heads commitments, re-reads a slice of what it
already holds, checks the anchors against the chains, and records what does not hold.

Findings (``kind``):

- ``checkpoint_signature_invalid``: the signed checkpoint does not verify with the log key.
- ``checkpoint_inconsistent``: a signed checkpoint's root is not the root of the entries served,
  although the log's own proofs agree with them (a checkpoint signed for another tree).
- ``fork``: a checkpoint contradicts one already verified (same or smaller size, other root).
- ``entry_changed``: an entry served is not the one the log's tree holds, or not the bytes
  mirrored before.
- ``history_broken``: an entry does not chain on its tender's previous one (seq, prev).
- ``payload_changed``: a payload does not hash to its envelope's ``payload_sha256``, or differs
  from the one mirrored before.
- ``payload_withheld``: an entry served without its payload.
- ``commitment_lies``: a ``log.heads`` commitment whose tree size, heads root or tender count is
  not what the entries before it give.
- ``anchor_disagrees``: an anchor the log lists names a root that is not the tree's at its size.
- ``chain_disagrees``: the chain does not hold the anchor the log lists (root, transaction, time).
- ``unanchored``: entries left unanchored longer than the watcher's policy.
- ``tile_changed``: a hash tile the log serves (``--source tiles``) holds a node that is not the
  one its entries give.
- ``witness_shortfall``: the log's latest cosigned checkpoint carries valid cosignatures by fewer
  of the watcher's witnesses (``--witness``) than its quorum, or the log publishes none although
  it has anchored (a new log that has not run a publishing round yet is not reported).
- ``cosignature_invalid``: a cosignature line names one of the watcher's witnesses (its name and
  key ID) but does not verify over the checkpoint.

Where the entries come from is a *source*: :class:`Api` (the JSON read API, ``/api/v1/entries``)
or :class:`monitor.tiles.Tiles` (C2SP tlog-tiles); both hand the monitor :class:`Served` entries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import json
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode

import httpx
import orjson
from sqlalchemy import Connection, Engine, func, insert, select, update

from ledger.core import commitment
from ledger.core import heads as smt
from ledger.core.canonical import canonical_bytes, canonical_json_bytes, sha256_hex
from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import CosignerKey, check_quorum, parse_line, split_note
from ledger.core.envelope import VERSION_2
from ledger.core.errors import InvalidArgumentError, LedgerError, VerificationError
from ledger.core.merkle import LEAF_PREFIX, CompactRange, NodeID, leaf_hash, root_from_leaf_hashes
from ledger.core.note import Verifier, open_note
from ledger.core.tiles import TILE_HEIGHT, TILE_WIDTH

from . import store
from .transport import Answer, Pool

if TYPE_CHECKING:
    from verifier.chain import ChainReader

# monitor.mirror is imported where a mirror is kept (--mirror): it brings the log's schema and the
# procurement code, seconds of start-up that a bare monitor does without.

PAGE = 1000
#: Pages per transaction of a catch-up from a source with small fixed pages (tiles: 256 each).
BUNDLES_PER_COMMIT = 32
_RETRIES = 6
#: Longest a request waits out 429 answers (Retry-After) before they count as failures.
_MAX_THROTTLE = 600.0
#: Least time a request keeps trying a deployment it cannot connect to (a server restarting).
_MIN_DOWN = 60.0


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1.0), 0.1), 60.0)
    except ValueError:
        return 1.0


Emit = Callable[[dict[str, Any]], None]


class MonitorError(LedgerError):
    """The deployment could not be followed (unreachable, or it answers what is not the API)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)


@dataclass(slots=True)
class Finding:
    kind: str
    key: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


#: Kinds of findings that are not alarms: a payload withheld by an order the log itself records.
INFORMATIONAL: frozenset[str] = frozenset({"payload_withheld_by_order"})
#: The ocid of withholding orders (docs/privacy.md): a withholding is informational when one of
#: them, in the log, targets the entry.
ORDERS_OCID = "ocds-tpreg0-orders"


def _withheld_fields(disclosure: Any) -> dict[int, list[str]]:
    """The withheld fields a served v2 disclosure names, by the order that withheld each (orders
    build on orders: each field names its own); none when unreadable."""
    try:
        by_field = commitment.withheld_fields(disclosure) if isinstance(disclosure, dict) else {}
    except LedgerError:
        return {}
    out: dict[int, list[str]] = {}
    for pointer, order in sorted(by_field.items()):
        out.setdefault(order, []).append(pointer)
    return out


def _same_commitment(leaf_data: bytes, payload: bytes, disclosure: Any) -> bool:
    """Whether a v2 entry's payload as served now (fields withheld) still recomputes its envelope's commitment."""
    try:
        envelope = json.loads(leaf_data)
        return bool(commitment.recompute(json.loads(payload), disclosure) == envelope.get("payload_commitment"))
    except (ValueError, LedgerError):
        return False


def _disclosure_bytes(disclosure: Any) -> bytes | None:
    """A served v2 disclosure's RFC 8785 bytes, as the log stores it (``None``: none served, or one
    with no canonical form, which the payload check has reported)."""
    if disclosure is None:
        return None
    try:
        return canonical_json_bytes(disclosure)
    except LedgerError:
        return None


def loads(data: bytes) -> Any:
    """The JSON document ``data``, read as :func:`json.loads` reads it (raises ``ValueError``),
    through orjson: ~4x faster on the envelopes and disclosures a catch-up parses, one each per
    entry. What orjson refuses and json reads (NaN, a lone surrogate escaped) is json's to answer,
    and so is any document with a float in it: orjson reads an integer past 64 bits as a float
    (envelopes and disclosures hold none: the check costs a walk over their few values)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data.decode())
    return json.loads(data.decode()) if _has_float(doc) else doc


def _has_float(doc: Any) -> bool:
    if type(doc) is dict:  # an envelope: flat, one pass in C
        kinds = set(map(type, doc.values()))
        if float in kinds:
            return True
        if dict not in kinds and list not in kinds:
            return False
    stack = [doc]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is float:
            return True
        if kind is dict:
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
    return False


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Served(NamedTuple):
    """One entry as a source served it: its leaf bytes, the leaf hash the log's tree holds for it
    (``None`` if the source says nothing), and its payload's exact bytes (``None``: withheld).
    A named tuple: a catch-up makes millions (a frozen dataclass costs ~4x more to build)."""

    index: int  # type: ignore[assignment]  # shadows tuple.index, as ledger.core.merkle.NodeID does
    leaf_data: bytes
    leaf_hash: bytes | None
    payload: bytes | None
    #: An envelope v2 entry's disclosure as served (``None``: none served).
    disclosure: Any = None
    #: The log index of the withholding order the source says withheld (part of) the payload.
    withheld_by: Any = None
    #: The disclosure's exact bytes, when the source serves them as bytes (the tiles source).
    disclosure_bytes: bytes | None = None


class Api:
    """The deployment's public read API, retried on transport errors, 5xx and unreadable bodies
    (a truncated answer is asked again)."""

    #: Whether requests should start on multiples of the page (a source served in fixed bundles).
    aligned = False

    def __init__(self, base: str, *, timeout: float = 30.0, client: httpx.Client | None = None) -> None:
        """Requests go through ``client`` when one is given, else through :class:`monitor.transport.Pool`."""
        self.base = base.rstrip("/")
        self.client = client
        self._pool = Pool(timeout=timeout)

    def _send(self, url: str, params: dict[str, Any] | None) -> Answer:
        if self.client is not None:
            got = self.client.get(url, params=params)
            return Answer(got.status_code, got.headers.get("retry-after"), got.content)
        return self._pool.get(f"{url}?{urlencode(params)}" if params else url)

    def _get(self, path: str, params: dict[str, Any] | None = None, *, text: bool = False, binary: bool = False) -> Any:
        url = f"{self.base}{path}"
        delay = 0.2
        last = ""
        attempt = 0
        throttled_until = time.monotonic() + _MAX_THROTTLE
        down_until = time.monotonic() + _MIN_DOWN
        refused = False
        while attempt < _RETRIES or (refused and time.monotonic() < down_until):
            try:
                answer = self._send(url, params)
                if answer.status == 429 and time.monotonic() < throttled_until:
                    # Rate-limited (the public API's per-client limit): wait as told, without
                    # counting it as a failure; a monitor is patient, not wrong.
                    time.sleep(_retry_after(answer.retry_after))
                    continue
                if answer.status == 404:
                    return None
                if answer.status >= 500 or answer.status == 429:
                    last = f"HTTP {answer.status}"
                elif answer.status != 200:
                    raise MonitorError(f"{url}: HTTP {answer.status}: {answer.body[:200].decode(errors='replace')}")
                else:
                    body = answer.body
                    return body if binary else body.decode() if text else loads(body)
            except (httpx.TransportError, OSError, http.client.HTTPException, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                # nothing listening: it may come back
                refused = isinstance(exc, (httpx.ConnectError, ConnectionRefusedError))
            else:
                refused = False
            attempt += 1
            if attempt < _RETRIES or (refused and time.monotonic() < down_until):
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise MonitorError(f"{url}: no usable answer after {attempt} tries ({last})")

    def signed_checkpoint(self) -> str | None:
        got = self._get("/api/v1/checkpoint/signed", text=True)
        return None if got is None else str(got)

    def checkpoint(self) -> dict[str, Any]:
        got = self._get("/api/v1/checkpoint")
        if not isinstance(got, dict):
            raise MonitorError(f"{self.base}/api/v1/checkpoint: not found")
        return got

    def kept_checkpoint(self, size: int) -> str | None:
        """The signed checkpoint the log kept for ``size`` (an anchored size), with its cosignatures."""
        got = self._get("/api/v1/checkpoint/signed", {"size": size}, text=True)
        return None if got is None else str(got)

    def log_key(self) -> str | None:
        got = self._get("/.well-known/tenderproof/checkpoint-key", text=True)
        return None if got is None else str(got).strip()

    def entries(self, start: int, end: int) -> dict[str, Any]:
        got = self._get("/api/v1/entries", {"start": start, "end": end})
        if not isinstance(got, dict) or not isinstance(got.get("entries"), list):
            raise MonitorError(f"/api/v1/entries?start={start}&end={end}: not an entries page")
        return got

    def served(self, start: int, end: int) -> list[Served]:
        """Entries from ``start`` (at least one, at most up to ``end``), as :class:`Served`; the
        payloads re-encoded (RFC 8785) from the JSON they come as."""
        out = []
        for item in self.entries(start, end)["entries"]:
            index = item.get("index")
            try:
                data = base64.b64decode(item["leaf_data"], validate=True)
                claimed = bytes.fromhex(item["leaf_hash"]) if isinstance(item.get("leaf_hash"), str) else b""
            except (KeyError, TypeError, binascii.Error, ValueError) as exc:
                raise MonitorError(f"/api/v1/entries: entry {index!r}: unreadable leaf_data: {exc}") from exc
            payload = item.get("payload")
            out.append(
                Served(
                    index,
                    data,
                    claimed,
                    None if payload is None else canonical_bytes(payload),
                    item.get("disclosure"),
                    item.get("withheld_by"),
                )
            )
        return out

    def tree_node(self, node: NodeID, size: int) -> bytes | None:
        """The log's own hash of ``node`` in its tree of ``size`` leaves, where the source serves
        the tree's nodes (tiles); ``None`` here (the JSON API serves leaf hashes only)."""
        return None

    def cosigned_checkpoint(self) -> str | None:
        got = self._get("/api/v1/checkpoint/cosigned", text=True)
        return None if got is None else str(got)

    def root_at(self, size: int, current: int) -> bytes:
        got = self._get("/api/v1/proofs/consistency", {"from": size, "to": current})
        if not isinstance(got, dict) or "from_root" not in got:
            raise MonitorError(f"/api/v1/proofs/consistency?from={size}&to={current}: no answer")
        return bytes.fromhex(got["from_root"])

    def anchors(self, chain: str | None) -> Iterator[dict[str, Any]]:
        before: int | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if chain:
                params["chain"] = chain
            if before is not None:
                params["before"] = before
            page = self._get("/api/v1/anchors", params)
            if not isinstance(page, dict):
                return
            yield from page.get("anchors", [])
            before = page.get("next_before")
            if before is None:
                return


_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class _Checked:
    """One batch of entries checked, to commit in one transaction: the ``monitor_entries`` rows
    from index ``start``, the heads its tenders end at, its findings, and the monitor's size,
    border (concatenated) and root after it."""

    start: int
    rows: list[tuple[int, str, int, bytes, bytes, bytes | None]]
    #: Each row's v2 disclosure's bytes as served (``None`` for v1 entries), for ``monitor_disclosures``
    #: and the mirror.
    disclosures: list[bytes | None]
    #: Each row's withholding order as served (the log index of the order the log says withheld
    #: its payload; ``None`` when shown), for the mirror.
    withheld: list[int | None]
    heads: dict[str, tuple[int, bytes]]
    findings: list[Finding]
    size: int
    border: bytes
    root: bytes


@dataclass(slots=True)
class _State:
    origin: str | None
    log_key: str | None
    size: int
    border: CompactRange
    verified_size: int
    recheck_at: int


def _load(conn: Connection) -> _State:
    row = conn.execute(select(store.state).where(store.state.c.id == 1)).mappings().first()
    if row is None:
        conn.execute(
            insert(store.state).values(
                id=1, size=0, border=b"", verified_size=0, recheck_at=0, origin=None, log_key=None
            )
        )
        conn.execute(insert(store.roots).values(size=0, root=root_from_leaf_hashes([])))
        return _State(None, None, 0, CompactRange.empty(), 0, 0)
    raw = bytes(row["border"])
    border = CompactRange(size=row["size"], hashes=[raw[i : i + 32] for i in range(0, len(raw), 32)])
    return _State(row["origin"], row["log_key"], row["size"], border, row["verified_size"], row["recheck_at"])


def _save(conn: Connection, st: _State) -> None:
    conn.execute(
        update(store.state)
        .where(store.state.c.id == 1)
        .values(
            origin=st.origin,
            log_key=st.log_key,
            size=st.size,
            border=b"".join(st.border.hashes),
            verified_size=st.verified_size,
            recheck_at=st.recheck_at,
        )
    )


class Monitor:
    """Follows one deployment into the database ``engine``."""

    def __init__(
        self,
        engine: Engine,
        api: Api,
        *,
        log_key: str | None = None,
        readers: Sequence[ChainReader] = (),
        chains: Sequence[str] = (),
        max_unanchored_seconds: float | None = None,
        emit: Emit | None = None,
        progress: Callable[[str], None] | None = None,
        page: int = PAGE,
        parallel: int = 4,
        witnesses: Sequence[CosignerKey] = (),
        witness_quorum: int | None = None,
        mirror: bool = False,
    ) -> None:
        """With ``mirror``, the database also holds a mirror of the log that ``tenderproof serve
        --mirror`` serves (:mod:`monitor.mirror`)."""
        self.engine = engine
        self.mirror = mirror
        self._mirror_ready = False
        self.api = api
        self.pinned_key = log_key
        self.readers = list(readers)
        self.chains = list(chains)
        self.max_unanchored = max_unanchored_seconds
        self.emit = emit or (lambda finding: print(json.dumps(finding), flush=True))
        self.progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
        self.page = page
        self.parallel = max(1, parallel)
        self.witnesses = list(witnesses)
        self.witness_quorum = len(self.witnesses) if witness_quorum is None else witness_quorum
        self._by_chain_id: dict[int, ChainReader] | None = None

    # -- findings ---------------------------------------------------------------------------

    def _record(self, conn: Connection, finding: Finding) -> None:
        known = conn.execute(select(store.findings.c.key).where(store.findings.c.key == finding.key)).first()
        if known is None:
            detail = {"message": finding.message, **finding.detail, "reported": False}
            conn.execute(
                insert(store.findings).values(
                    key=finding.key, kind=finding.kind, detail=json.dumps(detail), found_at=_now()
                )
            )

    def _flush(self) -> int:
        """Report the findings recorded but not reported yet (after a crash, too); their number."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(store.findings).order_by(store.findings.c.found_at)).mappings().all()
            count = 0
            for row in rows:
                detail = json.loads(row["detail"])
                if detail.pop("reported", True):
                    continue
                self.emit({"kind": row["kind"], "found_at": row["found_at"], **detail})
                detail["reported"] = True
                conn.execute(
                    update(store.findings).where(store.findings.c.key == row["key"]).values(detail=json.dumps(detail))
                )
                count += 1
        return count

    def findings(self) -> list[dict[str, Any]]:
        """Every finding recorded so far."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(store.findings).order_by(store.findings.c.found_at)).mappings().all()
        out = []
        for row in rows:
            detail = json.loads(row["detail"])
            detail.pop("reported", None)
            out.append({"kind": row["kind"], "found_at": row["found_at"], **detail})
        return out

    # -- one round ----------------------------------------------------------------------------

    def round(self) -> int:
        """Catch up with the deployment's current checkpoint and check everything new; the
        number of findings reported by this round."""
        self._flush()
        checkpoint, note = self._checkpoint()
        if checkpoint is not None:
            self._catch_up(checkpoint, note)
        if self.witnesses:
            self._check_cosigned()
        self._recheck()
        self._check_anchors()
        if self._mirror_ready:
            self._reproject()
        return self._flush()

    def _verifier(self, st: _State) -> Verifier | None:
        key = self.pinned_key or st.log_key
        if key is None:
            key = self.api.log_key()
        return None if key is None else Verifier.parse(key)

    def _checkpoint(self) -> tuple[Checkpoint | None, str | None]:
        with self.engine.begin() as conn:
            st = _load(conn)
            note = self.api.signed_checkpoint()
            if note is None:  # a log that signs nothing: follow its plain checkpoint
                plain = self.api.checkpoint()
                cp = Checkpoint.from_text(plain["text"])
            else:
                verifier = self._verifier(st)
                if verifier is None:
                    raise MonitorError("the log serves a signed checkpoint but no verifier key: give --log-key")
                try:
                    cp = Checkpoint.from_text(open_note(note, verifier))
                except (VerificationError, InvalidArgumentError) as exc:
                    self._record(
                        conn,
                        Finding(
                            "checkpoint_signature_invalid",
                            f"signature:{sha256_hex(note.encode())}",
                            f"the signed checkpoint does not verify with the log key {verifier}: {exc}",
                            {"note": note},
                        ),
                    )
                    return None, None
                st.log_key = str(verifier)  # pinned from now on
            if st.origin is None:
                st.origin = cp.origin
            elif cp.origin != st.origin:
                self._record(
                    conn,
                    Finding(
                        "fork",
                        f"origin:{cp.origin}",
                        f"the checkpoint names origin {cp.origin!r}, the log followed is {st.origin!r}",
                    ),
                )
                return None, None
            _save(conn, st)
        return cp, note

    # -- catching up --------------------------------------------------------------------------

    def _catch_up(self, cp: Checkpoint, note: str | None) -> None:
        """Mirror and check ``[mirrored size, cp.size)``, as a pipeline: fetch threads read the
        pages ahead, this thread checks one batch (:meth:`_check`) while one writer thread commits
        the batch before it (:meth:`_write`, one transaction: its entries, findings, heads and
        the monitor's new size and border together, so a monitor killed at any moment resumes
        where its last transaction left it). At most three batches are held: memory stays flat."""
        with self.engine.connect() as conn:
            st = _load(conn)
            conn.rollback()
        if cp.size < st.size:
            self._compare(cp, note, st)
            return
        if self.mirror and not self._mirror_ready and st.origin is not None:
            from . import mirror

            mirror.prepare(self.engine, st.origin)
            self._mirror_ready = True
        started = time.monotonic()
        begun = st.size
        shown = 0.0
        written: Future[None] | None = None
        overlay: dict[str, tuple[int, bytes]] = {}  # the heads the batch being written leaves
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-write") as writer:
            for batch in self._fetched(st.size, cp.size):
                checked = self._check(st, batch, cp.size, overlay)
                if written is not None:
                    written.result()  # the batch before is committed: its heads are in the database
                written = writer.submit(self._write, checked)
                overlay = checked.heads
                now = time.monotonic()
                if now - shown >= 2.0 or st.size == cp.size:
                    shown = now
                    rate = (st.size - begun) / max(now - started, 1e-9)
                    self.progress(f"catch-up: {st.size}/{cp.size} entries ({rate:,.0f}/s)")
            if written is not None:
                written.result()
        self._compare(cp, note, st)

    def _fetch(self, start: int, end: int) -> list[Served]:
        """Entries ``[start, end)`` in order, asking again where a source answers fewer."""
        out: list[Served] = []
        while start + len(out) < end:
            got = self.api.served(start + len(out), end)
            if not got:
                raise MonitorError(f"entries from {start + len(out)}: none served below the checkpoint's size {end}")
            out += got
        return out[: end - start]

    def _fetched(self, start: int, end: int) -> Iterator[list[Served]]:
        """Entries ``[start, end)`` in order, as batches (each checked and committed in one
        transaction) of ``parallel`` pages, or of :data:`BUNDLES_PER_COMMIT` pages from a source
        with small fixed pages (``aligned``: tiles, asked on page boundaries). ``parallel``
        requests are in flight, and the pages of one batch are fetched ahead of the batch being
        checked; memory stays flat however long the log."""
        first = (start // self.page + 1) * self.page if self.api.aligned else start + self.page
        bounds = iter([start, *range(first, end, self.page)])
        # Fixed-size bundles are small: several per transaction (a commit waits for the disk).
        commit = max(self.page * self.parallel, BUNDLES_PER_COMMIT * self.page if self.api.aligned else 0)
        ahead = max(2 * self.parallel, commit // self.page + self.parallel)
        pending: deque[Future[list[Served]]] = deque()
        batch: list[Served] = []
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="monitor-fetch") as pool:
            try:
                while True:
                    while len(pending) < ahead and (at := next(bounds, None)) is not None:
                        stop = (at // self.page + 1) * self.page if self.api.aligned else at + self.page
                        pending.append(pool.submit(self._fetch, at, min(end, stop)))
                    if not pending:
                        break
                    batch += pending.popleft().result()
                    if len(batch) >= commit:
                        yield batch
                        batch = []
                if batch:
                    yield batch
            finally:
                for future in pending:
                    future.cancel()

    def _check(
        self, st: _State, batch: Sequence[Served], tree_size: int, overlay: dict[str, tuple[int, bytes]]
    ) -> _Checked:
        """Check one batch of entries served at ``st.size`` and advance ``st`` (size and border)
        past it; what to write (nothing is written here). ``overlay``: the tenders' heads the
        batch before leaves, which its writer may not have committed yet."""
        start = st.size
        found: list[Finding] = []
        disclosures: list[bytes | None] = []
        withheld: list[int | None] = []
        envelopes: list[dict[str, Any]] = []
        for offset, item in enumerate(batch):
            if item.index != start + offset:
                raise MonitorError(f"entries: expected entry {start + offset}, got {item.index!r}")
            try:
                envelope = loads(item.leaf_data)
            except ValueError as exc:
                raise MonitorError(f"entry {start + offset}: unreadable leaf data: {exc}") from exc
            envelopes.append(envelope if isinstance(envelope, dict) else {})
        leaves = [_sha256(LEAF_PREFIX + item.leaf_data).digest() for item in batch]  # hashlib, no call per leaf
        # The heads of the batch's tenders, in one query (not one per entry).
        known = self._heads({str(envelope.get("ocid", "")) for envelope in envelopes}, overlay)
        changed: dict[str, tuple[int, bytes]] = {}
        rows: list[tuple[int, str, int, bytes, bytes, bytes | None]] = []
        origin = st.origin
        for offset, (item, envelope, leaf) in enumerate(zip(batch, envelopes, leaves, strict=True)):
            index = start + offset
            if item.leaf_hash is not None and item.leaf_hash != leaf:
                found.append(
                    Finding(
                        "entry_changed",
                        f"entry:{index}",  # the key a root bisection names it by too: reported once
                        f"entry {index}: its leaf data hash to {leaf.hex()}, the log says {item.leaf_hash.hex()}",
                        {"index": index},
                    )
                )
            ocid = str(envelope.get("ocid", ""))
            seq = envelope.get("seq")
            size, prev = changed.get(ocid) or known.get(ocid) or (0, bytes(32))
            if seq != size or envelope.get("prev") != (prev.hex() if size else None):
                found.append(
                    Finding(
                        "history_broken",
                        f"history:{index}",
                        f"entry {index} ({ocid} seq {seq}) does not chain on the tender's previous event "
                        f"(expected seq {size}, prev {prev.hex() if size else None})",
                        {"index": index, "ocid": ocid},
                    )
                )
            if envelope.get("origin") != origin:
                found.append(
                    Finding(
                        "history_broken",
                        f"origin:{index}",
                        f"entry {index} names origin {envelope.get('origin')!r}, the log is {origin!r}",
                        {"index": index},
                    )
                )
            payload = item.payload
            problem = self._payload(index, ocid, payload, envelope, item.disclosure, item.withheld_by)
            if problem is not None:
                found.append(problem)
            if ocid == smt.HEADS_OCID and envelope.get("type") == smt.HEADS_TYPE and payload is not None:
                lie = self._commitment(index, json.loads(payload), {**overlay, **changed})
                if lie is not None:
                    found.append(lie)
            changed[ocid] = (size + 1, leaf)
            rows.append((index, ocid, seq if type(seq) is int else -1, leaf, item.leaf_data, payload))
            raw = item.disclosure_bytes
            disclosures.append(raw if raw is not None else _disclosure_bytes(item.disclosure))
            by = item.withheld_by
            withheld.append(by if payload is None and type(by) is int and 0 <= by < tree_size else None)
        for node, digest in st.border.extend(leaves, every=TILE_HEIGHT):
            wrong = self._check_node(node, digest, tree_size)
            if wrong is not None:
                found.append(wrong)
        st.size = st.border.size
        return _Checked(
            start=start,
            rows=rows,
            disclosures=disclosures,
            withheld=withheld,
            heads=changed,
            findings=found,
            size=st.size,
            border=b"".join(st.border.hashes),
            root=st.border.root(),
        )

    def _heads(self, ocids: set[str], overlay: dict[str, tuple[int, bytes]]) -> dict[str, tuple[int, bytes]]:
        """The current heads (size, head hash) of the tenders ``ocids`` that have one: from
        ``overlay`` (the batch being written), else from the database."""
        wanted = [o for o in ocids if o not in overlay]
        got = {o: overlay[o] for o in ocids if o in overlay}
        if wanted:
            with self.engine.connect() as conn:
                got.update(
                    (str(o), (int(n), bytes(head)))
                    for o, n, head in store.fetch_in(
                        conn, "SELECT ocid, size, head FROM monitor_heads WHERE ocid IN ({})", wanted
                    )
                )
                conn.rollback()
        return got

    def _write(self, checked: _Checked) -> None:
        """Commit one checked batch, in one transaction (see :meth:`_catch_up`)."""
        rows = checked.rows
        with self.engine.begin() as conn:
            for finding in checked.findings:
                self._record(conn, finding)
            store.executemany(
                conn,
                "INSERT INTO monitor_entries (idx, ocid, seq, leaf_hash, leaf_data, payload) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            disclosures = checked.disclosures
            kept = [(r[0], d) for r, d in zip(rows, disclosures, strict=True) if d is not None]
            if kept:
                store.executemany(conn, "INSERT INTO monitor_disclosures (idx, disclosure) VALUES (?, ?)", kept)
            if self._mirror_ready:
                from . import mirror

                served = [(*r, d, w) for r, d, w in zip(rows, disclosures, checked.withheld, strict=True)]
                mirror.add(conn, checked.start, served, now=datetime.now(UTC))
            changed = checked.heads
            # An ocid stored before; or not: an entry whose "ocid" field is not its envelope's
            # tender is still followed by the name it gives.
            stored = {
                str(o)
                for (o,) in store.fetch_in(conn, "SELECT ocid FROM monitor_heads WHERE ocid IN ({})", list(changed))
            }
            new = [(o, n, head) for o, (n, head) in changed.items() if o not in stored]
            old = [(n, head, o) for o, (n, head) in changed.items() if o in stored]
            if new:
                store.executemany(conn, "INSERT INTO monitor_heads (ocid, size, head) VALUES (?, ?, ?)", new)
            if old:
                store.executemany(conn, "UPDATE monitor_heads SET size = ?, head = ? WHERE ocid = ?", old)
            conn.execute(insert(store.roots).values(size=checked.size, root=checked.root))
            conn.execute(
                update(store.state).where(store.state.c.id == 1).values(size=checked.size, border=checked.border)
            )

    def _by_orders(
        self, conn: Connection, index: int, ocid: str, withheld_by: Any, whole: bool, disclosure: Any
    ) -> Finding | None:
        """:meth:`_by_order` for a payload withheld ``whole`` by ``withheld_by``, or for fields
        withheld by the orders the served ``disclosure`` names (each must target its fields): the
        finding of the latest order, or ``None`` if any of them does not hold."""
        if whole:
            return self._by_order(conn, index, ocid, withheld_by, None)
        groups = _withheld_fields(disclosure)
        if not groups or withheld_by not in groups:
            return None
        found = [self._by_order(conn, index, ocid, order, fields) for order, fields in sorted(groups.items())]
        return None if any(f is None for f in found) else found[-1]

    def _by_order(
        self, conn: Connection, index: int, ocid: str, order: Any, fields: list[str] | None
    ) -> Finding | None:
        """``payload_withheld_by_order`` (informational, not an alarm) when the source says entry
        ``index``'s payload (or its ``fields``) is withheld by the order at log index ``order`` and
        that entry is a withholding order of this log that targets it; else ``None`` (the caller
        reports a payload missing or changed without an order)."""
        if not isinstance(order, int) or isinstance(order, bool) or order < 0:
            return None
        row = conn.execute(
            select(store.entries.c.ocid, store.entries.c.payload).where(store.entries.c.idx == order)
        ).first()
        try:
            if row is not None:
                order_ocid, body = str(row.ocid), None if row.payload is None else json.loads(bytes(row.payload))
            else:  # the order comes after what it withholds: not mirrored yet, asked for
                served = [s for s in self.api.served(order, order + 1) if s.index == order]
                if not served or served[0].payload is None:
                    return None
                order_ocid = str(json.loads(served[0].leaf_data).get("ocid"))
                body = json.loads(served[0].payload)
        except (ValueError, MonitorError, httpx.HTTPError):
            return None
        if order_ocid != ORDERS_OCID or not isinstance(body, dict):
            return None
        targets = [t for t in body.get("targets") or [] if isinstance(t, dict) and t.get("index") == index]
        if fields is None:
            ok = any("fields" not in t for t in targets)
        else:
            ok = bool(fields) and any(set(fields) <= set(t.get("fields") or []) for t in targets)
        if not ok:
            return None
        reference = body.get("reference")
        what = "its payload" if fields is None else ", ".join(fields)
        return Finding(
            "payload_withheld_by_order",
            f"withheld-by-order:{index}:{order}",
            f"entry {index} ({ocid}): {what} withheld under order {reference!r} (log index {order})",
            {"index": index, "ocid": ocid, "order": order, "reference": reference, "fields": fields},
        )

    def _payload(
        self,
        index: int,
        ocid: str,
        data: bytes | None,
        envelope: dict[str, Any],
        disclosure: Any = None,
        withheld_by: Any = None,
    ) -> Finding | None:
        """What is wrong with the payload ``data`` served for the entry ``envelope`` (``None``:
        withheld) and its v2 ``disclosure``, if anything; a payload withheld by an order of this
        log that targets it is ``payload_withheld_by_order`` (informational)."""
        if data is None and withheld_by is not None:
            with self.engine.connect() as conn:
                by_order = self._by_order(conn, index, ocid, withheld_by, None)
                conn.rollback()
            if by_order is not None:
                return by_order
        if data is None:
            return Finding(
                "payload_withheld",
                f"withheld:{index}",
                f"entry {index} ({ocid}): served without its payload",
                {"index": index, "ocid": ocid},
            )
        if envelope.get("v") == VERSION_2:
            # re-hashed through the commitment: the payload (nulls at withheld fields) with its
            # disclosure; with no field committed apart, from the bytes as served (no parse, no
            # re-encoding: bytes that give the commitment are the committed ones), else parsed
            field, what = "payload_commitment", "the payload served with its disclosure commits to"
            if commitment.whole_commitment(data, disclosure) == envelope.get(field):
                return None
            try:
                bound = commitment.recompute(json.loads(data), disclosure)
            except (LedgerError, ValueError) as exc:
                bound = f"nothing (not checkable: {exc})"
        else:
            field, what = "payload_sha256", "the payload served hashes to"
            bound = _sha256(data).hexdigest()
        if bound == envelope.get(field):
            return None
        # Keyed by what the payload binds to (its hash, or its commitment): each change reported once.
        return Finding(
            "payload_changed",
            f"payload:{index}:{bound[:128]}",
            f"entry {index} ({ocid}): {what} {bound}, its envelope says {envelope.get(field)}",
            {"index": index, "ocid": ocid},
        )

    def _check_node(self, node: NodeID, digest: bytes, tree_size: int) -> Finding | None:
        """A node the mirror completed against the source's own tree (its hash tiles)."""
        served = self.api.tree_node(node, tree_size)
        if served is None or served == digest:
            return None
        tile = f"{node.level // TILE_HEIGHT}/{node.index // TILE_WIDTH}"
        return Finding(
            "tile_changed",
            f"tile:{node.level}:{node.index}:{served.hex()}",
            f"hash tile {tile}: node (level {node.level}, index {node.index}) is {served.hex()}, the "
            f"entries below it give {digest.hex()}",
            {"level": node.level, "index": node.index, "served": served.hex(), "expected": digest.hex()},
        )

    def _commitment(self, index: int, payload: Any, changed: dict[str, tuple[int, bytes]]) -> Finding | None:
        """The heads commitment at ``index`` against the heads before it: the database's, then
        ``changed`` (those not committed yet)."""
        with self.engine.connect() as conn:
            current = {str(o): (int(s), bytes(h)) for o, s, h in conn.execute(select(store.heads)).all()}
            conn.rollback()
        current.update(changed)
        leaves = [smt.Leaf(smt.key(o), s, h) for o, (s, h) in current.items() if o != smt.HEADS_OCID]
        expected = {"tree_size": index, "heads_root": smt.root(leaves).hex(), "tenders": len(leaves)}
        got = {k: payload.get(k) for k in expected} if isinstance(payload, dict) else payload
        if got == expected:
            return None
        return Finding(
            "commitment_lies",
            f"commitment:{index}",
            f"the heads commitment at index {index} says {got}, the entries before it give {expected}",
            {"index": index, "expected": expected, "got": got},
        )

    def _root_at(self, size: int) -> bytes:
        with self.engine.connect() as conn:
            stored = conn.execute(select(store.roots.c.root).where(store.roots.c.size == size)).scalar()
            if stored is not None:
                return bytes(stored)
            hashes = [
                bytes(h)
                for (h,) in conn.execute(
                    select(store.entries.c.leaf_hash).where(store.entries.c.idx < size).order_by(store.entries.c.idx)
                )
            ]
        return root_from_leaf_hashes(hashes)

    def _compare(self, cp: Checkpoint, note: str | None, st: _State) -> None:
        """The checkpoint against the mirror's own root at its size; on a difference, find out
        whether the entries served or the checkpoint are at fault."""
        mine = self._root_at(cp.size)
        with self.engine.begin() as conn:
            if note is not None:
                conn.execute(insert(store.checkpoints).values(size=cp.size, root=cp.root, note=note, seen_at=_now()))
            if mine == cp.root:
                if cp.size > st.verified_size:
                    conn.execute(update(store.state).where(store.state.c.id == 1).values(verified_size=cp.size))
                return
            if cp.size <= st.verified_size:
                self._record(
                    conn,
                    Finding(
                        "fork",
                        f"fork:{cp.size}:{cp.root.hex()}",
                        f"checkpoint of size {cp.size} has root {cp.root.hex()}, the tree verified up to size "
                        f"{st.verified_size} has {mine.hex()} there",
                        {"size": cp.size, "root": cp.root.hex(), "expected": mine.hex(), "note": note},
                    ),
                )
                return
        changed = self._first_changed(cp.size)
        with self.engine.begin() as conn:
            if changed is None:
                self._record(
                    conn,
                    Finding(
                        "checkpoint_inconsistent",
                        f"checkpoint:{cp.size}:{cp.root.hex()}",
                        f"the checkpoint of size {cp.size} names root {cp.root.hex()}; the entries served and the "
                        f"log's own proofs give {mine.hex()}",
                        {"size": cp.size, "root": cp.root.hex(), "expected": mine.hex(), "note": note},
                    ),
                )
            else:
                self._record(
                    conn,
                    Finding(
                        "entry_changed",
                        f"entry:{changed}",
                        f"entry {changed}: the bytes served are not the entry the log's tree holds "
                        f"(the tree's roots agree up to size {changed} and differ from size {changed + 1})",
                        {"index": changed, "size": cp.size},
                    ),
                )

    def _first_changed(self, size: int) -> int | None:
        """The first index whose served entry differs from the log's tree (by bisecting the log's
        roots against the mirror's), or ``None`` if the log's roots agree with the mirror's."""
        with self.engine.connect() as conn:
            hashes = [
                bytes(h)
                for (h,) in conn.execute(
                    select(store.entries.c.leaf_hash).where(store.entries.c.idx < size).order_by(store.entries.c.idx)
                )
            ]
        current = int(self.api.checkpoint()["tree_size"])
        if current < size or self.api.root_at(size, current) == root_from_leaf_hashes(hashes):
            return None
        lo, hi = 0, size  # roots agree at lo, differ at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.api.root_at(mid, current) == root_from_leaf_hashes(hashes[:mid]):
                lo = mid
            else:
                hi = mid
        return lo

    # -- witnesses ----------------------------------------------------------------------------

    def _check_cosigned(self) -> None:
        """The log's latest cosigned checkpoint against the watcher's witness policy (and, as every
        checkpoint, against the mirror's tree)."""
        note = self.api.cosigned_checkpoint()
        policy = f"{self.witness_quorum} of {len(self.witnesses)}"
        if note is None:
            if not self._has_anchored():
                # A log that has not run a publishing round yet (a new one) had nothing to have
                # cosigned: no shortfall yet. A log that never anchors is --max-unanchored-seconds'
                # to report (`unanchored`); once it anchors, a missing cosigned checkpoint is one.
                return
            with self.engine.begin() as conn:
                self._record(
                    conn,
                    Finding(
                        "witness_shortfall",
                        "witnesses:none",
                        f"the log publishes no cosigned checkpoint; the witness policy wants {policy}",
                        {"quorum": self.witness_quorum, "cosigned": 0},
                    ),
                )
            return
        with self.engine.connect() as conn:
            st = _load(conn)
            conn.rollback()
        verifier = self._verifier(st)
        try:
            if verifier is None:
                raise VerificationError("no log key to check its signature with")
            cp = Checkpoint.from_text(open_note(note, verifier))
            body, lines = split_note(note)
        except (VerificationError, InvalidArgumentError) as exc:
            with self.engine.begin() as conn:
                self._record(
                    conn,
                    Finding(
                        "checkpoint_signature_invalid",
                        f"signature:{sha256_hex(note.encode())}",
                        f"the cosigned checkpoint does not verify with the log key {verifier}: {exc}",
                        {"note": note},
                    ),
                )
            return
        found: list[Finding] = []
        where = f"cosigned checkpoint of size {cp.size}"
        for line in lines:
            cosig = parse_line(line)
            for key in self.witnesses:
                if (
                    cosig is not None
                    and (cosig.name, cosig.key_id) == (key.name, key.key_id)
                    and not key.verify(body, cosig)
                ):
                    found.append(
                        Finding(
                            "cosignature_invalid",
                            f"cosignature:{cp.size}:{cp.root.hex()}:{key}",
                            f"{where}: the cosignature by witness {key.name} does not verify",
                            {"size": cp.size, "witness": str(key), "line": line},
                        )
                    )
        try:
            check_quorum(note, self.witnesses, self.witness_quorum)
        except VerificationError as exc:
            found.append(
                Finding(
                    "witness_shortfall",
                    f"witnesses:{cp.size}:{cp.root.hex()}",
                    f"{where}: {exc}",
                    {"size": cp.size, "quorum": self.witness_quorum, "note": note},
                )
            )
        with self.engine.begin() as conn:
            for finding in found:
                self._record(conn, finding)
        if cp.size <= st.size:
            self._compare(cp, note, st)

    def _has_anchored(self) -> bool:
        """Whether the log lists any anchor (in flight, final or failed) on the chains followed: a
        publishing round ran, and collects cosignatures before it anchors."""
        wanted: list[str | None] = [*self.chains] or [None]
        return any(next(iter(self.api.anchors(chain)), None) is not None for chain in wanted)

    # -- re-reading what is mirrored ----------------------------------------------------------

    def _recheck(self) -> None:
        """Re-read one page of entries already mirrored (rolling): a log that edits its past
        after the monitor read it is found on the next pass."""
        with self.engine.connect() as conn:
            st = _load(conn)
            conn.rollback()
        if st.size == 0:
            return
        start = st.recheck_at if st.recheck_at < st.size else 0
        got = self.api.served(start, min(st.size, start + self.page))
        with self.engine.begin() as conn:
            mirrored = {
                int(r.idx): r
                for r in conn.execute(
                    select(store.entries).where(store.entries.c.idx >= start, store.entries.c.idx < start + len(got))
                )
            }
            for item in got:
                index, data, payload = item.index, item.leaf_data, item.payload
                old = mirrored.get(index)
                if old is None:
                    continue
                if data != bytes(old.leaf_data):
                    self._record(
                        conn,
                        Finding(
                            "entry_changed",
                            f"entry:{index}:{leaf_hash(data).hex()}",
                            f"entry {index}: served now as {leaf_hash(data).hex()}, mirrored as {bytes(old.leaf_hash).hex()}",
                            {"index": index, "mirrored": bytes(old.leaf_hash).hex(), "served": leaf_hash(data).hex()},
                        ),
                    )
                by_order = (
                    self._by_orders(conn, index, str(old.ocid), item.withheld_by, payload is None, item.disclosure)
                    if old.payload is not None and payload != bytes(old.payload)
                    else None
                )
                if by_order is not None and (payload is None or _same_commitment(data, payload, item.disclosure)):
                    self._record(conn, by_order)
                elif payload is None and old.payload is not None:
                    self._record(
                        conn,
                        Finding(
                            "payload_withheld",
                            f"withheld:{index}",
                            f"entry {index}: its payload is no longer served",
                            {"index": index},
                        ),
                    )
                elif payload is not None and old.payload is not None and payload != bytes(old.payload):
                    self._record(
                        conn,
                        Finding(
                            "payload_changed",
                            f"payload:{index}:{sha256_hex(payload)}",
                            f"entry {index}: the payload served now differs from the one mirrored",
                            {"index": index},
                        ),
                    )
            conn.execute(update(store.state).where(store.state.c.id == 1).values(recheck_at=start + len(got)))

    # -- anchors ------------------------------------------------------------------------------

    def _reader(self, chain_id: int) -> ChainReader | None:
        if self._by_chain_id is None:
            self._by_chain_id = {reader.chain_id(): reader for reader in self.readers}
        return self._by_chain_id.get(chain_id)

    def _check_anchors(self) -> None:
        with self.engine.connect() as conn:
            st = _load(conn)
            conn.rollback()
        wanted: list[str | None] = [*self.chains] or [None]
        for chain in wanted:
            for anchor in self.api.anchors(chain):
                if anchor.get("status") != "final" or int(anchor["tree_size"]) > st.size:
                    continue
                with self.engine.connect() as conn:
                    done = conn.execute(
                        select(store.anchors_checked.c.anchor_id).where(
                            store.anchors_checked.c.chain == anchor["chain"],
                            store.anchors_checked.c.anchor_id == anchor["id"],
                        )
                    ).first()
                if done is None:
                    self._check_anchor(anchor, st)
        if self.max_unanchored is not None:
            self._check_unanchored(st)

    def _check_anchor(self, anchor: dict[str, Any], st: _State) -> None:
        size = int(anchor["tree_size"])
        claimed = bytes.fromhex(anchor["root_hash"])
        mine = self._root_at(size)
        name = f"{anchor['chain']}#{anchor['id']}"
        found: list[Finding] = []
        if claimed != mine:
            found.append(
                Finding(
                    "anchor_disagrees",
                    f"anchor:{name}",
                    f"anchor {name} names root {claimed.hex()} for size {size}; the tree has {mine.hex()}",
                    {"chain": anchor["chain"], "anchor": anchor["id"], "tree_size": size},
                )
            )
        reader = self._reader(int(anchor["chain_id"]))
        if reader is not None:
            contract = str(anchor["contract"])
            on_chain = reader.root_at(contract, size)
            problems = []
            if on_chain != mine:
                problems.append(f"the contract holds {on_chain.hex()} for size {size}, the tree has {mine.hex()}")
            if anchor.get("tx_hash"):
                tx = reader.anchor_tx(contract, str(anchor["tx_hash"]))
                if tx is None or not tx.succeeded:
                    problems.append(f"transaction {anchor['tx_hash']} is not mined or failed")
                else:
                    if (size, mine) not in tx.anchored:
                        problems.append(
                            f"transaction {anchor['tx_hash']} anchored {[(s, r.hex()) for s, r in tx.anchored]}"
                        )
                    if anchor.get("block_timestamp") is not None and tx.block_timestamp != anchor["block_timestamp"]:
                        problems.append(
                            f"the block's time is {tx.block_timestamp}, the log says {anchor['block_timestamp']}"
                        )
            if problems:
                found.append(
                    Finding(
                        "chain_disagrees",
                        f"chain:{name}",
                        f"anchor {name} (chain id {anchor['chain_id']}): " + "; ".join(problems),
                        {"chain": anchor["chain"], "anchor": anchor["id"], "tree_size": size},
                    )
                )
        kept = self.api.kept_checkpoint(size) if self._mirror_ready and not found else None
        with self.engine.begin() as conn:
            for finding in found:
                self._record(conn, finding)
            if self._mirror_ready and not found and st.origin is not None:
                from . import mirror

                mirror.add_anchor(conn, anchor, note=kept, verifier=self._verifier(st), origin=st.origin)
            conn.execute(
                insert(store.anchors_checked).values(
                    chain=anchor["chain"],
                    anchor_id=anchor["id"],
                    tree_size=size,
                    root=claimed,
                    block_timestamp=anchor.get("block_timestamp"),
                )
            )

    def _reproject(self) -> None:
        """Rebuild the mirror's projections when it holds entries they were not built from."""
        from . import mirror

        held = mirror.size(self.engine)
        with self.engine.connect() as conn:
            done = conn.execute(select(store.mirror.c.projected_size).where(store.mirror.c.id == 1)).scalar()
        if done == held:
            return
        mirror.reproject(self.engine, now=datetime.now(UTC))
        with self.engine.begin() as conn:
            if done is None:
                conn.execute(insert(store.mirror).values(id=1, projected_size=held))
            else:
                conn.execute(update(store.mirror).where(store.mirror.c.id == 1).values(projected_size=held))

    def _check_unanchored(self, st: _State) -> None:
        with self.engine.begin() as conn:
            anchored = conn.execute(select(func.max(store.anchors_checked.c.tree_size))).scalar() or 0
            if anchored >= st.size:
                return
            data = conn.execute(select(store.entries.c.leaf_data).where(store.entries.c.idx == anchored)).scalar()
            if data is None:
                return
            recorded = datetime.fromisoformat(json.loads(bytes(data))["recorded_at"].replace("Z", "+00:00"))
            waited = (datetime.now(UTC) - recorded).total_seconds()
            assert self.max_unanchored is not None
            if waited > self.max_unanchored:
                self._record(
                    conn,
                    Finding(
                        "unanchored",
                        f"unanchored:{anchored}",
                        f"entry {anchored} (recorded {recorded.isoformat()}) and {st.size - anchored - 1} after it "
                        f"are unanchored after {waited:.0f} s (policy: {self.max_unanchored:.0f} s)",
                        {"index": anchored, "waited_seconds": round(waited), "anchored_size": anchored},
                    ),
                )
