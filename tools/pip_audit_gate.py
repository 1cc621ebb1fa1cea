"""`make audit`: pip-audit over the installed environment, gated by a reviewed ignore file.

pip-audit looks every installed distribution up in PyPI's vulnerability data (the JSON API,
one request per name and version). This gate fails the run when:

- an advisory is reported that ``.pip-audit-ignore.toml`` does not list (by its id or one of
  its aliases, for that package);
- an ignore entry lacks an id, package, reason or review date, or was last reviewed more than
  ``MAX_REVIEW_AGE_DAYS`` ago (it must be looked at again, not forgotten);
- with ``--require-service`` (or ``TRADEFLEET_AUDIT_REQUIRED=1``): a dependency could not be
  audited (pip-audit then only *skips* it and still says "No known vulnerabilities found").
  Without it, a vulnerability service that cannot be reached is reported loudly as
  "NOT AUDITED" on stderr and does not fail the run: a workplace whose package proxy serves
  packages but not PyPI's per-version JSON (or OSV) can still run its tests, and says what it
  could not check rather than claiming a clean audit. Our own editable package is not on PyPI
  and is skipped on purpose.

Run: ``python tools/pip_audit_gate.py [--report FILE]`` (``--report`` judges a saved
``pip-audit --format json`` report instead of running pip-audit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IGNORE_FILE = ROOT / ".pip-audit-ignore.toml"
MAX_REVIEW_AGE_DAYS = 180
EDITABLE = "distribution marked as editable"


@dataclass(frozen=True)
class Ignore:
    id: str
    package: str
    reason: str
    reviewed: date


@dataclass
class Verdict:
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What could not be checked (service unreachable): a failure only when it is required.
    unchecked: list[str] = field(default_factory=list)


def load_ignores(path: Path) -> tuple[list[Ignore], list[str]]:
    """The ignore entries, and one error per bad field (``ignore[i].field: ...``)."""
    if not path.exists():
        return [], []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        return [], [f"{path.name}: not TOML: {error}"]
    entries = data.get("ignore", [])
    if not isinstance(entries, list):
        return [], [f"{path.name}: `ignore` must be an array of tables ([[ignore]])"]
    ignores: list[Ignore] = []
    errors: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{path.name}: ignore[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be a table")
            continue
        bad = False
        for key in ("id", "package", "reason"):
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                errors.append(f"{where}.{key}: required, a non-empty string")
                bad = True
        reviewed = entry.get("reviewed")
        if not isinstance(reviewed, date):
            errors.append(f"{where}.reviewed: required, a TOML date (reviewed = 2026-12-01)")
            bad = True
        if not bad and isinstance(reviewed, date):
            ignores.append(
                Ignore(
                    entry["id"].strip(),
                    _canonical(entry["package"]),
                    entry["reason"].strip(),
                    reviewed,
                )
            )
    return ignores, errors


def judge(
    report: Mapping[str, Any],
    ignores: Sequence[Ignore],
    today: date,
    *,
    require_service: bool = False,
) -> Verdict:
    """Pure: what in a pip-audit JSON report fails the run, given the ignore entries."""
    verdict = Verdict()
    used: set[Ignore] = set()
    unaudited: list[str] = []
    for ignore in ignores:
        age = (today - ignore.reviewed).days
        if age > MAX_REVIEW_AGE_DAYS:
            verdict.failures.append(
                f"ignore {ignore.id} ({ignore.package}) was reviewed {age} days ago "
                f"(more than {MAX_REVIEW_AGE_DAYS}): review it again and update `reviewed`"
            )
    for dep in report.get("dependencies", []):
        name = str(dep.get("name", "?"))
        version = str(dep.get("version", ""))
        skipped = dep.get("skip_reason")
        if skipped:
            if EDITABLE in str(skipped):
                verdict.notes.append(f"{name}: skipped (editable, not on PyPI)")
            else:
                unaudited.append(f"{name}: {skipped}")
            continue
        for vuln in dep.get("vulns", []):
            ids = {str(vuln.get("id", "")), *(str(a) for a in vuln.get("aliases", []))}
            match = next(
                (i for i in ignores if i.id in ids and i.package == _canonical(name)), None
            )
            label = f"{name} {version}: {vuln.get('id')}"
            if match is not None:
                used.add(match)
                verdict.notes.append(f"{label}: ignored ({match.reason})")
                continue
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
            verdict.failures.append(
                f"{label} (fixed in: {fixes}): raise the floor in pyproject.toml, or list it "
                f"in {IGNORE_FILE.name} with a reason"
            )
    if unaudited:
        problem = (
            f"{len(unaudited)} distribution(s) could not be audited (is PyPI's JSON API "
            f"reachable?), e.g. {'; '.join(unaudited[:3])}"
        )
        (verdict.failures if require_service else verdict.unchecked).append(problem)
    for ignore in ignores:
        if ignore not in used:
            verdict.notes.append(f"ignore {ignore.id} ({ignore.package}) no longer reported")
    return verdict


def run_pip_audit() -> dict[str, Any] | None:
    """pip-audit's JSON report of this interpreter's environment; None (with why on stderr)
    when it could not run."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "audit.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--skip-editable",
                "--aliases",
                "on",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(output),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        # 0: nothing found, 1: advisories found (judged below); anything else: it did not run.
        if done.returncode not in (0, 1) or not output.exists():
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            print(
                f"pip-audit could not run (exit {done.returncode}); is PyPI's JSON API "
                f"reachable?\n{tail}",
                file=sys.stderr,
            )
            return None
        loaded: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
        return loaded


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--report", type=Path, help="judge this saved pip-audit JSON report")
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    parser.add_argument(
        "--require-service",
        action="store_true",
        default=os.environ.get("TRADEFLEET_AUDIT_REQUIRED") == "1",
        help="fail when the vulnerability service cannot be reached (default: say NOT AUDITED)",
    )
    args = parser.parse_args(argv)
    ignores, errors = load_ignores(args.ignore_file)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    if args.report is not None:
        report = json.loads(args.report.read_text(encoding="utf-8"))
    else:
        ran = run_pip_audit()
        if ran is None:
            print("pip-audit: NOT AUDITED: the audit could not run", file=sys.stderr)
            return 1 if args.require_service else 0
        report = ran
    verdict = judge(report, ignores, date.today(), require_service=args.require_service)
    audited = sum(1 for d in report.get("dependencies", []) if not d.get("skip_reason"))
    for note in verdict.notes:
        print(f"pip-audit: {note}")
    if verdict.failures:
        print(f"pip-audit: {len(verdict.failures)} problem(s):", file=sys.stderr)
        for failure in verdict.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    for unchecked in verdict.unchecked:
        print(f"pip-audit: NOT AUDITED: {unchecked}", file=sys.stderr)
    print(f"pip-audit: {audited} distribution(s) audited, no unreviewed advisory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
