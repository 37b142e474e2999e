"""``tenderproof privacy``: where personal data of natural persons is in the log (docs/privacy.md)."""

from __future__ import annotations

import json
from collections import Counter

import click

from .context import Env, now, pass_env

#: Events read per query: memory stays bounded by one batch, whatever the log's size.
BATCH = 1000


@click.group("privacy")
def privacy_group() -> None:
    """Personal data in the log: which events hold it, where, under which rule."""


@privacy_group.command("report")
@click.option("--ocid", help="Only this tender's events (default: the whole log).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: the events, then the counts per rule.")
@click.option("--batch-size", type=click.IntRange(min=1), default=BATCH, show_default=True, help="Events per read.")
@pass_env
def report(env: Env, ocid: str | None, as_json: bool, batch_size: int) -> None:
    """List every event whose payload holds personal data (by the deployment's privacy rules,
    TENDERPROOF_PRIVACY_RULES): its ocid, seq, log index and type, each path and its rule; then
    the counts per rule. Streams: the log is read a batch at a time."""
    from ledger.core.envelope import check_ocid
    from ledger.procurement import privacy

    log = env.log
    if ocid is not None:
        check_ocid(ocid, field="--ocid")
        log.reader.tender_head(ocid)  # NotFoundError for an unknown tender
    per_rule: Counter[str] = Counter()
    scanned = events_marked = 0
    if as_json:
        click.echo('{"format": "tenderproof-privacy-report/1", "events": [', nl=False)
    after = 0
    while batch := log.reader.events_after(after, limit=batch_size, ocid=ocid):
        after = batch[-1].event_id
        for event in batch:
            scanned += 1
            payload, _problem = event.readable_payload
            found = privacy.marks(event.type, payload)
            if not found:
                continue
            per_rule.update(mark.rule for mark in found)
            if as_json:
                item = {
                    "ocid": event.ocid,
                    "seq": event.seq,
                    "index": event.index,
                    "type": event.type,
                    "personal_data": [mark.to_json() for mark in found],
                }
                click.echo(("\n " if events_marked == 0 else ",\n ") + json.dumps(item), nl=False)
            else:
                where = "pending" if event.index is None else f"index {event.index}"
                click.echo(f"{event.ocid} seq {event.seq} ({where}, {event.type}):")
                for mark in found:
                    click.echo(f"  {mark.path}  [{mark.rule}]")
            events_marked += 1
    counts = dict(sorted(per_rule.items()))
    if as_json:
        summary = {"events_scanned": scanned, "events_with_personal_data": events_marked, "fields_per_rule": counts}
        click.echo("\n], " + json.dumps(summary)[1:])
    else:
        shown = ", ".join(f"{rule} {count}" for rule, count in counts.items()) or "none"
        click.echo(f"{events_marked} of {scanned} events hold personal data; fields per rule: {shown}")


def _target(text: str) -> dict[str, object]:
    """``N`` (the whole payload of the entry at log index N) or ``N:/ptr,/ptr`` (those fields)."""
    index, _, fields = text.partition(":")
    if not index.isdigit():
        raise click.BadParameter(
            f"{text!r}: expected a log index, optionally ':' and JSON Pointers", param_hint="--target"
        )
    target: dict[str, object] = {"index": int(index)}
    if fields:
        target["fields"] = fields.split(",")
    return target


@privacy_group.command("withhold")
@click.option("--reference", required=True, help="The order's reference (a case number): public, in the log.")
@click.option("--authority", required=True, help="Who ordered it (a court, a data-protection authority).")
@click.option("--legal-basis", required=True, help="The law or decision it rests on.")
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    help="A log index to withhold whole (12), or with ':' the JSON Pointers of its fields (12:/parties/0/name,/x);"
    " repeatable.",
)
@pass_env
def withhold(env: Env, reference: str, authority: str, legal_basis: str, targets: tuple[str, ...]) -> None:
    """Record a withholding order (operator access to the database, as an administrator) and
    withhold its targets in the same transaction (docs/privacy.md). The order is an event of the
    log, public and provable; the withheld bytes are removed from the payloads and every copy
    derived from them. Run `tenderproof privacy purge` afterwards to remove them from the files."""
    from ledger.procurement import withholding

    order = {
        "reference": reference,
        "authority": authority,
        "legal_basis": legal_basis,
        "targets": [_target(t) for t in targets],
    }
    recorded, withheld = withholding.record_order(env.log, order, now=now())
    with env.log.engine.connect() as conn:
        index = withholding.index_of(conn, recorded.event_id)
    click.echo(
        f"order {reference!r} recorded at log index {index} ({recorded.envelope.ocid} seq {recorded.envelope.seq})"
    )
    for w in withheld:
        what = "whole payload" if w.fields is None else ", ".join(w.fields)
        click.echo(f"  withheld: index {w.index} ({w.ocid}): {what}")


@privacy_group.command("purge")
@pass_env
def purge(env: Env) -> None:
    """Remove withheld bytes from the database files: SQLite checkpoint and VACUUM, PostgreSQL
    VACUUM FULL of the payloads and derived tables (exclusive locks while it runs). Backups and
    replicas keep their own copies: docs/operations.md."""
    from ledger.store import db

    for statement in db.purge(env.log.engine):
        click.echo(statement)


COMMANDS = [privacy_group]
