"""The paper broker's ``take_profit_fill``: how a bracket's take-profit fills once the price
reaches it.

``limit`` (the default): a resting limit order, at its price with the maker fee. ``market``: a
market order sent when the price gets there, as live Kraken spot's broker sells a take-profit
it watches (docs/live-crypto.md): at the level, or at the open of a bar that gapped through it,
with the slippage against the bot and ``fee_bps``.

Costs are a Kraken spot bot's (examples/bots/btcusd-ema-cross.yaml): fee 0.26 % and slippage
0.10 % a side, 0.72 % a round trip, so a 1 % move closed at market nets about 0.28 %.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.runtime.helpers import Scripted, bar, flat_bars
from tests.runtime.helpers import run as run_engine
from tests.runtime.test_vector_path import DATA, ROOT, _check_equal, _manifest
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.model import Bar, Fill, Order, OrderType, Side
from tradefleet_runtime.optimize.worker import Task, evaluate
from tradefleet_runtime.spec.model import Mode

KRAKEN: dict[str, Any] = {"fee_bps": 26.0, "slippage_bps": 10.0}
ENTRY = 100.0 * 1.001  # the market entry at the open of 100, 0.10 % slippage against it
SOLD = 101.0 * 0.999  # a market sell at 101
# 10 × (101 − 100) less 0.10 % slippage and a 0.26 % fee on each side: 0.2764 % of 1,000.
AT_MARKET = (10 * (SOLD - ENTRY) - 10 * ENTRY * 0.0026 - 10 * SOLD * 0.0026) / 1000


def _trade_net(broker: dict[str, Any], take_profit: bool) -> tuple[float, Fill]:
    """Long 10 at the open of 100, out at 101: by its take-profit, or by a market close. The
    trade's net P&L as a fraction of the entry's notional at 100, and the exit fill."""

    def enter(ctx: StrategyContext, bar: Bar) -> None:
        ctx.buy(bar.symbol, 10.0, take_profit=101.0 if take_profit else None, stop_loss=90.0)

    def leave(ctx: StrategyContext, bar: Bar) -> None:
        if ctx.position(bar.symbol).quantity:
            ctx.close(bar.symbol)

    # Bar 1 opens at 100 (the entry) and rises to 101, where the take-profit is reached; the
    # market close decided at bar 2's close fills at bar 3's open, 101.
    bars = flat_bars([100.0, 101.0, 101.0, 101.0, 101.0])
    strategy = Scripted(actions={0: enter, 2: leave} if not take_profit else {0: enter})
    _, result = run_engine(strategy, bars, broker=broker, capital=100_000.0)
    assert len(result.trades) == 1, result.trades
    trade = result.trades[0]
    return trade.net_pnl / (trade.quantity * 100.0), strategy.fills[-1]


@pytest.mark.parametrize("fill", ["limit", "market"])
def test_a_one_percent_move_closed_at_market_nets_about_0_28_percent(fill: str) -> None:
    # A market close is the same order whichever way take-profits fill.
    net, exit_fill = _trade_net({**KRAKEN, "take_profit_fill": fill}, take_profit=False)
    assert exit_fill.price == pytest.approx(SOLD)
    assert net == pytest.approx(AT_MARKET, abs=1e-12)
    assert abs(net - 0.0028) < 0.0001


def test_a_one_percent_move_taken_by_the_take_profit_nets_what_kraken_would_pay() -> None:
    net, exit_fill = _trade_net({**KRAKEN, "take_profit_fill": "market"}, take_profit=True)
    assert exit_fill.reason == "take_profit"
    # Sold at market at the take-profit's level: 101 less 0.10 %, a 0.26 % taker fee.
    assert exit_fill.price == pytest.approx(SOLD)
    assert exit_fill.fee == pytest.approx(10 * SOLD * 0.0026)
    closed, _ = _trade_net({**KRAKEN, "take_profit_fill": "market"}, take_profit=False)
    assert net == pytest.approx(closed, abs=1e-12)
    assert net == pytest.approx(AT_MARKET, abs=1e-12)


@pytest.mark.parametrize("broker", [KRAKEN, {**KRAKEN, "take_profit_fill": "limit"}])
def test_at_limit_the_take_profit_fills_at_its_price_with_the_maker_fee(
    broker: dict[str, Any],
) -> None:
    net, exit_fill = _trade_net({**broker, "maker_fee_bps": 16.0}, take_profit=True)
    assert PaperBrokerParams.model_validate(broker).take_profit_fill == "limit"
    assert exit_fill.price == 101.0
    assert exit_fill.fee == pytest.approx(10 * 101.0 * 0.0016)
    # 10 × (101 − 100.1) less the entry's 0.26 % and the exit's 0.16 %.
    assert net == pytest.approx((9.0 - 10 * ENTRY * 0.0026 - 1010 * 0.0016) / 1000, abs=1e-12)


@pytest.mark.parametrize(
    ("side", "open_", "expected"),
    [
        # A long's take-profit at 105, the next bar opens at 110: sold at the open, less 0.10 %.
        ("long", 110.0, 110.0 * 0.999),
        # A short's take-profit at 95, the next bar opens at 90: bought at the open, plus 0.10 %.
        ("short", 90.0, 90.0 * 1.001),
    ],
)
def test_a_take_profit_a_bar_gapped_through_fills_at_its_open_as_a_takers(
    side: str, open_: float, expected: float
) -> None:
    long = side == "long"

    def enter(ctx: StrategyContext, b: Bar) -> None:
        if long:
            ctx.buy("TEST", 5, stop_loss=90.0, take_profit=105.0)
        else:
            ctx.sell("TEST", 5, stop_loss=110.0, take_profit=95.0)

    strategy = Scripted({0: enter})
    bars = [
        bar(0, 100, 100, 100, 100),
        bar(1, 100, 101, 99, 100),  # the entry at the open; nothing reached
        bar(2, open_, open_ + 1, open_ - 1, open_),
    ]
    run_engine(
        strategy, bars, broker={**KRAKEN, "maker_fee_bps": 0.0, "take_profit_fill": "market"}
    )
    (exit_fill,) = [f for f in strategy.fills if f.reason == "take_profit"]
    assert exit_fill.ts == bars[2].ts
    assert exit_fill.price == pytest.approx(expected)
    assert exit_fill.fee == pytest.approx(5 * expected * 0.0026)


def test_a_stop_loss_and_take_profit_in_one_bar_still_take_the_stop() -> None:
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 5, stop_loss=95.0, take_profit=105.0)})
    bars = [bar(0, 100, 100, 100, 100), bar(1, 100, 106, 94, 100)]
    run_engine(strategy, bars, broker={**KRAKEN, "take_profit_fill": "market"})
    assert [f.reason for f in strategy.fills] == ["market", "stop_loss"]
    assert strategy.fills[-1].price == pytest.approx(95.0 * 0.999)


def _broker_holding_ten(params: dict[str, Any]) -> PaperBroker:
    """A paper bot's broker restored holding 10 TEST bought at 100."""
    broker = PaperBroker(PaperBrokerParams.model_validate(params))
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    broker.restore_account([Fill("e", "TEST", Side.BUY, 10.0, 100.0, 0.0, 0, "e-f1", "market")])
    return broker


def test_a_take_profit_re_armed_after_a_restart_fills_at_market() -> None:
    # The engine re-arms the journal's working take-profit: the child's id, parent and tag.
    broker = _broker_holding_ten({**KRAKEN, "take_profit_fill": "market"})
    child = Order(
        "bot-e-tp", "TEST", Side.SELL, 10.0, OrderType.LIMIT, 101.0, reduce_only=True,
        parent_id="bot-e", oco_group="bot-e", tag="take_profit",
    )  # fmt: skip
    broker.submit(child)
    (fill,) = [e for e in broker.on_bar(bar(5, 100, 102, 99, 101)) if isinstance(e, Fill)]
    assert fill.price == pytest.approx(101.0 * 0.999)
    assert fill.fee == pytest.approx(10 * 101.0 * 0.999 * 0.0026)


def test_a_strategys_own_limit_order_rests_as_a_limit_whatever_its_tag() -> None:
    # Not a bracket's take-profit (no parent): the venue holds it as the limit it is.
    broker = _broker_holding_ten({**KRAKEN, "maker_fee_bps": 0.0, "take_profit_fill": "market"})
    own = Order(
        "bot-x", "TEST", Side.SELL, 10.0, OrderType.LIMIT, 101.0, reduce_only=True,
        tag="take_profit",
    )  # fmt: skip
    broker.submit(own)
    broker.on_bar(bar(5, 100, 100.5, 99, 100))  # it rests a bar first: a maker's then
    (fill,) = [e for e in broker.on_bar(bar(6, 100, 102, 99, 101)) if isinstance(e, Fill)]
    assert (fill.price, fill.fee) == (101.0, 0.0)


def _ema_cross_kraken() -> dict[str, Any]:
    document = _manifest(DATA / "BTCUSD_H1_bitfinex_2017-2019.csv", "BTCUSD")
    document["spec"]["broker"]["params"] = {
        **KRAKEN,
        "leverage": 10,
        "take_profit_fill": "market",
    }
    return document


def test_a_target_position_plan_is_vectorised_and_equal_at_market_take_profits() -> None:
    # A plan's orders carry no bracket: the param changes nothing the vectorised path trades.
    _check_equal(_ema_cross_kraken(), {"fast": 10, "slow": 30})


def test_a_bracketed_run_takes_the_engine_and_its_take_profits_are_a_takers() -> None:
    document = _ema_cross_kraken()
    params = {"fast": 10, "slow": 30, "stop_loss_pct": 0.02, "take_profit_pct": 0.01}
    asked = evaluate(Task(document, str(ROOT), params, detail=True))
    assert asked.path == "engine"
    assert "cannot state these params as target positions" in asked.fallback
    at_limit = _ema_cross_kraken()
    at_limit["spec"]["broker"]["params"]["take_profit_fill"] = "limit"
    rested = evaluate(Task(at_limit, str(ROOT), params, detail=True))
    taken = [t for t in asked.trades if t.exit_reason == "take_profit"]
    assert taken
    # The same trades (a take-profit is reached or not either way), each take-profit exit
    # worse at market by the slippage and the taker's fee (fee_bps = maker fee here).
    assert [(t.entry_ts, t.exit_ts) for t in asked.trades] == [
        (t.entry_ts, t.exit_ts) for t in rested.trades
    ]
    for ours, theirs in zip(asked.trades, rested.trades, strict=True):
        if ours.exit_reason == "take_profit":
            assert ours.net_pnl < theirs.net_pnl
        else:
            assert ours.net_pnl == pytest.approx(theirs.net_pnl, abs=1e-9)
