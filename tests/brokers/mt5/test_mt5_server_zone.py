"""The mt5 broker knows the trade server's zone as the mt5 feed does: measured from the
terminal's ticks (``mt5_link.ServerClock``, one measurement for both), ``server_offset_s``
until a tick shows it.

Brokers' servers run UTC+2 in winter and UTC+3 in summer, and the example manifest says 7200:
with the param kept for ever, from late March to October every fill, order update and cash
flow would be stamped an hour in the future, and the quote guard of a signal's market entry
(``tick_age``) would read every tick as "over half an hour off our clock" and take a
10-minute-old price as current.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_link import ServerClock, measure_zone, zone_floor
from tradefleet_runtime.sdk import Side

WINTER, SUMMER = 7200, 10800  # the broker's server on UTC+2, then UTC+3
EXAMPLE_OFFSET = WINTER  # examples/mt5/eurusd-mt5-bridge.yaml
HOST = 1_750_000_000.0  # a host's UTC seconds (pure tests)


def _terminal(zone: int, tick_age_s: int = 0) -> MT5Terminal:
    """A terminal whose server runs on ``zone``, its last EURUSD tick ``tick_age_s`` old."""
    term = MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols())
    term.set_time(int(time.time()) + zone - tick_age_s)
    term.set_price("EURUSD", 1.1)
    return term


def _venue(term: MT5Terminal, offset: int = EXAMPLE_OFFSET) -> Mt5Harness:
    venue = Mt5Harness.build("netting", venue=term, transport="direct", server_offset_s=offset)
    venue.symbols = ("EURUSD",)
    return venue.connect()


@pytest.fixture
def summer() -> Iterator[Mt5Harness]:
    venue = _venue(_terminal(SUMMER))
    yield venue
    venue.close()


def _stamped_now(venue: Mt5Harness) -> None:
    before = time.time()
    (fill,) = fills(venue.submit(venue.order(quantity=10_000.0)))
    after = time.time()
    assert before - 60 <= fill.ts <= after + 60, (
        f"the fill is stamped {fill.ts - after:+.0f} s from now"
    )


def test_a_fill_in_summer_is_stamped_now_not_an_hour_ahead(summer: Mt5Harness) -> None:
    _stamped_now(summer)


def test_a_ten_minute_old_tick_in_summer_is_no_current_price() -> None:
    venue = _venue(_terminal(SUMMER, tick_age_s=600))
    try:
        # In winter (server_offset_s right) the broker refuses this tick: 600 s > 5 s.
        assert venue.broker.market_price("EURUSD", Side.BUY) is None
    finally:
        venue.close()


def test_the_measured_zone_is_said_when_it_is_not_server_offset_s(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        venue = _venue(_terminal(SUMMER))
    try:
        said = [
            r.getMessage() for r in caplog.records if "server_offset_s is 7200" in r.getMessage()
        ]
        assert said and "ticks show UTC+3" in said[0], caplog.text
    finally:
        venue.close()


def test_server_offset_s_stands_while_no_tick_shows_the_zone() -> None:
    """A weekend: the terminal's last tick is Friday's, hours old; it proves no zone, and the
    param is the zone (a tick from an earlier zone could not be told from an old one)."""
    venue = _venue(_terminal(WINTER, tick_age_s=12 * 3600), offset=SUMMER)
    try:
        assert venue.broker._offset == SUMMER
        assert not venue.broker._server.measured
    finally:
        venue.close()


def test_a_dst_switch_while_running_is_followed_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server moves from UTC+2 to UTC+3 while the bot runs and sends nothing: the poll's
    look at a tick follows it, so the next fill is stamped now."""
    term = _terminal(WINTER)
    venue = _venue(term)
    try:
        assert venue.broker._offset == WINTER and venue.broker._server.measured
        term.advance(3600)  # the server's clock jumps an hour; UTC does not
        term.set_price("EURUSD", 1.1001)
        venue.broker._next_zone_look = 0.0  # the poll's look is due (every minute)
        with caplog.at_level(logging.WARNING):
            venue.settle()
        assert "zone changed from UTC+2 to UTC+3" in caplog.text
        _stamped_now(venue)
    finally:
        venue.close()


# -- the measurement (shared with the feed) ----------------------------------------------------
@pytest.mark.parametrize(
    ("age", "expected", "zone"),
    [
        (0, WINTER, SUMMER),  # a tick an hour "in the future" on UTC+2's clock
        (600, WINTER, SUMMER),  # ... ten minutes old
        (1500, WINTER, 9000),  # older: at least UTC+2:30 (a bound, until a fresh tick)
        (600, SUMMER, None),  # nothing new: the zone in use may be right
        (3 * 3600, WINTER, None),  # hours old on UTC+3's clock: could be UTC+2's, older
    ],
)
def test_an_old_tick_ahead_of_the_expected_clock_proves_a_later_zone(
    age: int, expected: int, zone: int | None
) -> None:
    tick = int(HOST) + SUMMER - age
    assert zone_floor(tick, HOST, expected) == zone
    clock = ServerClock(expected)  # a first look (not fresh): the same
    assert clock.observe(tick, HOST) == zone


def test_the_zone_floor_never_passes_the_servers_zone() -> None:
    lowest = -15 * 3600
    for host_error in (-300, 0, 300):  # the host's clock up to 5 minutes off
        for age in range(0, 3 * 3600, 97):
            floor = zone_floor(int(HOST) + SUMMER - age, HOST + host_error, lowest)
            assert floor is not None and floor <= SUMMER, (host_error, age, floor)


def test_a_tick_more_than_14_hours_off_proves_no_zone() -> None:
    """A terminal whose clock is not the trade server's (an emulator's, years off)."""
    far = int(HOST) + 20 * 3600
    assert measure_zone(far, HOST, fresh=True, expected=0) is None
    assert zone_floor(far, HOST, 0) is None


def test_a_zone_going_back_over_a_weekend_is_measured_and_the_clock_goes_back_with_it() -> None:
    """Autumn: Friday's ticks on UTC+3, the server back on UTC+2 when the market reopens."""
    clock = ServerClock(WINTER)
    assert clock.follow(int(HOST) + SUMMER, HOST, WINTER) is not None  # said: not the param
    assert clock.offset == SUMMER
    sunday = HOST + 2 * 86_400
    # The feed looks every poll_s over the weekend: Friday's tick, hours old, proves nothing.
    assert clock.follow(int(HOST) + SUMMER, sunday - 1.0, WINTER) is None
    news = clock.follow(int(sunday) + WINTER, sunday, WINTER)  # the first tick after the switch
    assert clock.offset == WINTER
    assert news is not None and "UTC+3 to UTC+2" in news
    # The server's clock went back an hour with it: never read an hour ahead (a forming bar
    # would look closed).
    assert clock.now(sunday + 10.0) <= sunday + WINTER + 10.0
