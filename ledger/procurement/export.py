"""Streamed OCDS 1.1 exports of the whole ledger: release packages, record packages, CSV.

Everything here is a generator of text chunks read from the database a page at a time (keyset
pagination, :data:`PAGE` events or tenders per query), so an export of any size runs in
constant memory and the first bytes leave before the last rows are read.

- :func:`release_package`: every tender's releases (imported releases exactly as they were
  imported; natively recorded events as :func:`ocds.release` makes them), optionally of one
  ``ocid`` and within a date range (the release ``date``: for native events, when they were
  recorded);
- :func:`record_package`: one record per tender with its releases, the compiled release and the
  versioned release (ocdsmerge, the shipped schema's merge rules);
- :func:`csv_rows` with :data:`CSV_COLUMNS`: flat tables of tenders, awards and contracts, one row
  per tender / award / contract of the compiled releases.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, Row, Select, func, select

from ledger.core.envelope import format_timestamp
from ledger.core.errors import InvalidArgumentError
from ledger.store.db import read_transaction
from ledger.store.reader import EVENT_COLUMNS, EVENTS_FROM, stored_event
from ledger.store.schema import events, ocds_releases, tenders

from . import ocds
from .officers import RESERVED_OCIDS

#: Rows per query (events for releases, tenders for records and CSV).
PAGE = 500
Table = Literal["tenders", "awards", "contracts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Package:
    """The metadata of an exported package."""

    uri: str
    published_date: datetime
    publisher: str

    def head(self) -> str:
        meta = {
            "uri": self.uri,
            "version": ocds.OCDS_VERSION,
            "publishedDate": format_timestamp(self.published_date),
            "publisher": {"name": self.publisher},
        }
        return json.dumps(meta, separators=(",", ":"), ensure_ascii=False)[:-1]


def _release_rows(*columns: Any) -> Select[Any]:
    """Events (with ``columns`` first) and what makes each an OCDS release: an imported event's
    payload is its release as published (``imported`` not null), a native one is built from it."""
    return select(*columns, *EVENT_COLUMNS, ocds_releases.c.event_id.label("imported")).select_from(
        EVENTS_FROM.outerjoin(ocds_releases, ocds_releases.c.event_id == events.c.id)
    )


def _as_release(row: Row[Any]) -> dict[str, Any]:
    """The OCDS release of one row of :func:`_release_rows`."""
    event = stored_event(row)
    payload, problem = event.readable_payload
    if problem is not None:  # stored before input was bounded, too deep to read: said in its place
        return ocds.unreadable_release(event, problem)
    if row.imported is not None:
        return payload  # type: ignore[no-any-return]
    return ocds.release(
        ocid=event.ocid,
        seq=event.seq,
        event_type=event.type,
        date=event.parsed_envelope.recorded_at,
        payload=payload,
    )


def iter_releases(
    engine: Engine,
    *,
    ocid: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    among: Select[tuple[str]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every tender event as an OCDS release, in recording order; filters as :func:`release_package`."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidArgumentError(name, "needs a timezone-aware date and time")
    date = func.coalesce(ocds_releases.c.release_date, events.c.recorded_at)
    query = _release_rows(events.c.id).where(events.c.ocid.not_in(RESERVED_OCIDS)).order_by(events.c.id).limit(PAGE)
    if ocid is not None:
        query = query.where(events.c.ocid == ocid)
    if among is not None:
        query = query.where(events.c.ocid.in_(among))
    if since is not None:
        query = query.where(date >= since.astimezone(UTC))
    if until is not None:
        query = query.where(date <= until.astimezone(UTC))
    last = 0
    while True:
        with read_transaction(engine) as conn:
            rows = conn.execute(query.where(events.c.id > last)).all()
        for row in rows:
            yield _as_release(row)
        if len(rows) < PAGE:
            return
        last = rows[-1].id


def release_package(
    engine: Engine,
    package: Package,
    *,
    ocid: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    among: Select[tuple[str]] | None = None,
) -> Iterator[str]:
    """An OCDS 1.1 release package, as JSON text chunks: the releases of every tender (or of
    ``ocid``, or of the ocids ``among`` selects: a search's results) whose date is within
    ``since`` .. ``until`` (inclusive, aware)."""
    releases = iter_releases(engine, ocid=ocid, since=since, until=until, among=among)
    first = next(releases, None)  # argument errors surface before any byte is sent
    yield package.head() + ',"releases":['
    if first is not None:
        yield json.dumps(first, separators=(",", ":"), ensure_ascii=False)
    for release in releases:
        yield "," + json.dumps(release, separators=(",", ":"), ensure_ascii=False)
    yield "]}"


def iter_tenders(
    engine: Engine, *, ocid: str | None = None, among: Select[tuple[str]] | None = None
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each tender (or just ``ocid``, or those ``among`` selects) with its releases, in ocid order,
    :data:`PAGE` tenders per query."""
    last = ""
    while True:
        query = select(tenders.c.ocid).where(tenders.c.ocid.not_in(RESERVED_OCIDS), tenders.c.event_count > 0)
        if ocid is not None:
            query = query.where(tenders.c.ocid == ocid)
        if among is not None:
            query = query.where(tenders.c.ocid.in_(among))
        with read_transaction(engine) as conn:
            ocids = list(
                conn.execute(query.where(tenders.c.ocid > last).order_by(tenders.c.ocid).limit(PAGE)).scalars()
            )
            rows = conn.execute(
                _release_rows().where(events.c.ocid.in_(ocids)).order_by(events.c.ocid, events.c.seq)
            ).all()
        grouped: dict[str, list[dict[str, Any]]] = {o: [] for o in ocids}
        for row in rows:
            grouped[row.ocid].append(_as_release(row))
        yield from grouped.items()
        if len(ocids) < PAGE:
            return
        last = ocids[-1]


def record(ocid: str, releases: list[dict[str, Any]]) -> dict[str, Any]:
    """The OCDS record of one tender: releases, compiled release and versioned release."""
    merger = ocds.merger()
    return {
        "ocid": ocid,
        "releases": releases,
        "compiledRelease": ocds.compiled_release(releases, using=merger),
        "versionedRelease": merger.create_versioned_release(json.loads(json.dumps(releases))),
    }


def record_package(
    engine: Engine, package: Package, *, ocid: str | None = None, among: Select[tuple[str]] | None = None
) -> Iterator[str]:
    """An OCDS 1.1 record package of every tender (or of ``ocid``, or of those ``among`` selects),
    as JSON text chunks."""
    yield package.head() + ',"records":['
    for i, (tender_ocid, releases) in enumerate(iter_tenders(engine, ocid=ocid, among=among)):
        text = json.dumps(record(tender_ocid, releases), separators=(",", ":"), ensure_ascii=False)
        yield text if i == 0 else "," + text
    yield "]}"


#: The columns of each CSV table.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "tenders": (
        "ocid",
        "tender_id",
        "title",
        "status",
        "buyer_id",
        "buyer_name",
        "procurement_method",
        "value_amount",
        "value_currency",
        "tender_start",
        "tender_end",
        "number_of_tenderers",
        "awards",
        "contracts",
    ),
    "awards": (
        "ocid",
        "award_id",
        "title",
        "status",
        "date",
        "value_amount",
        "value_currency",
        "supplier_ids",
        "supplier_names",
    ),
    "contracts": (
        "ocid",
        "contract_id",
        "award_id",
        "title",
        "status",
        "date_signed",
        "value_amount",
        "value_currency",
        "amendments",
        "paid_amount",
    ),
}


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _list(obj: Any) -> list[dict[str, Any]]:
    return [o for o in obj if isinstance(o, dict)] if isinstance(obj, list) else []


def _joined(parties: list[dict[str, Any]], key: str) -> str:
    return "; ".join(str(p.get(key) or "") for p in parties)


def flatten(table: Table, ocid: str, compiled: dict[str, Any]) -> Iterator[list[Any]]:
    """The CSV rows of one compiled release in ``table`` (columns :data:`CSV_COLUMNS`)."""
    tender = _get(compiled, "tender") or {}
    if table == "tenders":
        buyer = _get(compiled, "buyer") or {}
        yield [
            ocid,
            _get(tender, "id"),
            _get(tender, "title"),
            _get(tender, "status"),
            _get(buyer, "id"),
            _get(buyer, "name"),
            _get(tender, "procurementMethod"),
            _get(tender, "value", "amount"),
            _get(tender, "value", "currency"),
            _get(tender, "tenderPeriod", "startDate"),
            _get(tender, "tenderPeriod", "endDate"),
            _get(tender, "numberOfTenderers"),
            len(_list(compiled.get("awards"))),
            len(_list(compiled.get("contracts"))),
        ]
    elif table == "awards":
        for award in _list(compiled.get("awards")):
            suppliers = _list(award.get("suppliers"))
            yield [
                ocid,
                award.get("id"),
                award.get("title"),
                award.get("status"),
                award.get("date"),
                _get(award, "value", "amount"),
                _get(award, "value", "currency"),
                _joined(suppliers, "id"),
                _joined(suppliers, "name"),
            ]
    else:
        for contract in _list(compiled.get("contracts")):
            paid = [_get(t, "value", "amount") for t in _list(_get(contract, "implementation", "transactions"))]
            yield [
                ocid,
                contract.get("id"),
                contract.get("awardID"),
                contract.get("title"),
                contract.get("status"),
                contract.get("dateSigned"),
                _get(contract, "value", "amount"),
                _get(contract, "value", "currency"),
                len(_list(contract.get("amendments"))),
                sum(p for p in paid if isinstance(p, int | float)) if paid else None,
            ]


def csv_rows(
    engine: Engine, table: Table, *, ocid: str | None = None, among: Select[tuple[str]] | None = None
) -> Iterator[str]:
    """The CSV flattening ``table`` of every tender's compiled release (or of those ``among``
    selects: a search's results), header first, as text chunks."""
    if table not in CSV_COLUMNS:
        raise InvalidArgumentError("table", f"must be one of {', '.join(CSV_COLUMNS)}, got {table!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS[table])
    merger = ocds.merger()
    for tender_ocid, releases in iter_tenders(engine, ocid=ocid, among=among):
        compiled = ocds.compiled_release(releases, using=merger)
        writer.writerows(flatten(table, tender_ocid, compiled))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
