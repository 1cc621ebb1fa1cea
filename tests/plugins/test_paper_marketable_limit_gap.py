"""A limit order the open of the first bar it meets is already through is a taker's fill, also
when that bar comes after a hole in the bars (missing rows, an outage) or a weekend.

A rule by time ("the bar opening within one bar of the order's creation") took such an order
for one that had rested, and filled it as a maker: a buy limit at 100, the next bar opening at
95, filled at 95.00 with no fee after a three-bar hole and at 95.19 with a 0.476 fee without it.
The broker now remembers which orders no bar has met (a restart's re-armed ones excepted).
"""

from __future__ import annotations

import pytest

from tests.runtime.helpers import Scripted, bar, make_engine
from tradefleet_runtime.model import Fill, OrderType

COSTS = {"fee_bps": 10.0, "maker_fee_bps": 0.0, "slippage_bps": 20.0}


def _limit_buy_at_100() -> Scripted:
    return Scripted({0: lambda ctx, b: ctx.buy("TEST", 5, order_type=OrderType.LIMIT, price=100.0)})


def _entry(bars: list) -> Fill:  # type: ignore[type-arg]
    strategy = _limit_buy_at_100()
    make_engine(strategy, broker=COSTS).run(bars)
    (fill,) = strategy.fills
    return fill


DECIDED = bar(0, 105, 106, 104, 105)  # the limit at 100 is sent at this bar's close


def test_a_limit_first_met_after_a_hole_in_the_bars_costs_what_it_does_without_the_hole() -> None:
    # No hole: the next bar opens at 95, through the limit: a taker's fill.
    straight = _entry([DECIDED, bar(1, 95, 96, 94, 95)])
    assert straight.price == pytest.approx(95 * 1.002)
    assert straight.fee == pytest.approx(5 * 95 * 1.002 * 0.001)
    # Bars 1-3 missing (a weekend, a venue outage, rows lost): the order's first bar is bar 4,
    # opening at 95 as well. It never rested before that open.
    after_hole = _entry([DECIDED, bar(4, 95, 96, 94, 95)])
    assert after_hole.price == pytest.approx(straight.price)
    assert after_hole.fee == pytest.approx(straight.fee)


def test_a_daily_limit_decided_on_friday_is_a_taker_at_mondays_open() -> None:
    """Daily bars of a market closed at the weekend: Friday's close decides a limit; the first
    bar it meets is Monday's (three days on)."""
    day = 86400
    friday = bar(0, 105, 106, 104, 105, tf=day)
    monday = bar(3, 95, 96, 94, 95, tf=day)
    tuesday_after_monday = _entry(
        [bar(0, 105, 106, 104, 105, tf=day), bar(1, 95, 96, 94, 95, tf=day)]
    )
    fill = _entry([friday, monday])
    assert fill.fee == pytest.approx(tuesday_after_monday.fee)
    assert fill.price == pytest.approx(tuesday_after_monday.price)
