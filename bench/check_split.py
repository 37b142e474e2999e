"""Where a checking worker's CPU goes, release by release (issue 18 / 20): the bench's package
(:func:`import_bench.write_package`, tender order) cut in batches as the import cuts them
(:func:`importer._raws`), then :func:`importer._check_remote` and the pickling of its result over
every batch in this one process, as a worker runs them (its collector threshold, its rules), the
best of ``--passes`` passes. Each step is timed by ``time.thread_time`` wrappers put around the
functions named (cProfile's per-call times of C functions mislead here); a step's time includes
the steps it calls. Usage: ``python bench/check_split.py --releases 20000 [--passes 3]``."""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_bench

from ledger import sequencer
from ledger.core import commitment
from ledger.procurement import importer, ocds, privacy, redflags

_SPENT: dict[str, float] = defaultdict(float)

#: (module, attribute, label): the steps timed, outermost first.
STEPS: list[tuple[Any, str, str]] = [
    (importer, "_parsed", "parse (_parsed)"),
    (importer, "check_release", "check_release (all)"),
    (importer, "_validator", "  schema (_validator().iter_errors)"),
    (privacy, "places", "  privacy marks"),
    (commitment, "commit_encoded", "  RFC 8785 + commitment"),
    (importer.keys, "keyed_digest", "  digest"),
    (ocds, "parse_datetime", "  date"),
    (importer, "_submissions", "submissions"),
    (sequencer, "chain_ahead", "chain_ahead (envelopes)"),
    (ocds, "compile_releases", "compiled release (ocdsmerge)"),
    (importer.Summary, "of", "Summary.of"),
    (importer, "_tender_rows", "tender rows (all)"),
    (importer, "state_of_summary", "  state_of_summary"),
    (importer, "projection", "  projection"),
    (importer, "awarded_rows", "  awarded rows"),
    (redflags, "rows_of", "  red flags and parties"),
    (importer.json, "dumps", "  json.dumps (every caller: the compiled text, flags...)"),
]


def _timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            _SPENT[label] += time.thread_time() - start

    return timed


class _TimedValidator:
    """The schema validator with its ``iter_errors`` timed (errors listed: the walk is the cost)."""

    def __init__(self, validator: Any, label: str) -> None:
        self.iter_errors = _timed(label, lambda value: list(validator.iter_errors(value)))


def _wrap() -> None:
    for owner, name, label in STEPS:
        found = getattr(owner, name)
        if name == "_validator":
            timed_validator = _TimedValidator(found(), label)
            setattr(importer, "_validator", lambda validator=timed_validator: validator)  # noqa: B010
        elif isinstance(owner, type):  # a classmethod: wrapped bound, put back as one
            timed = _timed(label, found)
            setattr(owner, name, classmethod(lambda cls, *a, f=timed, **k: f(*a, **k)))
        else:
            setattr(owner, name, _timed(label, found))


def batches(path: Path) -> list[importer._Batch]:
    with path.open("rb") as stream:
        return list(importer._raws([(path.name, stream)], files=[], fmt="auto", encoding=None, batch=importer.BATCH))


def one_pass(raws: list[importer._Batch], now: datetime, key: bytes, origin: str) -> tuple[float, float, int]:
    """CPU seconds of checking and of pickling, and releases checked: every other batch's tenders
    remembered apart, as two workers each remember their own (:func:`importer._checked_lately`)."""
    memories: list[list[set[str]]] = [[], []]
    checking = pickling = 0.0
    count = 0
    for number, raw in enumerate(raws):
        importer._CHECKED.clear()
        importer._CHECKED.extend(memories[number % 2])
        start = time.thread_time()
        result = importer._check_remote(raw, strict=False, now=now, key=key, origin=origin)
        middle = time.thread_time()
        pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        pickling += time.thread_time() - middle
        checking += middle - start
        memories[number % 2] = list(importer._CHECKED)
        count += len(result[0].releases)
    return checking, pickling, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=20_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--steps", action="store_true", help="time each step (wrappers cost a little)")
    parser.add_argument(
        "--batches",
        type=int,
        help="for callgrind: check the first batch, then this many once, untimed (run with 0 and with K: the "
        "difference of the two totals is K batches' instructions)",
    )
    args = parser.parse_args()
    importer._init_worker(redflags.CARDINAL_SETTINGS, privacy.RULES)
    now = datetime(2026, 12, 8, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "package.json"
        import_bench.write_package(path, releases=args.releases)
        raws = batches(path)
    if args.batches is not None:
        counted = 0
        for number, raw in enumerate(raws[: 1 + args.batches]):
            importer._CHECKED.clear()  # no tender of the batch met before, as when two workers alternate
            result = importer._check_remote(
                raw, strict=False, now=now, key=import_bench._BENCH_KEY, origin="bench.example/log"
            )
            pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
            counted += len(result[0].releases) if number else 0
        print(f"releases checked after the first batch: {counted}")
        return
    if args.steps:
        _wrap()
    best: tuple[float, float, int] | None = None
    spent: dict[str, float] = {}
    for _ in range(args.passes):
        _SPENT.clear()
        gc.collect()
        found = one_pass(raws, now, import_bench._BENCH_KEY, "bench.example/log")
        if best is None or sum(found[:2]) < sum(best[:2]):
            best, spent = found, dict(_SPENT)
    assert best is not None
    checking, pickling, count = best
    per = 1e6 / count
    print(f"releases {count}, batches {len(raws)}, best of {args.passes}, code of {Path(importer.__file__).parents[2]}")
    print(f"{'check + pickle':<40} {(checking + pickling) * per:7.1f} µs CPU a release")
    print(f"{'  _check_remote':<40} {checking * per:7.1f}")
    print(f"{'  pickle.dumps(result)':<40} {pickling * per:7.1f}")
    for _, _, label in STEPS:
        if label in spent:
            print(f"{label:<40} {spent[label] * per:7.1f}")


if __name__ == "__main__":
    main()
