"""The browser's bundle-v2 building blocks in Chromium, against data the project's browser code did
not produce: the heads proofs of tests/assets/heads/vectors.json (docs/spec.md §14.5; every valid
proof accepted, every bad one refused for its reason) and C2SP signed checkpoints made with
@noble/curves' Ed25519 (tests/explorer/sign_note.mjs), checked with WebCrypto."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.api.servers import threaded_server
from tests.explorer.browser import ROOT, chromium
from tests.explorer.conftest import Ledger, app_for, recorded_ledger

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def verifier_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    """explorer/js/verify.js and complete.js bundled as one script defining the global ``TP``."""
    directory = tmp_path_factory.mktemp("js")
    entry = directory / "entry.js"
    entry.write_text(
        f'export * from "{ROOT}/explorer/js/verify.js";\nexport * from "{ROOT}/explorer/js/complete.js";\n'
    )
    out = directory / "tp.js"
    subprocess.run(
        [
            "npx",
            "--no-install",
            "esbuild",
            str(entry),
            "--bundle",
            "--format=iife",
            "--global-name=TP",
            f"--outfile={out}",
            "--log-level=warning",
        ],
        cwd=ROOT,
        check=True,
    )
    return out.read_text()


@pytest.fixture(scope="module")
def embedded_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with recorded_ledger("sqlite", tmp_path_factory.mktemp("v2")) as recorded:
        yield recorded


@pytest.fixture(scope="module")
def page(embedded_ledger: Ledger, verifier_module: str) -> Iterator[Page]:
    with threaded_server(app_for(embedded_ledger)) as base, chromium() as browser:
        context = browser.new_context()
        p = context.new_page()
        p.goto(f"{base}/verify")  # a secure context (127.0.0.1): WebCrypto is there
        p.evaluate(verifier_module)
        yield p
        context.close()


def test_heads_vectors_in_the_browser(page: Page) -> None:
    vectors = json.loads((ROOT / "tests" / "assets" / "heads" / "vectors.json").read_text())
    cases = vectors["cases"]
    got = page.evaluate(
        """async (cases) => {
            const h = TP.fromHex, out = [];
            for (const c of cases) {
                let err = null;
                try {
                    const key = await TP.headsKey(c.ocid);
                    if (TP.toHex(key) !== c.key) throw new Error(`key of ${c.ocid}`);
                    const other = c.other && {key: h(c.other.key), size: c.other.size, leaf_hash: h(c.other.leaf_hash)};
                    await TP.verifyHeadsProof(h(c.heads_root), key, c.size, c.head === null ? null : h(c.head),
                                              c.siblings.map(h), other);
                } catch (e) { err = e.key || e.message; }
                out.push([c.desc, c.want_err, err]);
            }
            return out;
        }""",
        cases,
    )
    assert len(got) == len(cases) > 100
    # The browser's reason for each refusal, by the vectors' kind of failure.
    expected = {
        None: {None},
        "root_mismatch": {"p_root"},
        "proof_shape": {"h_shape"},
        "not_canonical": {"h_not_canonical"},
        "bad_other": {"h_bad_other"},
    }
    wrong = [(desc, want, err) for desc, want, err in got if err not in expected[want]]
    assert wrong == []
    assert {want for _, want, _ in got} == set(expected)


def _signed(name: str, seed: bytes, body: str) -> dict[str, str]:
    done = subprocess.run(
        ["node", str(HERE / "sign_note.mjs"), name, seed.hex()],
        input=body,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    signed: dict[str, str] = json.loads(done.stdout)
    return signed


def _check(page: Page, bundle: dict[str, Any], anchor: dict[str, Any], vkey: str | None) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """async ([bundle, anchor, vkey]) => {
            const failures = [];
            const fail = (where, reason) => failures.push([where.key, reason.key]);
            fail.count = () => failures.length;
            const r = await TP.checkCheckpoint(bundle, anchor, vkey, fail);
            return {status: r.status, name: r.name || null, reason: r.reason ? r.reason.key : null, failures};
        }""",
        [bundle, anchor, vkey],
    )
    return result


def test_signed_checkpoints_in_the_browser(page: Page) -> None:
    origin = "tenderproof.example/log"
    root = bytes(range(32))
    body = f"{origin}\n42\n{base64.b64encode(root).decode()}\n"
    mine = _signed("tenderproof.example/log", b"\x01" * 32, body)
    theirs = _signed("tenderproof.example/log", b"\x02" * 32, body)
    anchor = {"tree_size": 42, "root_hash": root.hex()}
    bundle = {"origin": origin, "checkpoint": mine["note"]}

    assert _check(page, bundle, anchor, mine["vkey"]) == {
        "status": "verified",
        "name": "tenderproof.example/log",
        "reason": None,
        "failures": [],
    }
    # Without a key: said not checked, never verified.
    assert _check(page, bundle, anchor, None)["status"] == "unchecked"
    # Signed by another key (same name): no signature by the pinned key.
    other = _check(page, {**bundle, "checkpoint": theirs["note"]}, anchor, mine["vkey"])
    assert other["status"] == "invalid" and other["failures"] == [["w_checkpoint", "k_no_sig"]]
    # The other key's signature line under our key's id: the signature does not verify.
    forged_line = theirs["note"].rsplit("\n", 2)[1]
    blob = base64.b64decode(forged_line.split(" ")[2])
    mine_id = base64.b64decode(mine["note"].rsplit("\n", 2)[1].split(" ")[2])[:4]
    forged = body + "\n" + f"\u2014 tenderproof.example/log {base64.b64encode(mine_id + blob[4:]).decode()}\n"
    assert _check(page, {**bundle, "checkpoint": forged}, anchor, mine["vkey"])["failures"] == [
        ["w_checkpoint", "k_bad_sig"]
    ]
    # A checkpoint of another size or root than the newest anchor.
    assert _check(page, bundle, {**anchor, "tree_size": 41}, mine["vkey"])["failures"] == [
        ["w_checkpoint", "k_size_root"]
    ]
    assert _check(page, bundle, {**anchor, "root_hash": "00" * 32}, mine["vkey"])["failures"] == [
        ["w_checkpoint", "k_size_root"]
    ]
    # The body changed after signing (another origin line).
    moved = mine["note"].replace(origin, "elsewhere.example/log", 1)
    assert _check(page, {**bundle, "checkpoint": moved, "origin": "elsewhere.example/log"}, anchor, mine["vkey"])[
        "failures"
    ] == [["w_checkpoint", "k_bad_sig"]]
    # Not a note; a key that is not a C2SP Ed25519 key (reported, not checked).
    assert _check(page, {**bundle, "checkpoint": "nonsense"}, anchor, mine["vkey"])["failures"] == [
        ["w_checkpoint", "k_format"]
    ]
    bad_key = _check(page, bundle, anchor, mine["vkey"].replace("+", "+0", 1)[:-1])
    assert bad_key["status"] == "unchecked" and bad_key["reason"] == "k_bad_key"
