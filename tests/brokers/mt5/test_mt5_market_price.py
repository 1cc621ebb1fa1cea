"""``quotes-prices`` on the MT5 broker: the terminal's current tick, the ask to buy and the bid
to sell, which a market entry decided between bars is sized at (not the last bar's close)."""

from __future__ import annotations

import pytest

from tests.brokers.mt5.harness import Mt5Harness
from tradefleet_runtime.sdk import Side

pytestmark = pytest.mark.usefixtures("transport")


def test_the_price_is_the_terminals_ask_to_buy_and_bid_to_sell(netting: Mt5Harness) -> None:
    netting.venue.set_price("EURUSD", 1.10500, 1.10512)
    assert netting.broker.market_price("EURUSD", Side.BUY) == pytest.approx(1.10512)
    assert netting.broker.market_price("EURUSD", Side.SELL) == pytest.approx(1.10500)


def test_a_mapped_symbol_is_read_under_the_terminals_name(netting: Mt5Harness) -> None:
    netting.venue.set_price("GOLD.pro", 2_345.10, 2_345.40)
    assert netting.broker.market_price("XAUUSD", Side.BUY) == pytest.approx(2_345.40)


def test_no_price_for_a_symbol_the_bot_does_not_trade(netting: Mt5Harness) -> None:
    assert netting.broker.market_price("GBPUSD", Side.BUY) is None


def test_no_price_without_a_two_sided_tick(netting: Mt5Harness) -> None:
    netting.venue.set_price("EURUSD", 1.10500, 0.0)
    assert netting.broker.market_price("EURUSD", Side.BUY) is None
