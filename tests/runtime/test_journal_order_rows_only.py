"""``Journal.order_rows(only=...)`` reads the orders named and nothing else, each row the same
as the whole run's read gives it: ListOrders of the working orders reads them alone (a long
run journals tens of thousands of orders, read on the engine's thread)."""

from __future__ import annotations

from pathlib import Path

from tests.runtime.helpers import Scripted, flat_bars, paper_engine
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderType


def _trade(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol, 1.0, stop_loss=bar.close * 0.9, take_profit=bar.close * 1.1, tag="in")
    ctx.buy(bar.symbol, 1.0, order_type=OrderType.LIMIT, price=bar.close * 0.5, tag="rest")


def test_only_the_orders_named_are_read_each_as_the_whole_read_gives_it(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        engine = paper_engine(journal, "run-1", Scripted({0: _trade, 2: _trade}), fee_bps=10)
        engine.run(flat_bars([100.0, 101.0, 102.0, 103.0]))
        journal.flush()
        every = {row[0]: row for row in journal.order_rows()}
        assert len(every) >= 6  # two entries filled, their brackets, two resting limits
        working = {o.client_order_id for o in engine.open_orders()}
        assert working and working < set(every)
        chosen = journal.order_rows(only=working)
        assert {row[0] for row in chosen} == working
        assert all(row == every[row[0]] for row in chosen)
        filled = [i for i, row in every.items() if row[5]]
        assert filled and journal.order_rows(only=filled[:1]) == [every[filled[0]]]
        assert journal.order_rows(only=[]) == []
        assert journal.order_rows(only=["not-an-order"]) == []
    finally:
        journal.close()
