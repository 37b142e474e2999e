"""Known vulnerabilities in the dependencies: ``pip-audit`` (the Python environment) and
``npm audit`` (node_modules), as ``make audit`` and CI run them.

    python tools/audit.py            # exit 1 if any known vulnerability is not in IGNORED
    python tools/audit.py --strict   # ... and also if a package or the npm registry could not be checked

A finding fails the run unless IGNORED lists it with the reason it cannot be fixed by upgrading
(each entry is reviewed when the dependency moves). Without ``--strict`` a package the
vulnerability service does not know (for example a version served by a local mirror only) or an
npm registry without the audit endpoint is reported, not failed: the check cannot be made there,
and saying so is better than pretending it passed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Vulnerability id -> why it is accepted for now. Empty: nothing is ignored today.
IGNORED: dict[str, str] = {}
#: npm advisories at or above this severity fail the run (low ones are hardhat's dev tooling noise).
NPM_LEVELS = ("moderate", "high", "critical")


def python_findings() -> tuple[list[str], list[str]]:
    """(vulnerabilities not ignored, packages that could not be audited)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--skip-editable", "--format", "json", "--progress-spinner", "off"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if not done.stdout.strip():
        return [], [f"pip-audit did not run: {done.stderr.strip()[-500:]}"]
    report = json.loads(done.stdout)
    found, unchecked = [], []
    for dependency in report["dependencies"]:
        if "skip_reason" in dependency:
            unchecked.append(f"{dependency['name']} {dependency.get('version', '')}".strip())
            continue
        for vuln in dependency.get("vulns", []):
            ids = [vuln["id"], *vuln.get("aliases", [])]
            if not any(i in IGNORED for i in ids):
                fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed version"
                found.append(f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in: {fixes})")
    return found, unchecked


def npm_findings() -> tuple[list[str], list[str]]:
    done = subprocess.run(["npm", "audit", "--json"], capture_output=True, text=True, cwd=ROOT)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [], [f"npm audit gave no report: {done.stderr.strip()[-300:]}"]
    if "vulnerabilities" not in report:  # the registry has no audit endpoint, or another error
        said = report.get("message") or report.get("error", {}).get("summary") or done.stderr.strip()[-300:]
        return [], [f"the registry's audit endpoint did not answer: {said}"]
    found = []
    for name, entry in report.get("vulnerabilities", {}).items():
        advisories = [v for v in entry.get("via", []) if isinstance(v, dict)]
        for advisory in advisories:
            ident = advisory.get("url", "").rsplit("/", 1)[-1] or str(advisory.get("source"))
            if advisory.get("severity") in NPM_LEVELS and ident not in IGNORED:
                found.append(f"{name}: {ident} {advisory.get('severity')} {advisory.get('title', '')}")
    return found, []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strict", action="store_true", help="Also fail when something could not be checked.")
    args = parser.parse_args()
    failed = False
    for name, check in (("pip-audit", python_findings), ("npm audit", npm_findings)):
        found, unchecked = check()
        for finding in found:
            print(f"VULNERABLE ({name}): {finding}")
        if unchecked:
            shown = ", ".join(unchecked[:8]) + (f" and {len(unchecked) - 8} more" if len(unchecked) > 8 else "")
            print(f"NOT CHECKED ({name}): {len(unchecked)}: {shown}")
        if not found and not unchecked:
            print(f"{name}: no known vulnerabilities")
        failed |= bool(found) or (args.strict and bool(unchecked))
    for ident, reason in IGNORED.items():
        print(f"ignored: {ident}: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
