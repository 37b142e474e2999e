"""A tender's history and its proof bundle. (Search, listing and OCDS releases and records
are separate routes over :mod:`ledger.procurement`.)"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from ledger.bundles import build_bundle, final_anchors
from ledger.core.envelope import check_ocid
from ledger.core.errors import InvalidArgumentError

from .. import schemas
from ..deps import LogDep, SettingsDep
from ..errors import NOT_FOUND_RESPONSES
from ..responses import cached, cached_model

router = APIRouter(prefix="/tenders", tags=["tenders"], responses=NOT_FOUND_RESPONSES)

Ocid = Annotated[str, Path(description="The OCDS contracting-process id, e.g. ocds-213czf-000-00001.")]
ChainName = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


@router.get("/{ocid}/events", response_model=schemas.TenderEvents, summary="A tender's events")
def get_tender_events(request: Request, log: LogDep, ocid: Ocid) -> Response:
    """Every event of the tender in ``seq`` order, with its envelope, payload and, once
    integrated, its log index (``status``: integrated or pending)."""
    check_ocid(ocid, field="path.ocid")
    stored = log.reader.tender_events(ocid)
    events = [
        schemas.TenderEvent(
            seq=event.seq,
            type=event.type,
            index=event.index,
            status="pending" if event.index is None else "integrated",
            leaf_hash=event.leaf_hash.hex(),
            envelope=schemas.Envelope.model_validate_json(event.envelope),
            payload=json.loads(event.payload),
        )
        for event in stored
    ]
    body = schemas.TenderEvents(ocid=ocid, event_count=len(events), head_hash=stored[-1].leaf_hash.hex(), events=events)
    return cached_model(request, body, immutable=False)


@router.get("/{ocid}/bundle", response_model=schemas.Bundle, summary="A tender's proof bundle (SPEC §7)")
def get_tender_bundle(
    request: Request,
    log: LogDep,
    settings: SettingsDep,
    ocid: Ocid,
    chain: Annotated[str | None, ChainName] = None,
) -> Response:
    """The ``tenderproof-bundle/1`` document of the tender against the final anchors on
    ``chain`` (default: the first configured chain): everything `tenderproof verify` needs.
    404 if the tender is unknown or nothing is anchored on the chain yet."""
    check_ocid(ocid, field="path.ocid")
    names = [configured.name for configured in settings.chains]
    name = chain or names[0]
    if name not in names:
        raise InvalidArgumentError("query.chain", f"no chain {name!r} is configured; known: {', '.join(names)}")
    log.reader.tender(ocid)  # NotFoundError first for an unknown tender
    bundle = build_bundle(log, ocid, final_anchors(log.engine, name))
    # The bundle's own JSON, byte for byte (envelopes must stay exactly as hashed).
    return cached(request, json.dumps(bundle.to_json(), separators=(",", ":")).encode(), immutable=False)
