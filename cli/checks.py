"""Proofs for others and checks of one's own: ``bundle`` and ``audit`` (``verify`` is the
verifier's own command, :mod:`verifier.cli`)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from .context import Env, pass_env

if TYPE_CHECKING:
    from audit.log import Finding


@click.command()
@click.argument("ocid")
@click.option("--chain", "chain_name", help="The chain whose anchors the bundle cites (default: the first configured).")
@click.option(
    "--format", "version", type=click.IntRange(1, 2), default=2, show_default=True, help="Bundle version (1 or 2)."
)
@click.option("--from-seq", type=click.IntRange(min=0), help="A range bundle (docs/spec.md §15.3) from this seq.")
@click.option("--to-seq", type=click.IntRange(min=0), help="A range bundle up to this seq (included).")
@pass_env
def bundle(env: Env, ocid: str, chain_name: str | None, version: int, from_seq: int | None, to_seq: int | None) -> None:
    """Print tender OCID's proof bundle (tenderproof-bundle/2), for `tenderproof verify`; with
    --from-seq/--to-seq, a range bundle of that part of its history (at most 1,000 events)."""
    from anchoring.bundles import build_bundle, final_anchors

    chain = env.chains(chain_name)[0]
    log = env.log
    from ledger.core.note import Signer

    key = env.settings.log_signing_key_text()
    signer = None if key is None else Signer.parse(key)
    target = final_anchors(log.engine, chain.name)
    built = build_bundle(log, ocid, target, version=version, signer=signer, from_seq=from_seq, to_seq=to_seq)
    doc = built.to_json()
    click.echo(json.dumps(doc, indent=1))


@click.command("audit")
@click.option("--no-chain", is_flag=True, help="Do not ask the configured chains for the anchored roots.")
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True, help="Entries per read.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_env
def audit_command(env: Env, no_chain: bool, batch_size: int, as_json: bool) -> None:
    """Recompute every leaf hash and the whole tree from the database, compare them with the
    stored heads, tiles and anchors and, for every configured chain reachable from here, with
    the root the contract holds. Names every entry, tree size, tile or anchor that disagrees.

    Exit 0 if everything agrees, 1 if anything does not."""
    from audit import chains
    from audit.log import audit

    log = env.log
    warn = lambda message: click.echo(f"warning: {message}", err=True)  # noqa: E731
    chain_root, chain_latest, chain_anchors = (
        (None, None, None) if no_chain else chains.configured(env.settings.chains, warn=warn)
    )
    with click.progressbar(
        length=log.checkpoint().size, label="auditing", file=sys.stderr, show_pos=True, show_eta=True
    ) as bar:
        seen = 0

        def progress(done: int, _total: int) -> None:
            nonlocal seen
            bar.update(done - seen)
            seen = done

        report = audit(
            log.engine,
            origin=log.origin,
            chain_root=chain_root,
            chain_latest=chain_latest,
            chain_anchors=chain_anchors,
            progress=progress,
            batch_size=batch_size,
        )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    else:
        for finding in report.findings:
            click.echo(f"FAIL {finding}")
        if any(f.code in ("restored_backup", "lost_tail") for f in report.findings):
            click.echo(
                "what to do: anchoring stops on this database. Restore a backup at least as new as the largest tree"
                " size named above, or bring the lost entries back; see docs/operations.md (Audit outcomes)"
            )
        if report.findings_dropped:
            click.echo(f"... and {report.findings_dropped} more findings")
        deep = (
            f", {report.payloads_too_deep} payloads too deep to check their form (their hashes checked)"
            if report.payloads_too_deep
            else ""
        )
        click.echo(
            f"{_verdict(report.findings, report.ok)}: {report.entries_checked} entries, {report.sizes_checked} tree heads,"
            f" {report.anchors_checked} final anchors ({report.anchors_on_chain} checked on chain,"
            f" {report.anchors_unchecked} on chains not reachable from here){deep}; tree size {report.size},"
            f" root {report.root.hex()}"
        )
    if not report.ok:
        raise click.exceptions.Exit(1)


def _verdict(findings: list[Finding], ok: bool) -> str:
    """OK, TAMPERED (rows edited), or what happened to the history as a whole (a restored older
    backup, a lost tail, a foreign root): those are not tampering with rows, and never OK."""
    if ok:
        return "OK"
    from audit.log import HISTORY_CODES

    codes = {f.code for f in findings}
    named = [label for code, label in HISTORY_CODES.items() if code in codes]
    if codes - HISTORY_CODES.keys() or not named:
        return " + ".join(["TAMPERED", *named])
    return " + ".join(named)


COMMANDS = [bundle, audit_command]
