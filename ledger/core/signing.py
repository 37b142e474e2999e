"""Officer signatures of submissions (docs/spec.md §7): EIP-712 typed data signed with an Ethereum key.

Be careful here, as everywhere in :mod:`ledger.core`: the typed data below is what officers'
wallets sign and what auditors' tools (the in-browser verifier, ethers.js, other languages)
rebuild to recover the signer. Changing a name, a type or an order makes every past signature
recover someone else.

The typed data (``version`` "1", the only one a v1 verifier knows)::

    EIP712Domain(string name,string version,uint256 chainId)
    Submission(string ocid,string eventType,bytes32 payloadSha256,string submissionId,address officer,uint64 signedAt)

- domain ``name``: the log's ``origin`` (the deployment's name, the envelope's ``origin``);
  ``version``: ``"1"``; ``chainId``: the id of the chain the log anchors to. There is no
  ``verifyingContract`` and no ``salt``: EIP-712 reserves ``verifyingContract`` for the contract
  that checks the signature, and the anchor contract never does (verification is off chain).
- ``ocid``, ``eventType``: the envelope's ``ocid`` and ``type``;
  ``payloadSha256``: the envelope's ``payload_sha256`` as 32 raw bytes (in a version 2 envelope,
  its ``payload_commitment``: the officer signs the salted commitment, never the bare hash);
  ``submissionId``: a client-chosen unique id (for example a UUID), 1 to 128 visible ASCII
  characters (``!`` to ``~``, no spaces); ``officer``: the address the signer claims to be, so the
  recovered signer can be compared with it; ``signedAt``: Unix seconds when the officer signed.

The digest signed is the standard ``keccak256(0x19 0x01 || domainSeparator || hashStruct(message))``
of EIP-712, computed by eth-account (:func:`eth_account.messages.encode_typed_data`), never here.

The JSON carried in an envelope's ``submission`` field (every field required, no others)::

    {"domain": {"name": "<origin>", "version": "1", "chainId": 31337},
     "ocid": "ocds-abc123-0001", "eventType": "tender.published",
     "payloadSha256": "<64 lowercase hex, no 0x>", "submissionId": "<id>",
     "officer": "<0x + 40 hex, EIP-55 checksummed>", "signedAt": 1795435200}

``chainId`` and ``signedAt`` are JSON integers within the RFC 8785 safe range (at most
2**53 - 1; ``chainId`` at least 1). The envelope's ``signature`` is the 65-byte ``r || s || v``
as ``0x`` + 130 lowercase hex, with ``v`` 27 or 28 and a low ``s`` (EIP-2); any other encoding
of the same signature is refused, so each signed submission has one envelope.

Verifying (:func:`verify_submission`) checks that the submission is the envelope's own (origin,
ocid, type, payload hash) and that the signature recovers its ``officer``. Whether that address
is a registered officer is for the caller to decide: the set is recorded in the log itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from .canonical import MAX_SAFE_INTEGER
from .envelope import Envelope, check_event_type, check_ocid
from .errors import InvalidArgumentError, SignatureError

#: The EIP-712 domain ``version``: the version of this typed-data format.
SIGNING_VERSION = "1"

DOMAIN_TYPE: tuple[tuple[str, str], ...] = (("name", "string"), ("version", "string"), ("chainId", "uint256"))
SUBMISSION_TYPE: tuple[tuple[str, str], ...] = (
    ("ocid", "string"),
    ("eventType", "string"),
    ("payloadSha256", "bytes32"),
    ("submissionId", "string"),
    ("officer", "address"),
    ("signedAt", "uint64"),
)
PRIMARY_TYPE = "Submission"

#: secp256k1 group order.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x[0-9a-f]{130}")
_SUBMISSION_ID = re.compile(r"[!-~]{1,128}")
_FIELDS = frozenset({"domain", "ocid", "eventType", "payloadSha256", "submissionId", "officer", "signedAt"})
_DOMAIN_FIELDS = frozenset({"name", "version", "chainId"})


def _check_int(value: object, field: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_SAFE_INTEGER:
        raise InvalidArgumentError(field, f"must be an integer from {minimum} to 2**53 - 1, got {value!r}")
    return value


def _check_address(value: object, field: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise InvalidArgumentError(field, f"must be an address, 0x + 40 hex digits, got {value!r}")
    checksummed = to_checksum_address(value)
    if value != checksummed:
        raise InvalidArgumentError(field, f"must be EIP-55 checksummed: expected {checksummed!r}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """What an officer signs. Construction validates every field; errors name the JSON path
    (``submission.<name>``). Not to be confused with :class:`ledger.sequencer.Submission`, an
    append request, which carries this object's JSON in its ``submission`` field."""

    #: The log's origin: the EIP-712 domain ``name``.
    origin: str
    #: The chain the log anchors to: the EIP-712 domain ``chainId``.
    chain_id: int
    ocid: str
    event_type: str
    #: 64 lowercase hex digits, as in the envelope.
    payload_sha256: str
    submission_id: str
    #: EIP-55 checksummed address of the officer who signs.
    officer: str
    #: Unix seconds.
    signed_at: int

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise InvalidArgumentError(
                "submission.domain.name", f"must be the log's origin, a non-empty single line, got {self.origin!r}"
            )
        _check_int(self.chain_id, "submission.domain.chainId", minimum=1)
        check_ocid(self.ocid, field="submission.ocid", recorded=True)
        if not isinstance(self.event_type, str):  # check_event_type raises TypeError on a list or object
            raise InvalidArgumentError(
                "submission.eventType", f"must be a string, got {type(self.event_type).__name__}"
            )
        check_event_type(self.event_type, field="submission.eventType")
        if not isinstance(self.payload_sha256, str) or not _HEX_HASH.fullmatch(self.payload_sha256):
            raise InvalidArgumentError(
                "submission.payloadSha256", f"must be 64 lowercase hex digits, got {self.payload_sha256!r}"
            )
        if not isinstance(self.submission_id, str) or not _SUBMISSION_ID.fullmatch(self.submission_id):
            raise InvalidArgumentError(
                "submission.submissionId",
                f"must be 1 to 128 visible ASCII characters (no spaces), got {self.submission_id!r}",
            )
        _check_address(self.officer, "submission.officer")
        _check_int(self.signed_at, "submission.signedAt", minimum=0)

    def to_json(self) -> dict[str, Any]:
        """The JSON object an envelope carries as ``submission``."""
        return {
            "domain": {"name": self.origin, "version": SIGNING_VERSION, "chainId": self.chain_id},
            "ocid": self.ocid,
            "eventType": self.event_type,
            "payloadSha256": self.payload_sha256,
            "submissionId": self.submission_id,
            "officer": self.officer,
            "signedAt": self.signed_at,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Submission:
        """Parse the JSON form strictly: a missing or unknown field, a wrong type or an unknown
        ``domain.version`` raises :class:`InvalidArgumentError` naming ``submission.<path>``."""
        if not isinstance(obj, dict):
            raise InvalidArgumentError("submission", f"must be a JSON object, got {type(obj).__name__}")
        _check_keys(obj, _FIELDS, "submission")
        domain = obj["domain"]
        if not isinstance(domain, dict):
            raise InvalidArgumentError("submission.domain", f"must be a JSON object, got {type(domain).__name__}")
        _check_keys(domain, _DOMAIN_FIELDS, "submission.domain")
        if domain["version"] != SIGNING_VERSION:
            raise InvalidArgumentError(
                "submission.domain.version", f"unsupported version {domain['version']!r}, expected {SIGNING_VERSION!r}"
            )
        return cls(
            origin=domain["name"],
            chain_id=domain["chainId"],
            ocid=obj["ocid"],
            event_type=obj["eventType"],
            payload_sha256=obj["payloadSha256"],
            submission_id=obj["submissionId"],
            officer=obj["officer"],
            signed_at=obj["signedAt"],
        )


def _check_keys(obj: dict[str, Any], known: frozenset[str], path: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise InvalidArgumentError(f"{path}.{unknown[0]}", "unknown field")
    missing = sorted(known - set(obj))
    if missing:
        raise InvalidArgumentError(f"{path}.{missing[0]}", "missing")


def typed_data(submission: Submission) -> dict[str, Any]:
    """The full EIP-712 typed data of ``submission`` (``eth_signTypedData_v4`` form), which
    wallets sign and other tools hash: ``bytes32`` as ``0x`` hex, the address checksummed."""
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in DOMAIN_TYPE],
            PRIMARY_TYPE: [{"name": n, "type": t} for n, t in SUBMISSION_TYPE],
        },
        "primaryType": PRIMARY_TYPE,
        "domain": {"name": submission.origin, "version": SIGNING_VERSION, "chainId": submission.chain_id},
        "message": {
            "ocid": submission.ocid,
            "eventType": submission.event_type,
            "payloadSha256": "0x" + submission.payload_sha256,
            "submissionId": submission.submission_id,
            "officer": submission.officer,
            "signedAt": submission.signed_at,
        },
    }


def _signable(submission: Submission) -> SignableMessage:
    return encode_typed_data(full_message=typed_data(submission))


def signing_hash(submission: Submission) -> bytes:
    """The 32-byte EIP-712 digest the officer's key signs."""
    message = _signable(submission)
    return keccak(b"\x19" + message.version + message.header + message.body)


def sign_submission(submission: Submission, private_key: bytes | str) -> str:
    """Sign ``submission`` with the officer's key; return ``0x`` + 130 lowercase hex (``r || s || v``).

    Raises :class:`InvalidArgumentError` if ``private_key`` is not a secp256k1 key (field
    ``private_key``; the key never appears in the message) or is not the key of
    ``submission.officer`` (field ``submission.officer``).
    """
    try:
        account = Account.from_key(private_key)
    except (ValueError, TypeError, ValidationError) as exc:
        raise InvalidArgumentError("private_key", "is not a secp256k1 private key (32 bytes or 64 hex digits)") from exc
    if account.address != submission.officer:
        raise InvalidArgumentError(
            "submission.officer", f"is {submission.officer}, but the key given signs as {account.address}"
        )
    signed = account.sign_message(_signable(submission))
    return "0x" + bytes(signed.signature).hex()


def _signature_bytes(signature: object) -> bytes:
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        raise InvalidArgumentError("signature", "must be a 65-byte signature as 0x + 130 lowercase hex digits")
    raw = bytes.fromhex(signature[2:])
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if not 0 < r < _N:
        raise InvalidArgumentError("signature", "r must be from 1 to the curve order - 1")
    if not 0 < s <= _N // 2:
        raise InvalidArgumentError("signature", "s must be from 1 to half the curve order (low s, EIP-2)")
    if v not in (27, 28):
        raise InvalidArgumentError("signature", f"v must be 27 or 28, got {v}")
    return raw


def recover_signer(submission: Submission, signature: str) -> str:
    """The EIP-55 address whose key made ``signature`` over ``submission``.

    Raises :class:`InvalidArgumentError` (field ``signature``) if the signature is not in the
    one accepted encoding, and :class:`SignatureError` if it recovers no key at all.
    """
    raw = _signature_bytes(signature)
    try:
        return str(Account.recover_message(_signable(submission), signature=raw))
    except (BadSignature, ValueError, ValidationError) as exc:
        raise SignatureError("signature", "recovers no public key (r is not a point of the curve)") from exc


def verify_submission(envelope: Envelope, *, chain_id: int | None = None) -> str:
    """Check the envelope's signed submission and return the officer's address.

    The submission must be the envelope's own (domain name = ``origin``, same ``ocid``,
    ``eventType`` = ``type``, same ``payload_sha256``, or ``payload_commitment`` in v2), on ``chain_id`` when one is given, and
    the signature must recover the ``officer`` it names. Whether that officer is registered is
    the caller's check.

    Raises :class:`InvalidArgumentError` if the submission or signature is malformed, and
    :class:`SignatureError` (naming the field that differs) if it does not verify, including
    when the envelope is not signed at all.
    """
    if envelope.submission is None or envelope.signature is None:
        raise SignatureError("signature", "the envelope is not signed")
    submission = Submission.from_json(envelope.submission)
    for field, expected, got in (
        ("submission.domain.name", envelope.origin, submission.origin),
        ("submission.ocid", envelope.ocid, submission.ocid),
        ("submission.eventType", envelope.type, submission.event_type),
        ("submission.payloadSha256", envelope.payload_hash, submission.payload_sha256),
    ):
        if expected != got:
            raise SignatureError(field, "is not the envelope's", expected=expected, got=got)
    if chain_id is not None and submission.chain_id != chain_id:
        raise SignatureError(
            "submission.domain.chainId", "is not the log's chain", expected=chain_id, got=submission.chain_id
        )
    signer = recover_signer(submission, envelope.signature)
    if signer != submission.officer:
        raise SignatureError(
            "signature", "was not made by the officer the submission names", expected=submission.officer, got=signer
        )
    return signer
