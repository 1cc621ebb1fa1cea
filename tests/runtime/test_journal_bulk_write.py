"""A vectorised backtest writes its whole run's rows in one bulk transaction.

That write leaves WAL mode for SQLite's rollback journal (its rows are then written once, not to
the log and again into the file); the journal must come out of it in WAL mode, as every other
writer and reader expects, and a reader holding the file open meanwhile must neither stop the
write nor see half of it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tradefleet_runtime.cli import main

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"


def _backtest(capsys: pytest.CaptureFixture[str], journal: Path) -> None:
    capsys.readouterr()
    code = main(["backtest", str(BOT), "--json", "--journal", str(journal)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "backtested by the vectorised path" in out.err


def _counts(db: sqlite3.Connection) -> tuple[int, int, int]:
    return (
        db.execute("SELECT COUNT(*) FROM runs WHERE status = 'completed'").fetchone()[0],
        db.execute("SELECT COUNT(*) FROM orders").fetchone()[0],
        db.execute("SELECT COUNT(*) FROM fills").fetchone()[0],
    )


def test_the_journal_is_in_wal_mode_after_the_bulk_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journal = tmp_path / "bt.sqlite"
    _backtest(capsys, journal)
    db = sqlite3.connect(journal)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        runs, orders, fills = _counts(db)
        assert runs == 1 and orders > 50 and fills == orders
    finally:
        db.close()


def test_a_reader_holding_the_journal_neither_stops_the_write_nor_sees_half(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journal = tmp_path / "bt.sqlite"
    _backtest(capsys, journal)
    reader = sqlite3.connect(journal, isolation_level=None)
    try:
        reader.execute("BEGIN")
        before = _counts(reader)  # a read transaction open for the whole second run
        _backtest(capsys, journal)
        assert _counts(reader) == before
        reader.execute("COMMIT")
        runs, orders, fills = _counts(reader)
        assert (runs, orders, fills) == (2, 2 * before[1], 2 * before[2])
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        reader.close()
