"""The log itself: its checkpoint, raw entries for mirrors, inclusion and consistency proofs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from anchoring.bundles import signed_checkpoint
from anchoring.cosigning import latest_cosigned
from ledger.core.checkpoint import MAX_TREE_SIZE
from ledger.core.checkpoint import Checkpoint as CoreCheckpoint
from ledger.core.errors import InvalidArgumentError, NotFoundError
from ledger.core.note import Signer
from ledger.log import Log
from ledger.store.reader import StoredEvent
from monitor.mirror import Notes

from .. import schemas
from ..deps import LogSignerDep, MirrorDep, ReadLogDep
from ..errors import NOT_FOUND_RESPONSES
from ..responses import cached, cached_model

router = APIRouter(tags=["log"])

#: Most entries one request returns (a mirror pages through the log).
MAX_ENTRIES = 1000

Index = Annotated[int, Query(ge=0, le=MAX_TREE_SIZE)]


def prefers_text(accept: str | None) -> bool:
    """True if the Accept header ranks text/plain above application/json (ties: JSON)."""
    if not accept:
        return False
    best = {"application/json": 0.0, "text/plain": 0.0}
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        for media in best:
            if kind.lower() in (media, media.split("/")[0] + "/*", "*/*"):
                specific = 0.001 if kind.lower() == media else 0.0  # an exact type beats a wildcard
                best[media] = max(best[media], quality + specific)
    return best["text/plain"] > best["application/json"]


@router.get(
    "/checkpoint",
    response_model=schemas.Checkpoint,
    summary="The log's current checkpoint",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def get_checkpoint(request: Request, log: ReadLogDep) -> Response:
    """The current tree size and root. With ``Accept: text/plain``, the C2SP tlog-checkpoint text
    (`origin\\nsize\\nbase64(root)\\n`) that transparency-log tools read."""
    head = log.reader.tree_head()
    checkpoint = CoreCheckpoint(origin=log.origin, size=head.size, root=head.root)
    if prefers_text(request.headers.get("accept")):
        return cached(request, checkpoint.to_text().encode(), immutable=False, media_type="text/plain; charset=utf-8")
    body = schemas.Checkpoint(
        origin=log.origin, tree_size=head.size, root_hash=head.root.hex(), text=checkpoint.to_text()
    )
    return cached_model(request, body, immutable=False)


@router.get(
    "/checkpoint/signed",
    summary="The log's current checkpoint as a C2SP signed note",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, 404: NOT_FOUND_RESPONSES[404]},
)
def get_signed_checkpoint(
    request: Request,
    log: ReadLogDep,
    signer: LogSignerDep,
    mirror: MirrorDep,
    size: Annotated[
        int | None,
        Query(ge=1, le=MAX_TREE_SIZE, description="An anchored size: the note kept for it, with its cosignatures."),
    ] = None,
) -> Response:
    """The checkpoint of the latest integrated size, signed by the log's key (C2SP signed note,
    Ed25519; docs/spec.md §16). Its verifier key is at ``/.well-known/tenderproof/checkpoint-key``.
    With ``size``, the checkpoint of that size as bundles carry it: the note the publishing round
    kept, with the witnesses' cosignatures (404 when none was kept). 404 when this deployment
    signs no checkpoints. A mirror (``serve --mirror``) serves the notes the log published."""
    if size is not None:
        current = log.reader.tree_head().size
        if size > current:
            raise InvalidArgumentError("query.size", f"must be at most the tree size {current}, got {size}")
        kept = _kept_note(log, signer, mirror, size)
        if kept is None:
            raise NotFoundError(f"no signed checkpoint of size {size} was kept")
        return cached(request, kept.encode(), immutable=False, media_type="text/plain; charset=utf-8")
    text = signed_note(log, signer, mirror)
    return cached(request, text.encode(), immutable=False, media_type="text/plain; charset=utf-8")


def signed_note(log: Log, signer: Signer | None, mirror: Notes | None) -> str:
    """The log's current checkpoint as a signed note: signed now, or on a mirror the newest note
    the log published for the mirror's size. Raises :class:`NotFoundError` when there is none."""
    if mirror is not None:
        latest = mirror.latest()
        if latest is None:
            raise NotFoundError("this mirror holds no signed checkpoint of its current size")
        return latest
    if signer is None:
        raise NotFoundError("this log signs no checkpoints (no TENDERPROOF_LOG_SIGNING_KEY)")
    head = log.reader.tree_head()
    return signer.sign(CoreCheckpoint(origin=log.origin, size=head.size, root=head.root).to_text())


def _kept_note(log: Log, signer: Signer | None, mirror: Notes | None, size: int) -> str | None:
    root = log.reader.root_at(size)
    if mirror is not None:
        return mirror.kept(size, root)
    if signer is None:
        raise NotFoundError("this log signs no checkpoints (no TENDERPROOF_LOG_SIGNING_KEY)")
    return signed_checkpoint(log, signer, CoreCheckpoint(origin=log.origin, size=size, root=root))


@router.get(
    "/checkpoint/cosigned",
    summary="The latest checkpoint the witnesses cosigned (C2SP signed note with cosignatures)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, 404: NOT_FOUND_RESPONSES[404]},
)
def get_cosigned_checkpoint(request: Request, log: ReadLogDep) -> Response:
    """The largest checkpoint the publishing round had cosigned: the log's signed note with every
    valid witness cosignature it collected appended (C2SP tlog-cosignature; docs/spec.md §17), as
    a ``tenderproof-bundle/2`` carries it. Usually older than ``/checkpoint/signed`` (witnesses
    cosign what is about to be anchored). 404 until a round has cosigned one."""
    note = latest_cosigned(log.engine)
    if note is None:
        raise NotFoundError("no cosigned checkpoint yet (no witnesses configured, or no publishing round)")
    return cached(request, note.encode(), immutable=False, media_type="text/plain; charset=utf-8")


@router.get("/entries", response_model=schemas.Entries, summary="Raw log entries by index range")
def get_entries(request: Request, log: ReadLogDep, start: Index, end: Index) -> Response:
    """Entries ``[start, end)``, each with its exact leaf bytes, so that a mirror can recompute
    every leaf hash and the tree. Like RFC 6962's get-entries, the answer may hold fewer entries
    than asked: at most 1000, and none past the tree size; its ``end`` says where it stopped.
    Requires ``start <= end`` and ``start <= tree size``. Revalidated (ETag): a payload may be withheld by a later order."""
    if start > end:
        raise InvalidArgumentError("query.start", f"must be at most end ({end}), got {start}")
    size = log.reader.tree_head().size
    if start > size:
        raise InvalidArgumentError("query.start", f"must be at most the tree size {size}, got {start}")
    served = min(end, start + MAX_ENTRIES, size)
    entries = [_entry(stored) for stored in log.reader.entries(start, served)]
    body = schemas.Entries(start=start, end=served, entries=entries)
    # never immutable: the entries never change, but a payload may be withheld by a later order
    return cached_model(request, body, immutable=False)


def _entry(stored: StoredEvent) -> schemas.Entry:
    assert stored.index is not None  # read by index: integrated
    return schemas.Entry.model_validate(stored.to_json())


@router.get("/proofs/inclusion", response_model=schemas.InclusionProof, summary="RFC 9162 inclusion proof")
def get_inclusion_proof(
    request: Request,
    log: ReadLogDep,
    index: Index,
    size: Annotated[int | None, Query(ge=1, le=MAX_TREE_SIZE, description="Tree size (default: current).")] = None,
) -> Response:
    """Proof that entry ``index`` is in the tree of ``size`` leaves. Requires ``index < size <=
    tree size``. Immutable (cacheable for ever) when ``size`` is given."""
    current = log.reader.tree_head().size
    tree_size = current if size is None else size
    if tree_size > current:
        raise InvalidArgumentError("query.size", f"must be at most the tree size {current}, got {tree_size}")
    if index >= tree_size:
        raise InvalidArgumentError("query.index", f"must be less than the tree size {tree_size}, got {index}")
    path = log.reader.inclusion_proof(index, tree_size)
    body = schemas.InclusionProof(
        leaf_index=index,
        tree_size=tree_size,
        leaf_hash=log.reader.leaf_hashes(index, index + 1)[0].hex(),
        root_hash=log.reader.root_at(tree_size).hex(),
        path=[node.hex() for node in path],
    )
    return cached_model(request, body, immutable=size is not None)


@router.get("/proofs/consistency", response_model=schemas.ConsistencyProof, summary="RFC 9162 consistency proof")
def get_consistency_proof(
    request: Request,
    log: ReadLogDep,
    from_size: Annotated[int, Query(alias="from", ge=0, le=MAX_TREE_SIZE, description="The older tree size.")],
    to_size: Annotated[
        int | None, Query(alias="to", ge=0, le=MAX_TREE_SIZE, description="The newer tree size (default: current).")
    ] = None,
) -> Response:
    """Proof that the tree of ``from`` leaves is a prefix of the tree of ``to`` leaves. Requires
    ``from <= to <= tree size``. Immutable when ``to`` is given."""
    current = log.reader.tree_head().size
    newer = current if to_size is None else to_size
    if newer > current:
        raise InvalidArgumentError("query.to", f"must be at most the tree size {current}, got {newer}")
    if from_size > newer:
        raise InvalidArgumentError("query.from", f"must be at most {newer}, got {from_size}")
    path = log.reader.consistency_proof(from_size, newer)
    body = schemas.ConsistencyProof(
        from_size=from_size,
        to_size=newer,
        from_root=log.reader.root_at(from_size).hex(),
        to_root=log.reader.root_at(newer).hex(),
        path=[node.hex() for node in path],
    )
    return cached_model(request, body, immutable=to_size is not None)
