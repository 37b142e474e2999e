"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys: the log signs its
checkpoints (docs/spec.md §16) so a third party can hold the operator to a checkpoint it handed
out, before or without its anchor.

Formats, as golang.org/x/mod/sumdb/note writes them:

- verifier key ("vkey"): ``<name>+<key hash, 8 hex>+<base64(0x01 || 32-byte public key)>``;
- signer key: ``PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || 32-byte seed)>``;
- key hash: the first 4 bytes (big-endian) of ``SHA-256(name || "\\n" || 0x01 || public key)``;
- note: the text (non-empty, ending in a newline), a blank line, then one line per signature
  ``— <name> <base64(key hash (4) || Ed25519 signature (64) of the text's bytes)>``.

Pure: the caller brings the key's seed (``tenderproof keys log-signing-key`` draws it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import FormatError, VerificationError

ALG_ED25519 = 0x01
_NAME = re.compile(r"[^\s+\u2014]+")  # no space, no plus, no em dash (Go's rules)
_SIG_LINE = re.compile(r"\u2014 (\S+) ([A-Za-z0-9+/=]+)")
MAX_SIGNATURES = 100


def key_hash(name: str, public: bytes, *, alg: int = ALG_ED25519) -> int:
    """The 32-bit key hash (C2SP: key ID) of ``name``'s Ed25519 ``public`` key for signature type
    ``alg`` (0x01 signed notes, 0x04 tlog-cosignature/v1)."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4], "big")


def public_key(seed: bytes) -> bytes:
    """The raw Ed25519 public key of a 32-byte ``seed``."""
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def parse_vkey(vkey: str, *, alg: int, what: str, kind: str) -> tuple[str, int, bytes]:
    """Read a verifier key ``<name>+<key hash>+<base64(alg || public key)>`` of signature type
    ``alg``: its name, key hash and 32-byte public key. Raises :class:`FormatError` naming ``what``;
    ``kind`` names the keys accepted in the message."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise FormatError(what, "a verifier key is <name>+<8 hex digits>+<base64 key>")
    name, hash_hex, key_b64 = parts
    _name(name, what)
    if not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
        raise FormatError(what, f"key hash {hash_hex!r} must be 8 lowercase hex digits")
    key = _b64(key_b64, what)
    if len(key) != 33 or key[0] != alg:
        raise FormatError(what, f"only {kind} keys (0x{alg:02x} and 32 bytes) are supported")
    if key_hash(name, key[1:], alg=alg) != int(hash_hex, 16):
        raise FormatError(what, "the key hash does not match the name and key")
    return name, int(hash_hex, 16), key[1:]


def parse_skey(skey: str, *, alg: int, what: str, kind: str) -> tuple[str, bytes]:
    """Read a signer key ``PRIVATE+KEY+<name>+<key hash>+<base64(alg || seed)>``: its name and
    32-byte seed. Raises :class:`FormatError` naming ``what``; the message never repeats the key."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise FormatError(what, "a signer key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>")
    name, hash_hex, seed_b64 = parts[2:]
    _name(name, what)
    seed = _b64(seed_b64, what)
    if len(seed) != 33 or seed[0] != alg:
        raise FormatError(what, f"only {kind} keys (0x{alg:02x} and a 32-byte seed) are supported")
    if f"{key_hash(name, public_key(seed[1:]), alg=alg):08x}" != hash_hex:
        raise FormatError(what, "the key hash does not match the name and key")
    return name, seed[1:]


def vkey_text(name: str, public: bytes, *, alg: int) -> str:
    """The verifier key's text of ``name``'s ``public`` key."""
    return f"{name}+{key_hash(name, public, alg=alg):08x}+{base64.b64encode(bytes([alg]) + public).decode()}"


def skey_text(name: str, seed: bytes, *, alg: int) -> str:
    """The signer key's text (a secret)."""
    encoded = base64.b64encode(bytes([alg]) + seed).decode()
    return f"PRIVATE+KEY+{name}+{key_hash(name, public_key(seed), alg=alg):08x}+{encoded}"


def _name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise FormatError(what, f"key name {name!r} must be non-empty, without spaces, '+' or '\u2014'")
    return name


def _b64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(what, f"is not base64: {exc}") from None
    return data


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    hash: int
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read a verifier key; raises :class:`FormatError` naming what is wrong."""
        return cls(*parse_vkey(vkey, alg=ALG_ED25519, what="log key", kind="Ed25519"))

    def __str__(self) -> str:
        return vkey_text(self.name, self.public, alg=ALG_ED25519)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    seed: bytes = field(repr=False)
    # Derived once (a public key from a seed is a scalar multiplication), not per signature.
    _private: Ed25519PrivateKey = field(init=False, repr=False, compare=False)
    _verifier: Verifier = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "_private", private)
        object.__setattr__(self, "_verifier", Verifier(self.name, key_hash(self.name, public), public))

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Read a signer key (``PRIVATE+KEY+...``); the error never repeats the key."""
        return cls(*parse_skey(skey, alg=ALG_ED25519, what="log signing key", kind="Ed25519"))

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    def skey(self) -> str:
        """The signer key's text (a secret)."""
        return skey_text(self.name, self.seed, alg=ALG_ED25519)

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end with a newline and hold no blank line end)."""
        _check_text(text)
        signature = self._private.sign(text.encode())
        blob = self._verifier.hash.to_bytes(4, "big") + signature
        return f"{text}\n\u2014 {self.name} {base64.b64encode(blob).decode()}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or text.endswith("\n\n") or "\n\n" in text:
        raise FormatError("note", "the text must be non-empty lines, each ending with a newline")


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` if it carries a valid signature by ``verifier``; raises
    :class:`FormatError` for a malformed note, :class:`VerificationError` if no signature by
    that key verifies."""
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise FormatError("checkpoint", "a signed note is its text, a blank line, then signature lines")
    text += "\n"
    _check_text(text)
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError("checkpoint", f"more than {MAX_SIGNATURES} signature lines")
    parsed = []
    for line in lines:
        m = _SIG_LINE.fullmatch(line)
        if m is None:
            raise FormatError("checkpoint", f"malformed signature line {line[:80]!r}")
        blob = _b64(m.group(2), "checkpoint signature")
        if len(blob) < 5:
            raise FormatError("checkpoint", "a signature line holds a key hash and a signature")
        parsed.append((m.group(1), int.from_bytes(blob[:4], "big"), blob[4:]))
    found_key = False
    for name, hash_, signature in parsed:
        if name != verifier.name or hash_ != verifier.hash:
            continue
        found_key = True
        if verifier.verify(text.encode(), signature):
            return text
    if found_key:
        raise VerificationError(f"the checkpoint's signature by {verifier.name}+{verifier.hash:08x} does not verify")
    raise VerificationError(f"the checkpoint carries no signature by the log key {verifier.name}+{verifier.hash:08x}")
