"""The paper broker's liquidation at the right moment and price: on the bar a position opens,
after the orders a gap filled at the open, and, after a restart, never on another symbol's
price from before it (its last fill's) until that symbol has a bar.
"""

from __future__ import annotations

import pytest

from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.model import Bar, Fill, Order, OrderType, Side

HOUR = 3600
T0 = 1_704_067_200
BTC, ETH = "BTCUSDT", "ETHUSDT"
# 1,000 of equity, 100 BTC bought at 100 at 10x: cash -9,000, liquidated at 90.45.
LONG_AT = 9_000.0 / (100 * 0.995)


def _broker() -> PaperBroker:
    broker = PaperBroker(PaperBrokerParams(leverage=10))
    broker.connect(BrokerContext("b", "paper", (BTC, ETH), "USDT", 1_000.0))  # type: ignore[arg-type]
    return broker


def _bar(i: int, o: float, h: float, lo: float, c: float, symbol: str = BTC) -> Bar:
    return Bar(symbol, HOUR, T0 + i * HOUR, o, h, lo, c, 1.0)


def _fills(events: object) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]  # type: ignore[attr-defined]


def test_a_position_opened_at_a_bars_open_is_liquidated_inside_that_bar() -> None:
    # The same bar liquidates a position held before it (at 90.45); a position the bar's
    # open filled is the same position from the open on, and the bar falls to 85 after it.
    # It took the lean path (no liquidation price before the fill), and the 10x long
    # survived a fall 5 below it; the vectorised path refused the run ("liquidated").
    held = _broker()
    held.submit(Order("e", BTC, Side.BUY, 100.0, created_ts=T0))
    held.on_bar(_bar(0, 100, 100, 100, 100))
    [liquidated] = _fills(held.on_bar(_bar(1, 100, 100, 85, 99)))
    assert liquidated.reason == "liquidation"

    fresh = _broker()
    fresh.submit(Order("e", BTC, Side.BUY, 100.0, created_ts=T0 + HOUR))
    fresh.on_bar(_bar(0, 100, 100, 100, 100))  # before the order works
    fills = _fills(fresh.on_bar(_bar(1, 100, 100, 85, 99)))
    assert [f.reason for f in fills] == ["market", "liquidation"]
    assert fills[1].price == pytest.approx(LONG_AT)


def test_a_take_profit_the_bar_opened_beyond_fills_before_a_later_liquidation() -> None:
    # Long 100 at 100 (10x), a reduce-only take-profit at 105. The bar gaps up to 106 (the
    # take-profit fills at that open, the broker's own rule: at-open triggers come first),
    # then falls to 88, below the liquidation price 90.45 of a position no longer held.
    # Liquidated at 90.45 instead, the take-profit cancelled, equity was 45, not 1,600.
    broker = _broker()
    broker.submit(Order("e", BTC, Side.BUY, 100.0, created_ts=T0))
    broker.on_bar(_bar(0, 100, 100, 100, 100))
    take_profit = Order(
        "tp", BTC, Side.SELL, 100.0, OrderType.LIMIT, 105.0, reduce_only=True, created_ts=T0
    )
    broker.submit(take_profit)
    fills = _fills(broker.on_bar(_bar(1, 106, 107, 88, 89)))
    assert [(f.client_order_id, f.price) for f in fills] == [("tp", 106.0)]
    assert broker.balance() == pytest.approx(1_600.0)


def _two_longs() -> list[Fill]:
    return [
        Fill("a", BTC, Side.BUY, 50.0, 100.0, 0.0, T0, "a-f1", "market"),
        Fill("b", ETH, Side.BUY, 50.0, 100.0, 0.0, T0, "b-f1", "market"),
    ]


def test_a_restarted_account_is_not_liquidated_on_its_other_symbols_fill_prices() -> None:
    # 50 BTC and 50 ETH bought at 100 at 10x (cash -9,000). ETH rallies to 200, BTC falls
    # to 75: equity -9,000 + 3,750 + 10,000 = 4,750 against a maintenance margin of 69.
    # The broker that lived through the bars does not liquidate. A paper bot restarted
    # there (restore_account: the journaled fills) knows ETH's price from its last fill
    # (100, not 200) until ETH's next bar, which comes after BTC's at the same time
    # (spec.market.symbols order): it must not liquidate BTC at 75 on that price.
    lived = _broker()
    lived.submit(Order("a", BTC, Side.BUY, 50.0, created_ts=T0))
    lived.submit(Order("b", ETH, Side.BUY, 50.0, created_ts=T0))
    lived.on_bar(_bar(0, 100, 100, 100, 100))
    lived.on_bar(_bar(0, 100, 100, 100, 100, ETH))
    for i in range(1, 5):
        lived.on_bar(_bar(i, 100, 100, 100, 100))
        eth = 100 + 25 * i
        lived.on_bar(_bar(i, eth, eth, eth, eth, ETH))
    assert not _fills(lived.on_bar(_bar(5, 75, 76, 74, 75)))

    restarted = _broker()
    restarted.restore_account(_two_longs())
    assert not _fills(restarted.on_bar(_bar(5, 75, 76, 74, 75)))
