"""Anchors: the log's checkpoints on each chain, and the batch of entries each one covers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from anchoring import store

from .. import schemas
from ..deps import ReadLogDep, SettingsDep
from ..errors import NOT_FOUND_RESPONSES

router = APIRouter(prefix="/anchors", tags=["anchors"], responses=NOT_FOUND_RESPONSES)

_CHAIN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_PAGE = 500
_ID_MAX = 2**63 - 1


@router.get("", response_model=schemas.AnchorPage, summary="Anchors on one chain, newest first")
def list_anchors(
    log: ReadLogDep,
    settings: SettingsDep,
    chain: Annotated[str | None, Query(pattern=_CHAIN, description="Default: the first configured chain.")] = None,
    before: Annotated[int | None, Query(ge=1, le=_ID_MAX, description="`next_before` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> schemas.AnchorPage:
    """Every anchoring of the log's checkpoint on ``chain``, in flight, final or failed."""
    name = chain or settings.chains[0].name
    found = store.listing(log.engine, chain=name, before=before, limit=limit + 1)
    page = [schemas.Anchor.model_validate(listed.to_json()) for listed in found[:limit]]
    return schemas.AnchorPage(chain=name, anchors=page, next_before=page[-1].id if len(found) > limit else None)


@router.get("/{chain}/{anchor_id}", response_model=schemas.AnchorDetail, summary="One anchor and its batch")
def get_anchor(
    log: ReadLogDep,
    chain: Annotated[str, Path(pattern=_CHAIN)],
    anchor_id: Annotated[int, Path(ge=1, le=_ID_MAX, description="The anchor's `id`.")],
) -> schemas.AnchorDetail:
    """The anchor and its batch: the entries ``[start, end)`` it covers beyond the previous
    final anchor on the same contract."""
    listed = store.find(log.engine, chain=chain, anchor_id=anchor_id)
    start = store.batch_start(log.engine, listed.anchor)
    end = listed.anchor.tree_size
    return schemas.AnchorDetail.model_validate(
        {**listed.to_json(), "batch": {"start": start, "end": end, "count": end - start}}
    )
