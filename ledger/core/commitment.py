"""Salted, field-level payload commitments: envelope v2 (docs/spec.md §2.5).

A v2 envelope commits to its payload with ``payload_commitment`` instead of a bare
``payload_sha256``. At record time the writer draws a random 32-byte *seed* and chooses F, the
JSON Pointers (RFC 6901) of the values committed separately (the personal data, so that each can
later be withheld on its own). From the seed::

    payload_salt = HMAC-SHA256(seed, b"tenderproof/v2/payload")
    salt_p       = HMAC-SHA256(seed, b"tenderproof/v2/field\\x00" + UTF-8(p))      for p in F
    digest_p     = SHA-256(salt_p || JCS(value at p))
    skeleton     = the payload with the value at every p in F replaced by null
    payload_commitment = SHA-256(JCS({"fields": {p: hex(digest_p)}, "payload": skeleton,
                                      "salt": hex(payload_salt)}))

The seed is never stored. What is stored and served is the *disclosure*:
``{"salt": hex(payload_salt), "fields": {p: {"salt": hex(salt_p)}}}``. Withholding field p replaces
its entry by ``{"digest": hex(digest_p), "order": <order log index>}`` and the value at p by null;
:func:`recompute` gives the same commitment from either form. A withheld value sits behind a
256-bit salt that is no longer stored anywhere, so it cannot be found by guessing.

Pure: hashlib, hmac and RFC 8785 only. Changing these bytes breaks every v2 entry ever recorded.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Iterable
from typing import Any

from .canonical import canonical_json_bytes
from .errors import InvalidArgumentError

__all__ = [
    "SEED_SIZE",
    "commit_encoded",
    "disclosure_bytes",
    "field_digest",
    "new_commitment",
    "new_seed",
    "parse_pointer",
    "pointer",
    "recompute",
    "withheld_fields",
    "withhold_fields",
]

#: Bytes of the random seed a writer draws for each payload.
SEED_SIZE = 32
_PAYLOAD_LABEL = b"tenderproof/v2/payload"
_FIELD_LABEL = b"tenderproof/v2/field\x00"
_HEX = re.compile(r"[0-9a-f]{64}")
_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_TILDE = re.compile(r"~(?![01])")
#: Largest array index a pointer may name (an RFC 8785 number is exact up to 2**53 - 1).
_MAX_ORDER = 2**53 - 1
#: Seeds drawn from the operating system's CSPRNG at once (one ``getrandom`` call costs as much
#: as the rest of a commitment: ~60 µs in a sandboxed process; 256 seeds are 8 KiB).
_SEEDS_PER_DRAW = 256


class _SeedSource:
    """Seeds for :func:`new_commitment`: 32-byte slices of :func:`secrets.token_bytes` read 256
    seeds at a time, each slice handed out once. Thread-safe; a forked child never hands out
    what its parent had drawn (the buffer is emptied in the child, and checked by pid)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        self._pid = os.getpid()

    def take(self) -> bytes:
        with self._lock:
            if self._pid != os.getpid():
                self._forget()
            if self._at >= len(self._buffer):
                self._buffer = secrets.token_bytes(SEED_SIZE * _SEEDS_PER_DRAW)
                self._at = 0
            seed = self._buffer[self._at : self._at + SEED_SIZE]
            self._at += SEED_SIZE
            return seed

    def _forget(self) -> None:
        self._buffer, self._at, self._pid = b"", 0, os.getpid()


_SOURCE = _SeedSource()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SOURCE._forget)


def new_seed() -> bytes:
    """A fresh random 32-byte seed (the operating system's CSPRNG, drawn in bulk: never the same
    bytes twice, in this process or a forked one)."""
    return _SOURCE.take()


def pointer(parts: Iterable[str | int]) -> str:
    """The RFC 6901 JSON Pointer of a place given as member names and array indices
    (``("parties", 0, "name")`` -> ``/parties/0/name``)."""
    return "".join(
        "/" + (str(part) if isinstance(part, int) else part.replace("~", "~0").replace("/", "~1")) for part in parts
    )


def parse_pointer(text: str, *, field: str = "pointer") -> tuple[str, ...]:
    """The reference tokens of an RFC 6901 JSON Pointer, unescaped (``~1`` -> ``/``, ``~0`` -> ``~``).

    Raises :class:`InvalidArgumentError` naming ``field`` if ``text`` is not a pointer to a value
    inside the payload (the empty pointer, the whole payload, is refused: a payload is withheld as
    a whole without being a field).
    """
    if not isinstance(text, str) or not text.startswith("/"):
        raise InvalidArgumentError(field, f"must be a JSON Pointer (RFC 6901) starting with '/', got {text!r}")
    tokens = _tokens(text)
    if tokens is None:
        raise InvalidArgumentError(field, f"has '~' not followed by 0 or 1 in {text!r} (RFC 6901 escapes)")
    return tokens


@functools.lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...] | None:
    """The unescaped tokens of ``text`` (which starts with '/'), or None for a bad '~' escape."""
    if "~" not in text:
        return tuple(text[1:].split("/"))
    if _BAD_TILDE.search(text):
        return None
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in text[1:].split("/"))


def _step(container: Any, token: str, text: str, field: str) -> tuple[Any, str | int]:
    """The key of ``token`` in ``container`` (a member name or an array index)."""
    if isinstance(container, dict):
        if token not in container:
            raise InvalidArgumentError(field, f"{text!r} names no value of the payload (no member {token!r})")
        return container, token
    if isinstance(container, list):
        if not _INDEX.fullmatch(token) or int(token) >= len(container):
            raise InvalidArgumentError(
                field, f"{text!r} names no value of the payload (array of {len(container)}, index {token!r})"
            )
        return container, int(token)
    raise InvalidArgumentError(field, f"{text!r} names no value of the payload (goes through a {_kind(container)})")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _locate(payload: Any, text: str, field: str) -> tuple[Any, str | int]:
    """The container holding the value at pointer ``text`` and its key there."""
    tokens = parse_pointer(text, field=field)
    container: Any = payload
    for token in tokens[:-1]:
        parent, key = _step(container, token, text, field)
        container = parent[key]
    return _step(container, tokens[-1], text, field)


def _value_at(payload: Any, text: str, field: str) -> Any:
    container, key = _locate(payload, text, field)
    return container[key]


def _check_disjoint(pointers: Iterable[str], field: str) -> list[str]:
    """``pointers`` sorted; refused if one is named twice or lies inside another (a value
    committed twice)."""
    ordered = sorted(pointers)
    named: set[str] = set()
    for text in ordered:
        if text in named:
            raise InvalidArgumentError(f"{field}[{text!r}]", "is named twice")
        named.add(text)
    for text in ordered:
        parse_pointer(text, field=f"{field}[{text!r}]")
        at = text.rfind("/")
        while at > 0:
            if text[:at] in named:
                raise InvalidArgumentError(f"{field}[{text!r}]", f"lies inside another committed field {text[:at]!r}")
            at = text.rfind("/", 0, at)
    return ordered


def field_digest(salt: bytes, value: Any, *, field: str = "value") -> bytes:
    """``SHA-256(salt || JCS(value))``: the digest of one separately committed field."""
    return hashlib.sha256(salt + canonical_json_bytes(value, field=field)).digest()


def _commitment(digests: dict[str, str], skeleton_bytes: bytes, payload_salt: str) -> str:
    # JCS of {"fields": ..., "payload": ..., "salt": ...}: the three keys are already in RFC 8785
    # order, so the skeleton's bytes are spliced in rather than encoded a second time.
    # (F empty, as for most releases: ``{}`` is its own RFC 8785 form)
    h = hashlib.sha256(b'{"fields":')
    h.update(canonical_json_bytes(digests, field="disclosure.fields") if digests else b"{}")
    h.update(b',"payload":')
    h.update(skeleton_bytes)
    h.update(b',"salt":"' + payload_salt.encode("ascii") + b'"}')
    return h.hexdigest()


def _skeleton(payload: Any, pointers: list[str], field: str, fill: list[Any] | None = None) -> Any:
    """``payload`` with the value at each pointer replaced by null (or by ``fill``'s value of the
    same position): a new value sharing every subtree the pointers do not go through (only the
    containers on their paths are copied)."""
    if not pointers:
        return payload
    root = _shallow(payload)
    copied = {id(root)}
    for number, text in enumerate(pointers):
        where = f"{field}[{text!r}]"
        tokens = parse_pointer(text, field=where)
        container = root
        for token in tokens[:-1]:
            parent, key = _step(container, token, text, where)
            child = parent[key]
            if id(child) not in copied and isinstance(child, dict | list):
                child = parent[key] = _shallow(child)
                copied.add(id(child))
            container = child
        parent, key = _step(container, tokens[-1], text, where)
        parent[key] = None if fill is None else fill[number]
    return root


def _shallow(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value


def new_commitment(
    payload: Any, fields: Iterable[str], *, seed: bytes | None = None, payload_bytes: bytes | None = None
) -> tuple[str, dict[str, Any]]:
    """Commit to ``payload`` with the fields ``fields`` (F, JSON Pointers) committed separately.

    Returns ``(payload_commitment hex, disclosure)``. ``seed``: the 32 random bytes (drawn with
    :func:`new_seed` when not given; pass one only for test vectors). ``payload_bytes``:
    the payload's RFC 8785 bytes if the caller has them already (used only when F is empty).

    Raises :class:`InvalidArgumentError` naming the pointer if one names no value of the payload,
    lies inside another, or is not a JSON Pointer; or if the payload has no RFC 8785 form.
    """
    bound, disclosure, _ = _commit(payload, fields, seed=seed, payload_bytes=payload_bytes, encode=False)
    return bound, disclosure


def commit_encoded(
    payload: Any, fields: Iterable[str], *, seed: bytes | None = None, parsed: bool = False
) -> tuple[str, dict[str, Any], bytes]:
    """:func:`new_commitment` and the payload's RFC 8785 bytes, from ONE encoding of the payload.

    With F empty the payload's bytes are the skeleton's. Otherwise the skeleton is encoded with a
    marker string in place of each value of F (a string naming the payload salt, which the
    payload, written before the seed was drawn, cannot contain but by a 2^-256 chance; checked:
    each marker must occur once, else both are encoded in full); the skeleton's bytes are those
    with ``null`` at each marker, the payload's those with the value's own RFC 8785 bytes there
    (an RFC 8785 object's member order depends on its keys only, never on its values).
    Same errors as :func:`new_commitment`. ``parsed``: the payload is a strict JSON parser's
    (:func:`canonical.canonical_json_bytes`'s ``parsed``; the same bytes, sooner).
    """
    return _commit(payload, fields, seed=seed, payload_bytes=None, encode=True, parsed=parsed)


def _commit(
    payload: Any,
    fields: Iterable[str],
    *,
    seed: bytes | None,
    payload_bytes: bytes | None,
    encode: bool,
    parsed: bool = False,
) -> tuple[str, dict[str, Any], bytes]:
    if seed is None:
        seed = new_seed()
    if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
        raise InvalidArgumentError("seed", f"must be {SEED_SIZE} bytes")
    pointers = _check_disjoint(fields, "fields")
    payload_salt = hmac.digest(seed, _PAYLOAD_LABEL, "sha256").hex()
    salts: dict[str, dict[str, str]] = {}
    digests: dict[str, str] = {}
    values: list[Any] = []
    encoded: list[bytes] = []
    for text in pointers:
        value = _value_at(payload, text, f"fields[{text!r}]")
        salt = hmac.digest(seed, _FIELD_LABEL + text.encode("utf-8"), "sha256")
        data = canonical_json_bytes(value, field=f"payload{text}", parsed=parsed)
        salts[text] = {"salt": salt.hex()}
        digests[text] = hashlib.sha256(salt + data).hexdigest()
        values.append(value)
        encoded.append(data)
    if not pointers:
        if payload_bytes is None:
            payload_bytes = canonical_json_bytes(payload, field="payload", parsed=parsed)
        skeleton_bytes = payload_bytes
    elif encode:
        skeleton_bytes, payload_bytes = _spliced(payload, pointers, encoded, payload_salt, parsed=parsed)
    else:
        skeleton_bytes = canonical_json_bytes(_skeleton(payload, pointers, "fields"), field="payload")
    disclosure = {"salt": payload_salt, "fields": salts}
    return _commitment(digests, skeleton_bytes, payload_salt), disclosure, payload_bytes or b""


def _spliced(
    payload: Any, pointers: list[str], encoded: list[bytes], token: str, *, parsed: bool = False
) -> tuple[bytes, bytes]:
    """The skeleton's and the payload's RFC 8785 bytes from one encoding (:func:`commit_encoded`)."""
    markers = [f"tenderproof/v2/{token}/{number}" for number in range(len(pointers))]
    skeleton_of = functools.partial(_skeleton, payload, pointers, "fields")
    marked = canonical_json_bytes(skeleton_of(fill=markers), field="payload", parsed=parsed)
    skeleton, whole = marked, marked
    for marker, data in zip(markers, encoded, strict=True):
        quoted = f'"{marker}"'.encode("ascii")
        if marked.count(quoted) != 1:  # the payload holds the marker's text: encode both in full
            skeleton = canonical_json_bytes(skeleton_of(), field="payload", parsed=parsed)
            return skeleton, canonical_json_bytes(payload, field="payload", parsed=parsed)
        skeleton = skeleton.replace(quoted, b"null")
        whole = whole.replace(quoted, data)
    return skeleton, whole


def disclosure_bytes(disclosure: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes of a disclosure (what the ``payloads`` table stores beside a v2 payload).
    One with no separately committed field and a well-formed salt is written directly: its bytes
    are ``{"fields":{},"salt":"<64 hex>"}`` (keys in RFC 8785 order, hex needs no escape)."""
    salt = disclosure.get("salt")
    if len(disclosure) == 2 and disclosure.get("fields") == {} and isinstance(salt, str) and _HEX.fullmatch(salt):
        return b'{"fields":{},"salt":"' + salt.encode("ascii") + b'"}'
    return canonical_json_bytes(disclosure, field="disclosure")


def _hex(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise InvalidArgumentError(field, f"must be 64 lowercase hex digits, got {value!r}")
    return value


def _order(value: Any, field: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_ORDER:
        raise InvalidArgumentError(field, f"must be a log index (an integer >= 0), got {value!r}")
    return value


def _entries(disclosure: Any) -> tuple[str, dict[str, dict[str, Any]]]:
    """The disclosure's payload salt and field entries, checked (errors name the field)."""
    if not isinstance(disclosure, dict):
        raise InvalidArgumentError("disclosure", f"must be a JSON object, got {_kind(disclosure)}")
    extra = sorted(set(disclosure) - {"salt", "fields"})
    if extra:
        raise InvalidArgumentError(f"disclosure.{extra[0]}", "unknown member of a disclosure")
    salt = _hex(disclosure.get("salt"), "disclosure.salt")
    fields = disclosure.get("fields")
    if not isinstance(fields, dict):
        raise InvalidArgumentError("disclosure.fields", f"must be a JSON object, got {_kind(fields)}")
    for text, entry in fields.items():
        where = f"disclosure.fields[{text!r}]"
        parse_pointer(text, field=where)
        if not isinstance(entry, dict):
            raise InvalidArgumentError(where, f"must be a JSON object, got {_kind(entry)}")
        if set(entry) == {"salt"}:
            _hex(entry["salt"], f"{where}.salt")
        elif set(entry) == {"digest", "order"}:
            _hex(entry["digest"], f"{where}.digest")
            _order(entry["order"], f"{where}.order")
        else:
            raise InvalidArgumentError(
                where, f"must be {{'salt'}} or {{'digest', 'order'}}, got members {sorted(entry)}"
            )
    _check_disjoint(fields, "disclosure.fields")
    return salt, fields


def recompute(payload: Any, disclosure: dict[str, Any]) -> str:
    """The ``payload_commitment`` (hex) of a stored or served payload and its disclosure.

    ``payload`` holds null at every withheld field. A field with a salt is hashed from its shown
    value; a withheld field contributes its digest. Raises :class:`InvalidArgumentError` naming the
    pointer (or the disclosure's member) when the disclosure is malformed, a pointer names no value
    of the payload, or a withheld field's value is shown.
    """
    payload_salt, fields = _entries(disclosure)
    digests: dict[str, str] = {}
    for text, entry in fields.items():
        where = f"disclosure.fields[{text!r}]"
        value = _value_at(payload, text, where)
        if "digest" in entry:
            if value is not None:
                raise InvalidArgumentError(
                    where, f"is withheld under order {entry['order']} but the payload shows a value there"
                )
            digests[text] = entry["digest"]
        else:
            digests[text] = field_digest(bytes.fromhex(entry["salt"]), value, field=f"payload{text}").hex()
    skeleton = _skeleton(payload, sorted(fields), "disclosure.fields")
    return _commitment(digests, canonical_json_bytes(skeleton, field="payload"), payload_salt)


#: What every whole commitment's hash starts with (copied: not hashed again for each payload).
_WHOLE_HEAD = hashlib.sha256(b'{"fields":{},"payload":')
#: The RFC 8785 bytes of a disclosure that commits no field apart: only its salt varies.
_WHOLE_DISCLOSURE = re.compile(rb'\{"fields":\{\},"salt":"([0-9a-f]{64})"\}')


def whole_disclosure(raw: bytes) -> dict[str, Any] | None:
    """The disclosure whose RFC 8785 bytes are ``raw`` when it is one that commits no field apart
    (``{"fields":{},"salt":"<64 hex>"}``), made without a JSON parse: equal to what
    ``json.loads(raw)`` gives. ``None`` for any other bytes: parse those."""
    found = _WHOLE_DISCLOSURE.fullmatch(raw)
    return None if found is None else {"fields": {}, "salt": found.group(1).decode("ascii")}


def whole_commitment(data: bytes, disclosure: Any) -> str | None:
    """The ``payload_commitment`` (hex) of a payload served as the bytes ``data`` with a
    ``disclosure`` that commits no field apart, computed from the bytes as they are (no parse):
    when ``data`` are the payload's RFC 8785 bytes this is :func:`recompute`'s answer, and when it
    matches the envelope's commitment the bytes are those committed (SHA-256 preimage). ``None``
    when the disclosure commits fields apart or is not one: ask :func:`recompute` then, and also
    when the answer differs (bytes that are not RFC 8785 may still hold the committed value)."""
    if type(disclosure) is not dict or len(disclosure) != 2 or disclosure.get("fields") != {}:
        return None
    salt = disclosure.get("salt")
    if type(salt) is not str or not _HEX.fullmatch(salt):
        return None
    h = _WHOLE_HEAD.copy()
    h.update(data)
    h.update(b',"salt":"' + salt.encode("ascii") + b'"}')
    return h.hexdigest()


def withhold_fields(
    body: Any, disclosure: dict[str, Any], pointers: Iterable[str], order_index: int
) -> tuple[Any, dict[str, Any]]:
    """Withhold the fields ``pointers`` of ``body`` under the order at log index ``order_index``.

    Returns the new body (a copy, the value at each pointer replaced by null) and the new
    disclosure (each pointer's salt replaced by its digest and the order). The commitment is
    unchanged: ``recompute(*withhold_fields(b, d, ps, n)) == recompute(b, d)``.

    Raises :class:`InvalidArgumentError` naming the pointer if it is not a separately committed
    field of this payload (not in F: only the whole payload can then be withheld), is already
    withheld, or is named twice.
    """
    _entries(disclosure)
    _order(order_index, "order")
    chosen = list(pointers)
    if not chosen:
        raise InvalidArgumentError("fields", "names no field to withhold")
    fields = disclosure["fields"]
    seen: set[str] = set()
    for text in chosen:
        where = f"fields[{text!r}]"
        if text in seen:
            raise InvalidArgumentError(where, "is named twice")
        seen.add(text)
        if text not in fields:
            committed = ", ".join(sorted(fields)) or "none"
            raise InvalidArgumentError(
                where,
                f"is not a separately committed field of this payload (those are: {committed}); only the"
                " whole payload can be withheld",
            )
        if "digest" in fields[text]:
            raise InvalidArgumentError(where, f"is already withheld under order {fields[text]['order']}")
    new_body = copy.deepcopy(body)
    new_fields = dict(fields)
    for text in chosen:
        container, key = _locate(new_body, text, f"fields[{text!r}]")
        salt = bytes.fromhex(fields[text]["salt"])
        digest = field_digest(salt, container[key], field=f"payload{text}")
        container[key] = None
        new_fields[text] = {"digest": digest.hex(), "order": order_index}
    return new_body, {"salt": disclosure["salt"], "fields": new_fields}


def withheld_fields(disclosure: dict[str, Any]) -> dict[str, int]:
    """The withheld fields of a disclosure and the log index of the order that withheld each."""
    _, fields = _entries(disclosure)
    return {text: entry["order"] for text, entry in sorted(fields.items()) if "digest" in entry}
