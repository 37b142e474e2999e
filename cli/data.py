"""Open data and the demo: ``import``, ``export``, ``demo``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, cast

import click

from .anchoring import anchor_and_print
from .context import Env, now, pass_env


@click.command()
@pass_env
def demo(env: Env) -> None:
    """Record a small, realistic tender history and import a generated OCDS data set (120 tenders
    of six buyers), integrate them, verify a proof and anchor the checkpoint."""
    import demo as demo_data

    settings = env.settings
    installed = demo_data.install(env.log, chain_id=settings.chain_id_for_signatures, now=now())
    if installed.recorded:
        click.echo(
            f"recorded {installed.recorded} events of {len(installed.tenders)} tenders: {', '.join(installed.tenders)}"
        )
    else:
        click.echo("demo tenders already recorded; integrating and verifying only")
    click.echo(
        f"imported {installed.imported} OCDS releases of {installed.imported_tenders} tenders"
        f" ({installed.duplicates} already there)"
    )
    size = installed.head.size
    click.echo(f"verified: entry {size - 1} is included in the tree of size {size}")
    click.echo(env.log.checkpoint().to_text(), nl=False)
    click.echo("anchoring the checkpoint:")
    anchor_and_print(env, list(settings.chains), timeout=300.0)


@click.command("import")
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
@click.option(
    "--encoding",
    default=None,
    help="The files' text encoding (e.g. iso-8859-1); default: a byte-order mark, else UTF-8, else detected.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Processes checking releases beside the one recording them (0: none); default: one per core, at most two.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_env
def import_(
    env: Env, files: tuple[str, ...], strict: bool, fmt: str, encoding: str | None, workers: int | None, as_json: bool
) -> None:
    """Import OCDS 1.0/1.1 data: each release becomes an event of its tender.

    Release packages, record packages (their releases), bare arrays, single or concatenated
    releases, JSON Lines; gzip-compressed or not; any text encoding. Files are streamed (any
    size, bounded memory). A release that breaks the OCDS schema is recorded with its problems
    as data-quality notes ("note: file: ocid release: JSON path: reason"); one the log cannot
    record is reported and skipped ("invalid: ..."); with --strict any of either aborts the
    whole import with nothing written. Releases imported before are skipped (duplicates).
    Exit codes: 0 everything imported (or already there), 1 some releases were invalid and
    skipped, 2 refused (--strict) or usage error, 3 database unreachable.
    """
    from ledger.procurement import importer

    log = env.log
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
                now=now(),
                fmt=cast(importer.Format, fmt),
                strict=strict,
                encoding=encoding,
                workers=importer.default_workers() if workers is None else workers,
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
        for problem in report.notes:
            click.echo(f"note: {problem}", err=True)
        for problem in report.problems:
            click.echo(f"invalid: {problem}", err=True)
        click.echo(
            f"imported {report.imported} releases of {report.tenders} tenders "
            f"({report.noted_releases} with data-quality notes, {report.duplicates} already imported, "
            f"{report.invalid} invalid) in {elapsed:.1f} s"
        )
        if report.personal_data:
            counts = ", ".join(f"{rule} {count}" for rule, count in sorted(report.personal_data.items()))
            click.echo(f"personal data: {counts} fields (tenderproof privacy report lists them)")
    if report.problems:
        raise click.exceptions.Exit(1)


@click.command("export")
@click.argument("what", type=click.Choice(["releases", "records", "tenders-csv", "awards-csv", "contracts-csv"]))
@click.option("--ocid", help="Only this contracting process.")
@click.option("--since", help="releases: only those dated at or after this RFC 3339 date-time (or date).")
@click.option("--until", help="releases: only those dated at or before this RFC 3339 date-time (or date).")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8", lazy=True), default="-", help="Output file.")
@pass_env
def export_(env: Env, what: str, ocid: str | None, since: str | None, until: str | None, output: Any) -> None:
    """Export open data: an OCDS 1.1 release or record package, or a CSV table (streamed)."""
    from ledger.core.envelope import check_ocid
    from ledger.core.errors import InvalidArgumentError
    from ledger.procurement import export
    from ledger.procurement.query import parse_moment

    if ocid is not None:
        check_ocid(ocid, field="--ocid")
    if (since or until) and what != "releases":
        raise InvalidArgumentError("--since", "date filters apply to release packages only")
    log = env.log
    package = export.Package(uri=f"tenderproof:{what}", published_date=now(), publisher=env.settings.origin)
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


@click.group("redflags")
def redflags_() -> None:
    """Red flags (Cardinal's indicators and the ledger's own): recompute, or read one's evidence."""


@redflags_.command("refresh")
@click.option(
    "--tenders", "tenders", is_flag=True, help="Recompute every tender's own flags too (after changing thresholds)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes reading the ledger (default: this machine's processors, up to 4, on a large ledger).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_env
def redflags_refresh(env: Env, tenders: bool, workers: int | None, as_json: bool) -> None:
    """Recompute the flags whose fences come from the whole ledger (R024, R058 per tender; R025,
    R038, R044, R048, R055 per buyer, procuring entity and tenderer) with this deployment's
    thresholds (TENDERPROOF_REDFLAGS_SETTINGS) and replace the stored ones. An import does it at
    its end; run it after recording tenders natively or after changing the thresholds."""
    from ledger.procurement import redflags

    if tenders:
        read = redflags.reevaluate_tender_flags(env.log.engine)
        click.echo(f"{read:,} tenders' own flags recomputed", err=True)
    counts = redflags.refresh_ledger_flags(env.log.engine, now=now(), workers=workers)
    if as_json:
        click.echo(json.dumps(counts, sort_keys=True))
        return
    if not counts:
        click.echo("no ledger-wide red flags raised")
    for role, by_code in sorted(counts.items()):
        click.echo(f"{role}: " + ", ".join(f"{code} {count:,}" for code, count in sorted(by_code.items())))


@redflags_.command("evidence")
@click.option("--ocid", help="A tender's flags.")
@click.option("--organisation", help="An organisation's flags (its key: scheme/id, an org-id, or name:<name>).")
@pass_env
def redflags_evidence(env: Env, ocid: str | None, organisation: str | None) -> None:
    """Print the evidence of a tender's or an organisation's flags as JSON (what the API's
    evidence download gives): fields read, thresholds or fences, rule version, log indices."""
    from ledger.procurement import redflags

    document = redflags.evidence_document(env.log.engine, ocid=ocid, organisation=organisation)
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


COMMANDS = [demo, import_, export_, redflags_]
