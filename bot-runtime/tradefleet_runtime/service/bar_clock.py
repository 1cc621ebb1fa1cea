"""What a bot's no-bar age counts from: ``tradefleet_last_bar_age_seconds``, the
``TradefleetBotNoBars`` alert and readiness's "no bar for Ns".

The age counts from the wall-clock moment the latest bar arrived from the feed — warm-up history
and the bars a restarted bot missed included: a bot catching up its history is getting bars and
is not stalled. Before the first bar it counts from the moment the run began asking its feed for
bars, so a feed that never delivers one (a bot started, or restarted, into a feed outage) is
noticed as one that stopped would be. A backtest is never waited for on the wall clock: until
its first bar its age is unknown (-1 in the metric), and nothing is flagged.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tradefleet_runtime.contracts import FeedReport, FeedRequest
from tradefleet_runtime.model import Bar
from tradefleet_runtime.session import Bot


def expected_interval(timeframe_s: float, speed: float, live_feed: bool) -> float:
    """Wall-clock seconds between bars: the timeframe for a live feed (never paced: the
    replay speed is a csv feed's), timeframe / speed for a replay; 0 when a replay has no pace
    (``speed`` 0: as fast as it goes)."""
    if live_feed:
        return float(timeframe_s)
    return timeframe_s / speed if speed > 0 else 0.0


class BarClock:
    """When the bot's latest bar arrived, and since when it has been waiting for bars."""

    def __init__(self) -> None:
        self.last_bar = 0.0  # wall time the latest bar came from the feed (0: none yet)
        self.waiting_since = 0.0  # wall time the run began asking for bars (0: not yet, never)

    def waiting(self) -> None:
        """The run asks its feed for bars from now on (not called for a backtest)."""
        self.waiting_since = time.time()

    def since(self) -> float:
        """Wall time the no-bar age counts from; 0 while no bar is awaited."""
        return max(self.last_bar, self.waiting_since)

    def stamped(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        """``bars``, each stamped as it arrives (on whatever thread pulls them)."""
        source = iter(bars)
        try:
            for bar in source:
                self.last_bar = time.time()
                yield bar
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def watching(self, bot: Bot) -> Bot:
        """``bot`` with its feed's bars stamped as they arrive (history included)."""
        if bot.feed is None:
            return bot
        return dataclasses.replace(bot, feed=_StampedFeed(bot.feed, self))


class _StampedFeed:
    """A feed whose bars the :class:`BarClock` stamps; everything else is the feed's own."""

    def __init__(self, feed: Any, clock: BarClock) -> None:
        self._feed = feed
        self._clock = clock

    def bars(self, request: FeedRequest) -> Iterator[Bar]:
        return self._clock.stamped(self._feed.bars(request))

    def report(self) -> FeedReport:
        report: FeedReport = self._feed.report()
        return report

    def __getattr__(self, name: str) -> Any:
        return getattr(self._feed, name)
