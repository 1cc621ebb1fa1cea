"""The paper broker's fill rules, as the engine promises them to strategy authors."""

from __future__ import annotations

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, bar, run
from tradefleet_runtime.model import OrderIntent, OrderStatus, OrderType, Side


def test_market_order_fills_at_next_open_plus_slippage() -> None:
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 10)})
    bars = [bar(0, 100, 101, 99, 100), bar(1, 102, 103, 101, 102), bar(2, 102, 104, 101, 103)]
    _, _result = run(strategy, bars, broker={"slippage_bps": 10})
    [fill] = strategy.fills
    assert fill.price == pytest.approx(102 * 1.001)  # next open, 10 bp against the buyer
    assert fill.ts == T0 + HOUR  # on the bar after the signal, never the signal bar itself


def test_sell_slippage_lowers_the_price() -> None:
    strategy = Scripted({0: lambda ctx, b: ctx.sell("TEST", 1)})
    run(strategy, [bar(0, 100, 101, 99, 100), bar(1, 95, 96, 94, 95)], broker={"slippage_bps": 20})
    assert strategy.fills[0].price == pytest.approx(95 * 0.998)


def test_fees_are_charged_on_notional_of_every_fill() -> None:
    strategy = Scripted(
        {0: lambda ctx, b: ctx.buy("TEST", 10), 1: lambda ctx, b: ctx.close("TEST")}
    )
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100), bar(2, 110, 110, 110, 110)]
    _engine, result = run(strategy, bars, broker={"fee_bps": 25})
    entry, exit_ = strategy.fills
    assert entry.fee == pytest.approx(10 * 100 * 0.0025)
    assert exit_.fee == pytest.approx(10 * 110 * 0.0025)
    assert result.fees == pytest.approx(entry.fee + exit_.fee)
    assert result.final_equity == pytest.approx(10_000 + 10 * 10 - entry.fee - exit_.fee)
    [trade] = result.trades
    assert trade.net_pnl == pytest.approx(100 - entry.fee - exit_.fee)


def test_short_profits_when_price_falls() -> None:
    strategy = Scripted(
        {0: lambda ctx, b: ctx.sell("TEST", 5), 1: lambda ctx, b: ctx.close("TEST")}
    )
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100), bar(2, 90, 90, 90, 90)]
    _, result = run(strategy, bars)
    [trade] = result.trades
    assert trade.direction == -1
    assert trade.gross_pnl == pytest.approx(5 * (100 - 90))
    assert result.final_equity == pytest.approx(10_050)


def test_short_loses_when_price_rises_and_is_marked_every_bar() -> None:
    strategy = Scripted({0: lambda ctx, b: ctx.sell("TEST", 5)})
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100), bar(2, 104, 104, 104, 104)]
    _, result = run(strategy, bars)
    assert list(result.equity) == pytest.approx([10_000, 10_000, 10_000 - 5 * 4])


def _bracket(stop: float, target: float) -> Scripted:
    return Scripted({0: lambda ctx, b: ctx.buy("TEST", 1, stop_loss=stop, take_profit=target)})


def test_stop_loss_and_take_profit_in_one_bar_take_the_worse() -> None:
    strategy = _bracket(95, 105)
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100), bar(2, 100, 106, 94, 100)]
    _, result = run(strategy, bars)
    entry, exit_ = strategy.fills
    assert exit_.reason == "stop_loss"
    assert exit_.price == 95
    assert result.trades[0].gross_pnl == pytest.approx(-5)
    cancelled = [u for u in strategy.updates if u.status is OrderStatus.CANCELLED]
    assert [u.client_order_id for u in cancelled] == [entry.client_order_id + "-tp"]


def test_gap_through_take_profit_fills_at_the_open() -> None:
    strategy = _bracket(95, 105)
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100), bar(2, 108, 109, 94, 100)]
    run(strategy, bars)
    assert strategy.fills[1].reason == "take_profit"
    assert strategy.fills[1].price == 108  # opened beyond the target: that happened first


def test_gap_through_stop_fills_at_the_worse_open() -> None:
    strategy = _bracket(95, 105)
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100), bar(2, 90, 106, 89, 100)]
    run(strategy, bars)
    assert (strategy.fills[1].reason, strategy.fills[1].price) == ("stop_loss", 90)


def test_bracket_is_live_on_the_entry_bar_when_entered_at_its_open() -> None:
    strategy = _bracket(95, 105)
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 106, 99, 104)]
    run(strategy, bars)
    assert [f.reason for f in strategy.fills] == ["market", "take_profit"]
    assert strategy.fills[1].ts == T0 + HOUR


def test_limit_order_rests_until_price_crosses() -> None:
    strategy = Scripted(
        {0: lambda ctx, b: ctx.buy("TEST", 1, order_type=OrderType.LIMIT, price=97)}
    )
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 101, 98, 99), bar(2, 99, 99, 96, 98)]
    run(strategy, bars, broker={"slippage_bps": 50})
    [fill] = strategy.fills
    assert (fill.price, fill.ts) == (97, T0 + 2 * HOUR)  # limit price, no slippage


def test_stop_entry_triggers_through_the_stop_with_slippage() -> None:
    strategy = Scripted(
        {0: lambda ctx, b: ctx.buy("TEST", 1, order_type=OrderType.STOP, price=103)}
    )
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 102, 99, 101), bar(2, 101, 104, 100, 103)]
    run(strategy, bars, broker={"slippage_bps": 100})
    assert strategy.fills[0].price == pytest.approx(103 * 1.01)


def test_order_beyond_margin_is_rejected() -> None:
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 1000)})
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100)]
    _engine, result = run(strategy, bars, broker={"leverage": 2})  # 100k notional on 10k equity
    assert strategy.fills == []
    [update] = strategy.updates
    assert (update.status, update.reason) == (OrderStatus.REJECTED, "insufficient margin")
    assert result.final_equity == 10_000


def test_reversal_books_a_trade_and_opens_the_other_side() -> None:
    strategy = Scripted(
        {0: lambda ctx, b: ctx.buy("TEST", 2), 1: lambda ctx, b: ctx.sell("TEST", 4)}
    )
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100), bar(2, 110, 110, 110, 110)]
    engine, result = run(strategy, bars)
    assert result.trades[0].gross_pnl == pytest.approx(20)
    position = engine.position("TEST")
    assert (position.quantity, position.average_price) == (-2, 110)


def test_a_reduce_only_order_cut_to_the_position_leaves_no_remainder_working() -> None:
    """Regression: the paper broker filled a reduce-only stop up to the position and dropped
    the rest silently; the engine kept the rest as a working order (a phantom stop). (A plain
    reduce-only stop: a bracket's stop-loss is cut to its position as soon as the position is
    reduced, test_bracket_children_shrink.py, so it never outgrows it.)"""
    stop = OrderIntent("TEST", Side.BUY, 10, OrderType.STOP, 110, reduce_only=True)
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.sell("TEST", 10),
            1: lambda ctx, b: (ctx.submit(stop), ctx.buy("TEST", 4)),  # the short is 6 now
        }
    )
    engine, _ = run(
        strategy,
        [
            bar(0, 100, 100, 100, 100),
            bar(1, 100, 101, 99, 100),
            bar(2, 100, 101, 99, 100),
            bar(3, 100, 112, 99, 111),  # through the stop: it closes the 6 that are left
            bar(4, 111, 112, 110, 111),
        ],
    )
    assert engine.position("TEST").quantity == 0
    assert engine.open_orders() == []
    stopped = strategy.fills[-1]
    assert (stopped.reason, stopped.quantity) == ("stop", 6)
    [cut] = [u for u in strategy.updates if u.client_order_id == stopped.client_order_id]
    assert cut.status is OrderStatus.CANCELLED and "reduce-only" in cut.reason
