"""Time to verify a 100-event proof bundle, without and with the chain calls.

    python bench/verify_bench.py                          # prints the figures
    python bench/verify_bench.py --write bench/RESULTS-verify.md

The bundle is real: a tender of 100 events interleaved with 900 events of other tenders in a
SQLite log, anchored every 100 entries on a local ``hardhat node`` (started and stopped here),
so the bundle holds 10 anchors and 9 consistency proofs. Verifying includes parsing the JSON
document. "With chain" adds, per anchor, ``rootAt`` and the transaction's receipt and block
over JSON-RPC on loopback.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from eth_account import Account
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anchoring import service
from anchoring.bundles import build_bundle, final_anchors
from anchoring.service import ChainAnchorer, Credentials
from ledger.core.bundle import load_bundle
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings
from tests.anchoring.nodes import CHAIN_ID, KEYS, hardhat_node
from tests.procurement.helpers import signed
from tests.recording import append_many
from verifier.chain import RpcChainReader
from verifier.check import verify_bundle

OCID = "ocds-abc123-bench-0001"
ORIGIN = "bench.tenderproof/log"
OFFICER_KEY = "0x" + "4f" * 32
OFFICER = Account.from_key(OFFICER_KEY)


def _timed(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def _signed(n: int, chain_id: int) -> Submission:
    """The tender's ``n``-th event, signed by its officer (the verifier recovers every signer)."""
    payload = {"tender": {"id": OCID, "amendment": n, "value": {"amount": 250_000 + n, "currency": "EUR"}}}
    unsigned = Submission(ocid=OCID, type="tender.amended" if n else "tender.planned", payload=payload)
    return signed(unsigned, key=OFFICER_KEY, submission_id=f"bench-{n}", origin=ORIGIN, chain_id=chain_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    with hardhat_node() as node, tempfile.TemporaryDirectory() as tmp:
        chain = ChainSettings(
            name="bench", rpc_url=node.url, chain_id=CHAIN_ID, key=SecretStr(KEYS[0]), confirmations=1
        )
        address, _ = service.deploy(service.connect(chain, Credentials()))
        chain = chain.model_copy(update={"contract": address})
        log = Log.open(f"sqlite:///{tmp}/verify.db", origin=ORIGIN)
        anchorer = ChainAnchorer(log, chain)
        for step in range(10):
            batch = [_signed(step * 10 + k, CHAIN_ID) for k in range(10)]
            batch += [
                Submission(ocid=f"ocds-abc123-other-{n % 50:03d}", type="tender.amended", payload={"n": n})
                for n in range(step * 90, step * 90 + 90)
            ]
            append_many(log, batch, now=now)
            log.integrate_all(now=now)
            result = anchorer.run_round(force=True)
            while not result.settled:
                result = anchorer.run_round()
        text = json.dumps(build_bundle(log, OCID, final_anchors(log.engine, "bench")).to_json())
        reader = RpcChainReader.at(node.url)

        def offline() -> None:
            report = verify_bundle(load_bundle(json.loads(text)))
            assert (
                report.valid and len(report.events) == 100 and all(e.signer == OFFICER.address for e in report.events)
            )

        def online() -> None:
            report = verify_bundle(load_bundle(json.loads(text)), chain=reader)
            assert report.valid and report.chain_checked

        offline()
        online()
        rows = [
            ("without chain calls", _timed(offline, args.runs)),
            ("with chain calls", _timed(online, max(5, args.runs // 3))),
        ]
        log.close()
    lines = [
        "# Verifying a proof bundle",
        "",
        f"`python bench/verify_bench.py --runs {args.runs}` on {platform.machine()}, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}. A 100-event bundle, every event signed by an officer (EIP-712), ({len(text):,} bytes) with 10 anchors and 9 consistency "
        "proofs; chain calls to a local `hardhat node` over loopback. Goal: ≤ 100 ms without chain calls.",
        "",
        "| verification | runs | median (ms) | p90 (ms) | min (ms) |",
        "|---|---|---|---|---|",
    ]
    for name, times in rows:
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        lines.append(f"| {name} | {len(times)} | {statistics.median(times):.1f} | {p90:.1f} | {times[0]:.1f} |")
    out = "\n".join(lines) + "\n"
    print(out)
    if args.write:
        args.write.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
