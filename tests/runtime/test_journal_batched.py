"""A backtest's journal holds the same records batched (lean) as written row by row.

Backtests batch rows and keep only the last position row and the last status of each order of
each batch; paper and live bots write each fill with its position and every status at once. The
tables (each order's latest status), and ``tradefleet report --json``, must not tell the two
apart; the status steps the lean log leaves out are only those derivable from the order row.
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
    # The lean log leaves out steps a backtest can derive (test below); each order's latest
    # status, what every reader takes, is the same.
    "order_status": "SELECT client_order_id, status, reason, updated_ts, venue_order_id"
    " FROM order_status ORDER BY client_order_id",
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


def _status_logs(path: Path) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, int]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        logs: dict[str, list[tuple[Any, ...]]] = {}
        for order_id, ts, status, reason, venue in db.execute(
            "SELECT client_order_id, ts, status, reason, venue_order_id FROM order_updates"
            " ORDER BY id"
        ):
            logs.setdefault(order_id, []).append((ts, status, reason, venue))
        created = dict(db.execute("SELECT client_order_id, created_ts FROM orders"))
        return logs, created


def test_the_lean_status_log_leaves_out_only_steps_derivable_from_the_order(
    journals: tuple[Path, Path],
) -> None:
    (lean, _), (full, created) = _status_logs(journals[0]), _status_logs(journals[1])
    assert lean.keys() == full.keys() == created.keys()
    dropped = 0
    for order_id, steps in full.items():
        kept = lean[order_id]
        assert kept[-1] == steps[-1], order_id  # the latest status, its time and reason
        remaining = iter(steps)  # the lean log is the full one with steps left out, in order
        assert all(step in remaining for step in kept), order_id
        for step in steps:
            if step not in kept:
                dropped += 1
                # Only the acceptance: pending, then open, at the order's own time.
                assert step[1] in ("pending", "open") and step[0] == created[order_id], step
    assert dropped >= len(full)  # at least each order's pending step


def _batched_run(folder: Path) -> Journal:
    journal = Journal(folder / "j.sqlite", batched=True)
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
    return journal


def test_an_order_working_across_batches_keeps_a_status_in_each(tmp_path: Path) -> None:
    from tradefleet_runtime.model import Order, OrderStatus, OrderType, Side

    journal = _batched_run(tmp_path)
    order = Order("o1", "X", Side.BUY, 1.0, OrderType.LIMIT, 9.0, created_ts=100)
    journal.record_order(order, OrderStatus.PENDING, 100)
    journal.update_order("o1", OrderStatus.OPEN, 100)
    journal.flush()
    journal.update_order("o1", OrderStatus.CANCELLED, 160, "cancelled")
    journal.flush()
    rows = journal.query("SELECT ts, status, reason FROM order_updates ORDER BY id")
    latest = journal.query("SELECT status, updated_ts FROM order_status")
    journal.close()
    assert rows == [(100, "open", ""), (160, "cancelled", "cancelled")]
    assert latest == [("cancelled", 160)]


def test_batched_backtest_report_is_the_same(journals: tuple[Path, Path]) -> None:
    lean, row_by_row = _report(journals[0]), _report(journals[1])
    assert lean["trades"] > 50
    assert len(lean["trade_list"]) == lean["trades"]
    assert lean == row_by_row


def test_position_rows_of_a_batch_collapse_to_the_last(tmp_path: Path) -> None:
    from tradefleet_runtime.model import Fill, OrderStatus, Position, Side

    journal = _batched_run(tmp_path)
    for i, quantity in enumerate((1.0, 3.0, 0.0)):
        fill = Fill(f"o{i}", "X", Side.BUY, 1.0, 10.0 + i, 0.0, 100 + i, f"f{i}")
        journal.record_fill(fill, Position("X", quantity, 10.0, 0.5 * i), OrderStatus.FILLED)
    assert journal._positions  # buffered: one row for the symbol
    assert len(journal._positions) == 1
    journal.flush()
    rows = journal.query("SELECT symbol, quantity, realized_pnl, updated_ts FROM positions")
    journal.close()
    assert rows == [("X", 0.0, 1.0, 102)]


@pytest.mark.parametrize("count", [0, 1, 63, 64, 65, 64 * 3 + 7])
def test_many_row_inserts_hold_the_rows_one_by_one_inserts_do(count: int) -> None:
    from tradefleet_runtime.journal.sqlite import _INSERT_ORDER, _UPSERT_POSITION, _insert_rows

    schema = (ROOT / "bot-runtime/tradefleet_runtime/journal/schema.sql").read_text()
    rows = [
        (
            "r",
            f"o{i % (count - 3) if count > 6 else i}",
            "X",
            "buy",
            "market",
            1.0 + i,
            None,
            None,
            None,
            0,
            None,
            i,
            "",
            100.0 + i,
        )
        for i in range(count)
    ]  # a few ids repeat: ON CONFLICT DO NOTHING keeps the first, either way
    tables = []
    for insert in (_insert_rows, lambda db, sql, rows: db.executemany(sql, rows)):
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            db.executescript(schema)
            insert(db, _INSERT_ORDER, rows)
            tables.append(db.execute("SELECT rowid, * FROM orders ORDER BY rowid").fetchall())
    assert tables[0] == tables[1]
    assert len(tables[0]) == len({row[1] for row in rows})
    with contextlib.closing(sqlite3.connect(":memory:")) as db:  # an upsert: one by one
        db.executescript(schema)
        _insert_rows(db, _UPSERT_POSITION, [("r", "X", float(q), 1.0, 0.0, q) for q in range(70)])
        assert db.execute("SELECT quantity FROM positions").fetchall() == [(69.0,)]


# Columns whose values are enum members (sides, order types, statuses, risk actions) or often
# absent (prices, stops, venue ids): the journal binds them as plain str and None.
STORED_TYPES = {
    "orders": {
        "side": {"text"},
        "order_type": {"text"},
        "price": {"null", "real"},  # the stop-loss children carry one
        "parent_id": {"null", "text"},
    },
    "order_updates": {"status": {"text"}, "venue_order_id": {"null", "text"}},
    "fills": {"side": {"text"}},
    "risk_decisions": {"action": {"text"}, "side": {"text"}},
}


def test_enum_members_are_stored_as_text_and_absent_values_as_null(
    journals: tuple[Path, Path],
) -> None:
    with contextlib.closing(sqlite3.connect(journals[0])) as db:
        for table, columns in STORED_TYPES.items():
            for column, expected in columns.items():
                stored = {
                    row[0] for row in db.execute(f"SELECT DISTINCT typeof({column}) FROM {table}")
                }
                assert stored == expected, (table, column, stored)
        sides = {row[0] for row in db.execute("SELECT DISTINCT side FROM orders")}
        assert sides == {"buy", "sell"}
        # The strategy's market orders carry no price.
        assert db.execute("SELECT COUNT(*) FROM orders WHERE price IS NULL").fetchone()[0] > 100
