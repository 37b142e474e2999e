"""Appending straight to the log, around the procurement rules.

Only for tests and benchmarks of the log itself (the sequencer, the store, the reader, the
anchoring service, the verifier), which need entries of any shape. The product records through
:func:`ledger.procurement.record.record` (and the OCDS importer), never this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ledger import sequencer
from ledger.log import Log
from ledger.submission import Recorded, Submission


def append(log: Log, item: Submission, *, now: datetime) -> Recorded:
    """One event, durable when this returns (:func:`ledger.sequencer.append`)."""
    return sequencer.append(log.engine, item, origin=log.origin, now=now)


def append_many(log: Log, items: Sequence[Submission], *, now: datetime) -> list[Recorded]:
    """Events, atomically (:func:`ledger.sequencer.append_many`)."""
    return sequencer.append_many(log.engine, items, origin=log.origin, now=now)
