"""A real log with heads commitments, anchored on an in-process EVM, and the mutations of its
bundles that every verifier must refuse (docs/spec.md §15). Shared by the mutation tests and
``tools/gen_mutations.py``, which saves some of them under tests/assets/bundles/mutations/."""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from eth_account import Account
from sqlalchemy import text

from anchoring.bundles import build_bundle, final_anchors
from anchoring.embedded import EmbeddedChain
from anchoring.service import ChainAnchorer
from ledger.core import commitment
from ledger.log import Log
from ledger.procurement import withholding
from ledger.submission import Submission
from settings import ChainSettings
from tests.conftest import ORIGIN, T0
from tests.procurement.helpers import signed
from tests.recording import append_many

OCID = "ocds-abc123-complete-1"
OTHER = "ocds-abc123-other-1"
ROGUE = "ocds-abc123-rogue-1"  # signed by an officer never registered
REVOKED = "ocds-abc123-revoked-1"  # signed by an officer after their revocation
REGISTRY = "ocds-tpreg0-officers"
WITHHELD = "ocds-abc123-withheld-1"  # a payload and a field withheld by orders (issue 21)
#: The separately committed (personal) field of the withheld tender's events.
CONTACT = "/tender/contactPoint"
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)
OFFICER_KEY = "0x" + "4f" * 32
STRANGER_KEY = "0x" + "5e" * 32
FORMER_KEY = "0x" + "6d" * 32
OFFICER = Account.from_key(OFFICER_KEY).address
STRANGER = Account.from_key(STRANGER_KEY).address
FORMER = Account.from_key(FORMER_KEY).address


@dataclass
class Corpus:
    log: Log
    dev: EmbeddedChain
    #: The tender's bundle after the first anchor, and after the last (all of its events anchored).
    early: dict[str, Any]
    valid: dict[str, Any]
    rogue: dict[str, Any]
    revoked: dict[str, Any]
    #: Range bundles of the tender (docs/spec.md §15.3): seq 3 to 8 (the head, seq 11, beyond),
    #: and seq 6 to 11 (ending at the committed head).
    ranged: dict[str, Any]
    ranged_tail: dict[str, Any]
    #: Tender WITHHELD's bundle: seq 2 withheld whole by order ORD-1/2026, seq 1's contact point by
    #: ORD-2/2026 and then the rest of seq 1 by ORD-4/2026 (``withheld.earlier`` cites ORD-2); and
    #: OTHER's, whose seq 0 an order ORD-3/2026 withholds (its ``orders`` carry it).
    withheld: dict[str, Any]
    other_withheld: dict[str, Any]


def _event(ocid: str, step: int, chain_id: int, key: str | None = OFFICER_KEY) -> Submission:
    payload = {"tender": {"id": ocid, "step": step, "value": {"amount": 1000 + step, "currency": "EUR"}}}
    unsigned = Submission(ocid=ocid, type="tender.published" if step == 0 else "tender.amended", payload=payload)
    if key is None or step % 2:
        return unsigned
    return signed(unsigned, key=key, submission_id=f"{ocid}/{step}", origin=ORIGIN, chain_id=chain_id)


def _contact(step: int) -> Submission:
    """An event of tender WITHHELD naming a person as its contact point, committed apart (F)."""
    payload = {
        "tender": {
            "id": WITHHELD,
            "step": step,
            "contactPoint": {"name": f"Ada Person {step}", "email": "ada@example.test"},
        }
    }
    kind = "tender.published" if step == 0 else "tender.amended"
    return Submission(ocid=WITHHELD, type=kind, payload=payload, fields=(CONTACT,))


def _orders(log: Log) -> None:
    """The four withholding orders, recorded and carried out through the real path."""
    with log.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT e.ocid, e.seq, l.idx FROM events e JOIN log_entries l ON l.event_id = e.id")
        ).all()
    at = {(ocid, seq): int(idx) for ocid, seq, idx in rows}

    def order(reference: str, target: dict[str, Any]) -> None:
        body = {"reference": reference, "authority": "Juzgado 3", "legal_basis": "GDPR art. 17", "targets": [target]}
        withholding.record_order(log, body, now=T0)

    order("ORD-1/2026", {"index": at[(WITHHELD, 2)]})
    order("ORD-2/2026", {"index": at[(WITHHELD, 1)], "fields": [CONTACT]})
    order("ORD-3/2026", {"index": at[(OTHER, 0)]})
    # then seq 1 withheld whole too: its bundle cites ORD-2 in withheld.earlier (issue 21)
    order("ORD-4/2026", {"index": at[(WITHHELD, 1)]})


def _round(log: Log, anchorer: ChainAnchorer) -> None:
    log.integrate_all(now=T0, commit_heads=True)
    result = anchorer.run_round(force=True)
    while not result.settled:
        result = anchorer.run_round()
    assert result.anchor is not None and result.anchor.status == "final", result


def build(path: Path) -> Corpus:
    """Two tenders interleaved over three anchoring rounds (each ending with a heads commitment),
    the officers' registry, a tender signed by a stranger and one by a revoked officer."""
    log = Log.open(f"sqlite:///{path}", origin=ORIGIN)
    dev = EmbeddedChain()
    anchorer = ChainAnchorer(log, CHAIN, dev=dev)
    chain_id = int(dev.w3.eth.chain_id)
    registry = [
        Submission(
            ocid=REGISTRY, type="officer.registered", payload={"address": OFFICER, "name": "Ana Test", "role": "buyer"}
        ),
        Submission(ocid=REGISTRY, type="officer.registered", payload={"address": FORMER, "name": "Bo Former"}),
    ]
    append_many(log, registry, now=T0)
    step = 0
    early: dict[str, Any] = {}
    for round_, (mine, theirs) in enumerate([(3, 2), (4, 3), (5, 1)]):
        append_many(
            log,
            [
                *(_event(OCID, step + i, chain_id) for i in range(mine)),
                *(_event(OTHER, step + i, chain_id) for i in range(theirs)),
            ],
            now=T0,
        )
        step += mine
        if round_ == 1:
            append_many(log, [Submission(ocid=REGISTRY, type="officer.revoked", payload={"address": FORMER})], now=T0)
            append_many(
                log, [_event(ROGUE, 0, chain_id, STRANGER_KEY), _event(REVOKED, 0, chain_id, FORMER_KEY)], now=T0
            )
            append_many(log, [_contact(i) for i in range(3)], now=T0)
        if round_ == 2:
            _orders(log)  # the targets were integrated by the round before
        _round(log, anchorer)
        if round_ == 0:
            early = build_bundle(log, OCID, final_anchors(log.engine, "dev")).to_json()
    target = final_anchors(log.engine, "dev")
    return Corpus(
        log=log,
        dev=dev,
        early=early,
        valid=build_bundle(log, OCID, target).to_json(),
        rogue=build_bundle(log, ROGUE, target).to_json(),
        revoked=build_bundle(log, REVOKED, target).to_json(),
        ranged=build_bundle(log, OCID, target, from_seq=3, to_seq=8).to_json(),
        ranged_tail=build_bundle(log, OCID, target, from_seq=6, to_seq=11).to_json(),
        withheld=build_bundle(log, WITHHELD, target).to_json(),
        other_withheld=build_bundle(log, OTHER, target).to_json(),
    )


# --- Mutations ---------------------------------------------------------------------------------


def _leaf(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(b"\x00" + rfc8785.dumps(envelope)).hexdigest()


def _rechain(doc: dict[str, Any], start: int) -> None:
    """Recompute payload hashes, leaf hashes and prev links from event ``start`` on (what a forger does)."""
    events = doc["events"]
    for i in range(start, len(events)):
        e = events[i]
        if e["payload"] is not None and e["envelope"]["v"] == 2:  # the forger re-commits with the disclosure
            e["envelope"]["payload_commitment"] = commitment.recompute(e["payload"], e["disclosure"])
        elif e["payload"] is not None:
            e["envelope"]["payload_sha256"] = hashlib.sha256(rfc8785.dumps(e["payload"])).hexdigest()
        if i > 0:
            e["envelope"]["prev"] = events[i - 1]["leaf_hash"]
        e["envelope"].pop("submission", None)
        e["envelope"].pop("signature", None)
        e["leaf_hash"] = _leaf(e["envelope"])


def _pending(e: dict[str, Any]) -> None:
    e["status"], e["inclusion"] = "pending", None


def rewritten_relabelled_pending(valid: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(valid)
    k = 3
    doc["events"][k]["payload"]["tender"]["value"]["amount"] = 1
    _rechain(doc, k)
    for e in doc["events"][k:]:
        _pending(e)
    return doc


def all_pending(valid: dict[str, Any], *, drop_anchors: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(valid)
    doc["events"][0]["payload"]["tender"]["value"]["amount"] = 1
    _rechain(doc, 0)
    for e in doc["events"]:
        _pending(e)
    if drop_anchors:
        doc["anchors"], doc["consistency"], doc["completeness"], doc["officers"] = [], [], None, []
    return doc


def empty(valid: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(valid), "events": []}


def tail_dropped(valid: dict[str, Any], n: int) -> dict[str, Any]:
    doc = copy.deepcopy(valid)
    doc["events"] = doc["events"][: len(doc["events"]) - n]
    return doc


def older_head(valid: dict[str, Any]) -> dict[str, Any]:
    """The last event dropped and the committed head claimed to be the one before."""
    doc = tail_dropped(valid, 1)
    last = doc["events"][-1]
    doc["completeness"]["head"] = {"size": last["envelope"]["seq"] + 1, "leaf_hash": last["leaf_hash"]}
    return doc


def other_checkpoint(valid: dict[str, Any], early: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(valid)
    doc["completeness"] = copy.deepcopy(early["completeness"])
    return doc


def forged_commitment(valid: dict[str, Any]) -> dict[str, Any]:
    """A commitment whose heads root holds the history cut short (a lone leaf: no siblings)."""
    doc = tail_dropped(valid, 2)
    last = doc["events"][-1]
    size = last["envelope"]["seq"] + 1
    key = hashlib.sha256(doc["ocid"].encode()).digest()
    root = hashlib.sha256(b"\x00" + key + size.to_bytes(8, "big") + bytes.fromhex(last["leaf_hash"])).hexdigest()
    c = doc["completeness"]
    c["head"], c["other"] = {"size": size, "leaf_hash": last["leaf_hash"]}, None
    if "v" in c:  # the compact encoding (docs/spec.md §15.1): the entry is rebuilt from these fields
        c["commitment"]["heads_root"] = root
        c["siblings"], c["empty"] = "", []
        return doc
    c["commitment"]["payload"]["heads_root"] = root
    c["commitment"]["envelope"]["payload_sha256"] = hashlib.sha256(
        rfc8785.dumps(c["commitment"]["payload"])
    ).hexdigest()
    c["commitment"]["leaf_hash"] = _leaf(c["commitment"]["envelope"])
    c["siblings"] = []
    return doc


def path_truncated(valid: dict[str, Any]) -> dict[str, Any]:
    """The compact commitment's inclusion path without its last hash."""
    doc = copy.deepcopy(valid)
    c = doc["completeness"]
    c["path"] = base64.b64encode(base64.b64decode(c["path"])[:-32]).decode()
    return doc


def sibling_said_empty(valid: dict[str, Any]) -> dict[str, Any]:
    """The compact heads proof with its first sibling replaced by EMPTY (listed in ``empty``)."""
    doc = copy.deepcopy(valid)
    c = doc["completeness"]
    c["siblings"] = base64.b64encode(base64.b64decode(c["siblings"])[32:]).decode()
    c["empty"] = [0]
    return doc


def registry_dropped(valid: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(valid), "officers": []}


def range_as_whole(ranged: dict[str, Any]) -> dict[str, Any]:
    """A range bundle passed off as a whole history: its range member dropped."""
    doc = copy.deepcopy(ranged)
    del doc["range"]
    return doc


def range_total_understated(ranged: dict[str, Any]) -> dict[str, Any]:
    """A range claiming the history has fewer events than the log committed."""
    doc = copy.deepcopy(ranged)
    doc["range"]["of"] = doc["range"]["to_seq"] + 1
    return doc


def range_before_rewritten(ranged: dict[str, Any]) -> dict[str, Any]:
    """The event before the range rewritten (another prev), the first event's prev made to match."""
    doc = copy.deepcopy(ranged)
    before = doc["range"]["before"]
    before["envelope"]["prev"] = "ab" * 32
    before["leaf_hash"] = _leaf(before["envelope"])
    doc["events"][0]["envelope"]["prev"] = before["leaf_hash"]
    _rechain(doc, 0)
    return doc


def range_head_rewritten_pending(tail: dict[str, Any]) -> dict[str, Any]:
    """A range ending at the committed head: its last event rewritten and relabelled pending."""
    doc = copy.deepcopy(tail)
    k = len(doc["events"]) - 1
    doc["events"][k]["payload"]["tender"]["value"]["amount"] = 1
    _rechain(doc, k)
    _pending(doc["events"][k])
    return doc


def order_index(doc: dict[str, Any], reference: str) -> int:
    return int(next(o["index"] for o in doc["orders"] if o["payload"]["reference"] == reference))


def _drop_payload(doc: dict[str, Any], seq: int) -> dict[str, Any]:
    e: dict[str, Any] = doc["events"][seq]
    e["payload"] = None
    e.pop("disclosure", None)
    return e


#: What a reader says of a null payload with no ``withheld`` (ledger/core/bundle.py): not a bundle.
NOT_READ = "a null payload needs a non-empty withheld reason or its order"


def payload_dropped(withheld: dict[str, Any]) -> dict[str, Any]:
    """Seq 0's payload dropped with no word of why (no ``withheld``): not even a bundle."""
    doc = copy.deepcopy(withheld)
    _drop_payload(doc, 0)
    return doc


def payload_dropped_with_a_reason(withheld: dict[str, Any]) -> dict[str, Any]:
    """Seq 0's (envelope version 2) payload dropped with a free-text reason instead of an order."""
    doc = copy.deepcopy(withheld)
    _drop_payload(doc, 0)["withheld"] = "personal data, court order 2026-117"
    return doc


def payload_dropped_unknown_order(withheld: dict[str, Any]) -> dict[str, Any]:
    """Seq 0's payload dropped, citing an order at a log index the bundle carries no order for."""
    doc = copy.deepcopy(withheld)
    _drop_payload(doc, 0)["withheld"] = {"order": 0, "reference": "ORD-9/2026"}
    return doc


def order_of_another_event(withheld: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Seq 0's payload dropped under a real, proven order (ORD-3/2026) that withholds another
    tender's event, carried beside the bundle's own orders."""
    doc = copy.deepcopy(withheld)
    [foreign] = copy.deepcopy(other["orders"])
    _drop_payload(doc, 0)["withheld"] = {"order": foreign["index"], "reference": foreign["payload"]["reference"]}
    doc["orders"] = sorted([*doc["orders"], foreign], key=lambda o: int(o["index"]))
    return doc


def order_proof_broken(withheld: dict[str, Any]) -> dict[str, Any]:
    """The order withholding seq 2 (ORD-1/2026) with one hash of its inclusion proof changed."""
    doc = copy.deepcopy(withheld)
    order = doc["orders"][[o["payload"]["reference"] for o in doc["orders"]].index("ORD-1/2026")]
    path = order["inclusion"]["path"]
    path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]
    return doc


def field_withheld_without_order(withheld: dict[str, Any]) -> dict[str, Any]:
    """Seq 0's contact point withheld (null, its salt replaced by its digest), citing the real
    order ORD-2/2026, which withholds seq 1's contact point only: the commitment still holds."""
    doc = copy.deepcopy(withheld)
    e = doc["events"][0]
    e["payload"], e["disclosure"] = commitment.withhold_fields(
        e["payload"], e["disclosure"], [CONTACT], order_index(doc, "ORD-2/2026")
    )
    return doc


def withholding_mutations(c: Corpus) -> dict[str, tuple[dict[str, Any], str]]:
    """Issue 21: payloads and fields dropped without an order of the log that withholds them."""
    w = c.withheld
    return {
        "payload-dropped-with-a-reason": (payload_dropped_with_a_reason(w), "left out without a withholding order"),
        "payload-dropped-unknown-order": (payload_dropped_unknown_order(w), "which the bundle does not carry"),
        "payload-dropped-order-of-another-event": (
            order_of_another_event(w, c.other_withheld),
            "does not withhold its payload of log index",
        ),
        "order-inclusion-proof-broken": (order_proof_broken(w), "inclusion in tree size"),
        "field-withheld-without-order": (
            field_withheld_without_order(w),
            f"does not withhold {CONTACT} of log index",
        ),
    }


def mutations(c: Corpus) -> dict[str, tuple[dict[str, Any], str]]:
    """name -> (bundle, a phrase the refusal names). Each is refused offline (exit 1)."""
    v = c.valid
    return {
        "anchored-event-rewritten-relabelled-pending": (rewritten_relabelled_pending(v), "carries no inclusion proof"),
        "every-event-pending": (all_pending(v), "carries no inclusion proof"),
        "empty-bundle": (empty(v), "no events"),
        "tail-dropped-1": (tail_dropped(v, 1), "the log committed"),
        "tail-dropped-2": (tail_dropped(v, 2), "the log committed"),
        "tail-dropped-all-but-first": (tail_dropped(v, len(v["events"]) - 1), "history stops at seq 0"),
        "head-replaced-by-older-head": (older_head(v), "committed head does not lead to the heads root"),
        "commitment-from-another-checkpoint": (other_checkpoint(v, c.early), "completeness"),
        "forged-commitment": (forged_commitment(v), "completeness"),
        "signer-registration-dropped": (registry_dropped(v), "is not a registered officer"),
        "compact-commitment-path-truncated": (path_truncated(v), "the commitment's inclusion"),
        "compact-heads-sibling-said-empty": (sibling_said_empty(v), "heads"),
        "signer-never-registered": (c.rogue, "is not a registered officer"),
        "signer-revoked-before-signing": (c.revoked, "was revoked at log index"),
        "range-passed-off-as-whole": (range_as_whole(c.ranged), "expected seq 0"),
        "range-total-understated": (range_total_understated(c.ranged), "range.of: the log committed 12 events"),
        "range-before-rewritten": (range_before_rewritten(c.ranged), "range.before: inclusion in tree size"),
        "range-head-rewritten-pending": (range_head_rewritten_pending(c.ranged_tail), "carries no inclusion proof"),
        **withholding_mutations(c),
    }
