"""C2SP tlog-cosignature/v1 (https://c2sp.org/tlog-cosignature) with Ed25519, and the request
body of C2SP tlog-witness's ``add-checkpoint`` (https://c2sp.org/tlog-witness): a witness
cosigns a checkpoint it found consistent with the last one it cosigned (docs/spec.md §17).

- cosigner verifier key: ``<name>+<key ID, 8 hex>+<base64(0x04 || 32-byte public key)>``;
- cosigner signer key: ``PRIVATE+KEY+<name>+<key ID>+<base64(0x04 || 32-byte seed)>``;
- key ID: ``SHA-256(name || "\\n" || 0x04 || public key)[:4]``;
- signed message: ``"cosignature/v1\\ntime <T>\\n" || checkpoint body`` (T: POSIX seconds, decimal);
- signature line: ``— <name> base64(key ID (4) || uint64 big-endian T (8) || Ed25519 signature (64))``.

Pure: no I/O; the caller brings the time and the key's seed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import FormatError, VerificationError
from .note import (
    _SIG_LINE,
    _b64,
    _check_text,
    key_hash,
    parse_skey,
    parse_vkey,
    skey_text,
    vkey_text,
)

ALG_COSIGNATURE_V1 = 0x04
HEADER = "cosignature/v1"
MAX_PROOF_LINES = 63
_MAX_TIME = 2**63 - 1
_OLD = re.compile(r"old (0|[1-9][0-9]{0,18})")


def key_id(name: str, public: bytes) -> int:
    """The 32-bit key ID of cosigner ``name``'s Ed25519 ``public`` key."""
    return key_hash(name, public, alg=ALG_COSIGNATURE_V1)


def message(body: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs: header, time line, the checkpoint body."""
    _check_text(body)
    if not 0 <= timestamp <= _MAX_TIME:
        raise FormatError("cosignature.time", f"must be in [0, 2**63-1], got {timestamp}")
    return f"{HEADER}\ntime {timestamp}\n{body}".encode()


@dataclass(frozen=True, slots=True)
class Cosignature:
    name: str
    key_id: int
    timestamp: int
    signature: bytes

    def line(self) -> str:
        blob = self.key_id.to_bytes(4, "big") + self.timestamp.to_bytes(8, "big") + self.signature
        return f"\u2014 {self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A cosigner's verifier key."""

    name: str
    key_id: int
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> CosignerKey:
        """Read a witness's verifier key; raises :class:`FormatError` naming what is wrong."""
        return cls(*parse_vkey(vkey, alg=ALG_COSIGNATURE_V1, what="witness key", kind="cosignature/v1 Ed25519"))

    def __str__(self) -> str:
        return vkey_text(self.name, self.public, alg=ALG_COSIGNATURE_V1)

    def verify(self, body: str, cosignature: Cosignature) -> bool:
        if cosignature.name != self.name or cosignature.key_id != self.key_id:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(
                cosignature.signature, message(body, cosignature.timestamp)
            )
        except (InvalidSignature, ValueError, FormatError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness's signing key."""

    name: str
    seed: bytes = field(repr=False)
    # Derived once (a public key from a seed is a scalar multiplication): a witness cosigns on
    # every request.
    _private: Ed25519PrivateKey = field(init=False, repr=False, compare=False)
    _key: CosignerKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        private = Ed25519PrivateKey.from_private_bytes(self.seed)
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "_private", private)
        object.__setattr__(self, "_key", CosignerKey(self.name, key_id(self.name, public), public))

    @classmethod
    def parse(cls, skey: str) -> Cosigner:
        """Read a signer key (``PRIVATE+KEY+...``); the error never repeats the key."""
        return cls(*parse_skey(skey, alg=ALG_COSIGNATURE_V1, what="witness signing key", kind="cosignature/v1 Ed25519"))

    @property
    def key(self) -> CosignerKey:
        return self._key

    def skey(self) -> str:
        return skey_text(self.name, self.seed, alg=ALG_COSIGNATURE_V1)

    def cosign(self, body: str, timestamp: int) -> Cosignature:
        signature = self._private.sign(message(body, timestamp))
        return Cosignature(self.name, self._key.key_id, timestamp, signature)


def split_note(note: str) -> tuple[str, list[str]]:
    """A signed note's body (ending in a newline) and its signature lines (each without newline)."""
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise FormatError("checkpoint", "a signed note is its text, a blank line, then signature lines")
    return text + "\n", block[:-1].split("\n")


def parse_line(line: str) -> Cosignature | None:
    """The cosignature on a signature line, or ``None`` if the line cannot be one (another
    algorithm's signature, e.g. the log's own)."""
    m = _SIG_LINE.fullmatch(line.rstrip("\n"))
    if m is None:
        raise FormatError("cosignature", f"malformed signature line {line[:80]!r}")
    blob = _b64(m.group(2), "cosignature")
    if len(blob) != 4 + 8 + 64:
        return None
    return Cosignature(m.group(1), int.from_bytes(blob[:4], "big"), int.from_bytes(blob[4:12], "big"), blob[12:])


def verified(note: str, keys: Sequence[CosignerKey]) -> dict[str, int]:
    """The cosigners among ``keys`` with a valid cosignature on ``note``: vkey -> timestamp."""
    body, lines = split_note(note)
    out: dict[str, int] = {}
    for line in lines:
        cosig = parse_line(line)
        if cosig is None:
            continue
        for key in keys:
            if key.verify(body, cosig):
                out[str(key)] = cosig.timestamp
    return out


def check_quorum(note: str, keys: Sequence[CosignerKey], quorum: int) -> dict[str, int]:
    """At least ``quorum`` of ``keys`` cosigned ``note``, else :class:`VerificationError`
    naming the shortfall; returns who did."""
    found = verified(note, keys)
    if len(found) < quorum:
        missing = [key.name for key in keys if str(key) not in found]
        raise VerificationError(
            f"witness policy: {len(found)} of the {quorum} cosignatures required (of {len(keys)} witnesses); "
            f"missing: {', '.join(missing) or 'none'}"
        )
    return found


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """The body of a tlog-witness add-checkpoint request."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def to_text(self) -> str:
        lines = [f"old {self.old_size}", *(base64.b64encode(h).decode() for h in self.proof)]
        return "".join(f"{line}\n" for line in lines) + "\n" + self.note

    @classmethod
    def parse(cls, body: str) -> AddCheckpoint:
        head, sep, note = body.partition("\n\n")
        if not sep:
            raise FormatError("add-checkpoint", "the body is an old size line, proof lines, a blank line, a checkpoint")
        lines = head.split("\n")
        m = _OLD.fullmatch(lines[0])
        if m is None:
            raise FormatError("add-checkpoint.old", f"the first line must be 'old <size>', got {lines[0][:40]!r}")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise FormatError("add-checkpoint.proof", f"at most {MAX_PROOF_LINES} proof lines, got {len(lines) - 1}")
        proof = []
        for i, line in enumerate(lines[1:]):
            node = _b64(line, f"add-checkpoint.proof[{i}]")
            if len(node) != 32:
                raise FormatError(f"add-checkpoint.proof[{i}]", f"must be a 32-byte hash, got {len(node)} bytes")
            proof.append(node)
        return cls(int(m.group(1)), tuple(proof), note)
