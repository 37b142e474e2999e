"""``--help`` answers without loading the heavy libraries a command needs only when it runs
(the database layer, the web framework, the chain libraries, the in-process EVM): what keeps the
command line fast to start (figures in bench/RESULTS-cli.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "fastapi", "web3", "eth_tester", "eth", "eth_account", "pydantic_settings", "uvicorn")
PROBE = """
import sys
from cli import main
try:
    main({args!r})
except SystemExit:
    pass
print("loaded=" + ",".join(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


@pytest.mark.parametrize("args", [["--help"], ["verify", "--help"], ["import", "--help"], ["serve", "--help"]])
def test_help_loads_nothing_heavy(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True, text=True, check=True
    )
    assert "Usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "loaded=", args


def test_the_standalone_verifier_command_loads_nothing_heavy() -> None:
    probe = "import sys\nfrom verifier.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    probe += f"print('loaded=' + ','.join(sorted(n for n in {HEAVY!r} if n in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "loaded="
