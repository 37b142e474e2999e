"""Where personal data of natural persons is in a payload (docs/privacy.md).

A **rule** names the places of a payload that hold personal data: ``each`` selects values with a
small subset of JSONPath (RFC 9535: ``$``, ``.name``, ``[*]``, ``..name``, ``..*``), ``when``
keeps the objects whose fields (dotted paths) hold one of the listed values, ``referring_to``
keeps the objects whose ``id`` is the id of a party another rule matched (an OCDS organisation
reference to a sole trader), ``types`` limits the rule to some event types, and ``fields`` names
the members of each selected object that are personal data (none: the selected value itself).
A missing field is simply not marked.

The rules are data (``tenderproof-privacy-rules/1``, a JSON file): the shipped defaults
(``privacy-rules.json`` beside this module) follow OCDS semantics; an operator replaces them with
``TENDERPROOF_PRIVACY_RULES``. :func:`marks` returns, for one payload, each marked place as an
RFC 9535 normalized path (``$['parties'][0]['name']``) with the rule that marked it. Marking
reads the payload only: it changes nothing recorded and nothing hashed.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.core.commitment import pointer
from ledger.core.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_RULES_FILE",
    "FORMAT",
    "Mark",
    "Rule",
    "committed_fields",
    "configure_file",
    "configure_rules",
    "marks",
    "places",
    "rules_of_file",
]

FORMAT = "tenderproof-privacy-rules/1"
DEFAULT_RULES_FILE = Path(__file__).with_name("privacy-rules.json")
_SEGMENT = re.compile(r"\.\.\*|\.\.([A-Za-z_][\w-]*)|\.([A-Za-z_][\w-]*)|\[\*\]")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

Step = tuple[str, str | None]  # ("child" | "each" | "descendant", name or None for any)


@dataclass(frozen=True, slots=True)
class Mark:
    """One place of a payload that holds personal data, and the rule that says so."""

    path: str
    rule: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    description: str
    each: str
    steps: tuple[Step, ...]
    fields: tuple[str, ...] = ()
    when: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = ()
    referring_to: str | None = None
    types: frozenset[str] | None = None


def _steps(text: str, where: str) -> tuple[Step, ...]:
    if not text.startswith("$"):
        raise ValueError(f"{where}.each: must start with '$', got {text!r}")
    steps: list[Step] = []
    at = 1
    while at < len(text):
        found = _SEGMENT.match(text, at)
        if found is None:
            raise ValueError(f"{where}.each: cannot read {text[at:]!r} (use .name, [*], ..name or ..*)")
        token = found.group(0)
        if token == "[*]":
            steps.append(("each", None))
        elif token == "..*":
            steps.append(("descendant", None))
        elif found.group(1):
            steps.append(("descendant", found.group(1)))
        else:
            steps.append(("child", found.group(2)))
        at = found.end()
    return tuple(steps)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: must be a list of non-empty strings")
    return tuple(value)


def parse_rules(document: Any, *, source: str) -> tuple[Rule, ...]:
    """The rules of a ``tenderproof-privacy-rules/1`` document. Raises :class:`ValueError` naming
    ``source``, the rule and the field that is wrong."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        got = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ValueError(f"{source}: format: expected {FORMAT!r}, got {got!r}")
    items = document.get("rules")
    if not isinstance(items, list):
        raise ValueError(f"{source}: rules: must be a list")
    known = {"name", "description", "each", "fields", "when", "referring_to", "types"}
    rules: list[Rule] = []
    for i, item in enumerate(items):
        where = f"{source}: rules[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: must be an object")
        if unknown := sorted(set(item) - known):
            raise ValueError(f"{where}: unknown member {unknown[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}.name: must be lower-case letters, digits, '-' or '_', got {name!r}")
        if any(rule.name == name for rule in rules):
            raise ValueError(f"{where}.name: {name!r} is used twice")
        each = item.get("each")
        if not isinstance(each, str):
            raise ValueError(f"{where}.each: must be a path such as '$.parties[*]'")
        when = item.get("when", {})
        if not isinstance(when, dict):
            raise ValueError(f"{where}.when: must be an object of field path -> list of values")
        referring_to = item.get("referring_to")
        if referring_to is not None and not any(rule.name == referring_to for rule in rules):
            raise ValueError(f"{where}.referring_to: names no earlier rule ({referring_to!r})")
        rules.append(
            Rule(
                name=name,
                description=str(item.get("description", "")),
                each=each,
                steps=_steps(each, where),
                fields=_strings(item.get("fields", []), f"{where}.fields"),
                when=tuple(
                    (tuple(key.split(".")), frozenset(_strings(values, f"{where}.when.{key}")))
                    for key, values in when.items()
                ),
                referring_to=referring_to,
                types=None if "types" not in item else frozenset(_strings(item["types"], f"{where}.types")),
            )
        )
    return tuple(rules)


def rules_of_file(path: str | os.PathLike[str] | None) -> tuple[Rule, ...]:
    """The rules of a rules file (the shipped defaults when ``path`` is None); :class:`ValueError`
    naming the file and what is wrong with it."""
    source = DEFAULT_RULES_FILE if path is None else Path(path)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{source}: cannot read the privacy rules: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not JSON: {exc}") from None
    return parse_rules(document, source=str(source))


#: The rules this process marks with (see :func:`configure_file`).
RULES: tuple[Rule, ...] = rules_of_file(None)


def configure_file(path: str | os.PathLike[str] | None) -> None:
    """Mark with the rules of ``path`` (the deployment's ``TENDERPROOF_PRIVACY_RULES``; the
    shipped defaults when None) from now on in this process. Called at the edges (API, command
    line). Raises :class:`InvalidArgumentError` naming the setting, the file and the reason."""
    global RULES
    try:
        RULES = rules_of_file(path)
    except ValueError as exc:
        raise InvalidArgumentError("TENDERPROOF_PRIVACY_RULES", str(exc)) from None


def configure_rules(rules: tuple[Rule, ...]) -> None:
    """Mark with ``rules`` from now on in this process (a worker given its parent's :data:`RULES`)."""
    global RULES
    RULES = rules


# --- marking ---------------------------------------------------------------------------------

Place = tuple[str | int, ...]
Located = tuple[Place, Any]


def _children(where: tuple[str | int, ...], value: Any) -> Iterator[Located]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*where, key), child
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield (*where, i), child


def _descendants(where: tuple[str | int, ...], value: Any) -> Iterator[Located]:
    for place, child in _children(where, value):
        yield place, child
        yield from _descendants(place, child)


def _named(where: list[str | int], value: Any, found: dict[str, list[Located]]) -> None:
    """Add to ``found[name]`` every member called ``name`` (a key of ``found``) at any depth under
    ``value``, in document order: ONE walk for every rule's ``..name`` (the walk is the cost of
    marking), a place's path built only for a member found."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key in found:
                found[key].append(((*where, key), child))
            if isinstance(child, dict | list):
                where.append(key)
                _named(where, child, found)
                where.pop()
    elif isinstance(value, list):
        for i, child in enumerate(value):
            if isinstance(child, dict | list):
                where.append(i)
                _named(where, child, found)
                where.pop()


def _select(
    steps: tuple[Step, ...], located: Iterator[Located], index: dict[str, list[Located]] | None = None
) -> Iterator[Located]:
    """The values ``steps`` select from ``located``; ``index``: the root's members by name, at any
    depth (:func:`_named`), for a first step ``..name``."""
    if not steps:
        yield from located
        return
    (kind, name), rest = steps[0], steps[1:]
    for where, value in located:
        if kind == "child":
            if isinstance(value, dict) and name is not None and name in value:
                yield from _select(rest, iter([((*where, name), value[name])]))
        elif kind == "each":
            if isinstance(value, list):
                yield from _select(rest, _children(where, value))
        elif name is None:
            yield from _select(rest, _descendants(where, value))
        elif index is not None and not where and name in index:
            yield from _select(rest, iter(index[name]))
        else:
            found: dict[str, list[Located]] = {name: []}
            _named(list(where), value, found)
            yield from _select(rest, iter(found[name]))


def _get(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _is_one_of(value: Any, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed


def _identifier(value: dict[str, Any]) -> str | int | None:
    """An OCDS object's ``id`` (a string, or an integer in OCDS 1.0 data)."""
    identifier = value.get("id")
    return identifier if isinstance(identifier, str | int) and not isinstance(identifier, bool) else None


def normalized_path(where: tuple[str | int, ...]) -> str:
    """The RFC 9535 normalized path of a place (``$['parties'][0]['name']``)."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f"[{_quoted(part)}]" for part in where)


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@functools.lru_cache(maxsize=4096)
def _quoted(name: str) -> str:
    """A member name as RFC 9535 §2.7 writes it in a normalized path."""
    return "'" + "".join(_ESCAPES.get(c) or (c if ord(c) >= 0x20 else f"\\u{ord(c):04x}") for c in name) + "'"


def marks(event_type: str, payload: Any, rules: tuple[Rule, ...] | None = None) -> list[Mark]:
    """Every place of ``payload`` (an event of ``event_type``) that ``rules`` (default: the
    configured ones) mark as personal data, in rule order; a place is marked once, by the first
    rule that marks it."""
    return [Mark(normalized_path(place), rule) for place, rule in places(event_type, payload, rules)]


def committed_fields(found: list[tuple[Place, str]]) -> tuple[str, ...]:
    """F of an envelope v2 (docs/spec.md §2.5): the JSON Pointers of the marked places ``found``
    (from :func:`places`), a place inside another marked place left out (the outer one commits it
    whole, as ``/parties/0/contactPoint`` does its ``name``). Sorted."""
    ordered = sorted({place for place, _ in found}, key=len)
    kept: set[Place] = set()
    for place in ordered:
        if not any(place[:n] in kept for n in range(1, len(place))):
            kept.add(place)
    return tuple(sorted(pointer(place) for place in kept if place))


#: Words of a rule (:func:`_looked_for`): groups of quoted strings, one of each of which must occur.
_Words = tuple[tuple[bytes, ...], ...]
_LOOKED_FOR: list[tuple[tuple[Rule, ...], tuple[str, ...], list[_Words]]] = []


def _looked_for(rules: tuple[Rule, ...]) -> tuple[tuple[str, ...], list[_Words]]:
    """What :func:`places` looks for of ``rules``, kept for the last rules asked (the configured
    ones, every payload): the names of the rules' first steps ``..name``, found in one walk of
    the payload (:func:`_named`); and for each rule, in order, groups of quoted strings (JSON
    text) one of each of which a payload's text must hold for the rule to mark anything in it:
    each member name its steps and ``when`` paths go through, one of the values ``when`` allows,
    one of its ``fields`` (when it names some)."""
    if _LOOKED_FOR and _LOOKED_FOR[0][0] is rules:
        return _LOOKED_FOR[0][1], _LOOKED_FOR[0][2]
    names = tuple(
        dict.fromkeys(
            name for rule in rules for kind, name in rule.steps[:1] if kind == "descendant" and name is not None
        )
    )

    def quoted(strings: Iterable[str]) -> tuple[bytes, ...]:
        return tuple(f'"{string}"'.encode() for string in strings)

    words: list[_Words] = []
    for rule in rules:
        groups = [quoted([name]) for _, name in rule.steps if name is not None]
        for path, allowed in rule.when:
            groups += [quoted([key]) for key in path] + [quoted(sorted(allowed))]
        if rule.fields:
            groups.append(quoted(rule.fields))
        words.append(tuple(groups))
    _LOOKED_FOR[:] = [(rules, names, words)]
    return names, words


def _unmarkable(groups: _Words, text: bytes) -> bool:
    """Whether the JSON ``text`` (which has no escape: a name or string in it is spelt between two
    quotes) misses every string of one of a rule's ``groups`` (:func:`_looked_for`): then the rule
    marks nothing in the payload parsed from it."""
    for group in groups:  # loops, not generators: this runs for every rule of every release
        for word in group:
            if word in text:
                break
        else:
            return True
    return False


def _may_select(steps: tuple[Step, ...], payload: Any, index: dict[str, list[Located]]) -> bool:
    """False when ``steps`` certainly select nothing from ``payload``: a first step ``.name`` the
    payload has no member of, or ``..name`` where the walk found none (the common case: most
    rules match nothing in most payloads, and this spares building their selection)."""
    if not steps:
        return True
    kind, name = steps[0]
    if kind == "child":
        return isinstance(payload, dict) and name in payload
    if kind == "descendant" and name is not None and name in index:
        return bool(index[name])
    return True


def _absent(names: Collection[str], text: bytes) -> bool:
    """Whether no member called one of ``names`` can be in the JSON ``text``: none of them occurs
    quoted in it, and it has no escape that could spell one otherwise (a member name is the
    text between two quotes, so the test has no false negative)."""
    return b"\\" not in text and not any(f'"{name}"'.encode() in text for name in names)


def places(
    event_type: str, payload: Any, rules: tuple[Rule, ...] | None = None, *, text: bytes | None = None
) -> list[tuple[Place, str]]:
    """As :func:`marks`, each place as its keys and indices with the name of the rule that marks it.

    ``text``: JSON text that ``payload`` was parsed from (or a larger one holding it), when the
    caller has it: a rule's ``..name`` whose quoted name does not occur in it names no member, so
    the walk looking for it is skipped (:func:`_absent`), and so is every rule whose names or
    values it lacks (:func:`_looked_for`: most releases hold none of a rule's)."""
    chosen = RULES if rules is None else rules
    names, words_of = _looked_for(chosen)
    index: dict[str, list[Located]] = {name: [] for name in names}
    plain = text if text is not None and b"\\" not in text else None  # names spelt as they are
    if index and not (plain is not None and _absent(index, plain)):
        _named([], payload, index)
    found: list[tuple[Place, str]] = []
    seen: set[Place] = set()
    matched: dict[str, tuple[set[str | int], set[int]]] = {}  # rule -> (ids of what it matched, identities)
    for rule, words in zip(chosen, words_of, strict=True):
        if rule.types is not None and event_type not in rule.types:
            continue
        ids: set[str | int] = set()
        objects: set[int] = set()
        refer_ids, refer_objects = matched.get(rule.referring_to or "", (set(), set()))
        if rule.referring_to is not None and not refer_ids:
            continue  # nothing to refer to: no need to walk the payload
        if not _may_select(rule.steps, payload, index) or (plain is not None and _unmarkable(words, plain)):
            matched[rule.name] = (ids, objects)  # selects nothing: as after a walk that found nothing
            continue
        for where, value in _select(rule.steps, iter([((), payload)]), index):
            if rule.when and not all(_is_one_of(_get(value, key), allowed) for key, allowed in rule.when):
                continue
            if rule.referring_to is not None and not (
                isinstance(value, dict) and _identifier(value) in refer_ids and id(value) not in refer_objects
            ):
                continue
            if isinstance(value, dict):
                objects.add(id(value))
                if (identifier := _identifier(value)) is not None:
                    ids.add(identifier)
            places = (
                [(*where, name) for name in rule.fields if isinstance(value, dict) and name in value]
                if rule.fields
                else [where]
            )
            for place in places:
                if place not in seen:
                    seen.add(place)
                    found.append((place, rule.name))
        matched[rule.name] = (ids, objects)
    return found
