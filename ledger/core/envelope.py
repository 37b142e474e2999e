"""Envelopes: the leaves of the log (docs/spec.md §2).

An envelope is a JSON object; its RFC 8785 bytes are the leaf data, and
``SHA-256(0x00 || bytes)`` is its leaf hash. The payload is kept beside the entry, so it can be
withheld while the entry stays verifiable: a version 1 envelope binds it by its bare SHA-256
(``payload_sha256``), a version 2 envelope by a salted, field-level commitment
(``payload_commitment``, :mod:`ledger.core.commitment`, docs/spec.md §2.5) that cannot be
reversed by guessing. Both versions stay valid forever; new entries are written as version 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from . import commitment
from .canonical import canonical_json_bytes, sha256_hex, utf8_if_canonical
from .errors import InvalidArgumentError
from .merkle import leaf_hash

#: Envelope versions: 1 binds the payload by ``payload_sha256``, 2 by ``payload_commitment``.
VERSION_1 = 1
VERSION_2 = 2
VERSIONS = (VERSION_1, VERSION_2)
#: The version a v1-only caller builds when it names none (new records are v2: :meth:`Envelope.committing`).
VERSION = VERSION_1

#: Event types of docs/spec.md §3, in the order a tender usually lives them, then the officers' registry's.
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "tender.planned",
        "tender.published",
        "tender.amended",
        "tender.clarified",
        "bid.committed",
        "bid.revealed",
        "tender.cancelled",
        "award.issued",
        "award.challenged",
        "contract.signed",
        "contract.amended",
        "contract.payment",
        "contract.completed",
        # The officers' registry (docs/spec.md §7: the set of officers' addresses is recorded in the log).
        "officer.registered",
        "officer.revoked",
        # The log's heads commitment (docs/spec.md §14.1): appended by the log itself, never by a client.
        "log.heads",
        # Withholding orders (docs/privacy.md): which payloads or fields an order withholds, by an administrator.
        "privacy.withholding",
    }
)

#: OCDS ocid: the registered prefix (``ocds-`` + 6 letters or digits, in whatever case the publisher
#: writes it), ``-``, the publisher's local id. Kept exactly as published (docs/spec.md §2): the
#: local id may hold any character but those that break a URL path or a line even when
#: percent-encoded (``/ \ ? # %``, control characters, line and paragraph separators), and no
#: space at either end.
OCID_PATTERN = re.compile(r"(?i:ocds-[a-z0-9]{6})-[^/\\?#%\x00-\x1f\x7f-\x9f\u2028\u2029]{1,200}")
#: The rule before the one above (lower-case prefix, visible ASCII): what envelopes recorded then
#: may hold. Entries are never rewritten, so readers accept both; new records follow OCID_PATTERN.
LEGACY_OCID_PATTERN = re.compile(r"ocds-[a-z0-9]{6}-[!-~]{1,200}")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_COMMON = frozenset({"v", "origin", "ocid", "seq", "prev", "type", "recorded_at", "submission", "signature"})
#: The payload's binding member of each version.
PAYLOAD_FIELD = {VERSION_1: "payload_sha256", VERSION_2: "payload_commitment"}
_REQUIRED = frozenset({"v", "origin", "ocid", "seq", "prev", "type", "recorded_at"})


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` and microseconds. Requires an aware datetime."""
    return _format_timestamp(moment)


@lru_cache(maxsize=256)
def _format_timestamp(moment: datetime) -> str:
    """Remembered for the last moments given: a batch formats its one ``now`` for every event it
    records and every state it moves (``strftime`` was ~5 % of a bulk request)."""
    if moment.tzinfo is None:
        raise InvalidArgumentError("recorded_at", "needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str, *, field: str = "recorded_at") -> datetime:
    """Parse an RFC 3339 UTC timestamp ending in ``Z``."""
    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        raise InvalidArgumentError(field, f"must be RFC 3339 UTC ending in 'Z', got {text!r}")
    head, _, frac = text[:-1].partition(".")
    try:
        moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidArgumentError(field, f"is not a valid date and time: {exc}") from exc
    return moment.replace(microsecond=int((frac or "0").ljust(6, "0")[:6]))


def _check_timestamp(text: object) -> None:
    """:func:`parse_timestamp`'s check of an envelope's ``recorded_at``; a string that passed is
    remembered (a batch's envelopes share one)."""
    if isinstance(text, str) and text in _GOOD_STAMPS:
        return
    parse_timestamp(text)  # type: ignore[arg-type]
    if len(_GOOD_STAMPS) >= 64:
        _GOOD_STAMPS.clear()
    _GOOD_STAMPS.add(text)  # type: ignore[arg-type]


_GOOD_STAMPS: set[str] = set()


def check_ocid(ocid: object, *, field: str = "ocid", recorded: bool = False) -> str:
    """Return ``ocid`` if it has the OCDS form, else raise naming ``field``.

    ``recorded``: the ocid is read from an entry already in a log, which may follow the rule of
    its time (:data:`LEGACY_OCID_PATTERN`) as well as today's.
    """
    if type(ocid) is str and ocid in _GOOD_OCIDS:
        return ocid
    if recorded and isinstance(ocid, str) and LEGACY_OCID_PATTERN.fullmatch(ocid):
        return ocid
    if (
        not isinstance(ocid, str)
        or not OCID_PATTERN.fullmatch(ocid)
        or ocid != ocid.strip()
        or (not ocid.isascii() and _SURROGATE.search(ocid) is not None)
    ):
        raise InvalidArgumentError(
            field,
            "must be an OCDS ocid like 'ocds-abc123-0001' (prefix 'ocds-' + 6 letters or digits + '-' + the"
            " publisher's id of 1 to 200 characters, none of / \\ ? # % or control characters, no space at"
            f" either end), got {ocid!r}",
        )
    if type(ocid) is str:
        if len(_GOOD_OCIDS) >= 4096:
            _GOOD_OCIDS.clear()
        _GOOD_OCIDS.add(ocid)
    return ocid


#: Ocids that passed :func:`check_ocid` (today's rule, good for both uses) lately: a bulk event's
#: ocid is checked three times (the request, the append, its envelope).
_GOOD_OCIDS: set[str] = set()


def check_event_type(kind: object, *, field: str = "type") -> str:
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise InvalidArgumentError(field, f"unknown event type {kind!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    return str(kind)


def payload_bytes(payload: Any) -> bytes:
    """RFC 8785 bytes of a payload, which must be a JSON object."""
    if not isinstance(payload, dict):
        raise InvalidArgumentError("payload", f"must be a JSON object, got {type(payload).__name__}")
    return canonical_json_bytes(payload, field="payload")


def _members(envelope: Envelope) -> str:
    """The RFC 8785 text of an envelope without a submission (:meth:`Envelope.canonical_bytes`)."""
    return _members_text(
        v=envelope.v, origin=envelope.origin, ocid=envelope.ocid, seq=envelope.seq, prev=envelope.prev,
        type=envelope.type, recorded_at=envelope.recorded_at, bound=envelope.payload_hash or "",
    )  # fmt: skip


def _members_text(
    *, v: int, origin: str, ocid: str, seq: int, prev: str | None, type: str, recorded_at: str, bound: str
) -> str:
    shown_prev = "null" if prev is None else _string(prev)
    return (
        f'{{"ocid":{_string(ocid)},"origin":{_string(origin)},'
        f'"{PAYLOAD_FIELD[v]}":{_string(bound)},"prev":{shown_prev},'
        f'"recorded_at":{_string(recorded_at)},"seq":{int(seq)},'
        f'"type":{_string(type)},"v":{int(v)}}}'
    )


def plain_leaf_data(
    *, v: int, origin: str, ocid: str, seq: int, prev: str | None, kind: str, recorded_at: str, bound: str
) -> bytes | None:
    """The leaf data of the envelope without a submission that these fields make (``kind``: its
    ``type``), as ``Envelope(...).canonical_bytes()`` gives it, without building the envelope: a
    bulk writer's cost per event (building and validating one took ~3/4 of a chained release's
    ~15 µs). None unless every field is plainly valid as construction checks it (an ocid and a
    timestamp that passed lately, a known type, a hash of 64 lowercase hex digits, ``prev`` as
    ``seq`` needs it) and the text is plainly RFC 8785's: then build the :class:`Envelope`,
    which names what is wrong or writes what is right."""
    if (
        type(v) is not int or v not in VERSIONS
        or not isinstance(origin, str) or not origin or "\n" in origin
        or type(ocid) is not str or ocid not in _GOOD_OCIDS
        or type(seq) is not int or not 0 <= seq <= _MAX_SEQ
        or (prev is not None if seq == 0 else not (isinstance(prev, str) and _HEX_HASH.fullmatch(prev)))
        or kind not in EVENT_TYPES
        or type(recorded_at) is not str or recorded_at not in _GOOD_STAMPS
        or not isinstance(bound, str) or not _HEX_HASH.fullmatch(bound)
    ):  # fmt: skip
        return None
    text = _members_text(v=v, origin=origin, ocid=ocid, seq=seq, prev=prev, type=kind, recorded_at=recorded_at,
                         bound=bound)  # fmt: skip
    return utf8_if_canonical(text)


#: A JSON string as RFC 8785 writes it (ECMAScript's escapes: the C encoder of ``json.dumps``
#: with ``ensure_ascii=False``, what :func:`canonical_json_bytes` uses).
_string = json.encoder.encode_basestring

#: The largest seq: RFC 8785 numbers are exact up to 2**53 - 1.
_MAX_SEQ = 2**53 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One log entry. Construction validates every field (errors name the field)."""

    origin: str
    ocid: str
    seq: int
    prev: str | None
    type: str
    recorded_at: str
    #: Version 1: the payload's bare SHA-256 (lowercase hex); None in version 2.
    payload_sha256: str | None = None
    submission: dict[str, Any] | None = None
    signature: str | None = None
    v: int = VERSION
    #: Version 2: the payload's salted commitment (lowercase hex); None in version 1.
    payload_commitment: str | None = None

    def __post_init__(self) -> None:
        if type(self.v) is not int or self.v not in VERSIONS:
            raise InvalidArgumentError("v", f"unsupported envelope version {self.v!r}, expected 1 or 2")
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise InvalidArgumentError("origin", f"must be a non-empty single line, got {self.origin!r}")
        check_ocid(self.ocid, recorded=True)
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or not 0 <= self.seq <= _MAX_SEQ:
            shown = self.seq if not isinstance(self.seq, int) or self.seq < 10**30 else "a larger integer"
            raise InvalidArgumentError("seq", f"must be an integer >= 0 and <= 2**53 - 1, got {shown!r}")
        if self.seq == 0 and self.prev is not None:
            raise InvalidArgumentError("prev", f"must be null for seq 0, got {self.prev!r}")
        if self.seq > 0 and not (isinstance(self.prev, str) and _HEX_HASH.fullmatch(self.prev)):
            raise InvalidArgumentError(
                "prev", f"must be the previous event's lowercase hex leaf hash for seq {self.seq}, got {self.prev!r}"
            )
        check_event_type(self.type)
        _check_timestamp(self.recorded_at)
        name, other = PAYLOAD_FIELD[self.v], PAYLOAD_FIELD[VERSION_1 if self.v == VERSION_2 else VERSION_2]
        bound = self.payload_hash
        if not isinstance(bound, str) or not _HEX_HASH.fullmatch(bound):
            raise InvalidArgumentError(name, f"must be 64 lowercase hex digits, got {bound!r}")
        if (self.payload_commitment if self.v == VERSION_1 else self.payload_sha256) is not None:
            raise InvalidArgumentError(other, f"is not a field of a version {self.v} envelope (it has {name})")
        if (self.submission is None) != (self.signature is None):
            raise InvalidArgumentError("signature", "submission and signature come together or not at all")
        if self.submission is not None and not isinstance(self.submission, dict):
            raise InvalidArgumentError("submission", f"must be a JSON object, got {type(self.submission).__name__}")
        if self.signature is not None and not (
            isinstance(self.signature, str) and _SIGNATURE.fullmatch(self.signature)
        ):
            raise InvalidArgumentError("signature", "must be a 65-byte signature as 0x-prefixed lowercase hex")

    @property
    def payload_hash(self) -> str | None:
        """What binds the payload: ``payload_sha256`` (v1) or ``payload_commitment`` (v2)."""
        return self.payload_sha256 if self.v == VERSION_1 else self.payload_commitment

    def payload_binding(self, payload: Any, *, disclosure: Any = None, data: bytes | None = None) -> str:
        """What :attr:`payload_hash` must be for ``payload`` (v1: its SHA-256, from ``data``, its
        RFC 8785 bytes, when given; v2: :func:`ledger.core.commitment.recompute` of the payload, with
        nulls at its withheld fields, and its ``disclosure``).

        Raises :class:`InvalidArgumentError` naming the field when the payload has no RFC 8785 form,
        a v2 payload comes without its disclosure (field ``disclosure``), or the disclosure is malformed.
        """
        if self.v == VERSION_1:
            return sha256_hex(data if data is not None else payload_bytes(payload))
        if disclosure is None:
            raise InvalidArgumentError("disclosure", "is missing: a version 2 payload is checked with its disclosure")
        return commitment.recompute(payload, disclosure)

    @classmethod
    def _binding(
        cls,
        version: int,
        bound: str,
        *,
        origin: str,
        ocid: str,
        seq: int,
        prev: str | None,
        type: str,
        recorded_at: datetime,
        submission: dict[str, Any] | None,
        signature: str | None,
    ) -> Envelope:
        """The envelope of ``version`` whose payload member (:data:`PAYLOAD_FIELD`) is ``bound``."""
        return cls(
            v=version,
            origin=origin,
            ocid=ocid,
            seq=seq,
            prev=prev,
            type=type,
            recorded_at=format_timestamp(recorded_at),
            submission=submission,
            signature=signature,
            payload_sha256=bound if version == VERSION_1 else None,
            payload_commitment=bound if version == VERSION_2 else None,
        )

    @classmethod
    def for_payload(
        cls,
        *,
        origin: str,
        ocid: str,
        seq: int,
        prev: str | None,
        type: str,
        recorded_at: datetime,
        payload: Any,
        submission: dict[str, Any] | None = None,
        signature: str | None = None,
    ) -> tuple[Envelope, bytes]:
        """Build the (version 1) envelope of ``payload``; return it with the payload's RFC 8785 bytes."""
        data = payload_bytes(payload)
        envelope = cls._binding(
            VERSION_1, sha256_hex(data), origin=origin, ocid=ocid, seq=seq, prev=prev, type=type,
            recorded_at=recorded_at, submission=submission, signature=signature,
        )  # fmt: skip
        return envelope, data

    @classmethod
    def committing(
        cls,
        *,
        origin: str,
        ocid: str,
        seq: int,
        prev: str | None,
        type: str,
        recorded_at: datetime,
        payload: Any,
        fields: Iterable[str] = (),
        seed: bytes | None = None,
        submission: dict[str, Any] | None = None,
        signature: str | None = None,
    ) -> tuple[Envelope, bytes, dict[str, Any]]:
        """Build the version 2 envelope of ``payload`` with the fields ``fields`` (JSON Pointers)
        committed separately; return it with the payload's RFC 8785 bytes and its disclosure.
        ``seed``: only for test vectors (a fresh random one otherwise)."""
        data = payload_bytes(payload)
        bound, disclosure = commitment.new_commitment(payload, fields, seed=seed, payload_bytes=data)
        envelope = cls._binding(
            VERSION_2, bound, origin=origin, ocid=ocid, seq=seq, prev=prev, type=type,
            recorded_at=recorded_at, submission=submission, signature=signature,
        )  # fmt: skip
        return envelope, data, disclosure

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "v": self.v,
            "origin": self.origin,
            "ocid": self.ocid,
            "seq": self.seq,
            "prev": self.prev,
            "type": self.type,
            "recorded_at": self.recorded_at,
            PAYLOAD_FIELD[self.v]: self.payload_hash,
        }
        if self.submission is not None:
            obj["submission"] = self.submission
            obj["signature"] = self.signature
        return obj

    @classmethod
    def from_json(cls, obj: Any) -> Envelope:
        """Parse a version 1 or 2 envelope object; unknown fields are refused (a verifier must know
        them all): ``v`` must be the integer 1 or 2 (not ``true``), and each version has its own
        payload member."""
        if not isinstance(obj, dict):
            raise InvalidArgumentError("envelope", f"must be a JSON object, got {type(obj).__name__}")
        version = obj.get("v")
        if type(version) is not int or version not in VERSIONS:
            raise InvalidArgumentError("envelope.v", f"unsupported envelope version {version!r}, expected 1 or 2")
        unknown = sorted(set(obj) - _COMMON - {PAYLOAD_FIELD[version]})
        if unknown:
            raise InvalidArgumentError(f"envelope.{unknown[0]}", f"unknown field in a v{version} envelope")
        missing = sorted((_REQUIRED | {PAYLOAD_FIELD[version]}) - set(obj))
        if missing:
            raise InvalidArgumentError(f"envelope.{missing[0]}", "missing")
        return cls(**obj)

    def canonical_bytes(self) -> bytes:
        """The leaf data: RFC 8785 bytes of :meth:`to_json`.

        An envelope without a submission (every imported release's) is written member by member
        in RFC 8785's order (its ASCII keys sort as UTF-16 code units do; its numbers are
        validated integers): one string escape per member instead of a generic encoding, the
        writer's cost per imported release. The same bytes as the generic path (a property test
        checks them against ``rfc8785.dumps``); text that path hands to the library (an astral
        character, a lone surrogate) goes to it here too.
        """
        if self.submission is None:
            data = utf8_if_canonical(_members(self))
            if data is not None:
                return data
        return canonical_json_bytes(self.to_json(), field="envelope")

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.canonical_bytes())
