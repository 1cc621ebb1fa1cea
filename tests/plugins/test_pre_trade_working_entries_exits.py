"""pre-trade: a working entry on the other side is not taken as filled by ``max_leverage``;
an order that only closes is an exit, whatever the account's state.

1. ``max_leverage`` judges the position after the order whether the symbol's working entries
   fill or not (as it does the working exits): flat, a buy limit of 20 working, ``sell 40`` is
   short 40 should the limit never fill, not short 20; the reversal (long 50, ``sell 100``) the
   same.
2. A plain (not reduce-only) sell of the whole long closes it: ``min_balance`` and
   ``no_equity``, which refuse what an order opens, do not refuse it (the engine makes such an
   order reduce-only before the chain; the plugin holds to it on its own too).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.test_pre_trade_reversal_caps import OFF
from tradefleet_plugins.risk.pre_trade import PreTrade
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_runtime.sdk import Order, OrderIntent, OrderType, RiskAction, RiskDecision, Side
from tradefleet_runtime.sdk.testing import risk_context

BUY_LIMIT = Order("bid-1", "X", Side.BUY, 20.0, OrderType.LIMIT, price=100.0)


def _check(
    intent: OrderIntent,
    held: float,
    *,
    equity: float = 10_000.0,
    working: tuple[Order, ...] = (),
    **on: Any,
) -> RiskDecision:
    params = PreTradeParams(**{**OFF, "margin_leverage": 100, **on})
    ctx = risk_context(
        "X", equity=equity, marks={"X": 100.0}, positions={"X": held} if held else {},
    )._replace(entries=working)  # fmt: skip
    return PreTrade(params).check(intent, ctx)


@pytest.mark.parametrize(
    ("held", "asked", "most"),
    [(0.0, 40.0, 30.0), (50.0, 100.0, 80.0)],  # an entry from flat; a reversal (closes 50)
    ids=["entry", "reversal"],
)
def test_an_opposite_working_entry_is_not_counted_as_filled_by_max_leverage(
    held: float, asked: float, most: float
) -> None:
    """X at 100, 10,000 of equity, a 0.3x cap: at most 30 of X either way. Without the buy
    limit the order is refused (the control); with it, it must not leave more than 30 short
    should the limit never fill."""
    alone = _check(OrderIntent("X", Side.SELL, asked), held, max_leverage=0.3)
    assert alone.action is not RiskAction.APPROVE  # the control
    decision = _check(
        OrderIntent("X", Side.SELL, asked), held, working=(BUY_LIMIT,), max_leverage=0.3
    )
    sent = asked if decision.action is RiskAction.APPROVE else decision.quantity or 0.0
    assert decision.action is RiskAction.VETO or sent <= most + 1e-9, (
        f"{decision.action} {sent}: short {sent - held:g} of X ({(sent - held) / 100:.1f}x) if "
        f"the buy limit of 20 does not fill; {decision.reason}"
    )


@pytest.mark.parametrize(
    ("equity", "on"),
    [(900.0, {"min_balance": 1_000.0}), (-100.0, {})],
    ids=["min_balance", "no_equity"],
)
def test_a_plain_sell_of_the_whole_long_is_an_exit_that_goes(
    equity: float, on: dict[str, Any]
) -> None:
    decision = _check(OrderIntent("X", Side.SELL, 50.0), 50.0, equity=equity, **on)
    assert decision.action is RiskAction.APPROVE, (
        f"the exit of the long is refused: {decision.code}: {decision.reason}"
    )
