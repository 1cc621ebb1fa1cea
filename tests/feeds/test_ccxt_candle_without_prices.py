"""A candle the venue sends with no prices is skipped and said once (walkthrough W28): the feed
asks for it again at every poll until the next candle closes, and said it each time — a note
and a warning a poll (about 1,800 an hour at the defaults), about one candle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.feeds.conftest import MINUTE_MS, T0_MS, Venue, _binance
from tests.venues.candle_replay import ReplayClock, wave
from tradefleet_runtime.sdk import Bar, FeedRequest

NOW_MS = T0_MS + 300 * MINUTE_MS + 10_000  # candle 300 forming, 299 the newest closed


@pytest.fixture
def binance_spot_venue() -> Iterator[Venue]:
    yield from _binance("spot")


def _minute(index: int) -> int:
    return (T0_MS + index * MINUTE_MS) // 1000


def _take(bars: Iterator[Bar], count: int, clock: ReplayClock) -> list[Bar]:
    out: list[Bar] = []
    for bar in bars:
        assert bar.close_ts * 1000 <= clock.venue_ms(), f"{bar} handed out before it closed"
        out.append(bar)
        if len(out) == count:
            break
    return out


def test_a_candle_without_prices_is_skipped_and_said_once(binance_spot_venue: Venue) -> None:
    venue = binance_spot_venue
    clock = venue.clock(wave(venue.ids[0], T0_MS, 340), NOW_MS)
    feed = venue.feed(clock, poll_s=1.0)
    original = feed.client.fetch_ohlcv
    broken = T0_MS + 301 * MINUTE_MS

    def fetch_ohlcv(symbol: str, *args: Any, **kwargs: Any) -> Any:
        rows = [list(r) for r in original(symbol, *args, **kwargs)]
        for row in rows:
            if row[0] == broken:
                row[4] = None  # no close
        return rows

    feed.client.fetch_ohlcv = fetch_ohlcv
    bars = _take(feed.bars(FeedRequest(venue.symbols[:1], 60, warmup_bars=3)), 3 + 4, clock)
    assert [b.ts for b in bars] == [_minute(i) for i in (297, 298, 299, 300, 302, 303, 304)]
    said = [n for n in feed.report().notes if "has no prices" in n]
    assert len(said) == 1, f"{len(said)} notes for one broken candle: {said[:2]} ..."
