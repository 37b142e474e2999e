"""The red flags' results as one digest, to show that a change to how they are computed changes
nothing they say (issue 18: "results identical to the current code").

    python bench/redflags_same.py --tenders 30000 --workdir /tmp/same

Prints sha256 digests of:

- ``memory``: every generated tender's own flags (``redflags.evaluate``) and the ledger-wide
  indicators (``cardinal.ledger_indicators``) over varied generated tenders (identifiers or names,
  procuring entities, contact points, two currencies, pending awards, joint bids: more variety than
  the speed benchmark's tenders);
- ``ledger``: the stored flags after ``redflags.reevaluate_tender_flags`` and
  ``redflags.refresh_ledger_flags`` on a SQLite ledger holding the real OCDS fixtures of
  ``tests/assets/ocds`` (imported with ``tenderproof``'s importer) and the same generated tenders
  (written straight into the projection tables): ``tender_flags``, ``ledger_flags`` (without the
  time of computing), ``tender_parties``, ``tender_suppliers``, ``supplier_wins``.

Run it with the code before a change (e.g. ``PYTHONPATH=<a checkout of the old commit>``) and
after: the digests must be equal. It prints which code it ran (``ledger.__file__``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if "--here" in sys.argv:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ledger
from ledger.log import Log
from ledger.procurement import cardinal, importer, redflags
from ledger.store.schema import (
    ledger_flags,
    ocds_compiled,
    supplier_wins,
    tender_index,
    tender_parties,
    tender_suppliers,
    tenders,
)
from ledger.store.schema import tender_flags as flags_table

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "assets" / "ocds"
T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def varied(count: int, seed: int = 3) -> Iterator[tuple[str, dict[str, Any]]]:
    """Generated compiled releases with the variety the indicators read."""
    rng = random.Random(seed)
    for i in range(count):
        days = rng.randint(0, 40)
        currency = "EUR" if rng.random() < 0.9 else "USD"
        method = rng.choice(["open", "selective", "direct", "limited"])
        parties: list[dict[str, Any]] = []
        bids = []
        for b in range(rng.randint(1, 5)):
            tenderers = []
            for _ in range(2 if rng.random() < 0.03 else 1):
                n = rng.randint(1, 400)
                reference: dict[str, Any] = {"id": f"T{n}", "name": f"Tenderer {n}"}
                tenderers.append(reference)
                party: dict[str, Any] = {"id": f"T{n}", "name": f"Tenderer {n}", "roles": ["tenderer"]}
                if n % 3 == 0:
                    party["identifier"] = {"scheme": "XI-TEST", "id": str(1000 + n) if n % 9 else "1"}
                party["address"] = {"streetAddress": f"Street {rng.randint(1, 300)}", "locality": "Town"}
                if rng.random() < 0.3:
                    party["contactPoint"] = {"email": f"c{rng.randint(1, 200)}@x.test", "name": "Office"}
                parties.append(party)
            bids.append(
                {
                    "id": f"b{b}",
                    "status": rng.choice(["valid", "valid", "valid", "disqualified", "withdrawn"]),
                    "date": f"2026-03-{min(28, 1 + days + rng.choice([-1, -1, 0, 1])):02d}T10:00:00Z",
                    "value": {"amount": float(rng.choice([1000, 1000, 1050, 1100, 1500, 3000])), "currency": currency},
                    "tenderers": tenderers,
                }
            )
        valid = [b for b in bids if b["status"] == "valid"] or bids
        winner = min(valid, key=lambda b: b["value"]["amount"])
        awards = [
            {
                "id": "a1",
                "status": "pending" if rng.random() < 0.05 else "active",
                "value": winner["value"],
                "suppliers": winner["tenderers"],
                "date": f"2026-04-{rng.randint(1, 28):02d}T00:00:00Z",
                "items": [
                    {"id": str(k), "classification": {"scheme": "UNSPSC", "id": f"{rng.randint(10, 40)}101500"}}
                    for k in range(rng.randint(1, 3))
                ],
            }
        ]
        if rng.random() < 0.05:
            awards.append({"id": "a2", "status": "active", "suppliers": bids[0]["tenderers"]})
        buyer = i % 300
        ocid = f"ocds-same00-{i}"
        compiled: dict[str, Any] = {
            "ocid": ocid,
            "buyer": {"id": f"B{buyer}", "name": f"Buyer {buyer}"},
            "tender": {
                "procurementMethod": method,
                "numberOfTenderers": len(bids),
                "value": {"amount": float(rng.choice([900, 1200, 5000])), "currency": currency},
                "tenderPeriod": {
                    "startDate": "2026-03-01T00:00:00Z",
                    "endDate": f"2026-03-{min(28, 1 + days):02d}T00:00:00Z",
                },
            },
            "bids": {"details": bids},
            "parties": [*parties, {"id": f"B{buyer}", "name": f"Buyer {buyer}", "roles": ["buyer"]}],
            "awards": awards,
        }
        if rng.random() < 0.3:
            compiled["tender"]["procuringEntity"] = {"id": f"P{i % 50}", "name": f"Entity {i % 50}"}
        yield ocid, compiled


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=sorted).encode()).hexdigest()


def in_memory(count: int) -> str:
    own = [(ocid, redflags.evaluate(compiled)) for ocid, compiled in varied(count)]
    return digest([own, cardinal.ledger_indicators(varied(count), redflags.CARDINAL_SETTINGS)])


def write_generated(log: Log, count: int) -> None:
    """The generated tenders straight into the projection tables (as an import leaves them)."""
    batch: dict[str, list[dict[str, Any]]] = {"tenders": [], "index": [], "compiled": []}

    def flush() -> None:
        with log.engine.begin() as conn:
            conn.execute(tenders.insert(), batch["tenders"])
            conn.execute(tender_index.insert(), batch["index"])
            conn.execute(ocds_compiled.insert(), batch["compiled"])
        for rows in batch.values():
            rows.clear()

    for ocid, compiled in varied(count):
        state = importer.state_of_compiled(ocid, compiled, [compiled])
        batch["tenders"].append({"ocid": ocid, "created_at": T0, "updated_at": T0, "event_count": 1})
        batch["index"].append(
            {
                "ocid": ocid,
                "buyer_id": state.buyer_id,
                "status": "active",
                "suppliers": "",
                "search_text": "",
                "listed_at": T0,
                "updated_at": T0,
                "state": state.to_json(),
            }
        )
        batch["compiled"].append({"ocid": ocid, "compiled": json.dumps(compiled), "last_date": "", "summary": "{}"})
        if len(batch["tenders"]) == 2000:
            flush()
    if batch["tenders"]:
        flush()


def in_ledger(count: int, workdir: Path, workers: int | None) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "same.sqlite3"
    path.unlink(missing_ok=True)
    log = Log.open(f"sqlite:///{path}", origin="tenderproof.test/log")
    try:
        for fixture in sorted(FIXTURES.glob("*.json")):
            with fixture.open("rb") as stream:
                try:
                    importer.import_files(log, [(fixture.name, stream)], now=T0)
                except Exception as exc:  # a fixture the import refuses (a real bad-input case)
                    print(f"{fixture.name}: not imported ({type(exc).__name__})", file=sys.stderr)
        write_generated(log, count)
        redflags.reevaluate_tender_flags(log.engine)
        if workers is None:
            redflags.refresh_ledger_flags(log.engine, now=T0)
        else:  # the code after issue 18's process pool
            redflags.refresh_ledger_flags(log.engine, now=T0, workers=workers)  # type: ignore[call-arg,unused-ignore]
        out = {}
        with log.engine.connect() as conn:
            for name, table in (
                ("tender_flags", flags_table),
                ("ledger_flags", ledger_flags),
                ("tender_parties", tender_parties),
                ("tender_suppliers", tender_suppliers),
                ("supplier_wins", supplier_wins),
            ):
                columns = [c for c in table.c if c.name not in ("id", "computed_at")]
                rows = sorted(
                    tuple(str(v) for v in row) for row in conn.execute(table.select().with_only_columns(*columns))
                )
                out[name] = (len(rows), digest(rows))
        return json.dumps(out, sort_keys=True)
    finally:
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenders", type=int, default=30_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/redflags-same"))
    parser.add_argument("--workers", type=int, help="refresh the ledger-wide flags with this many processes")
    parser.add_argument("--here", action="store_true", help="use this checkout's ledger package")
    args = parser.parse_args()
    print(f"code: {ledger.__file__}")
    print(f"memory: {in_memory(args.tenders)}")
    print(f"ledger: {in_ledger(args.tenders, args.workdir, args.workers)}")


if __name__ == "__main__":
    main()
