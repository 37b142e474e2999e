"""The verifier's command: ``tenderproof-verify BUNDLE [--rpc URL]``, also ``tenderproof verify``
(the same command object, so both give the same results and exit codes).

Exit codes: 0 the bundle is valid, 1 it is not (each failure named), 2 the input is not a bundle
(or a usage error), 3 the chain endpoint could not be asked (and nothing else was wrong: a bundle
whose own proofs fail is invalid whatever the chain).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from ledger.core.errors import LedgerError

from .errors import BundleError, ChainUnavailableError

#: Exit codes of the command.
VALID, INVALID, NOT_A_BUNDLE, CHAIN_UNAVAILABLE = 0, 1, 2, 3


def _endpoint(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"must be an http:// or https:// JSON-RPC URL, got {value!r}")
    return value


@click.command("verify", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("bundle_file", metavar="BUNDLE", type=click.File("rb"))
@click.option(
    "--rpc", callback=_endpoint, help="JSON-RPC endpoint of the bundle's chain; without it the anchors are not checked."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds each chain call may take before the endpoint counts as unavailable.",
)
@click.option(
    "--log-key",
    help="The log's checkpoint verifier key (C2SP vkey name+hash+base64), or a file holding it: the bundle's"
    " signed checkpoint must carry its valid signature.",
)
@click.option(
    "--witness",
    "witnesses",
    multiple=True,
    help="A witness's cosigner key (C2SP vkey, type 0x04), or a file holding it; repeatable: the bundle's"
    " signed checkpoint must carry their cosignatures (see --witness-quorum).",
)
@click.option(
    "--witness-quorum",
    type=click.IntRange(min=0),
    help="How many of the --witness keys must have cosigned (default: all of them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(
    ctx: click.Context,
    bundle_file: Any,
    rpc: str | None,
    timeout: float,
    log_key: str | None,
    witnesses: tuple[str, ...],
    witness_quorum: int | None,
    as_json: bool,
) -> None:
    """Verify a proof bundle: hashes, the tender's chain of events, inclusion and consistency
    proofs, signatures and, with --rpc, every anchor against the contract. Needs no database.

    Exit 0 if valid, 1 if not (each failure named), 2 if the file is not a bundle, 3 if the
    chain endpoint could not be asked."""
    from .bundle import read_bundle
    from .chain import RpcChainReader
    from .check import verify_bundle
    from .signed import checkpoint_check

    try:
        wanted = log_key is not None or witnesses
        check = checkpoint_check(log_key, witnesses, witness_quorum) if wanted else None
    except LedgerError as exc:
        click.echo(f"error: {'--witness' if witnesses else '--log-key'}: {exc}", err=True)
        ctx.exit(NOT_A_BUNDLE)
    try:
        bundle = read_bundle(bundle_file.read())
        chain = RpcChainReader.at(rpc, timeout=timeout) if rpc else None
        report = verify_bundle(bundle, chain=chain, check_checkpoint=check)
    except BundleError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(NOT_A_BUNDLE)
    except ChainUnavailableError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(CHAIN_UNAVAILABLE)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        _print_report(report)
    if not report.valid:
        ctx.exit(INVALID)
    if report.chain_error is not None:
        click.echo(f"error: {report.chain_error}", err=True)
        ctx.exit(CHAIN_UNAVAILABLE)
    ctx.exit(VALID)


def _print_report(report: Any) -> None:
    click.echo(f"tender {report.ocid} of log {report.origin} (tenderproof-bundle/{report.version})")
    click.echo(f"anchors: contract {report.contract} on chain {report.chain_id}")
    if report.range is not None:
        click.echo(f"range: {report.scope} (a range bundle: never the complete history)")
    for e in report.events:
        where = f"index {e.index}" if e.index is not None else "not yet in the log"
        line = f"  seq {e.seq:>3}  {e.type:<20} {where:<14} {e.outcome.upper()}"
        if e.tree_size is not None and e.block_number is not None:
            moment = datetime.fromtimestamp(e.block_timestamp or 0, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            line += f"  tree {e.tree_size}, block {e.block_number} ({moment}), tx {e.tx_hash}"
        if e.signer:
            line += f"  signed by {e.signer}" + (f", officer {e.officer}" if e.officer else "")
        if e.withheld:
            line += f"  payload withheld: {e.withheld}"
        for pointer, order in getattr(e, "withheld_fields", {}).items():
            line += f"  field {pointer} withheld under the order at log index {order}"
        click.echo(line)
    for failure in report.failures:
        click.echo(f"FAIL {failure}")
    pending = sum(e.status == "pending" for e in report.events)
    click.echo(f"history: {report.completeness}")
    if report.version >= 2:
        click.echo(f"checkpoint: {report.checkpoint}")
    outcome = report.outcome
    count = len(report.failures)
    verdict = f"INVALID ({count} failure{'' if count == 1 else 's'})" if outcome == "invalid" else outcome.upper()
    click.echo(f"{verdict}: {len(report.events)} events, {pending} pending (not yet anchored)")
    if not report.chain_checked:
        click.echo("note: the anchors were NOT checked against the chain (no --rpc): only the bundle's own proofs were")
    elif report.chain_error is not None:
        click.echo(f"note: the anchors were NOT checked: {report.chain_error}")
    if outcome == "verified":
        click.echo(
            "verified means: each event shown is unchanged since it was recorded and anchored; not that what it"
            " records (an award, a price) was right"
        )


def main(argv: list[str] | None = None) -> None:
    """``tenderproof-verify``: the same command as ``tenderproof verify``, installed on its own."""
    verify.main(args=argv, prog_name="tenderproof-verify")


if __name__ == "__main__":
    main()
