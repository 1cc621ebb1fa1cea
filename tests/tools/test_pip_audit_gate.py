"""`make audit`'s gate (tools/pip_audit_gate.py): what in a pip-audit report fails the run."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 2)


def _gate() -> ModuleType:
    path = ROOT / "tools" / "pip_audit_gate.py"
    spec = importlib.util.spec_from_file_location("pip_audit_gate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pip_audit_gate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gate = _gate()


def _report(*deps: dict[str, Any]) -> dict[str, Any]:
    return {"dependencies": list(deps), "fixes": []}


VULN = {
    "name": "aiohttp",
    "version": "3.9.0",
    "vulns": [
        {
            "id": "PYSEC-2024-24",
            "fix_versions": ["3.9.2"],
            "aliases": ["CVE-2024-23334", "GHSA-5h86-8mv2-jq9f"],
            "description": "directory traversal",
        }
    ],
}
CLEAN = {"name": "pluggy", "version": "1.5.0", "vulns": []}
EDITABLE = {"name": "tradefleet", "skip_reason": "distribution marked as editable"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".pip-audit-ignore.toml"
    path.write_text(text)
    return path


def test_an_unlisted_advisory_fails_naming_package_id_and_fix() -> None:
    verdict = gate.judge(_report(CLEAN, VULN, EDITABLE), [], TODAY)
    assert len(verdict.failures) == 1
    assert "aiohttp 3.9.0: PYSEC-2024-24 (fixed in: 3.9.2)" in verdict.failures[0]
    assert any("tradefleet: skipped (editable" in n for n in verdict.notes)


def test_a_listed_advisory_passes_by_id_or_alias(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[ignore]]\nid = "GHSA-5h86-8mv2-jq9f"\npackage = "AIOHTTP"\n'
        'reason = "static routes with follow_symlinks are not used"\nreviewed = 2026-11-30\n',
    )
    ignores, errors = gate.load_ignores(path)
    assert errors == []
    verdict = gate.judge(_report(CLEAN, VULN), ignores, TODAY)
    assert verdict.failures == []
    assert any("ignored (static routes" in n for n in verdict.notes)
    # The same id for another package does not pass.
    other = dict(VULN, name="yarl")
    assert len(gate.judge(_report(other), ignores, TODAY).failures) == 1


def test_an_ignore_needs_every_field_and_a_recent_review(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[ignore]]\nid = "PYSEC-2024-24"\npackage = "aiohttp"\nreason = ""\n')
    _, errors = gate.load_ignores(path)
    assert errors == [
        ".pip-audit-ignore.toml: ignore[0].reason: required, a non-empty string",
        ".pip-audit-ignore.toml: ignore[0].reviewed: required, a TOML date (reviewed = 2026-12-01)",
    ]
    stale = gate.Ignore("PYSEC-2024-24", "aiohttp", "why", date(2026, 1, 2))
    failures = gate.judge(_report(VULN), [stale], TODAY).failures
    assert failures and "reviewed 334 days ago" in failures[0]


def test_a_dependency_that_could_not_be_audited_is_said_loudly_and_fails_when_required() -> None:
    # What pip-audit reports when PyPI's JSON API cannot be reached: every package skipped,
    # and "No known vulnerabilities found" on its own output.
    skipped = {
        "name": "aiohttp",
        "skip_reason": "Dependency not found on PyPI and could not be audited: aiohttp (3.14.5)",
    }
    verdict = gate.judge(_report(skipped, EDITABLE), [], TODAY)
    assert verdict.failures == []
    assert len(verdict.unchecked) == 1
    assert "1 distribution(s) could not be audited" in verdict.unchecked[0]
    strict = gate.judge(_report(skipped, EDITABLE), [], TODAY, require_service=True)
    assert len(strict.failures) == 1
    assert (
        "1 distribution(s) could not be audited (is PyPI's JSON API reachable?)"
        in (strict.failures[0])
    )


@pytest.mark.parametrize(("deps", "code"), [((CLEAN, EDITABLE), 0), ((CLEAN, VULN), 1)])
def test_main_judges_a_saved_report(
    tmp_path: Path, deps: tuple[dict[str, Any], ...], code: int
) -> None:
    report = tmp_path / "audit.json"
    report.write_text(json.dumps(_report(*deps)))
    empty = _write(tmp_path, "")
    assert gate.main(["--report", str(report), "--ignore-file", str(empty)]) == code


def test_the_repository_ignore_file_is_valid() -> None:
    ignores, errors = gate.load_ignores(ROOT / ".pip-audit-ignore.toml")
    assert errors == []
    assert all(i.reason for i in ignores)
