"""Demo data for the embedded default and for newcomers (``tenderproof demo``): a small signed-off
tender history recorded through the procurement rules (:mod:`demo.tenders`) and a generated OCDS
data set of 120 tenders imported like published data (:mod:`demo.ocds`). All names are invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.core.errors import NotFoundError
from ledger.core.merkle import leaf_hash
from ledger.core.verify import verify_inclusion
from ledger.log import Log
from ledger.store.reader import TreeHead

from . import ocds, tenders


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    """What :func:`install` did."""

    #: Events recorded now (0 when the demo tenders were there already) and their tenders.
    recorded: int
    tenders: tuple[str, ...]
    #: OCDS releases imported now, of how many tenders, and how many were there already.
    imported: int
    imported_tenders: int
    duplicates: int
    #: The tree head after integration; its last entry's inclusion proof was verified.
    head: TreeHead


def install(log: Log, *, chain_id: int, now: datetime) -> Installed:
    """Record the demo tenders (unless they are there), import the generated OCDS data set
    (idempotent), integrate, and verify the inclusion proof of the last entry.

    ``chain_id`` is the chain of the officers' EIP-712 signing domain.
    """
    try:
        log.reader.tender(tenders.ROAD)
        done: list[str] = []
        count = 0
    except NotFoundError:
        recorded = tenders.record_demo(log, chain_id=chain_id)
        done = sorted({r.envelope.ocid for r in recorded})
        count = len(recorded)
    report = ocds.import_demo(log, now=now)
    log.integrate_all(now=now, commit_heads=True)
    head = log.reader.tree_head()
    last = log.reader.entries(head.size - 1, head.size)[0]
    verify_inclusion(
        head.size - 1,
        head.size,
        leaf_hash(last.envelope),
        log.reader.inclusion_proof(head.size - 1, head.size),
        head.root,
    )
    return Installed(
        recorded=count,
        tenders=tuple(done),
        imported=report.imported,
        imported_tenders=report.tenders,
        duplicates=report.duplicates,
        head=head,
    )
