"""The paper broker keeps one book of the account: a fill is applied to positions and cash once.

The engine's portfolio is where positions (average price, realized PnL) live. The paper broker
keeps what its matching needs — cash, each symbol's signed quantity, the marks — and works out
average prices only when asked, from the fills it kept. These tests hold it to the account the
portfolio books from the same fills, and to the matching rules that read its cash and quantities
(the margin check, reduce-only clipping), in paper mode and in a backtest (which keeps no fills).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.helpers import HOUR, T0, Scripted, bar, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderStatus,
    OrderUpdate,
    Position,
    ReasonCode,
    Side,
)
from tradefleet_runtime.spec.model import Mode

BTC, ETH = "BTCUSDT", "ETHUSDT"


class Venue:
    """A paper account driven one market order per bar, at a flat bar's price."""

    def __init__(self, mode: Mode = Mode.PAPER, capital: float = 1_000.0, **params: float) -> None:
        self.broker = PaperBroker(PaperBrokerParams.model_validate(params))
        self.broker.connect(BrokerContext("paper-book", mode, (BTC, ETH), "USD", capital))
        self.clock = T0
        self.count = 0

    def mark(self, symbol: str, price: float) -> list[Fill | OrderUpdate]:
        """One bar of ``symbol`` trading flat at ``price``."""
        events = list(self.broker.on_bar(Bar(symbol, HOUR, self.clock, *[price] * 4, 1.0)))
        self.clock += HOUR
        return events

    def trade(
        self,
        side: Side,
        quantity: float,
        price: float,
        symbol: str = BTC,
        reduce_only: bool = False,
    ) -> list[Fill | OrderUpdate]:
        """A market order sent now, matched on the next bar (opening at ``price``)."""
        self.count += 1
        order = Order(
            f"o{self.count}", symbol, side, quantity, reduce_only=reduce_only, created_ts=self.clock
        )
        assert self.broker.submit(order).status is OrderStatus.OPEN
        return self.mark(symbol, price)


def _fills(events: Sequence[Fill | OrderUpdate]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def _codes(events: Sequence[Fill | OrderUpdate]) -> list[ReasonCode | str]:
    return ["fill" if isinstance(e, Fill) else e.code for e in events]


# A step: (buy?, quantity, price, reduce-only?)
steps = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from([0.1, 0.25, 0.5, 1.0, 1.5, 3.0]),
        st.floats(min_value=50.0, max_value=150.0, allow_nan=False).map(lambda p: round(p, 2)),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_the_broker_account_equals_the_portfolio_booked_from_its_fills(
    script: list[tuple[bool, float, float, bool]],
) -> None:
    """Cash to the bit and positions (quantity, average price, realized PnL) equal to what the
    portfolio books from the fills the broker reported, whatever the sequence of trades: opens,
    adds, partial closes, reversals, reduce-only orders clipped or cancelled, margin refusals."""
    paper, backtest = Venue(leverage=2.0), Venue(Mode.BACKTEST, leverage=2.0)
    portfolio = Portfolio(cash=1_000.0)
    for buy, quantity, price, reduce_only in script:
        side = Side.BUY if buy else Side.SELL
        events = paper.trade(side, quantity, price, reduce_only=reduce_only)
        # A backtest (no fills kept) matches exactly as a paper bot does.
        assert backtest.trade(side, quantity, price, reduce_only=reduce_only) == events
        for fill in _fills(events):
            portfolio.apply(fill)
        assert paper.broker.balance() == portfolio.cash
        assert backtest.broker.balance() == portfolio.cash
        assert paper.broker.positions() == portfolio.open_positions
        reports = {r.symbol: (r.quantity, r.average_price) for r in paper.broker.position_reports()}
        assert reports == {
            s: (p.quantity, p.average_price) for s, p in portfolio.open_positions.items()
        }


def test_the_engine_portfolio_and_the_paper_account_agree_after_an_engine_run() -> None:
    """Through the engine: the broker's cash and positions equal the portfolio's, so a fill was
    applied once to each book and never twice to either."""
    actions = {
        0: lambda ctx, b: ctx.buy("TEST", 2),
        2: lambda ctx, b: ctx.buy("TEST", 1),
        4: lambda ctx, b: ctx.sell("TEST", 1.5),
        6: lambda ctx, b: ctx.sell("TEST", 3),  # through flat: short 1.5
        8: lambda ctx, b: ctx.buy("TEST", 0.5),
    }
    strategy = Scripted(actions)
    paper = PaperBroker(PaperBrokerParams(fee_bps=10, slippage_bps=5))
    paper.connect(BrokerContext("one-book", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    journal = Journal(":memory:")
    start_test_run(journal, "one-book", bot="one-book")
    config = EngineConfig("one-book", "backtest", ("TEST",), HOUR, 10_000.0)
    engine = Engine(config, strategy, paper, journal, [])
    prices = [100, 102, 101, 105, 99, 97, 103, 108, 104, 100, 101]
    engine.run([bar(i, p, p + 1, p - 1, p) for i, p in enumerate(prices)])
    assert len(strategy.fills) == 5
    assert paper.balance() == engine.portfolio.cash
    assert paper.positions() == engine.portfolio.open_positions
    [held] = paper.positions().values()
    assert held.quantity == pytest.approx(-1.0)


def test_margin_refuses_the_fill_that_would_overreach_and_no_other() -> None:
    for mode in (Mode.PAPER, Mode.BACKTEST):
        venue = Venue(mode, capital=1_000.0, leverage=2.0)
        assert _codes(venue.trade(Side.BUY, 10, 100.0)) == ["fill"]  # margin 500 of 1000
        assert _codes(venue.trade(Side.BUY, 10, 100.0)) == ["fill"]  # margin 1000: just fits
        assert _codes(venue.trade(Side.BUY, 1, 100.0)) == [ReasonCode.INSUFFICIENT_FUNDS]
        assert _codes(venue.trade(Side.SELL, 5, 100.0)) == ["fill"]  # reducing needs none
        assert venue.broker.balance() == 1_000.0 - 2_000.0 + 500.0


def test_margin_marks_other_symbols_at_their_last_close() -> None:
    """Short 5 ETH at 100 (equity 1000); ETH closes at 50 (equity 1250, exposure 250): 9 BTC at
    100 fits (1150 ≤ 1250). At ETH's fill price it would not (500 + 900 > 1000)."""
    for mode in (Mode.PAPER, Mode.BACKTEST):
        venue = Venue(mode, capital=1_000.0)
        assert _codes(venue.trade(Side.SELL, 5, 100.0, symbol=ETH)) == ["fill"]
        venue.mark(ETH, 50.0)
        assert _codes(venue.trade(Side.BUY, 9, 100.0)) == ["fill"]
        assert _codes(venue.trade(Side.BUY, 2, 100.0)) == [ReasonCode.INSUFFICIENT_FUNDS]


def test_reduce_only_is_clipped_to_the_position_and_cancelled_when_flat() -> None:
    venue = Venue(capital=10_000.0)
    venue.trade(Side.BUY, 2, 100.0)
    events = venue.trade(Side.SELL, 3, 110.0, reduce_only=True)
    assert _codes(events) == ["fill", ReasonCode.REDUCE_ONLY]
    assert _fills(events)[0].quantity == 2
    assert venue.broker.positions() == {}
    assert _codes(venue.trade(Side.SELL, 1, 110.0, reduce_only=True)) == [ReasonCode.REDUCE_ONLY]
    assert venue.broker.balance() == 10_000.0 + 2 * 10.0
    # A short is reduced by buys only: a reduce-only buy is clipped to it.
    venue.trade(Side.SELL, 1.5, 100.0)
    events = venue.trade(Side.BUY, 4, 90.0, reduce_only=True)
    assert [f.quantity for f in _fills(events)] == [1.5]
    assert venue.broker.position_reports() == []


def test_position_reports_average_price_after_partial_closes_and_a_reversal() -> None:
    venue = Venue(capital=10_000.0)
    venue.trade(Side.BUY, 1, 100.0)
    venue.trade(Side.BUY, 3, 120.0)  # 4 at 115
    venue.trade(Side.SELL, 1, 130.0)  # +15 realized
    venue.trade(Side.SELL, 1, 90.0)  # -25 realized
    [report] = venue.broker.position_reports()
    assert (report.symbol, report.quantity, report.average_price) == (BTC, 2.0, 115.0)
    venue.trade(Side.BUY, 2, 100.0)  # 4 at 107.5
    [report] = venue.broker.position_reports()
    assert (report.quantity, report.average_price) == (4.0, 107.5)
    assert venue.broker.positions()[BTC].realized_pnl == -10.0
    venue.trade(Side.SELL, 6, 110.0)  # closes 4 (+10), opens a short of 2 at 110
    [report] = venue.broker.position_reports()
    assert (report.quantity, report.average_price) == (-2.0, 110.0)
    assert venue.broker.positions()[BTC] == Position(BTC, -2.0, 110.0, 0.0, venue.clock - HOUR)


def test_a_restored_account_trades_and_reports_as_the_original() -> None:
    original = Venue(capital=1_000.0, leverage=2.0, fee_bps=10.0)
    fills: list[Fill] = []
    for side, quantity, price in (
        (Side.BUY, 10, 100.0),
        (Side.SELL, 4, 105.0),
        (Side.BUY, 2, 95.0),
    ):
        fills += _fills(original.trade(side, quantity, price))
    restored = Venue(capital=1_000.0, leverage=2.0, fee_bps=10.0)
    restored.clock = original.clock
    restored.broker.restore_account(fills)
    assert restored.broker.balance() == original.broker.balance()
    assert restored.broker.positions() == original.broker.positions()
    assert [
        (r.symbol, r.quantity, r.average_price) for r in restored.broker.position_reports()
    ] == [(r.symbol, r.quantity, r.average_price) for r in original.broker.position_reports()]
    # Both refuse the same overreach and take the same fill after it.
    for venue in (original, restored):
        venue.count = 10
        assert _codes(venue.trade(Side.BUY, 14, 100.0)) == [ReasonCode.INSUFFICIENT_FUNDS]
        assert _codes(venue.trade(Side.BUY, 1, 100.0)) == ["fill"]
    assert restored.broker.positions() == original.broker.positions()
    assert restored.broker.balance() == original.broker.balance()


def test_a_backtest_broker_keeps_no_fills_and_says_where_positions_are() -> None:
    venue = Venue(Mode.BACKTEST, capital=10_000.0)
    venue.trade(Side.BUY, 2, 100.0)
    assert venue.broker.balance() == 10_000.0 - 200.0
    assert venue.broker.fill_reports(0) == []
    with pytest.raises(RuntimeError, match="portfolio"):
        venue.broker.positions()


def test_a_close_leaving_float_residue_is_flat_for_matching_too() -> None:
    """0.1 + 0.1 + 0.1 - 0.3 is 5.6e-17 in floats: the portfolio calls it flat, so must the
    broker's own quantity (a reduce-only order finds nothing to reduce, no dust is sold)."""
    for mode in (Mode.PAPER, Mode.BACKTEST):
        venue = Venue(mode, capital=10_000.0)
        for _ in range(3):
            venue.trade(Side.BUY, 0.1, 100.0)
        venue.trade(Side.SELL, 0.3, 100.0)
        assert _codes(venue.trade(Side.SELL, 1, 100.0, reduce_only=True)) == [
            ReasonCode.REDUCE_ONLY
        ]
        assert _codes(venue.trade(Side.BUY, 1, 100.0, reduce_only=True)) == [ReasonCode.REDUCE_ONLY]
