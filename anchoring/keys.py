"""The anchoring account's key: a hex private key from the environment, or an encrypted
keystore file (Web3 Secret Storage). The key is held as :class:`SecretStr` until the
account is made, and no error message, log line or ``repr`` shows it."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from .errors import ChainConfigError


def from_hex(key: SecretStr, *, field: str) -> LocalAccount:
    """The account of a hex private key (with or without ``0x``)."""
    text = key.get_secret_value().strip()
    digits = text[2:] if text.lower().startswith("0x") else text
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ChainConfigError(field, f"is not a 32-byte hex private key ({len(digits)} characters given)")
    try:
        account: LocalAccount = Account.from_key(bytes.fromhex(digits))
    except (ValueError, TypeError) as exc:  # zero or above the curve order
        raise ChainConfigError(field, "is not a valid secp256k1 private key") from exc
    return account


def from_keystore(path: Path, password: SecretStr | None, *, field: str) -> LocalAccount:
    """The account of an encrypted keystore file."""
    if password is None:
        raise ChainConfigError("keystore_password", f"is needed to open the keystore {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChainConfigError(field, f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ChainConfigError(field, f"{path} is not a JSON keystore (not UTF-8 text)") from exc
    except json.JSONDecodeError as exc:
        raise ChainConfigError(field, f"{path} is not a JSON keystore: {exc.msg}") from exc
    try:
        secret = Account.decrypt(document, password.get_secret_value())
    except ValueError as exc:
        raise ChainConfigError(field, f"{path}: wrong password or damaged keystore") from exc
    except (KeyError, TypeError) as exc:
        raise ChainConfigError(field, f"{path} is not a Web3 Secret Storage keystore") from exc
    account: LocalAccount = Account.from_key(secret)
    return account
