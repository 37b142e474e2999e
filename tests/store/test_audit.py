"""The operator's audit against real databases: a clean log passes, and every edit made behind
the triggers' back is named exactly, with nothing else (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text, update

from anchoring.embedded import EmbeddedChain
from anchoring.schema import anchors
from anchoring.service import ChainAnchorer
from audit.log import AnchorTarget, AuditReport, Finding, audit, chain_roots, parse_canonical
from cli import main
from ledger.core import commitment
from ledger.core.errors import CanonicalizationError, InvalidArgumentError
from ledger.log import Log
from ledger.store.db import write_transaction
from ledger.store.guards import drop_ddl, drop_payloads_ddl, install_ddl, payloads_ddl
from ledger.store.schema import tree_heads
from ledger.submission import Submission
from settings import ChainSettings
from tests.conftest import ORIGIN, T0
from tests.recording import append_many
from tests.store.helpers import leaf, snapshot

TENDERS = 7
EVENTS = 300
CHAIN = ChainSettings(name="dev", rpc_url="embedded", confirmations=1)

#: (code, entry index, tree size, anchor id, tile) of a finding: what the tests compare.
Key = tuple[str, int | None, int | None, int | None, tuple[int, int] | None]


def key(finding: Finding) -> Key:
    return (finding.code, finding.index, finding.tree_size, finding.anchor_id, finding.tile)


def keys(report: AuditReport) -> set[Key]:
    assert len({key(f) for f in report.findings}) == len(report.findings), "a finding is reported twice"
    return {key(f) for f in report.findings}


def entry(code: str, index: int) -> Key:
    return (code, index, None, None, None)


def fill(log: Log, start: int, count: int) -> None:
    """Append events ``start..start+count-1``, event i to tender ``i % TENDERS``, and integrate
    them in batches of 40 (so the log records many tree heads)."""
    for chunk in range(start, start + count, 50):
        items = [
            Submission(
                ocid=f"ocds-audit1-{i % TENDERS:02d}",
                type="tender.published" if i < TENDERS else "tender.amended",
                payload={"lot": i, "title": f"Lot {i} supplies"},
            )
            for i in range(chunk, min(chunk + 50, start + count))
        ]
        append_many(log, items, now=T0)
        log.integrate_all(now=T0, batch_size=40)


@pytest.fixture
def filled(log: Log) -> Log:
    fill(log, 0, EVENTS)
    return log


def head_sizes(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(tree_heads.c.size)).scalars())


def roots_after(engine: Engine, index: int) -> set[Key]:
    """What a changed leaf at ``index`` does to the trees: every later tree head and the current head differ."""
    later = {("tree_head", None, size, None, None) for size in head_sizes(engine) if size > index}
    return later | {("log_state", None, EVENTS, None, None)}


@contextmanager
def unguarded(engine: Engine) -> Iterator[None]:
    """The append-only triggers dropped, as an operator with a SQL prompt could; reinstalled after.

    Only the triggers: on PostgreSQL their functions stay, as the anchor_txs triggers of
    migration 0002 use them too (so guards.drop_ddl's DROP FUNCTION would be refused).
    """
    dialect = engine.dialect.name
    with write_transaction(engine) as conn:
        for statement in [*drop_ddl(dialect), *drop_payloads_ddl(dialect)]:
            if statement.startswith("DROP TRIGGER"):
                conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with write_transaction(engine) as conn:
            for statement in [*install_ddl(dialect), *payloads_ddl(dialect)]:
                if statement.startswith("CREATE TRIGGER"):
                    conn.exec_driver_sql(statement)


def tamper(engine: Engine, sql: str, **params: object) -> None:
    with unguarded(engine), write_transaction(engine) as conn:
        assert conn.execute(text(sql), params).rowcount >= 1


@dataclass(frozen=True)
class Row:
    event_id: int
    envelope: bytes
    payload: bytes
    leaf_hash: bytes


def row_at(log: Log, index: int) -> Row:
    (stored,) = log.reader.entries(index, index + 1)
    return Row(stored.event_id, stored.envelope, stored.payload, stored.leaf_hash)


def successor(index: int) -> int:
    """The index of the next event of the same tender (see :func:`fill`)."""
    return index + TENDERS


# --- A clean log ---------------------------------------------------------------------------


def test_clean_log_audits_ok_and_reads_only(filled: Log) -> None:
    before = snapshot(filled.engine)
    calls: list[tuple[int, int]] = []
    report = audit(
        filled.engine, origin=ORIGIN, batch_size=64, progress=lambda done, total: calls.append((done, total))
    )
    assert report.findings == []
    assert report.ok
    assert (report.entries_checked, report.size) == (EVENTS, EVENTS)
    assert report.root == filled.reader.tree_head().root
    # Every recorded tree head (size 0 included) and the current head.
    assert report.sizes_checked == len(head_sizes(filled.engine)) + 1
    assert (report.anchors_checked, report.anchors_on_chain, report.anchors_unchecked) == (0, 0, 0)
    assert calls == [(64, 300), (128, 300), (192, 300), (256, 300), (300, 300)]
    assert snapshot(filled.engine) == before


def test_empty_log_audits_ok(log: Log) -> None:
    report = audit(log.engine, origin=ORIGIN)
    assert report.ok
    assert (report.entries_checked, report.sizes_checked, report.size) == (0, 2, 0)
    assert report.root == hashlib.sha256(b"").digest()


def test_another_origin_is_named_on_every_entry_and_findings_are_capped(filled: Log) -> None:
    report = audit(filled.engine, origin="another.test/log", max_findings=10)
    assert [f.code for f in report.findings] == ["origin"] * 10
    assert [f.index for f in report.findings] == list(range(10))
    assert report.findings_dropped == EVENTS - 10
    assert not report.ok
    assert str(report.findings[1]) == (
        f"entry 1 (event 2, ocds-audit1-01 seq 0): envelope origin is {ORIGIN!r}, the log is 'another.test/log'"
    )


def test_refuses_a_bad_batch_size(log: Log) -> None:
    with pytest.raises(InvalidArgumentError, match="batch_size: must be >= 1, got 0"):
        audit(log.engine, origin=ORIGIN, batch_size=0)


# --- The canonical-form check (a fast path beside the reference encoder) ---------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    # (an integral float from 2**53 on is written as digits that parse back as a too-large integer)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not (f.is_integer() and abs(f) >= 2**53))
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_parse_canonical_accepts_exactly_the_rfc8785_bytes(value: object) -> None:
    canonical = rfc8785.dumps(value)
    assert parse_canonical(canonical) == (json.loads(canonical), True)
    for other in {json.dumps(value).encode(), json.dumps(value, sort_keys=True, separators=(",", ":")).encode()}:
        assert parse_canonical(other)[1] == (other == canonical)


@pytest.mark.parametrize(
    ("data", "canonical"),
    [
        (b'{"a":1,"b":[true,null,"x"]}', True),
        (b'{"b":1,"a":2}', False),  # keys out of order
        (b'{"a":1.0}', False),  # RFC 8785 writes 1
        (b'{"a":1}', True),
        (b'{"a":1E5}', False),
        (b'{"a":-0}', False),
        (rb'{"a":"\u00e9"}', False),  # RFC 8785 writes the UTF-8 bytes
        ('{"a":"é"}'.encode(), True),
        (rb'{"a":"\u001f"}', True),
        (rb'{"a":"\/"}', False),
        (b'{"a":1,"a":1}', False),  # a duplicate key
        (b'{"a": 1}', False),
        (b' {"a":1}', False),
    ],
)
def test_parse_canonical_cases(data: bytes, canonical: bool) -> None:
    assert parse_canonical(data)[1] is canonical
    assert (rfc8785.dumps(json.loads(data)) == data) is canonical


@pytest.mark.parametrize("data", [b'{"a":12345678901234567890}', b'{"a":NaN}', rb'{"a":"\ud800"}'])
def test_parse_canonical_refuses_values_without_an_rfc8785_form(data: bytes) -> None:
    with pytest.raises(CanonicalizationError, match=r"^x"):
        parse_canonical(data, field="x")


def test_parse_canonical_refuses_what_is_not_json() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        parse_canonical(b'{"a":')


# --- Edits behind the triggers' back --------------------------------------------------------


def test_edited_payload_byte_names_the_entry(filled: Log) -> None:
    target = row_at(filled, 123)
    edited = target.payload.replace(b"supplies", b"supplieZ")
    tamper(filled.engine, "UPDATE payloads SET body = :p WHERE event_id = :id", p=edited, id=target.event_id)
    report = audit(filled.engine, origin=ORIGIN, batch_size=100)
    assert keys(report) == {entry("payload_hash", 123)}
    (finding,) = report.findings
    assert (finding.event_id, finding.ocid, finding.seq) == (target.event_id, "ocds-audit1-04", 123 // TENDERS)
    (stored,) = filled.reader.entries(123, 124)
    if stored.parsed_envelope.v == 1:
        assert finding.reason == (
            f"the envelope's payload_sha256 is {hashlib.sha256(target.payload).hexdigest()}, "
            f"the payload hashes to {hashlib.sha256(edited).hexdigest()}"
        )
    else:  # version 2: re-hashed through the commitment (ledger.core.commitment.recompute)
        disclosure = json.loads(stored.disclosure or b"")
        assert finding.reason == (
            f"the envelope's payload_commitment is {stored.parsed_envelope.payload_commitment}, the payload and"
            f" its disclosure commit to {commitment.recompute(json.loads(edited), disclosure)}"
        )


def tamper_payloads(engine: Engine, sql: str, **params: object) -> None:
    """:func:`tamper` of the payloads table, whose own triggers (migration 0017) are dropped too."""
    dialect = engine.dialect.name
    with write_transaction(engine) as conn:
        for statement in drop_payloads_ddl(dialect):
            conn.exec_driver_sql(statement)
    try:
        with write_transaction(engine) as conn:
            assert conn.execute(text(sql), params).rowcount >= 1
    finally:
        with write_transaction(engine) as conn:
            for statement in payloads_ddl(dialect):
                conn.exec_driver_sql(statement)


def test_edited_v2_payload_or_disclosure_names_the_entry(filled: Log) -> None:
    """A v2 entry (docs/spec.md §2.5) is checked through its stored disclosure: a payload byte or a
    salt changed behind the triggers' back is named, with the commitment expected and found."""
    target = row_at(filled, 77)
    envelope = json.loads(target.envelope)
    assert envelope["v"] == 2
    (stored,) = filled.reader.entries(77, 78)
    disclosure = stored.parsed_disclosure
    assert disclosure is not None
    edited = target.payload.replace(b"supplies", b"supplieZ")
    tamper_payloads(filled.engine, "UPDATE payloads SET body = :p WHERE event_id = :id", p=edited, id=target.event_id)
    report = audit(filled.engine, origin=ORIGIN)
    assert keys(report) == {entry("payload_hash", 77)}
    expected = commitment.recompute(json.loads(edited), disclosure)
    assert report.findings[0].reason == (
        f"the envelope's payload_commitment is {envelope['payload_commitment']}, the payload and its"
        f" disclosure commit to {expected}"
    )
    tamper_payloads(
        filled.engine, "UPDATE payloads SET body = :p WHERE event_id = :id", p=target.payload, id=target.event_id
    )
    assert audit(filled.engine, origin=ORIGIN).findings == []
    salted = rfc8785.dumps({**disclosure, "salt": "00" * 32})
    tamper_payloads(
        filled.engine, "UPDATE payloads SET disclosure = :d WHERE event_id = :id", d=salted, id=target.event_id
    )
    assert keys(audit(filled.engine, origin=ORIGIN)) == {entry("payload_hash", 77)}
    tamper_payloads(filled.engine, "UPDATE payloads SET disclosure = NULL WHERE event_id = :id", id=target.event_id)
    report = audit(filled.engine, origin=ORIGIN)
    assert [f.reason for f in report.findings] == [
        "a version 2 entry's disclosure is not stored: its payload cannot be checked"
    ]


def test_payload_rewritten_in_another_json_form_is_not_canonical(filled: Log) -> None:
    target = row_at(filled, 5)
    spaced = target.payload.replace(b'"lot":', b'"lot": ')
    tamper(filled.engine, "UPDATE payloads SET body = :p WHERE event_id = :id", p=spaced, id=target.event_id)
    report = audit(filled.engine, origin=ORIGIN)
    (stored,) = filled.reader.entries(5, 6)
    if stored.parsed_envelope.v == 1:  # the bytes hash differently
        assert keys(report) == {entry("payload_hash", 5), entry("payload", 5)}
    else:  # version 2 commits to the payload's RFC 8785 form: the same value, other bytes
        assert keys(report) == {entry("payload", 5)}
    assert report.findings[-1].reason == "stored payload bytes are not RFC 8785 canonical JSON"


def test_edited_envelope_byte_names_the_entry_its_successor_and_every_later_root(filled: Log) -> None:
    target = row_at(filled, 100)
    edited = target.envelope.replace(b'T12:00:00.000000Z"', b'T12:00:01.000000Z"')
    assert edited != target.envelope
    tamper(filled.engine, "UPDATE events SET envelope = :e WHERE id = :id", e=edited, id=target.event_id)
    report = audit(filled.engine, origin=ORIGIN, batch_size=64)
    assert keys(report) == {
        entry("leaf_hash", 100),
        entry("tile_leaf", 100),
        entry("prev", successor(100)),
        *roots_after(filled.engine, 100),
    }
    by_code = {f.code: f for f in report.findings}
    assert by_code["leaf_hash"].reason == (
        f"stored leaf hash {target.leaf_hash.hex()}, the envelope bytes hash to {leaf(edited).hex()}"
    )
    assert by_code["prev"].reason == (
        f"prev is {target.leaf_hash.hex()}, the previous event of ocds-audit1-02 (seq 14, entry 100) "
        f"hashes to {leaf(edited).hex()}"
    )
    stored_last = filled.reader.tree_head().root
    assert (
        by_code["log_state"].reason
        == f"current tree head root {stored_last.hex()}, the log recomputes {report.root.hex()}"
    )


def test_envelope_rewritten_with_its_leaf_hash_is_caught_by_the_tiles_the_chain_and_the_roots(filled: Log) -> None:
    target = row_at(filled, 42)
    edited = target.envelope.replace(b'T12:00:00.000000Z"', b'T12:00:01.000000Z"')
    tamper(
        filled.engine,
        "UPDATE events SET envelope = :e, leaf_hash = :h WHERE id = :id",
        e=edited,
        h=leaf(edited),
        id=target.event_id,
    )
    report = audit(filled.engine, origin=ORIGIN)
    assert keys(report) == {entry("tile_leaf", 42), entry("prev", successor(42)), *roots_after(filled.engine, 42)}
    tile_leaf = next(f for f in report.findings if f.code == "tile_leaf")
    assert tile_leaf.reason == (
        f"tile 0/0 serves leaf hash {target.leaf_hash.hex()}, the entry hashes to {leaf(edited).hex()}"
    )


def test_swapped_log_entries_are_both_named(filled: Log) -> None:
    first, second = row_at(filled, 150), row_at(filled, 151)
    with unguarded(filled.engine), write_transaction(filled.engine) as conn:
        conn.execute(text("DELETE FROM log_entries WHERE idx IN (150, 151)"))
        conn.execute(
            text("INSERT INTO log_entries (idx, event_id) VALUES (150, :b), (151, :a)"),
            {"a": first.event_id, "b": second.event_id},
        )
    report = audit(filled.engine, origin=ORIGIN)
    assert keys(report) == {entry("tile_leaf", 150), entry("tile_leaf", 151), *roots_after(filled.engine, 150)}
    assert {f.event_id for f in report.findings if f.code == "tile_leaf"} == {first.event_id, second.event_id}


def test_envelope_that_is_no_longer_valid_is_named_and_the_chain_follows_its_row(filled: Log) -> None:
    target = row_at(filled, 60)
    edited = target.envelope.replace(b'"type":"tender.amended"', b'"type":"tender.amendeX"')
    assert edited != target.envelope
    tamper(filled.engine, "UPDATE events SET envelope = :e WHERE id = :id", e=edited, id=target.event_id)
    report = audit(filled.engine, origin=ORIGIN)
    assert keys(report) == {
        entry("leaf_hash", 60),
        entry("envelope", 60),
        entry("tile_leaf", 60),
        entry("prev", successor(60)),
        *roots_after(filled.engine, 60),
    }
    assert next(f for f in report.findings if f.code == "envelope").reason.startswith(
        "not a valid v1 envelope: type: unknown event type 'tender.amendeX'"
    )


def test_edited_seq_column_names_the_entry(filled: Log) -> None:
    target = row_at(filled, 200)
    tamper(filled.engine, "UPDATE events SET seq = 1000 WHERE id = :id", id=target.event_id)
    report = audit(filled.engine, origin=ORIGIN)
    assert keys(report) == {entry("row", 200)}
    assert report.findings[0].reason == f"the envelope's seq is {200 // TENDERS}, its events row says 1000"


def test_deleted_log_entry_leaves_a_gap_a_broken_chain_and_an_orphan_event(filled: Log) -> None:
    target = row_at(filled, 250)
    tamper(filled.engine, "DELETE FROM log_entries WHERE idx = 250")
    report = audit(filled.engine, origin=ORIGIN)
    later_heads = {("tree_head", None, size, None, None) for size in head_sizes(filled.engine) if size > 250}
    assert keys(report) == {
        entry("index_gap", 251),
        entry("seq", successor(250)),
        ("orphan", None, None, None, None),
        ("log_state", None, EVENTS, None, None),
        *later_heads,
    }
    by_code = {f.code: f for f in report.findings}
    assert by_code["index_gap"].reason == "log index 250 missing: the entry before has index 249, this one 251"
    assert by_code["seq"].reason == "seq 36 of ocds-audit1-05 follows seq 34 (entry 243), expected 35"
    assert by_code["orphan"].event_id == target.event_id
    assert by_code["log_state"].reason == f"the current tree head says {EVENTS} entries, the log holds {EVENTS - 1}"
    # The head recorded at the full size is now beyond the log.
    assert {f.reason for f in report.findings if f.tree_size == EVENTS and f.code == "tree_head"} == {
        f"tree head beyond the log's {EVENTS - 1} entries (root {filled.reader.tree_head().root.hex()})"
    }


def test_edited_upper_tile_is_named(filled: Log) -> None:
    with filled.engine.connect() as conn:
        stored = bytes(conn.execute(text("SELECT hashes FROM tiles WHERE level = 1 AND idx = 0")).scalar_one())
    assert len(stored) == 32  # the root of the first 256 leaves
    tamper(filled.engine, "UPDATE tiles SET hashes = :h WHERE level = 1 AND idx = 0", h=bytes(32))
    report = audit(filled.engine, origin=ORIGIN)
    assert keys(report) == {("tile_node", None, None, None, (1, 0))}
    assert report.findings[0].reason == f"node 8/0 is {bytes(32).hex()}, its tile's leaves make {stored.hex()}"


def test_edited_tree_head_names_its_size(filled: Log) -> None:
    size = head_sizes(filled.engine)[3]
    tamper(filled.engine, "UPDATE tree_heads SET root = :r WHERE size = :s", r=bytes(32), s=size)
    report = audit(filled.engine, origin=ORIGIN)
    assert keys(report) == {("tree_head", None, size, None, None)}
    assert report.findings[0].reason.startswith(f"tree head root {bytes(32).hex()}, the log recomputes ")


# --- Anchors and the chain -----------------------------------------------------------------


@dataclass
class Anchored:
    log: Log
    anchorer: ChainAnchorer
    #: final anchors: id -> tree size
    sizes: dict[int, int]


@pytest.fixture
def anchored(log: Log) -> Iterator[Anchored]:
    """A log anchored on an embedded chain at tree sizes 200 and 300."""
    anchorer = ChainAnchorer(log, CHAIN, dev=EmbeddedChain(), holder="audit", clock=lambda: T0)
    for start, count in ((0, 200), (200, 100)):
        fill(log, start, count)
        result = anchorer.run_round(force=True)
        for _ in range(10):
            if result.settled:
                break
            result = anchorer.run_round()
        assert result.anchor is not None and result.anchor.status == "final"
    with log.engine.connect() as conn:
        sizes = {int(i): int(s) for i, s in conn.execute(select(anchors.c.id, anchors.c.tree_size))}
    assert sorted(sizes.values()) == [200, 300]
    yield Anchored(log, anchorer, sizes)
    anchorer.release()


def test_anchors_agree_with_the_log_and_the_chain(anchored: Anchored) -> None:
    client = anchored.anchorer.client
    target = anchored.anchorer.target(T0)
    assert client.address is not None
    root_of = chain_roots({(target.instance, client.address): client.root_at})
    report = audit(anchored.log.engine, origin=ORIGIN, chain_root=root_of)
    assert report.findings == []
    assert (report.anchors_checked, report.anchors_on_chain, report.anchors_unchecked) == (2, 2, 0)
    # A target the caller cannot reach (here: another chain instance) is counted, not reported.
    elsewhere = chain_roots({("embedded:gone", client.address): client.root_at})
    report = audit(anchored.log.engine, origin=ORIGIN, chain_root=elsewhere)
    assert report.ok
    assert (report.anchors_checked, report.anchors_on_chain, report.anchors_unchecked) == (2, 0, 2)


def test_chain_holding_another_root_or_none_is_named(anchored: Anchored) -> None:
    client = anchored.anchorer.client
    by_size = {size: anchor_id for anchor_id, size in anchored.sizes.items()}
    wrong = bytes.fromhex("ab" * 32)
    asked: list[tuple[str, int]] = []

    def chain_root(target: AnchorTarget, tree_size: int) -> bytes:
        asked.append((target.chain, tree_size))
        return {200: wrong, 300: bytes(32)}[tree_size]

    report = audit(anchored.log.engine, origin=ORIGIN, chain_root=chain_root)
    assert sorted(asked) == [("dev", 200), ("dev", 300)]
    assert keys(report) == {("chain", None, 200, by_size[200], None), ("chain", None, 300, by_size[300], None)}
    ours = client.root_at(200)
    assert ours == anchored.log.reader.root_at(200)
    by_anchor = {f.anchor_id: f for f in report.findings}
    assert str(by_anchor[by_size[200]]) == (
        f"anchor {by_size[200]} (tree size 200): chain holds {wrong.hex()} "
        f"(on dev contract {client.address}), the log recomputes {ours.hex()}"
    )
    assert by_anchor[by_size[300]].reason == f"not anchored on chain (on dev contract {client.address})"


def test_edited_anchor_root_is_named(anchored: Anchored) -> None:
    first = min(anchored.sizes, key=anchored.sizes.__getitem__)
    with write_transaction(anchored.log.engine) as conn:
        conn.execute(update(anchors).where(anchors.c.id == first).values(root=bytes(32)))
    client = anchored.anchorer.client
    report = audit(anchored.log.engine, origin=ORIGIN, chain_root=lambda target, size: client.root_at(size))
    assert keys(report) == {("anchor", None, 200, first, None)}
    assert report.findings[0].reason == (
        f"stored root {bytes(32).hex()}, the log recomputes {anchored.log.reader.root_at(200).hex()}"
    )
    assert report.anchors_on_chain == 2  # the chain itself agrees with the log


# --- The command line -----------------------------------------------------------------------


def test_cli_audit_exit_code_and_named_entries(filled: Log, capsys: pytest.CaptureFixture[str]) -> None:
    url = filled.engine.url.render_as_string(hide_password=False)
    base = ["--database-url", url, "--origin", ORIGIN, "audit", "--no-chain", "--batch-size", "64"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert f"OK: {EVENTS} entries" in out and "TAMPERED" not in out
    for index in (17, 250):
        target = row_at(filled, index)
        edited = target.payload.replace(b"supplies", b"suppliez")
        tamper(filled.engine, "UPDATE payloads SET body = :p WHERE event_id = :id", p=edited, id=target.event_id)
    assert main([*base, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["entries_checked"] == EVENTS
    assert [(f["code"], f["index"]) for f in report["findings"]] == [("payload_hash", 17), ("payload_hash", 250)]
    assert main(base) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL entry ") == 2 and "TAMPERED" in out


def test_contract_ahead_of_the_database_is_named(anchored: Anchored) -> None:
    """A database restored from a backup older than the last anchor: what it holds agrees with
    itself and with the chain's roots, but the contract vouches for more entries than it has."""
    size = anchored.log.reader.tree_head().size
    asked: list[str] = []

    def latest(target: AnchorTarget) -> int:
        asked.append(target.chain)
        return size + 5

    report = audit(anchored.log.engine, origin=ORIGIN, chain_latest=latest)
    assert asked == ["dev"]
    assert [(f.code, f.tree_size) for f in report.findings] == [("chain_ahead", size + 5)]
    assert f"has anchored tree size {size + 5}, this database holds only {size} entries" in str(report.findings[0])
    client = anchored.anchorer.client
    assert audit(anchored.log.engine, origin=ORIGIN, chain_latest=lambda target: client.latest()[1]).ok
    assert audit(anchored.log.engine, origin=ORIGIN, chain_latest=lambda target: None).ok
