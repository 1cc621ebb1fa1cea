"""The fill path that ends a strategy's close's wait (``_on_fill``; review R41).

A part fill of the waited order, a fill of no order in the book (a liquidation), and the
close sent from inside ``_on_fill`` once a waited sell smaller than the position fills. The
venue is the paper broker whose cancels take effect when the test answers them
(``SlowCancels``); a fill the venue reports unasked is handed to the engine as the venue
would hand it (``pump``).
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime.held_closes import journaled_events
from tests.runtime.helpers import bar
from tests.runtime.test_flatten_waits_for_reducing_orders import (
    BARS,
    SYMBOL,
    _buy,
    _closes,
    _long_with_a_resting_sell,
    _slow_engine,
)
from tradefleet_runtime.brackets import LIQUIDATION_TAG
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.model import Bar, Fill, OrderType, Side


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)


def _rest_a_sell_of_half(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(SYMBOL, 0.5, order_type=OrderType.LIMIT, price=120.0)


def _fill(engine: Engine, order_id: str, quantity: float, reason: str = "limit") -> None:
    """The venue reports a fill (of ``order_id``, or of no order of the bot's)."""
    engine.broker._queued.append(  # type: ignore[attr-defined]
        Fill(order_id, SYMBOL, Side.SELL, quantity, 120.0, 0.0, engine.now, f"f-{order_id}", reason)
    )
    engine.pump()


def test_a_part_fill_of_the_waited_sell_keeps_the_wait_and_the_close_takes_the_rest(
    tmp_path: Path,
) -> None:
    engine, venue, sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    _fill(engine, sell, 0.4)
    assert engine.position(SYMBOL).quantity == 0.6
    assert _closes(engine, "close") == []  # S still works: the wait goes on
    venue.answer_cancels()
    engine.pump()
    assert [q for _i, q in _closes(engine, "close")] == [0.6]


def test_a_liquidation_fill_while_the_close_waits_sends_nothing_beside_the_waited_sell(
    tmp_path: Path,
) -> None:
    engine, venue, _sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    _fill(engine, "venue-liq-1", 0.3, LIQUIDATION_TAG)
    assert engine.position(SYMBOL).quantity == 0.7
    assert _closes(engine, "close") == []
    venue.answer_cancels()
    engine.pump()
    closes = [q for _i, q in _closes(engine, "close")]
    assert closes and abs(closes[0] - 0.7) < 1e-9
    assert abs(sum(closes) - 0.7) < 1e-9


def test_the_close_sent_from_inside_on_fill_closes_the_rest_once(tmp_path: Path) -> None:
    """Long 1, a resting sell of 0.5 at 120; the strategy closes (waits for the sell), the
    market trades through 120 before the cancel is heard: the sell's fill ends the wait from
    inside ``_on_fill``, the close of 0.5 goes then, and fills at a later bar's open."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell_of_half, 2: _close})
    engine.run(BARS[:3])
    assert _closes(engine, "close") == []
    engine.run([bar(3, 100.0, 125.0, 100.0, 121.0)])  # the sell fills
    assert [q for _i, q in _closes(engine, "close")] == [0.5]
    assert journaled_events(engine, "close_waits")[-1][1]["ended"]
    venue.answer_cancels()  # the sell's cancel: unknown by now
    engine.pump()
    engine.run([bar(i, 121.0, 121.0, 121.0, 121.0) for i in (4, 5)])
    assert engine.position(SYMBOL).quantity == 0.0
    assert [q for _i, q in _closes(engine, "close")] == [0.5]
