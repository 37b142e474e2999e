"""Anchoring: ``deploy``, ``anchor``, ``anchors``."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import click

from .context import Env, now, pass_env

if TYPE_CHECKING:
    from settings import ChainSettings


@click.command()
@click.option("--chain", "chain_name", required=True, help="The configured chain to deploy on.")
@click.option("--admin", help="Admin of the contract (default: the deploying account, also made an anchorer).")
@pass_env
def deploy(env: Env, chain_name: str, admin: str | None) -> None:
    """Deploy the ProcurementAnchor contract and record it as the chain's contract."""
    from anchoring.operations import deploy_and_record
    from anchoring.service import Credentials

    (chain,) = env.chains(chain_name)
    deployed = deploy_and_record(env.log, chain, credentials=Credentials.of(env.settings), admin=admin, now=now())
    click.echo(json.dumps(deployed.to_json()))


@click.command()
@click.option("--chain", "chain_name", help="Only this configured chain (default: every one).")
@click.option("--watch", is_flag=True, help="Keep running: the periodic anchoring job (interval and threshold).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the anchor to be final (0: return once sent). Exit code 4 while it is not final.",
)
@click.option(
    "--status", "show_status", is_flag=True, help="Only say what anchoring is doing and why it waits (JSON Lines)."
)
@pass_env
def anchor(env: Env, chain_name: str | None, watch: bool, timeout: float, show_status: bool) -> None:
    """Integrate pending events and anchor the checkpoint on every chain now (one round);
    with --watch, run the periodic anchoring job until stopped."""
    from anchoring import scheduler
    from anchoring.service import AnchoringService

    settings = env.settings
    chains = env.chains(chain_name)
    if show_status:
        from anchoring.operations import status
        from anchoring.service import Credentials

        for chain in chains:
            click.echo(json.dumps(status(env.log, chain, credentials=Credentials.of(settings))))
        return
    if watch:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        scheduler.run_forever(AnchoringService.of(env.log, settings, chains), poll=settings.anchor_poll)
        return
    env.log.integrate_all(now=now(), batch_size=settings.integrate_batch, commit_heads=True)
    anchor_and_print(env, chains, timeout)


def anchor_and_print(env: Env, chains: list[ChainSettings], timeout: float) -> None:
    """One anchoring round on each chain now, waiting up to ``timeout`` s for finality; prints each
    chain's anchor. A failing chain does not stop the others; the first failure is raised."""
    from anchoring import embedded, store
    from anchoring.errors import about_chain
    from anchoring.operations import anchor_now
    from anchoring.service import Credentials, Policy

    settings = env.settings
    failures = []
    not_final = []
    for outcome in anchor_now(
        env.log,
        chains,
        credentials=Credentials.of(settings),
        policy=Policy.of(settings),
        timeout=timeout,
        warn=lambda message: click.echo(f"warning: {message}", err=True),
    ):
        name = outcome.chain.name
        if outcome.error is not None:
            click.echo(f"error: {about_chain(name, str(outcome.error))}", err=True)
            failures.append(outcome.error)
            continue
        click.echo(json.dumps(outcome.to_json()))
        if outcome.anchor is not None and outcome.anchor.anchor.status in store.IN_FLIGHT:
            anchor = outcome.anchor.anchor
            not_final.append(
                f"error: chain {name}: the anchor of tree size {anchor.tree_size} is {anchor.status}, not final: "
                f"{outcome.action}{f' ({anchor.error})' if anchor.error and anchor.error not in outcome.action else ''}"
                f" (see `tenderproof anchor --status`)"
            )
        if outcome.chain.embedded:
            click.echo(f"note: chain {name} is the {embedded.LABEL}", err=True)
    if failures:
        raise failures[0]
    if not_final:
        for message in not_final:
            click.echo(message, err=True)
        raise click.exceptions.Exit(NOT_FINAL)


#: Exit code of `anchor` when an anchor is still in flight (sent, included) at its timeout.
NOT_FINAL = 4


@click.command()
@click.option("--chain", "chain_name", help="Only this chain.")
@click.option("--limit", type=click.IntRange(min=1, max=10_000), default=100, show_default=True)
@pass_env
def anchors(env: Env, chain_name: str | None, limit: int) -> None:
    """List anchors, newest first, as JSON Lines."""
    from anchoring import store

    for listed in store.listing(env.log.engine, chain=chain_name, limit=limit):
        click.echo(json.dumps(listed.to_json()))


@click.command("switch-contract")
@click.option("--chain", "chain_name", required=True, help="The configured chain.")
@click.option("--contract", required=True, help="The ProcurementAnchor address to anchor to from now on.")
@pass_env
def switch_contract(env: Env, chain_name: str, contract: str) -> None:
    """Switch the chain's contract (logged): checked first, refused while an anchor is in flight.
    Afterwards set the chain's `contract` setting to it (or leave it unset)."""
    from anchoring.operations import switch_contract as switch
    from anchoring.service import Credentials, Policy

    (chain,) = env.chains(chain_name)
    target = switch(
        env.log, chain, contract, credentials=Credentials.of(env.settings), policy=Policy.of(env.settings), now=now()
    )
    click.echo(json.dumps({"chain": target.chain, "chain_id": target.chain_id, "contract": target.contract}))


COMMANDS = [deploy, anchor, anchors, switch_contract]
