"""Withholding orders end to end on both engines: a whole payload and single fields withheld by
an order recorded in the log, the entries, leaves and proofs untouched, the bytes gone from every
table and (after a purge) from the database files; bad orders refused with nothing changed."""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from ledger.core.canonical import canonical_json_bytes
from ledger.core.errors import ConflictError, InvalidArgumentError
from ledger.log import Log
from ledger.procurement import export, importer, officers, withholding
from ledger.procurement.record import record
from ledger.store import db, keys
from ledger.submission import Submission
from tests.conftest import T0
from tests.procurement.helpers import BUYER, CHAIN_ID, OFFICER, at, item, published
from tests.store.helpers import ALL_TABLES, snapshot

#: What the orders withhold: written nowhere else, so finding it anywhere is a leak.
SECRET_NAME = "Quetzalcoatl Withheldperson"
SECRET_EMAIL = "quetzal.withheld@example.test"
SECRET_TITLE = "Zyxwvut lampposts"
NATIVE = "ocds-tptest-0001"
IMPORTED = "ocds-abc123-w1"
DERIVED = (
    "tender_index", "tender_parties", "tender_suppliers", "supplier_wins", "tender_flags", "ledger_flags",
    "tender_awarded", "ocds_compiled", "ocds_releases", "payloads", "events",
)  # fmt: skip


def _release() -> dict[str, Any]:
    person = {"id": "MX-RFC-QUWI800101", "name": SECRET_NAME}
    return {
        "ocid": IMPORTED,
        "id": "r1",
        "date": "2026-01-01T10:00:00Z",
        "tag": ["award"],
        "initiationType": "tender",
        "buyer": {"id": "MX-B-1", "name": "Municipio de Prueba"},
        "tender": {"id": "t1", "title": "Road signs", "value": {"amount": 1000, "currency": "MXN"}},
        "parties": [
            {
                **person,
                "roles": ["supplier"],
                "details": {"scale": "selfEmployed"},
                "contactPoint": {"name": SECRET_NAME, "email": SECRET_EMAIL},
            },
            {"id": "MX-B-1", "name": "Municipio de Prueba", "roles": ["buyer"]},
        ],
        "awards": [
            {"id": "a1", "status": "active", "suppliers": [person], "value": {"amount": 900, "currency": "MXN"}}
        ],
    }


def _fill(log: Log) -> dict[str, int]:
    """A native tender (planned, then published with the secret title), an imported release naming
    a self-employed supplier, a v1 entry; all integrated. Returns their log indices."""
    record(
        log,
        [item("tender.planned", {"planning": {"rationale": "Old lamps"}, "buyer": BUYER})],
        now=at(-10),
        signatures="optional",
        chain_id=CHAIN_ID,
    )
    record(
        log, [item("tender.published", published(SECRET_TITLE))], now=at(-1), signatures="optional", chain_id=CHAIN_ID
    )
    v1 = replace(
        item("tender.planned", {"planning": {"rationale": "v1"}, "buyer": BUYER}, ocid="ocds-tptest-0002"), version=1
    )
    record(log, [v1], now=at(-1), signatures="optional", chain_id=CHAIN_ID)
    package = {"uri": "u", "version": "1.1", "publishedDate": "2026-01-01T00:00:00Z", "publisher": {"name": "p"}}
    raw = json.dumps({**package, "releases": [_release()]}).encode()
    report = importer.import_files(log, [("w.json", io.BytesIO(raw))], now=T0, strict=False)
    assert report.imported == 1
    record(
        log,
        [
            Submission(
                ocid=officers.REGISTRY_OCID,
                type="officer.registered",
                payload={"address": OFFICER, "name": "Clerk"},
            )
        ],
        now=T0,
        signatures="optional",
        chain_id=CHAIN_ID,
    )
    log.integrate_all(now=T0)
    with log.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT e.ocid, e.seq, l.idx FROM events e JOIN log_entries l ON l.event_id = e.id")
        ).all()
    found = {(ocid, seq): int(idx) for ocid, seq, idx in rows}
    return {
        "published": found[(NATIVE, 1)],
        "planned": found[(NATIVE, 0)],
        "v1": found[("ocds-tptest-0002", 0)],
        "release": found[(IMPORTED, 0)],
        "registry": found[(officers.REGISTRY_OCID, 0)],
    }


def _bare_sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json_bytes(value)).hexdigest()


def _digest_key(log: Log) -> bytes:
    with log.engine.connect() as conn:
        return keys.key(conn, keys.RELEASE_DIGEST)


def _release_digest(log: Log, ocid: str, release_id: str = "r1") -> str | None:
    with log.engine.connect() as conn:
        found: str | None = conn.execute(
            text("SELECT release_digest FROM ocds_releases WHERE ocid = :o AND release_id = :r"),
            {"o": ocid, "r": release_id},
        ).scalar_one()
    return found


def _order(reference: str, *targets: dict[str, Any]) -> dict[str, Any]:
    return {
        "reference": reference,
        "authority": "Juzgado 3",
        "legal_basis": "LFPDPPP art. 25",
        "targets": list(targets),
    }


def _leaves(log: Log, size: int) -> list[bytes]:
    return log.reader.leaf_hashes(0, size)


def _hits(log: Log, needle: str) -> list[str]:
    """Tables of the derived copies (and payloads) whose rows still hold ``needle``."""
    out = []
    with log.engine.connect() as conn:
        for table in DERIVED:
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()
            blob = repr([tuple(r) for r in rows]).encode().decode("unicode_escape", "ignore")
            if needle in blob or needle.encode() in b"".join(
                v for r in rows for v in r if isinstance(v, bytes | memoryview)
            ):
                out.append(table)
    return out


def _database_files(log: Log) -> dict[str, bytes]:
    """Every byte of the database's files, by file: SQLite's file and WAL; PostgreSQL's relation
    files of this database, read through the server (pg_read_binary_file), named by relation."""
    url = make_url(str(log.engine.url))
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return {p.name: p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}
    with log.engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))  # shared buffers written to the files first
        oid = conn.execute(text("SELECT oid FROM pg_database WHERE datname = current_database()")).scalar_one()
        names = conn.execute(text("SELECT pg_ls_dir(:d)"), {"d": f"base/{oid}"}).scalars().all()
        relations = dict(
            conn.execute(text("SELECT relfilenode::text, relname FROM pg_class WHERE relfilenode <> 0")).all()
        )
        return {
            f"{name} ({relations.get(name.split('_')[0].split('.')[0], '?')})": conn.execute(
                text("SELECT pg_read_binary_file(:f)"), {"f": f"base/{oid}/{name}"}
            ).scalar_one()
            for name in names
            if name[0].isdigit()
        }


def _files_holding(log: Log, needle: str) -> list[str]:
    return sorted(name for name, data in _database_files(log).items() if needle.encode("latin-1") in data)


def test_an_order_withholds_a_payload_and_fields_and_only_them(log: Log) -> None:
    indices = _fill(log)
    size = log.reader.tree_head().size
    leaves, root = _leaves(log, size), log.reader.tree_head().root
    proof = log.reader.inclusion_proof(indices["release"], size)
    with log.engine.connect() as conn:
        stored = json.loads(conn.execute(
            text("SELECT p.disclosure FROM payloads p JOIN log_entries l ON l.event_id = p.event_id WHERE l.idx = :i"),
            {"i": indices["release"]},
        ).scalar_one())  # fmt: skip
    committed = sorted(stored["fields"])
    assert "/parties/0/name" in committed and "/parties/0/contactPoint" in committed
    assert "/awards/0/suppliers/0/name" in committed
    assert _files_holding(log, SECRET_NAME) != []
    # The import keeps a keyed digest of the release (to tell a repeat from a change), never its
    # bare SHA-256, which anyone could test guessed names against.
    bare = _bare_sha256(_release())
    assert _release_digest(log, IMPORTED) == keys.keyed_digest(_digest_key(log), canonical_json_bytes(_release()))
    assert _hits(log, bare) == [] and _files_holding(log, bare) == []

    whole, _ = withholding.record_order(log, _order("EXP-1/2026", {"index": indices["published"]}), now=T0)
    fields = ["/parties/0/name", "/parties/0/contactPoint", "/awards/0/suppliers/0/name"]
    for f in committed:  # every other place the name is repeated, committed apart too
        if f not in fields and f.endswith("/name"):
            fields.append(f)
    partial, withheld = withholding.record_order(
        log, _order("EXP-2/2026", {"index": indices["release"], "fields": fields}), now=T0
    )
    assert [(w.index, w.fields) for w in withheld] == [(indices["release"], tuple(fields))]

    # The log grew by the two orders only; every earlier leaf, root and proof is unchanged.
    head = log.reader.tree_head()
    assert head.size == size + 2
    assert _leaves(log, size) == leaves and log.reader.root_at(size) == root
    assert log.reader.inclusion_proof(indices["release"], size) == proof
    orders = log.reader.entries(size, size + 2)
    assert [(e.ocid, e.type) for e in orders] == [(officers.ORDERS_OCID, withholding.EVENT_TYPE)] * 2
    assert orders[0].parsed_payload["reference"] == "EXP-1/2026"

    [published_event] = log.reader.entries(indices["published"], indices["published"] + 1)
    assert published_event.payload is None and published_event.withheld_by == size
    [release] = log.reader.entries(indices["release"], indices["release"] + 1)
    assert release.withheld_by == size + 1
    body = release.parsed_payload
    assert body["parties"][0]["name"] is None and body["parties"][0]["contactPoint"] is None
    assert body["awards"][0]["value"] == {"amount": 900, "currency": "MXN"}  # the rest stays
    disclosure = json.loads(release.disclosure or b"")
    assert disclosure["fields"]["/parties/0/name"]["order"] == size + 1
    assert "salt" not in disclosure["fields"]["/parties/0/name"]
    # the order cleared the release's dedupe digest in its transaction; the whole payload's salts went with it
    assert _release_digest(log, IMPORTED) is None
    assert published_event.disclosure is None

    # Exports leave the data out and say why; the orders themselves are not tender releases.
    exported = list(export.iter_releases(log.engine))
    withheld_release = [r for r in exported if r["id"] == f"{NATIVE}-1"]
    assert withheld_release[0]["description"].endswith(f"withheld under the order at log index {size}")
    assert all(r["ocid"] != officers.ORDERS_OCID for r in exported)
    assert SECRET_NAME not in json.dumps(exported) and SECRET_TITLE not in json.dumps(exported)

    # No copy left in any table: payloads, projections, full-text words, parties, compiled releases, flags.
    assert _hits(log, SECRET_NAME) == []
    assert _hits(log, SECRET_EMAIL) == []
    assert _hits(log, SECRET_TITLE) == []
    with log.engine.connect() as conn:
        status, title, state = conn.execute(
            text("SELECT status, title, state FROM tender_index WHERE ocid = :o"), {"o": NATIVE}
        ).one()
    # re-projected from what remains: the published event's type (public) still made it active,
    # its data (title, period) is gone and the event is noted withheld under the order
    assert (status, title) == ("active", None)
    assert json.loads(state)["withheld"] == {"1": size} and json.loads(state)["tender_end"] is None

    # And after the purge, in no byte of the database files.
    # (PostgreSQL's VACUUM FULL keeps the row versions a running transaction may still see: on
    # this shared server other sessions come and go, so the purge is run again until none does.)
    for _attempt in range(30):
        db.purge(log.engine)
        held = {needle: _files_holding(log, needle) for needle in (SECRET_NAME, SECRET_EMAIL, SECRET_TITLE)}
        if not any(held.values()):
            break
        time.sleep(1)
    assert held == {SECRET_NAME: [], SECRET_EMAIL: [], SECRET_TITLE: []}
    # nor any hash of the withheld release that a guess could be checked against
    assert _files_holding(log, bare) == [] and _files_holding(log, bytes.fromhex(bare).decode("latin-1")) == []
    assert _files_holding(log, "Road signs") != []  # what was not withheld is still there (the search is real)
    assert whole.envelope.ocid == partial.envelope.ocid == officers.ORDERS_OCID


@pytest.mark.parametrize(
    ("target", "field", "error", "reason"),
    [
        ({"index": 10_000}, "payload.targets[0].index", InvalidArgumentError, "not an entry of the log"),
        ({"index": "registry"}, "payload.targets[0].index", InvalidArgumentError, "officers' registry"),
        ({"index": "v1", "fields": ["/planning"]}, "payload.targets[0].fields", InvalidArgumentError, "envelope v1"),
        (
            {"index": "release", "fields": ["/envelope/ocid"]},
            "payload.targets[0].fields[0]",
            InvalidArgumentError,
            "names the envelope",
        ),
        (
            {"index": "release", "fields": ["/tender/title"]},
            "payload.targets[0].fields['/tender/title']",
            InvalidArgumentError,
            "not a separately committed field",
        ),
        ({"index": "published", "fields": None}, "payload.targets[1].index", InvalidArgumentError, "named twice"),
    ],
)
def test_bad_orders_are_refused_with_nothing_changed(
    log: Log, target: dict[str, Any], field: str, error: type[Exception], reason: str
) -> None:
    indices = _fill(log)
    target = {k: v for k, v in target.items() if v is not None}
    if isinstance(target["index"], str):
        target["index"] = indices[target["index"]]
    targets = [target, dict(target)] if reason == "named twice" else [target]
    before = snapshot(log.engine, ALL_TABLES)
    with pytest.raises(error) as err:
        withholding.record_order(log, _order("BAD-1", *targets), now=T0)
    assert err.value.field == field  # type: ignore[attr-defined]
    assert reason in err.value.reason  # type: ignore[attr-defined]
    assert snapshot(log.engine, ALL_TABLES) == before


def test_withholding_twice_or_an_order_or_a_pending_event_is_refused(log: Log) -> None:
    indices = _fill(log)
    withholding.record_order(log, _order("EXP-1", {"index": indices["published"]}), now=T0)
    order_index = log.reader.tree_head().size - 1
    record(
        log,
        [item("tender.planned", {"planning": {"rationale": "pending"}, "buyer": BUYER}, ocid="ocds-tptest-0003")],
        now=T0,
        signatures="optional",
        chain_id=CHAIN_ID,
    )
    before = snapshot(log.engine, ALL_TABLES)
    cases = [
        ({"index": indices["published"]}, ConflictError, "is already withheld whole by the order at log index"),
        ({"index": order_index}, InvalidArgumentError, "a withholding order"),
        ({"index": order_index + 1}, InvalidArgumentError, "not integrated"),
    ]
    for target, error, reason in cases:
        with pytest.raises(error) as err:
            withholding.record_order(log, _order("EXP-2", target), now=T0)
        assert reason in err.value.reason  # type: ignore[attr-defined]
        assert snapshot(log.engine, ALL_TABLES) == before
    with pytest.raises(InvalidArgumentError, match="withholding orders are recorded only as orders"):
        record(
            log,
            [Submission(ocid=officers.ORDERS_OCID, type=withholding.EVENT_TYPE, payload=_order("X", {"index": 0}))],
            now=T0,
            signatures="optional",
            chain_id=CHAIN_ID,
        )


def test_bundles_verify_with_the_withheld_reported_and_the_audit_stays_clean(log: Log) -> None:
    from anchoring import rpc as embedded_rpc
    from anchoring.bundles import build_bundle, final_anchors
    from anchoring.embedded import EmbeddedChain
    from anchoring.service import ChainAnchorer
    from audit.log import audit
    from ledger.core.bundle import load_bundle
    from settings import ChainSettings
    from verifier.chain import RpcChainReader
    from verifier.check import verify_bundle

    indices = _fill(log)
    dev = EmbeddedChain()
    anchorer = ChainAnchorer(log, ChainSettings(name="dev", rpc_url="embedded", confirmations=1), dev=dev)

    def anchor() -> None:
        result = anchorer.run_round(force=True)
        while not result.settled:
            result = anchorer.run_round()

    anchor()
    [release] = log.reader.entries(indices["release"], indices["release"] + 1)
    committed = json.loads(release.disclosure or b"")["fields"]
    fields = ["/parties/0/contactPoint", *sorted(f for f in committed if f.endswith("/name"))]
    withholding.record_order(log, _order("EXP-1/2026", {"index": indices["published"]}), now=T0)
    withholding.record_order(log, _order("EXP-2/2026", {"index": indices["release"], "fields": fields}), now=T0)
    anchor()
    chain = RpcChainReader(embedded_rpc.transport(dev))
    size = log.reader.tree_head().size
    for ocid, seq, expected in ((NATIVE, 1, "EXP-1/2026"), (IMPORTED, 0, "EXP-2/2026")):
        doc = build_bundle(log, ocid, final_anchors(log.engine, "dev")).to_json()
        event = doc["events"][seq]
        [order] = doc["orders"]
        assert order["payload"]["reference"] == expected and order["inclusion"] is not None
        if ocid == NATIVE:
            assert event["payload"] is None
            assert event["withheld"] == {"order": order["index"], "reference": "EXP-1/2026"}
        else:
            assert event["payload"]["parties"][0]["name"] is None
            assert event["disclosure"]["fields"]["/parties/0/name"]["order"] == order["index"]
        assert SECRET_NAME not in json.dumps(doc) and SECRET_TITLE not in json.dumps(doc)
        report = verify_bundle(load_bundle(json.loads(json.dumps(doc))), chain=chain)
        assert report.valid, report.failures
        reported = report.events[seq]
        if ocid == NATIVE:
            assert reported.withheld == f"withheld under order EXP-1/2026 (log index {order['index']})"
        else:
            assert reported.withheld_fields == {f: order["index"] for f in fields}
        # An order the bundle leaves out, or one that does not target the event: never valid.
        bare = {k: v for k, v in doc.items() if k != "orders"}
        failed = verify_bundle(load_bundle(json.loads(json.dumps(bare))), chain=None)
        assert not failed.valid and "which the bundle does not carry" in str(failed.failures)
        forged = json.loads(json.dumps(doc))
        forged["orders"][0]["payload"]["targets"] = [{"index": 0}]
        assert not verify_bundle(load_bundle(forged), chain=None).valid
    findings = audit(log.engine, origin=log.origin).findings
    assert findings == [], findings
    assert log.reader.tree_head().size == size
    # A payload missing without an order is found; so is one whose order does not target it.
    with log.engine.begin() as conn:
        target = indices["planned"]
        conn.execute(
            text(
                "UPDATE payloads SET body = NULL, withheld_by = :o WHERE event_id = (SELECT event_id FROM log_entries WHERE idx = :i)"
            ),
            {"o": indices["v1"], "i": target},
        )
    codes = [(f.code, f.index) for f in audit(log.engine, origin=log.origin).findings]
    assert codes == [("withheld_without_order", target)]


def test_the_command_line_records_an_order_refuses_a_bad_one_and_purges(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli import main
    from tests.conftest import ORIGIN

    log = Log.open(db_url, origin=ORIGIN)
    try:
        indices = _fill(log)
    finally:
        log.close()

    def cli(*args: str) -> int:
        return main(["--database-url", db_url, "--origin", ORIGIN, "privacy", *args])

    order = ["withhold", "--reference", "EXP-7/2026", "--authority", "AEPD", "--legal-basis", "GDPR art. 17"]
    assert cli(*order, "--target", f"{indices['release']}:/envelope/ocid") == 2
    assert "names the envelope" in capsys.readouterr().err
    assert cli(*order, "--target", str(indices["published"])) == 0
    out = capsys.readouterr().out
    assert f"order 'EXP-7/2026' recorded at log index {indices['registry'] + 1}" in out
    assert f"withheld: index {indices['published']} ({NATIVE}): whole payload" in out
    assert cli(*order, "--target", str(indices["published"])) == 1  # twice: refused (a conflict)
    assert "already withheld" in capsys.readouterr().err
    assert cli("purge") == 0
    assert "VACUUM" in capsys.readouterr().out


def test_the_explorer_shows_the_order_in_place_of_the_data(log: Log) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.api.conftest import settings_for

    indices = _fill(log)
    withholding.record_order(log, _order("EXP-1/2026", {"index": indices["published"]}), now=T0)
    order = log.reader.tree_head().size - 1
    with TestClient(
        create_app(settings_for(str(log.engine.url.render_as_string(hide_password=False))), log=log)
    ) as client:
        page = client.get(f"/tenders/{NATIVE}", headers={"Accept-Language": "en"})
        assert page.status_code == 200, page.text
        assert f"Withheld under order EXP-1/2026 (log index {order})" in page.text
        assert SECRET_TITLE not in page.text
        # the tender is open (its publication's type is public), its data withheld under the order
        assert 'class="tag tag-active"' in page.text
        assert (
            f'data-withheld-data="{order}"><dt>Withheld</dt><dd>What events 1 said is withheld under order EXP-1/2026'
            f" (log index {order})" in page.text
        )
        spanish = client.get(f"/tenders/{NATIVE}", headers={"Accept-Language": "es"}).text
        assert (
            f"Lo que decían los eventos 1 está retenido por la orden EXP-1/2026 (índice del registro {order})"
            in spanish
        )
        event = client.get(f"/tenders/{NATIVE}/events/1", headers={"Accept-Language": "es"})
        assert event.status_code == 200, event.text
        assert f"Retenido por la orden EXP-1/2026 (índice del registro {order})" in event.text
        assert SECRET_TITLE not in event.text


def _package(*releases: dict[str, Any]) -> bytes:
    package = {"uri": "u", "version": "1.1", "publishedDate": "2026-01-01T00:00:00Z", "publisher": {"name": "p"}}
    return json.dumps({**package, "releases": list(releases)}).encode()


def test_a_reimport_skips_repeats_finds_changes_and_refuses_a_withheld_release(log: Log) -> None:
    indices = _fill(log)
    other = {**_release(), "id": "r2", "tender": {"id": "t1", "title": "Road signs, lot 2"}}
    first = importer.import_files(log, [("again.json", io.BytesIO(_package(_release(), other)))], now=T0)
    assert (first.imported, first.duplicates) == (1, 1)  # r1 repeated: skipped by its keyed digest
    changed = {**_release(), "tender": {"id": "t1", "title": "Road signs (corrected)"}}
    report = importer.import_files(log, [("changed.json", io.BytesIO(_package(changed, other)))], now=T0)
    assert (report.imported, report.duplicates) == (0, 1)
    assert [p.reason for p in report.problems] == [
        f"release 'r1' of {IMPORTED} was already imported with different content"
    ]
    log.integrate_all(now=T0)
    withholding.record_order(
        log, _order("EXP-9/2026", {"index": indices["release"], "fields": ["/parties/0/name"]}), now=T0
    )
    order = log.reader.tree_head().size - 1
    assert _release_digest(log, IMPORTED) is None and _release_digest(log, IMPORTED, "r2") is not None
    size = log.reader.tree_head().size
    before = snapshot(log.engine, ALL_TABLES)
    # The withheld release, as it was or changed, is refused naming the order: never recorded as new.
    for body in (_release(), changed):
        again = importer.import_files(log, [("withheld.json", io.BytesIO(_package(body, other)))], now=T0)
        assert (again.imported, again.duplicates) == (0, 1)
        assert [(p.release, p.path, p.reason) for p in again.problems] == [
            (
                "r1",
                "id",
                f"release 'r1' of {IMPORTED} is withheld under the order at log index {order}"
                " (reference 'EXP-9/2026'): it is not imported again, whatever its content",
            )
        ]
    assert snapshot(log.engine, ALL_TABLES) == before and log.reader.tree_head().size == size
    with pytest.raises(importer.ImportRefusedError, match="is withheld under the order at log index"):
        importer.import_files(log, [("strict.json", io.BytesIO(_package(_release())))], now=T0, strict=True)
    assert snapshot(log.engine, ALL_TABLES) == before


def test_orders_build_on_orders_and_bundles_cite_every_one(
    log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from anchoring import rpc as embedded_rpc
    from anchoring.bundles import build_bundle, final_anchors
    from anchoring.embedded import EmbeddedChain
    from anchoring.service import ChainAnchorer
    from audit.log import audit
    from ledger.core.bundle import load_bundle
    from settings import ChainSettings
    from verifier.chain import RpcChainReader
    from verifier.check import verify_bundle

    indices = _fill(log)
    target = indices["release"]
    first = ["/parties/0/name", "/awards/0/suppliers/0/name"]
    withholding.record_order(log, _order("EXP-A", {"index": target, "fields": first}), now=T0)
    order_a = log.reader.tree_head().size - 1
    # Naming only what is withheld already: refused (409), naming the event and what is withheld.
    before = snapshot(log.engine, ALL_TABLES)
    with pytest.raises(ConflictError) as err:
        withholding.record_order(log, _order("EXP-DUP", {"index": target, "fields": first[:1]}), now=T0)
    assert err.value.field == "payload.targets[0].fields"
    assert err.value.reason == (
        f"log index {target} ({IMPORTED} seq 0): every field it names is already withheld:"
        f" /parties/0/name (order at log index {order_a})"
    )
    assert snapshot(log.engine, ALL_TABLES) == before
    # More fields (one named again): only the new one is withheld by the second order.
    _, done = withholding.record_order(
        log, _order("EXP-B", {"index": target, "fields": [first[0], "/parties/0/contactPoint"]}), now=T0
    )
    order_b = log.reader.tree_head().size - 1
    assert [(w.index, w.fields) for w in done] == [(target, ("/parties/0/contactPoint",))]
    [release] = log.reader.entries(target, target + 1)
    assert release.withheld_by == order_b
    by_order = {p: e["order"] for p, e in json.loads(release.disclosure or b"")["fields"].items() if "order" in e}
    assert by_order == {first[0]: order_a, first[1]: order_a, "/parties/0/contactPoint": order_b}
    assert audit(log.engine, origin=log.origin).findings == []

    dev = EmbeddedChain()
    anchorer = ChainAnchorer(log, ChainSettings(name="dev", rpc_url="embedded", confirmations=1), dev=dev)

    def anchor() -> None:
        result = anchorer.run_round(force=True)
        while not result.settled:
            result = anchorer.run_round()

    def verified() -> tuple[dict[str, Any], Any]:
        doc = build_bundle(log, IMPORTED, final_anchors(log.engine, "dev")).to_json()
        report = verify_bundle(
            load_bundle(json.loads(json.dumps(doc))), chain=RpcChainReader(embedded_rpc.transport(dev))
        )
        assert report.valid, report.failures
        return doc, report.events[0]

    anchor()
    doc, reported = verified()
    assert [o["index"] for o in doc["orders"]] == [order_a, order_b]
    assert reported.withheld_fields == {first[0]: order_a, first[1]: order_a, "/parties/0/contactPoint": order_b}

    # Then the whole payload: the event is withheld whole, and the bundle still cites the field orders.
    withholding.record_order(log, _order("EXP-C", {"index": target}), now=T0)
    order_c = log.reader.tree_head().size - 1
    [release] = log.reader.entries(target, target + 1)
    assert (release.payload, release.disclosure, release.withheld_by) == (None, None, order_c)
    with pytest.raises(ConflictError, match=f"already withheld whole by the order at log index {order_c}"):
        withholding.record_order(log, _order("EXP-D", {"index": target, "fields": ["/buyer/name"]}), now=T0)
    anchor()
    doc, reported = verified()
    event = doc["events"][0]
    assert event["payload"] is None and "disclosure" not in event
    assert event["withheld"] == {
        "order": order_c,
        "reference": "EXP-C",
        "earlier": [{"order": order_a, "reference": "EXP-A"}, {"order": order_b, "reference": "EXP-B"}],
    }
    assert [o["index"] for o in doc["orders"]] == [order_a, order_b, order_c]
    assert reported.withheld == f"withheld under order EXP-C (log index {order_c})"
    # each field under the order that withheld it first (read from the orders: the disclosure is gone)
    assert reported.withheld_fields == {first[0]: order_a, first[1]: order_a, "/parties/0/contactPoint": order_b}
    assert SECRET_NAME not in json.dumps(doc)
    assert audit(log.engine, origin=log.origin).findings == []
    # The command-line verifier accepts it and reports every order.
    from cli import main

    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(doc))
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"payload withheld: withheld under order EXP-C (log index {order_c})" in out
    for pointer, order in ((first[0], order_a), (first[1], order_a), ("/parties/0/contactPoint", order_b)):
        assert f"field {pointer} withheld under the order at log index {order}" in out
    # An earlier order the bundle leaves out, or cites under another reference: never valid.
    dropped = json.loads(json.dumps(doc))
    dropped["orders"] = [o for o in dropped["orders"] if o["index"] != order_a]
    failed = verify_bundle(load_bundle(dropped), chain=None)
    assert not failed.valid and f"the order at log index {order_a}, which the bundle does not carry" in str(
        failed.failures
    )
    renamed = json.loads(json.dumps(doc))
    renamed["events"][0]["withheld"]["earlier"][0]["reference"] = "EXP-Z"
    assert "names order reference 'EXP-Z'" in str(verify_bundle(load_bundle(renamed), chain=None).failures)
