"""The ``mt5`` feed tells the market's time (``tells-market-time``): the trade server's clock
from its ticks, in UTC as its bars leave the feed — not the host's clock, which may be off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers.mt5.test_mt5_feed_clock import SUMMER, WINTER, _Server
from tradefleet_plugins.feeds.mt5_feed import ServerClock
from tradefleet_runtime.sdk import Bar


# The host's clock two minutes off either way; the summer zone measured from the ticks (the
# param says winter).
@pytest.mark.parametrize(("zone", "host_error"), [(WINTER, 120.0), (SUMMER, -120.0)])
def test_the_feed_tells_the_servers_clock_in_utc_not_the_hosts(
    zone: int, host_error: float
) -> None:
    server = _Server(zone=zone, host_error=host_error)
    try:
        server.history(10)
        feed = server.feed(server_offset_s=WINTER)
        assert feed.market_time() is None  # no tick seen yet: not known
        stream: Iterator[Bar] = feed.bars(server.request())
        bar = next(stream)
        told = feed.market_time()
        assert told is not None
        assert bar.ts + bar.timeframe_s <= told  # in UTC, as the bars
        # Never ahead of the market; behind it by no more than the newest tick's age.
        assert server.true_utc() - 1.0 <= told <= server.true_utc()
    finally:
        server.close()


def test_the_server_clock_knows_no_utc_time_before_a_tick() -> None:
    clock = ServerClock(WINTER)
    assert clock.utc_now(1_000.0) is None
    clock.observe(1_000 + WINTER, 1_000.0)  # a tick stamped now, in the server's zone
    assert clock.utc_now(1_060.0) == 1_060.0
