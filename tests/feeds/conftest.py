"""The ccxt feed against each fake venue: Binance spot, Binance USDⓈ-M and Bybit v5 linear."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.venues.binance.server import FakeBinance
from tests.venues.bybit.server import FakeBybit
from tests.venues.candle_replay import Apply, ReplayClock, ScriptCandle, binance_apply, bybit_apply
from tradefleet_plugins.feeds.ccxt_feed import CcxtFeed
from tradefleet_plugins.feeds.ccxt_feed_params import CcxtFeedParams

# 2026-01-01 00:00 UTC, in ms: candles are on a one-minute grid from here.
T0_MS = 1_767_225_600_000
MINUTE_MS = 60_000


@dataclass
class Venue:
    """One fake venue as the ccxt feed sees it."""

    name: str
    fake: Any
    exchange: str
    market_type: str
    symbols: tuple[str, ...]  # the bot's symbols
    ids: tuple[str, ...]  # the venue's market ids, in the same order
    apply: Apply
    klines_path: str
    auth_reject: dict[str, Any]

    def clock(self, candles: list[ScriptCandle], now_ms: int) -> ReplayClock:
        return ReplayClock(self.fake.state.clock, self.apply, candles, start_ms=now_ms)

    def params(self, **overrides: Any) -> CcxtFeedParams:
        values: dict[str, Any] = {
            "exchange": self.exchange,
            "market_type": self.market_type,
            "api_url": self.fake.url,
            "rate_limit_ms": 1,  # the limiter stays on; a local fake needs no spacing
            "timeout_ms": 2000,
            "settle_s": 1.0,
            "poll_s": 1.0,
        }
        values.update(overrides)
        return CcxtFeedParams.model_validate(values)

    def feed(self, clock: ReplayClock, **overrides: Any) -> CcxtFeed:
        return CcxtFeed(self.params(**overrides), clock=clock)


VENUES = ("binance-spot", "binance-usdm", "bybit")


def _binance(market: str) -> Iterator[Venue]:
    fake = FakeBinance()
    fake.start()
    try:
        spot = market == "spot"
        yield Venue(
            name=f"binance-{market}",
            fake=fake,
            exchange="binance" if spot else "binanceusdm",
            market_type="spot" if spot else "linear",
            symbols=("BTC/USDT", "ETH/USDT") if spot else ("BTC/USDT:USDT", "ETH/USDT:USDT"),
            ids=("BTCUSDT", "ETHUSDT"),
            apply=binance_apply(fake, market),
            klines_path="/api/v3/klines" if spot else "/fapi/v1/klines",
            auth_reject={
                "code": -2015,
                "msg": "Invalid API-key, IP, or permissions for action.",
                "status": 401,
            },
        )
    finally:
        fake.stop()


def _bybit() -> Iterator[Venue]:
    fake = FakeBybit()
    fake.start()
    try:
        yield Venue(
            name="bybit",
            fake=fake,
            exchange="bybit",
            market_type="linear",
            # The venue's market ids as the bot's symbols: the feed finds the linear market.
            symbols=("BTCUSDT", "ETHUSDT"),
            ids=("BTCUSDT", "ETHUSDT"),
            apply=bybit_apply(fake),
            klines_path="/v5/market/kline",
            auth_reject={"code": 10003, "msg": "API key is invalid."},
        )
    finally:
        fake.stop()


@pytest.fixture(params=VENUES)
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    if request.param == "bybit":
        yield from _bybit()
    else:
        yield from _binance(request.param.removeprefix("binance-"))


@pytest.fixture
def binance_spot_venue() -> Iterator[Venue]:
    yield from _binance("spot")


@pytest.fixture
def bybit_venue() -> Iterator[Venue]:
    yield from _bybit()
