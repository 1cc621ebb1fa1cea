"""MT5: a deal read before the poll's next look at the server's zone, and the quote guard on a
tick hours old.

1. On the Sunday the server moves to summer time the market reopens in the new zone and gapped
   stops fire on its first tick. The poll reads that deal before its next look at a tick
   (``_ZONE_LOOK_S``); a deal is never stamped after it is seen (``zone_floor``), so one stamped
   later than the zone in use allows makes the poll look first: the fill is stamped now, not an
   hour ahead.
2. The quote guard (``tick_age``) takes a tick far behind the host's clock for an old one, not
   for clocks it cannot compare: a terminal whose quotes stopped hours ago (a lost data feed, a
   halted symbol) does not price a signal's market entry, the zone measured or not. Only a tick
   far *ahead* says the zone is not known yet.
"""

from __future__ import annotations

import time

from tests.brokers.mt5.harness import Mt5Harness, fills, gold_pro_symbols
from tests.venues.mt5 import MT5Terminal
from tradefleet_runtime.sdk import Side

WINTER, SUMMER = 7200, 10800


def _terminal(zone: int, tick_age_s: int = 0) -> MT5Terminal:
    term = MT5Terminal(margin_mode="netting", symbols=gold_pro_symbols())
    term.set_time(int(time.time()) + zone - tick_age_s)
    term.set_price("EURUSD", 1.1)
    return term


def _venue(term: MT5Terminal, offset: int = WINTER) -> Mt5Harness:
    venue = Mt5Harness.build("netting", venue=term, transport="direct", server_offset_s=offset)
    venue.symbols = ("EURUSD",)
    return venue.connect()


def test_an_sl_fired_at_the_first_tick_after_the_spring_switch_is_stamped_now() -> None:
    term = _terminal(WINTER)
    venue = _venue(term)
    try:
        assert venue.broker._server.measured and venue.broker._offset == WINTER
        order = venue.order(quantity=10_000.0, stop_loss=1.0950)
        assert fills(venue.submit(order))
        # The weekend ends on summer time: the server's clock is an hour on, and the market
        # opens with a gap through the stop. The poll runs (every few hundred ms) well within
        # a minute of its last look at a tick.
        term.advance(3600)
        term.set_price("EURUSD", 1.0900)
        before = time.time()
        stop = [f for f in fills(venue.settle()) if f.client_order_id.endswith("-sl")]
        after = time.time()
        assert len(stop) == 1, stop
        assert before - 60 <= stop[0].ts <= after + 60, (
            f"the SL's fill is stamped {stop[0].ts - after:+.0f} s from now"
        )
    finally:
        venue.close()


def test_a_tick_hours_old_is_no_current_price() -> None:
    """Winter, server_offset_s right: the terminal's last EURUSD tick is two hours old (its
    quotes stopped while the account stays connected)."""
    venue = _venue(_terminal(WINTER, tick_age_s=2 * 3600))
    try:
        assert venue.broker._offset == WINTER
        assert venue.broker.market_price("EURUSD", Side.BUY) is None
    finally:
        venue.close()


def test_a_tick_hours_old_is_no_current_price_with_the_zone_measured() -> None:
    """The zone measured from fresh ticks; then the quotes stop and the host's clock runs on
    (the emulator's tick keeps its stamp; the host is two hours later)."""
    term = _terminal(WINTER, tick_age_s=2 * 3600)
    venue = _venue(term, offset=WINTER)
    try:
        venue.broker._server.measured = True  # as after fresh ticks earlier in the run
        assert venue.broker.market_price("EURUSD", Side.SELL) is None
    finally:
        venue.close()
