"""Tenders: search and listing, one tender's summary, history, OCDS release package and
record, and its proof bundle."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from anchoring.bundles import build_bundle, final_anchors
from ledger.core.envelope import check_ocid
from ledger.core.errors import InvalidArgumentError
from ledger.procurement import export, ocds, privacy, query
from ledger.store.reader import StoredEvent

from .. import schemas
from ..deps import LogSignerDep, MirrorDep, ReadLogDep, SettingsDep
from ..errors import NOT_FOUND_RESPONSES
from ..responses import cached, cached_model

#: Most events in one page of GET /tenders/{ocid}/events.
EVENTS_PAGE = 1000

router = APIRouter(prefix="/tenders", tags=["tenders"], responses=NOT_FOUND_RESPONSES)

Ocid = Annotated[str, Path(description="The OCDS contracting-process id, e.g. ocds-213czf-000-00001.")]
ChainName = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


#: A date (``2026-03-01``: the whole day, UTC) or an RFC 3339 date-time with its offset.
Moment = Query(
    pattern=r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}))?$",
    description="A date (UTC) or an RFC 3339 date-time with its offset, e.g. 2026-03-01 or 2026-03-01T09:30:00Z.",
)


def _moment(text: str | None, name: str, *, end: bool) -> datetime | None:
    """Parse a ``Moment``; a bare date is its first (or, as an upper bound, its last) instant in UTC."""
    return query.parse_moment(text, field=f"query.{name}", end=end)


def search_filters(
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words of the title, description, items, the buyer or a supplier (the last word also as a "
            "prefix; case, accents and apostrophe forms do not matter).",
        ),
    ] = None,
    status: Literal["planning", "planned", "active", "cancelled", "unsuccessful", "complete", "withdrawn"]
    | None = None,
    method: Annotated[
        str | None, Query(max_length=32, description="The procurement method (open, selective...).")
    ] = None,
    buyer: Annotated[str | None, Query(max_length=256, description="The buyer's id.")] = None,
    supplier: Annotated[
        str | None, Query(max_length=1024, description="A supplier's organisation key, as the supplier facet gives it.")
    ] = None,
    flag: Annotated[
        str | None, Query(max_length=64, description="A red flag's code (see /api/v1/redflags), or `any`.")
    ] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    year: Annotated[int | None, Query(ge=1900, le=9999, description="Year of publication (or planning).")] = None,
    published_from: Annotated[str | None, Moment] = None,
    published_to: Annotated[str | None, Moment] = None,
    value_min: Annotated[float | None, Query(ge=0, description="Estimated value, at least.")] = None,
    value_max: Annotated[float | None, Query(ge=0, description="Estimated value, at most.")] = None,
    awarded_min: Annotated[float | None, Query(ge=0, description="Awarded value, at least.")] = None,
    awarded_max: Annotated[float | None, Query(ge=0, description="Awarded value, at most.")] = None,
) -> query.Filters:
    """The search filters of a request (the tenders list, its facets and the exports take the same)."""
    filters = query.Filters(
        q=q,
        status=status,
        method=method,
        buyer=buyer,
        supplier=supplier,
        flag=flag,
        currency=currency,
        year=year,
        published_from=_moment(published_from, "published_from", end=False),
        published_to=_moment(published_to, "published_to", end=True),
        value_min=value_min,
        value_max=value_max,
        awarded_min=awarded_min,
        awarded_max=awarded_max,
    )
    try:
        filters.check()
    except InvalidArgumentError as exc:
        raise exc.renamed(f"query.{exc.field}") from exc
    return filters


FiltersDep = Annotated[query.Filters, Depends(search_filters)]


@router.get("", response_model=schemas.TenderPage, summary="Search and list tenders")
def list_tenders(
    log: ReadLogDep,
    filters: FiltersDep,
    sort: Literal["relevance", "published_desc", "published_asc", "value_desc", "value_asc"] | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=query.MAX_LIMIT)] = 50,
) -> schemas.TenderPage:
    """Tenders matching every filter given, a page at a time (pass `next_cursor` back as
    `cursor`; pages stay stable while new tenders arrive). `q` is full text (every word, the
    last also as a prefix, in the title, description, items, buyer or suppliers, whatever the case, accents or
    apostrophes); `sort` defaults to `relevance` with `q`, else `published_desc`. The other
    filters: `status`, `method`, `buyer`, `supplier`, `flag`, `year`, publication dates, estimated
    value (`value_min`, `value_max`) and awarded value (`awarded_min`, `awarded_max`), with
    `currency` to compare like with like. `/tenders/facets` counts the matches. Sorted by relevance,
    words alone that match more than 2,000 tenders are ranked among the newest 2,000 of them
    (`ranked_among`)."""
    try:
        page = query.search_tenders(log.engine, sort=sort, cursor=cursor, limit=limit, **asdict(filters))
    except InvalidArgumentError as exc:
        raise exc.renamed(f"query.{exc.field}") from exc
    return schemas.TenderPage(
        items=[schemas.TenderSummary.model_validate(item.to_json()) for item in page.items],
        next_cursor=page.next_cursor,
        ranked_among=page.ranked_among,
    )


@router.get("/facets", response_model=schemas.TenderFacets, summary="Count the tenders a search matches")
def get_facets(log: ReadLogDep, filters: FiltersDep) -> schemas.TenderFacets:
    """How many tenders match the filters (the same as `GET /tenders`) and, per facet (status,
    method, red flag, year, currency, buyer, supplier), the commonest values among them with their
    counts. Each value is what the matching filter takes (`flag=any`: at least one red flag). When
    more than 2,000 tenders match, the counts are of the newest 2,000 (`sampled`); when more than
    10,000 match, the total is an estimate (`estimated`)."""
    found = query.facets(log.engine, **asdict(filters))
    return schemas.TenderFacets(
        total=found.total,
        estimated=found.estimated,
        facets={
            name: [schemas.FacetValue(value=v, label=label, count=n) for v, label, n in rows]
            for name, rows in found.counts.items()
        },
        sampled=found.sampled,
    )


@router.get("/{ocid}", response_model=schemas.TenderSummary, summary="One tender's summary")
def get_tender(request: Request, log: ReadLogDep, ocid: Ocid) -> Response:
    """What listings show of the tender: title, buyer, status, values, dates, suppliers."""
    check_ocid(ocid, field="path.ocid")
    summary = query.tender_summary(log.engine, ocid)
    return cached_model(request, schemas.TenderSummary.model_validate(summary.to_json()), immutable=False)


def _releases(log: Any, ocid: str) -> list[dict[str, Any]]:
    check_ocid(ocid, field="path.ocid")
    log.reader.tender(ocid)  # NotFoundError for an unknown tender
    # Imported tenders give back their releases as imported; recorded ones, their events' releases.
    return next(export.iter_tenders(log.engine, ocid=ocid))[1]


@router.get("/{ocid}/releases", response_model=dict[str, Any], summary="The tender's OCDS 1.1 release package")
def get_tender_releases(request: Request, log: ReadLogDep, settings: SettingsDep, ocid: Ocid) -> Response:
    """One OCDS release per event (id `<ocid>-<seq>`, dated when it was recorded), as an OCDS 1.1
    release package."""
    items = _releases(log, ocid)
    package = ocds.release_package(
        items, uri=str(request.url), published_date=items[-1]["date"], publisher=settings.origin
    )
    return cached(request, json.dumps(package, separators=(",", ":")).encode(), immutable=False)


@router.get("/{ocid}/record", response_model=dict[str, Any], summary="The tender's OCDS 1.1 record package")
def get_tender_record(request: Request, log: ReadLogDep, settings: SettingsDep, ocid: Ocid) -> Response:
    """The OCDS record of the tender: its releases and the compiled release (OCDS merge rules,
    by the ocdsmerge library)."""
    items = _releases(log, ocid)
    package = ocds.record_package(
        items,
        uri=str(request.url),
        published_date=items[-1]["date"],
        publisher=settings.origin,
        package_uri=str(request.url_for("get_tender_releases", ocid=ocid)),
    )
    return cached(request, json.dumps(package, separators=(",", ":")).encode(), immutable=False)


@router.get("/{ocid}/events", response_model=schemas.TenderEvents, summary="A tender's events")
def get_tender_events(
    request: Request,
    log: ReadLogDep,
    ocid: Ocid,
    from_seq: Annotated[int, Query(ge=0, le=2**62, description="First seq of the page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=EVENTS_PAGE, description="Events per page.")] = EVENTS_PAGE,
) -> Response:
    """The tender's events in ``seq`` order, a page at a time (``from_seq``, ``limit``; follow
    ``next_from_seq``), each with its envelope, payload and, once integrated, its log index
    (``status``: integrated or pending). Memory is bounded by the page, whatever the tender's size."""
    check_ocid(ocid, field="path.ocid")
    count, head = log.reader.tender_head(ocid)
    stored = log.reader.tender_events(ocid, from_seq=from_seq, limit=limit)
    events = [
        schemas.TenderEvent(
            seq=event.seq,
            type=event.type,
            index=event.index,
            status="pending" if event.index is None else "integrated",
            leaf_hash=event.leaf_hash.hex(),
            envelope=schemas.Envelope.model_validate_json(event.envelope),
            payload=payload,
            payload_error=problem,
            personal_data=[
                schemas.PersonalDataField(path=mark.path, rule=mark.rule) for mark in privacy.marks(event.type, payload)
            ],
            **_optional(event),
        )
        for event in stored
        for payload, problem in [event.readable_payload]
    ]
    last = stored[-1].seq if stored else None
    body = schemas.TenderEvents(
        ocid=ocid,
        event_count=count,
        head_hash=head,
        from_seq=from_seq,
        next_from_seq=None if last is None or last + 1 >= count else last + 1,
        events=events,
    )
    return cached_model(request, body, immutable=False)


@router.get("/{ocid}/bundle", response_model=schemas.Bundle, summary="A tender's proof bundle (docs/spec.md §15)")
def get_tender_bundle(
    request: Request,
    log: ReadLogDep,
    settings: SettingsDep,
    signer: LogSignerDep,
    mirror: MirrorDep,
    ocid: Ocid,
    chain: Annotated[str | None, ChainName] = None,
    version: Annotated[
        int, Query(alias="format", ge=1, le=2, description="Bundle version: 2 (default: completeness, officers) or 1.")
    ] = 2,
    from_seq: Annotated[
        int | None, Query(ge=0, le=2**62, description="A range bundle (docs/spec.md §15.3) from this seq.")
    ] = None,
    to_seq: Annotated[
        int | None, Query(ge=0, le=2**62, description="A range bundle up to this seq (included).")
    ] = None,
) -> Response:
    """The ``tenderproof-bundle/2`` document of the tender against the final anchors on
    ``chain`` (default: the first configured chain): everything `tenderproof verify` needs
    (``format=1``: the version 1 document). With ``from_seq``/``to_seq``, a range bundle of
    that part of the history (at most 1,000 events; a longer history is served only in ranges,
    422 otherwise). 404 if the tender is unknown or nothing is anchored on the chain yet."""
    check_ocid(ocid, field="path.ocid")
    names = [configured.name for configured in settings.chains]
    name = chain or names[0]
    if name not in names:
        raise InvalidArgumentError("query.chain", f"no chain {name!r} is configured; known: {', '.join(names)}")
    log.reader.tender(ocid)  # NotFoundError first for an unknown tender
    bundle = build_bundle(
        log, ocid, final_anchors(log.engine, name), version=version, signer=signer, from_seq=from_seq, to_seq=to_seq,
        kept=None if mirror is None else mirror.kept,
    )  # fmt: skip
    # The bundle's own JSON, byte for byte (envelopes must stay exactly as hashed).
    return cached(request, json.dumps(bundle.to_json(), separators=(",", ":")).encode(), immutable=False)


def _optional(event: StoredEvent) -> dict[str, Any]:
    """The members a tender event carries only when set: its v2 disclosure, the order that withheld it."""
    out: dict[str, Any] = {}
    if event.disclosure is not None:
        out["disclosure"] = event.parsed_disclosure
    if event.withheld_by is not None:
        out["withheld_by"] = event.withheld_by
    return out
