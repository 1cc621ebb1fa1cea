"""A backtest's journal holds the same records batched (lean) as written row by row.

Backtests batch rows and keep only the last position row of each batch; paper and live bots
write each fill with its position at once. The tables and ``tradefleet report --json`` must
not tell the two apart.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tradefleet_runtime import cli
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

ROOT = Path(__file__).resolve().parents[2]

MANIFEST: dict[str, Any] = {
    "apiVersion": "tradefleet.io/v1alpha1",
    "kind": "TradingBot",
    "metadata": {"name": "lean"},
    "spec": {
        "mode": "backtest",
        "strategy": {
            "name": "ema-cross",
            "params": {"fast": 5, "slow": 20, "stop_loss_pct": 0.004},
        },
        "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
        "broker": {"name": "paper", "params": {"fee_bps": 1, "slippage_bps": 1, "leverage": 30}},
        "data": {"name": "csv", "params": {"path": "data/EURUSD_H1_2017.csv"}},
        "risk": [{"name": "fixed-size", "params": {"quantity": 10_000}}],
        "capital": {"currency": "USD", "initial": 100_000},
    },
}

# Every table of a run, ordered so that two files compare row by row (run ids left out).
TABLES = {
    "orders": "SELECT * FROM orders ORDER BY client_order_id",
    "order_updates": "SELECT client_order_id, ts, status, reason, venue_order_id"
    " FROM order_updates ORDER BY id",
    "fills": "SELECT * FROM fills ORDER BY fill_id",
    "positions": "SELECT * FROM positions ORDER BY symbol",
    "trades": "SELECT * FROM trades ORDER BY seq",
    "risk_decisions": "SELECT * FROM risk_decisions ORDER BY rowid",
    "events": "SELECT ts, kind, message, data FROM events ORDER BY rowid",
    "equity_chunks": "SELECT * FROM equity_chunks ORDER BY 2",
    "run_symbols": "SELECT * FROM run_symbols",
}


def _backtest(path: Path, *, batched: bool) -> None:
    bot = assemble(parse_manifest(MANIFEST), PluginRegistry.discover(), ROOT)
    journal = Journal(path, batched=batched)
    try:
        BotSession(bot, journal).run_to_end()
    finally:
        journal.close()


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        run_ids = [row[0] for row in db.execute("SELECT run_id FROM runs")]
        assert len(run_ids) == 1
        out = {}
        for name, sql in TABLES.items():
            rows = db.execute(sql).fetchall()
            out[name] = [tuple("RUN" if v == run_ids[0] else v for v in row) for row in rows]
        return out


def _report(path: Path) -> dict[str, Any]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(["report", str(path), "--json", "--trades"]) == 0
    document: dict[str, Any] = json.loads(stdout.getvalue())
    for key in ("run_id", "started_at", "finished_at", "journal"):
        document.pop(key, None)
    return document


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("journals")
    lean, row_by_row = folder / "lean.sqlite", folder / "rows.sqlite"
    _backtest(lean, batched=True)
    _backtest(row_by_row, batched=False)
    return lean, row_by_row


def test_batched_backtest_journal_holds_the_same_rows(journals: tuple[Path, Path]) -> None:
    lean, row_by_row = _tables(journals[0]), _tables(journals[1])
    assert len(lean["fills"]) > 100  # stops and crosses: many fills, several per batch
    assert len(lean["positions"]) == 1
    for name in TABLES:
        assert lean[name] == row_by_row[name], name


def test_batched_backtest_report_is_the_same(journals: tuple[Path, Path]) -> None:
    lean, row_by_row = _report(journals[0]), _report(journals[1])
    assert lean["trades"] > 50
    assert len(lean["trade_list"]) == lean["trades"]
    assert lean == row_by_row


def test_position_rows_of_a_batch_collapse_to_the_last(tmp_path: Path) -> None:
    from tradefleet_runtime.model import Fill, OrderStatus, Position, Side

    journal = Journal(tmp_path / "j.sqlite", batched=True)
    journal.start_run(
        run_id="r",
        bot="b",
        mode="backtest",
        currency="USD",
        initial_capital=1.0,
        timeframe_s=60,
        config_hash="h",
        manifest={},
    )
    for i, quantity in enumerate((1.0, 3.0, 0.0)):
        fill = Fill(f"o{i}", "X", Side.BUY, 1.0, 10.0 + i, 0.0, 100 + i, f"f{i}")
        journal.record_fill(fill, Position("X", quantity, 10.0, 0.5 * i), OrderStatus.FILLED)
    assert journal._positions  # buffered: one row for the symbol
    assert len(journal._positions) == 1
    journal.flush()
    rows = journal.query("SELECT symbol, quantity, realized_pnl, updated_ts FROM positions")
    journal.close()
    assert rows == [("X", 0.0, 1.0, 102)]
