"""Time from an event's commit to its anchor being final, on a local JSON-RPC node with 1 s blocks.

    python bench/anchor_bench.py                        # 10 samples, 1 and 3 confirmations
    python bench/anchor_bench.py --samples 20 --write bench/RESULTS-anchor.md

The node is ``hardhat node`` from npm (started and stopped here) mining a block every second
(interval mining, no automine), as a real chain does. Each sample records one event (the clock
starts when ``append`` returns: the event is durable), then runs the anchoring job as it runs in
production (``AnchoringService.tick``: integrate, then one round per chain) every ``--poll``
seconds with threshold 1, until an anchor covering the event is final.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anchoring import service, store
from anchoring.service import AnchoringService, Credentials, Policy
from ledger.log import Log
from ledger.submission import Submission
from settings import ChainSettings
from tests.anchoring.nodes import CHAIN_ID, KEYS, hardhat_node
from tests.recording import append


def _sample(job: AnchoringService, log: Log, n: int, poll: float) -> float:
    append(log, Submission(ocid="ocds-abc123-bench", type="tender.amended", payload={"n": n}), now=datetime.now(UTC))
    committed = time.perf_counter()
    target = log.reader.tree_head().size + log.reader.pending_count()
    while True:
        for result in job.tick():
            anchor = result.anchor
            if anchor is not None and anchor.status == store.FINAL and anchor.tree_size >= target:
                return time.perf_counter() - committed
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--confirmations", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--block-time", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=0.2)
    parser.add_argument("--write", type=Path, help="Also write the results (Markdown) to this file.")
    args = parser.parse_args(argv)

    lines = [
        "# Anchoring: time from commit to final",
        "",
        f"`python bench/anchor_bench.py --samples {args.samples}` on {platform.machine()}, Python "
        f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}. Local `hardhat node` mining a block every "
        f"{args.block_time:g} s; the anchoring job polls every {args.poll:g} s with threshold 1; SQLite log.",
        "",
        "| confirmations | samples | median (s) | p90 (s) | min (s) | max (s) |",
        "|---|---|---|---|---|---|",
    ]
    with hardhat_node() as node, tempfile.TemporaryDirectory() as tmp:
        node.automine(False)
        node.rpc("evm_setIntervalMining", int(args.block_time * 1000))
        for confirmations in args.confirmations:
            chain = ChainSettings(
                name="bench", rpc_url=node.url, chain_id=CHAIN_ID, key=SecretStr(KEYS[0]), confirmations=confirmations
            )
            address, _ = service.deploy(service.connect(chain, Credentials()))
            chain = chain.model_copy(update={"contract": address})
            log = Log.open(f"sqlite:///{tmp}/bench-{confirmations}.db", origin="bench.tenderproof/log")
            job = AnchoringService(log, [chain], policy=Policy(threshold=1, interval=3600))
            _sample(job, log, -1, args.poll)  # the first anchor of a contract costs more; not counted
            times = sorted(_sample(job, log, n, args.poll) for n in range(args.samples))
            p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
            row = (
                f"| {confirmations} | {len(times)} | {statistics.median(times):.2f} | {p90:.2f} "
                f"| {times[0]:.2f} | {times[-1]:.2f} |"
            )
            print(row, flush=True)
            lines.append(row)
            log.close()
    lines += [
        "",
        "An anchor needs its transaction mined (the next block: 0 to 1 block time, plus the poll) and then",
        "`confirmations - 1` more blocks; so the expected time is about `confirmations` block times plus",
        "one poll interval and the round trips of a round (integrate, `eth_estimateGas`, sign, send, receipts).",
    ]
    text = "\n".join(lines) + "\n"
    if args.write:
        args.write.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
