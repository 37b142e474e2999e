"""The ``tenderproof`` command line.

One top-level handler (:func:`main`) turns domain errors into a clear message
and an exit code: 0 success, 1 a refusal or failed check, 2 a usage error
(bad argument or input), 3 the database or another service is unreachable.
Flag defaults come from the environment (see :mod:`api.settings`).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

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
    """Record a small, realistic tender history, integrate it and verify a proof."""
    from ledger import demo as demo_data
    from ledger.core.merkle import leaf_hash
    from ledger.core.verify import verify_inclusion

    log = _open(ctx)
    try:
        log.reader.tender(demo_data.ROAD)
        click.echo("demo tenders already recorded; integrating and verifying only")
    except NotFoundError:
        recorded = log.append_many(demo_data.submissions(), now=_now())
        tenders = sorted({r.envelope.ocid for r in recorded})
        click.echo(f"recorded {len(recorded)} events of {len(tenders)} tenders: {', '.join(tenders)}")
    log.integrate_all(now=_now())
    head = log.reader.tree_head()
    last = log.reader.entries(head.size - 1, head.size)[0]
    path = log.reader.inclusion_proof(head.size - 1, head.size)
    verify_inclusion(head.size - 1, head.size, leaf_hash(last.envelope), path, head.root)
    click.echo(f"verified: entry {head.size - 1} is included in the tree of size {head.size}")
    click.echo(log.checkpoint().to_text(), nl=False)


_EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (InvalidArgumentError, 2),
    (NotFoundError, 1),
    (ConflictError, 1),
    (VerificationError, 1),
    (LedgerError, 1),
]


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="tenderproof", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
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
