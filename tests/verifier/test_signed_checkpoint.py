"""Signed checkpoints (docs/spec.md §16): the server's key from the settings, the verifier key at
the well-known URL, the signed checkpoint endpoint, bundles carrying the signed checkpoint of
their newest anchor, and the verifier's --log-key (a checkpoint signed by another key refused)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from anchoring.bundles import build_bundle, final_anchors
from api.app import create_app
from cli import cli
from ledger.core.checkpoint import Checkpoint
from ledger.core.cosignature import Cosigner
from ledger.core.errors import FormatError
from ledger.core.note import Signer, Verifier, open_note
from settings import Settings
from tests.conftest import ORIGIN
from verifier.cli import verify
from verifier.signed import read_key, read_witness

from . import corpus

KEY = Signer(ORIGIN, bytes(range(1, 33)))
OTHER = Signer(ORIGIN, bytes(range(2, 34)))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[corpus.Corpus]:
    c = corpus.build(tmp_path_factory.mktemp("signed") / "log.db")
    yield c
    c.log.close()


def _bundle(c: corpus.Corpus, signer: Signer | None) -> dict[str, object]:
    return build_bundle(c.log, corpus.OCID, final_anchors(c.log.engine, "dev"), signer=signer).to_json()


def _verify(tmp_path: Path, doc: object, *args: str) -> tuple[int, str]:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(verify, [str(path), *args])
    return result.exit_code, result.output


def test_a_bundle_carries_the_signed_checkpoint_of_its_newest_anchor(built: corpus.Corpus, tmp_path: Path) -> None:
    doc = _bundle(built, KEY)
    note = doc["checkpoint"]
    assert isinstance(note, str)
    newest = doc["anchors"][-1]  # type: ignore[index]
    checkpoint = Checkpoint.from_text(open_note(note, KEY.verifier))
    assert (checkpoint.origin, checkpoint.size, checkpoint.root.hex()) == (
        ORIGIN,
        newest["tree_size"],
        newest["root_hash"],
    )
    code, out = _verify(tmp_path, doc, "--log-key", str(KEY.verifier))
    assert code == 0, out
    assert f"checkpoint: signed by the log key {KEY.verifier.name}+{KEY.verifier.hash:08x}" in out
    code, out = _verify(tmp_path, doc)
    assert code == 0 and "its signature was NOT checked (no --log-key)" in out
    keyfile = tmp_path / "log.vkey"
    keyfile.write_text(f"{KEY.verifier}\n")
    assert _verify(tmp_path, doc, "--log-key", str(keyfile))[0] == 0


def test_a_checkpoint_signed_by_another_key_is_refused(built: corpus.Corpus, tmp_path: Path) -> None:
    doc = _bundle(built, OTHER)
    code, out = _verify(tmp_path, doc, "--log-key", str(KEY.verifier))
    assert code == 1 and "FAIL checkpoint: the checkpoint carries no signature by the log key" in out
    # Re-signed for an older size by the right key: the size and root differ from the newest anchor.
    older = doc["anchors"][0]  # type: ignore[index]
    doc["checkpoint"] = KEY.sign(Checkpoint(ORIGIN, older["tree_size"], bytes.fromhex(older["root_hash"])).to_text())
    code, out = _verify(tmp_path, doc, "--log-key", str(KEY.verifier))
    assert code == 1 and "the newest anchor of tree size" in out
    # A key given but no signed checkpoint in the bundle.
    code, out = _verify(tmp_path, _bundle(built, None), "--log-key", str(KEY.verifier))
    assert code == 1 and "carries no signed checkpoint" in out
    assert _verify(tmp_path, doc, "--log-key", "not+a+key")[0] == 2


def test_the_server_publishes_its_key_and_signed_checkpoint(built: corpus.Corpus, tmp_path: Path) -> None:
    keyfile = tmp_path / "log.key"
    keyfile.write_text(KEY.skey() + "\n")
    settings = Settings(
        database_url="sqlite://", origin=ORIGIN, chains=[corpus.CHAIN], rate_limit=None, log_signing_key_file=keyfile
    )
    with TestClient(create_app(settings, log=built.log)) as client:
        vkey = client.get("/.well-known/tenderproof/checkpoint-key")
        assert vkey.status_code == 200 and vkey.text == f"{KEY.verifier}\n"
        signed = client.get("/api/v1/checkpoint/signed")
        assert signed.status_code == 200 and signed.headers["content-type"].startswith("text/plain")
        head = built.log.reader.tree_head()
        assert Checkpoint.from_text(open_note(signed.text, Verifier.parse(vkey.text))) == Checkpoint(
            ORIGIN, head.size, head.root
        )
        bundle = client.get(f"/api/v1/tenders/{corpus.OCID}/bundle").json()
        assert bundle["format"] == "tenderproof-bundle/2" and bundle["checkpoint"].startswith(ORIGIN + "\n")
        assert client.get(f"/api/v1/tenders/{corpus.OCID}/bundle?format=1").json()["format"] == "tenderproof-bundle/1"
    unsigned = Settings(database_url="sqlite://", origin=ORIGIN, chains=[corpus.CHAIN], rate_limit=None)
    with TestClient(create_app(unsigned, log=built.log)) as client:
        assert client.get("/.well-known/tenderproof/checkpoint-key").status_code == 404
        assert client.get("/api/v1/checkpoint/signed").status_code == 404


def test_the_command_makes_a_key_file_and_never_overwrites_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENDERPROOF_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("TENDERPROOF_ORIGIN", "tenders.example.gov/log")
    out = tmp_path / "log.key"
    made = CliRunner().invoke(cli, ["keys", "log-signing-key", "--out", str(out)])
    assert made.exit_code == 0, made.output
    signer = Signer.parse(out.read_text())
    assert made.output.strip() == str(signer.verifier) and signer.name == "tenders.example.gov/log"
    assert signer.skey() not in made.output
    assert (out.stat().st_mode & 0o777) == 0o600
    again = CliRunner().invoke(cli, ["keys", "log-signing-key", "--out", str(out)])
    assert again.exit_code == 2 and "never overwritten" in again.output


def test_a_log_key_or_a_witness_key_is_read_as_given_or_from_its_file(tmp_path: Path) -> None:
    """--log-key and --witness take the key itself or a file holding it (one line); a value that is
    neither is refused as a key, naming no file."""
    witness = Cosigner("w1.example", bytes(range(3, 35))).key
    for text, read in ((str(KEY.verifier), read_key), (str(witness), read_witness)):
        path = tmp_path / "key.vkey"
        path.write_text(f"{text}\n")
        assert str(read(text)) == str(read(str(path))) == text
        with pytest.raises(FormatError):
            read(str(tmp_path / "absent.vkey"))
