"""Reading what OCDS publishers publish, streamed: the bytes (gzip, any text encoding) and the
shapes (release packages, record packages, bare arrays, single releases or records, several of
them concatenated, JSON Lines), one release candidate at a time in bounded memory.

**Bytes.** :func:`open_utf8` turns one file's stream into UTF-8 JSON bytes: gzip is recognised by
its magic bytes (``1f 8b``) whatever the file's name; the text encoding is the one the caller
forces (``--encoding``), else a byte-order mark (UTF-8, UTF-16, UTF-32), else UTF-16/32 by the
NUL bytes of the first characters (RFC 4627 §3), else UTF-8 when the first 64 KiB are valid
UTF-8, else Windows-1252 (ISO-8859-1's superset; ISO-8859-1 itself when a byte is not
Windows-1252) — :func:`_detected`; any other encoding must be named. The
encoding used and how it was chosen are reported with the file (:class:`Opened`).

**Shapes.** :func:`candidates` decides from the first top-level value of a JSON file, reading at
most its keys before ``releases`` / ``records`` (or one whole release), what the file is:

- an object with ``releases`` (release package): its releases are streamed item by item;
- an object with ``records`` (record package): each record is read whole (one tender's
  releases) and its releases are yielded; its ``compiledRelease`` and ``versionedRelease`` are
  not imported but compared with what ocdsmerge makes of its releases (a difference is a note);
  a record whose releases are linked releases (``url`` only) cannot be imported;
- an array (a bare array of releases, or of records);
- an object with ``ocid`` (a release, or a record when it also has ``releases``), possibly
  followed by more (concatenated JSON).
"""

from __future__ import annotations

import codecs
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

import ijson

#: Bytes sampled to detect a file's encoding.
SAMPLE = 64 * 1024
_GZIP = b"\x1f\x8b"
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class EncodingProblem(ValueError):
    """The encoding asked for is unknown, or the bytes are not text in it."""


@dataclass(frozen=True, slots=True)
class Opened:
    """One file as UTF-8 bytes, with how it was read."""

    stream: IO[bytes]
    encoding: str
    #: "forced" (the caller named it), "bom", "detected" or "default" (valid UTF-8).
    how: Literal["forced", "bom", "detected", "default"]
    gzip: bool


class _Transcoded(io.RawIOBase):
    """A byte stream in ``encoding`` read as UTF-8 bytes (incremental: bounded memory)."""

    def __init__(self, source: IO[bytes], encoding: str) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending and not self._done:
            chunk = self._source.read(SAMPLE)
            try:
                text = self._decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise EncodingProblem(f"is not valid {self._decoder_name()}: {exc.reason}") from exc
            self._pending = text.encode("utf-8")
            self._done = not chunk
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _decoder_name(self) -> str:
        return type(self._decoder).__module__.rsplit(".", 1)[-1]


class _Raw(io.RawIOBase):
    """The caller's stream as a raw stream that never closes it (the caller owns it)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read(len(view))
        view[: len(data)] = data
        return len(data)


def _peekable(stream: IO[bytes]) -> io.BufferedReader:
    return io.BufferedReader(_Raw(stream), buffer_size=SAMPLE)


def _peek(stream: io.BufferedReader, size: int) -> bytes:
    """Up to ``size`` first bytes without consuming them (a BufferedReader's peek may give fewer)."""
    data = stream.peek(size)
    return data[:size]


def _check_encoding(name: str) -> str:
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError) as exc:
        raise EncodingProblem(f"unknown encoding {name!r}") from exc
    if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib...: not a text encoding
        raise EncodingProblem(f"{name!r} is not a text encoding")
    return info.name


def _valid_utf8_prefix(sample: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _detected(sample: bytes) -> str:
    """The single-byte encoding of text that is not UTF-8: Windows-1252 (the superset of
    ISO-8859-1's printable characters that Western publishers' "Latin-1" files really are), else
    ISO-8859-1 itself (which reads any byte). A statistical guess (charset-normalizer) was tried
    and rejected: on Mexico City's real ISO-8859-1 file it answered Windows-1250, where ``ñ``
    reads as ``ń``. Anything else is named with ``--encoding``."""
    try:
        sample.decode("cp1252")
    except UnicodeDecodeError:
        return "iso8859-1"
    return "cp1252"


def open_utf8(stream: IO[bytes], *, encoding: str | None = None) -> Opened:
    """``stream`` (a file as published) as UTF-8 bytes. Raises :class:`EncodingProblem`."""
    forced = _check_encoding(encoding) if encoding else None
    raw = _peekable(stream)
    packed = _peek(raw, 2) == _GZIP
    if packed:
        raw = _peekable(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[arg-type]
    sample = _peek(raw, SAMPLE)
    chosen: str
    how: Literal["forced", "bom", "detected", "default"]
    if forced is not None:
        chosen, how = forced, "forced"
        if chosen == "utf-8" and sample.startswith(codecs.BOM_UTF8):
            raw.read(len(codecs.BOM_UTF8))
    elif bom := next(((b, e) for b, e in _BOMS if sample.startswith(b)), None):
        raw.read(len(bom[0]))  # the mark is not JSON text
        chosen, how = bom[1], "bom"
    elif len(sample) >= 4 and sample[:3] == b"\0\0\0":
        chosen, how = "utf-32-be", "detected"
    elif len(sample) >= 4 and sample[1:4] == b"\0\0\0":
        chosen, how = "utf-32-le", "detected"
    elif len(sample) >= 2 and sample[0] == 0:
        chosen, how = "utf-16-be", "detected"
    elif len(sample) >= 2 and sample[1] == 0:
        chosen, how = "utf-16-le", "detected"
    elif _valid_utf8_prefix(sample):
        chosen, how = "utf-8", "default"
    else:
        chosen, how = _detected(sample), "detected"
    if chosen in ("utf-8", "ascii"):
        return Opened(raw, chosen, how, packed)
    return Opened(io.BufferedReader(_Transcoded(raw, chosen), buffer_size=SAMPLE), chosen, how, packed)


# --- shapes ----------------------------------------------------------------------------------

Shape = Literal["release package", "record package", "array", "values", "empty"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One release candidate, where it was found."""

    position: str
    value: Any


@dataclass(frozen=True, slots=True)
class Note:
    """Something about the file that is not one release's problem (a record's embedded compiled
    release that differs from its releases'), or why a part of the file cannot be imported
    (``fatal``)."""

    position: str
    path: str
    reason: str
    fatal: bool = False
    ocid: str = ""


class _Tee:
    """A file-like that keeps what was read from ``source`` until :meth:`replay`."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.kept = bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.kept += data
        return data


class _Chain(io.RawIOBase):
    def __init__(self, head: bytes | bytearray, rest: IO[bytes]) -> None:
        self._head = memoryview(bytes(head))
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def shape_of(stream: IO[bytes]) -> tuple[Shape, IO[bytes]]:
    """What the JSON file is (from its first top-level value's keys, read up to ``releases`` /
    ``records`` or to the end of that value) and the stream to read it from again."""
    tee = _Tee(stream)
    shape: Shape = "empty"
    try:
        for prefix, event, value in ijson.parse(tee, multiple_values=True):
            if prefix == "" and event == "start_array":
                shape = "array"
                break
            if prefix == "" and event == "map_key" and value == "ocid":
                shape = "values"  # a release, or a record (read whole: one tender)
                break
            if prefix == "" and event == "map_key" and value in ("releases", "records"):
                shape = "release package" if value == "releases" else "record package"
                break
            if prefix == "" and event in ("end_map", "string", "number", "boolean", "null"):
                shape = "values"
                break
    except ijson.JSONError:
        shape = "values"  # the parse of the whole stream says where it breaks
    return shape, io.BufferedReader(_Chain(tee.kept, stream), buffer_size=SAMPLE)


def _linked(release: Any) -> bool:
    return isinstance(release, dict) and "url" in release and "ocid" not in release


def expand(value: Any, position: str) -> Iterator[Candidate | Note]:
    """The release candidates of one value: a release, a record, or a package held whole."""
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        for i, record in enumerate(value["records"], 1):
            yield from record_releases(record, f"{position} record #{i}")
    elif isinstance(value, dict) and isinstance(value.get("releases"), list) and "ocid" in value:
        yield from record_releases(value, position)
    elif isinstance(value, dict) and isinstance(value.get("releases"), list):
        for i, item in enumerate(value["releases"], 1):
            yield Candidate(f"{position} release #{i}", item)
    elif isinstance(value, dict) and "ocid" in value:
        yield Candidate(position, value)
    else:
        yield Note(
            position,
            "$",
            "is neither an OCDS release package (object with 'releases'), a record package (object "
            "with 'records'), a record nor a release (object with 'ocid')",
            fatal=True,
        )


def record_releases(record: Any, position: str) -> Iterator[Candidate | Note]:
    """A record's releases, then the cross-check of its embedded compiled / versioned release."""
    if not isinstance(record, dict):
        yield Note(position, "$", f"a record must be a JSON object, got {type(record).__name__}", fatal=True)
        return
    ocid = record["ocid"] if isinstance(record.get("ocid"), str) else ""
    releases = record.get("releases")
    if not isinstance(releases, list) or not releases:
        yield Note(position, "releases", "the record has no releases", fatal=True, ocid=ocid)
        return
    if any(_linked(r) for r in releases):
        yield Note(
            position,
            "releases",
            "the record lists its releases by URL only (linked releases): import the release "
            "packages they point to; its compiledRelease is not imported",
            fatal=True,
            ocid=ocid,
        )
        return
    for i, item in enumerate(releases, 1):
        yield Candidate(f"{position} release #{i}", item)
    yield from cross_check(record, position, ocid)


def cross_check(record: dict[str, Any], position: str, ocid: str) -> Iterator[Note]:
    """Notes where a record's embedded compiled / versioned release is not ocdsmerge's of its releases."""
    from ocdsmerge.exceptions import OCDSMergeError

    from .ocds import merger

    for key in ("compiledRelease", "versionedRelease"):
        embedded = record.get(key)
        if not isinstance(embedded, dict):
            continue
        try:
            releases = [r for r in record["releases"] if isinstance(r, dict)]
            if key == "compiledRelease":
                ours = merger().create_compiled_release(releases)
            else:
                ours = merger().create_versioned_release(releases)
        except (OCDSMergeError, TypeError, KeyError, ValueError) as exc:
            yield Note(position, key, f"not cross-checked: its releases cannot be merged ({exc})", ocid=ocid)
            continue
        where = first_difference(embedded, ours, ignore=("id", "date", "tag") if key == "compiledRelease" else ())
        if where is not None:
            yield Note(
                position,
                f"{key}.{where}" if where != "$" else key,
                f"differs from what ocdsmerge compiles from the record's releases (the releases are imported; "
                f"the embedded {key} is not)",
                ocid=ocid,
            )


def first_difference(a: Any, b: Any, *, ignore: tuple[str, ...] = (), path: str = "$") -> str | None:
    """The JSON path of the first place where ``a`` and ``b`` differ (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if path == "$" and key in ignore:
                continue
            sub = key if path == "$" else f"{path}.{key}"
            if key not in a or key not in b:
                return sub
            found = first_difference(a[key], b[key], path=sub)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, path=f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, int | float) and isinstance(b, int | float)):
        return None if a == b and type(a) is type(b) else path
    return None if a == b else path


def candidates(stream: IO[bytes]) -> Iterator[Candidate | Note]:
    """The release candidates of one JSON file (not JSON Lines), streamed (see the module doc).

    Raises ``ijson.JSONError`` (or :class:`EncodingProblem`) where the file cannot be read: the
    candidates before it have been yielded.
    """
    shape, replay = shape_of(stream)
    if shape == "release package":
        for i, value in enumerate(ijson.items(replay, "releases.item", multiple_values=True, use_float=True), 1):
            yield Candidate(f"release #{i}", value)
    elif shape == "record package":
        for i, record in enumerate(ijson.items(replay, "records.item", multiple_values=True, use_float=True), 1):
            yield from record_releases(record, f"record #{i}")
    elif shape == "array":
        for i, value in enumerate(ijson.items(replay, "item", use_float=True), 1):
            yield from expand(value, f"item #{i}")
    else:
        count = 0
        for value in ijson.items(replay, "", multiple_values=True, use_float=True):
            count += 1
            yield from expand(value, f"value #{count}")
        if count == 0:
            raise ijson.IncompleteJSONError("parse error: premature EOF")
