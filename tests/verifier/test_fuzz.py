"""Hostile input: a few thousand malformed bundles through the verifier command, in a process
with resource limits. Every one must exit 2 ("not a bundle") with a message that names where,
none may crash, take more than a few seconds or a few hundred MB (issue 15, docs/spec.md §10
step 0). A few cases (nesting 100,000 deep, invalid UTF-8, 50 MB) run each in a fresh process."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASES = [
    ROOT / "tests" / "assets" / "bundles" / "valid-v1.json",
    ROOT / "tests" / "assets" / "bundles" / "mutations" / "valid-complete.json",
    # The same in the full encoding of completeness (the first bundle/2 release).
    ROOT / "tests" / "assets" / "bundles" / "mutations-completeness1" / "valid-complete.json",
]
#: Address space of the verifier's process: the Python runtime and its libraries take ~1 GB of
#: mappings; a runaway parse of a 50 MB input would need several.
ADDRESS_SPACE = 3 * 1024**3
CPU_SECONDS = 120
MAX_RSS_MB = 400
MAX_SECONDS = 5.0  # "a few seconds", on a shared 2-core machine
#: A message naming where: "error: <field or JSON path>: <reason>".
MESSAGE = re.compile(r"^error: [^\s:]+(?:\[[0-9]+\])?[^\n]*: \S")
SURROGATE = json.loads('"\\ud800"')
HOSTILE: list[Any] = [
    10**400,  # far beyond any field
    -1,
    -(2**63),
    2**64,
    2**53,
    1.5,
    True,
    False,
    SURROGATE,
    "a" + SURROGATE,
    {},
    {"x": 1},
    [[[]]],
    "",
]
#: Members whose value a bundle may legally change to some of the values above (their content
#: is proven, not formatted): payloads and submissions (exit 1, not 2, when changed).
_FREE = ("payload", "submission")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if path and path[-1] in _FREE:
        return
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _legal(original: Any, value: Any, path: tuple[Any, ...]) -> bool:
    """Whether ``value`` at ``path`` could still be a well-formed bundle (then it is no fuzz case)."""
    last = path[-1]
    if value == original and type(value) is type(original):
        return True
    # An integer field may hold another integer in range (a proof then fails: exit 1, not 2).
    if isinstance(original, int) and not isinstance(original, bool) and type(value) is int:
        return 0 <= value <= 2**53 - 1
    # The compact completeness' base64 lists of hashes may be empty ("": no hash, a proof then fails).
    if isinstance(original, str) and last in ("path", "siblings") and value == "":
        return True
    # A pending event's index may be any integer or null; the optional members may be null.
    return last in ("checkpoint", "completeness", "other") and value is None


def cases() -> Iterator[tuple[str, bytes]]:
    rng = random.Random(15)
    for base_path in BASES:
        base = json.loads(base_path.read_text())
        paths = list(_paths(base))
        stem = base_path.parent.name + "-" + base_path.stem
        for n, path in enumerate(paths):
            original = _get(base, path)
            for m, value in enumerate(HOSTILE):
                if _legal(original, value, path) or (m % 3 != n % 3 and len(paths) > 300):
                    continue
                doc = copy.deepcopy(base)
                parent = _get(doc, path[:-1])
                parent[path[-1]] = value
                yield f"{stem}-set-{n}-{m}", json.dumps(doc).encode()
            if isinstance(path[-1], str):
                doc = copy.deepcopy(base)
                parent = _get(doc, path[:-1])
                parent[f"{path[-1]}_unknown"] = 1
                yield f"{stem}-extra-{n}", json.dumps(doc).encode()
                if path[-1] != "withheld":
                    doc = copy.deepcopy(base)
                    del _get(doc, path[:-1])[path[-1]]
                    yield f"{stem}-missing-{n}", json.dumps(doc).encode()
        text = json.dumps(base).encode()
        for k in range(40):  # truncated and byte-flipped documents
            cut = rng.randrange(1, len(text))
            yield f"{stem}-cut-{k}", text[:cut]
            at = rng.randrange(len(text))
            yield (
                f"{stem}-byte-{k}",
                text[:at] + bytes([rng.choice([0x80, 0xFF, 0xC3, 0x00])]) + text[at + 1 :],
            )
        # Out-of-range seq and "v": true inside an event, a deep payload, NaN.
        for k, (field, value) in enumerate([("seq", 2**53), ("seq", 10**30), ("seq", -5), ("v", True), ("v", 1.0)]):
            doc = copy.deepcopy(base)
            doc["events"][0]["envelope"][field] = value
            yield f"{stem}-envelope-{k}", json.dumps(doc).encode()
        yield f"{stem}-nan", text.replace(b'"block_number": ', b'"block_number": NaN, "x": ', 1)
        deep = text.replace(b'"payload": {', b'"payload": {"deep": ' + b"[" * 1000 + b"]" * 1000 + b", ", 1)
        yield f"{stem}-deep-1000", deep
    for k, raw in enumerate([b"", b"null", b"[]", b'"x"', b"1e999999", b"{" * 5, b"\xef\xbb\xbf{}", b"1" * 5000]):
        yield f"raw-{k}", raw
    base = BASES[0].read_bytes()
    yield (
        "depth-70000-in-payload",
        base.replace(b'"payload": {', b'"payload": {"d": ' + b"[" * 70_000 + b"]" * 70_000 + b",", 1),
    )
    yield "50-MB-of-nesting", b"[" * (25 * 1024**2) + b"]" * (25 * 1024**2)


def _run_worker(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("fuzz_worker.py")), str(directory)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_limits,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_thousands_of_malformed_bundles_exit_2_with_a_message(tmp_path: Path) -> None:
    made = 0
    for name, data in cases():
        (tmp_path / f"{name}.json").write_bytes(data)
        made += 1
    assert made >= 2000, made
    lines = _run_worker(tmp_path)
    *results, usage = lines
    assert len(results) == made
    crashes = [r for r in results if r["crash"]]
    assert not crashes, crashes[0]["file"] + "\n" + crashes[0]["crash"]
    wrong = [(r["file"], r["code"], r["stderr"][:200]) for r in results if r["code"] != 2]
    assert not wrong, wrong[:5]
    unnamed = [(r["file"], r["stderr"][:200]) for r in results if not MESSAGE.match(r["stderr"])]
    assert not unnamed, unnamed[:5]
    slow = max(results, key=lambda r: r["seconds"])
    assert slow["seconds"] < MAX_SECONDS, slow
    assert usage["max_rss_mb"] < MAX_RSS_MB, usage


#: Runs the verifier's command in this process, then writes the process's own peak RSS (VmHWM, in
#: kB) to the file named by $HWM_FILE: getrusage's ru_maxrss would count the forked pytest worker's
#: memory too (Linux carries it over exec).
_WITH_PEAK = """
import atexit, os, runpy, sys

def _peak() -> None:
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["HWM_FILE"], "w") as out:
        out.write(hwm)

atexit.register(_peak)
sys.argv = ["tenderproof-verify", *sys.argv[1:]]
runpy.run_module("verifier.cli", run_name="__main__")
"""


def _fresh_process(path: Path) -> tuple[int, str, float]:
    """Run ``tenderproof-verify`` on ``path`` in a new process; its exit code, stderr, peak RSS (MB)."""
    peak = path.with_suffix(".hwm")
    process = subprocess.Popen(
        [sys.executable, "-c", _WITH_PEAK, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "HWM_FILE": str(peak)},
        preexec_fn=_limits,
    )
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    rss_mb = int(peak.read_text()) / 1024 if peak.exists() else float("inf")
    return process.returncode, stderr.decode("utf-8", "replace"), rss_mb


@pytest.mark.parametrize("kind", ["depth-100000", "invalid-utf8", "50-MB"])
def test_hostile_files_in_a_fresh_process(tmp_path: Path, kind: str) -> None:
    base = BASES[0].read_bytes()
    data = {
        "depth-100000": b"[" * 100_000 + b"]" * 100_000,
        "invalid-utf8": base.replace(b"Bridge repair", b"Bridge \xff\xfe repair"),
        "50-MB": b'{"format": "tenderproof-bundle/1", "origin": "' + b"a" * (50 * 1024**2) + b'"}',
    }[kind]
    path = tmp_path / "hostile.json"
    path.write_bytes(data)
    code, stderr, rss_mb = _fresh_process(path)
    assert code == 2, stderr[-2000:]
    assert rss_mb < MAX_RSS_MB, rss_mb
    assert MESSAGE.match(stderr), stderr[:300]
    assert "Traceback" not in stderr
