"""The ``tenderproof`` command line.

One top-level handler (:func:`main`) turns domain errors into a clear message and an exit code:
0 success, 1 a refusal or failed check, 2 a usage error (bad argument, input or setting; the
message names it), 3 the database or a chain endpoint is unreachable. Flag defaults come from the
environment (:mod:`settings`).

The commands live in one module per group (:mod:`cli.log`, :mod:`cli.serve`,
:mod:`cli.anchoring`, :mod:`cli.data`, :mod:`cli.keys`, :mod:`cli.checks`, :mod:`cli.privacy`); each imports what it
needs when it runs, so ``tenderproof --help`` loads no database, web or chain library.
"""

from __future__ import annotations

import re
import sys

import click

from ledger.core.errors import ConflictError, InvalidArgumentError, LedgerError, NotFoundError, VerificationError
from verifier.cli import verify
from verifier.errors import ChainUnavailableError as EndpointUnavailableError

from . import anchoring, checks, data, keys, log, privacy, serve
from . import monitor as monitor_cli
from . import witness as witness_cli
from .context import Env


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
    env = Env({"database_url": database_url, "origin": origin})
    ctx.obj = env
    ctx.call_on_close(env.close)


for _group in (log, serve, anchoring, data, keys, checks, privacy, monitor_cli, witness_cli):
    for _command in _group.COMMANDS:
        cli.add_command(_command)
cli.add_command(verify)

#: Exit codes of the domain's errors, most specific first.
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
        code = cli.main(args=argv, prog_name="tenderproof", standalone_mode=False)
        if isinstance(code, int):  # click.exceptions.Exit, e.g. `verify` of an invalid bundle
            return code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        return code
    return 0


def _exit_code(exc: Exception) -> int | None:
    """Say what went wrong and return the exit code, or ``None`` for a bug (raised as it is).

    The error classes of a library are looked at only if that library was loaded: an error of a
    library that no command imported cannot have happened (and ``--help`` stays fast)."""
    if "pydantic_settings" in sys.modules:
        from pydantic import ValidationError
        from pydantic_settings import SettingsError

        if isinstance(exc, SettingsError):  # a setting that does not even parse (e.g. TENDERPROOF_CHAINS not JSON)
            named = re.search(r'field "(\w+)"', str(exc))
            setting = f"TENDERPROOF_{named.group(1).upper()}" if named else "configuration"
            click.echo(f"error: {setting}: {exc.__cause__ or exc}", err=True)
            return 2
        if isinstance(exc, ValidationError):
            for err in exc.errors():
                name = "TENDERPROOF_" + "_".join(str(p) for p in err["loc"]).upper()
                click.echo(f"error: {name}: {err['msg']}", err=True)
            return 2
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            click.echo(f"error: database unreachable or failing: {str(exc.orig).strip()}", err=True)
            return 3
    unreachable: tuple[type[Exception], ...] = (EndpointUnavailableError,)
    if "anchoring.errors" in sys.modules:
        from anchoring.errors import ChainUnavailableError

        unreachable += (ChainUnavailableError,)
    if isinstance(exc, unreachable):
        click.echo(f"error: {exc}", err=True)
        return 3
    if isinstance(exc, LedgerError):
        click.echo(f"error: {exc}", err=True)
        return next(code for kind, code in _EXIT_CODES if isinstance(exc, kind))
    return None


def entrypoint() -> None:
    sys.exit(main())
