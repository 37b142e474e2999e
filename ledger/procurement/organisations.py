"""Who an organisation is, across tenders: by its identifier (scheme + id) where it is published,
by its normalised name only as a fallback, never by an identifier that clearly names no one.

OCDS gives each organisation of a contracting process an ``id`` that is only unique within that
process, and, in ``parties[].identifier`` (OCDS 1.1) or on the reference itself (OCDS 1.0), its
registered identifier: ``scheme`` (an org-id.guide list code, e.g. ``GB-COH``, ``MX-RFC``) and
``id``. :func:`organisation_key` gives the key that "the same buyer" and "the same supplier"
compare across the ledger:

- ``<scheme>/<id>`` when a scheme and a trustworthy id are published;
- else the reference's own ``id`` when it has the org-id form ``XX-SCHEME-id`` (many publishers use
  the registered identifier as the party id);
- else ``name:<normalised name>`` (accents and punctuation dropped, case folded, spaces collapsed);
- None when there is nothing to go by.

**Identifiers that name no one.** An id that is a placeholder — one or two digits (the UK data
gives every buyer the id ``1``), only zeros, or words such as ``n/a``, ``null``, ``sin dato`` —
is not trusted (:func:`trusted_identifier`), nor is one shared by differently named parties of the
same release: the name is used instead.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

_PLACEHOLDER = re.compile(
    r"^(?:\d{1,2}|0+|-+|\.+|n/?a|na|none|null|nil|unknown|desconocido|sin dato|s/?d|x+|\?+)$", re.IGNORECASE
)
_ORG_ID = re.compile(r"^[A-Z]{2}-[A-Z0-9]+-\S+$")


@functools.lru_cache(maxsize=1 << 16)
def normalise_name(name: str) -> str:
    """A name as compared across tenders: accents and punctuation dropped, case folded, spaces collapsed."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s]", " ", text.casefold())
    return " ".join(text.split())


def trusted_identifier(value: Any) -> bool:
    """Whether an identifier's id can stand for one organisation (not a placeholder)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value).strip()
    return bool(text) and not _PLACEHOLDER.match(text)


def _parties(compiled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for party in compiled.get("parties") or []:
        if isinstance(party, dict) and isinstance(party.get("id"), str | int):
            out[str(party["id"])] = party
    return out


def _shared_identifiers(parties: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """(scheme, id) pairs that parties of different names carry in one release: not an identity."""
    names: dict[tuple[str, str], set[str]] = {}
    for party in parties.values():
        identifier = party.get("identifier")
        if isinstance(identifier, dict) and isinstance(party.get("name"), str):
            key = (str(identifier.get("scheme") or ""), str(identifier.get("id") or "").strip())
            names.setdefault(key, set()).add(normalise_name(party["name"]))
    return {key for key, seen in names.items() if len(seen) > 1}


def organisation_key(
    reference: Any, parties: dict[str, dict[str, Any]], shared: set[tuple[str, str]] | None = None
) -> str | None:
    """The key of an organisation reference (see the module doc)."""
    if not isinstance(reference, dict):
        return None
    ref_id = reference.get("id")
    if isinstance(ref_id, str):
        party = parties.get(ref_id)
    elif isinstance(ref_id, int) and not isinstance(ref_id, bool):
        party = parties.get(str(ref_id))
    else:
        party = None
    identifier = reference.get("identifier")
    name = reference.get("name")
    if not isinstance(name, str):
        name = None
    if party is not None:
        if not isinstance(identifier, dict):
            identifier = party.get("identifier")
        if name is None and isinstance(party_name := party.get("name"), str):
            name = party_name
    if isinstance(identifier, dict):
        scheme, value = identifier.get("scheme"), identifier.get("id")
        pair = (str(scheme or ""), str(value).strip() if value is not None else "")
        if isinstance(scheme, str) and scheme and trusted_identifier(value) and pair not in (shared or set()):
            return f"{scheme}/{pair[1]}"
    if isinstance(ref_id, str) and _ORG_ID.match(ref_id):
        return ref_id
    normalised = normalise_name(name) if name else ""
    return "name:" + normalised if normalised else None


def buyer_key(compiled: dict[str, Any]) -> str | None:
    """The key of a compiled release's buyer (``buyer``, else the party with the buyer role)."""
    parties = _parties(compiled)
    buyer = compiled.get("buyer")
    if not isinstance(buyer, dict):
        buyer = next((p for p in parties.values() if "buyer" in (p.get("roles") or [])), None)
    return organisation_key(buyer, parties, _shared_identifiers(parties))


#: The party index of the release last asked about: the indicators ask about one release many
#: times in a row. Kept with the release itself and its parties list (so neither identity can be
#: reused by another object while cached), that list's length, and the keys already given for
#: its references (each kept with the reference itself, for the same reason).
_LAST: list[Any] = [None, None, -1, {}, set(), {}]


def _index(
    compiled: dict[str, Any],
) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]], dict[int, tuple[Any, str | None]]]:
    listed = compiled.get("parties")
    size = len(listed) if isinstance(listed, list) else -1
    if _LAST[0] is compiled and _LAST[1] is listed and _LAST[2] == size:
        return _LAST[3], _LAST[4], _LAST[5]
    parties = _parties(compiled)
    shared = _shared_identifiers(parties)
    known: dict[int, tuple[Any, str | None]] = {}
    _LAST[:] = [compiled, listed, size, parties, shared, known]
    return parties, shared, known


def _key(
    reference: Any,
    parties: dict[str, dict[str, Any]],
    shared: set[tuple[str, str]],
    known: dict[int, tuple[Any, str | None]],
) -> str | None:
    seen = known.get(id(reference))
    if seen is not None and seen[0] is reference:
        return seen[1]
    key = organisation_key(reference, parties, shared)
    known[id(reference)] = (reference, key)
    return key


def keys_of(compiled: dict[str, Any], references: list[Any]) -> list[str]:
    """The keys of ``references`` (organisation references of ``compiled``), each once, in order.
    Requires ``compiled`` and its references not to be changed in place between calls about the
    same release (its party index and keys are cached: see :data:`_LAST`)."""
    parties, shared, known = _index(compiled)
    out: list[str] = []
    for reference in references:
        seen = known.get(id(reference))  # _key, inlined: six calls a tender in a ledger pass
        if seen is not None and seen[0] is reference:
            key = seen[1]
        else:
            key = organisation_key(reference, parties, shared)
            known[id(reference)] = (reference, key)
        if key is not None and key not in out:
            out.append(key)
    return out


def key_each(compiled: dict[str, Any], references: list[Any]) -> list[str | None]:
    """The key of each of ``references`` (organisation references of ``compiled``), aligned with
    them (None where there is nothing to go by)."""
    parties, shared, known = _index(compiled)
    return [_key(reference, parties, shared, known) for reference in references]
