"""Every read route, its values checked against the log itself and its proofs verified with
ledger.core.verify, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json

from fastapi.testclient import TestClient

import verifier.check as verifier
from anchoring import store
from api.app import create_app
from demo import tenders as demo
from ledger.core import commitment
from ledger.core.bundle import load_bundle
from ledger.core.merkle import root_from_leaf_hashes
from ledger.core.verify import verify_consistency, verify_inclusion
from ledger.log import Log
from ledger.submission import Submission
from tests.api.conftest import LATE, History, settings_for
from tests.conftest import ORIGIN, T0
from tests.recording import append_many

HEX64 = 64


def test_checkpoint_json_and_c2sp_text(client: TestClient, history: History) -> None:
    head = history.log.reader.tree_head()
    got = client.get("/api/v1/checkpoint")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    text = f"{ORIGIN}\n{head.size}\n{base64.b64encode(head.root).decode()}\n"
    assert got.json() == {"origin": ORIGIN, "tree_size": history.size, "root_hash": head.root.hex(), "text": text}
    assert got.headers["cache-control"] == "public, no-cache"

    plain = client.get("/api/v1/checkpoint", headers={"Accept": "text/plain"})
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert plain.text == text
    # JSON wins unless text/plain is preferred.
    assert client.get("/api/v1/checkpoint", headers={"Accept": "application/json, text/plain"}).json()["text"] == text
    ranked = client.get("/api/v1/checkpoint", headers={"Accept": "application/json;q=0.5, text/plain"})
    assert ranked.text == text


def test_checkpoint_etag_gives_304_until_the_log_grows(client: TestClient, history: History) -> None:
    first = client.get("/api/v1/checkpoint")
    etag = first.headers["etag"]
    again = client.get("/api/v1/checkpoint", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get("/api/v1/checkpoint", headers={"If-None-Match": '"other"'}).status_code == 200


def test_entries_carry_the_exact_leaf_bytes_a_mirror_rebuilds_the_tree_from(
    client: TestClient, history: History
) -> None:
    got = client.get("/api/v1/entries", params={"start": 0, "end": history.size})
    assert got.status_code == 200
    assert got.headers["cache-control"] == "public, no-cache"  # a payload may be withheld by a later order
    body = got.json()
    assert (body["start"], body["end"]) == (0, history.size)
    entries = body["entries"]
    assert [e["index"] for e in entries] == list(range(history.size))
    stored = history.log.reader.entries(0, history.size)
    leaves = []
    for entry, event in zip(entries, stored, strict=True):
        data = base64.b64decode(entry["leaf_data"])
        assert data == event.envelope
        leaf = hashlib.sha256(b"\x00" + data).digest()
        assert entry["leaf_hash"] == leaf.hex() == event.leaf_hash.hex()
        assert entry["envelope"] == json.loads(data)
        assert (entry["ocid"], entry["seq"], entry["type"]) == (event.ocid, event.seq, event.type)
        assert entry["payload"] == json.loads(event.payload)
        if entry["envelope"]["v"] == 2:  # with its disclosure, served beside it
            assert entry["disclosure"] == event.parsed_disclosure
            bound = commitment.recompute(entry["payload"], entry["disclosure"])
            assert entry["envelope"]["payload_commitment"] == bound
        else:
            payload_hash = hashlib.sha256(event.payload or b"").hexdigest()
            assert entry["envelope"]["payload_sha256"] == payload_hash
        leaves.append(leaf)
    assert root_from_leaf_hashes(leaves) == history.log.reader.tree_head().root
    # A range in the middle, and an empty one.
    middle = client.get("/api/v1/entries", params={"start": 3, "end": 5}).json()["entries"]
    assert [e["leaf_data"] for e in middle] == [e["leaf_data"] for e in entries[3:5]]
    assert client.get("/api/v1/entries", params={"start": 4, "end": 4}).json()["entries"] == []


def test_entries_are_cut_at_the_tree_size_and_at_1000_like_get_entries(client: TestClient, history: History) -> None:
    beyond = client.get("/api/v1/entries", params={"start": 10, "end": history.size + 50})
    assert beyond.status_code == 200
    body = beyond.json()
    assert (body["start"], body["end"]) == (10, history.size)
    assert [e["index"] for e in body["entries"]] == list(range(10, history.size))
    assert beyond.headers["cache-control"] == "public, no-cache"  # will hold more once the log grows
    huge = client.get("/api/v1/entries", params={"start": 0, "end": 2**63 - 1}).json()
    assert huge["end"] == history.size
    at_end = client.get("/api/v1/entries", params={"start": history.size, "end": history.size + 1}).json()
    assert (at_end["end"], at_end["entries"]) == (history.size, [])


def test_entries_start_past_the_tree_or_after_end_is_refused_naming_the_parameter(
    client: TestClient, history: History
) -> None:
    past = client.get("/api/v1/entries", params={"start": history.size + 1, "end": history.size + 2})
    assert past.status_code == 422
    assert past.json() == {
        "error": {
            "code": "invalid_argument",
            "field": "query.start",
            "message": f"query.start: must be at most the tree size {history.size}, got {history.size + 1}",
        }
    }
    backwards = client.get("/api/v1/entries", params={"start": 5, "end": 2}).json()["error"]
    assert (backwards["field"], backwards["message"]) == ("query.start", "query.start: must be at most end (2), got 5")
    negative = client.get("/api/v1/entries", params={"start": -1, "end": 2}).json()["error"]
    assert (negative["field"], negative["message"]) == (
        "query.start",
        "query.start: Input should be greater than or equal to 0",
    )


def test_inclusion_proofs_verify_for_every_entry(client: TestClient, history: History) -> None:
    leaves = history.log.reader.leaf_hashes(0, history.size)
    for size in (1, history.first_anchor, history.size):
        root = history.log.reader.root_at(size)
        for index in range(size):
            got = client.get("/api/v1/proofs/inclusion", params={"index": index, "size": size})
            assert got.status_code == 200, got.text
            proof = got.json()
            assert proof["leaf_index"] == index and proof["tree_size"] == size
            assert proof["leaf_hash"] == leaves[index].hex()
            assert proof["root_hash"] == root.hex()
            verify_inclusion(index, size, leaves[index], [bytes.fromhex(p) for p in proof["path"]], root)
            assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    current = client.get("/api/v1/proofs/inclusion", params={"index": 2})
    assert current.json()["tree_size"] == history.size
    assert current.headers["cache-control"] == "public, no-cache"


def test_inclusion_proof_parameters_out_of_range(client: TestClient, history: History) -> None:
    too_big = client.get("/api/v1/proofs/inclusion", params={"index": 0, "size": history.size + 1}).json()["error"]
    assert too_big["field"] == "query.size"
    outside = client.get("/api/v1/proofs/inclusion", params={"index": 5, "size": 5}).json()["error"]
    assert outside == {
        "code": "invalid_argument",
        "field": "query.index",
        "message": "query.index: must be less than the tree size 5, got 5",
    }
    zero = client.get("/api/v1/proofs/inclusion", params={"index": 0, "size": 0})
    assert zero.status_code == 422
    assert zero.json()["error"]["field"] == "query.size"
    missing = client.get("/api/v1/proofs/inclusion").json()["error"]
    assert missing["field"] == "query.index"
    assert missing["message"] == "query.index: Field required"


def test_consistency_proofs_verify_between_every_pair_of_sizes(client: TestClient, history: History) -> None:
    roots = {size: history.log.reader.root_at(size) for size in range(history.size + 1)}
    for old in range(history.size + 1):
        for new in range(old, history.size + 1, 3):
            got = client.get("/api/v1/proofs/consistency", params={"from": old, "to": new})
            assert got.status_code == 200, got.text
            proof = got.json()
            assert (proof["from_size"], proof["to_size"]) == (old, new)
            assert (proof["from_root"], proof["to_root"]) == (roots[old].hex(), roots[new].hex())
            if old > 0:
                verify_consistency(old, new, roots[old], roots[new], [bytes.fromhex(p) for p in proof["path"]])
    latest = client.get("/api/v1/proofs/consistency", params={"from": 1}).json()
    assert latest["to_size"] == history.size
    wrong = client.get("/api/v1/proofs/consistency", params={"from": 9, "to": 4}).json()["error"]
    assert (wrong["field"], wrong["message"]) == ("query.from", "query.from: must be at most 4, got 9")
    beyond = client.get("/api/v1/proofs/consistency", params={"from": 1, "to": history.size + 5}).json()["error"]
    assert beyond["field"] == "query.to"


def test_tender_events_in_seq_order_with_index_and_status(client: TestClient, history: History) -> None:
    got = client.get(f"/api/v1/tenders/{LATE}/events")
    assert got.status_code == 200
    body = got.json()
    stored = history.log.reader.tender_events(LATE)
    assert body["ocid"] == LATE
    assert body["event_count"] == 4
    assert body["head_hash"] == stored[-1].leaf_hash.hex()
    assert [e["seq"] for e in body["events"]] == [0, 1, 2, 3]
    assert [e["index"] for e in body["events"]] == [e.index for e in stored]
    assert [e["status"] for e in body["events"]] == ["integrated", "integrated", "integrated", "pending"]
    assert body["events"][3]["index"] is None
    for event, row in zip(body["events"], stored, strict=True):
        assert event["envelope"] == json.loads(row.envelope)
        assert event["payload"] == json.loads(row.payload)
        assert event["leaf_hash"] == row.leaf_hash.hex()
        assert event["type"] == row.type
    assert body["events"][1]["envelope"]["prev"] == stored[0].leaf_hash.hex()


def test_unknown_and_malformed_tenders(client: TestClient) -> None:
    unknown = client.get("/api/v1/tenders/ocds-abc123-nothere/events")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": {"code": "not_found", "message": "tender 'ocds-abc123-nothere' not found"}}
    malformed = client.get("/api/v1/tenders/not-an-ocid/events")
    assert malformed.status_code == 422
    assert malformed.json()["error"]["field"] == "path.ocid"
    assert client.get("/api/v1/tenders/not-an-ocid/bundle").json()["error"]["field"] == "path.ocid"
    assert client.get("/api/v1/tenders/ocds-abc123-nothere/bundle").status_code == 404


def test_bundle_verifies_offline_and_matches_the_anchors(client: TestClient, history: History) -> None:
    got = client.get(f"/api/v1/tenders/{LATE}/bundle")
    assert got.status_code == 200
    document = got.json()
    assert document["format"] == "tenderproof-bundle/2"
    bundle = load_bundle(document)
    report = verifier.verify_bundle(bundle)
    assert report.valid, report.failures
    target = store.latest_final(history.log.engine, "dev")
    assert target is not None
    assert document["chain"]["chain_id"] == 131277322940537  # eth-tester's chain id
    statuses = [e["status"] for e in document["events"]]
    assert statuses == ["anchored", "anchored", "pending", "pending"]
    assert [e["inclusion"]["tree_size"] for e in document["events"][:2]] == [history.second_anchor] * 2
    assert [a["tree_size"] for a in document["anchors"]] == [history.second_anchor]
    assert document["anchors"][0]["root_hash"] == history.log.reader.root_at(history.second_anchor).hex()

    road = load_bundle(client.get(f"/api/v1/tenders/{demo.ROAD}/bundle", params={"chain": "dev"}).json())
    assert verifier.verify_bundle(road).valid
    assert {e.inclusion.tree_size for e in road.events if e.inclusion} == {history.first_anchor}

    unknown_chain = client.get(f"/api/v1/tenders/{LATE}/bundle", params={"chain": "sepolia"}).json()["error"]
    assert (unknown_chain["code"], unknown_chain["field"]) == ("invalid_argument", "query.chain")


def test_anchors_listing_pages_newest_first(client: TestClient, history: History) -> None:
    got = client.get("/api/v1/anchors")
    assert got.status_code == 200
    page = got.json()
    assert page["chain"] == "dev"
    assert [a["tree_size"] for a in page["anchors"]] == [history.second_anchor, history.first_anchor]
    assert page["next_before"] is None
    newest = page["anchors"][0]
    assert newest["status"] == "final"
    assert newest["root_hash"] == history.log.reader.root_at(history.second_anchor).hex()
    assert newest["tx_hash"].startswith("0x") and len(newest["tx_hash"]) == 2 + HEX64
    assert newest["anchor_id"] == 2 and page["anchors"][1]["anchor_id"] == 1
    assert "error" not in newest and "account" not in newest

    first = client.get("/api/v1/anchors", params={"limit": 1}).json()
    assert [a["tree_size"] for a in first["anchors"]] == [history.second_anchor]
    assert first["next_before"] == newest["id"]
    second = client.get("/api/v1/anchors", params={"limit": 1, "before": first["next_before"]}).json()
    assert [a["tree_size"] for a in second["anchors"]] == [history.first_anchor]
    assert second["next_before"] is None
    assert client.get("/api/v1/anchors", params={"chain": "sepolia"}).json()["anchors"] == []
    bad = client.get("/api/v1/anchors", params={"limit": 0}).json()["error"]
    assert bad["field"] == "query.limit"


def test_anchor_with_its_batch(client: TestClient, history: History) -> None:
    listed = client.get("/api/v1/anchors").json()["anchors"]
    newest, oldest = listed
    got = client.get(f"/api/v1/anchors/dev/{newest['id']}")
    assert got.status_code == 200
    detail = got.json()
    assert detail["batch"] == {
        "start": history.first_anchor,
        "end": history.second_anchor,
        "count": history.second_anchor - history.first_anchor,
    }
    assert {k: v for k, v in detail.items() if k != "batch"} == newest
    first = client.get(f"/api/v1/anchors/dev/{oldest['id']}").json()
    assert first["batch"] == {"start": 0, "end": history.first_anchor, "count": history.first_anchor}
    assert client.get(f"/api/v1/anchors/sepolia/{newest['id']}").status_code == 404
    missing = client.get("/api/v1/anchors/dev/999999")
    assert missing.json() == {"error": {"code": "not_found", "message": "anchor 999999 of chain 'dev' not found"}}


def test_entries_are_cut_at_1000_per_request(sqlite_url: str) -> None:
    log = Log.open(sqlite_url, origin=ORIGIN)
    try:
        submissions = [
            Submission(ocid=f"ocds-abc123-m{i:05d}", type="tender.planned", payload={"i": i}) for i in range(1003)
        ]
        append_many(log, submissions, now=T0)
        log.integrate_all(now=T0)
        with TestClient(create_app(settings_for(sqlite_url), log=log)) as client:
            first = client.get("/api/v1/entries", params={"start": 0, "end": 1003})
            assert first.json()["end"] == 1000
            assert len(first.json()["entries"]) == 1000
            assert first.headers["cache-control"] == "public, no-cache"
            rest = client.get("/api/v1/entries", params={"start": 1000, "end": 1003})
            assert [e["payload"]["i"] for e in rest.json()["entries"]] == [1000, 1001, 1002]
            assert rest.headers["cache-control"] == "public, no-cache"  # a payload may be withheld later
    finally:
        log.close()
