"""A sizer's ``max_leverage`` cap prices the costs of a reversal's close at the mark.

The cap leaves room for the fee and slippage of what closes before the entry
(``closed_by_exits``, tests/plugins/test_sizer_reversal_cap.py). A ``ctx.close`` is a market
order: it fills at the mark moved by the slippage, not at a buy limit resting below it. Priced at
the entry's price, a short reversed by ``ctx.close`` + a buy limit under the market left too
little room for the close's costs, and the entry the cap sized came over ``max_leverage`` of the
equity the close left: the paper broker refused it and the bot ended flat. The costs are taken
at the worse (higher) of the mark and the entry's price.
"""

from __future__ import annotations

import pytest

from tradefleet_plugins.risk.kelly import Kelly
from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.sizers import FixedFractional
from tradefleet_plugins.risk.sizers_params import FixedFractionalParams
from tradefleet_plugins.risk.sizing import closing_price
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, OrderType, Side
from tradefleet_runtime.sdk import Strategy, leverage_cap_quantity
from tradefleet_runtime.sdk.testing import make_bars, risk_context, run_strategy

EQUITY, MARK, LIMIT, LEVERAGE = 10_000.0, 100.0, 80.0, 5.0
FEE, SLIP = 0.0026, 0.001
HELD = -500.0  # short 500 at the mark


def _cash_after_close(held: float, mark: float) -> float:
    """The paper broker's cash once a market close of ``held`` filled at ``mark`` moved by the
    slippage against the bot, with its fee: the equity left, the account flat."""
    cash = EQUITY - held * mark  # equity = cash + held x mark
    side = -1.0 if held > 0 else 1.0
    fill = mark * (1 + side * SLIP)
    return cash + held * fill - abs(held) * fill * FEE


def _context(closable: float = 0.0) -> RiskContext:
    return risk_context(
        "X",
        equity=EQUITY,
        positions={"X": HELD},
        marks={"X": MARK},
        instrument=Instrument("X", taker_fee=FEE, slippage=SLIP),
        closable={"X": closable},
    )


def _fits(quantity: float, cash: float, price: float) -> bool:
    """The paper broker's check for what opens, a limit filling at ``price`` (no slippage)."""
    return quantity * price / LEVERAGE <= cash - quantity * price * FEE


def test_a_limit_entry_behind_a_market_close_fits_the_margin_the_close_leaves() -> None:
    sizer = FixedFractional(
        FixedFractionalParams(risk_per_trade=0.2, default_stop_pct=0.001, max_leverage=LEVERAGE)
    )
    intent = OrderIntent("X", Side.BUY, order_type=OrderType.LIMIT, price=LIMIT)
    quantity = sizer.check(intent, _context()).quantity
    assert quantity is not None and quantity > 0
    cash = _cash_after_close(HELD, MARK)
    assert _fits(quantity, cash, LIMIT), (quantity, cash)
    # And no room is wasted: the cap is the broker's check, to the rounding room.
    assert quantity * LIMIT * (1 / LEVERAGE + FEE) == pytest.approx(cash, rel=1e-9)


def test_every_sizer_through_the_shared_cap_prices_the_close_at_the_mark() -> None:
    """Kelly (and volatility-target, pre-trade's sized path) cap through ``leverage_cap``."""
    kelly = Kelly(KellyParams(fallback_risk=0.2, max_risk=0.2, max_leverage=LEVERAGE))
    intent = OrderIntent(
        "X", Side.BUY, order_type=OrderType.LIMIT, price=LIMIT, stop_loss=LIMIT * 0.999
    )
    quantity = kelly.check(intent, _context()).quantity
    assert quantity is not None and quantity > 0
    assert _fits(quantity, _cash_after_close(HELD, MARK), LIMIT), quantity


def test_a_sized_limit_behind_a_close_is_cut_to_the_margin_the_close_leaves() -> None:
    sizer = FixedFractional(FixedFractionalParams(max_leverage=LEVERAGE))
    intent = OrderIntent("X", Side.BUY, 10_000.0, OrderType.LIMIT, LIMIT)
    quantity = sizer.check(intent, _context()).quantity
    assert quantity is not None and 0 < quantity < 10_000.0
    assert _fits(quantity, _cash_after_close(HELD, MARK), LIMIT), quantity


def test_the_closing_price_is_the_worse_of_the_mark_and_the_entrys() -> None:
    ctx = _context()
    below = OrderIntent("X", Side.BUY, order_type=OrderType.LIMIT, price=LIMIT)
    above = OrderIntent("X", Side.BUY, order_type=OrderType.STOP, price=120.0)
    assert closing_price(below, ctx, LIMIT) == MARK
    assert closing_price(above, ctx, 120.0) == 120.0  # a stop's own closing part fills there
    # No mark known: the entry's price.
    assert closing_price(below, risk_context("X"), LIMIT) == LIMIT


def test_the_closing_price_defaults_to_the_entrys_price() -> None:
    """The SDK function called without a closing price keeps its answer, to the bit."""
    assert leverage_cap_quantity(EQUITY, MARK, LEVERAGE, FEE, SLIP, 500.0) == (
        leverage_cap_quantity(EQUITY, MARK, LEVERAGE, FEE, SLIP, 500.0, None, MARK)
    )
    assert leverage_cap_quantity(EQUITY, LIMIT, LEVERAGE, FEE, 0.0, 500.0, SLIP, MARK) < (
        leverage_cap_quantity(EQUITY, LIMIT, LEVERAGE, FEE, 0.0, 500.0, SLIP)
    )


class _ShortThenLimit(Strategy):
    """Short 500 at bar 2's close, then at bar 4's ``ctx.close`` + an unsized buy limit 20%
    under the market, which the drop at bar 6 fills."""

    def __init__(self) -> None:
        super().__init__(None)
        self.seen = 0

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        if self.seen == 2:
            ctx.sell(bar.symbol, 500.0, tag="open")
        if self.seen == 4:
            ctx.close(bar.symbol, tag="close")
            ctx.buy(
                bar.symbol,
                order_type=OrderType.LIMIT,
                price=bar.close * 0.8,
                stop_loss=bar.close * 0.8 * 0.999,
                tag="entry",
            )
        self.seen += 1


def test_the_paper_broker_fills_the_limit_the_cap_sized_behind_a_close() -> None:
    bars = make_bars([100.0] * 6 + [79.0, 79.0])
    run = run_strategy(
        _ShortThenLimit(),
        bars,
        capital=EQUITY,
        broker_params={"fee_bps": FEE * 10_000, "slippage_bps": SLIP * 10_000, "leverage": 5.0},
        risk=[
            (
                "fixed-fractional",
                FixedFractional(FixedFractionalParams(risk_per_trade=0.2, max_leverage=LEVERAGE)),
            )
        ],
        warmup=False,
    )
    refused = [o.reason for o in run.orders if o.tag == "entry" and o.status == "rejected"]
    assert not refused, f"the reversal's entry was refused: {refused}"
    assert [f for f in run.fills if f.reason == "entry"], "the entry never filled"
