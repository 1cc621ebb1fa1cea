"""R22: a stop reversal's opening part is capped on equity its own closing part has lost.

36dfd6b prices a reversal's closing part at ``closing_price`` (the worse of mark and the
order's price: "a stop's may be over the mark"), but only its fee and slippage come out of the
equity the cap reads. A buy stop above the mark closing a short (a sell stop below it closing a
long) fills its closing part at the trigger, booking the position's move from the mark to the
trigger as a loss: the equity the opening part's margin stands on at the fill is that much
lower. The cap sizes what opens on today's equity, so at the fill the new position is far
over ``max_leverage`` (8.3x at a 5x cap below), and at a venue whose leverage is the cap the
whole reversal, its close included, is refused for margin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.kelly import Kelly
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.pre_trade import PreTrade
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.risk.sizing import to_step
from tradefleet_plugins.risk.volatility_target import VolatilityTarget
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import (
    Instrument,
    OrderIntent,
    OrderType,
    RiskAction,
    RiskPlugin,
    Side,
    leverage_cap_quantity,
)
from tradefleet_runtime.sdk.testing import risk_context

CAP = 5.0
EQUITY, MARK = 10_000.0, 100.0
FEE, SLIP = 0.001, 0.0005
COSTLY = Instrument("X", taker_fee=FEE, slippage=SLIP, lot_step=0.001)


def _sizer(name: str) -> RiskPlugin:
    """Each sizer that caps a sized order by ``max_leverage`` (``sized_within_leverage``)."""
    if name == "kelly":
        return Kelly(KellyParams(max_leverage=CAP))
    if name == "volatility-target":
        return VolatilityTarget(VolatilityTargetParams(max_leverage=CAP))
    return FixedFractional(FixedFractionalParams(max_leverage=CAP))


SIZERS = ("fixed-fractional", "kelly", "volatility-target")
REVERSALS = [
    (-400.0, Side.BUY, 110.0),  # short 400 at 100; a buy stop 900 at 110 reverses it
    (400.0, Side.SELL, 90.0),  # long 400 at 100; a sell stop 900 at 90 reverses it
]


def _sent(plugin: RiskPlugin, intent: OrderIntent, **context: Any) -> float:
    ctx = risk_context("X", equity=EQUITY, marks={"X": MARK}, **context)
    decision = plugin.check(intent, ctx)
    if decision.action is RiskAction.VETO:
        return 0.0
    assert intent.quantity is not None
    return intent.quantity if decision.quantity is None else decision.quantity


@pytest.mark.parametrize("sizer", SIZERS)
@pytest.mark.parametrize(("held", "side", "trigger"), REVERSALS)
def test_a_stop_reversal_opens_no_more_than_the_cap_on_the_equity_left_at_its_trigger(
    sizer: str, held: float, side: Side, trigger: float
) -> None:
    intent = OrderIntent("X", side, 900.0, OrderType.STOP, trigger)
    sent = _sent(_sizer(sizer), intent, positions={"X": held})
    closing = min(sent, abs(held))
    opened = sent - closing
    # At the trigger the closing part has booked the position's move from the mark.
    left = EQUITY - closing * abs(trigger - MARK)
    assert opened * trigger <= CAP * left * (1.0 + 1e-9), (
        f"opens {opened:g} X at {trigger:g} = {opened * trigger / left:.2f}x the "
        f"{left:,.0f} equity the close leaves at the trigger, over max_leverage {CAP:g}"
    )
    # Only shrunk to the cap, not below: 6,000 x 5 / trigger opens.
    assert opened == pytest.approx(CAP * left / trigger)


def test_the_reason_says_the_loss_to_the_trigger_was_counted() -> None:
    ctx = risk_context("X", equity=EQUITY, marks={"X": MARK}, positions={"X": -400.0})
    intent = OrderIntent("X", Side.BUY, 900.0, OrderType.STOP, 110.0)
    decision = FixedFractional(FixedFractionalParams(max_leverage=CAP)).check(intent, ctx)
    assert decision.action is RiskAction.SHRINK
    assert "(its close loses 4000 to 110 first)" in decision.reason, decision.reason


@pytest.mark.parametrize(
    ("order_type", "price"),
    [
        (OrderType.MARKET, None),  # closes at the mark
        (OrderType.LIMIT, 110.0),  # marketable: fills at the mark, not at its price
        (OrderType.STOP, 95.0),  # a buy stop under the mark closing a short: no loss to it
    ],
)
def test_a_reversal_closing_at_the_mark_is_capped_bit_for_bit_as_before(
    order_type: OrderType, price: float | None
) -> None:
    """With costs on, so the cap goes through the closing room: the quantity is the one the
    old arithmetic gave, to the bit."""
    ctx = risk_context(
        "X", equity=EQUITY, marks={"X": MARK}, positions={"X": -400.0}, instrument=COSTLY
    )
    intent = OrderIntent("X", Side.BUY, 1000.0, order_type, price)
    decision = FixedFractional(FixedFractionalParams(max_leverage=CAP)).check(intent, ctx)
    at = price or MARK
    slippage = 0.0 if order_type is OrderType.LIMIT else SLIP
    cap = leverage_cap_quantity(EQUITY, at, CAP, FEE, slippage, 400.0, SLIP, max(at, MARK))
    assert decision.action is RiskAction.SHRINK
    assert decision.quantity == to_step(400.0 + cap, COSTLY)
    assert "its close loses" not in decision.reason


def test_a_stop_that_only_closes_passes_whole() -> None:
    intent = OrderIntent("X", Side.BUY, 300.0, OrderType.STOP, 110.0)
    fixed = FixedFractional(FixedFractionalParams(max_leverage=CAP))
    assert _sent(fixed, intent, positions={"X": -400.0}) == 300.0


def test_a_stop_entry_with_no_position_is_capped_as_before() -> None:
    intent = OrderIntent("X", Side.BUY, 900.0, OrderType.STOP, 110.0)
    fixed = FixedFractional(FixedFractionalParams(max_leverage=CAP))
    assert _sent(fixed, intent) == EQUITY * CAP / 110.0


# pre-trade: the free margin and a symbol's leverage judge what opens on the equity at the fill.
OFF: dict[str, Any] = {
    "price_band": 0, "max_gross_exposure": 0, "group_cap": 0, "max_correlation": 0,
    "max_open_positions": 0, "max_leverage": 0,
}  # fmt: skip
PRE_TRADE_CAPS = {
    "free_margin": {"margin_leverage": CAP},
    "max_leverage": {"margin_leverage": 100, "max_leverage": CAP},
}


@pytest.mark.parametrize("code", sorted(PRE_TRADE_CAPS))
@pytest.mark.parametrize(("held", "side", "trigger"), REVERSALS)
def test_pre_trade_refuses_what_a_stop_reversal_opens_over_the_equity_its_close_leaves(
    code: str, held: float, side: Side, trigger: float
) -> None:
    """850 closes 400 and opens 450: 49,500 or 40,500 of notional, within 5x the 10,000 read
    at the mark, over 5x the 6,000 left at the trigger: only the close goes."""
    plugin = PreTrade(PreTradeParams(**{**OFF, **PRE_TRADE_CAPS[code]}))
    ctx = risk_context("X", equity=EQUITY, marks={"X": MARK}, positions={"X": held})
    decision = plugin.check(OrderIntent("X", side, 850.0, OrderType.STOP, trigger), ctx)
    assert (decision.action, decision.quantity, decision.code) == (RiskAction.SHRINK, 400.0, code)
    assert "(its close loses 4000 to" in decision.reason, decision.reason
    # At the mark (a market reversal) the same order fits, as before.
    market = plugin.check(OrderIntent("X", side, 850.0), ctx)
    assert market.action is RiskAction.APPROVE, market


def test_a_stop_reversal_in_the_engine_holds_max_leverage_at_the_fill(tmp_path: Path) -> None:
    """Short 400 at 100, then a buy stop of 900 at 110, on a 10x paper account: it fills at
    110, the close losing 4,000; what it opened is at most 5x the equity left."""
    registry = PluginRegistry.discover()

    def stop(ctx, bar):  # type: ignore[no-untyped-def]
        ctx.buy("X", 900.0, order_type=OrderType.STOP, price=110.0)

    strategy = Scripted({0: lambda c, b: c.sell("X", 400.0), 2: stop})
    risk = [{"name": "fixed-fractional", "params": {"max_leverage": CAP}}]
    document = manifest(risk, symbols=("X",), capital=EQUITY, leverage=10.0)
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(flat_bars([100.0, 100.0, 100.0, 100.0, 110.0, 110.0], symbol="X"))
    assert [(f.side, f.price) for f in strategy.fills] == [(Side.SELL, 100.0), (Side.BUY, 110.0)]
    held = engine.portfolio.positions["X"].quantity
    assert held > 0.0, "the stop reversed the short"
    assert held * 110.0 <= CAP * engine.equity * (1.0 + 1e-9), (
        f"long {held:g} X = {held * 110.0 / engine.equity:.2f}x the {engine.equity:,.0f} "
        f"equity after the fill, over max_leverage {CAP:g}"
    )
