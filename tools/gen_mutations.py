"""Save the issue-15 mutation corpus under tests/assets/bundles/mutations/ (for the browser's
verifier tests too): a valid complete v2 bundle and mutations of it, with index.json saying the
outcome every verifier must give offline (no chain).

    python tools/gen_mutations.py

The bundles come from a fresh log anchored on an in-process EVM (tests/verifier/corpus.py), so
hashes and times differ at each run; tests/verifier/test_mutations.py checks the saved outcomes.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.verifier import corpus  # noqa: E402

OUT = ROOT / "tests" / "assets" / "bundles" / "mutations"
SAVED = (
    "anchored-event-rewritten-relabelled-pending",
    "every-event-pending",
    "empty-bundle",
    "tail-dropped-1",
    "tail-dropped-2",
    "tail-dropped-all-but-first",
    "head-replaced-by-older-head",
    "commitment-from-another-checkpoint",
    "forged-commitment",
    "signer-never-registered",
    "signer-revoked-before-signing",
    "range-passed-off-as-whole",
    "range-total-understated",
    "range-before-rewritten",
    "range-head-rewritten-pending",
    # Issue 21: payloads and fields dropped without an order of the log that withholds them.
    "payload-dropped-with-a-reason",
    "payload-dropped-unknown-order",
    "payload-dropped-order-of-another-event",
    "order-inclusion-proof-broken",
    "field-withheld-without-order",
)
#: Mutations whose history stays whole (their fault is the signer, or a withheld payload or field).
WHOLE = ("signer-", "payload-dropped-", "order-", "field-withheld-")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        c = corpus.build(Path(tmp) / "log.db")
        try:
            made = corpus.mutations(c)
            OUT.mkdir(parents=True, exist_ok=True)
            cases = [{"file": "valid-complete.json", "outcome": "not checked", "complete": True, "reason": None}]
            (OUT / "valid-complete.json").write_text(json.dumps(c.valid, indent=1) + "\n")
            # A valid range bundle: verifies, and is never called complete.
            cases.append({"file": "valid-range.json", "outcome": "not checked", "complete": False, "reason": None})
            (OUT / "valid-range.json").write_text(json.dumps(c.ranged, indent=1) + "\n")
            # A bundle with a payload and a field withheld by real orders: verifies, reports them.
            cases.append({"file": "valid-withheld.json", "outcome": "not checked", "complete": True, "reason": None})
            (OUT / "valid-withheld.json").write_text(json.dumps(c.withheld, indent=1) + "\n")
            for name in SAVED:
                doc, phrase = made[name]
                (OUT / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
                complete = name.startswith(WHOLE)  # a whole history, with another fault
                cases.append({"file": f"{name}.json", "outcome": "invalid", "complete": complete, "reason": phrase})
            # A payload dropped with no word of why: not even a bundle (the command line exits 2; the
            # browser reads on and refuses the event, the history whole).
            name = "payload-dropped-no-withheld"
            (OUT / f"{name}.json").write_text(json.dumps(corpus.payload_dropped(c.withheld), indent=1) + "\n")
            cases.append({"file": f"{name}.json", "outcome": "invalid", "complete": True, "reason": corpus.NOT_READ})
            index = {
                "format": "tenderproof-mutations/1",
                "note": "outcome is what a verifier must say offline (no chain endpoint); reason is a phrase of"
                " the Python verifier's failure (another verifier may word it differently, the outcome must match)",
                "cases": cases,
            }
            (OUT / "index.json").write_text(json.dumps(index, indent=1) + "\n")
        finally:
            c.log.close()
    print(f"wrote {len(SAVED) + 4} bundles to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
