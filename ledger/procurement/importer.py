"""Importing OCDS 1.1 release packages: each release becomes one event of its tender (``ocid``).

**The release is the payload.** An imported release is recorded as it was published, byte for
byte as JSON values (its RFC 8785 bytes are hashed into the envelope), so nothing of the source
is lost and an export gives it back unchanged. The event's type is derived from the release's
``tag`` (:data:`TAG_EVENTS`; with several tags, the latest stage of the process wins).

**Imported tenders are outside the rules.** A published release is someone else's record of what
happened, often out of the order :mod:`rules` expects and with fields the payload models don't
know (extensions). So imported releases are validated against the OCDS 1.1 release schema that
ships with the project (``schema/release-schema.json``, what the release-package schema's
``releases`` items refer to; package metadata is not kept: exports make their own packages), plus
what the log itself requires (an ``ocid`` of the OCDS form, a ``date`` with its offset, a ``tag``
that maps to an event type, JSON that RFC 8785 can encode). A tender is either imported or
recorded natively, never both: releases for a natively recorded tender are refused, and
:func:`rules.apply` refuses native events for an imported tender (``TenderState.imported``).

**Projection.** In the transaction that appends a batch, each tender the batch touches is compiled
(ocdsmerge, the shipped schema's merge rules) from all its imported releases, and its search row
(``tender_index``: title, buyer, status, value, dates, suppliers) and red flags are rewritten from
the compiled release.

**Pipeline.** A thread reads: a release package's releases and JSON Lines' lines are cut into
their bytes, not parsed (:func:`sources.package_slices`, :func:`sources.line_slices`); other
shapes are parsed there. The parsing of the bytes and the checking of each batch (:func:`_check`:
schema, RFC 8785 and the hash of each release, privacy marks, and the rows of each tender as if
it were new to the log) run in that thread or, from the second batch on, in a pool of worker
processes (``workers``), batches handed back in the order read, each release without its body
(parsed again here from its bytes, for the tenders merged here alone: :func:`_attach`); this
thread records (:func:`_record_batch`), one insert per table (:func:`db.insert_many`). What is
recorded does not depend on where the parsing and checking ran.

**Idempotency.** ``ocds_releases`` keeps (ocid, release id, payload hash) of every imported
release: a release imported again (the same file twice, across restarts) is skipped and counted as
a duplicate; the same id with different content is a problem of that release.

**Errors.** Every invalid release is a :class:`Problem` (file, release id or position, JSON path,
reason). By default it is skipped and the others are imported, batch after batch, each batch
committed on its own; with ``strict=True`` the whole import runs in ONE transaction and any
problem rolls it back (:class:`ImportRefusedError`, carrying every problem found): nothing is
written. A file that is not valid JSON stops where the parser fails (JSON Lines: only that line).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import json
import multiprocessing
import os
import queue
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from operator import attrgetter
from typing import IO, Any, Literal

import ijson
import jsonschema_rs
from sqlalchemy import Connection, Engine, distinct, func, select, text

from ledger import sequencer
from ledger.core import commitment, jsonsafe
from ledger.core.canonical import canonical_json_bytes
from ledger.core.envelope import check_ocid, format_timestamp
from ledger.core.errors import FormatError, InvalidArgumentError, LedgerError
from ledger.core.jsonsafe import nests_within, value_depth
from ledger.log import Log
from ledger.store import keys
from ledger.store.db import insert_many, replace_sparing_indexes, write_transaction
from ledger.store.reader import MAX_STORED_DEPTH
from ledger.store.schema import events, log_entries, ocds_compiled, ocds_releases, payloads, tender_index
from ledger.submission import Submission

from . import ocds, privacy, redflags, rules, sources
from .officers import RESERVED_OCIDS
from .record import awarded_rows, projection, store_awarded_rows

Format = Literal["auto", "json", "jsonl"]
#: Releases appended per batch (one INSERT ... per table and one commit per batch: at 500 the commits
#: cost ~4% more of the import; the batch in memory is a few MB).
BATCH = 2000
#: Problems kept for the report (all are counted): a file of bad releases stays in bounded memory.
MAX_PROBLEMS = 10_000
#: Deepest nesting of a release recorded (OCDS releases nest about 8 levels; the HTTP bound is 32).
MAX_RELEASE_DEPTH = 32
#: Schema problems kept per release (a release breaking the schema everywhere stays small).
MAX_NOTES = 20
#: Processes reading the ledger for its ledger-wide flags at the end of an import: 1, this one
#: (``tenderproof redflags refresh --workers N`` shares a large ledger's pass between processes).
LEDGER_FLAG_WORKERS = 1

#: OCDS releaseTag -> event type, in the order of a contracting process's stages.
TAG_EVENTS: dict[str, str] = {
    "planning": "tender.planned",
    "planningUpdate": "tender.planned",
    "tender": "tender.published",
    "tenderAmendment": "tender.amended",
    "tenderUpdate": "tender.clarified",
    "tenderCancellation": "tender.cancelled",
    "award": "award.issued",
    "awardUpdate": "award.challenged",
    "awardCancellation": "award.challenged",
    "contract": "contract.signed",
    "contractUpdate": "contract.amended",
    "contractAmendment": "contract.amended",
    "implementation": "contract.payment",
    "implementationUpdate": "contract.payment",
    "contractTermination": "contract.completed",
}
_STAGE = {tag: i for i, tag in enumerate(TAG_EVENTS)}
#: OCDS tender.status codes: kept as OCDS has them (rules.STATUSES).
_STATUS = frozenset({"planning", "planned", "active", "cancelled", "unsuccessful", "complete", "withdrawn"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A release that cannot be imported (or a place where the file cannot be read), or a schema
    problem of a release that was recorded with it (a data-quality note, ``recorded``)."""

    file: str
    #: The release's ocid when it has one ("" else).
    ocid: str = ""
    #: The release's id when it has one, else its position ("release #3", "line 7").
    release: str
    #: JSON path inside the release ("$" for the release itself, "tender.value.amount"...).
    path: str
    reason: str
    #: True for a note of a release that was recorded anyway (default mode).
    recorded: bool = False

    def __str__(self) -> str:
        where = f"{self.ocid} {self.release}" if self.ocid else self.release
        return f"{self.file}: {where}: {self.path}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ocid": self.ocid,
            "release": self.release,
            "path": self.path,
            "reason": self.reason,
            "recorded": self.recorded,
        }


@dataclass(slots=True)
class Report:
    """What an import did."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    #: Tenders that received imported releases (counted in the database at the end: no set of
    #: ocids grows in memory with the file).
    tenders: int = 0
    #: The problems found, the first :data:`MAX_PROBLEMS` of them (``invalid`` counts them all).
    problems: list[Problem] = field(default_factory=list)
    invalid: int = 0
    #: Schema problems of releases recorded with them (default mode): the first
    #: :data:`MAX_PROBLEMS`; ``noted`` counts them all, ``noted_releases`` the releases they are of.
    notes: list[Problem] = field(default_factory=list)
    noted: int = 0
    noted_releases: int = 0
    #: Per file: the encoding read, how it was chosen, gzip or not, and the file's shape.
    files: list[dict[str, Any]] = field(default_factory=list)
    #: Fields holding personal data (docs/privacy.md) in the releases imported, per rule.
    personal_data: dict[str, int] = field(default_factory=dict)
    #: The event ids this import recorded span first..last (None before the first).
    first_event: int | None = None
    last_event: int | None = None

    def add(self, problem: Problem) -> None:
        self.invalid += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def note(self, problem: Problem) -> None:
        self.noted += 1
        if len(self.notes) < MAX_PROBLEMS:
            self.notes.append(problem)

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "tenders": self.tenders,
            "noted": self.noted,
            "noted_releases": self.noted_releases,
            "files": self.files,
            "personal_data": dict(sorted(self.personal_data.items())),
            "problems": [p.to_json() for p in self.problems],
            "notes": [p.to_json() for p in self.notes],
        }


class ImportRefusedError(InvalidArgumentError):
    """A strict import found problems: nothing was written. ``problems`` lists them (the first
    :data:`MAX_PROBLEMS`), ``count`` says how many there were."""

    def __init__(self, problems: Sequence[Problem], count: int | None = None) -> None:
        first = problems[0]
        self.count = len(problems) if count is None else count
        more = f" (and {self.count - 1} more)" if self.count > 1 else ""
        super().__init__(first.path, f"{first.file}: {first.release}: {first.reason}{more}; nothing was imported")
        self.problems = list(problems)


def _pickled_by_fields(cls: type[Any]) -> type[Any]:
    """Pickle instances of a slots dataclass as its constructor and its fields' values in order
    (checked batches cross from a worker process: the dataclass's own ``__getstate__`` and
    ``__setstate__`` look its fields up again for every instance, twice the cost)."""
    assert len(cls.__slots__) > 1  # attrgetter of one name gives the value, not a tuple
    values = attrgetter(*cls.__slots__)
    setattr(cls, "__reduce__", lambda self: (cls, values(self)))  # noqa: B010 (a class of any shape)
    return cls


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class _Read:
    """One value read from a file: a release candidate, where it was found."""

    position: str
    value: Any


_VALIDATOR: list[Any] = []


def _validator() -> Any:
    if not _VALIDATOR:
        _VALIDATOR.append(jsonschema_rs.Draft4Validator(ocds.release_schema()))
    return _VALIDATOR[0]


def _path(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


# --- reading ---------------------------------------------------------------------------------


def detect_format(name: str, fmt: Format) -> Literal["json", "jsonl"]:
    if fmt != "auto":
        return fmt
    return "jsonl" if name.lower().endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")) else "json"


def read_releases(
    stream: IO[bytes],
    *,
    name: str,
    fmt: Format = "auto",
    encoding: str | None = None,
    opened: list[dict[str, Any]] | None = None,
    cut: int = 0,
) -> Iterator[_Read | Problem | sources.Slices]:
    """Stream the release candidates of one file, never holding more than one release (one
    record, or one JSON Lines line) in memory; with ``cut``, a release package's releases and
    JSON Lines' lines as :class:`sources.Slices` of at most ``cut`` values, cut but not parsed
    (:func:`_parsed` parses them where they are checked).

    The file may be gzip-compressed and in any text encoding (:func:`sources.open_utf8`;
    ``encoding`` forces one). ``json``: release packages, record packages, bare arrays, single
    releases or records, concatenated or not (:func:`sources.candidates`); ``jsonl``: one JSON
    value per line, each any of these. How the file was read is appended to ``opened``.

    Unreadable input is yielded as a :class:`Problem`: in ``json`` the parse stops there, in
    ``jsonl`` only that line is lost. A note about the file that refuses nothing (a record's
    embedded compiled release that is not its releases') is a Problem with ``recorded`` set.
    """
    try:
        source = sources.open_utf8(stream, encoding=encoding)
    except (sources.EncodingProblem, OSError, EOFError) as exc:
        yield Problem(file=name, release="file", path="$", reason=f"cannot be read: {_clean(exc)}")
        return
    kind = detect_format(name, fmt)
    if opened is not None:
        opened.append(
            {"file": name, "encoding": source.encoding, "how": source.how, "gzip": source.gzip, "format": kind}
        )
    tell = functools.partial(_tell, stream)
    if kind == "jsonl" and cut > 0:
        yield from sources.line_slices(source.stream, most=cut, tell=tell)
        return
    if kind == "jsonl":
        yield from _read_lines(source.stream, name)
        return
    count = seen = 0
    try:
        for item in sources.candidates(source.stream, most=cut, tell=tell):
            if isinstance(item, sources.Slices):
                seen += len(item)
                count += len(item)
                yield item
                continue
            seen += 1
            if isinstance(item, sources.Note):
                yield _from_note(name, item)
                continue
            count += 1
            yield _Read(item.position, item.value)
    except (ijson.JSONError, UnicodeDecodeError, sources.EncodingProblem, OSError, EOFError) as exc:
        yield _unreadable(name, count, exc, _tell(stream))
        return
    if seen == 0:
        yield Problem(
            file=name,
            release="file",
            path="$",
            reason="no releases found: expected OCDS releases (a release or record package, an array of "
            "releases, or releases one after the other)",
        )


def _unreadable(name: str, count: int, exc: Exception, read: int) -> Problem:
    """Where the parse of a JSON file stopped: after its ``count`` th release, ``read`` bytes in."""
    where = f" (the parser had read {read:,} bytes)" if read else ""
    hint = "; name the file's encoding with --encoding" if isinstance(exc, UnicodeDecodeError) else ""
    return Problem(
        file=name, release=f"after release #{count}", path="$", reason=f"invalid JSON: {_clean(exc)}{where}{hint}"
    )


def _from_note(name: str, note: sources.Note) -> Problem:
    return Problem(
        file=name, ocid=note.ocid, release=note.position, path=note.path, reason=note.reason, recorded=not note.fatal
    )


def _clean(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _read_lines(stream: IO[bytes], name: str) -> Iterator[_Read | Problem]:
    for number, line in enumerate(stream, 1):
        if line.strip():
            yield from (item for item, _ in _line(name, number, line))


def _line_value(line: bytes, number: int) -> Any:
    """One JSON Lines line parsed (a package wraps its releases in two levels). Raises FormatError."""
    return jsonsafe.loads(line, field=f"line {number}", max_depth=MAX_RELEASE_DEPTH + 2)


def _line(name: str, number: int, line: bytes) -> Iterator[tuple[_Read | Problem, bool]]:
    """What one JSON Lines line holds, each with whether it is the line's whole value."""
    try:
        value = _line_value(line, number)
    except FormatError as exc:
        yield Problem(file=name, release=f"line {number}", path="$", reason=f"invalid JSON: {_clean(exc)}"), False
        return
    for item in sources.expand(value, f"line {number}"):
        if isinstance(item, sources.Note):
            yield _from_note(name, item), False
        else:
            yield _Read(item.position, item.value), item.value is value


def _parsed(raw: _Batch) -> tuple[_Raw, list[int], bool]:
    """A batch as read (:func:`_raws`) with its :class:`sources.Slices` parsed: the batch of
    candidates and problems :func:`_check` takes; for each of its items, the index among the
    batch's values (its ``_Read`` items and slices, in order: :func:`_values`) of the value it
    is whole (-1: a part of one, or a problem); and whether the file breaks in the batch (a
    release that does not parse: the problem says where, and nothing after it is read)."""
    items: list[_Read | Problem] = []
    roots: list[int] = []
    texts: dict[int, bytes] = {}
    exact: set[int] = set()
    index = 0
    for item in raw.items:
        if isinstance(item, Problem):
            items.append(item)
            roots.append(-1)
            continue
        if isinstance(item, _Read):
            items.append(item)
            roots.append(index)
            index += 1
            continue
        for i in range(len(item)):
            number = item.number(i)
            data = item.value(i)
            if item.kind == "line":
                for found, whole in _line(raw.name, number, data):
                    if isinstance(found, _Read):
                        texts[len(items)] = data  # the line holds the release
                    items.append(found)
                    roots.append(index + i if whole else -1)
                continue
            try:
                value = sources.parse_value(data)
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                items.append(_unreadable(raw.name, number - 1, exc, item.read))
                roots.append(-1)
                return _Raw(raw.name, items, raw.position, texts, exact), roots, True
            texts[len(items)] = data
            exact.add(len(items))  # orjson's or ijson's: neither reads NaN, infinities or overflows
            items.append(_Read(f"release #{number}", value))
            roots.append(index + i)
        index += len(item)
    return _Raw(raw.name, items, raw.position, texts, exact), roots, False


def _values(raw: _Batch) -> Callable[[int], dict[str, Any]]:
    """The values of a batch as read, by their index as :func:`_parsed` counts them, parsed again
    here as the checking process parsed them."""
    starts: list[int] = []
    held: list[_Read | sources.Slices] = []
    count = 0
    for item in raw.items:
        if not isinstance(item, Problem):
            starts.append(count)
            held.append(item)
            count += 1 if isinstance(item, _Read) else len(item)

    def value(index: int) -> dict[str, Any]:
        at = bisect.bisect_right(starts, index) - 1
        item, i = held[at], index - starts[at]
        if isinstance(item, _Read):
            found = item.value
        elif item.kind == "line":
            found = _line_value(item.value(i), item.number(i))
        else:
            found = sources.parse_value(item.value(i))
        assert isinstance(found, dict)
        return found

    return value


# --- checking one release (no database) ----------------------------------------------------


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class _Release:
    ocid: str
    release_id: str
    date: datetime
    type: str
    body: dict[str, Any]
    data: bytes
    #: HMAC-SHA256 of ``data`` under the deployment's ``release_digest`` key (ledger.store.keys):
    #: what ``ocds_releases`` keeps to tell a repeat from a change ("" when checked without a key).
    digest: str
    #: Schema problems (JSON path, reason): recorded with the release in default mode.
    notes: tuple[tuple[str, str], ...] = ()
    #: The privacy rules that mark fields of it (:func:`privacy.places`), counted in the report.
    marks: tuple[str, ...] = ()
    #: Its envelope v2 binding (docs/spec.md §2.5): the salted commitment over the marked fields
    #: F, and the disclosure stored with it.
    commitment: str = ""
    disclosure: dict[str, Any] | None = None

    def without_body(self) -> _Release:
        """This release with an empty ``body`` (what a worker sends back: :func:`_attach`)."""
        return _Release(self.ocid, self.release_id, self.date, self.type, {}, self.data, self.digest, self.notes,
                        self.marks, self.commitment, self.disclosure)  # fmt: skip


def event_type(tags: Any) -> str:
    """The event type of a release's ``tag`` list. Raises :class:`InvalidArgumentError` (``tag``)."""
    if not isinstance(tags, list) or not tags:
        raise InvalidArgumentError("tag", f"must be a non-empty array of release tags, got {tags!r}")
    known = [t for t in tags if t in _STAGE]
    if not known:
        raise InvalidArgumentError(
            "tag",
            f"has no release tag that is an event ({', '.join(map(str, tags))}); "
            "'compiled' releases are not imported: import the releases they were compiled from",
        )
    return TAG_EVENTS[max(known, key=_STAGE.__getitem__)]


def check_release(
    value: Any,
    *,
    file: str,
    position: str,
    digest_key: bytes | None = None,
    seed: bytes | None = None,
    text: bytes | None = None,
    parsed: bool = False,
) -> _Release | Problem:
    """Check one release candidate; return it ready to record (with its schema problems as
    notes), or the problem that keeps it out of the log. ``digest_key``: the deployment's
    ``release_digest`` key (ledger.store.keys; the digest is left empty without one).
    ``text``: the JSON text ``value`` was parsed from (or one holding it, a JSON Lines line),
    when there is one: walks of the release it proves needless are skipped (the depth bound when
    it has too few brackets to nest that deep, the privacy marks' search for names it lacks).
    ``parsed``: ``value`` is what a strict JSON parser made (orjson, ijson: no NaN, no infinity,
    which JSON Lines' ``json`` fallback reads), so its RFC 8785 bytes may be orjson's
    (:func:`canonical.canonical_json_bytes`).

    What the log itself needs refuses a release: a JSON object with an ``ocid`` of the log's
    form, an ``id`` (a non-empty string), a ``date`` that is a date-time (one without its UTC
    offset is read as UTC, and noted), a ``tag`` with a stage of the process, JSON that RFC 8785
    can encode. Everything else the OCDS 1.1 release schema says is a note.
    """
    ocid_value = value.get("ocid") if isinstance(value, dict) else None
    release_id = value.get("id") if isinstance(value, dict) else None
    where = release_id if isinstance(release_id, str) and release_id else position

    def problem(path: str, reason: str) -> Problem:
        return Problem(
            file=file, ocid=ocid_value if isinstance(ocid_value, str) else "", release=where, path=path, reason=reason
        )

    if not isinstance(value, dict):
        return problem("$", f"a release must be a JSON object, got {type(value).__name__}")
    shallow = text is not None and nests_within(text, MAX_RELEASE_DEPTH)
    if not shallow and value_depth(value, stop_after=MAX_RELEASE_DEPTH) > MAX_RELEASE_DEPTH:  # before any recursion
        return problem("$", f"nested more than {MAX_RELEASE_DEPTH} levels deep: not a release this ledger records")
    for key in ("ocid", "id", "date", "tag"):
        if key not in value:
            return problem("$", f'"{key}" is a required property')
    notes = tuple(
        (_path(error.instance_path), _clean_message(error.message))
        for error in islice(_validator().iter_errors(value), MAX_NOTES)
    )
    if not isinstance(release_id, str) or not release_id:
        return problem("id", f"must be a non-empty string, got {release_id!r}")
    if len(release_id) > 256:
        return problem("id", f"is longer than 256 characters ({len(release_id)})")
    try:
        ocid = check_ocid(value["ocid"])
        if ocid in RESERVED_OCIDS:
            raise InvalidArgumentError("ocid", f"{ocid} is reserved for the log itself, not a tender")
        kind = event_type(value["tag"])
        found = privacy.places(kind, value, text=text)  # one walk: F, and the report's counts
        # the v2 commitment over F and the release's RFC 8785 bytes, from one encoding
        bound, disclosure, data = commitment.commit_encoded(
            value, privacy.committed_fields(found), seed=seed, parsed=parsed
        )
    except InvalidArgumentError as exc:
        if exc.field not in ("ocid", "tag"):
            try:  # a release RFC 8785 cannot encode is named as its whole encoding names it
                canonical_json_bytes(value, field="payload")
            except InvalidArgumentError as whole:
                exc = whole
        return problem(exc.field.removeprefix("payload.").removeprefix("payload") or "$", exc.reason)
    text = value["date"]
    date = ocds.parse_datetime(text)
    if date is None:
        return problem("date", f'{text!r} is not a "date-time" (RFC 3339)')
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
        if not any(path == "date" for path, _ in notes):
            notes += (("date", f"{text!r} has no UTC offset: read as UTC"),)
    marks = tuple(rule for _, rule in found)
    digest = "" if digest_key is None else keys.keyed_digest(digest_key, data)
    return _Release(ocid, release_id, date.astimezone(UTC), kind, value, data, digest, notes, marks, bound, disclosure)


def _clean_message(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."


# --- recording -------------------------------------------------------------------------------


Progress = Callable[[int, int], None]


def import_files(
    log: Log,
    sources: Iterable[tuple[str, IO[bytes]]],
    *,
    now: datetime,
    fmt: Format = "auto",
    strict: bool = False,
    encoding: str | None = None,
    batch: int = BATCH,
    workers: int = 0,
    progress: Progress | None = None,
) -> Report:
    """Import every release of ``sources`` (name, binary stream) into ``log``; return the report.

    ``encoding`` forces the files' text encoding (else detected, :func:`sources.open_utf8`).
    ``workers`` processes check the releases (schema, RFC 8785, hashes, compiled releases, rows)
    while this process parses and records, once the import is larger than one batch
    (:func:`default_workers` for a large import; 0: all in this process, a thread parsing and
    checking ahead of the writer). What is recorded is the same either way.
    ``progress(releases_read, bytes_read_of_current_file)`` is called after each batch. Raises
    :class:`ImportRefusedError` in strict mode if any problem (schema problems included) was
    found (nothing is written then), :class:`InvalidArgumentError` for a bad argument.
    """
    if now.tzinfo is None:
        raise InvalidArgumentError("now", "needs a timezone-aware datetime")
    if batch < 1:
        raise InvalidArgumentError("batch", f"must be >= 1, got {batch}")
    if workers < 0:
        raise InvalidArgumentError("workers", f"must be >= 0, got {workers}")
    report = Report()
    run = functools.partial(
        _run,
        log=log,
        sources=sources,
        report=report,
        now=now,
        fmt=fmt,
        strict=strict,
        encoding=encoding,
        batch=batch,
        workers=workers,
        progress=progress,
    )
    with _COLLECTOR.seldom(), _sqlite_room(log.engine):
        if strict:
            with write_transaction(log.engine) as conn:
                run(conn)
                if report.problems:
                    raise ImportRefusedError(report.problems, report.invalid)
                report.tenders = _count_tenders(conn, report)
        else:
            run(None)
            with log.engine.connect() as conn:
                report.tenders = _count_tenders(conn, report)
    if report.first_event is not None:
        # the flags whose fences come from the whole ledger (redflags.refresh_ledger_flags), read
        # in this process once the checking pool is gone (:func:`_ahead` joins it): a fresh
        # interpreter per partition (~70 MB each) would take the import's process tree past its
        # memory bound at its very end; one pass costs ~70 µs of CPU a tender
        redflags.refresh_ledger_flags(log.engine, now=now, workers=LEDGER_FLAG_WORKERS)
    return report


#: SQLite's page cache (KiB) on the connection that records an import (SQLite's default: 2,000).
#: A batch's inserts touch more pages of the tables and their indexes (FTS included) than the
#: default holds: it spilled dirty pages into the WAL in the middle of the transaction and read
#: the indexes' pages back from the file, each a system call (5.8 reads and 13.7 writes a release
#: at 100,000 releases, more as the file grows). At 16 MB the recording process's system CPU fell
#: from 37 to 22 µs a release (bench/RESULTS-import.md, t31p) for ~17 MB of the tree's memory.
IMPORT_CACHE_KIB = 16_384
#: WAL pages between automatic checkpoints while an import records (SQLite's default: 1,000):
#: a page that every batch changes (an index's upper levels) is copied into the database once a
#: checkpoint, so fewer checkpoints copy it fewer times; the WAL grows to ~40 MB between them.
IMPORT_CHECKPOINT_PAGES = 10_000


def _roomy(conn: Connection) -> None:
    """On SQLite, the page cache and checkpoint interval of an import on the connection that
    records a batch (:data:`IMPORT_CACHE_KIB`, :data:`IMPORT_CHECKPOINT_PAGES`); put back by
    :func:`_sqlite_room` at the end. Nothing stored depends on them."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={IMPORT_CHECKPOINT_PAGES}")


@contextlib.contextmanager
def _sqlite_room(engine: Engine) -> Iterator[None]:
    """An import's SQLite settings (:func:`_roomy`, set by each batch) put back as they were on
    the pooled connection when the import ends, and the cache's memory handed back before the
    ledger-wide flags are read (they read through a cache of the usual size)."""
    if engine.dialect.name != "sqlite":
        yield
        return
    with engine.connect() as conn:
        saved = [conn.exec_driver_sql(f"PRAGMA {name}").scalar_one() for name in ("cache_size", "wal_autocheckpoint")]
    try:
        yield
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"PRAGMA cache_size={int(saved[0])}")
            conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={int(saved[1])}")
            conn.exec_driver_sql("PRAGMA shrink_memory")


def _count_tenders(conn: Connection, report: Report) -> int:
    if report.first_event is None or report.last_event is None:
        return 0
    query = select(func.count(distinct(ocds_releases.c.ocid))).where(
        ocds_releases.c.event_id.between(report.first_event, report.last_event)
    )
    return int(conn.execute(query).scalar_one())


#: Batches that may wait ahead of the writer (queued, being checked or checked), at least; one a
#: worker where there are more workers (:func:`_depth`). A checked batch waiting in the recording
#: process holds ~8 MB (2,000 releases' bytes, envelopes and rows), and the writer is the slower
#: side (with two workers each checks ~50 µs of CPU a release, the recording thread ~85-95): one
#: more than the workers (t32w) only kept a checked batch more waiting, ~9 MB of the tree's peak
#: (1 GB package, two workers: 300.5 -> 291 MB, 8,377 -> 8,629 releases/s; bench/RESULTS-import.md).
PIPELINE_DEPTH = 2


#: Checking processes an import starts by default, at most: a worker checks ~6,000 releases a
#: second and the recording process records ~7,500-10,000 (bench/RESULTS-import.md), so a third
#: worker would wait on the writer, for ~45 MB more of the process tree's memory.
MAX_DEFAULT_WORKERS = 2


def default_workers() -> int:
    """Worker processes for a large import: one per core, at most :data:`MAX_DEFAULT_WORKERS`
    (two on two cores: the recording process's main thread waits on the database and on the
    checked batches for part of its time, and a second worker fills that core's idle time)."""
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


@dataclass(frozen=True, slots=True)
class _Raw:
    """One batch's worth of what was parsed from a file, in order."""

    name: str
    items: list[_Read | Problem]
    position: int  # bytes of the file read so far, for progress
    #: The JSON text of a release that was parsed from bytes, by its index in ``items`` (a JSON
    #: Lines line: the whole line): :func:`check_release`'s ``text``.
    texts: dict[int, bytes] = field(default_factory=dict)
    #: The indices in ``items`` of releases a strict parser made (:func:`check_release`'s ``parsed``).
    parsed: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Batch:
    """One batch's worth of what the reading thread read from a file, in order: values parsed,
    problems, and values cut but not parsed (:class:`sources.Slices`: :func:`_parsed`)."""

    name: str
    items: list[_Read | Problem | sources.Slices]
    position: int  # bytes of the file read so far, for progress
    file: int  # the file's number in the import


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class _Tender:
    """What a batch writes of one tender whose releases are all in it: its compiled release (JSON
    text), its releases' summary, its projection row, awarded amounts, flags and parties. Computed
    where the batch is checked (:func:`_tender_rows`, no database) on the guess that the tender is
    new to the log; the writer uses it only when it is, with all ``releases`` of them fresh."""

    releases: int
    compiled: str
    summary: Summary
    projection: dict[str, Any]
    awarded: list[dict[str, Any]]
    flags: redflags.Rows


@dataclass
class _Chunk:
    """One batch of a file's releases checked (ready to record) and what was found on the way."""

    name: str
    releases: list[_Release] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    read: int = 0
    noted_releases: int = 0
    position: int = 0
    #: Per ocid, the tender's rows if it is new to the log (:class:`_Tender`).
    tenders: dict[str, _Tender] = field(default_factory=dict)
    #: Where each of ``releases`` is in its :class:`_Raw`'s items.
    indices: list[int] = field(default_factory=list)
    #: Each of ``releases``' envelope bytes and leaf hash made on the guess that its tender is new
    #: to the log (:func:`sequencer.chain_ahead`), for the log of ``origin``; [] when not made.
    ahead: list[sequencer.Ahead | None] = field(default_factory=list)
    origin: str = ""
    #: Gives the releases of the tenders named their bodies, when a worker sent them without
    #: (:func:`_attach`); None when every release has its body.
    bodies: Callable[[Collection[str]], None] | None = None
    #: The checking pool and its size, which merges the batch's releases into tenders already
    #: stored while the writer appends them (:func:`_start_merges`); None: merged by the writer.
    pool: tuple[Executor, int] | None = None


def _raws(
    streams: Iterable[tuple[str, IO[bytes]]],
    *,
    files: list[dict[str, Any]],
    fmt: Format,
    encoding: str | None,
    batch: int,
    broken: Collection[int] = (),
) -> Iterator[_Batch]:
    """Read every file of ``streams`` (no checks, no database): a release package's releases and
    JSON Lines cut into :class:`sources.Slices`, other shapes parsed; a batch every ``batch``
    values read (releases or problems) and at the end of each file. A file whose number is in
    ``broken`` (a release of it did not parse where it was checked) is read no further."""
    for number, (name, stream) in enumerate(streams):
        items: list[_Read | Problem | sources.Slices] = []
        size = 0
        for item in read_releases(stream, name=name, fmt=fmt, encoding=encoding, opened=files, cut=batch):
            if number in broken:
                break
            while isinstance(item, sources.Slices) and size + len(item) > batch:
                head, item = item.split(batch - size)
                items.append(head)
                yield _Batch(name, items, _tell(stream), number)
                items, size = [], 0
            items.append(item)
            size += len(item) if isinstance(item, sources.Slices) else 1
            if size >= batch:
                yield _Batch(name, items, _tell(stream), number)
                items, size = [], 0
        yield _Batch(name, items, _tell(stream), number)


def _check(
    raw: _Raw, *, strict: bool, now: datetime, key: bytes, origin: str = "", stored: Callable[[str], bool] | None = None
) -> _Chunk:
    """Check a parsed batch: each release (:func:`check_release`: schema, RFC 8785, hash), its
    personal-data marks, and each of its tenders' rows as if new (:class:`_Tender`); with the
    log's ``origin``, each release's envelope and leaf hash as if its tender were new too
    (:func:`sequencer.chain_ahead`); but neither for a tender ``stored`` guesses the log will
    hold when the batch is recorded (the writer merges it and chains its releases on its head:
    what was made here would go unused). No database: run in the reading thread or in a worker
    process."""
    name = raw.name
    chunk = _Chunk(name, position=raw.position)
    for index, item in enumerate(raw.items):
        if isinstance(item, Problem):
            (chunk.notes if item.recorded else chunk.problems).append(item)
            continue
        chunk.read += 1
        checked = check_release(
            item.value, file=name, position=item.position, digest_key=key, text=raw.texts.get(index),
            parsed=index in raw.parsed,
        )  # fmt: skip
        if isinstance(checked, Problem):
            chunk.problems.append(checked)
            continue
        if checked.notes:
            found = [
                Problem(file=name, ocid=checked.ocid, release=checked.release_id, path=p, reason=m, recorded=not strict)
                for p, m in checked.notes
            ]
            if strict:
                chunk.problems += found
                continue
            chunk.noted_releases += 1
            chunk.notes += found
        chunk.releases.append(checked)
        chunk.indices.append(index)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in chunk.releases:
        groups.setdefault(r.ocid, []).append(r.body)
    known = {ocid for ocid in groups if stored is not None and stored(ocid)}
    if origin and chunk.releases:
        chunk.origin = origin
        new = [i for i, r in enumerate(chunk.releases) if r.ocid not in known]
        chunk.ahead = [None] * len(chunk.releases)
        try:
            made = sequencer.chain_ahead(*_submissions([chunk.releases[i] for i in new]), origin=origin, now=now)
        except LedgerError:  # left to the writer, which names it as it appends
            chunk.ahead = []
        else:
            for i, chained in zip(new, made, strict=True):
                chunk.ahead[i] = chained
    for ocid, releases in groups.items():
        if ocid in known:
            continue
        chunk.tenders[ocid] = _tender_rows(
            ocid, ocds.compile_releases(releases), Summary.of(releases), now, len(releases)
        )
    return chunk


def _check_remote(
    raw: _Batch, *, strict: bool, now: datetime, key: bytes, origin: str = ""
) -> tuple[_Chunk, list[int], bool]:
    """:func:`_check` of a batch as read, in a worker process: its slices parsed here
    (:func:`_parsed`), and each release that is a value of the batch whole sent back without its
    body (the importing process has its bytes: :func:`_attach`), so that mostly bytes and rows
    cross back. Also: for each release, that value's index (-1: sent with its body), and
    whether the file breaks in the batch."""
    parsed, roots, broken = _parsed(raw)
    chunk = _check(parsed, strict=strict, now=now, key=key, origin=origin, stored=_checked_lately)
    _CHECKED.append({r.ocid for r in chunk.releases})
    refs = [roots[i] for i in chunk.indices]
    chunk.releases = [r.without_body() if ref >= 0 else r for r, ref in zip(chunk.releases, refs, strict=True)]
    return chunk, refs, broken


#: Batches of an import whose tenders a checking worker remembers (:func:`_checked_lately`): a
#: feed published by date comes back to a tender for months (~40 batches of the bench's, a
#: worker checking one in two), and ~1,500 tenders a batch are ~3 MB of a worker's memory at 16.
CHECKED_BATCHES = 16
#: The tenders of the last :data:`CHECKED_BATCHES` batches this worker process checked (each
#: import has its own pool: the worker's whole life is one import's).
_CHECKED: deque[set[str]] = deque(maxlen=CHECKED_BATCHES)


def _checked_lately(ocid: str) -> bool:
    """Whether the tender ``ocid`` had releases in a batch this worker checked lately: recorded
    by the time a later batch is (but for releases of it the log refused), so a later batch's
    rows of it made as if new would go unused (:func:`_check`). A guess: when wrong, the writer
    makes the rows itself."""
    return any(ocid in batch for batch in _CHECKED)


def _attach(releases: list[_Release], raw: _Batch, refs: list[int], ocids: Collection[str]) -> None:
    """Give a worker's checked ``releases`` of the tenders ``ocids`` back their bodies, parsed again
    here from the batch (only those the writer merges here need them: :func:`_record_batch`)."""
    value = _values(raw)
    for r, ref in zip(releases, refs, strict=True):
        if ref >= 0 and r.ocid in ocids and not r.body:
            r.body.update(value(ref))


def _init_worker(settings: Any, personal: Any) -> None:
    """A checking process marks and flags with the deployment's rules, as the importing one does,
    and collects cyclic garbage as seldom (:data:`GC_THRESHOLD`: the process does nothing else),
    never among the objects it was forked with (``gc.freeze``): a collection writes to every
    object it walks, which would copy the fork server's pages of modules into each worker."""
    redflags.configure(settings)
    privacy.configure_rules(personal)
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    gc.freeze()


#: The cyclic garbage collector's first threshold (allocations of container objects, net of those
#: freed, between two collections of the youngest generation; Python's default is 700) while an
#: import runs. An import makes and drops millions of dicts and lists (parsed releases, rows,
#: batches crossing between processes), nearly all freed by their reference counts: at 700 the
#: collector ran every few releases and, with the older generations it walks again and again,
#: took ~30 % of the importing process's CPU (156 -> 109 µs a release, bench/RESULTS-import.md).
#: At this threshold it runs about once a batch or less; only garbage in cycles waits that long.
GC_THRESHOLD = 100_000


class _Collector:
    """The collector's thresholds raised while at least one import runs in this process (the
    API may run several at once), and put back as they were after the last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved: tuple[int, int, int] = gc.get_threshold()

    @contextlib.contextmanager
    def seldom(self) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._saved = gc.get_threshold()
                gc.set_threshold(max(GC_THRESHOLD, self._saved[0]), *self._saved[1:])
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    gc.set_threshold(*self._saved)


_COLLECTOR = _Collector()


_DONE = object()


def _depth(workers: int) -> int:
    """Batches that may wait ahead of the writer with ``workers`` checking: one a worker, and
    :data:`PIPELINE_DEPTH` at least."""
    return max(PIPELINE_DEPTH, workers)


def _ahead(
    raws: Iterator[_Batch],
    *,
    strict: bool,
    now: datetime,
    workers: int,
    key: bytes,
    broken: set[int] | None = None,
    origin: str = "",
) -> Generator[_Chunk, None, None]:
    """The checked batches of ``raws``, in order, produced ahead of the consumer, so that parsing
    and checking (parsing, jsonschema-rs, RFC 8785 and hashing, ocdsmerge, projection and flags)
    overlap with the writer's database work. A thread reads (cuts a release package's releases
    and JSON Lines without parsing them: :func:`_raws`); from the second batch on, with
    ``workers`` > 0, a pool of that many processes parses and checks (small imports never start
    it), else the thread does. At most :func:`_depth` batches wait ahead. An
    error of the reader or a worker is raised to the consumer where it would have been met; when
    the consumer stops early (its transaction failed), the reader and pool stop too. A file's
    batches after the one where it breaks (a release that does not parse) are dropped, and its
    number added to ``broken``, where the reading of ``raws`` stops."""
    depth = _depth(workers)
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    pools: list[ProcessPoolExecutor] = []

    def give(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for number, raw in enumerate(raws):
                if workers > 0 and number >= 1 and not pools and raw.items:  # not for a file's empty end
                    # a fork server (no fork of this threaded process) that imports this module
                    # once: its workers share those pages (~45 MB) instead of each importing them
                    # (_init_worker freezes them, so that no collection writes to them)
                    context = multiprocessing.get_context("forkserver")
                    context.set_forkserver_preload([__name__])
                    pools.append(
                        ProcessPoolExecutor(
                            workers,
                            mp_context=context,
                            initializer=_init_worker,
                            initargs=(redflags.CARDINAL_SETTINGS, privacy.RULES),
                        )
                    )
                if pools:
                    value: Any = (
                        raw,
                        pools[0].submit(_check_remote, raw, strict=strict, now=now, key=key, origin=origin),
                    )
                else:
                    parsed, _, stops = _parsed(raw)
                    value = (raw, _check(parsed, strict=strict, now=now, key=key, origin=origin), stops)
                if not give(value):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            give(exc)
            return
        give(_DONE)

    reader = threading.Thread(target=read, name="import-reader", daemon=True)
    reader.start()
    stopped = set() if broken is None else broken
    try:
        while True:
            value = ready.get()
            if value is _DONE:
                return
            if isinstance(value, BaseException):
                raise value
            if len(value) == 2:
                raw, future = value
                chunk, refs, stops = future.result()
                chunk.bodies = functools.partial(_attach, chunk.releases, raw, refs)
                chunk.pool = (pools[0], workers)
            else:
                raw, chunk, stops = value
            if raw.file in stopped:
                continue
            if stops:
                stopped.add(raw.file)
            yield chunk
    finally:
        stop.set()
        reader.join()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)


def _run(
    conn: Connection | None,
    *,
    log: Log,
    sources: Iterable[tuple[str, IO[bytes]]],
    report: Report,
    now: datetime,
    fmt: Format,
    strict: bool,
    encoding: str | None,
    batch: int,
    workers: int,
    progress: Progress | None,
) -> None:
    """Parse and check ahead (:func:`_ahead`) while this thread records, batch after batch, on
    ``conn`` (strict: one transaction) or each batch in its own."""
    broken: set[int] = set()
    raws = _raws(sources, files=report.files, fmt=fmt, encoding=encoding, batch=batch, broken=broken)
    if conn is None:
        with log.engine.connect() as own:
            key = keys.key(own, keys.RELEASE_DIGEST)
    else:
        key = keys.key(conn, keys.RELEASE_DIGEST)
    # closed however the loop ends: a batch that fails here (the database, a worker's merge) stops
    # the reader thread and the checking pool at once, not when the generator is collected (the
    # error's traceback holds this frame, and the generator with it, for as long as it is kept)
    ahead = _ahead(raws, strict=strict, now=now, workers=workers, key=key, broken=broken, origin=log.origin)
    with contextlib.closing(ahead) as chunks:
        for chunk in chunks:
            for problem in chunk.problems:
                report.add(problem)
            for problem in chunk.notes:
                report.note(problem)
            report.read += chunk.read
            report.noted_releases += chunk.noted_releases
            _flush(conn, log, chunk, report, now=now)
            if progress is not None:
                progress(report.read, chunk.position)


def _tell(stream: IO[bytes]) -> int:
    try:
        return stream.tell()
    except (OSError, ValueError):
        return 0


def _flush(conn: Connection | None, log: Log, chunk: _Chunk, report: Report, *, now: datetime) -> None:
    if not chunk.releases:
        return
    # what was chained ahead for another log (never, but for a caller's mistake) is not used
    ahead = chunk.ahead if chunk.origin == log.origin else []
    record = functools.partial(
        _record_batch, now=now, tenders=chunk.tenders, ahead=ahead, bodies=chunk.bodies, pool=chunk.pool
    )
    if conn is not None:
        _roomy(conn)
        record(conn, log, chunk.name, chunk.releases, report)
        return
    with write_transaction(log.engine) as own:
        _roomy(own)
        record(own, log, chunk.name, chunk.releases, report)


def _submissions(releases: Sequence[_Release]) -> tuple[list[Submission], list[sequencer.Prepared]]:
    """What the sequencer appends of checked ``releases``: ocid, type, RFC 8785 bytes, the v2
    commitment and its disclosure, all made and checked with the release (:func:`check_release`)."""
    items = [Submission(ocid=r.ocid, type=r.type, payload=r.body, canonical=r.data) for r in releases]
    return items, [(r.data, r.commitment, r.disclosure) for r in releases]


def _record_batch(
    conn: Connection,
    log: Log,
    name: str,
    releases: list[_Release],
    report: Report,
    *,
    now: datetime,
    tenders: dict[str, _Tender] | None = None,
    ahead: Sequence[sequencer.Ahead | None] = (),
    bodies: Callable[[Collection[str]], None] | None = None,
    pool: tuple[Executor, int] | None = None,
) -> None:
    """Append the batch's new releases and reproject their tenders, on ``conn``'s transaction.

    The batch's tenders are locked first (:func:`sequencer.lock`); only those that already have
    events can hold one of its releases or be recorded natively, so the lookups name those alone
    (none when every tender is new to the log, a first import). Every lookup reads only this
    batch's releases and tenders (never all the releases of a tender): the cost per release does
    not grow with how many releases a tender already has. ``ahead``: each release's envelope and
    leaf hash made where it was checked (:func:`sequencer.chain_ahead`), used where its tender's
    head is the one it was made on. ``bodies``: gives releases sent without their body theirs
    (:func:`_attach`), asked for those of the tenders merged here alone (a tender new to the log
    whose rows were made ahead from all its fresh releases is written as made, without them).
    ``pool`` (an executor and its workers): where the releases of tenders already stored are
    merged into them while this thread appends (:func:`_start_merges`); an error there fails the
    batch as one here would, before any tender row is written.
    """
    heads = sequencer.lock(conn, {r.ocid for r in releases}, now=now)
    present = sorted(ocid for ocid, (count, _) in heads.items() if count)
    known: dict[tuple[str, str], str] = {}
    withheld: dict[tuple[str, str], int] = {}  # releases an order withheld: their digest is gone
    # whether each stored tender was imported (else recorded natively): its state is parsed for
    # that alone and not kept (a feed by date stores ~1,500 of a batch's tenders: ~6 MB held)
    existing: dict[str, bool] = {}
    if present:
        _look_up(conn, {(r.ocid, r.release_id) for r in releases if heads[r.ocid][0]}, known, withheld)
        t = tender_index.c
        existing = {
            row.ocid: rules.TenderState.from_json(row.state).imported
            for start in range(0, len(present), _LOOKUP_OCIDS)
            for row in conn.execute(select(t.ocid, t.state).where(t.ocid.in_(present[start : start + _LOOKUP_OCIDS])))
        }
    fresh: list[_Release] = []
    made: list[sequencer.Ahead | None] = []
    for r, chained in zip(releases, ahead or [None] * len(releases), strict=True):
        seen = known.get((r.ocid, r.release_id))
        imported = existing.get(r.ocid)
        order = withheld.get((r.ocid, r.release_id))
        if order is not None:
            at = f"log index {order} ({_order_reference(conn, order)})"
            again = "it is not imported again, whatever its content"
            report.add(_refused(name, r, "id", f"is withheld under the order at {at}: {again}"))
        elif seen == r.digest:
            report.duplicates += 1
        elif seen is not None:
            report.add(_refused(name, r, "id", "was already imported with different content"))
        elif imported is False:
            native = "is recorded natively (through the rules): releases cannot be imported into it"
            report.add(_refused(name, r, "ocid", native, subject="tender"))
        else:
            known[(r.ocid, r.release_id)] = r.digest
            fresh.append(r)
            made.append(chained)
    ready = tenders or {}
    counts = Counter(r.ocid for r in fresh)
    merged = {o for o, n in counts.items() if o in existing or _made_ahead(ready, o, n) is None}
    if bodies is not None and merged:
        bodies(merged)
    new: dict[str, list[dict[str, Any]]] = {}
    for r in fresh:
        new.setdefault(r.ocid, []).append(r.body)
    merging = _start_merges(conn, new, earlier={o for o in new if o in existing}, at=now, pool=pool)
    items, prepared = _submissions(fresh)
    ids = sequencer.append_ahead(conn, items, prepared, made, heads, origin=log.origin, now=now)
    if not fresh:
        return
    _remember(conn, fresh, ids)
    _merge_in(conn, new, merging, at=now, ready=ready)
    report.imported += len(fresh)
    for r in fresh:
        for rule in r.marks:
            report.personal_data[rule] = report.personal_data.get(rule, 0) + 1
    report.first_event = report.first_event or ids[0]
    report.last_event = ids[-1]


#: Tenders named by one lookup statement of :func:`_record_batch` (a bound on its parameters).
_LOOKUP_OCIDS = 500


def _look_up(
    conn: Connection,
    pairs: set[tuple[str, str]],
    known: dict[tuple[str, str], str],
    withheld: dict[tuple[str, str], int],
) -> None:
    """Fill ``known`` (each digest) and ``withheld`` (the withholding order's log index) with the
    releases of ``pairs`` (ocid, release id) already imported: one statement a batch, the pairs
    joined to the (ocid, release_id) unique index as a keyed set (a probe a pair, never the
    product of the batch's ocids and ids): a ``VALUES`` list on SQLite (at most
    :data:`LOOKUP_PAIRS` a statement), two ``unnest``-ed arrays on PostgreSQL."""
    ordered = sorted(pairs)
    if conn.dialect.name == "sqlite":
        found: list[Any] = []
        for start in range(0, len(ordered), LOOKUP_PAIRS):
            part = ordered[start : start + LOOKUP_PAIRS]
            sql = _KNOWN_SQLITE.format(values=",".join(["(?,?)"] * len(part)))
            found += conn.exec_driver_sql(sql, tuple(v for pair in part for v in pair)).all()
    else:
        found = list(conn.execute(_KNOWN_ARRAYS, {"ocids": [o for o, _ in ordered], "ids": [i for _, i in ordered]}))
    for ocid, release_id, digest, order in found:
        if order is not None:
            withheld[(ocid, release_id)] = int(order)
        else:  # "" (never a digest) for a row without one: reported as changed, never recorded twice
            known[(ocid, release_id)] = digest or ""


#: Pairs named by one lookup statement on SQLite (two parameters each, well under its limit).
LOOKUP_PAIRS = 5000
_KNOWN_FROM = (
    f"JOIN {ocds_releases.name} AS r ON r.ocid = k.ocid AND r.release_id = k.release_id "
    f"JOIN {payloads.name} AS p ON p.event_id = r.event_id"
)
# CROSS JOIN: SQLite's planner keeps the pairs as the outer loop (each a probe of the index)
_KNOWN_SQLITE = (
    "WITH k(ocid, release_id) AS (VALUES {values}) SELECT r.ocid, r.release_id, r.release_digest, p.withheld_by "
    "FROM k CROSS " + _KNOWN_FROM
)
_KNOWN_ARRAYS = text(
    "SELECT r.ocid, r.release_id, r.release_digest, p.withheld_by "
    "FROM unnest(CAST(:ocids AS text[]), CAST(:ids AS text[])) AS k(ocid, release_id) " + _KNOWN_FROM
)


def _refused(
    name: str, release: _Release, path: str, reason: str, *, subject: Literal["release", "tender"] = "release"
) -> Problem:
    """A checked release the log refuses (a repeat with other content, a withheld release, a
    native tender's): named by file, ocid, release id and field ``path``; ``reason`` follows
    "release <id> of <ocid>", or "tender <ocid>" when the ``subject`` refused is the tender."""
    said = f"tender {release.ocid}" if subject == "tender" else f"release {release.release_id!r} of {release.ocid}"
    return Problem(file=name, ocid=release.ocid, release=release.release_id, path=path, reason=f"{said} {reason}")


def _order_reference(conn: Connection, index: int) -> str:
    """How a refusal names the withholding order at log index ``index``: its reference."""
    body = conn.execute(
        select(payloads.c.body)
        .select_from(log_entries.join(payloads, payloads.c.event_id == log_entries.c.event_id))
        .where(log_entries.c.idx == index)
    ).scalar()
    if body is None:
        return "reference unknown"
    reference = jsonsafe.loads(bytes(body), field=f"order {index}", max_depth=MAX_STORED_DEPTH).get("reference")
    return f"reference {reference!r}"


def _remember(conn: Connection, fresh: list[_Release], ids: list[int]) -> None:
    insert_many(
        conn,
        ocds_releases,
        [
            {
                "event_id": event_id,
                "ocid": r.ocid,
                "release_id": r.release_id,
                "release_date": r.date,
                "release_digest": r.digest,
                "notes": json.dumps([{"path": p, "reason": m} for p, m in r.notes], ensure_ascii=False)
                if r.notes
                else None,
            }
            for r, event_id in zip(fresh, ids, strict=True)
        ],
    )


def release_notes(conn: Connection, ocid: str) -> list[dict[str, Any]]:
    """The data-quality notes of one imported tender's releases: ``[{"release", "event_id",
    "path", "reason"}]`` in the order the releases were recorded ([] when none)."""
    out: list[dict[str, Any]] = []
    c = ocds_releases.c
    for row in conn.execute(
        select(c.event_id, c.release_id, c.notes).where(c.ocid == ocid, c.notes.is_not(None)).order_by(c.event_id)
    ):
        for note in json.loads(row.notes):
            out.append({"release": row.release_id, "event_id": int(row.event_id), **note})
    return out


def imported_event_ids(conn: Connection, ocid: str) -> set[int]:
    """The ids of the events of ``ocid`` that are imported releases."""
    c = ocds_releases.c
    return {int(i) for i in conn.execute(select(c.event_id).where(c.ocid == ocid)).scalars()}


def imported_releases(
    conn: Connection, ocids: Sequence[str], *, before: int | None = None
) -> dict[str, tuple[list[dict[str, Any]], datetime]]:
    """The imported releases of each of ``ocids`` that has any (recorded before event id
    ``before``, when given), in ``seq`` order, with when the last of them was recorded."""
    out: dict[str, tuple[list[dict[str, Any]], datetime]] = {}
    query = (
        select(events.c.ocid, events.c.seq, payloads.c.body.label("payload"), events.c.recorded_at)
        .join(ocds_releases, ocds_releases.c.event_id == events.c.id)
        .join(payloads, payloads.c.event_id == events.c.id)
        .where(events.c.ocid.in_(ocids))
        .order_by(events.c.ocid, events.c.seq)
    )
    if before is not None:
        query = query.where(events.c.id < before)
    for row in conn.execute(query):
        releases = out[row.ocid][0] if row.ocid in out else []
        at = row.recorded_at if row.recorded_at.tzinfo else row.recorded_at.replace(tzinfo=UTC)
        if row.payload is None:  # withheld by an order: compiled without it
            out[row.ocid] = (releases, at)
            continue
        # the bounded reader (as :class:`ledger.store.reader` reads every stored payload): a payload
        # recorded before input was bounded cannot overflow the parser's stack
        releases.append(
            jsonsafe.loads(row.payload, field=f"{row.ocid} seq {row.seq} payload", max_depth=MAX_STORED_DEPTH)
        )
        out[row.ocid] = (releases, at)
    return out


def reproject(conn: Connection, ocids: Sequence[str]) -> None:
    """Rewrite the compiled releases, search rows and red flags of imported tenders from all their
    releases (``updated_at``: when their last release was recorded)."""
    for start in range(0, len(ocids), BATCH):
        tenders = imported_releases(conn, ocids[start : start + BATCH])
        _write_tenders(
            conn,
            {
                ocid: _tender_rows(ocid, ocds.compile_releases(releases), Summary.of(releases), at, len(releases))
                for ocid, (releases, at) in tenders.items()
            },
        )


@_pickled_by_fields
@dataclass(frozen=True, slots=True)
class Summary:
    """What the projection needs of a tender's releases besides the compiled release: how many,
    the first and last release dates and the first date of a tender-stage release (RFC 3339 UTC
    text, None when unreadable), and the greatest ``date`` as published (what ocdsmerge sorts on)."""

    releases: int
    first: str | None
    last: str | None
    first_tender: str | None
    last_date: str

    @classmethod
    def of(cls, releases: Sequence[dict[str, Any]], into: Summary | None = None) -> Summary:
        stamped = [(r, _stamp(r.get("date"))) for r in releases]  # each date read once
        stamps = [s for _, s in stamped if s]
        tendering = [s for r, s in stamped if s and _STAGE.get(event_tag(r), 0) >= _STAGE["tender"]]
        if into is not None:
            stamps += [s for s in (into.first, into.last) if s]
            tendering += [into.first_tender] if into.first_tender else []
        dates = [d for r in releases if isinstance(d := r.get("date"), str)] + ([into.last_date] if into else [])
        return cls(
            releases=len(releases) + (into.releases if into else 0),
            first=min(stamps, default=None),
            last=max(stamps, default=None),
            first_tender=min(tendering, default=None),
            last_date=max(dates, default=""),
        )

    def to_json(self) -> str:
        return json.dumps([self.releases, self.first, self.last, self.first_tender, self.last_date])

    @classmethod
    def from_json(cls, text: str) -> Summary:
        releases, first, last, first_tender, last_date = json.loads(text)
        return cls(int(releases), first, last, first_tender, str(last_date))


@dataclass(frozen=True, slots=True)
class _Merging:
    """A batch's releases of tenders already stored, being merged into them (:func:`_start_merges`):
    ``parts`` each gives the rows of some of them (waiting for a worker when one merges them), and
    ``again`` names those recompiled from all their releases instead."""

    parts: list[Callable[[], dict[str, _Tender]]]
    again: list[str]
    earlier: set[str]


def _start_merges(
    conn: Connection,
    new: dict[str, list[dict[str, Any]]],
    *,
    earlier: set[str],
    at: datetime,
    pool: tuple[Executor, int] | None,
) -> _Merging:
    """Start merging each tender of ``earlier`` (already stored) with its new releases (``new``, in
    the order recorded) into its stored compiled release, when they are all dated at or after its
    latest release (what ocdsmerge's sort by date gives: the same compiled release as merging them
    all, at a cost independent of the tender's history): on ``pool``'s workers, one part each, so
    that the writer appends meanwhile; else here. The others are left to recompile from all
    their releases (:func:`_merge_in`)."""
    c = ocds_compiled.c
    stored = {
        row.ocid: (row.compiled, Summary.from_json(row.summary))
        for row in (
            conn.execute(select(c.ocid, c.compiled, c.summary).where(c.ocid.in_(sorted(earlier)))) if earlier else ()
        )
    }
    known: list[tuple[str, str, Summary, list[dict[str, Any]]]] = []
    again: list[str] = []
    for ocid in sorted(earlier):
        releases = new[ocid]
        if ocid in stored and all(
            isinstance(r.get("date"), str) and r["date"] >= stored[ocid][1].last_date for r in releases
        ):
            known.append((ocid, *stored[ocid], releases))
        else:
            again.append(ocid)
    if pool is None or not known:
        return _Merging([functools.partial(_merged, known, at)], again, earlier)
    executor, workers = pool
    parts = [executor.submit(_merged, known[i::workers], at) for i in range(min(workers, len(known)))]
    return _Merging([part.result for part in parts], again, earlier)


def _merged(known: list[tuple[str, str, Summary, list[dict[str, Any]]]], at: datetime) -> dict[str, _Tender]:
    """The rows of each stored tender of ``known`` (ocid, compiled release as stored, summary, new
    releases) with its new releases merged into its compiled release; no database: run by the
    writer or a checking worker."""
    merger = ocds.merger()
    out: dict[str, _Tender] = {}
    for ocid, stored, summary, releases in known:
        merged = ocds.merge_into(json.loads(stored), releases, using=merger)
        out[ocid] = _tender_rows(ocid, merged, Summary.of(releases, into=summary), at, len(releases))
    return out


def _merge_in(
    conn: Connection,
    new: dict[str, list[dict[str, Any]]],
    merging: _Merging,
    *,
    at: datetime,
    ready: dict[str, _Tender],
) -> None:
    """The rows of each tender of ``new`` (its releases, in the order recorded): a tender new to
    the log (not in ``merging.earlier``) whose rows were made ahead (``ready``, from the same
    releases) as made, another compiled from them; the stored ones as ``merging`` merged them
    (or recompiled from all their releases). Then write them all (:func:`_write_tenders`)."""
    merger = ocds.merger()
    merged: dict[str, _Tender] = {}
    for part in merging.parts:
        merged.update(part())
    out: dict[str, _Tender] = {}
    for ocid, releases in new.items():
        if ocid in merging.earlier:
            if ocid in merged:
                out[ocid] = merged[ocid]
        elif (made := _made_ahead(ready, ocid, len(releases))) is not None:
            out[ocid] = made
        else:
            compiled = ocds.compile_releases(releases, using=merger)
            out[ocid] = _tender_rows(ocid, compiled, Summary.of(releases), at, len(releases))
    again = merging.again
    for ocid, (releases, _) in (imported_releases(conn, sorted(again)) if again else {}).items():
        out[ocid] = _tender_rows(
            ocid, ocds.compile_releases(releases, using=merger), Summary.of(releases), at, len(releases)
        )
    _write_tenders(conn, out, new={o for o in out if o not in merging.earlier})


def _made_ahead(ready: dict[str, _Tender], ocid: str, fresh: int) -> _Tender | None:
    """The rows of ``ocid``, a tender new to the log, made where its releases were checked
    (``ready``), when they were made from the batch's ``fresh`` releases of it: the same list
    when none was dropped (a duplicate, a refusal), else None (the writer merges it)."""
    made = ready.get(ocid)
    return made if made is not None and made.releases == fresh else None


def _tender_rows(ocid: str, compiled: dict[str, Any], summary: Summary, at: datetime, releases: int) -> _Tender:
    """What is written of one tender from its compiled release (``releases``: how many releases of
    the batch it was made from); no database."""
    state = state_of_summary(ocid, compiled, summary)
    row = {**projection(state), "updated_at": at}
    if row["listed_at"] is None:  # every release withheld by an order: listed when last recorded
        row["listed_at"] = at
    # the buyer of a release that names none in ``buyer`` is its projection's (the parties' buyer)
    named = row["buyer_name"] if state.buyer_id and not compiled.get("buyer") else None
    return _Tender(
        releases=releases,
        compiled=json.dumps(compiled, ensure_ascii=False),
        summary=summary,
        projection=row,
        awarded=awarded_rows(state),
        flags=redflags.rows_of(ocid, state.buyer_id, compiled, buyer_name=named),
    )


def _write_tenders(conn: Connection, tenders: dict[str, _Tender], *, new: Collection[str] = ()) -> None:
    """Write each tender's compiled release, projection row, awarded amounts, flags and parties:
    one executemany per table for the whole batch (``new``: tenders first projected now, whose
    flags and parties have no rows to replace)."""
    if not tenders:
        return
    ocids = list(tenders)
    insert_many(
        conn,
        ocds_compiled,
        [
            {"ocid": o, "compiled": t.compiled, "last_date": t.summary.last_date[:64], "summary": t.summary.to_json()}
            for o, t in tenders.items()
        ],
        replace_on=("ocid",),
    )
    stored = [o for o in ocids if o not in new]
    replace_sparing_indexes(
        conn,
        tender_index,
        [t.projection for t in tenders.values()],
        replace_on=("ocid",),
        stored=[tenders[o].projection for o in stored],
    )
    store_awarded_rows(conn, stored, [row for t in tenders.values() for row in t.awarded])
    listed = {o: t.projection["listed_at"] for o, t in tenders.items()}  # as just written
    redflags.store_rows(conn, ocids, [t.flags for t in tenders.values()], new=new, listed=listed)


def compiled_release(conn: Connection, ocid: str) -> dict[str, Any] | None:
    """The stored compiled release of an imported tender (None when it has none)."""
    text = conn.execute(select(ocds_compiled.c.compiled).where(ocds_compiled.c.ocid == ocid)).scalar_one_or_none()
    return None if text is None else jsonsafe.loads(text, field=f"{ocid} compiled release", max_depth=MAX_STORED_DEPTH)


def _text(value: Any, limit: int = 1024) -> str | None:
    """A non-empty string, cut to the projection column's ``limit`` (the release keeps it whole)."""
    return value[:limit] if isinstance(value, str) and value else None


def _stamp(text: Any) -> str | None:
    """An OCDS date-time as the projection's RFC 3339 UTC text (None when absent or unreadable)."""
    return _stamp_of(text) if isinstance(text, str) else None


@functools.lru_cache(maxsize=1 << 16)
def _stamp_of(text: str) -> str | None:
    """:func:`_stamp` of a string, kept: a tender's summary and projection read each of its
    releases' dates, and a feed's dates repeat (two cached steps and their keys were ~1/10 of
    a worker's tender rows)."""
    moment = ocds.parse_datetime(text)
    if moment is None:
        return None
    return format_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _status(compiled: dict[str, Any], tender: dict[str, Any]) -> rules.Status:
    status = tender.get("status")
    if isinstance(status, str) and status in _STATUS:
        return status  # type: ignore[return-value]
    contracts = [c for c in compiled.get("contracts") or [] if isinstance(c, dict)]
    if contracts and all(c.get("status") in ("terminated", "cancelled") for c in contracts):
        return "complete"
    return "active" if tender or compiled.get("awards") or contracts else "planned"


def state_of_compiled(ocid: str, compiled: dict[str, Any], releases: Sequence[dict[str, Any]]) -> rules.TenderState:
    """An imported tender's projection state, from its compiled release (and its releases' dates)."""
    return state_of_summary(ocid, compiled, Summary.of(releases))


def state_of_summary(ocid: str, compiled: dict[str, Any], summary: Summary) -> rules.TenderState:
    """An imported tender's projection state, from its compiled release and its releases' summary."""
    tender = compiled.get("tender") if isinstance(compiled.get("tender"), dict) else {}
    assert isinstance(tender, dict)
    buyer = compiled.get("buyer") if isinstance(compiled.get("buyer"), dict) else {}
    assert isinstance(buyer, dict)
    if not buyer:
        parties = [p for p in compiled.get("parties") or [] if isinstance(p, dict)]
        buyer = next((p for p in parties if "buyer" in (p.get("roles") or [])), {})
    value = tender.get("value") if isinstance(tender.get("value"), dict) else {}
    assert isinstance(value, dict)
    period = tender.get("tenderPeriod") if isinstance(tender.get("tenderPeriod"), dict) else {}
    assert isinstance(period, dict)
    published = _stamp(tender.get("datePublished")) or summary.first_tender
    awards: dict[str, rules.AwardState] = {}
    for award in redflags.live_awards(compiled):
        amount = award.get("value", {}).get("amount") if isinstance(award.get("value"), dict) else None
        currency = award.get("value", {}).get("currency") if isinstance(award.get("value"), dict) else None
        if isinstance(amount, int | float) and not isinstance(amount, bool) and isinstance(currency, str):
            suppliers = [s for s in award.get("suppliers") or [] if isinstance(s, dict)]
            awards[str(award.get("id"))] = rules.AwardState(
                status="pending" if award.get("status") == "pending" else "active",
                supplier_ids=[str(s.get("id", "")) for s in suppliers],
                supplier_names=[str(s.get("name") or s.get("id") or "") for s in suppliers],
                amount=float(amount),
                currency=currency,
                issued_at=_stamp(award.get("date")),
            )
    amount = value.get("amount")
    return rules.TenderState(
        ocid=ocid,
        status=_status(compiled, tender),
        imported=True,
        events=summary.releases,
        tender_id=_text(tender.get("id")) if isinstance(tender.get("id"), str) else None,
        title=_text(tender.get("title")) or _first_title(compiled),
        description=_text(tender.get("description"), rules.DESCRIPTION_LIMIT),
        items=rules.item_descriptions(items if isinstance(items := tender.get("items"), list) else []),
        buyer_id=_text(buyer.get("id"), 256),
        buyer_name=_text(buyer.get("name")),
        method=_text(tender.get("procurementMethod"), 32),
        value_amount=float(amount) if isinstance(amount, int | float) and not isinstance(amount, bool) else None,
        currency=currency if isinstance(currency := value.get("currency"), str) and len(currency) == 3 else None,
        tender_start=_stamp(period.get("startDate")),
        tender_end=_stamp(period.get("endDate")),
        published_at=published,
        listed_at=published or summary.first,
        updated_at=summary.last,
        awards=awards,
    )


def _first_title(compiled: dict[str, Any]) -> str | None:
    """The title of the first award or contract that has one (releases without a tender section)."""
    for key in ("awards", "contracts"):
        for part in compiled.get(key) or []:
            if isinstance(part, dict) and _text(part.get("title")):
                return _text(part.get("title"))
    return None


def event_tag(release: dict[str, Any]) -> str:
    """The release's tag that decides its event type ('' when none does)."""
    tags = [t for t in release.get("tag") or [] if t in _STAGE]
    return max(tags, key=_STAGE.__getitem__) if tags else ""
