"""A tender's events as OCDS 1.1: releases, a release package, the compiled release and record.

Each recorded event becomes one release: ``id`` ``<ocid>-<seq>``, ``date`` the envelope's
``recorded_at``, ``initiationType`` "tender", a ``tag`` from the event type and the payload's
OCDS objects (table :data:`TAGS` and :func:`release`). The compiled release is made by the
Open Contracting Partnership's reference merge library, ocdsmerge.

ocdsmerge derives its merge rules from the OCDS release schema, which it downloads by default;
a deployment may have no Internet access, so the OCDS 1.1.4 release schema ships with the project
(``schema/release-schema.json``, see ``schema/README.md``) and :func:`merger` gives it to
ocdsmerge. A deployment that publishes OCDS extensions with merge rules of their own can pass a
patched schema (a dict or a local file path) to :func:`merger`.

Tenders imported from OCDS data (:mod:`ledger.procurement.importer`) keep each release as its
event's payload: :func:`releases` gives those back unchanged.
"""

from __future__ import annotations

import copy
import functools
import json
import uuid
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ocdsmerge import Merger
from ocdsmerge.exceptions import DuplicateIdValueWarning
from ocdsmerge.flatten import IdValue, unflatten
from ocdsmerge.merge import CompiledRelease
from ocdsmerge.util import sorted_releases

from ledger.core.errors import InvalidArgumentError
from ledger.store.reader import StoredEvent

OCDS_VERSION = "1.1"

#: The release tag of each event type (OCDS releaseTag codelist).
TAGS: dict[str, str] = {
    "tender.planned": "planning",
    "tender.published": "tender",
    "tender.amended": "tenderAmendment",
    "tender.clarified": "tenderUpdate",
    "bid.committed": "tenderUpdate",
    "bid.revealed": "tenderUpdate",
    "tender.cancelled": "tenderCancellation",
    "award.issued": "award",
    "award.challenged": "awardUpdate",
    "contract.signed": "contract",
    "contract.amended": "contractAmendment",
    "contract.payment": "implementation",
    "contract.completed": "contractTermination",
}

#: The OCDS 1.1 release schema shipped with the project (import validation, merge rules).
RELEASE_SCHEMA = Path(__file__).parent / "schema" / "release-schema.json"


@functools.cache
def release_schema() -> dict[str, Any]:
    """The OCDS 1.1 release schema (a shared dict: do not change it)."""
    schema: dict[str, Any] = json.loads(RELEASE_SCHEMA.read_text(encoding="utf-8"))
    return schema


@functools.cache
def _default_merger() -> Merger:
    return Merger(schema=release_schema())


def merger(schema: str | dict[str, Any] | None = None) -> Merger:
    """An ocdsmerge merger with the rules of the shipped OCDS 1.1 release schema, or of ``schema``
    (a release schema as a dict or a local path, for deployments with extensions) when given."""
    if schema is None:
        return _default_merger()
    return Merger(schema=schema)


def compile_releases(releases: list[dict[str, Any]], *, using: Merger | None = None) -> dict[str, Any]:
    """``using.create_compiled_release(releases)`` (the shipped schema's merger by default), the
    same dict made faster: ocdsmerge's own steps (sort by date, flatten each release into
    ``{json path: value}``, later releases over earlier, ``unflatten``), its flatten written
    again with its merge rules as a tree walked key by key (ocdsmerge builds and looks up a tuple
    per field) and straight into the merged dict (ocdsmerge flattens each release into its own
    dict first). Rule overrides and a release that is not a plain dict with a string date are left
    to ocdsmerge (which raises its own error for the latter); otherwise its warnings and errors
    are given as ocdsmerge gives them. Like ocdsmerge, the result shares values with ``releases``
    (and in odd cases appends to a list of them: an array where an earlier release had a value).
    Checked against ocdsmerge by tests/procurement/test_compile.py.
    """
    merger_ = using or merger()
    if (
        merger_.rule_overrides
        or type(releases) is not list
        or not all(type(r) is dict and type(r.get("date")) is str for r in releases)
    ):
        made: dict[str, Any] = merger_.create_compiled_release(releases)
        return made
    return _compiled_onto({("tag",): ["compiled"]}, releases, _rule_tree(merger_), [])


def merge_into(
    compiled: dict[str, Any], releases: list[dict[str, Any]], *, using: Merger | None = None
) -> dict[str, Any]:
    """ocdsmerge's ``CompiledRelease(compiled, ...)`` extended with ``releases`` (``asdict()``): a
    stored compiled release with later releases merged in, the same dict with its keys in the
    same order, made faster as :func:`compile_releases` makes its own (ocdsmerge flattens the
    stored compiled release and each release into dicts of its own, by tuples of each field's
    path). Rule overrides and a release that is not a plain dict with a string date are left to
    ocdsmerge. Checked against ocdsmerge by tests/procurement/test_import_date_order.py."""
    merger_ = using or merger()
    if merger_.rule_overrides or not all(type(r) is dict and type(r.get("date")) is str for r in releases):
        made = CompiledRelease(compiled, merge_rules=merger_.merge_rules, rule_overrides=merger_.rule_overrides)
        made.extend(releases)
        out: dict[str, Any] = made.asdict()
        return out
    rules = _rule_tree(merger_)
    flat: dict[tuple[Any, ...], Any] = {}
    repeats: list[str] = []
    _flatten_object(compiled, rules, flat, (), repeats)
    flat[("tag",)] = ["compiled"]  # where ocdsmerge's CompiledRelease sets it: after the stored fields
    return _compiled_onto(flat, releases, rules, repeats)


def _compiled_onto(
    flat: dict[tuple[Any, ...], Any], releases: list[dict[str, Any]], rules: _Rules, repeats: list[str]
) -> dict[str, Any]:
    """ocdsmerge's compiled release of ``flat`` (a compiled release flattened, ``{json path:
    value}``) with ``releases`` merged over it in date order, each flattened straight into it;
    ocdsmerge's warnings of repeated ids (``repeats``, with those found so far) given as it
    gives them."""
    try:
        for release in sorted_releases(releases):
            ocid, date = release.get("ocid"), release["date"]
            flat[("id",)] = f"{ocid}-{date}"
            flat[("date",)] = date
            flat[("ocid",)] = ocid
            _flatten_object(release, rules, flat, (), repeats, top=True)
        compiled: dict[str, Any] = unflatten(flat)  # ocdsmerge's own (its errors, raised where it raises them)
    finally:  # warned as ocdsmerge warns: before its error, if any
        for message in repeats:
            warnings.warn(message, category=DuplicateIdValueWarning, stacklevel=3)
    return compiled


_OMIT, _WHOLE = "omitWhenMerged", "wholeListMerge"
#: A merge rule tree: field name -> (its rule or None, the tree of the fields under it).
_Rules = dict[Any, tuple[str | None, "_Rules"]]
_NO_RULES: _Rules = {}


@functools.lru_cache(maxsize=8)
def _rule_tree(using: Merger) -> _Rules:
    """``using.merge_rules`` ({field path tuple: rule}) as a tree: the rule of a path is found
    by walking its names, and a path that leaves the tree has no rule below it."""
    tree: dict[Any, list[Any]] = {}
    for path, rule in using.merge_rules.items():
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, [None, {}])[1]
        node.setdefault(path[-1], [None, {}])[0] = rule

    def frozen(node: dict[Any, list[Any]]) -> _Rules:
        return {name: (rule, frozen(below)) for name, (rule, below) in node.items()}

    return frozen(tree)


def _flatten_object(
    obj: dict[str, Any],
    rules: _Rules,
    flat: dict[tuple[Any, ...], Any],
    path: tuple[Any, ...],
    repeats: list[str],
    *,
    top: bool = False,
) -> None:
    """ocdsmerge.flatten of an object (at ``path``, its fields' rules ``rules``) into ``flat``:
    the same keys, values and order; ocdsmerge's warnings of repeated ids added to ``repeats``.
    ``top``: a release, whose ``tag`` ocdsmerge drops first."""
    for key, value in obj.items():
        if top and key == "tag":
            continue
        below = _NO_RULES
        if rules:
            entry = rules.get(key)
            if entry is not None:
                rule, below = entry
                if rule == _OMIT:
                    continue
                if rule == _WHOLE:
                    flat[(*path, key)] = value
                    continue
        kind = type(value)
        if kind in _SCALARS:  # JSON's own types first: ocdsmerge's isinstance tests, answered by type
            flat[(*path, key)] = value
        elif kind is list:
            for item in value:
                if not isinstance(item, dict):  # an array of values (or mixed) is a value
                    flat[(*path, key)] = value
                    break
            else:
                if value:
                    _flatten_array(value, below, flat, (*path, key), repeats)
        elif not isinstance(value, dict | list):
            flat[(*path, key)] = value
        elif value:  # an object (or a subclass of list, which fails as ocdsmerge fails on it)
            _flatten_object(value, below, flat, (*path, key), repeats)  # type: ignore[arg-type]


#: The types a JSON parser makes that are neither objects nor arrays.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flatten_array(
    items: list[dict[str, Any]],
    rules: _Rules,
    flat: dict[tuple[Any, ...], Any],
    path: tuple[Any, ...],
    repeats: list[str],
) -> None:
    """ocdsmerge.flatten of a non-empty array of objects: each object under its ``id`` (an
    ``IdValue``, equal to ``str(id)``), one without an ``id`` under a fresh UUID, as ocdsmerge
    names them; a repeated ``id`` noted in ``repeats`` as ocdsmerge warns of it."""
    seen: set[str] = set()
    for item in items:
        if "id" in item:
            original = identifier = item["id"]
        else:
            original, identifier = None, str(uuid.uuid1(1))
        name = str.__new__(IdValue, identifier)  # IdValue(identifier) without its Python __init__
        name.identifier = identifier
        name._original_value = original  # its property's slot, set without the setter's call
        if name in seen:
            rule_path = ".".join(str(p) for p in path if type(p) is not IdValue)
            repeats.append(f"Multiple objects have the `id` value {name!r} in the `{rule_path}` array")
        seen.add(name)
        if item:
            _flatten_object(item, rules, flat, (*path, name), repeats)


def _party(org: dict[str, Any], *roles: str) -> dict[str, Any]:
    return {"id": org["id"], "name": org["name"], "roles": list(roles)}


def release(*, ocid: str, seq: int, event_type: str, date: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The OCDS release of one event (``payload`` as validated by :mod:`payloads`; not changed).

    Raises :class:`InvalidArgumentError` (field ``type``) for an event that is not a tender's.
    """
    tag = TAGS.get(event_type)
    if tag is None:
        raise InvalidArgumentError("type", f"{event_type} events have no OCDS release: they are not a tender's")
    body = copy.deepcopy(payload)
    out: dict[str, Any] = {
        "ocid": ocid,
        "id": f"{ocid}-{seq}",
        "date": date,
        "tag": [tag],
        "initiationType": "tender",
    }
    try:
        _sections(out, event_type, body)
    except (KeyError, TypeError):
        # An event recorded without the payload checks (around the procurement layer: a database
        # from before them, or a test of the log): its payload is not its type's, so only the OCDS
        # sections it does carry are kept, as they are.
        for key in ("planning", "tender", "buyer"):
            if isinstance(body.get(key), dict):
                out[key] = body[key]
    return out


def _sections(out: dict[str, Any], event_type: str, body: dict[str, Any]) -> None:
    """Add the OCDS sections of one event's (validated) payload to its release ``out``."""
    if event_type in ("tender.planned", "tender.published"):
        out["buyer"] = body["buyer"]
        out["parties"] = [_party(body["buyer"], "buyer")]
        if "planning" in body:
            out["planning"] = body["planning"]
        if "tender" in body:
            status = "planned" if event_type == "tender.planned" else "active"
            out["tender"] = {**body["tender"], "status": status}
    elif event_type in ("tender.amended", "tender.clarified"):
        out["tender"] = body["tender"]
    elif event_type == "tender.cancelled":
        out["tender"] = {**body["tender"], "status": "cancelled"}
    elif event_type == "bid.committed":
        out["parties"] = [_party(body["bidder"], "tenderer")]
    elif event_type == "bid.revealed":
        bid = body["bid"]
        out["bids"] = {"details": [{**bid, "status": bid.get("status", "valid")}]}
        out["tender"] = {"tenderers": bid["tenderers"]}
    elif event_type == "award.issued":
        award = body["award"]
        out["awards"] = [{**award, "status": award.get("status", "active")}]
        out["parties"] = [_party(s, "tenderer", "supplier") for s in award["suppliers"]]
    elif event_type == "award.challenged":
        out["awards"] = [{**body["award"], "challenges": [body["challenge"]]}]
    elif event_type == "contract.signed":
        contract = body["contract"]
        out["contracts"] = [{**contract, "status": contract.get("status", "active")}]
    elif event_type == "contract.amended":
        out["contracts"] = [body["contract"]]
    elif event_type == "contract.payment":
        out["contracts"] = [{**body["contract"], "implementation": {"transactions": [body["transaction"]]}}]
    else:  # contract.completed
        out["contracts"] = [{**body["contract"], "status": "terminated"}]


def releases(stored: Sequence[StoredEvent]) -> list[dict[str, Any]]:
    """The releases of a tender's stored events (``LogReader.tender_events``), in ``seq`` order."""
    out = []
    for event in stored:
        payload, problem = event.readable_payload
        if problem is not None:
            out.append(unreadable_release(event, problem))
            continue
        out.append(
            release(
                ocid=event.ocid,
                seq=event.seq,
                event_type=event.type,
                date=event.parsed_envelope.recorded_at,
                payload=payload,
            )
        )
    return out


def unreadable_release(event: StoredEvent, problem: str) -> dict[str, Any]:
    """The release in place of an event whose payload cannot be read (nested too deep, stored
    before input was bounded): its identity and date, and a description saying why."""
    return {
        "ocid": event.ocid,
        "id": f"{event.ocid}-{event.seq}",
        "date": event.parsed_envelope.recorded_at,
        "tag": [],
        "initiationType": "tender",
        "description": f"Tenderproof: this release cannot be shown: {problem}",
    }


def _publisher(name: str) -> dict[str, str]:
    return {"name": name}


def release_package(
    items: Sequence[dict[str, Any]], *, uri: str, published_date: str, publisher: str
) -> dict[str, Any]:
    """An OCDS 1.1 release package of ``items``."""
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": published_date,
        "publisher": _publisher(publisher),
        "releases": list(items),
    }


def compiled_release(items: Sequence[dict[str, Any]], *, using: Merger | None = None) -> dict[str, Any]:
    """The compiled release of one tender's releases (requires at least one, all of one ocid)."""
    if not items:
        raise InvalidArgumentError("releases", "a compiled release needs at least one release")
    ocids = {r["ocid"] for r in items}
    if len(ocids) != 1:
        raise InvalidArgumentError("releases", f"must all be of one ocid, got {sorted(ocids)}")
    return compile_releases(copy.deepcopy(list(items)), using=using)


def record_package(
    items: Sequence[dict[str, Any]],
    *,
    uri: str,
    published_date: str,
    publisher: str,
    package_uri: str | None = None,
    using: Merger | None = None,
) -> dict[str, Any]:
    """An OCDS 1.1 record package with one record: the tender's releases and its compiled release.

    ``package_uri`` is where the tender's release package is published, listed in ``packages``.
    """
    record = {
        "ocid": items[0]["ocid"] if items else None,
        "releases": list(items),
        "compiledRelease": compiled_release(items, using=using),
    }
    out: dict[str, Any] = {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": published_date,
        "publisher": _publisher(publisher),
    }
    if package_uri is not None:
        out["packages"] = [package_uri]
    out["records"] = [record]
    return out


def parse_datetime(text: Any) -> datetime | None:
    """An OCDS date-time as published (RFC 3339, ``Z`` allowed; naive if it has no offset), or
    None when absent or unreadable: publishers' data is taken as it comes, never refused here."""
    return _parsed_datetime(text) if isinstance(text, str) else None


@functools.lru_cache(maxsize=1 << 16)
def _parsed_datetime(text: str) -> datetime | None:
    """:func:`parse_datetime` of a string, kept: the red-flag indicators read the same dates of a
    release several times, and a ledger's dates repeat (a datetime is immutable: safe to share)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
