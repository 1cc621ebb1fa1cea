"""Kraken spot at its documented defaults (ccxt's own rate limiting, a poll every second): the
price ``market_price`` answers with stays fresh while the broker polls a working order.

ccxt spaces Kraken's private reads by their cost (an order list 3 s, own trades 6 s); a ticker
read queued behind them was given up after 5 s, and a market entry decided between bars was
refused for want of a price. Kraken limits public calls per IP, apart from the key's private
counter, so the broker reads its tickers through a client of their own."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal
from pathlib import Path

from tests.brokers.harness import VenueHarness, harness_for
from tests.venues.kraken.server import FakeKraken
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.sdk import BrokerContext, OrderStatus, OrderType, Side
from tradefleet_runtime.spec.model import Mode

WINDOW_S = 10.0
EVERY_S = 0.25


def test_the_quote_stays_fresh_while_a_kraken_bot_polls_its_working_orders(
    tmp_path: Path,
) -> None:
    # ccxt's spacing for Kraken and a poll every second, as documented; the start's look-back
    # for earlier ids (three private reads, seconds each) is skipped to keep the test short.
    with harness_for(
        "kraken", tmp_path, rate_limit_ms=None, poll_interval_s=1.0, known_ids_lookback_h=0
    ) as h:
        assert isinstance(h, VenueHarness)
        with h.fake.state.lock:
            h.fake.account().balances["XXBT"] = Decimal(0)
        # A resting order: its open list is read at every poll cycle, 3 s of spacing each.
        h.broker.submit(h.order("fresh1", price=40_000.0, order_type=OrderType.LIMIT))
        h.wait_for(
            lambda _e: (
                (r := h.broker.query_order("fresh1")) is not None and r.status is OrderStatus.OPEN
            ),
            30,
        )
        missing: list[float] = []
        start = time.monotonic()
        while (now := time.monotonic()) - start < WINDOW_S:
            if h.broker.market_price(h.symbol, Side.BUY) is None:
                missing.append(round(now - start, 1))
            h.collect()
            time.sleep(EVERY_S)
        assert missing == [], (
            f"no fresh price at {len(missing)} of {int(WINDOW_S / EVERY_S)} moments: {missing}"
        )


def test_kraken_tickers_keep_the_public_pace_and_never_hold_a_private_read(
    tmp_path: Path,
) -> None:
    """Kraken's public calls are limited per IP, about one a second: the tickers keep that
    pace even where ``rate_limit_ms`` spaces the private calls closer (20 ms in the harness),
    and a private read does not wait for them."""
    with harness_for("kraken", tmp_path) as h:
        assert isinstance(h, VenueHarness)
        venue, loop = h.broker._venue, h.broker._loop
        assert venue is not None and loop is not None
        market = h.broker._markets[h.symbol]
        began = time.monotonic()

        async def burst() -> float:
            tickers = [asyncio.ensure_future(venue.once("fetch_ticker", market)) for _ in range(3)]
            await asyncio.sleep(0.05)  # the tickers are queued at the public limiter
            sent = time.monotonic()
            await venue.once("fetch_open_orders")
            private_s = time.monotonic() - sent
            await asyncio.gather(*tickers)
            return private_s

        private_s = loop.call(burst(), 30)
        arrivals = [r.at for r in h.fake.requests if r.path == "/0/public/Ticker" and r.at >= began]
        gaps = [round(b - a, 2) for a, b in itertools.pairwise(arrivals)]
        assert len(arrivals) >= 3
        assert min(gaps) >= 0.95, gaps
        assert private_s < 0.9, private_s


def test_a_kraken_bot_reads_all_its_symbols_prices_in_one_public_call(tmp_path: Path) -> None:
    """At one public call a second, a read per symbol would age each price by a second more
    for every symbol the bot trades: Kraken's Ticker takes them all at once."""
    fake = FakeKraken().start()
    (tmp_path / "apiKey").write_text(fake.api_key)
    (tmp_path / "secret").write_text(fake.secret)
    broker = CcxtBroker(CcxtBrokerParams(exchange="kraken", api_url=fake.url, rate_limit_ms=10))
    symbols = ("BTC/USD", "ETH/USD")
    try:
        broker.connect(BrokerContext("two-symbols", Mode.LIVE, symbols, "USD", 1e5, tmp_path))
        began = time.monotonic()

        def tickers() -> list[str]:
            return [
                r.params.get("pair", "")
                for r in list(fake.requests)
                if r.path == "/0/public/Ticker" and r.at >= began
            ]

        deadline = began + 10.0
        while len(tickers()) < 2:  # two rounds after the start's
            assert time.monotonic() < deadline, tickers()
            time.sleep(0.1)
        assert all("," in pairs for pairs in tickers()), tickers()
        for symbol in symbols:
            assert broker.market_price(symbol, Side.SELL) is not None, symbol
    finally:
        broker.close()
        fake.stop()
