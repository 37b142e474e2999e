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
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import ijson
import orjson

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

    from .ocds import compile_releases, merger

    for key in ("compiledRelease", "versionedRelease"):
        embedded = record.get(key)
        if not isinstance(embedded, dict):
            continue
        try:
            releases = [r for r in record["releases"] if isinstance(r, dict)]
            if key == "compiledRelease":
                ours = compile_releases(releases)
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


def candidates(
    stream: IO[bytes], *, most: int = 0, tell: Callable[[], int] = lambda: 0
) -> Iterator[Candidate | Note | Slices]:
    """The release candidates of one JSON file (not JSON Lines), streamed (see the module doc);
    with ``most``, a release package's releases cut and not parsed (:func:`package_slices`).

    Raises ``ijson.JSONError`` (or :class:`EncodingProblem`) where the file cannot be read: the
    candidates before it have been yielded.
    """
    shape, replay = shape_of(stream)
    if shape == "release package" and most > 0:
        yield from package_slices(replay, most=most, tell=tell)
    elif shape == "release package":
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


# --- cut, not parsed: a release package's releases and JSON Lines as bytes ------------------
#
# The importing process only finds where each release is (in C: one regular-expression match
# per release) and hands the bytes to the processes that check them, which parse them there
# (:func:`parse_value`). What the cut gives is proved by the parse: when every piece between
# the separators ``,`` and the closing ``]`` parses as one JSON value, the array is exactly
# those values (JSON's grammar is unambiguous); a piece that does not parse is where the file
# is broken. Whatever the scanner cannot cut (a release that is not an object, nests deeper than
# :data:`SCAN_DEPTH`, or takes more than :data:`SCAN_LIMIT` bytes, a file that ends inside a
# release, the rest of the package after its ``releases``) is parsed by ijson as before.

#: Bytes read at a time by the scanner.
BLOCK = 1 << 20
#: The most bytes of one release (or of the package's keys before ``releases``) the scanner
#: holds while looking for its end; beyond it, the rest of the file goes to the parser.
SCAN_LIMIT = 16 << 20
#: Objects nested deeper than this are left to the parser (releases nest ~8; the import refuses 32).
SCAN_DEPTH = 34

_WS = rb"[ \t\n\r]*"
#: An escape sequence, consumed whole: made ``__`` (same length) before scanning, so that every
#: remaining quote opens or closes a string.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)


def _nested(depth: int, opening: bytes, closing: bytes) -> bytes:
    """A pattern matching one balanced bracketed value nested at most ``depth`` deep, over text
    whose escapes were blanked (possessive: linear time, and no backtracking on a failure)."""
    other = rb'[^"' + opening + closing + rb"]++"
    string = rb'"[^"]*+"'
    pattern = rb"[" + opening + rb"](?:" + other + rb"|" + string + rb")*+[" + closing + rb"]"
    for _ in range(depth - 1):
        pattern = rb"[" + opening + rb"](?:" + other + rb"|" + string + rb"|" + pattern + rb")*+[" + closing + rb"]"
    return pattern


#: One release (an object) of the array, then the separator or the array's end.
_ITEM = re.compile(_WS + rb"(" + _nested(SCAN_DEPTH, rb"{", rb"}") + rb")" + _WS + rb"([,\]])")
_EMPTY = re.compile(_WS + rb"\]")
_OPEN = re.compile(_WS + rb"\{")
_KEY = re.compile(_WS + rb'"([^"]*+)"' + _WS + rb":" + _WS)
#: A value of the package before ``releases`` (any value: ijson has already read these keys), then ``,``.
_SKIP = re.compile(rb"(?:" + _nested(SCAN_DEPTH, rb"{\[", rb"}\]") + rb'|"[^"]*+"|[^,}\]" \t\n\r]++)' + _WS + rb",")
#: Every digit made ``0`` and every other byte a space, and 19 digits in a row: an integer orjson
#: may read otherwise than ijson (which refuses one past 64 bits) is found by ``in`` (in C).
_DIGITS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_LONG_DIGITS = b"0" * 19


@dataclass(frozen=True, slots=True)
class Slices:
    """Consecutive values of a file, cut but not parsed: the i-th is ``data[spans[2i]:spans[2i+1]]``.
    ``kind`` "release": a release package's releases, numbered ``first``, ``first + 1``...;
    "line": JSON Lines (each line with its newline), numbered by ``lines``. ``read``: bytes of
    the file read when they were cut (where a problem found in them says the parser was)."""

    kind: Literal["release", "line"]
    data: bytes
    spans: array[int]
    first: int = 0
    lines: array[int] = field(default_factory=lambda: array("q"))
    read: int = 0

    def __len__(self) -> int:
        return len(self.spans) // 2

    def value(self, i: int) -> bytes:
        return self.data[self.spans[2 * i] : self.spans[2 * i + 1]]

    def number(self, i: int) -> int:
        return self.lines[i] if self.kind == "line" else self.first + i

    def split(self, count: int) -> tuple[Slices, Slices]:
        """The first ``count`` values, and the others (0 < count < len(self))."""
        cut = self.spans[2 * count]
        rest = array("q", (s - cut for s in self.spans[2 * count :]))
        head = Slices(self.kind, self.data[: self.spans[2 * count - 1]], self.spans[: 2 * count], self.first,
                      self.lines[:count], self.read)  # fmt: skip
        tail = Slices(self.kind, self.data[cut:], rest, self.first + count, self.lines[count:], self.read)
        return head, tail


def parse_value(data: bytes) -> Any:
    """One JSON value exactly as ijson reads it in a stream (``use_float``): through orjson when
    that gives the same (it does, floats correctly rounded and the last of repeated keys kept,
    but for an integer past 64 bits, which it reads as a float: such text goes to ijson), else
    ijson, which refuses what the stream's parse refuses. Raises ``ijson.JSONError`` or
    ``UnicodeDecodeError``."""
    if _LONG_DIGITS not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    for value in ijson.items(data, "", use_float=True):
        return value
    raise ijson.IncompleteJSONError("parse error: premature EOF")


class _Scanner:
    """A stream read a block at a time, with its text's escapes blanked for the patterns."""

    def __init__(self, stream: IO[bytes], head: bytes = b"") -> None:
        self.stream = stream
        self.buf = head
        self.blank = _ESCAPE.sub(b"__", head)
        self.eof = False

    def more(self, keep: int) -> bool:
        """Drop the text before ``keep`` and read a block more; False (nothing dropped) at the end
        of the stream or once :data:`SCAN_LIMIT` bytes are held (the caller gives the rest to the
        parser)."""
        if self.eof or len(self.buf) - keep > SCAN_LIMIT:
            return False
        block = self.stream.read(BLOCK)
        if not block:
            self.eof = True
            return False
        self.buf = self.buf[keep:] + block
        # the blanked text is made again from ``keep``: an escape cut by the block's end is whole now
        self.blank = _ESCAPE.sub(b"__", self.buf)
        return True

    def rest(self, start: int, prefix: bytes) -> io.BufferedReader:
        """The file from ``start`` of the held text on, after ``prefix``."""
        return io.BufferedReader(_Chain(prefix + self.buf[start:], self.stream), buffer_size=SAMPLE)


def _releases_start(scan: _Scanner) -> int | None:
    """Where the package's ``releases`` array begins (just after its ``[``), the package's keys
    before it skipped; None when the scanner cannot tell (the parser reads the file then)."""
    while True:
        pos = 0
        opened = _OPEN.match(scan.blank, pos)
        while opened is not None:
            key = _KEY.match(scan.blank, opened.end() if pos == 0 else pos)
            if key is None:
                break
            if b"\\" in scan.buf[key.start(1) : key.end(1)]:
                return None  # an escaped key: ijson's reading of it decides
            if key.group(1) == b"releases":
                after = scan.buf[key.end() : key.end() + 1]
                if not after:
                    break  # the block ends there: read on
                return key.end() + 1 if after == b"[" else None
            value = _SKIP.match(scan.blank, key.end())
            if value is None:
                break
            pos = value.end()
        if not scan.more(0):
            return None


def package_slices(stream: IO[bytes], *, most: int, tell: Callable[[], int]) -> Iterator[Slices | Candidate]:
    """The releases of a release package (``stream`` from its first byte) as :class:`Slices` of
    at most ``most`` releases, cut without parsing; what the scanner cannot cut, from there to
    the end of the file, as :class:`Candidate` values parsed by ijson (named as
    :func:`candidates` names them). ``tell()``: bytes of the file read so far. Raises what
    :func:`candidates` raises, where it would."""
    scan = _Scanner(stream)
    start = _releases_start(scan)
    if start is None:
        for i, value in enumerate(
            ijson.items(scan.rest(0, b""), "releases.item", multiple_values=True, use_float=True), 1
        ):
            yield Candidate(f"release #{i}", value)
        return
    done = 0  # releases yielded
    pos = start
    spans = array("q")

    def piece() -> Slices:
        cut = array("q", (s - spans[0] for s in spans))
        return Slices("release", scan.buf[spans[0] : spans[-1]], cut, done + 1, read=tell())

    ended = False
    # where the parser would go on from: ``pos``, or the ``,`` before it once a release is cut
    # (the parser then reads on after a release of its own, which is not given)
    resume, placeholder = pos, False
    empty = _EMPTY.match(scan.blank, pos)
    if empty is not None:
        ended, pos = True, empty.end() - 1
        resume = pos
    while not ended:
        found = _ITEM.match(scan.blank, pos)
        if found is None:
            if spans:
                yield piece()
                done += len(spans) // 2
                spans = array("q")
            if _OPEN.match(scan.blank, pos) is None and scan.blank[pos:].strip():
                break  # not an object: for the parser
            if scan.more(resume):
                pos, resume = pos - resume, 0
                continue
            break
        spans.append(found.start(1))
        spans.append(found.end(1))
        pos = found.end()
        resume, placeholder = found.start(2), True
        if found.group(2) == b"]":
            ended, placeholder = True, False
        if len(spans) // 2 >= most or ended:
            yield piece()
            done += len(spans) // 2
            spans = array("q")
    # the rest (after the array's ``]``, or from the release the scanner could not cut) as the
    # package's ``releases`` read on by ijson: later keys, more packages, or where it breaks
    rest = scan.rest(resume, b'{"releases":[{}' if placeholder else b'{"releases":[')
    parsed = ijson.items(rest, "releases.item", multiple_values=True, use_float=True)
    if placeholder:
        next(parsed)
    for i, value in enumerate(parsed, done + 1):
        yield Candidate(f"release #{i}", value)


def line_slices(stream: IO[bytes], *, most: int, tell: Callable[[], int]) -> Iterator[Slices]:
    """The non-blank lines of a JSON Lines file as :class:`Slices` of at most ``most`` lines
    (each with its newline, as iterating the stream gives it), numbered from 1 as the file's
    lines. ``tell()``: bytes of the file read so far."""
    number = 0
    held = b""
    while True:
        block = stream.read(BLOCK)
        text = held + block
        end = len(text) if not block else text.rfind(b"\n") + 1
        region, held = text[:end], text[end:]
        spans, lines, offset = array("q"), array("q"), 0
        parts = region.split(b"\n") if region else []
        if region.endswith(b"\n"):
            parts.pop()  # split()'s empty piece after the last newline
        for line in parts:
            number += 1
            size = min(len(line) + 1, end - offset)  # the last line of a file may have no newline
            if line.strip():
                spans.append(offset)
                spans.append(offset + size)
                lines.append(number)
            offset += size
        for first in range(0, len(lines), most):
            part = spans[2 * first : 2 * (first + most)]
            low, high = part[0], part[-1]
            yield Slices("line", region[low:high], array("q", (s - low for s in part)),
                         lines=lines[first : first + most], read=tell())  # fmt: skip
        if not block:
            return
