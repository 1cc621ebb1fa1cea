"""The mt5 feed's market time (``tells-market-time``) while the market is closed: it does not
lag behind the market (a weekend's Friday tick is not Saturday's time), and is never ahead of
it (a clock ahead takes the bot's newest bar for a missed one, and the bot never trades).

A restart over a weekend judges which bars closed while the bot was down (``bar_missed``) at
that time: on the newest tick's clock alone, a Saturday restart would take Friday's 20:00 bar
for the newest closed one and trade it, into a closed market. The same holds for a restart in a
symbol's daily break or overnight session close (index and stock CFDs), where ticks stop.
"""

from __future__ import annotations

import pytest

from tradefleet_plugins.feeds.mt5_feed import ServerClock
from tradefleet_runtime.sdk import Bar
from tradefleet_runtime.session import MissedBars, split_history

HOUR = 3600
WINTER = 2 * HOUR  # the trade server's zone (UTC+2), measured earlier or from server_offset_s
FRIDAY = 1_767_312_000  # 2026-01-02 00:00 UTC, a Friday
LAST_TICK = FRIDAY + 21 * HOUR + 59 * 60 + 30  # 21:59:30 UTC: the market closes at 22:00 UTC
SATURDAY = FRIDAY + 36 * HOUR  # Saturday 12:00 UTC: the pod comes back


def test_a_saturday_restart_does_not_trade_fridays_passed_bars() -> None:
    clock = ServerClock(WINTER)
    clock.observe(LAST_TICK + WINTER, SATURDAY)  # the terminal's newest tick: Friday's last
    told = clock.utc_now(SATURDAY)
    assert told is not None
    # Friday's H1 bars 17:00 to 20:00 UTC, as the feed has them closed on its clock; the bot
    # last handled 17:00-18:00. The 21:00-22:00 bar closed at 22:00 UTC Friday.
    bars = [
        Bar("EURUSD", HOUR, FRIDAY + h * HOUR, 1.1, 1.1, 1.1, 1.1, 1.0) for h in (17, 18, 19, 20)
    ]
    missed = MissedBars()
    history, live = split_history(iter(bars), 1, FRIDAY + 18 * HOUR, lambda: told, missed)
    shown = [b.ts for b in history]
    traded = [b.ts for b in live()]
    assert traded == [], (
        f"traded on Saturday (market time told {told - LAST_TICK:+.0f}s from Friday's last tick, "
        f"{SATURDAY - told:.0f}s behind the host's UTC): bars opening at "
        f"{[(t - FRIDAY) // HOUR for t in traded]}h Friday; history {len(shown)} bar(s)"
    )


# The host's clock up to 5 minutes ahead of UTC (docs/mt5.md: the most it may be off).
@pytest.mark.parametrize("host_error", [0.0, 120.0, 300.0])
@pytest.mark.parametrize("utc", [LAST_TICK + 60, LAST_TICK + HOUR, SATURDAY])
def test_a_feed_started_while_the_market_is_closed_tells_a_time_not_ahead_nor_far_behind(
    utc: int, host_error: float
) -> None:
    """Started after Friday's close: no tick shows the zone (server_offset_s is used, perhaps a
    DST hour off the server's), so the clock is at most that hour and the host's error behind."""
    clock = ServerClock(WINTER)
    clock.observe(LAST_TICK + WINTER, utc + host_error)
    told = clock.utc_now(utc + host_error)
    assert told is not None
    assert utc - 300.0 - host_error - HOUR <= told <= utc


@pytest.mark.parametrize("host_error", [0.0, 120.0, 300.0])
def test_a_running_feed_tells_a_time_not_ahead_over_the_weekend(host_error: float) -> None:
    """Running at Friday's close: the zone measured from its last ticks."""
    clock = ServerClock(WINTER)
    clock.follow(LAST_TICK - 1 + WINTER, LAST_TICK - 1 + host_error, WINTER)
    clock.follow(LAST_TICK + WINTER, LAST_TICK + host_error, WINTER)
    assert clock.measured
    for utc in (LAST_TICK + 60, LAST_TICK + HOUR, SATURDAY):
        clock.observe(LAST_TICK + WINTER, utc + host_error)
        told = clock.utc_now(utc + host_error)
        assert told is not None and utc - 300.0 - host_error <= told <= utc


def test_while_ticks_come_the_market_time_is_the_ticks_clock() -> None:
    """An open market: the newest tick plus the time since (the host's clock is not used)."""
    clock = ServerClock(WINTER)
    clock.follow(FRIDAY + WINTER, FRIDAY + 100.0, WINTER)  # the host 100 s ahead of UTC
    clock.follow(FRIDAY + 1 + WINTER, FRIDAY + 101.0, WINTER)
    assert clock.utc_now(FRIDAY + 111.0) == FRIDAY + 11
