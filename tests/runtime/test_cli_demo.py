"""``make demo`` then ``tradefleet report`` as the README says, through the Makefile's own paths."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _demo_recipe() -> list[str]:
    """The commands ``make demo`` runs (dry run; -B prints them even when up to date)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _tradefleet(line: str) -> list[str]:
    argv = shlex.split(line)
    assert argv[0].endswith("/tradefleet"), line
    return [str(BIN / "tradefleet"), *argv[1:]]


def test_report_reprints_the_run_make_demo_journaled() -> None:
    recipe = _demo_recipe()
    backtest = next(line for line in recipe if " backtest " in line)
    done = subprocess.run(
        _tradefleet(backtest), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    # The demo says where its journal is, and the README's report command names the same file.
    hint = next(line for line in recipe if "tradefleet report" in line)
    journal = re.search(r"report (\S+\.sqlite)", hint)
    assert journal is not None
    assert (
        f"journal: {(ROOT / journal.group(1)).resolve()}"
        in done.stdout.replace(str(ROOT) + "/", str(ROOT) + "/")
        or f"journal: {journal.group(1)}" in done.stdout
    )
    readme = (ROOT / "README.md").read_text()
    assert f"tradefleet report {journal.group(1)}" in readme
    report = subprocess.run(
        [str(BIN / "tradefleet"), "report", journal.group(1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    assert "eurusd-ema-cross run" in report.stdout
    assert "net P&L" in report.stdout


def test_make_demo_installs_only_what_the_demo_needs() -> None:
    installs = [line for line in _demo_recipe() if "pip install" in line and "-e" in line]
    assert installs == [".venv/bin/python -m pip install --quiet -e '.[plot]'"]
