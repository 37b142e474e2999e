"""``witness``: an independent witness (C2SP tlog-witness) with its own key and state."""

from __future__ import annotations

import secrets

import click


@click.group()
def witness() -> None:
    """Run or set up an independent witness of one or more logs."""


@witness.command("key")
@click.argument("name")
def witness_key(name: str) -> None:
    """Draw a new witness key named NAME (e.g. witness.example.org/w1): prints the signer key
    (secret) on the first line and the verifier key (publish it) on the second."""
    from ledger.core.cosignature import Cosigner

    cosigner = Cosigner(name, secrets.token_bytes(32))
    click.echo(cosigner.skey())
    click.echo(str(cosigner.key))


@witness.command("serve")
@click.option(
    "--db",
    "db_url",
    envvar="TENDERPROOF_WITNESS_DATABASE_URL",
    default="sqlite:///tenderproof-witness.sqlite3",
    show_default=True,
    help="The witness's own state database.",
)
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False),
    envvar="TENDERPROOF_WITNESS_KEY_FILE",
    required=True,
    help="File holding the witness signer key.",
)
@click.option(
    "--log",
    "logs",
    multiple=True,
    required=True,
    help="Verifier key of a log to witness (its name is the log's origin); repeatable.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8100, show_default=True)
def witness_serve(db_url: str, key_file: str, logs: tuple[str, ...], host: str, port: int) -> None:
    """Serve POST /add-checkpoint until stopped."""
    from pathlib import Path

    import uvicorn

    from ledger.core.cosignature import Cosigner
    from ledger.core.note import Verifier
    from witness.app import create_app
    from witness.service import Witness, open_engine

    cosigner = Cosigner.parse(Path(key_file).read_text(encoding="utf-8").strip())
    verifiers = [Verifier.parse(v) for v in logs]
    engine = open_engine(db_url)
    try:
        app = create_app(Witness(engine, cosigner, {v.name: v for v in verifiers}))
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        engine.dispose()


@witness.command("evidence")
@click.option(
    "--db",
    "db_url",
    envvar="TENDERPROOF_WITNESS_DATABASE_URL",
    default="sqlite:///tenderproof-witness.sqlite3",
    show_default=True,
)
def witness_evidence(db_url: str) -> None:
    """Print the evidence kept of refused checkpoints (forks, failed proofs) as JSON lines."""
    from sqlalchemy import select

    from witness.service import evidence, open_engine

    engine = open_engine(db_url)
    with engine.connect() as conn:
        for row in conn.execute(select(evidence).order_by(evidence.c.id)).mappings():
            import json

            click.echo(json.dumps(dict(row), sort_keys=True))
    engine.dispose()


COMMANDS = [witness]
