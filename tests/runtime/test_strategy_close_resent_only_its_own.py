"""Which refusals the engine takes for the strategy's close (``Engine._close_refused_larger``,
review R46): a strategy that tags every exit alike ("exit": a partial ``sell`` and a ``close``)
closed once; a later partial sell of the same tag, refused as reduce-only, was taken for a
refused close and kept, and at a later fill the engine closed what the strategy meant to keep.
The strategy's close is forgotten once the position is flat."""

from __future__ import annotations

from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Order, OrderStatus, OrderUpdate, ReasonCode, Side
from tradefleet_runtime.spec.model import Mode


class RefusesOnePartial(PaperBroker):
    """The paper venue, but the first sell of 3 is refused as reduce-only (Binance -2022)."""

    refused: list[str]

    def submit(self, order: Order) -> Any:
        if order.side is Side.SELL and order.quantity == 3.0 and not self.refused:
            self.refused.append(order.client_order_id)
            return OrderUpdate(
                order.client_order_id,
                OrderStatus.REJECTED,
                0,
                "ReduceOnly Order is rejected",
                code=ReasonCode.REDUCE_ONLY,
            )
        return super().submit(order)


def _engine(actions: dict[int, Any]) -> tuple[Engine, Journal, RefusesOnePartial]:
    broker = RefusesOnePartial(PaperBrokerParams())
    broker.refused = []
    broker.connect(BrokerContext("bot", Mode.BACKTEST, ("TEST",), "USD", 100_000.0))
    journal = Journal(":memory:")
    journal.start_run(
        run_id="r", bot="bot", mode="backtest", currency="USD", initial_capital=100_000.0,
        timeframe_s=3600, config_hash="x", manifest={},
    )  # fmt: skip
    config = EngineConfig("bot", "backtest", ("TEST",), 3600, 100_000.0)
    return Engine(config, Scripted(actions), broker, journal), journal, broker


def _buy(q: float) -> Any:
    return lambda ctx, _b: ctx.buy("TEST", q)


def _sell(q: float, tag: str = "exit") -> Any:
    return lambda ctx, _b: ctx.sell("TEST", q, tag=tag)


def _close(ctx: StrategyContext, _b: Bar) -> None:
    ctx.close("TEST", "exit")


def test_a_refused_partial_sell_after_an_old_close_does_not_close_the_rest() -> None:
    """An earlier close (bar 2) arms ``_closes_asked``; a later sell of 3 out of 10 is refused
    reduce-only (bar 6); the strategy then sells 8 (bar 8) meaning to keep 2. The engine takes
    the refused sell of 3 for "the strategy's close", and at the fill of the 8 closes the 2."""
    actions = {0: _buy(1), 2: _close, 4: _buy(10), 6: _sell(3), 8: _sell(8)}
    engine, journal, broker = _engine(actions)
    engine.run(flat_bars([100.0] * 14))
    assert broker.refused, "the setup: the sell of 3 was refused"
    resent = journal.query("SELECT message FROM events WHERE kind = 'close_resent'")
    held = engine.position("TEST").quantity
    assert held == pytest.approx(2.0), (
        f"the strategy holds {held}, not the 2 it kept; close_resent: {resent}"
    )
    assert resent == [], "a sell of 3 the strategy never meant as a close is said as its close"


def test_control_without_an_earlier_close_the_rest_is_kept() -> None:
    """The same with a sell at bar 2 instead of the close: the refused sell is not taken for a
    close, and the 2 are kept."""
    actions = {0: _buy(1), 2: _sell(1), 4: _buy(10), 6: _sell(3), 8: _sell(8)}
    engine, _journal, broker = _engine(actions)
    engine.run(flat_bars([100.0] * 14))
    assert broker.refused
    assert engine.position("TEST").quantity == pytest.approx(2.0)
