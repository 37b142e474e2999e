"""The log itself: ``init``, ``record``, ``integrate``, ``checkpoint``, ``proof``, ``entries``."""

from __future__ import annotations

import json
from typing import Any

import click

from .context import Env, now, pass_env


@click.command()
@pass_env
def init(env: Env) -> None:
    """Create or upgrade the database schema and bind it to the log's origin."""
    log = env.log
    click.echo(f"log {log.origin!r} ready at {log.engine.url.render_as_string(hide_password=True)}")
    click.echo(log.checkpoint().to_text(), nl=False)


@click.command()
@click.argument("ocid")
@click.argument("event_type", metavar="TYPE")
@click.argument("payload", type=click.File("rb"), default="-")
@click.option("--prev", help="Refuse unless the tender's last event has this leaf hash ('none' for a new tender).")
@click.option(
    "--signed",
    is_flag=True,
    help="PAYLOAD is a signed submission, as the HTTP API takes it: {payload, submission, signature}.",
)
@pass_env
def record(env: Env, ocid: str, event_type: str, payload: Any, prev: str | None, signed: bool) -> None:
    """Record one event of tender OCID; PAYLOAD is a JSON file (default: standard input).

    The event goes through the same checks as a write through the HTTP API (its payload for its
    type, the officer's signature, the tender's rules); what they refuse is not recorded, and the
    message names the field. Prints the recorded envelope once it is durably committed.
    """
    from ledger.procurement.record import record as record_events

    settings = env.settings
    item = _submission(ocid, event_type, payload.read(), prev=prev, signed=signed)
    done = record_events(
        env.log,
        [item],
        now=now(),
        signatures="required" if settings.require_signatures else "optional",
        chain_id=settings.chain_id_for_signatures,
    )[0]
    click.echo(
        json.dumps({"event_id": done.event_id, "leaf_hash": done.leaf_hash.hex(), "envelope": done.envelope.to_json()})
    )


def _submission(ocid: str, event_type: str, data: bytes, *, prev: str | None, signed: bool) -> Any:
    """The submission a PAYLOAD file describes (errors name the field as the HTTP API does)."""
    from ledger.core.errors import InvalidArgumentError
    from ledger.submission import UNSET, Submission

    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgumentError("payload", f"is not JSON: {exc}") from exc
    fields: dict[str, Any] = {"payload": body}
    if signed:
        if not isinstance(body, dict) or set(body) - {"payload", "submission", "signature"} or "payload" not in body:
            raise InvalidArgumentError(
                "payload", "with --signed, must be an object of payload, submission and signature"
            )
        fields = {"payload": body["payload"], "submission": body.get("submission"), "signature": body.get("signature")}
    for name in ("payload", "submission"):
        if fields.get(name) is not None and not isinstance(fields[name], dict):
            raise InvalidArgumentError(name, f"must be a JSON object, got {type(fields[name]).__name__}")
    if fields.get("signature") is not None and not isinstance(fields["signature"], str):
        raise InvalidArgumentError("signature", "must be a string")
    expected = UNSET if prev is None else (None if prev.lower() == "none" else prev)
    return Submission(ocid=ocid, type=event_type, prev=expected, **fields)


@click.command()
@click.option("--batch-size", type=click.IntRange(min=1), help="Entries per transaction.")
@pass_env
def integrate(env: Env, batch_size: int | None) -> None:
    """Give pending events their log index and extend the tree; print the new checkpoint."""
    log = env.log
    log.integrate_all(now=now(), batch_size=batch_size or env.settings.integrate_batch)
    click.echo(log.checkpoint().to_text(), nl=False)


@click.command()
@pass_env
def checkpoint(env: Env) -> None:
    """Print the log's checkpoint (C2SP tlog-checkpoint text)."""
    click.echo(env.log.checkpoint().to_text(), nl=False)


@click.group()
def proof() -> None:
    """Print RFC 9162 proofs as JSON."""


@proof.command("inclusion")
@click.argument("index", type=click.IntRange(min=0))
@click.option("--size", type=click.IntRange(min=1), help="Tree size (default: the current one).")
@pass_env
def proof_inclusion(env: Env, index: int, size: int | None) -> None:
    """Inclusion proof of entry INDEX."""
    reader = env.log.reader
    size = size or reader.tree_head().size
    path = reader.inclusion_proof(index, size)
    leaf = reader.leaf_hashes(index, index + 1)[0]
    out = {"leaf_index": index, "tree_size": size, "leaf_hash": leaf.hex(), "root": reader.root_at(size).hex()}
    click.echo(json.dumps({**out, "path": [p.hex() for p in path]}))


@proof.command("consistency")
@click.argument("size1", type=click.IntRange(min=0))
@click.argument("size2", type=click.IntRange(min=0), required=False)
@pass_env
def proof_consistency(env: Env, size1: int, size2: int | None) -> None:
    """Consistency proof from tree size SIZE1 to SIZE2 (default: the current size)."""
    reader = env.log.reader
    size2 = reader.tree_head().size if size2 is None else size2
    path = reader.consistency_proof(size1, size2)
    roots = {"root1": reader.root_at(size1).hex(), "root2": reader.root_at(size2).hex()}
    click.echo(json.dumps({"size1": size1, "size2": size2, **roots, "path": [p.hex() for p in path]}))


@click.command()
@click.argument("start", type=click.IntRange(min=0))
@click.argument("end", type=click.IntRange(min=0))
@pass_env
def entries(env: Env, start: int, end: int) -> None:
    """Print log entries [START, END) as JSON Lines, as the read API serves them (to mirror the log)."""
    for entry in env.log.reader.entries(start, end):
        click.echo(json.dumps(entry.to_json()))


COMMANDS = [init, record, integrate, checkpoint, proof, entries]
