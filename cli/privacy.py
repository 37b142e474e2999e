"""``tenderproof privacy``: where personal data of natural persons is in the log (docs/privacy.md)."""

from __future__ import annotations

import json
from collections import Counter

import click

from .context import Env, pass_env

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


COMMANDS = [privacy_group]
