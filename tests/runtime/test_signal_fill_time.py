"""An external signal (a webhook) that reaches a paper bot while a bar forms is worked from the
first bar that opens after it, never at the forming bar's open.

Its order was stamped with the engine's clock, the last bar's close, which is the forming bar's
open: the paper broker worked it on that bar, so a market order filled at a price from before
the signal existed (up to one bar earlier). Signal orders are now created a second after the
last close.
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime.helpers import Scripted, bar, paper_engine
from tests.runtime.signal_engines import signal_engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Direction, Signal


def test_a_signal_received_while_a_bar_forms_is_not_filled_at_that_bars_open() -> None:
    engine, sent = signal_engine()
    history = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100)]
    engine.run(history)  # bar 1 handed over at its close: T0 + 2h; bar 2 is forming now
    # The webhook fires at, say, T0 + 2h59m, because the price ran from 100 to 110 in bar 2.
    accepted, reason, order_id = engine.handle_signal(
        Signal("TEST", Direction.BUY, entry=100.0, volume=10, stop_loss=90.0, take_profit=130.0)
    )
    assert accepted, reason
    engine.run([bar(2, 100, 111, 99, 110), bar(3, 110, 111, 109, 110)])
    assert [o.client_order_id for o in sent][:1] == [order_id]
    position = engine.position("TEST")
    assert position.quantity == 10
    # Not bar 2's open (100, at T0 + 2h, before the signal): the first bar opening after it.
    assert position.average_price == 110.0


def test_a_flatten_called_while_a_bar_forms_fills_at_the_next_bars_open(tmp_path: Path) -> None:
    """A halt with flatten (a control call, run between bars) closes at the open of the first
    bar after it, not at the open of the bar that was forming when it was called."""
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 10)})
    journal = Journal(tmp_path / "j.sqlite")
    engine = paper_engine(journal, "run-1", strategy)
    engine.run([bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100)])  # bought at bar 1
    assert engine.position("TEST").quantity == 10
    with engine.between_bars():  # bar 2 forms: the price runs from 100 down to 80
        engine.halt("alice", "the price is falling", flatten=True)
    engine.run([bar(2, 100, 100, 80, 80), bar(3, 80, 81, 79, 80)])
    (close,) = [f for f in strategy.fills if f.side.value == "sell"]
    assert (close.ts, close.price) == (bar(3, 80, 81, 79, 80).ts, 80.0)
