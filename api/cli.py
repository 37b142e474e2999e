"""The ``tenderproof`` command line.

One top-level handler (:func:`main`) turns domain errors into a clear message
and an exit code: 0 success, 1 a refusal or failed check, 2 a usage error
(bad argument or input), 3 the database or another service is unreachable.
Flag defaults come from the environment (see :mod:`api.settings`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any, cast

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import OperationalError

from anchoring import embedded, scheduler, service, store
from anchoring.config import ChainSettings
from anchoring.errors import ChainConfigError, ChainUnavailableError
from anchoring.service import Credentials, Policy
from ledger.core.errors import ConflictError, InvalidArgumentError, LedgerError, NotFoundError, VerificationError
from ledger.log import Log
from ledger.sequencer import UNSET, Submission

from .settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


def _open(ctx: click.Context) -> Log:
    settings: Settings = ctx.obj
    return Log.open(settings.database_url, origin=settings.origin)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="TENDERPROOF_DATABASE_URL",
    help="Database URL (default: SQLite file in the working directory).",
)
@click.option("--origin", envvar="TENDERPROOF_ORIGIN", help="The log's name (fixed per deployment).")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, origin: str | None) -> None:
    """Tenderproof: a verifiable, append-only log of public procurement events."""
    overrides: dict[str, Any] = {k: v for k, v in {"database_url": database_url, "origin": origin}.items() if v}
    ctx.obj = Settings(**overrides)


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create or upgrade the database schema and bind it to the log's origin."""
    log = _open(ctx)
    click.echo(f"log {log.origin!r} ready at {log.engine.url.render_as_string(hide_password=True)}")
    click.echo(log.checkpoint().to_text(), nl=False)


@cli.command()
@click.option("--host", envvar="TENDERPROOF_HOST", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", envvar="TENDERPROOF_PORT", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port."
)
@click.option(
    "--workers",
    envvar="TENDERPROOF_WORKERS",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes (each with its own connection pool, rate-limit counters and concurrency limit).",
)
@click.option(
    "--anchoring/--no-anchoring",
    envvar="TENDERPROOF_ANCHORING",
    default=True,
    show_default=True,
    help="Also run the periodic anchoring job in this process.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, anchoring: bool) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) until stopped; logs are JSON lines."""
    import os

    import uvicorn

    from . import logs
    from .app import UVICORN_OPTIONS, create_app

    settings: Settings = ctx.obj
    logs.configure()
    settings.chain_id_for_signatures  # noqa: B018 - a clear error now, not a 500 on every write
    log = _open(ctx)  # migrates once, before any worker opens the database
    job: service.AnchoringService | None = None
    background = None
    if anchoring:
        job = service.AnchoringService(
            log,
            list(settings.chains),
            credentials=_credentials(settings),
            policy=_policy(settings),
            integrate_batch=settings.integrate_batch,
        )
        background = scheduler.start_background(job, poll=settings.anchor_poll)
    options: dict[str, Any] = {"host": host, "port": port, **UVICORN_OPTIONS}
    try:
        if workers == 1:
            uvicorn.run(create_app(settings, log=log), **options)
        else:
            # Each worker builds its app from the environment: hand the flags' values on there.
            os.environ["TENDERPROOF_DATABASE_URL"] = settings.database_url
            os.environ["TENDERPROOF_ORIGIN"] = settings.origin
            _serve_workers(workers, options)
    finally:
        if background is not None and job is not None:
            background.shutdown(wait=True)
            job.close()
        log.close()


def _serve_workers(workers: int, options: dict[str, Any]) -> None:
    """``uvicorn.run(..., workers=N)``, but on a socket created as TCP (``IPPROTO_TCP``): asyncio
    sets TCP_NODELAY only on connections accepted from such a socket, and uvicorn 0.54 creates
    its shared socket with protocol 0, so every keep-alive response after a connection's first
    waited ~40 ms for Nagle's algorithm and the client's delayed ACK (uvicorn issue #3149)."""
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("api.app:app_from_environment", factory=True, workers=workers, **options)
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.set_inheritable(True)
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d with %d workers", config.host, sock.getsockname()[1], workers
    )
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


@cli.command()
@click.argument("ocid")
@click.argument("event_type", metavar="TYPE")
@click.argument("payload", type=click.File("r"), default="-")
@click.option("--prev", help="Refuse unless the tender's last event has this leaf hash ('none' for a new tender).")
@click.pass_context
def record(ctx: click.Context, ocid: str, event_type: str, payload: Any, prev: str | None) -> None:
    """Record one event of tender OCID; PAYLOAD is a JSON file (default: standard input).

    Prints the recorded envelope once it is durably committed.
    """
    try:
        body = json.load(payload)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError("payload", f"is not JSON: {exc}") from exc
    expected = UNSET if prev is None else (None if prev.lower() == "none" else prev)
    recorded = _open(ctx).append(Submission(ocid=ocid, type=event_type, payload=body, prev=expected), now=_now())
    click.echo(
        json.dumps(
            {
                "event_id": recorded.event_id,
                "leaf_hash": recorded.leaf_hash.hex(),
                "envelope": recorded.envelope.to_json(),
            }
        )
    )


@cli.command()
@click.option("--batch-size", type=click.IntRange(min=1), help="Entries per transaction.")
@click.pass_context
def integrate(ctx: click.Context, batch_size: int | None) -> None:
    """Give pending events their log index and extend the tree; print the new checkpoint."""
    log = _open(ctx)
    settings: Settings = ctx.obj
    log.integrate_all(now=_now(), batch_size=batch_size or settings.integrate_batch)
    click.echo(log.checkpoint().to_text(), nl=False)


@cli.command()
@click.pass_context
def checkpoint(ctx: click.Context) -> None:
    """Print the log's checkpoint (C2SP tlog-checkpoint text)."""
    click.echo(_open(ctx).checkpoint().to_text(), nl=False)


@cli.group()
def proof() -> None:
    """Print RFC 9162 proofs as JSON."""


@proof.command("inclusion")
@click.argument("index", type=click.IntRange(min=0))
@click.option("--size", type=click.IntRange(min=1), help="Tree size (default: the current one).")
@click.pass_context
def proof_inclusion(ctx: click.Context, index: int, size: int | None) -> None:
    """Inclusion proof of entry INDEX."""
    log = _open(ctx)
    size = size or log.reader.tree_head().size
    path = log.reader.inclusion_proof(index, size)
    leaf = log.reader.leaf_hashes(index, index + 1)[0]
    out = {"leaf_index": index, "tree_size": size, "leaf_hash": leaf.hex(), "root": log.reader.root_at(size).hex()}
    click.echo(json.dumps({**out, "path": [p.hex() for p in path]}))


@proof.command("consistency")
@click.argument("size1", type=click.IntRange(min=0))
@click.argument("size2", type=click.IntRange(min=0), required=False)
@click.pass_context
def proof_consistency(ctx: click.Context, size1: int, size2: int | None) -> None:
    """Consistency proof from tree size SIZE1 to SIZE2 (default: the current size)."""
    log = _open(ctx)
    size2 = log.reader.tree_head().size if size2 is None else size2
    path = log.reader.consistency_proof(size1, size2)
    roots = {"root1": log.reader.root_at(size1).hex(), "root2": log.reader.root_at(size2).hex()}
    click.echo(json.dumps({"size1": size1, "size2": size2, **roots, "path": [p.hex() for p in path]}))


@cli.command()
@click.argument("start", type=click.IntRange(min=0))
@click.argument("end", type=click.IntRange(min=0))
@click.pass_context
def entries(ctx: click.Context, start: int, end: int) -> None:
    """Print log entries [START, END) as JSON Lines (index, leaf hash, envelope, payload)."""
    for entry in _open(ctx).reader.entries(start, end):
        click.echo(
            json.dumps(
                {
                    "index": entry.index,
                    "leaf_hash": entry.leaf_hash.hex(),
                    "envelope": json.loads(entry.envelope),
                    "payload": json.loads(entry.payload),
                }
            )
        )


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Record a small, realistic tender history and import a generated OCDS data set (120 tenders
    of six buyers), integrate them and verify a proof."""
    from ledger import demo as demo_data
    from ledger.core.merkle import leaf_hash
    from ledger.core.verify import verify_inclusion

    log = _open(ctx)
    try:
        log.reader.tender(demo_data.ROAD)
        click.echo("demo tenders already recorded; integrating and verifying only")
    except NotFoundError:
        # Through the procurement rules (and into the search index), each event at its own date.
        settings_: Settings = ctx.obj
        recorded = demo_data.record_demo(log, chain_id=settings_.chain_id_for_signatures)
        tenders = sorted({r.envelope.ocid for r in recorded})
        click.echo(f"recorded {len(recorded)} events of {len(tenders)} tenders: {', '.join(tenders)}")
    # Then a generated OCDS data set of a hundred-odd tenders, imported like published data.
    from ledger import demo_ocds

    imported = demo_ocds.import_demo(log, now=_now())
    click.echo(
        f"imported {imported.imported} OCDS releases of {imported.tenders} tenders"
        f" ({imported.duplicates} already there)"
    )
    log.integrate_all(now=_now())
    head = log.reader.tree_head()
    last = log.reader.entries(head.size - 1, head.size)[0]
    path = log.reader.inclusion_proof(head.size - 1, head.size)
    verify_inclusion(head.size - 1, head.size, leaf_hash(last.envelope), path, head.root)
    click.echo(f"verified: entry {head.size - 1} is included in the tree of size {head.size}")
    click.echo(log.checkpoint().to_text(), nl=False)
    settings: Settings = ctx.obj
    click.echo("anchoring the checkpoint:")
    _anchor_now(log, settings, list(settings.chains), timeout=300.0)


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=False))
@click.option("--strict", is_flag=True, help="Import nothing at all if any release is invalid.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "json", "jsonl"]),
    default="auto",
    show_default=True,
    help="json: release package(s), concatenated or not; jsonl: one package or release per line; "
    "auto: jsonl for .jsonl/.ndjson files.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def import_(ctx: click.Context, files: tuple[str, ...], strict: bool, fmt: str, as_json: bool) -> None:
    """Import OCDS 1.1 release packages: each release becomes an event of its tender.

    Files are streamed (any size, bounded memory). Invalid releases are reported one by one
    (file: release: JSON path: reason) and skipped; with --strict any of them aborts the whole
    import with nothing written. Releases imported before are skipped (duplicates).
    Exit codes: 0 everything imported (or already there), 1 some releases were invalid and
    skipped, 2 refused (--strict) or usage error, 3 database unreachable.
    """
    from pathlib import Path

    from ledger.procurement import importer

    log = _open(ctx)
    total = sum(Path(f).stat().st_size for f in files)
    started = time.monotonic()
    done_bytes = 0
    counted = [0]

    def label(_: Any) -> str:
        elapsed = max(time.monotonic() - started, 1e-6)
        return f"{counted[0]:,} releases ({counted[0] / elapsed:,.0f}/s)"

    with click.progressbar(
        length=max(total, 1), label="importing", file=sys.stderr, show_eta=True, item_show_func=label
    ) as bar:
        position = [0]

        def progress(read: int, offset: int) -> None:
            counted[0] = read
            bar.update(max(done_bytes + offset - position[0], 0))
            position[0] = max(position[0], done_bytes + offset)

        def sources() -> Any:
            nonlocal done_bytes
            for name in files:
                with open(name, "rb") as stream:
                    yield name, stream
                done_bytes += Path(name).stat().st_size

        try:
            report = importer.import_files(
                log,
                sources(),
                now=_now(),
                fmt=cast(importer.Format, fmt),
                strict=strict,
                progress=progress,
            )
        except importer.ImportRefusedError as exc:
            for problem in exc.problems:
                click.echo(f"invalid: {problem}", err=True)
            raise
    elapsed = time.monotonic() - started
    if as_json:
        click.echo(json.dumps({**report.to_json(), "seconds": round(elapsed, 3)}))
    else:
        for problem in report.problems:
            click.echo(f"invalid: {problem}", err=True)
        click.echo(
            f"imported {report.imported} releases of {report.tenders} tenders "
            f"({report.duplicates} already imported, {report.invalid} invalid) in {elapsed:.1f} s"
        )
    if report.problems:
        ctx.exit(1)


@cli.command("export")
@click.argument("what", type=click.Choice(["releases", "records", "tenders-csv", "awards-csv", "contracts-csv"]))
@click.option("--ocid", help="Only this contracting process.")
@click.option("--since", help="releases: only those dated at or after this RFC 3339 date-time (or date).")
@click.option("--until", help="releases: only those dated at or before this RFC 3339 date-time (or date).")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8", lazy=True), default="-", help="Output file.")
@click.pass_context
def export_(ctx: click.Context, what: str, ocid: str | None, since: str | None, until: str | None, output: Any) -> None:
    """Export open data: an OCDS 1.1 release or record package, or a CSV table (streamed)."""
    from ledger.core.envelope import check_ocid
    from ledger.procurement import export
    from ledger.procurement.query import parse_moment

    settings: Settings = ctx.obj
    if ocid is not None:
        check_ocid(ocid, field="--ocid")
    if (since or until) and what != "releases":
        raise InvalidArgumentError("--since", "date filters apply to release packages only")
    log = _open(ctx)
    package = export.Package(uri=f"tenderproof:{what}", published_date=_now(), publisher=settings.origin)
    chunks: Any
    if what == "releases":
        chunks = export.release_package(
            log.engine,
            package,
            ocid=ocid,
            since=parse_moment(since, field="--since", end=False),
            until=parse_moment(until, field="--until", end=True),
        )
    elif what == "records":
        chunks = export.record_package(log.engine, package, ocid=ocid)
    else:
        chunks = export.csv_rows(log.engine, what.removesuffix("-csv"), ocid=ocid)  # type: ignore[arg-type]
    for chunk in chunks:
        output.write(chunk)
    if what in ("releases", "records"):
        output.write("\n")


def _chains(settings: Settings, name: str | None) -> list[ChainSettings]:
    if name is None:
        return list(settings.chains)
    found = [chain for chain in settings.chains if chain.name == name]
    if not found:
        known = ", ".join(chain.name for chain in settings.chains)
        raise InvalidArgumentError(
            "--chain", f"no chain named {name!r} is configured (TENDERPROOF_CHAINS has: {known})"
        )
    return found


def _credentials(settings: Settings) -> Credentials:
    return Credentials(anchor_key=settings.anchor_key, keystore_password=settings.keystore_password)


def _policy(settings: Settings) -> Policy:
    return Policy(interval=settings.anchor_interval, threshold=settings.anchor_threshold, lease_ttl=settings.lease_ttl)


@cli.command()
@click.option("--chain", "chain_name", required=True, help="The configured chain to deploy on.")
@click.option("--admin", help="Admin of the contract (default: the deploying account, also made an anchorer).")
@click.pass_context
def deploy(ctx: click.Context, chain_name: str, admin: str | None) -> None:
    """Deploy the ProcurementAnchor contract and record it as the chain's contract."""
    settings: Settings = ctx.obj
    (chain,) = _chains(settings, chain_name)
    if chain.embedded:
        raise InvalidArgumentError("--chain", f"{chain.name} is the {embedded.LABEL}: it is deployed automatically")
    log = _open(ctx)
    client = service.connect(chain, _credentials(settings))
    chain_id = client.chain_id()
    if chain.chain_id is not None and chain.chain_id != chain_id:
        raise ChainConfigError(
            f"chains[{chain.name}].chain_id", f"is {chain.chain_id}, but the node is on chain {chain_id}"
        )
    address, tx_hash = service.deploy(client, admin=admin)
    instance = "genesis:" + client.genesis_hash().hex()
    store.target(log.engine, chain=chain.name, chain_id=chain_id, instance=instance, contract=address, now=_now())
    click.echo(
        json.dumps({"chain": chain.name, "chain_id": chain_id, "contract": address, "tx_hash": "0x" + tx_hash.hex()})
    )


def _anchor_json(chain: str, anchor: store.Anchor | None) -> dict[str, Any] | None:
    if anchor is None:
        return None
    return {
        "chain": chain,
        "tree_size": anchor.tree_size,
        "root_hash": anchor.root.hex(),
        "status": anchor.status,
        "tx_hash": None if anchor.tx_hash is None else "0x" + anchor.tx_hash.hex(),
        "block_number": anchor.block_number,
        "block_timestamp": anchor.block_timestamp,
        "anchor_id": anchor.anchor_id,
        "gas_used": anchor.gas_used,
        "created_at": anchor.created_at.isoformat(),
        "final_at": None if anchor.final_at is None else anchor.final_at.isoformat(),
        "error": anchor.error,
    }


@cli.command()
@click.option("--chain", "chain_name", help="Only this configured chain (default: every one).")
@click.option("--watch", is_flag=True, help="Keep running: the periodic anchoring job (interval and threshold).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the anchor to be final (0: return once sent).",
)
@click.pass_context
def anchor(ctx: click.Context, chain_name: str | None, watch: bool, timeout: float) -> None:
    """Integrate pending events and anchor the checkpoint on every chain now (one round);
    with --watch, run the periodic anchoring job until stopped."""
    settings: Settings = ctx.obj
    chains = _chains(settings, chain_name)
    log = _open(ctx)
    if watch:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        job = service.AnchoringService(
            log,
            chains,
            credentials=_credentials(settings),
            policy=_policy(settings),
            integrate_batch=settings.integrate_batch,
        )
        scheduler.run_forever(job, poll=settings.anchor_poll)
        return
    log.integrate_all(now=_now(), batch_size=settings.integrate_batch)
    _anchor_now(log, settings, chains, timeout)


def _release(anchorer: service.ChainAnchorer) -> None:
    """Give the chain back at once (a lease left behind would block the next run for its TTL)."""
    try:
        anchorer.release()
    except OperationalError as exc:
        click.echo(f"warning: could not release the lease of chain {anchorer.chain.name}: {exc.orig}", err=True)


def _anchor_now(log: Log, settings: Settings, chains: list[ChainSettings], timeout: float) -> None:
    """One anchoring round on each of ``chains``, waiting up to ``timeout`` s for finality; prints
    each chain's anchor. A failing chain does not stop the others; the first failure is raised."""
    failures: list[LedgerError] = []
    for chain in chains:
        anchorer = service.ChainAnchorer(log, chain, credentials=_credentials(settings), policy=_policy(settings))
        try:
            result = anchorer.run_round(force=True)
            deadline = time.monotonic() + timeout
            while not result.settled and time.monotonic() < deadline:
                time.sleep(0.05 if chain.embedded else 1.0)
                result = anchorer.run_round()
        except LedgerError as exc:
            said = str(exc)
            click.echo(
                f"error: {said}" if said.startswith(f"chain {chain.name}:") else f"error: chain {chain.name}: {said}",
                err=True,
            )
            failures.append(exc)
            continue
        finally:
            _release(anchorer)
        out = _anchor_json(chain.name, result.anchor) or {"chain": chain.name}
        click.echo(json.dumps({**out, "action": result.action}))
        if chain.embedded:
            click.echo(f"note: chain {chain.name} is the {embedded.LABEL}", err=True)
    if failures:
        raise failures[0]


@cli.command()
@click.option("--chain", "chain_name", help="Only this chain.")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=100, show_default=True)
@click.pass_context
def anchors(ctx: click.Context, chain_name: str | None, limit: int) -> None:
    """List anchors, newest first, as JSON Lines."""
    for listed in store.listing(_open(ctx).engine, chain=chain_name, limit=limit):
        out = _anchor_json(listed.target.chain, listed.anchor)
        assert out is not None
        click.echo(json.dumps({**out, "chain_id": listed.target.chain_id, "contract": listed.target.contract}))


@cli.group()
def keys() -> None:
    """Manage the API keys of officers and administrators (only their hashes are stored)."""


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "prefix": key.prefix,
        "officer": key.officer,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
        "last_used_at": None if key.last_used_at is None else key.last_used_at.isoformat(),
        "expires_at": None if key.expires_at is None else key.expires_at.isoformat(),
    }


@keys.command("create")
@click.option("--name", required=True, help="Who or what the key is for (shown in listings and logs).")
@click.option("--role", type=click.Choice(["officer", "admin"]), required=True, help="What the key may do.")
@click.option("--officer", help="The officer's Ethereum address (0x...) the key acts for.")
@click.option(
    "--expires-in",
    type=click.FloatRange(min=0, min_open=True),
    help="Days after which the key is refused (default: valid until revoked).",
)
@click.pass_context
def keys_create(ctx: click.Context, name: str, role: str, officer: str | None, expires_in: float | None) -> None:
    """Create an API key and print it, with its record, as JSON. The key is shown only this once."""
    from datetime import timedelta

    from . import auth

    record, plaintext = auth.create_key(
        _open(ctx).engine,
        name=name,
        role=role,
        officer=officer,
        now=_now(),
        expires_in=None if expires_in is None else timedelta(days=expires_in),
    )
    click.echo(json.dumps({**_key_json(record), "key": plaintext}))
    click.echo(
        f"warning: store the key {record.prefix} now, somewhere safe: it is shown only once and cannot be recovered",
        err=True,
    )


@keys.command("list")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@click.pass_context
def keys_list(ctx: click.Context, active: bool) -> None:
    """List API keys as JSON Lines, oldest first (never their secrets)."""
    from . import auth

    for key in auth.list_keys(_open(ctx).engine, include_revoked=not active):
        click.echo(json.dumps(_key_json(key)))


@keys.command("revoke")
@click.argument("key_id", metavar="ID", type=click.IntRange(min=1))
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke API key ID at once; print its record."""
    from . import auth

    click.echo(json.dumps(_key_json(auth.revoke_key(_open(ctx).engine, key_id, now=_now()))))


@keys.command("purge-idempotency")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Hours after which a stored response to an Idempotency-Key expires.",
)
@click.pass_context
def keys_purge_idempotency(ctx: click.Context, older_than: float) -> None:
    """Delete the responses stored for expired Idempotency-Keys; print how many."""
    from datetime import timedelta

    from . import idempotency

    deleted = idempotency.purge(_open(ctx).engine, now=_now(), ttl=timedelta(hours=older_than))
    click.echo(json.dumps({"deleted": deleted}))


@cli.command()
@click.argument("ocid")
@click.option("--chain", "chain_name", help="The chain whose anchors the bundle cites (default: the first configured).")
@click.pass_context
def bundle(ctx: click.Context, ocid: str, chain_name: str | None) -> None:
    """Print tender OCID's proof bundle (tenderproof-bundle/1), for `tenderproof verify`."""
    from ledger.bundles import build_bundle, final_anchors

    settings: Settings = ctx.obj
    chain = _chains(settings, chain_name)[0]
    log = _open(ctx)
    click.echo(json.dumps(build_bundle(log, ocid, final_anchors(log.engine, chain.name)).to_json(), indent=1))


@cli.command("verify")
@click.argument("bundle_file", metavar="BUNDLE", type=click.File("rb"))
@click.option("--rpc", help="JSON-RPC endpoint of the bundle's chain; without it the anchors are not checked.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_command(bundle_file: Any, rpc: str | None, as_json: bool) -> None:
    """Verify a proof bundle: hashes, the tender's chain of events, inclusion and consistency
    proofs, signatures and, with --rpc, every anchor against the contract. Needs no database.

    Exit 0 if valid, 1 if not (each failure named), 2 if the file is not a bundle."""
    from ledger import verifier
    from ledger.chainreader import RpcChainReader
    from ledger.core.bundle import load_bundle
    from ledger.core.errors import FormatError

    try:
        document = json.loads(bundle_file.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError("bundle", f"is not JSON: {exc}") from exc
    parsed = load_bundle(document)
    reader = RpcChainReader.at(rpc) if rpc else None
    try:
        report = verifier.verify_bundle(parsed, chain=reader)
    except (OSError, ValueError) as exc:  # requests' errors are OSErrors; a bad RPC answer a ValueError
        raise ChainUnavailableError(f"chain endpoint {rpc}: {exc}") from exc
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        _print_report(report)
    if not report.valid:
        raise click.exceptions.Exit(1)


def _print_report(report: Any) -> None:
    click.echo(f"tender {report.ocid} of log {report.origin}")
    click.echo(f"anchors: contract {report.contract} on chain {report.chain_id}")
    for e in report.events:
        where = f"index {e.index}" if e.index is not None else "not yet in the log"
        line = f"  seq {e.seq:>3}  {e.type:<20} {where:<14} {e.status.upper()}"
        if e.tree_size is not None and e.block_number is not None:
            moment = datetime.fromtimestamp(e.block_timestamp or 0, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            line += f"  tree {e.tree_size}, block {e.block_number} ({moment}), tx {e.tx_hash}"
        if e.signer:
            line += f"  signed by {e.signer}"
        if e.withheld:
            line += f"  payload withheld: {e.withheld}"
        click.echo(line)
    for failure in report.failures:
        click.echo(f"FAIL {failure}")
    pending = sum(e.status == "pending" for e in report.events)
    verdict = "VALID" if report.valid else f"INVALID ({len(report.failures)} failures)"
    click.echo(f"{verdict}: {len(report.events)} events, {pending} pending (not yet anchored)")
    if not report.chain_checked:
        click.echo("note: the anchors were NOT checked against the chain (no --rpc): only the bundle's own proofs were")


@cli.command("audit")
@click.option("--no-chain", is_flag=True, help="Do not ask the configured chains for the anchored roots.")
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True, help="Entries per read.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def audit_command(ctx: click.Context, no_chain: bool, batch_size: int, as_json: bool) -> None:
    """Recompute every leaf hash and the whole tree from the database, compare them with the
    stored heads, tiles and anchors and, for every configured chain reachable from here, with
    the root the contract holds. Names every entry, tree size, tile or anchor that disagrees.

    Exit 0 if everything agrees, 1 if anything does not."""
    from ledger import audit

    settings: Settings = ctx.obj
    log = _open(ctx)
    chain_root, chain_latest = (None, None) if no_chain else _chain_roots(settings)
    total = log.checkpoint().size
    with click.progressbar(length=total, label="auditing", file=sys.stderr, show_pos=True, show_eta=True) as bar:
        seen = 0

        def progress(done: int, _total: int) -> None:
            nonlocal seen
            bar.update(done - seen)
            seen = done

        report = audit.audit(
            log.engine,
            origin=log.origin,
            chain_root=chain_root,
            chain_latest=chain_latest,
            progress=progress,
            batch_size=batch_size,
        )
    if as_json:
        click.echo(json.dumps(_audit_json(report), indent=1))
    else:
        for finding in report.findings:
            click.echo(f"FAIL {finding}")
        if report.findings_dropped:
            click.echo(f"... and {report.findings_dropped} more findings")
        click.echo(
            f"{'OK' if report.ok else 'TAMPERED'}: {report.entries_checked} entries, {report.sizes_checked} tree heads,"
            f" {report.anchors_checked} final anchors ({report.anchors_on_chain} checked on chain,"
            f" {report.anchors_unchecked} on chains not reachable from here); tree size {report.size},"
            f" root {report.root.hex()}"
        )
    if not report.ok:
        raise click.exceptions.Exit(1)


def _chain_roots(settings: Settings) -> tuple[Any, Any]:
    """A ChainRoot and a ChainLatest over every configured JSON-RPC chain that answers; an unreachable one is
    reported on stderr and its anchors counted as unchecked. The embedded chain lives only as
    long as the process that anchored to it, so its anchors are never checkable from here."""
    from anchoring.chain import http_web3
    from ledger.audit import AnchorTarget
    from ledger.chainreader import RpcChainReader

    readers: dict[str, RpcChainReader] = {}
    for chain in settings.chains:
        if chain.embedded:
            continue
        reader = RpcChainReader(http_web3(chain))
        try:
            instance = "genesis:" + bytes(reader.w3.eth.get_block(0)["hash"]).hex()
        except (OSError, ValueError) as exc:
            click.echo(
                f"warning: chain {chain.name} ({chain.rpc_url}) unreachable, its anchors are not checked: {exc}",
                err=True,
            )
            continue
        readers[instance] = reader

    def chain_root(target: AnchorTarget, tree_size: int) -> bytes | None:
        reader = readers.get(target.instance)
        if reader is None:
            return None
        try:
            return reader.root_at(target.contract, tree_size)
        except (OSError, ValueError) as exc:
            raise ChainUnavailableError(f"chain {target.chain}: rootAt({tree_size}): {exc}") from exc

    def chain_latest(target: AnchorTarget) -> int | None:
        reader = readers.get(target.instance)
        if reader is None:
            return None
        try:
            return reader.latest_size(target.contract)
        except (OSError, ValueError) as exc:
            raise ChainUnavailableError(f"chain {target.chain}: latest(): {exc}") from exc

    return chain_root, chain_latest


def _audit_json(report: Any) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "sizes_checked": report.sizes_checked,
        "anchors_checked": report.anchors_checked,
        "anchors_on_chain": report.anchors_on_chain,
        "anchors_unchecked": report.anchors_unchecked,
        "tree_size": report.size,
        "root": report.root.hex(),
        "findings": [
            {"code": f.code, "subject": f.subject, "index": f.index, "tree_size": f.tree_size, "reason": f.reason}
            for f in report.findings
        ],
        "findings_dropped": report.findings_dropped,
    }


_EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (ChainUnavailableError, 3),
    (InvalidArgumentError, 2),
    (NotFoundError, 1),
    (ConflictError, 1),
    (VerificationError, 1),
    (LedgerError, 1),
]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        code = cli.main(args=argv, prog_name="tenderproof", standalone_mode=False)
        if isinstance(code, int):  # click.exceptions.Exit, e.g. `verify` of an invalid bundle
            return code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SettingsError as exc:  # a setting that does not even parse (e.g. TENDERPROOF_CHAINS not JSON)
        named = re.search(r'field "(\w+)"', str(exc))
        setting = f"TENDERPROOF_{named.group(1).upper()}" if named else "configuration"
        click.echo(f"error: {setting}: {exc.__cause__ or exc}", err=True)
        return 2
    except ValidationError as exc:
        for err in exc.errors():
            name = "TENDERPROOF_" + "_".join(str(p) for p in err["loc"]).upper()
            click.echo(f"error: {name}: {err['msg']}", err=True)
        return 2
    except OperationalError as exc:
        click.echo(f"error: database unreachable or failing: {str(exc.orig).strip()}", err=True)
        return 3
    except LedgerError as exc:
        click.echo(f"error: {exc}", err=True)
        return next(code for kind, code in _EXIT_CODES if isinstance(exc, kind))
    return 0


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
