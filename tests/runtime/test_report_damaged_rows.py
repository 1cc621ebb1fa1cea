"""A journal with one damaged row (a hand edit, a bad copy) is said in one line naming the file,
the run and what is damaged, not a traceback (walkthrough W29): a run's summary or manifest
that is not JSON, an equity row of a length no whole number of values has."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.runtime.test_report_output import DEMO
from tradefleet_runtime.cli import main


@pytest.fixture(scope="module")
def journal_of_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    assert main(["backtest", str(DEMO), "--journal", str(path)]) == 0
    return path


def _damaged(source: Path, folder: Path, sql: str) -> Path:
    path = folder / "journal.sqlite"
    path.write_bytes(source.read_bytes())
    with sqlite3.connect(path) as db:
        db.execute(sql)
    return path


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("UPDATE runs SET summary = 'not json'", "summary is damaged"),
        ("UPDATE runs SET manifest = '{'", "manifest is damaged"),
        ("UPDATE equity_chunks SET equity = x'0102030405'", "equity row is damaged"),
    ],
)
def test_a_damaged_row_is_said_in_one_line(
    journal_of_demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sql: str,
    said: str,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one line, however long the path
    path = _damaged(journal_of_demo, tmp_path, sql)
    capsys.readouterr()
    assert main(["report", str(path)]) == 1
    err = capsys.readouterr().err
    assert said in err and str(path) in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
