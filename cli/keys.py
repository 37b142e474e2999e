"""API keys of officers and administrators: ``keys create | list | revoke | purge-idempotency``;
and the log's checkpoint signing key: ``keys log-signing-key``."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from .context import Env, now, pass_env


@click.group()
def keys() -> None:
    """Manage the API keys of officers and administrators (only their hashes are stored)."""


@keys.command("create")
@click.option("--name", required=True, help="Who or what the key is for (shown in listings and logs).")
@click.option("--role", type=click.Choice(["officer", "admin"]), required=True, help="What the key may do.")
@click.option("--officer", help="The officer's Ethereum address (0x...) the key acts for.")
@click.option(
    "--expires-in",
    type=click.FloatRange(min=0, min_open=True),
    help="Days after which the key is refused (default: valid until revoked).",
)
@pass_env
def keys_create(env: Env, name: str, role: str, officer: str | None, expires_in: float | None) -> None:
    """Create an API key and print it, with its record, as JSON. The key is shown only this once."""
    from api import auth

    record, plaintext = auth.create_key(
        env.log.engine,
        name=name,
        role=role,
        officer=officer,
        now=now(),
        expires_in=None if expires_in is None else timedelta(days=expires_in),
    )
    click.echo(json.dumps({**record.to_json(), "key": plaintext}))
    click.echo(
        f"warning: store the key {record.prefix} now, somewhere safe: it is shown only once and cannot be recovered",
        err=True,
    )


@keys.command("list")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@pass_env
def keys_list(env: Env, active: bool) -> None:
    """List API keys as JSON Lines, oldest first (never their secrets)."""
    from api import auth

    for key in auth.list_keys(env.log.engine, include_revoked=not active):
        click.echo(json.dumps(key.to_json()))


@keys.command("revoke")
@click.argument("key_id", metavar="ID", type=click.IntRange(min=1))
@pass_env
def keys_revoke(env: Env, key_id: int) -> None:
    """Revoke API key ID at once; print its record."""
    from api import auth

    click.echo(json.dumps(auth.revoke_key(env.log.engine, key_id, now=now()).to_json()))


@keys.command("purge-idempotency")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Hours after which a stored response to an Idempotency-Key expires.",
)
@pass_env
def keys_purge_idempotency(env: Env, older_than: float) -> None:
    """Delete the responses stored for expired Idempotency-Keys; print how many."""
    from api import idempotency

    deleted = idempotency.purge(env.log.engine, now=now(), ttl=timedelta(hours=older_than))
    click.echo(json.dumps({"deleted": deleted}))


@keys.command("log-signing-key")
@click.option("--name", help="The key's name (default: the log's origin).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="File to write the signer key to (created with mode 0600; an existing file is never overwritten).",
)
@pass_env
def keys_log_signing_key(env: Env, name: str | None, out: str) -> None:
    """Make the Ed25519 key that signs the log's checkpoints (C2SP signed notes): the secret signer
    key goes to --out (point TENDERPROOF_LOG_SIGNING_KEY_FILE at it), the verifier key to stdout
    (publish it; it is served at /.well-known/tenderproof/checkpoint-key)."""
    import os
    import secrets

    from ledger.core.note import Signer

    signer = Signer(name or env.settings.origin, secrets.token_bytes(32))
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.UsageError(f"--out: {out} exists; a signing key is never overwritten") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(signer.skey() + "\n")
    click.echo(str(signer.verifier))


COMMANDS = [keys]
