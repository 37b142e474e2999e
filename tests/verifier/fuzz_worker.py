"""Run the verifier command on every file of a directory, in this one process (started by
tests/verifier/test_fuzz.py under resource limits); print one JSON line per file: its exit code,
what it wrote to stderr, the seconds it took, or the traceback of a crash."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import traceback
from pathlib import Path


def main() -> None:
    from verifier.cli import verify

    for path in sorted(Path(sys.argv[1]).iterdir()):
        err, out = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        crash = None
        code: object = None
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = verify.main(args=[str(path)], prog_name="tenderproof-verify", standalone_mode=False)
        except BaseException:  # everything, to report it: this is the test of "never crashes"
            crash = traceback.format_exc()
        line = {
            "file": path.name,
            "code": code,
            "stderr": err.getvalue(),
            "seconds": time.perf_counter() - start,
            "crash": crash,
        }
        print(json.dumps(line), flush=True)
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec from the forked parent
    # (a pytest worker that has grown large), VmHWM belongs to this process's own memory.
    with open("/proc/self/status") as status:
        hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"max_rss_mb": hwm_kb / 1024}), flush=True)


if __name__ == "__main__":
    main()
