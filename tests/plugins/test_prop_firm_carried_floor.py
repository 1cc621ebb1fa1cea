"""prop-firm on FTMO's basis: what may be carried over midnight must fit the next day's floor.

FTMO's day starts from the balance at midnight. A profit booked today (a trade closed in
profit, or a stop closing part of a netted position beyond its average) raises the next day's
floor above today's while the loss still open does not shrink: a position whose stop fits
today's floor and is hit after midnight ends the next day below its floor. Entries are checked,
and open positions cut, against the higher of the two floors.
"""

from __future__ import annotations

import pytest

from tests.plugins.test_prop_firm_ftmo_daily import MIDNIGHT, NO_COSTS, OLD_BASIS, ctx
from tests.runtime.helpers import HOUR
from tradefleet_plugins.risk.prop_firm import (
    Limits,
    PropFirm,
    carried_floor,
    gains_after_entry,
    stop_gains,
    stops_gains,
)
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.model import OrderIntent, Position, RiskAction, Side
from tradefleet_runtime.sdk import ActionKind

LATER = MIDNIGHT + HOUR


def started_at(params: PropFirmParams) -> PropFirm:
    """The plugin whose day started flat at 100,000 at midnight."""
    plugin = PropFirm(params)
    plugin.account_actions(ctx(MIDNIGHT, 100_000.0, {}, {"XAUUSD": 2300.0}))
    return plugin


def test_an_entry_after_a_profit_booked_today_must_fit_the_next_days_floor() -> None:
    """3,000 booked today: balance 103,000, FTMO's floor today 95,000, the next day's (if
    nothing else closes) 98,000. An XAUUSD entry losing 6,000 at its stop ends at 97,000:
    inside today's floor, 1,000 below the next day's if it is carried and stopped after
    midnight. One losing 4,000 (99,000) fits both."""
    now = ctx(LATER, 103_000.0, {}, {"XAUUSD": 2300.0})
    wide = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2240.0)
    decision = started_at(PropFirmParams(**NO_COSTS)).check(wide, now)
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")
    assert "equity would be 97,000.00" in decision.reason
    assert "below the next trading day's daily loss floor 98,000.00" in decision.reason
    narrow = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2260.0)
    assert started_at(PropFirmParams(**NO_COSTS)).check(narrow, now).action is RiskAction.APPROVE
    # The equity basis' next start is the equity at the boundary, which nothing bounds now.
    old = started_at(PropFirmParams(**NO_COSTS, **OLD_BASIS)).check(wide, now)
    assert old.action is RiskAction.APPROVE


def test_a_stop_inside_the_netted_average_books_a_profit_that_raises_the_next_floor() -> None:
    """The pinned case's mechanism: 3,500 short at 100 (stop 101), the price at 96 (equity
    114,000, balance 100,000). Adding 1,000 short at 96 with its stop at 97 nets the position at
    99.11; every stop hit leaves 95,500, inside today's 95,000. But the 97 stop fills first and
    books 2,111 (97 against the 99.11 average), raising the next day's floor to 97,111: the
    3,500 stopped at 101 after midnight end it at 95,500, 1,611 below."""
    short = {"X": Position("X", -3_500.0, 100.0)}
    now = ctx(LATER, 114_000.0, short, {"X": 96.0}, {"X": ((3_500.0, 101.0),)})
    add = OrderIntent("X", Side.SELL, 1_000.0, stop_loss=97.0)
    decision = started_at(PropFirmParams(**NO_COSTS)).check(add, now)
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")
    assert "equity would be 95,500.00" in decision.reason
    assert "next trading day's daily loss floor 97,111.11" in decision.reason


def test_an_open_position_is_cut_to_the_next_days_floor() -> None:
    """A long of 200,000 EURUSD at 1.1000 (floating 0) after 3,000 booked today: balance and
    equity 103,000. Its stop at 1.0700 loses 6,000: 97,000, inside today's 95,000 and 1,000
    below the next day's 98,000. A cut of 1,000 / 6,000 of it fits."""
    held = {"EURUSD": Position("EURUSD", 200_000.0, 1.1000)}
    stops: dict[str, tuple[tuple[float, float], ...]] = {"EURUSD": ((200_000.0, 1.0700),)}
    now = ctx(LATER, 103_000.0, held, {"EURUSD": 1.1000}, stops)
    actions = started_at(PropFirmParams(**NO_COSTS)).account_actions(now)
    assert [a.kind for a in actions] == [ActionKind.REDUCE]
    assert actions[0].fraction == pytest.approx(1_000 / 6_000, rel=1e-4)
    assert "next trading day's daily loss floor" in actions[0].reason
    assert started_at(PropFirmParams(**NO_COSTS, **OLD_BASIS)).account_actions(now) == []


def test_stop_gains_counts_only_the_stops_beyond_the_average_on_the_winning_side() -> None:
    stops = ((3_500.0, 101.0), (1_000.0, 97.0), (500.0, 90.0))
    # Short 4,500 at 99: the 101 stop loses (nothing), the 97 one books 2,000; the 90 one
    # covers nothing the first two did not.
    assert stop_gains(-4_500.0, 99.0, stops) == pytest.approx(2_000.0)
    assert stop_gains(4_500.0, 99.0, stops) == pytest.approx(3_500.0 * 2.0)
    assert stop_gains(0.0, 99.0, stops) == 0.0
    positions = {"A": Position("A", -4_500.0, 99.0), "B": Position("B", 4_500.0, 99.0)}
    both = {"A": stops, "B": stops}
    assert stops_gains(positions, both) == pytest.approx(2_000.0 + 7_000.0)
    assert stops_gains(positions, both, skip="B") == pytest.approx(2_000.0)


def test_gains_after_an_entry_net_it_into_its_position() -> None:
    """Long 100 at 100, its stop at 104 (a trailed stop: 400 to book). Adding 100 at 110 nets
    at 105, where that stop books nothing and the new one at 108 covers only what the first
    left: 100 x 3. Selling 40 at 110 books 400 and leaves 60 at 100 for the 104 stop: 240."""
    held = {"X": Position("X", 100.0, 100.0)}
    stops = {"X": ((100.0, 104.0),)}
    assert stops_gains(held, stops) == pytest.approx(400.0)
    add = OrderIntent("X", Side.BUY, 100.0, stop_loss=108.0)
    assert gains_after_entry(held, stops, add, 100.0, 110.0) == pytest.approx(300.0)
    against = OrderIntent("X", Side.SELL, 40.0, stop_loss=None)
    assert gains_after_entry(held, stops, against, 40.0, 110.0) == pytest.approx(400.0 + 240.0)


def test_the_next_days_floor_only_when_higher_and_never_on_the_equity_basis() -> None:
    limits = Limits.of(PropFirmParams())
    today = (95_000.0, "daily_loss")
    assert carried_floor(today, 103_000.0, 100_000.0, limits) == (
        98_000.0,
        "daily_loss",
        "next trading day's daily loss floor",
    )
    assert carried_floor(today, 99_000.0, 100_000.0, limits) == (
        95_000.0,
        "daily_loss",
        "daily loss floor",
    )
    assert carried_floor(today, None, 100_000.0, limits)[0] == 95_000.0
