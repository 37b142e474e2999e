"""``monitor``: follow a deployment through its public read API and keep a verified mirror."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click


@click.command()
@click.argument("url")
@click.option(
    "--db",
    "db_url",
    envvar="TENDERPROOF_MONITOR_DATABASE_URL",
    default="sqlite:///tenderproof-monitor.sqlite3",
    show_default=True,
    help="The monitor's own database (SQLite or PostgreSQL URL).",
)
@click.option("--rpc", multiple=True, help="JSON-RPC endpoint of a chain the log anchors on (repeatable).")
@click.option("--chain", "chains", multiple=True, help="Anchor chain names to follow (default: the log's first).")
@click.option("--log-key", help="The log's verifier key (C2SP vkey); default: the key the log publishes, pinned.")
@click.option(
    "--once",
    is_flag=True,
    help="One round, then exit (1 if any finding other than payload_withheld_by_order is on record).",
)
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds between rounds."
)
@click.option("--webhook", help="POST every new finding (JSON) to this URL (follow mode).")
@click.option(
    "--max-unanchored-seconds",
    type=click.FloatRange(min=0),
    help="Report entries left unanchored longer than this.",
)
@click.option(
    "--mirror",
    is_flag=True,
    help="Also keep a mirror of the log in --db, which `tenderproof serve --mirror DB_URL` serves read-only.",
)
@click.option(
    "--page",
    type=click.IntRange(1, 1000),
    help="Entries per request (default: 1000 from the API, one 256-entry bundle from tiles).",
)
@click.option(
    "--source",
    type=click.Choice(["api", "tiles"]),
    default="api",
    show_default=True,
    help="Read the log through its JSON API (/api/v1/entries) or its C2SP tlog-tiles (/checkpoint, /tile/...).",
)
@click.option(
    "--parallel", type=click.IntRange(1, 32), default=4, show_default=True, help="Requests in flight during a catch-up."
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    help="A witness's verifier key (C2SP vkey, repeatable): check the log's cosigned checkpoint against it.",
)
@click.option(
    "--witness-quorum",
    type=click.IntRange(min=1),
    help="Cosignatures required of the --witness keys (default: all of them).",
)
def monitor(
    url: str,
    db_url: str,
    rpc: tuple[str, ...],
    chains: tuple[str, ...],
    log_key: str | None,
    once: bool,
    interval: float,
    webhook: str | None,
    max_unanchored_seconds: float | None,
    page: int | None,
    source: str,
    parallel: int,
    witnesses: tuple[str, ...],
    witness_quorum: int | None,
    mirror: bool,
) -> None:
    """Follow the deployment at URL: re-hash every entry and payload, rebuild the tree and the heads
    commitments, check signed checkpoints and anchors; findings are JSON lines on stdout."""
    import httpx

    from ledger.core.cosignature import CosignerKey
    from ledger.core.errors import FormatError
    from monitor import tiles
    from monitor.follow import INFORMATIONAL, PAGE, Api, Monitor
    from monitor.store import open_engine

    try:
        keys = [CosignerKey.parse(vkey) for vkey in witnesses]
    except FormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--witness") from exc
    if witness_quorum is not None and witness_quorum > len(keys):
        raise click.BadParameter(f"must be at most the {len(keys)} --witness keys given", param_hint="--witness-quorum")

    def emit(finding: dict[str, Any]) -> None:
        click.echo(json.dumps(finding, sort_keys=True))
        sys.stdout.flush()
        if webhook and not once:
            try:
                httpx.post(webhook, json=finding, timeout=10).raise_for_status()
            except httpx.HTTPError as exc:
                click.echo(f"warning: webhook {webhook}: {exc}", err=True)

    engine = open_engine(db_url)
    try:
        watcher = Monitor(
            engine,
            tiles.Tiles(url) if source == "tiles" else Api(url),
            log_key=log_key,
            readers=_readers(rpc),
            chains=chains,
            max_unanchored_seconds=max_unanchored_seconds,
            emit=emit,
            progress=lambda line: click.echo(line, err=True),
            page=page or (tiles.PAGE if source == "tiles" else PAGE),
            parallel=parallel,
            witnesses=keys,
            witness_quorum=witness_quorum,
            mirror=mirror,
        )
        while True:
            watcher.round()
            if once:
                if any(f["kind"] not in INFORMATIONAL for f in watcher.findings()):
                    raise click.exceptions.Exit(1)
                return
            time.sleep(interval)
    finally:
        engine.dispose()


def _readers(rpc: tuple[str, ...]) -> list[Any]:
    """Chain readers for ``--rpc`` (web3 is imported only when a chain is given: seconds of start-up)."""
    if not rpc:
        return []
    from verifier.chain import RpcChainReader

    return [RpcChainReader.at(u) for u in rpc]


COMMANDS = [monitor]
