"""The anchoring account's key: hex keys and keystores open to the right account, bad ones are
refused naming the setting, and the key shows in no error, log line or ``repr``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr

from anchoring import keys
from anchoring.embedded import EmbeddedChain
from anchoring.errors import ChainConfigError
from anchoring.service import ChainAnchorer, Credentials, account_for
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings, Settings
from tests.conftest import ORIGIN, T0
from tests.recording import append_many

KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = Account.from_key(bytes.fromhex(KEY)).address
#: secp256k1's group order n: keys must be in [1, n - 1].
ORDER = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"


def _leaks(error: BaseException, secret: str) -> bool:
    """True if the secret's digits appear in the error, its repr, or anything it was raised from."""
    digits = secret.lower().removeprefix("0x")
    seen: BaseException | None = error
    while seen is not None:
        for shown in (str(seen), repr(seen)):
            if digits and digits in shown.lower():
                return True
        seen = seen.__cause__ or seen.__context__
    return False


# --- Hex keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [KEY, "0x" + KEY, "0X" + KEY.upper(), f"  0x{KEY}\n"])
def test_hex_key_gives_its_account(text: str) -> None:
    account = keys.from_hex(SecretStr(text), field="anchor_key")
    assert account.address == ADDRESS
    assert account.key.hex().removeprefix("0x") == KEY


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (KEY[:-2], "is not a 32-byte hex private key (62 characters given)"),
        (KEY + "00", "is not a 32-byte hex private key (66 characters given)"),
        ("0x" + KEY[:-1] + "g", "is not a 32-byte hex private key (64 characters given)"),
        ("0x0x" + KEY[2:], "is not a 32-byte hex private key (64 characters given)"),
        ("", "is not a 32-byte hex private key (0 characters given)"),
        ("00" * 32, "is not a valid secp256k1 private key"),
        (ORDER, "is not a valid secp256k1 private key"),
    ],
    ids=["short", "long", "non-hex", "double-prefix", "empty", "zero", "curve-order"],
)
def test_bad_hex_key_is_refused_without_showing_it(text: str, reason: str) -> None:
    with pytest.raises(ChainConfigError) as refused:
        keys.from_hex(SecretStr(text), field="chains[sepolia].key")
    assert (refused.value.field, refused.value.reason) == ("chains[sepolia].key", reason)
    assert str(refused.value) == f"chains[sepolia].key: {reason}"
    assert not _leaks(refused.value, text)


def test_account_errors_name_the_setting_the_key_came_from(tmp_path: Path) -> None:
    chain = ChainSettings(name="sepolia", rpc_url="http://127.0.0.1:9")
    bad = SecretStr("12" * 31)
    with pytest.raises(ChainConfigError) as own:
        account_for(chain.model_copy(update={"key": bad}), Credentials(anchor_key=SecretStr(KEY)))
    assert own.value.field == "chains[sepolia].key"
    with pytest.raises(ChainConfigError) as shared:
        account_for(chain, Credentials(anchor_key=bad))
    assert shared.value.field == "anchor_key"
    with pytest.raises(ChainConfigError) as none:
        account_for(chain, Credentials())
    assert none.value.field == "chains[sepolia].key"
    assert "no key: set TENDERPROOF_ANCHOR_KEY, or the chain's key or keystore" in none.value.reason
    assert account_for(chain, Credentials(anchor_key=SecretStr(KEY))).address == ADDRESS
    missing = chain.model_copy(update={"keystore": tmp_path / "missing.json"})
    with pytest.raises(ChainConfigError) as stored:
        account_for(missing, Credentials(anchor_key=SecretStr(KEY), keystore_password=SecretStr("pw")))
    assert stored.value.field == "chains[sepolia].keystore"  # the chain's keystore comes before the shared key


# --- Keystores ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keystore_document() -> dict[str, object]:
    document: dict[str, object] = Account.encrypt(bytes.fromhex(KEY), "correct horse", kdf="pbkdf2", iterations=2)
    return document


@pytest.fixture
def keystore(tmp_path: Path, keystore_document: dict[str, object]) -> Path:
    path = tmp_path / "anchorer.json"
    path.write_text(json.dumps(keystore_document), encoding="utf-8")
    return path


def test_keystore_opens_with_its_password(keystore: Path) -> None:
    account = keys.from_keystore(keystore, SecretStr("correct horse"), field="chains[x].keystore")
    assert account.address == ADDRESS


def _refusal(path: Path, password: str | None) -> ChainConfigError:
    with pytest.raises(ChainConfigError) as refused:
        keys.from_keystore(path, None if password is None else SecretStr(password), field="chains[x].keystore")
    assert not _leaks(refused.value, KEY)
    return refused.value


def test_keystore_wrong_password(keystore: Path) -> None:
    error = _refusal(keystore, "battery staple")
    assert (error.field, error.reason) == ("chains[x].keystore", f"{keystore}: wrong password or damaged keystore")
    assert "battery staple" not in str(error)


def test_keystore_missing_file(tmp_path: Path) -> None:
    error = _refusal(tmp_path / "nowhere.json", "pw")
    assert (error.field, error.reason) == (
        "chains[x].keystore",
        f"cannot read {tmp_path / 'nowhere.json'}: No such file or directory",
    )


def test_keystore_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "key.txt"
    path.write_text(KEY, encoding="utf-8")  # a raw key where a keystore belongs
    error = _refusal(path, "pw")
    assert error.field == "chains[x].keystore"
    assert error.reason.startswith(f"{path} is not a JSON keystore: ")


@pytest.mark.parametrize("document", ["{}", "[]", "null", '{"version": 3, "crypto": 5}'])
def test_keystore_that_is_json_of_another_shape(tmp_path: Path, document: str) -> None:
    path = tmp_path / "other.json"
    path.write_text(document, encoding="utf-8")
    error = _refusal(path, "pw")
    assert (error.field, error.reason) == ("chains[x].keystore", f"{path} is not a Web3 Secret Storage keystore")


def test_keystore_without_password(keystore: Path) -> None:
    error = _refusal(keystore, None)
    assert (error.field, error.reason) == ("keystore_password", f"is needed to open the keystore {keystore}")


def test_keystore_that_is_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "key.der"
    path.write_bytes(b"\x30\x82\x01\xff" + bytes.fromhex(KEY))
    error = _refusal(path, "pw")
    assert error.field == "chains[x].keystore"


# --- The key shows nowhere ---------------------------------------------------------------


@pytest.fixture
def funded_key() -> Iterator[tuple[EmbeddedChain, str]]:
    """A chain of the test's own, and a new random key funded on it (not the well-known dev key)."""
    dev = EmbeddedChain()
    account = Account.create()
    tx = {"from": dev.w3.eth.accounts[0], "to": account.address, "value": 10**18}
    dev.w3.eth.wait_for_transaction_receipt(dev.w3.eth.send_transaction(tx))  # type: ignore[arg-type]
    yield dev, account.key.hex().removeprefix("0x")


def test_key_appears_in_no_log_record(
    sqlite_url: str, funded_key: tuple[EmbeddedChain, str], caplog: pytest.LogCaptureFixture
) -> None:
    dev, key = funded_key
    log = Log.open(sqlite_url, origin=ORIGIN)
    try:
        append_many(
            log,
            [Submission(ocid=f"ocds-abc123-{i}", type="tender.published", payload={"i": i}) for i in range(3)],
            now=T0,
        )
        log.integrate_all(now=T0)
        chain = ChainSettings(name="dev", rpc_url="embedded", confirmations=1, key=SecretStr("0x" + key))
        anchorer = ChainAnchorer(log, chain, dev=dev, holder="a")
        with caplog.at_level(logging.DEBUG):
            result = anchorer.run_round(force=True)
            while not result.settled:
                result = anchorer.run_round()
    finally:
        log.close()
    assert result.anchor is not None and result.anchor.status == "final"
    assert anchorer.client.account.address == result.anchor.account  # the explicit key signed
    messages = [record.getMessage() for record in caplog.records]
    assert any("anchoring tree size 3" in m for m in messages)  # the capture did see the service
    assert len(messages) > 10  # and web3's DEBUG requests
    for shown in [*messages, caplog.text]:
        assert key not in shown.lower()
    assert repr(anchorer.chain).count("**********") == 1


def test_settings_repr_hides_keys(tmp_path: Path) -> None:
    chain = ChainSettings(name="sepolia", rpc_url="https://rpc.example", key=SecretStr("0x" + KEY))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        anchor_key=SecretStr("0x" + KEY),
        keystore_password=SecretStr("correct horse"),
        chains=[chain],
    )
    for shown in (
        repr(chain),
        str(chain),
        repr(settings),
        str(settings),
        chain.model_dump_json(),
        repr(Credentials(anchor_key=SecretStr(KEY))),
    ):
        assert KEY not in shown.lower()
        assert "correct horse" not in shown
    assert chain.key is not None and chain.key.get_secret_value() == "0x" + KEY
