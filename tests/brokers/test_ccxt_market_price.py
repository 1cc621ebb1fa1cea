"""``quotes-prices`` on the ccxt broker: where the venue's market stands now, for a market entry
decided between bars (the engine sizes it there, not at the last close). The broker reads it
ahead on its I/O thread (``test_ccxt_price_poll.py``) and answers from that at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers.harness import VENUE_SETUPS, VenueHarness, harness_for
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker, side_price
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.registry import tradefleet_brokers
from tradefleet_runtime.capabilities import Capability, PriceQuoter
from tradefleet_runtime.model import Side

MOVED = 50_700.0


@pytest.fixture(params=VENUE_SETUPS)
def venue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VenueHarness]:
    with harness_for(request.param, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        yield harness


def _ticker_reads(harness: VenueHarness) -> int:
    return sum("ticker" in record.path.lower() for record in harness.fake.requests)


def _price_becomes(harness: VenueHarness, side: Side, price: float) -> float:
    """The broker's price on ``side`` once a round of its reads showed ``price`` (a few
    seconds at most)."""
    deadline = time.monotonic() + 8.0
    while True:
        quote = harness.broker.market_price(harness.symbol, side)
        if quote is not None and quote == pytest.approx(price, rel=1e-3):
            return quote
        assert time.monotonic() < deadline, f"{side} price {quote}, not {price}"
        time.sleep(0.05)


def test_the_price_is_the_venues_to_buy_and_to_sell(venue: VenueHarness) -> None:
    venue.trade_through(MOVED)
    buy = _price_becomes(venue, Side.BUY, MOVED)
    sell = _price_becomes(venue, Side.SELL, MOVED)
    assert sell <= buy  # the bid and the ask where the venue gives a book


def test_a_burst_of_asks_costs_the_venue_no_read(venue: VenueHarness) -> None:
    """The asks are answered from the price read ahead: a burst of signals adds no request."""
    _price_becomes(venue, Side.BUY, 50_000.0)
    reads = _ticker_reads(venue)
    began = time.monotonic()
    for _ in range(20):
        assert venue.broker.market_price(venue.symbol, Side.BUY) is not None
    assert time.monotonic() - began < 0.1
    assert _ticker_reads(venue) - reads <= 1  # a round of its own may fall in between


def test_a_symbol_the_broker_does_not_trade_has_no_price(tmp_path: Path) -> None:
    with harness_for("binance-usdm", tmp_path) as harness:
        assert harness.broker.market_price("ETH/USDT:USDT", Side.BUY) is None


@pytest.mark.parametrize(
    ("ticker", "buy", "sell"),
    [
        ({"bid": 99.0, "ask": 101.0, "last": 100.0}, 101.0, 99.0),
        ({"bid": None, "ask": None, "last": 100.0}, 100.0, 100.0),  # Binance USDⓈ-M's
        ({"bid": "99", "ask": "101", "last": "100"}, 101.0, 99.0),
        ({"bid": 0.0, "ask": float("nan"), "last": 100.0}, 100.0, 100.0),
        ({"last": None}, 0.0, 0.0),
        ({"last": -5.0}, 0.0, 0.0),
    ],
)
def test_side_price_reads_the_book_then_the_last_trade(
    ticker: dict[str, object], buy: float, sell: float
) -> None:
    assert (side_price(ticker, Side.BUY), side_price(ticker, Side.SELL)) == (buy, sell)


def test_the_live_brokers_declare_quotes_prices_and_the_paper_broker_does_not() -> None:
    """A paper bot's order decided between bars fills at the next bar's open, which no price
    now tells: it is decided at the last close, as a backtest's is."""
    declared = {
        spec.name: Capability.QUOTES_PRICES in spec.capabilities for spec in tradefleet_brokers()
    }
    assert declared == {"paper": False, "mt5": True, "ccxt": True}
    assert issubclass(CcxtBroker, PriceQuoter) and issubclass(Mt5Broker, PriceQuoter)
    assert not issubclass(PaperBroker, PriceQuoter)
