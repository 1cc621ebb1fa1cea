"""prop-firm on FTMO's basis: working entries in the next trading day's floor.

The next day's floor is measured from the most the balance can be at midnight: what the open
positions' stops can book (``stop_gains``) and what the entry checked nets into its position.
A working entry of the bot (``RiskContext.entries``) that fills before midnight nets into its
symbol's position too: it moves the average the stops book against, and its own stop joins
them. The bound assumes it fills wherever that raises the balance, and not where it lowers it,
in the entry check and in the cut of open positions alike.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.plugins.test_prop_firm_carried_floor import LATER, started_at
from tests.plugins.test_prop_firm_ftmo_daily import NO_COSTS, ctx
from tradefleet_plugins.risk.prop_firm import (
    EXACT_ENTRIES,
    Netted,
    gains_after_entry,
    loose_gains,
    stops_gains,
    symbol_gains,
)
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.model import Order, OrderIntent, OrderType, Position, RiskAction, Side
from tradefleet_runtime.sdk import ActionKind

Stops = dict[str, tuple[tuple[float, float], ...]]

# Long 1,000 X at 100, its stop trailed to 104: 4,000 to book.
HELD = {"X": Position("X", 1_000.0, 100.0)}
STOPS: Stops = {"X": ((1_000.0, 104.0),)}
# A buy stop of 1,000 X at 115 (stop 112): filled, the position nets to 2,000 at 107.5, the
# 104 stop books nothing and its own 112 stop 1,000 x 4.5 = 4,500.
RAISING = Order("bot-x-add", "X", Side.BUY, 1_000.0, OrderType.STOP, price=115.0, stop_loss=112.0)


def test_a_working_entry_that_nets_into_a_position_raises_the_next_days_floor() -> None:
    """Day started flat at 100,000; 3,000 booked today (balance 103,000). Long 1,000 X at 100,
    its stop trailed to 104, the mark 110 (equity 113,000). A buy stop of 1,000 X at 115 (stop
    112) works. Should it fill, the position nets to 2,000 at 107.5 and its own 112 stop books
    1,000 x 4.5 = 4,500 today (not the 4,000 the 104 stop books on the 100 average): the next
    day starts at up to 107,500 and its floor is 102,500. The 104 stop and a Y entry losing
    1,800 hit after midnight end it at 102,200: below that floor, so the Y entry is vetoed
    (counting the open position alone, the floor was 102,000 and it was approved)."""
    now = ctx(LATER, 113_000.0, dict(HELD), {"X": 110.0, "Y": 2_300.0}, dict(STOPS))
    now = now._replace(entries=(RAISING,))
    entry = OrderIntent("Y", Side.BUY, 100.0, stop_loss=2_282.0)
    decision = started_at(PropFirmParams(**NO_COSTS)).check(entry, now)
    # Worst case 113,000 - 6,000 (X to 104) - 3,000 (the working entry to 112) - 1,800 (Y).
    assert decision.action is RiskAction.VETO, decision.reason
    assert decision.code == "daily_loss"
    assert "equity would be 102,200.00" in decision.reason
    assert "next trading day's daily loss floor 102,500.00" in decision.reason
    # Without the working entry (its risk gone too) the same entry fits the 102,000 floor.
    alone = now._replace(entries=())
    fits = started_at(PropFirmParams(**NO_COSTS)).check(entry, alone)
    assert fits.action is RiskAction.APPROVE


def test_working_entries_that_lower_the_gains_are_not_assumed_to_fill() -> None:
    """A buy limit of 1,000 X at 130 (stop 101) moves the average to 115, where no stop books
    anything: filled, it lowers what midnight can bring, so it is taken as not filling (4,000),
    and next to the raising entry it does not undo that one (4,500, not the 0 of both
    filled). A sell stop of 1,000 X at 95 on the other side closes the long at a loss: not
    assumed either; a sell limit of 500 at 120 closes it at a gain (10,000) and leaves 500 for
    the 104 stop (2,000): assumed."""
    lowering = Order("bot-x-high", "X", Side.BUY, 1_000.0, OrderType.LIMIT, 130.0, 101.0)
    losing = Order("bot-x-short", "X", Side.SELL, 1_000.0, OrderType.STOP, 95.0, 99.0)
    gaining = Order("bot-x-take", "X", Side.SELL, 500.0, OrderType.LIMIT, 120.0, None)
    assert stops_gains(HELD, STOPS) == pytest.approx(4_000.0)
    assert stops_gains(HELD, STOPS, None, (lowering,)) == pytest.approx(4_000.0)
    assert stops_gains(HELD, STOPS, None, (losing,)) == pytest.approx(4_000.0)
    assert stops_gains(HELD, STOPS, None, (RAISING,)) == pytest.approx(4_500.0)
    assert stops_gains(HELD, STOPS, None, (lowering, RAISING)) == pytest.approx(4_500.0)
    assert stops_gains(HELD, STOPS, None, (RAISING, lowering, losing)) == pytest.approx(4_500.0)
    assert stops_gains(HELD, STOPS, None, (gaining,)) == pytest.approx(12_000.0)
    # The entry checked is always filled, after the working ones. A buy of 1,000 at 100 with
    # its stop at 90 nets at 100 alone (2,000: the 104 stop books 4,000, the 90 one nothing),
    # at 105 after the raising entry (3,000: its 112 stop books 7,000): that one is assumed.
    # With its stop at 113 instead, alone 4,000 + 13,000, after it 7,000 + 8,000: not assumed.
    low = OrderIntent("X", Side.BUY, 1_000.0, stop_loss=90.0)
    assert gains_after_entry(HELD, STOPS, low, 1_000.0, 100.0) == pytest.approx(4_000.0)
    assert gains_after_entry(HELD, STOPS, low, 1_000.0, 100.0, (RAISING,)) == pytest.approx(7_000.0)
    high = OrderIntent("X", Side.BUY, 1_000.0, stop_loss=113.0)
    assert gains_after_entry(HELD, STOPS, high, 1_000.0, 100.0, (RAISING,)) == pytest.approx(
        17_000.0
    )


def test_a_working_market_entry_is_taken_at_its_symbols_mark() -> None:
    """A market entry has no price of its own: it fills at the mark (a flat symbol's working
    entries net with each other too: bought 1,000 at 100 and 1,000 at 90, the 98 stop books
    3,000 on the 95 average)."""
    market = Order("bot-z-1", "Z", Side.BUY, 1_000.0, OrderType.MARKET, None, 98.0)
    limit = Order("bot-z-2", "Z", Side.BUY, 1_000.0, OrderType.LIMIT, 90.0, 85.0)
    gains = stops_gains({}, {}, None, (market, limit), {"Z": 100.0})
    assert gains == pytest.approx(3_000.0)
    assert stops_gains({}, {}, None, (market, limit), {}) == 0.0  # no price known: left out


def test_past_the_exact_count_the_bound_is_looser_but_still_above_every_combination() -> None:
    """Long 1,000 at 100 (stop 104) with six buys at 130 (stop 101) and the one at 115 (stop
    112), one past the exact count: none of them brings the average below 100, against which
    every stop books its whole quantity, 4,000 + 6 x 1,000 + 12,000 (the best combination
    books 4,500, found exactly with one buy at 130 fewer). Flat, a buy at 100 (stop 98) books
    nothing alone, nor five at 90 (stop 85), but all of them net at 91.67 and the 98 stop
    books 6,333; with a sixth at 90 the bound takes the 98 stop against the 90 average."""
    start = Netted(1_000.0, 100.0, ((1_000.0, 104.0),))
    lowering = (1_000.0, 130.0, 101.0)
    raising = (1_000.0, 115.0, 112.0)
    assert symbol_gains(start, [lowering, raising]) == pytest.approx(4_500.0)
    many = [lowering] * (EXACT_ENTRIES - 1) + [raising]
    assert symbol_gains(start, many) == pytest.approx(4_500.0)
    assert symbol_gains(start, [lowering, *many]) == pytest.approx(22_000.0)
    flat = Netted(0.0, 0.0, ())
    scale_in = [(1_000.0, 100.0, 98.0)] + [(1_000.0, 90.0, 85.0)] * (EXACT_ENTRIES - 1)
    assert symbol_gains(flat, scale_in) == pytest.approx(1_000.0 * (98.0 - 550.0 / 6.0))
    assert symbol_gains(flat, [*scale_in, (1_000.0, 90.0, 85.0)]) == pytest.approx(8_000.0)


legs = st.lists(
    st.tuples(
        st.sampled_from([-1_000.0, -300.0, 500.0, 1_000.0]),
        st.sampled_from([90.0, 95.0, 100.0, 105.0, 110.0]),
        st.sampled_from([None, 88.0, 97.0, 103.0, 112.0]),
    ),
    min_size=1,
    max_size=EXACT_ENTRIES,
)


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from([0.0, 1_000.0, -1_000.0]),
    stop=st.sampled_from([93.0, 104.0]),
    working=legs,
    last=st.none() | legs.map(lambda found: found[0]),
)
def test_the_loose_bound_is_never_below_the_best_combination(
    size: float,
    stop: float,
    working: list[tuple[float, float, float | None]],
    last: tuple[float, float, float | None] | None,
) -> None:
    start = Netted(size, 100.0 if size else 0.0, ((abs(size), stop),) if size else ())
    exact = symbol_gains(start, working, last)
    assert loose_gains(start, working, last) >= exact - 1e-6


def test_the_cut_counts_a_working_entry_in_the_next_days_floor() -> None:
    """The first test's account with a Z long of 100 at 2,300 (stop 2,252, floating nothing)
    beside it: every stop hit leaves 113,000 - 6,000 - 4,800 = 102,200. Counting the open
    positions alone the next day's floor is 102,000 and nothing is cut; with the working X
    entry assumed filled it is 102,500, and 300 of the 10,800 at risk is cut."""
    held = {**HELD, "Z": Position("Z", 100.0, 2_300.0)}
    stops: Stops = {**STOPS, "Z": ((100.0, 2_252.0),)}
    now = ctx(LATER, 113_000.0, held, {"X": 110.0, "Z": 2_300.0}, stops)
    assert started_at(PropFirmParams(**NO_COSTS)).account_actions(now) == []
    working = now._replace(entries=(RAISING,))
    actions = started_at(PropFirmParams(**NO_COSTS)).account_actions(working)
    assert [a.kind for a in actions] == [ActionKind.REDUCE]
    assert actions[0].code == "daily_loss"
    assert "next trading day's daily loss floor" in actions[0].reason
    assert actions[0].fraction == pytest.approx(300.0 / 10_800.0, rel=1e-3)
