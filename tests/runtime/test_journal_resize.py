"""A bracket child resized as its entry fills: the journal says what works now, and how it grew.

``orders.quantity`` is the size at the venue now (a query of the working stops reads the size
that protects the position); the order's log keeps each resize with the size before it, in the
same transaction as the new size — for a durable journal and a batched one alike.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, OrderStatus, OrderType, Side

STOP = Order(
    "e1-sl",
    "X",
    Side.SELL,
    0.4,
    OrderType.STOP,
    95.0,
    reduce_only=True,
    parent_id="e1",
    created_ts=10,
    tag="stop_loss",
)


@pytest.mark.parametrize("batched", [False, True])
def test_a_resize_sets_the_quantity_and_logs_the_size_before(tmp_path: Path, batched: bool) -> None:
    journal = Journal(tmp_path / "j.sqlite", batched=batched)
    journal.start_run(
        run_id="r",
        bot="b",
        mode="backtest" if batched else "live",
        currency="USD",
        initial_capital=1.0,
        timeframe_s=60,
        config_hash="h",
        manifest={},
    )
    journal.record_order(STOP, OrderStatus.OPEN, 10)
    journal.resize_order("e1-sl", 1.0, 12, "resized from 0.4 to 1: what of its entry filled")
    journal.close()
    db = sqlite3.connect(tmp_path / "j.sqlite")
    try:
        working = db.execute(
            "SELECT quantity, status, reason FROM order_status WHERE client_order_id = 'e1-sl'"
        ).fetchall()
        log = db.execute(
            "SELECT ts, status, reason FROM order_updates WHERE client_order_id = 'e1-sl'"
            " ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    assert working == [(1.0, "open", "resized from 0.4 to 1: what of its entry filled")]
    resized = (12, "open", "resized from 0.4 to 1: what of its entry filled")
    # A batch keeps each order's latest status (ARCHITECTURE.md, Journal).
    assert log == ([resized] if batched else [(10, "open", ""), resized])
