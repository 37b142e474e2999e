"""The browser's bundle-v2 building blocks in Chromium, against data the project's browser code did
not produce: the heads proofs of tests/assets/heads/vectors.json (docs/spec.md §14.5; every valid
proof accepted, every bad one refused for its reason) and C2SP signed checkpoints made with
@noble/curves' Ed25519 (tests/explorer/sign_note.mjs), checked with WebCrypto."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from pydantic import SecretStr

from explorer.pages import JS_MESSAGES
from ledger.core import merkle
from ledger.core.canonical import canonical_bytes
from ledger.core.note import Signer
from tests.api.servers import threaded_server
from tests.conftest import ORIGIN
from tests.explorer import v2bundles
from tests.explorer.browser import ROOT
from tests.explorer.conftest import SIGNED, Ledger, app_for, recorded_ledger
from tests.procurement import helpers

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def verifier_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    """explorer/js/verify.js and complete.js bundled as one script defining the global ``TP``."""
    directory = tmp_path_factory.mktemp("js")
    entry = directory / "entry.js"
    entry.write_text(
        f'export * from "{ROOT}/explorer/js/verify.js";\nexport * from "{ROOT}/explorer/js/complete.js";\n'
        f'export * from "{ROOT}/explorer/js/commitment.js";\n'
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
def page(embedded_ledger: Ledger, verifier_module: str, browser: Browser) -> Iterator[Page]:
    with threaded_server(app_for(embedded_ledger)) as base:
        context = browser.new_context()
        p = context.new_page()
        p.goto(f"{base}/verify")  # a secure context (127.0.0.1): WebCrypto is there
        p.evaluate(verifier_module)
        yield p
        context.close()


def test_commitment_vectors_in_the_browser(page: Page) -> None:
    """Envelope v2 (docs/spec.md §2.5) in Chromium: every case's commitment recomputed from its payload
    and disclosure, and again after withholding; each malformed disclosure refused; a changed value,
    a dropped field and a v2 envelope checked through payloadProblem."""
    vectors = json.loads((ROOT / "tests" / "assets" / "commitment" / "vectors.json").read_text("utf-8"))
    got = page.evaluate(
        """async (doc) => {
            const out = {cases: [], invalid: [], problems: []};
            for (const c of doc.cases) {
                out.cases.push([c.commitment, await TP.recompute(c.payload, c.disclosure),
                                await TP.recompute(c.withheld.body, c.withheld.disclosure),
                                TP.withheldFields(c.withheld.disclosure)]);
            }
            for (const c of doc.invalid) {
                let err = null;
                try { await TP.recompute(c.payload, c.disclosure); } catch (e) { err = e.detail || e.message; }
                out.invalid.push([c.want_err, err]);
            }
            const c = doc.cases[1];
            const changed = structuredClone(c.payload);
            changed.awards[0].value.amount += 1;
            const fewer = structuredClone(c.disclosure);
            delete fewer.fields["/parties/0/name"];
            for (const [payload, disclosure] of [[c.payload, c.disclosure], [changed, c.disclosure],
                                                 [c.payload, fewer], [c.payload, undefined]]) {
                const problem = await TP.payloadProblem(c.envelope, payload, disclosure);
                out.problems.push(problem && problem.key);
            }
            return out;
        }""",
        vectors,
    )
    assert len(got["cases"]) == len(vectors["cases"]) == 3
    for (want, fresh, after, withheld), case in zip(got["cases"], vectors["cases"], strict=True):
        assert fresh == after == want
        assert withheld == dict.fromkeys(case["withheld"]["fields"], case["withheld"]["order"])
    assert len(got["invalid"]) == 6
    for want_err, err in got["invalid"]:
        assert err is not None and err.startswith(want_err + ":"), (want_err, err)
    assert got["problems"] == [None, "r_commitment", "r_commitment", "r_disclosure"]


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


# --- Whole v2 bundles (tests/explorer/v2bundles.py): the v2 mutations -----------------


def _verify(page: Page, bundle: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """The browser's verdict on ``bundle`` without a chain: status, failures as [where, reason]
    keys, completeness, checkpoint, and each event's (status, officer)."""
    result: dict[str, Any] = page.evaluate(
        """async ([bundle, key]) => {
            const r = await TP.verifyBundle(bundle, {rpc: null, checkpointKey: key});
            return {
                status: r.status,
                failures: r.failures.map((f) => [f.where.key, f.reason.key]),
                completeness: r.completeness && r.completeness.status,
                checkpoint: r.checkpoint && r.checkpoint.status,
                events: r.events.map((e) => [e.status, e.officer]),
            };
        }""",
        [bundle, key],
    )
    return result


@pytest.fixture(scope="module")
def entries(embedded_ledger: Ledger) -> list[v2bundles.Entry]:
    return v2bundles.entries_of(embedded_ledger.log.reader.entries(0, embedded_ledger.anchored_size))


@pytest.fixture(scope="module")
def chain(embedded_ledger: Ledger) -> dict[str, Any]:
    return {"chain_id": helpers.CHAIN_ID, "contract": "0x" + "00" * 20}


@pytest.fixture(scope="module")
def good(entries: list[v2bundles.Entry], chain: dict[str, Any]) -> dict[str, Any]:
    return v2bundles.build(entries, SIGNED, ORIGIN, chain)


def _keys(result: dict[str, Any]) -> set[tuple[str, str]]:
    return {(where, reason) for where, reason in result["failures"]}


def test_a_whole_v2_history_is_complete(page: Page, good: dict[str, Any]) -> None:
    result = _verify(page, good)
    assert result["failures"] == []
    assert result["completeness"] == "complete"
    assert result["status"] == "unchecked"  # no chain asked: never "verified"
    assert result["checkpoint"] == "absent"
    signed = [officer for status, officer in result["events"]]
    assert signed and set(signed) == {"Ana Ruiz"}


@pytest.mark.parametrize("dropped", [1, 2, -1])
def test_tail_dropped_is_refused(page: Page, good: dict[str, Any], dropped: int) -> None:
    bundle = v2bundles.mutated(good)
    keep = 1 if dropped == -1 else len(bundle["events"]) - dropped
    bundle["events"] = bundle["events"][:keep]
    result = _verify(page, bundle)
    assert result["status"] == "invalid"
    assert _keys(result) == {("w_completeness", "c_short")}


def test_older_head_is_refused(page: Page, good: dict[str, Any]) -> None:
    bundle = v2bundles.mutated(good)
    bundle["events"] = bundle["events"][:-1]
    bundle["completeness"]["head"] = {"size": len(bundle["events"]), "leaf_hash": bundle["events"][-1]["leaf_hash"]}
    result = _verify(page, bundle)
    assert result["status"] == "invalid" and _keys(result) == {("w_heads_proof", "p_root")}


def test_commitment_from_another_checkpoint_is_refused(
    page: Page, good: dict[str, Any], entries: list[v2bundles.Entry], chain: dict[str, Any]
) -> None:
    earlier = v2bundles.build(entries[:-1], SIGNED, ORIGIN, chain)
    bundle = v2bundles.mutated(good)
    bundle["completeness"]["commitment"] = earlier["completeness"]["commitment"]
    result = _verify(page, bundle)
    assert result["status"] == "invalid"
    assert ("w_commitment", "c_index") in _keys(result) and ("w_commitment", "c_tree_size") in _keys(result)


def test_forged_commitment_is_refused(
    page: Page, good: dict[str, Any], entries: list[v2bundles.Entry], chain: dict[str, Any]
) -> None:
    """A commitment whose map leaves out the tender's last event, consistent in itself (payload
    and leaf hashes recomputed, heads proof and events matching it): its inclusion fails."""
    last = max(i for i, e in enumerate(entries) if e.ocid == SIGNED)
    forged_map = v2bundles.build(entries[:last] + entries[last + 1 :], SIGNED, ORIGIN, chain)["completeness"]
    bundle = v2bundles.mutated(good)
    commitment = bundle["completeness"]["commitment"]
    commitment["payload"] = {**forged_map["commitment"]["payload"], "tree_size": len(entries)}
    envelope = commitment["envelope"]
    envelope["payload_sha256"] = hashlib.sha256(canonical_bytes(commitment["payload"])).hexdigest()
    commitment["leaf_hash"] = merkle.leaf_hash(canonical_bytes(envelope)).hex()
    bundle["completeness"].update({k: forged_map[k] for k in ("head", "siblings", "other")})
    bundle["events"] = bundle["events"][:-1]
    result = _verify(page, bundle)
    assert result["status"] == "invalid" and _keys(result) == {("w_commitment", "r_inclusion")}


def test_signer_never_registered_is_refused(page: Page, good: dict[str, Any]) -> None:
    bundle = v2bundles.mutated(good)
    bundle["officers"] = []
    result = _verify(page, bundle)
    assert result["status"] == "invalid"
    assert {reason for _, reason in result["failures"]} == {"o_not_registered"}
    assert all(status == "invalid" for status, _ in result["events"])


def test_signer_revoked_before_signing_is_refused(
    page: Page, entries: list[v2bundles.Entry], chain: dict[str, Any]
) -> None:
    revoked = v2bundles.revoke_after_registration(entries, helpers.OFFICER)
    bundle = v2bundles.build(revoked, SIGNED, ORIGIN, chain)
    assert [e["envelope"]["type"] for e in bundle["officers"]] == ["officer.registered", "officer.revoked"]
    result = _verify(page, bundle)
    assert result["status"] == "invalid"
    assert {reason for _, reason in result["failures"]} == {"o_revoked"}


def test_checkpoint_signed_by_another_key_is_refused(page: Page, good: dict[str, Any]) -> None:
    body = v2bundles.note_body(good)
    mine = _signed(ORIGIN, b"\x05" * 32, body)
    theirs = _signed(ORIGIN, b"\x06" * 32, body)
    signed = {**good, "checkpoint": mine["note"]}
    result = _verify(page, signed, mine["vkey"])
    assert result["failures"] == [] and result["checkpoint"] == "verified"
    assert _verify(page, signed)["checkpoint"] == "unchecked"  # no key: said so
    other = _verify(page, {**good, "checkpoint": theirs["note"]}, mine["vkey"])
    assert other["status"] == "invalid" and _keys(other) == {("w_checkpoint", "k_no_sig")}


# --- The mutation corpus of the command-line verifier (tests/assets/bundles/mutations) -------

MUTATIONS = ROOT / "tests" / "assets" / "bundles" / "mutations"
#: The corpus as the first bundle/2 release wrote it (completeness in its full encoding).
MUTATIONS_FULL = ROOT / "tests" / "assets" / "bundles" / "mutations-completeness1"
OUTCOMES = {"not checked": "unchecked", "invalid": "invalid", "verified": "verified", "pending": "pending"}


@pytest.mark.parametrize("saved", [MUTATIONS, MUTATIONS_FULL], ids=["compact", "full"])
def test_the_mutation_corpus_in_the_browser(page: Page, saved: Path) -> None:
    """Every case of the corpus the command line is held to gets the same outcome offline in the
    browser, and "complete" exactly where the corpus says, in both encodings of completeness."""
    index = json.loads((saved / "index.json").read_text())
    wrong = []
    for case in index["cases"]:
        bundle = json.loads((saved / case["file"]).read_text())
        result = _verify(page, bundle)
        want = (OUTCOMES[case["outcome"]], case["complete"])
        got = (result["status"], result["completeness"] == "complete")
        if got != want:
            wrong.append((case["file"], want, got, result["failures"]))
    assert wrong == []
    assert len(index["cases"]) >= 12


# --- Signed notes: the reference implementation's known answers, and the server's checkpoints ---


def test_go_signed_note_known_answers_in_the_browser(page: Page) -> None:
    """golang.org/x/mod/sumdb/note's known answers (tests/assets/signed-note), checked by the
    browser's note reader and WebCrypto Ed25519."""
    vectors = json.loads((ROOT / "tests" / "assets" / "signed-note" / "golang-x-mod-sumdb-note.json").read_text())
    got = page.evaluate(
        """async (v) => {
            const check = async (note, vkey) => {
                try {
                    return await TP.noteSignedBy(TP.parseSignedNote(note), await TP.parseVerifierKey(vkey));
                } catch (e) { return e.key || e.message; }
            };
            const both = v.signed + v.other_signature_line;
            return {
                signed: await check(v.signed, v.verifier_key),
                text: TP.parseSignedNote(v.signed).text === v.text,
                other_key: await check(v.signed, v.other_verifier_key),
                both_ours: await check(both, v.verifier_key),
                both_theirs: await check(both, v.other_verifier_key),
                altered: await check(v.signed.replace("cryptography", "Cryptography"), v.verifier_key),
                bad_keys: await Promise.all(v.bad_verifier_keys.map((k) => check(v.signed, k))),
            };
        }""",
        vectors,
    )
    assert got == {
        "signed": "verified",
        "text": True,
        "other_key": "missing",
        "both_ours": "verified",
        "both_theirs": "verified",
        "altered": "bad",
        "bad_keys": ["k_bad_key"] * len(vectors["bad_verifier_keys"]),
    }


def test_the_servers_signed_checkpoint_on_the_tender_page_and_a_pinned_key(
    embedded_ledger: Ledger, browser: Browser
) -> None:
    """With a log signing key, bundles carry the signed checkpoint: the tender page checks it
    against the key the site publishes; a visitor who pins another key on /verify sees it refused."""
    signer = Signer(ORIGIN, bytes(range(7, 39)))
    stranger = Signer(ORIGIN, bytes(range(9, 41)))
    app = app_for(embedded_ledger, log_signing_key=SecretStr(signer.skey()))
    with threaded_server(app) as base:
        context = browser.new_context()
        try:
            p = context.new_page()
            bundle = p.request.get(f"{base}/api/v1/tenders/{SIGNED}/bundle").json()
            assert bundle["checkpoint"]
            p.goto(f"{base}/tenders/{SIGNED}")
            summary = p.locator("#verify-summary")
            expect(summary).to_have_attribute("data-result", "verified")
            expect(summary.locator("[data-line='checkpoint-verified']")).to_have_text(
                f"Signed checkpoint of tree size {embedded_ledger.anchored_size}: the signature by {ORIGIN} verifies."
            )
            p.goto(f"{base}/verify")
            p.get_by_label("Pinned verifier key").fill(str(stranger.verifier))
            p.get_by_role("button", name="Pin this key").click()
            p.get_by_label("Tender id (ocid)").fill(SIGNED)
            p.get_by_role("button", name="Fetch and verify").click()
            result = p.locator("#verify-result [data-result]")
            expect(result).to_have_attribute("data-result", "invalid")
            expect(p.locator("#verify-result .failures")).to_contain_text(
                f"the checkpoint carries no signature by the key {ORIGIN}"
            )
            # The site's own key pinned: verified again.
            p.get_by_label("Pinned verifier key").fill(str(signer.verifier))
            p.get_by_role("button", name="Pin this key").click()
            p.get_by_role("button", name="Fetch and verify").click()
            expect(result).to_have_attribute("data-result", "verified")
            expect(p.locator("#verify-result [data-line='checkpoint-verified']")).to_be_visible()
        finally:
            context.close()


def test_a_range_bundle_in_the_browser_says_which_part_it_holds(page: Page) -> None:
    """A range bundle (docs/spec.md §15.3): valid, the range and the committed count reported,
    never "complete"; its range member dropped, it is refused as a history not starting at 0."""
    bundle = json.loads((MUTATIONS / "valid-range.json").read_text())
    got = page.evaluate(
        """async (bundle) => {
            const r = await TP.verifyBundle(bundle, {rpc: null});
            const whole = {...bundle};
            delete whole.range;
            const w = await TP.verifyBundle(whole, {rpc: null});
            return {status: r.status, failures: r.failures.length, range: r.range, completeness: r.completeness,
                    whole: w.status, reasons: w.failures.map((f) => f.reason.key)};
        }""",
        bundle,
    )
    r = bundle["range"]
    assert got["status"] == "unchecked" and got["failures"] == 0
    assert got["range"] == {"from_seq": r["from_seq"], "to_seq": r["to_seq"], "of": r["of"]}
    assert got["completeness"]["status"] == "range" and got["completeness"]["committed"] == r["of"]
    assert got["whole"] == "invalid" and "r_seq" in got["reasons"]


@pytest.mark.parametrize(("index", "shown"), [(None, "null"), ("4", '"4"')])
def test_the_event_before_a_range_proven_without_a_log_index_is_refused_for_its_index(
    page: Page, index: Any, shown: str
) -> None:
    """The event before a range is held to the same inclusion check as every other entry
    (verify.js checkIncluded): an inclusion proof with no log index is refused for the index, not
    said to cite a tree size no anchor has (the anchor is there); the command line's loader refuses
    such a bundle too."""
    bundle = json.loads((MUTATIONS / "valid-range.json").read_text())
    size = bundle["range"]["before"]["inclusion"]["tree_size"]
    assert size in {a["tree_size"] for a in bundle["anchors"]}
    bundle["range"]["before"]["index"] = index
    got = page.evaluate(
        """async (bundle) => {
            const r = await TP.verifyBundle(bundle, {rpc: null});
            return {status: r.status, failures: r.failures.map((f) => [f.where.key, f.reason])};
        }""",
        bundle,
    )
    assert got == {"status": "invalid", "failures": [["w_range_before", {"key": "r_index", "values": {"got": shown}}]]}


# --- Issue 21: payloads and fields withheld only under an order the bundle proves ----------------

#: The corpus's withholding mutations (tests/verifier/corpus.py) and the browser's refusal of each.
WITHHOLDING = {
    "payload-dropped-no-withheld": {("w_event", "r_withheld_missing")},
    "payload-dropped-with-a-reason": {("w_event", "r_withheld_no_order")},
    "payload-dropped-unknown-order": {("w_event", "r_order_not_carried")},
    "payload-dropped-order-of-another-event": {("w_event", "r_order_not_target")},
    "order-inclusion-proof-broken": {("w_order_event", "r_inclusion"), ("w_event", "r_order_not_carried")},
    "field-withheld-without-order": {("w_event", "r_order_not_target")},
}


def _english(m: Any) -> str:
    """A verifier message ({key, values}) in English, as the page shows it (explorer/js/main.js)."""
    if not isinstance(m, dict) or "key" not in m:
        return str(m)
    values = {name: _english(value) for name, value in (m.get("values") or {}).items()}
    return re.sub(r"\{(\w+)\}", lambda g: values.get(g[1], g[0]), JS_MESSAGES[m["key"]])


def _withholding(page: Page, bundle: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """async (bundle) => {
            const r = await TP.verifyBundle(bundle, {rpc: null});
            return {status: r.status, completeness: r.completeness && r.completeness.status,
                    failures: r.failures.map((f) => [f.where, f.reason]),
                    events: r.events.map((e) => [e.status, e.withheld, e.withheld_fields])};
        }""",
        bundle,
    )
    return result


def test_withheld_payloads_in_the_browser_as_on_the_command_line(page: Page) -> None:
    """A bundle whose payload and field were withheld through the real withholding path stays
    valid and reports each under its order; a payload or field dropped without an order that
    withholds it (none named, one the bundle does not carry, one for another event, one whose
    inclusion proof is broken, a field no order names) is refused, in the command line's words."""
    from ledger.core.bundle import load_bundle
    from ledger.core.errors import FormatError
    from verifier.check import verify_bundle

    valid = json.loads((MUTATIONS / "valid-withheld.json").read_text())
    orders = {o["payload"]["reference"]: o["index"] for o in valid["orders"]}
    got = _withholding(page, valid)
    assert got["failures"] == [] and got["status"] == "unchecked" and got["completeness"] == "complete"
    assert got["events"][2][1] == {
        "key": "withheld_under",
        "values": {"reference": "ORD-1/2026", "order": orders["ORD-1/2026"]},
    }
    # seq 1: its contact point withheld by ORD-2, then the whole payload by ORD-4 (withheld.earlier)
    assert got["events"][1][1] == {
        "key": "withheld_under",
        "values": {"reference": "ORD-4/2026", "order": orders["ORD-4/2026"]},
    }
    assert got["events"][1][2] == {"/tender/contactPoint": orders["ORD-2/2026"]}
    assert got["events"][0][1] is None and got["events"][0][2] == {}
    cli = verify_bundle(load_bundle(valid))
    assert cli.valid and cli.events[2].withheld == _english(got["events"][2][1])
    assert cli.events[1].withheld == _english(got["events"][1][1])
    assert cli.events[1].withheld_fields == got["events"][1][2]

    # The earlier order left out, cited under another reference, or cited twice: refused.
    earlier = orders["ORD-2/2026"]
    left_out = json.loads(json.dumps(valid))
    left_out["orders"] = [o for o in left_out["orders"] if o["index"] != earlier]
    renamed = json.loads(json.dumps(valid))
    renamed["events"][1]["withheld"]["earlier"][0]["reference"] = "ORD-9/2026"
    reordered = json.loads(json.dumps(valid))
    reordered["events"][1]["withheld"]["earlier"].append({"order": earlier, "reference": "ORD-2/2026"})
    for name, bundle, keys in (
        ("earlier order left out", left_out, {("w_event", "r_order_not_carried")}),
        ("earlier order renamed", renamed, {("w_event", "r_order_reference")}),
        ("earlier order cited twice", reordered, {("w_event", "r_withheld_earlier")}),
    ):
        got = _withholding(page, bundle)
        assert got["status"] == "invalid", name
        assert {(w["key"], r["key"]) for w, r in got["failures"]} == keys, (name, got["failures"])
        try:
            said = [str(f) for f in verify_bundle(load_bundle(bundle)).failures]
        except FormatError as exc:
            said = [str(exc)]
        for _, reason in got["failures"]:  # the same words as the command line
            assert any(_english(reason) in s for s in said), (name, _english(reason), said)

    for name, keys in WITHHOLDING.items():
        bundle = json.loads((MUTATIONS / f"{name}.json").read_text())
        got = _withholding(page, bundle)
        assert got["status"] == "invalid", name
        assert {(w["key"], r["key"]) for w, r in got["failures"]} == keys, (name, got["failures"])
        try:
            said = [str(f) for f in verify_bundle(load_bundle(bundle)).failures]
        except FormatError as exc:
            said = [str(exc)]
        for where, reason in got["failures"]:
            if reason["key"].startswith(("r_order", "r_withheld")):  # the same words as the command line
                text = _english(reason)
                assert any(text in s for s in said), (name, text, said)
                assert reason["key"] == "r_withheld_missing" or f"{_english(where)}: {text}" in said, (name, said)


def test_the_verify_page_shows_the_order_in_english_and_spanish(embedded_ledger: Ledger, browser: Browser) -> None:
    """On /verify the events table says "withheld under order R" beside a withheld event, and which
    field an order withholds; a payload dropped without one is red, explained, in both languages."""
    valid = json.loads((MUTATIONS / "valid-withheld.json").read_text())
    dropped = json.loads((MUTATIONS / "payload-dropped-order-of-another-event.json").read_text())
    orders = {o["payload"]["reference"]: o["index"] for o in valid["orders"]}
    with threaded_server(app_for(embedded_ledger)) as base:
        context = browser.new_context()
        try:
            p = context.new_page()
            p.goto(f"{base}/verify?rpc_timeout=0.2")
            # The corpus is anchored on a chain no endpoint serves: ask one that cannot answer.
            p.locator("#rpc-url").fill("http://127.0.0.1:9/")
            p.get_by_role("button", name="Use this endpoint").click()
            p.get_by_label("…or paste its JSON").fill(json.dumps(valid))
            p.get_by_role("button", name="Verify", exact=True).click()
            result = p.locator("#verify-result [data-result]")
            expect(result).to_have_attribute("data-result", "unchecked")
            rows = p.locator("#verify-result tbody tr")
            expect(rows.nth(2).locator("[data-withheld]")).to_have_text(
                f"withheld under order ORD-1/2026 (log index {orders['ORD-1/2026']})"
            )
            expect(rows.nth(1).locator("[data-withheld]")).to_have_text(
                [
                    f"withheld under order ORD-4/2026 (log index {orders['ORD-4/2026']})",
                    f"field /tender/contactPoint withheld under the order at log index {orders['ORD-2/2026']}",
                ]
            )
            expect(rows.nth(0).locator("[data-withheld]")).to_have_count(0)
            p.get_by_label("…or paste its JSON").fill(json.dumps(dropped))
            p.get_by_role("button", name="Verify", exact=True).click()
            expect(result).to_have_attribute("data-result", "invalid")
            failure = p.locator("#verify-result .failures li")
            expect(failure).to_have_count(1)
            expect(failure).to_contain_text("does not withhold its payload of log index")
            expect(failure).to_contain_text("without a lawful order of this log")

            p.goto(f"{base}/verify?lang=es&rpc_timeout=0.2")
            expect(p.locator("html")).to_have_attribute("lang", "es")
            p.locator("#bundle-text").fill(json.dumps(valid))
            p.locator("#verify-form button[type=submit]").click()
            expect(result).to_have_attribute("data-result", "unchecked")
            expect(rows.nth(2).locator("[data-withheld]")).to_have_text(
                f"retenido por la orden ORD-1/2026 (índice del registro {orders['ORD-1/2026']})"
            )
            p.locator("#bundle-text").fill(json.dumps(dropped))
            p.locator("#verify-form button[type=submit]").click()
            expect(result).to_have_attribute("data-result", "invalid")
            expect(p.locator("#verify-result .failures li")).to_contain_text("no retiene su contenido del índice")
        finally:
            context.close()
