"""Open data in OCDS 1.1: streamed exports of the whole ledger, red flags, and the admin import.

Exports are streamed (``StreamingResponse``, constant memory whatever the ledger's size); the
import reads the request body into a spooled temporary file (memory-bounded) and records it with
:func:`ledger.procurement.importer.import_files`, like ``tenderproof import``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Select

from ledger.core.envelope import check_ocid
from ledger.procurement import cardinal, export, importer, profiles, query, redflags

from ..auth import AdminDep
from ..deps import ClockDep, LogDep, ReadLogDep, SettingsDep
from ..errors import NOT_FOUND_RESPONSES
from .tenders import FiltersDep, Moment, Ocid, _moment
from .writes import WRITE_RESPONSES

router = APIRouter(tags=["open data"])

OcidFilter = Annotated[str | None, Query(max_length=256, description="Only this contracting process (an OCDS ocid).")]
_SPOOL = 8 * 1024 * 1024  # request bytes kept in memory before the spool moves to disk


def _ocid_filter(ocid: str | None) -> str | None:
    return None if ocid is None else check_ocid(ocid, field="query.ocid")


def _stream(chunks: Iterator[str], media_type: str, filename: str) -> StreamingResponse:
    encoded = (chunk.encode() for chunk in chunks)
    return StreamingResponse(
        encoded, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _package(request: Request, settings: Any, clock: Any) -> export.Package:
    return export.Package(uri=str(request.url), published_date=clock(), publisher=settings.origin)


_JSON_STREAM: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {"schema": {"type": "object"}}}}}


@router.get(
    "/export/releases",
    summary="Every release, as one OCDS 1.1 release package (streamed)",
    response_class=StreamingResponse,
    responses=_JSON_STREAM,
)
def export_releases(
    request: Request,
    log: ReadLogDep,
    settings: SettingsDep,
    clock: ClockDep,
    filters: FiltersDep,
    ocid: OcidFilter = None,
    since: Annotated[str | None, Moment] = None,
    until: Annotated[str | None, Moment] = None,
) -> StreamingResponse:
    """The releases of every tender (imported releases exactly as imported, recorded events as
    their OCDS releases), in recording order; `ocid` keeps one tender, `since` / `until`
    (inclusive) filter on the release date, and the search filters of `GET /tenders` (`q`,
    `status`, `flag`...) keep the tenders that search finds."""
    chunks = export.release_package(
        log.engine,
        _package(request, settings, clock),
        ocid=_ocid_filter(ocid),
        since=_moment(since, "since", end=False),
        until=_moment(until, "until", end=True),
        among=_among(log, filters),
    )
    return _stream(chunks, "application/json", "releases.json")


@router.get(
    "/export/records",
    summary="Every tender's OCDS 1.1 record, as one record package (streamed)",
    response_class=StreamingResponse,
    responses=_JSON_STREAM,
)
def export_records(
    request: Request,
    log: ReadLogDep,
    settings: SettingsDep,
    clock: ClockDep,
    filters: FiltersDep,
    ocid: OcidFilter = None,
) -> StreamingResponse:
    """One record per tender: its releases, the compiled release and the versioned release (OCDS
    merge rules, by the ocdsmerge library). The search filters of `GET /tenders` keep the tenders
    that search finds."""
    chunks = export.record_package(
        log.engine, _package(request, settings, clock), ocid=_ocid_filter(ocid), among=_among(log, filters)
    )
    return _stream(chunks, "application/json", "records.json")


_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


def _among(log: Any, filters: query.Filters) -> Select[tuple[str]] | None:
    """The ocids a search keeps, or None when no search filter is given (every tender)."""
    return None if filters == query.Filters() else query.matching_ocids(log.engine, filters)


def _csv(log: Any, table: export.Table, filters: query.Filters) -> StreamingResponse:
    chunks = export.csv_rows(log.engine, table, among=_among(log, filters))
    return _stream(chunks, "text/csv; charset=utf-8", f"{table}.csv")


@router.get(
    "/export/tenders.csv", summary="Tenders, one CSV row each", response_class=StreamingResponse, responses=_CSV
)
def export_tenders_csv(log: ReadLogDep, filters: FiltersDep) -> StreamingResponse:
    """One row per tender of its compiled release: id, title, status, buyer, method, value, period
    (the tenders the search filters of `GET /tenders` keep, when given)."""
    return _csv(log, "tenders", filters)


@router.get("/export/awards.csv", summary="Awards, one CSV row each", response_class=StreamingResponse, responses=_CSV)
def export_awards_csv(log: ReadLogDep, filters: FiltersDep) -> StreamingResponse:
    """One row per award of every compiled release: id, status, date, value, suppliers (of the
    tenders the search filters of `GET /tenders` keep, when given)."""
    return _csv(log, "awards", filters)


@router.get(
    "/export/contracts.csv", summary="Contracts, one CSV row each", response_class=StreamingResponse, responses=_CSV
)
def export_contracts_csv(log: ReadLogDep, filters: FiltersDep) -> StreamingResponse:
    """One row per contract of every compiled release: id, award, status, signature date, value,
    number of amendments, amount paid (of the tenders the search filters of `GET /tenders` keep,
    when given)."""
    return _csv(log, "contracts", filters)


class RedFlagCount(BaseModel):
    code: str
    title: str
    description: str
    count: int = Field(description="Tenders raising it.")


class OrganisationFlagCount(BaseModel):
    role: Literal["buyer", "procuring_entity", "tenderer"]
    code: str
    title: str
    description: str
    count: int = Field(description="Organisations raising it in this role.")


class RedFlagSummary(BaseModel):
    tenders: int = Field(description="Tenders in the ledger.")
    flags: list[RedFlagCount]
    organisations: list[OrganisationFlagCount] = Field(
        description="Cardinal's indicators raised by buyers, procuring entities and tenderers (as of the last refresh)."
    )
    note: str = Field(description="A red flag is a reason to look closer, not proof of wrongdoing.")


class RaisedRedFlag(BaseModel):
    code: str
    title: str
    description: str
    evidence: dict[str, Any] = Field(description="The figures the flag was computed from.")


class OrganisationRedFlag(RaisedRedFlag):
    role: Literal["buyer", "procuring_entity", "tenderer"]
    organisation: str = Field(description="The organisation's key: scheme/id, an org-id, or name:<normalised name>.")
    name: str | None = Field(None, description="Its name in this tender (tender pages only).")
    through_event: int = Field(description="The greatest event id the computation read.")
    computed_at: str = Field(description="When the ledger-wide indicators were last computed (RFC 3339).")


class TenderRedFlags(BaseModel):
    ocid: str
    flags: list[RaisedRedFlag]
    parties: list[OrganisationRedFlag] = Field(
        description="The flags of this tender's buyer, procuring entity, tenderers and suppliers, in their roles here."
    )
    note: str = Field(description="A red flag is a reason to look closer, not proof of wrongdoing.")


class OrganisationRedFlags(BaseModel):
    organisation: str
    flags: list[OrganisationRedFlag]
    note: str = Field(description="A red flag is a reason to look closer, not proof of wrongdoing.")


OrganisationKey = Annotated[
    str,
    Query(
        min_length=1,
        max_length=1024,
        description="The organisation's key (scheme/id such as GB-COH/09506232, an org-id, or name:<normalised name>).",
    ),
]
RoleFilter = Annotated[
    Literal["buyer", "procuring_entity", "tenderer"] | None, Query(description="Only the flags of this role.")
]


def _organisation_flag(raised: dict[str, Any]) -> OrganisationRedFlag:
    title = redflags.LEDGER_TITLES[raised["code"]]
    return OrganisationRedFlag(
        code=raised["code"],
        title=title,
        description=cardinal.EXPLANATIONS[raised["code"]][0],
        evidence=raised["evidence"],
        role=raised["role"],
        organisation=raised["organisation"],
        name=raised.get("name"),
        through_event=raised["through_event"],
        computed_at=raised["computed_at"],
    )


def _evidence_download(document: dict[str, Any], subject: str) -> Response:
    """The document as a JSON attachment named after its subject (ASCII letters, digits, - _ . only:
    a header carries it)."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in subject)[:100]
    filename = f"redflags-{safe}.json"
    body = json.dumps(document, ensure_ascii=False, indent=2).encode()
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/redflags", response_model=RedFlagSummary, summary="Red flags across every tender")
def get_redflags(log: ReadLogDep) -> RedFlagSummary:
    """The catalogue of integrity indicators (named after the Open Contracting Partnership's
    red-flags guide) with the number of tenders raising each."""
    counts = redflags.flag_counts(log.engine)
    by_role = redflags.organisation_flag_counts(log.engine)
    return RedFlagSummary(
        tenders=query.count_tenders(log.engine),
        flags=[
            RedFlagCount(code=f.code, title=f.title, description=f.description, count=counts[f.code])
            for f in redflags.FLAGS
        ],
        organisations=[
            OrganisationFlagCount(
                role=role,  # type: ignore[arg-type]
                code=f.code,
                title=f.title,
                description=f.description,
                count=by_role[role][f.code],
            )
            for role in cardinal.ROLES
            for f in redflags.ORGANISATION_FLAGS
        ],
        note=cardinal.NOT_PROOF[0],
    )


@router.get(
    "/tenders/{ocid}/redflags",
    response_model=TenderRedFlags,
    summary="The red flags one tender raises",
    responses=NOT_FOUND_RESPONSES,
)
def get_tender_redflags(log: ReadLogDep, ocid: Ocid) -> TenderRedFlags:
    """Each indicator the tender raises, with its evidence; 404 for an unknown tender."""
    check_ocid(ocid, field="path.ocid")
    query.tender_summary(log.engine, ocid)  # NotFoundError for an unknown tender
    catalogue = {f.code: f for f in redflags.FLAGS}
    return TenderRedFlags(
        ocid=ocid,
        flags=[
            RaisedRedFlag(
                code=raised["code"],
                title=catalogue[raised["code"]].title,
                description=catalogue[raised["code"]].description,
                evidence=raised["evidence"],
            )
            for raised in redflags.tender_flags(log.engine, ocid)
        ],
        parties=[_organisation_flag(raised) for raised in redflags.tender_party_flags(log.engine, ocid)],
        note=cardinal.NOT_PROOF[0],
    )


@router.get(
    "/tenders/{ocid}/redflags/evidence",
    summary="The evidence of one tender's red flags, as a JSON download",
    response_class=Response,
    responses={**NOT_FOUND_RESPONSES, **_JSON_STREAM},
)
def get_tender_redflag_evidence(log: ReadLogDep, ocid: Ocid) -> Response:
    """Every flag the tender raises with its evidence (fields read, thresholds or fences, rule
    version, the settings' digest), the deployment's thresholds and the log indices of the
    tender's entries: what anyone needs to recompute the flags from the log."""
    check_ocid(ocid, field="path.ocid")
    query.tender_summary(log.engine, ocid)  # NotFoundError for an unknown tender
    document = redflags.evidence_document(log.engine, ocid=ocid)
    return _evidence_download(document, ocid)


@router.get("/organisations/redflags", response_model=OrganisationRedFlags, summary="One organisation's red flags")
def get_organisation_redflags(log: ReadLogDep, key: OrganisationKey, role: RoleFilter = None) -> OrganisationRedFlags:
    """Cardinal's indicators an organisation raises as a buyer, procuring entity or tenderer
    (R025, R038, R044, R048, R055), as of the last computation over the whole ledger; an
    organisation that raises none has an empty list."""
    return OrganisationRedFlags(
        organisation=key,
        flags=[_organisation_flag(raised) for raised in redflags.organisation_flags(log.engine, key, role=role)],
        note=cardinal.NOT_PROOF[0],
    )


@router.get(
    "/organisations/redflags/evidence",
    summary="The evidence of one organisation's red flags, as a JSON download",
    response_class=Response,
    responses=_JSON_STREAM,
)
def get_organisation_redflag_evidence(log: ReadLogDep, key: OrganisationKey) -> Response:
    """The organisation's flags with their evidence, the deployment's thresholds and the log
    indices of the entries of every tender the flags read."""
    document = redflags.evidence_document(log.engine, organisation=key)
    return _evidence_download(document, key)


class Amount(BaseModel):
    currency: str
    amount: float


class OrganisationTender(BaseModel):
    ocid: str
    title: str | None
    status: str
    roles: list[Literal["buyer", "procuring_entity", "tenderer", "supplier"]]
    value_amount: float | None = Field(description="The tender's estimated value, in ``currency``.")
    currency: str | None
    won: dict[str, float] = Field(description="What the organisation was awarded in this tender, per currency.")
    listed_at: str | None


class Competitor(BaseModel):
    key: str
    name: str
    tenders: int = Field(description="How many of the organisation's tenders it also bid in or won.")


class Organisation(BaseModel):
    key: str = Field(description="The organisation's key: scheme/id, an org-id, or name:<normalised name>.")
    name: str = Field(description="The name its tenders give it most often.")
    roles: dict[str, int] = Field(
        description="Role (buyer, procuring_entity, tenderer, supplier) -> its tenders in it."
    )
    won: list[Amount] = Field(description="As supplier: awarded per currency (never summed across currencies).")
    bought: list[Amount] = Field(description="As buyer: its tenders' live awards per currency.")
    tenders: list[OrganisationTender] = Field(description=f"Its latest {profiles.TENDERS_SHOWN} tenders, newest first.")
    competitors: list[Competitor] = Field(description="The companies it bid against, most often met first.")
    flags: list[OrganisationRedFlag]
    note: str = Field(description="A red flag is a reason to look closer, not proof of wrongdoing.")
    next_before: str | None = Field(
        None, description="Pass as `before` for its next (older) tenders; null when these are its oldest."
    )


@router.get(
    "/organisations", response_model=Organisation, summary="One buyer or supplier", responses=NOT_FOUND_RESPONSES
)
def get_organisation(
    log: ReadLogDep,
    key: OrganisationKey,
    before: Annotated[
        str | None,
        Query(max_length=2048, description="A previous answer's next_before: its next (older) tenders."),
    ] = None,
) -> Organisation:
    """An organisation across the ledger (its buyer and supplier page): its tenders in each role,
    what it won and bought per currency, the companies it bid against and its red flags; 404 when
    no tender names it, 422 naming `before` when it is not a cursor this route returned."""
    found = profiles.organisation_profile(log.engine, key, before=before).to_json()
    return Organisation(
        **{**found, "flags": [_organisation_flag(f) for f in found["flags"]], "note": cardinal.NOT_PROOF[0]}
    )


class ImportProblem(BaseModel):
    file: str
    ocid: str = Field("", description="The release's ocid ('' when it has none).")
    release: str = Field(description="The release's id, or its position when it has none.")
    path: str = Field(description="JSON path inside the release.")
    reason: str
    recorded: bool = Field(False, description="A data-quality note of a release recorded anyway (default mode).")


class ImportFile(BaseModel):
    file: str
    encoding: str = Field(description="The text encoding the file was read in.")
    how: Literal["forced", "bom", "detected", "default"]
    gzip: bool
    format: Literal["json", "jsonl"]


class ImportReport(BaseModel):
    read: int = Field(description="Releases read.")
    imported: int = Field(description="Releases recorded as new events.")
    duplicates: int = Field(description="Releases already imported before (skipped).")
    invalid: int = Field(description="Problems found (releases skipped).")
    tenders: int = Field(description="Tenders that received releases.")
    noted: int = Field(0, description="Schema problems of releases recorded with them (data-quality notes).")
    noted_releases: int = Field(0, description="Releases recorded with data-quality notes.")
    files: list[ImportFile] = []
    personal_data: dict[str, int] = Field(
        default_factory=dict, description="Fields of the imported releases holding personal data, per privacy rule."
    )
    problems: list[ImportProblem]
    notes: list[ImportProblem] = []


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "description": "An OCDS 1.1 release package."}},
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "JSON Lines: a release package or a release per line."}
            },
        },
    }
}


@router.post(
    "/import",
    response_model=ImportReport,
    summary="Import OCDS 1.1 release packages (administrators)",
    responses=WRITE_RESPONSES,
    openapi_extra=_IMPORT_BODY,
)
async def post_import(
    request: Request,
    log: LogDep,
    clock: ClockDep,
    _admin: AdminDep,
    strict: Annotated[
        bool, Query(description="Refuse the whole body (nothing recorded) if any release is invalid.")
    ] = False,
    format: Annotated[
        Literal["auto", "json", "jsonl"],
        Query(description="auto: JSON Lines for an application/x-ndjson or application/jsonl body, else JSON."),
    ] = "auto",
    encoding: Annotated[
        str | None, Query(description="The body's text encoding (e.g. iso-8859-1); default: detected.")
    ] = None,
) -> ImportReport:
    """Each release of the body becomes an event of its tender, the release itself the payload
    (see `tenderproof import`). Invalid releases are reported one by one and skipped; with
    `strict`, any problem refuses the whole body (422, every problem in `details`). A body from
    which nothing could be imported is refused the same way. Releases imported before are
    counted as duplicates and recorded nothing."""
    if format == "auto":
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        format = "jsonl" if kind in ("application/x-ndjson", "application/jsonl", "application/jsonlines") else "json"
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as body:
        async for chunk in request.stream():
            body.write(chunk)
        body.seek(0)
        report = await run_in_threadpool(
            importer.import_files,
            log,
            [("body", body)],
            now=clock(),
            fmt=format,
            strict=strict,
            encoding=encoding,
        )
    if report.problems and report.imported == 0 and report.duplicates == 0:
        raise importer.ImportRefusedError(report.problems, report.invalid)
    return ImportReport.model_validate(report.to_json())
