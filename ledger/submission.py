"""What a writer asks to record (:class:`Submission`) and what it gets back once the event is
durable (:class:`Recorded`). Events are recorded through :func:`ledger.procurement.record.record`
(or the OCDS importer), never by appending to the log directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from .core.envelope import Envelope

__all__ = ["UNSET", "Recorded", "Submission", "Unset"]


class Unset:
    """The type of :data:`UNSET`."""

    def __repr__(self) -> str:
        return "UNSET"


#: ``Submission.prev`` default: the caller does not state which head it expects.
UNSET: Final = Unset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """An event a caller asks to record.

    ``prev``, when given, is the caller's view of the tender's head (the hex leaf
    hash of its last event, or ``None`` for a new tender); the append is refused
    with :class:`ConflictError` if the head has moved, like an HTTP ``If-Match``.
    """

    ocid: str
    type: str
    payload: dict[str, Any]
    submission: dict[str, Any] | None = None
    signature: str | None = None
    prev: str | Unset | None = UNSET
    #: The payload's RFC 8785 bytes when the caller has already computed them (bulk imports, to
    #: canonicalise once); they MUST be exactly ``payload_bytes(payload)``.
    canonical: bytes | None = None
    #: The envelope version to record: 2 (a salted commitment, docs/spec.md §2.5), or 1 (the bare
    #: ``payload_sha256``) for a submission an officer signed with the bare hash.
    version: int = 2
    #: Version 2: F, the JSON Pointers of the payload's values committed separately (the personal
    #: data the privacy rules mark: ``ledger.procurement.privacy.committed_fields``).
    fields: tuple[str, ...] = ()
    #: Version 2, signed: the disclosure the signed commitment was made with (instead of ``fields``).
    disclosure: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """A durably recorded event (not yet integrated: it has no log index)."""

    event_id: int
    envelope: Envelope
    leaf_hash: bytes
    #: Version 2: the disclosure stored beside the payload (docs/spec.md §2.5); None for version 1.
    disclosure: dict[str, Any] | None = None
