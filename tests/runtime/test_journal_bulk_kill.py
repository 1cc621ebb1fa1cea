"""A vectorised backtest's bulk write killed before its commit: the report reads no row of it.

``tradefleet report`` opens a journal nobody writes (no ``-wal`` file) as immutable, without
locks; a bulk write must therefore never leave the file in a state that reader takes for
finished. A write in WAL mode (the journal's only mode) killed by SIGKILL leaves its pages in
the ``-wal`` file, which a reader sees and ignores as uncommitted."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from tradefleet_runtime.journal.sqlite import Journal

ROOT = Path(__file__).resolve().parents[2]

# A run of 150k orders and fills (a 1M-bar backtest writes 330k rows): more pages than
# SQLite's page cache holds, so the transaction spills pages into the file before it commits,
# as a real bulk write does. The process kills itself (SIGKILL) once the fills are inserted,
# before the commit.
_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from tradefleet_runtime.journal import sqlite as journal_module
    from tradefleet_runtime.journal.run_rows import (
        DecisionColumns, FillColumns, OrderColumns, RunRows,
    )
    from tradefleet_runtime.model import Position

    real = journal_module.insert_columns

    def insert_then_die(db, verb, table, columns, count):
        real(db, verb, table, columns, count)
        if table == "fills":
            os.kill(os.getpid(), signal.SIGKILL)

    journal_module.insert_columns = insert_then_die
    journal = journal_module.Journal(sys.argv[1])
    journal.start_run(
        run_id="r1", bot="bt", mode="backtest", currency="USD", initial_capital=1e4,
        timeframe_s=3600, config_hash="h", manifest={},
    )
    journal.flush()
    n = 150_000
    ids = [f"order-{i:08d}" for i in range(n)]
    ts = list(range(n))
    rows = RunRows(
        symbol="EURUSD",
        orders=OrderColumns(
            ids, ["buy"] * n, [1.0] * n, [0] * n, ts, ["t"] * n, ["filled"] * n, ts,
            [None] * n, [1.1] * n,
        ),
        decisions=DecisionColumns("fixed-fractional", [], [], [], [], [], [], [], []),
        fills=FillColumns(
            [f"fill-{i:08d}" for i in range(n)], ids, ["buy"] * n, [1.0] * n, [1.1] * n,
            [0.0] * n, ts, ["t"] * n,
        ),
        position=Position("EURUSD"),
        trades=[],
    )
    journal.record_run_rows(rows)
    """
)


def test_a_report_after_a_killed_bulk_write_sees_no_uncommitted_row(tmp_path: Path) -> None:
    path = tmp_path / "bt.sqlite"
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, capture_output=True, timeout=120
    )
    assert child.returncode == -9, child.stderr.decode()
    # The bulk transaction never committed: a reader must see none of its rows.
    report = Journal(path, read_only=True)
    try:
        orders = report._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        fills = report._db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    except sqlite3.DatabaseError as error:  # a torn read ("malformed") is as wrong
        raise AssertionError(f"the report cannot read the journal: {error}") from None
    finally:
        report.close()
    assert (orders, fills) == (0, 0)
