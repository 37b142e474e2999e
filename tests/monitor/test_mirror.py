"""A mirror serves the public (issue 17, deliverable 2): a real origin server (SQLite; PostgreSQL
when TENDERPROOF_TEST_PG_URL is set) with recorded and imported tenders anchored on a real
JSON-RPC node (anvil), a monitor keeping a mirror of it, then ``tenderproof serve --mirror`` in its
own process: the same answers (tender JSON, bundle bytes, OCDS packages, red flags, proofs, tiles,
signed checkpoints) from origin and mirror, the mirror's bundle verifies against the chain, and
every write is refused as a read-only mirror's."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

import demo
from demo import tenders as demo_tenders
from ledger.core.note import Signer
from ledger.log import Log
from ledger.procurement import withholding
from ledger.procurement.record import record
from ledger.submission import Submission
from tests.anchoring.nodes import CHAIN_ID, KEYS, ROOT, AnvilNode, anvil_node
from tests.cluster import environment
from tests.monitor.test_monitor import ORIGIN, _serve, serving

PG = os.environ.get("TENDERPROOF_TEST_PG_URL")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: A tender of the demo's OCDS import (its releases are imported, not recorded).
IMPORTED = "ocds-tp0dem-2025-1007"
#: A tender recorded after the mirror's first round.
LATE = "ocds-tp0dem-mirror-late"


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with anvil_node() as started:
        yield started


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"tenderproof {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


@contextmanager
def _databases(kind: str, tmp: Path) -> Iterator[tuple[str, str]]:
    """The origin's database and the monitor's (its mirror), both of ``kind``."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'origin.sqlite3'}", f"sqlite:///{tmp / 'mirror.sqlite3'}"
        return
    from tests.pg import scratch_database

    assert PG is not None
    with ExitStack() as stack:
        yield stack.enter_context(scratch_database(PG)), stack.enter_context(scratch_database(PG))


def _serve_mirror(url: str, log_file: Path, env: dict[str, str]) -> AbstractContextManager[str]:
    return serving(
        lambda port: [sys.executable, "-m", "cli", "serve", "--mirror", url, "--port", str(port)], log_file, env
    )


def _without_uri(body: bytes) -> dict[str, object]:
    """An OCDS package without the URIs that name the server it was asked of."""
    package = json.loads(body)
    for key in ("uri", "packages"):
        package.pop(key, None)
    for entry in package.get("records", []):
        for release in entry.get("releases", []):
            if isinstance(release, dict):
                release.pop("url", None)
    return dict(package)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"] if PG else ["sqlite"])
def test_a_mirror_serves_what_the_origin_serves_read_only(node: AnvilNode, tmp_path: Path, kind: str) -> None:
    signer = Signer(ORIGIN, secrets.token_bytes(32))
    chain = {"name": "local", "rpc_url": node.url, "chain_id": CHAIN_ID, "key": KEYS[0], "confirmations": 1}
    with _databases(kind, tmp_path) as (origin_url, mirror_url):
        log = Log.open(origin_url, origin=ORIGIN)
        try:
            demo.install(log, chain_id=CHAIN_ID, now=T0)  # recorded tenders + 120 imported, integrated
            # An imported release withheld whole by an order (issue 21): the mirror's bundle cites
            # the order as the origin's does (the monitor copies what the log says withheld it).
            target = log.reader.tender_events(IMPORTED)[0].index
            order = {"reference": "ORD-5/2026", "authority": "Juzgado 3", "legal_basis": "GDPR art. 17",
                     "targets": [{"index": target}]}  # fmt: skip
            withholding.record_order(log, order, now=T0)
            log.integrate_all(now=T0, commit_heads=True)
        finally:
            log.close()
        env = {
            **environment(),
            "TENDERPROOF_DATABASE_URL": origin_url,
            "TENDERPROOF_ORIGIN": ORIGIN,
            "TENDERPROOF_CHAINS": json.dumps([chain]),
            "TENDERPROOF_LOG_SIGNING_KEY": signer.skey(),
        }
        contract = json.loads(_run(env, "deploy", "--chain", "local").stdout)["contract"]
        chains = json.dumps([{**chain, "contract": contract}])
        env["TENDERPROOF_CHAINS"] = chains
        _run(env, "anchor", "--timeout", "60")
        server_env = {k: v for k, v in env.items() if k.startswith("TENDERPROOF_") and k != "TENDERPROOF_DATABASE_URL"}
        with _serve(origin_url, tmp_path / "origin.log", server_env) as origin:
            bare = {k: v for k, v in environment().items() if not k.startswith("TENDERPROOF_")}
            followed = subprocess.run(
                [sys.executable, "-m", "cli", "monitor", origin, "--db", mirror_url, "--mirror", "--once",
                 "--rpc", node.url, "--log-key", str(signer.verifier)],
                cwd=ROOT, env=bare, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert followed.returncode == 0, followed.stderr
            # the one finding: the order's withholding, informational
            found = [json.loads(line) for line in followed.stdout.splitlines() if line.strip()]
            assert [(f["kind"], f["reference"]) for f in found] == [("payload_withheld_by_order", "ORD-5/2026")]
            mirror_env = {"TENDERPROOF_CHAINS": chains, "TENDERPROOF_RATE_LIMIT": "100000/minute"}
            with _serve_mirror(mirror_url, tmp_path / "mirror.log", mirror_env) as mirror:
                _same_answers(origin, mirror)
                _writes_refused(mirror)
                # The origin records more (integrated, not anchored yet): the next round brings it over.
                log = Log.open(origin_url, origin=ORIGIN)
                try:
                    planned = {"planning": {"rationale": "Street lamps"}, "buyer": {"id": "MX-9", "name": "Town"}}
                    item = Submission(ocid=LATE, type="tender.planned", payload=planned)
                    record(log, [item], now=datetime.now(UTC), signatures="optional", chain_id=CHAIN_ID)
                    log.integrate_all(now=datetime.now(UTC), commit_heads=True)
                finally:
                    log.close()
                again = subprocess.run(followed.args, cwd=ROOT, env=bare, capture_output=True, text=True, timeout=300)
                assert (again.returncode, again.stdout) == (0, ""), again.stderr  # nothing new
                for path in ("/api/v1/checkpoint", "/checkpoint", f"/api/v1/tenders/{LATE}",
                             f"/api/v1/tenders/{LATE}/bundle", "/api/v1/tenders?limit=50"):  # fmt: skip
                    a, b = httpx.get(origin + path, timeout=30), httpx.get(mirror + path, timeout=30)
                    assert (a.status_code, a.content) == (b.status_code, b.content), f"{path}: {_where(a, b)}"
                assert LATE in b.text  # the listing holds the new tender
                bundle = tmp_path / "bundle.json"
                bundle.write_bytes(httpx.get(f"{mirror}/api/v1/tenders/{demo_tenders.ROAD}/bundle").content)
                verified = subprocess.run(
                    [sys.executable, "-m", "verifier.cli", str(bundle), "--rpc", node.url,
                     "--log-key", str(signer.verifier)],
                    cwd=ROOT, env=bare, capture_output=True, text=True, timeout=120,
                )  # fmt: skip
                assert verified.returncode == 0, verified.stdout + verified.stderr


def _same_answers(origin: str, mirror: str) -> None:
    def both(path: str) -> tuple[httpx.Response, httpx.Response]:
        a, b = httpx.get(origin + path, timeout=30), httpx.get(mirror + path, timeout=30)
        assert (a.status_code, b.status_code) == (200, 200), (path, a.text[:300], b.text[:300])
        return a, b

    size = int(both("/api/v1/checkpoint")[0].json()["tree_size"])
    assert size > 100
    # Byte for byte: the log itself, its proofs, tiles, signed notes, bundles, tender answers.
    exact = [
        "/api/v1/checkpoint",
        "/api/v1/checkpoint/signed",
        "/.well-known/tenderproof/checkpoint-key",
        "/checkpoint",
        "/tile/0/000",
        "/tile/entries/000",
        f"/api/v1/entries?start=0&end={min(size, 300)}",
        f"/api/v1/proofs/inclusion?index=3&size={size}",
        f"/api/v1/proofs/consistency?from=5&to={size}",
        "/api/v1/anchors",
        f"/api/v1/tenders/{demo_tenders.ROAD}",
        f"/api/v1/tenders/{demo_tenders.ROAD}/events",
        f"/api/v1/tenders/{demo_tenders.ROAD}/bundle",
        f"/api/v1/tenders/{demo_tenders.ROAD}/bundle?format=1",
        f"/api/v1/tenders/{IMPORTED}",
        f"/api/v1/tenders/{IMPORTED}/bundle",
        "/api/v1/tenders?limit=50",
        "/api/v1/tenders?status=active&limit=20",
        "/api/v1/officers",
        "/api/v1/export/tenders.csv",
        "/api/v1/export/contracts.csv",
    ]
    for path in exact:
        a, b = both(path)
        assert a.content == b.content, f"{path}: the mirror's answer differs from the origin's: {_where(a, b)}"
    # Red flags: the same flags and figures; the ledger-wide ones (computed over the whole log,
    # as of the size each side read) say which event and when each database computed them.
    for path in (
        f"/api/v1/tenders/{IMPORTED}/redflags",
        f"/api/v1/tenders/{demo_tenders.ROAD}/redflags",
        "/api/v1/redflags",
        "/api/v1/organisations/redflags?key=MX-EST-007",
    ):
        a, b = both(path)
        assert _local(a.json()) == _local(b.json()), path
    bundle = json.loads(both(f"/api/v1/tenders/{demo_tenders.ROAD}/bundle")[1].content)
    assert bundle["checkpoint"] and bundle["anchors"] and bundle["completeness"], "a full version 2 bundle"
    withheld = json.loads(both(f"/api/v1/tenders/{IMPORTED}/bundle")[1].content)
    assert withheld["events"][0]["payload"] is None and withheld["events"][0]["withheld"]["reference"] == "ORD-5/2026"
    assert [o["payload"]["reference"] for o in withheld["orders"]] == ["ORD-5/2026"]
    flags = both("/api/v1/organisations/redflags?key=MX-EST-007")[1].json()
    assert "R055" in json.dumps(flags), "the ledger-wide red flags are there"
    # OCDS packages: the same releases and records; only the URIs naming the server differ.
    for path in (
        f"/api/v1/tenders/{IMPORTED}/releases",
        f"/api/v1/tenders/{IMPORTED}/record",
        f"/api/v1/tenders/{demo_tenders.ROAD}/releases",
        f"/api/v1/tenders/{demo_tenders.ROAD}/record",
    ):
        a, b = both(path)
        assert _without_uri(a.content) == _without_uri(b.content), path
    # The explorer: the same tender page, served by the mirror.
    page = httpx.get(f"{mirror}/tenders/{demo_tenders.ROAD}", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200 and demo_tenders.ROAD in page.text


def _writes_refused(mirror: str) -> None:
    body = {"ocid": "ocds-abc123-new", "type": "tender.planned", "payload": {}}
    for method, path in (
        ("POST", "/api/v1/tenders"),
        ("POST", f"/api/v1/tenders/{demo_tenders.ROAD}/events"),
        ("POST", "/api/v1/events/bulk"),
        ("POST", "/api/v1/import"),
        ("DELETE", f"/api/v1/tenders/{demo_tenders.ROAD}"),
    ):
        answer = httpx.request(method, mirror + path, json=body, headers={"X-API-Key": "tp_x"}, timeout=30)
        assert answer.status_code == 405, (path, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "read_only_mirror"
        assert "read-only mirror" in error["message"] and ORIGIN in error["message"]
    assert httpx.get(f"{mirror}/api/v1/checkpoint", timeout=30).json()["origin"] == ORIGIN


def _where(a: httpx.Response, b: httpx.Response) -> str:
    """Where two answers part: a little of each around the first byte that differs."""
    at = next((i for i, (x, y) in enumerate(zip(a.content, b.content, strict=False)) if x != y), len(a.content))
    return f"origin {a.content[at - 200 : at + 80]!r}, mirror {b.content[at - 200 : at + 80]!r}"


def _local(value: object) -> object:
    """``value`` without what only says when this database computed it."""
    if isinstance(value, dict):
        return {k: _local(v) for k, v in value.items() if k not in ("through_event", "computed_at")}
    if isinstance(value, list):
        return [_local(v) for v in value]
    return value
