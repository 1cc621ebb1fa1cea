"""A limit order the next open is already through was marketable when it reached the venue: it
takes liquidity as a market order does (the taker fee, the slippage), never beyond its limit.

Before, the paper broker filled it at the bare open with ``maker_fee_bps`` and no slippage: a
strategy writing its entries as far-away limits backtested without its costs (with
``fee_bps: 10``, ``maker_fee_bps: 0``, ``slippage_bps: 10``: 0.2 % a side a market order pays,
0 for the limit). A limit that rests first and is then reached, or gapped through, is a maker's.
"""

from __future__ import annotations

import pytest

from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.model import Fill, Order
from tradefleet_runtime.sdk import NoParams, OrderType, Side, Strategy
from tradefleet_runtime.sdk.testing import make_bar, run_strategy

COSTS = {"fee_bps": 10.0, "maker_fee_bps": 0.0, "slippage_bps": 10.0}


class _OneOrder(Strategy):
    """Sends one order of 1 unit at the close of the first bar."""

    def __init__(self, side: Side, order_type: OrderType, price: float | None) -> None:
        super().__init__(NoParams())
        self.side, self.order_type, self.price = side, order_type, price
        self.sent = False

    def on_bar(self, bar) -> None:  # type: ignore[no-untyped-def]
        if not self.sent:
            self.sent = True
            send = self.ctx.buy if self.side is Side.BUY else self.ctx.sell
            send(bar.symbol, 1.0, order_type=self.order_type, price=self.price, tag="entry")


def _bars() -> list:  # type: ignore[type-arg]
    return [
        make_bar(100, 100, 100, 100, index=0),
        make_bar(100, 100.5, 99.5, 100, index=1),
        make_bar(100, 100, 100, 100, index=2),
    ]


def _entry(side: Side, order_type: OrderType, price: float | None):  # type: ignore[no-untyped-def]
    run = run_strategy(
        _OneOrder(side, order_type, price), _bars(), broker_params=COSTS, warmup=False
    )
    (fill,) = [f for f in run.fills if f.reason == "entry"]
    return fill


@pytest.mark.parametrize(("side", "limit"), [(Side.BUY, 110.0), (Side.SELL, 90.0)])
def test_a_limit_through_the_market_costs_what_a_market_order_does(
    side: Side, limit: float
) -> None:
    market = _entry(side, OrderType.MARKET, None)
    marketable = _entry(side, OrderType.LIMIT, limit)
    # The market order: the open moved 10 bp against it, and the 10 bp taker fee.
    assert market.price == pytest.approx(100 * (1.001 if side is Side.BUY else 0.999))
    assert market.fee == pytest.approx(market.price * 0.001)
    # The marketable limit took the same liquidity: no better price, the same taker fee.
    assert marketable.price == pytest.approx(market.price)
    assert marketable.fee == pytest.approx(market.fee)


def test_a_resting_limit_still_fills_at_its_price_as_a_maker() -> None:
    """The control: a limit below the market rests and fills at its price with the maker fee."""
    resting = _entry(Side.BUY, OrderType.LIMIT, 99.8)
    assert (resting.price, resting.fee) == (99.8, 0.0)


def test_the_slippage_never_takes_a_marketable_limit_beyond_its_price() -> None:
    """A buy limit at 100.05 with the open at 100: the market order's 100.1 would pay more
    than the limit allows, so the fill is at the limit, with the taker fee."""
    fill = _entry(Side.BUY, OrderType.LIMIT, 100.05)
    assert fill.price == 100.05
    assert fill.fee == pytest.approx(100.05 * 0.001)


class _RestThenGap(Strategy):
    """A buy limit at 99 the first bar's close (100) is above: it rests, and a later bar
    opens below it."""

    def __init__(self) -> None:
        super().__init__(NoParams())
        self.sent = False

    def on_bar(self, bar) -> None:  # type: ignore[no-untyped-def]
        if not self.sent:
            self.sent = True
            self.ctx.buy(bar.symbol, 1.0, order_type=OrderType.LIMIT, price=99.0, tag="entry")


def test_a_resting_limit_gapped_through_is_still_a_makers_fill_at_the_open() -> None:
    bars = [
        make_bar(100, 100, 100, 100, index=0),
        make_bar(100, 100.5, 99.5, 100, index=1),  # the order's first bar: it rests
        make_bar(98, 98.5, 97.5, 98, index=2),  # opens through it
    ]
    run = run_strategy(_RestThenGap(), bars, broker_params=COSTS, warmup=False)
    (fill,) = run.fills
    assert (fill.ts, fill.price, fill.fee) == (bars[2].ts, 98.0, 0.0)


def test_a_limit_moved_through_the_market_takes_liquidity_on_its_next_bar() -> None:
    """Moved (amended) to a price the next open is through, a resting limit arrives again,
    marketable: the taker's fill, as a new order there would have."""
    broker = PaperBroker(PaperBrokerParams(**COSTS))
    broker.connect(BrokerContext("moved", "paper", ("TEST",), "USD", 10_000.0))  # type: ignore[arg-type]
    bars = [make_bar(100, 100.5, 99.5, 100, index=i) for i in range(3)]
    order = Order("moved-1", "TEST", Side.BUY, 1.0, OrderType.LIMIT, 99.0, created_ts=bars[1].ts)
    broker.submit(order)
    assert not broker.on_bar(bars[1])  # rests below the market
    broker.amend(order.client_order_id, None, 101.0)
    (fill,) = [e for e in broker.on_bar(bars[2]) if isinstance(e, Fill)]
    assert fill.price == pytest.approx(100.1)
    assert fill.fee == pytest.approx(100.1 * 0.001)
