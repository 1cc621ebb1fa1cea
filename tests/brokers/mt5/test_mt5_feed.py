"""The ``mt5`` data feed on the emulated terminal: warm-up from history, then each bar once
closed (never the one forming), server time to UTC, gaps by the csv feed's policy."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import pytest

from tests.venues.mt5 import MT5Terminal
from tests.venues.mt5 import constants as C
from tradefleet_plugins.feeds.csv_params import GapPolicy
from tradefleet_plugins.feeds.mt5_bars import mt5_timeframe
from tradefleet_plugins.feeds.mt5_feed import Mt5Feed
from tradefleet_plugins.feeds.mt5_feed_params import Mt5FeedParams
from tradefleet_runtime.sdk import Bar, DataError, FeedRequest

from .harness import Bridge, gold_pro_symbols

OFFSET = 2 * 3600  # a broker on UTC+2


class _Market:
    """The emulator, and a clock that moves only when the feed waits (ticks every second)."""

    def __init__(self, transport: str = "direct") -> None:
        self.term = MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols())
        assert self.term.initialize()
        # the feed reads the terminal directly, or through a bridge in front of it
        self.bridge = Bridge.start(self.term) if transport == "bridge" else None
        self.module = self.bridge.client if self.bridge is not None else self.term
        self.start = int(self.term.now.timestamp())
        self.idles = 0
        self.price = 1.1

    def clock(self) -> float:
        # The emulator's clock is the server's (UTC+2 here): UTC is 2 h behind.
        return self.term.now.timestamp() - OFFSET

    def sleep(self, seconds: float) -> None:
        self.term.advance(seconds)
        self.price += 0.00001
        self.term.set_price("EURUSD", self.price)
        self.term.set_price("GOLD.pro", 2650.0 + (self.price - 1.1) * 1000)

    def idle(self) -> None:
        self.idles += 1

    def history(self, symbol: str, minutes: int, skip: frozenset[int] = frozenset()) -> None:
        rows = [
            (self.start - (minutes - k) * 60, 1.0 + k, 1.5 + k, 0.5 + k, 1.2 + k, 10)
            for k in range(minutes)
            if k not in skip
        ]
        self.term.load_rates(symbol, rows)

    def feed(self, **params: object) -> Mt5Feed:
        settings: dict[str, object] = {"symbols": {"XAUUSD": "GOLD.pro"}}
        settings.update(params, server_offset_s=OFFSET)
        return Mt5Feed(
            Mt5FeedParams(**settings),  # type: ignore[arg-type]
            self.module,
            clock=self.clock,
            sleep=self.sleep,
        )

    def request(self, *symbols: str, warmup: int = 5, resume_after: int = 0) -> FeedRequest:
        return FeedRequest(
            symbols=symbols or ("EURUSD",),
            timeframe_s=60,
            warmup_bars=warmup,
            resume_after_ts=resume_after,
            idle=self.idle,
        )


@pytest.fixture
def market(transport: str) -> Iterator[_Market]:
    found = _Market(transport)
    yield found
    if found.bridge is not None:
        found.bridge.stop()
    found.term.shutdown()


def test_warm_up_from_history_in_utc(market: _Market) -> None:
    market.history("EURUSD", 30)
    bars = list(itertools.islice(market.feed().bars(market.request(warmup=5)), 5))
    assert [b.ts for b in bars] == [market.start - OFFSET - (5 - k) * 60 for k in range(5)]
    assert bars[-1].close == 1.2 + 29
    assert market.idles == 0  # history does not wait


def test_live_bars_are_handed_over_once_closed(market: _Market) -> None:
    market.history("EURUSD", 10)
    feed = market.feed(settle_s=1.0)
    seen: list[Bar] = []
    for bar in itertools.islice(feed.bars(market.request(warmup=2)), 5):
        # Never the bar still forming: every bar handed over has closed on the clock.
        assert bar.ts + 60 <= market.clock()
        seen.append(bar)
    assert [b.ts for b in seen][2:] == [market.start - OFFSET + k * 60 for k in range(3)]
    assert market.idles > 0, "the feed lets the runtime work while it waits"
    assert feed.report().bars == 5


def test_a_stop_ends_the_bars_while_the_feed_waits_not_at_the_next_bar(market: _Market) -> None:
    market.history("EURUSD", 10)
    request = dataclasses.replace(market.request(warmup=2), should_stop=lambda: market.idles >= 3)
    bars = list(itertools.islice(market.feed(settle_s=1.0).bars(request), 10))
    assert len(bars) == 2  # the warm-up, then the stop while waiting for the first live bar
    # Asked within a quarter second of the feed's clock, not a whole bar (60 s) later.
    assert market.clock() < market.start - OFFSET + 2


def test_symbols_are_merged_by_time_in_request_order(market: _Market) -> None:
    market.history("EURUSD", 5)
    market.history("GOLD.pro", 5)
    bars = list(itertools.islice(market.feed().bars(market.request("XAUUSD", "EURUSD")), 6))
    assert [b.symbol for b in bars] == ["XAUUSD", "EURUSD"] * 3
    assert [b.ts for b in bars][::2] == sorted(b.ts for b in bars[::2])


@pytest.mark.parametrize(("policy", "expected"), [(GapPolicy.TRADE, 7), (GapPolicy.FILL, 10)])
def test_gaps_follow_the_policy(market: _Market, policy: GapPolicy, expected: int) -> None:
    market.history("EURUSD", 10, skip=frozenset({4, 5, 6}))
    feed = market.feed(gap_policy=policy)
    bars = list(itertools.islice(feed.bars(market.request(warmup=10)), expected))
    assert feed.report().gaps == 1 and feed.report().missing_bars == 3
    assert len({b.ts for b in bars}) == expected


def test_gap_policy_fail_refuses(market: _Market) -> None:
    market.history("EURUSD", 10, skip=frozenset({4}))
    with pytest.raises(DataError, match="gap_policy: fail"):
        list(
            itertools.islice(
                market.feed(gap_policy=GapPolicy.FAIL).bars(market.request(warmup=10)), 10
            )
        )


def test_timeframes_are_the_packages_constants() -> None:
    assert mt5_timeframe(60) == C.TIMEFRAME_M1 and mt5_timeframe(900) == C.TIMEFRAME_M15
    assert mt5_timeframe(3600) == C.TIMEFRAME_H1 and mt5_timeframe(4 * 3600) == C.TIMEFRAME_H4
    assert mt5_timeframe(86400) == C.TIMEFRAME_D1 and mt5_timeframe(7 * 86400) == C.TIMEFRAME_W1
    with pytest.raises(DataError, match="no 7 s bars"):
        mt5_timeframe(7)
