"""``quotes-prices`` on the ccxt broker: the prices ``market_price`` answers are read on the
broker's I/O thread, a round of ticker reads every few seconds, so the engine thread that asks
(and every command queued behind it, an emergency stop among them) never waits on the network.

An ask finding no fresh price answers None at once and starts the next round; a ticker read
that hangs is given up once its price could no longer be fresh, so the next round is not held
for the client's whole timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness, harness_for
from tradefleet_plugins.brokers import ccxt_broker
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.capabilities import QUOTE_MAX_AGE_S
from tradefleet_runtime.model import Side

MOVED = 50_700.0
TICKER = "/fapi/v1/ticker/24hr"  # the fake Binance USDⓈ-M's ticker


def _ticker_reads(harness: VenueHarness) -> int:
    return sum("ticker" in record.path.lower() for record in harness.fake.requests)


def _age_held_prices(broker: CcxtBroker) -> None:
    """Make the prices the broker holds older than ``QUOTE_MAX_AGE_S``."""
    for market, (began, ticker) in list(broker._quotes.items()):
        broker._quotes[market] = (began - QUOTE_MAX_AGE_S - 1.0, ticker)


def _until(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held (polled); fails past ``timeout``."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"not within {timeout:g}s"
        time.sleep(0.02)
    return time.monotonic() - began


def _priced(harness: VenueHarness, price: float) -> Callable[[], bool]:
    def check() -> bool:
        quote = harness.broker.market_price(harness.symbol, Side.BUY)
        return quote is not None and quote == pytest.approx(price, rel=1e-3)

    return check


@pytest.fixture(name="usdm")
def _usdm(tmp_path: Path) -> Iterator[VenueHarness]:
    with harness_for("binance-usdm", tmp_path, timeout_ms=20_000) as harness:
        assert isinstance(harness, VenueHarness)
        yield harness


def test_asks_never_wait_on_a_ticker_that_hangs(usdm: VenueHarness) -> None:
    """The review's case: the venue's ticker hangs (15 s) after the broker's price aged out.
    Each ask is answered at once with no price (the old broker waited 2 s on the engine thread
    for the same stuck read, every time), and the stuck read is given up after
    ``_QUOTE_READ_S``: a price comes back long before the 15 s end of the hang."""
    _until(_priced(usdm, 50_000.0), 5.0)  # the first round read the ticker
    usdm.fake.faults.inject("latency", path=TICKER, delay_ms=15_000)
    usdm.trade_through(MOVED)
    time.sleep(ccxt_broker._QUOTE_EVERY_S + 0.5)  # a round's read is now stuck in the hang
    _age_held_prices(usdm.broker)
    waits, answers = [], []
    for _ in range(5):
        began = time.monotonic()
        answers.append(usdm.broker.market_price(usdm.symbol, Side.BUY))
        waits.append(time.monotonic() - began)
    assert answers == [None] * 5
    assert max(waits) < 0.05, f"asks waited {waits} s on the engine thread"
    back = _until(_priced(usdm, MOVED), 12.0)
    assert back < 15.0 - ccxt_broker._QUOTE_EVERY_S - 0.5  # before the hang ended


def test_an_ask_without_a_fresh_price_starts_the_next_round_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds a minute apart here: only the ask's kick can bring the moved price within a
    second or two."""
    monkeypatch.setattr(ccxt_broker, "_QUOTE_EVERY_S", 60.0)
    with harness_for("binance-usdm", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        _until(_priced(harness, 50_000.0), 5.0)  # the first round, at connect
        harness.trade_through(MOVED)
        time.sleep(0.2)  # the round's wait has begun
        _age_held_prices(harness.broker)
        assert harness.broker.market_price(harness.symbol, Side.BUY) is None
        assert _until(_priced(harness, MOVED), 5.0) < 3.0


def test_prices_follow_the_venue_within_a_round_and_reads_stay_spaced(
    usdm: VenueHarness,
) -> None:
    """No ask needed: the price a market entry meets is read ahead, every ``_QUOTE_EVERY_S``
    (one market: a read per round, not one per poll of the orders, every 50 ms here)."""
    _until(_priced(usdm, 50_000.0), 5.0)
    usdm.trade_through(MOVED)
    assert _until(_priced(usdm, MOVED), ccxt_broker._QUOTE_EVERY_S + 3.0) > 0.0
    before = _ticker_reads(usdm)
    time.sleep(3 * ccxt_broker._QUOTE_EVERY_S)
    assert 2 <= _ticker_reads(usdm) - before <= 4
