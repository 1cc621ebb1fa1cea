"""prop-firm on FTMO's basis: working entries in the next trading day's floor.

The next day's floor is measured from the most the balance can be at midnight: what the open
positions' stops can book (``stop_gains``) and what the entry checked nets into its position.
A working entry of the bot (``RiskContext.entries``) that fills before midnight nets into its
symbol's position too: it moves the average the stops book against, and its own stop joins
them. The bound assumes it fills — whole, in part (a limit or stop entry can fill in part and
rest there) or not at all — wherever that raises the balance, and not where it lowers it, in
the entry check and in the cut of open positions alike.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.plugins.test_prop_firm_carried_floor import LATER, started_at
from tests.plugins.test_prop_firm_ftmo_daily import NO_COSTS, ctx
from tradefleet_plugins.risk.prop_firm import (
    EXACT_ENTRIES,
    Leg,
    Netted,
    gains_after_entry,
    loose_gains,
    net_fill,
    sides_gains,
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


# Long 1,000 X at 98 (its stop 92) with a buy stop of 9,000 at 104 (its stop 103) working.
# Filled whole the average is 103.40, above the new stop: nothing books; not filled, the 92
# stop books nothing either. Filled q, the average is (98,000 + 104 q) / (1,000 + q) and the
# q stopped at 103 book q (5,000 − q) / (1,000 + q): 2,000 at q = 2,000, and at most
# 7,000 − 2,000 √6 = 2,101.02 at q = √6,000,000 − 1,000 = 1,449.49.
PART_HELD = {"X": Position("X", 1_000.0, 98.0)}
PART_STOPS: Stops = {"X": ((1_000.0, 92.0),)}
PART_ADD = Order("bot-x-add", "X", Side.BUY, 9_000.0, OrderType.STOP, price=104.0, stop_loss=103.0)
BEST_PART = 7_000.0 - 2_000.0 * math.sqrt(6.0)


def test_a_working_entry_filled_in_part_books_no_more_than_the_bound() -> None:
    """2,000 of the working buy filled nets the position to 3,000 at 102, and its 2,000 stopped
    at 103 book 2,000: the bound is not below that."""
    part = net_fill(Netted(1_000.0, 98.0, PART_STOPS["X"]), (2_000.0, 104.0, 103.0))
    assert part.size == 3_000.0 and abs(part.average - 102.0) < 1e-9
    assert abs(part.gains() - 2_000.0) < 1e-6  # what the part books at its stop
    bound = stops_gains(PART_HELD, PART_STOPS, None, (PART_ADD,), {"X": 100.0})
    assert bound >= part.gains() - 1e-6, f"bound {bound:,.2f} below a part's {part.gains():,.2f}"


def test_a_part_that_books_more_than_either_end_is_the_bound() -> None:
    """Filled whole or not at all the buy books nothing; the bound is the most a part books,
    2,101.02 (1,449.49 of it), exactly."""
    start = Netted(1_000.0, 98.0, PART_STOPS["X"])
    assert net_fill(start, (9_000.0, 104.0, 103.0)).gains() == 0.0
    assert start.gains() == 0.0
    assert symbol_gains(start, [(9_000.0, 104.0, 103.0)]) == pytest.approx(BEST_PART)
    best = net_fill(start, (math.sqrt(6e6) - 1_000.0, 104.0, 103.0)).gains()
    assert best == pytest.approx(BEST_PART)
    assert stops_gains(PART_HELD, PART_STOPS, None, (PART_ADD,)) == pytest.approx(BEST_PART)


def test_a_part_of_a_sell_books_the_same_on_the_short_side() -> None:
    """The same book mirrored: short 1,000 at 102 (its stop 108), a sell stop of 9,000 at 96
    (its stop 97) working: 2,101.02 at 1,449.49 sold."""
    held = {"X": Position("X", -1_000.0, 102.0)}
    stops: Stops = {"X": ((1_000.0, 108.0),)}
    sell = Order("bot-x-add", "X", Side.SELL, 9_000.0, OrderType.STOP, price=96.0, stop_loss=97.0)
    assert stops_gains(held, stops, None, (sell,)) == pytest.approx(BEST_PART)
    best = net_fill(Netted(-1_000.0, 102.0, stops["X"]), (1_000.0 - math.sqrt(6e6), 96.0, 97.0))
    assert best.gains() == pytest.approx(BEST_PART)


def test_two_working_entries_one_whole_one_in_part() -> None:
    """A buy limit of 1,000 at 96 (its stop 90) beside the buy stop: filled, the position nets
    to 2,000 at 97, and q of the buy stop books q (12,000 − q) / (2,000 + q), at most
    16,000 − 4,000 √7 = 5,416.99 at q = √28,000,000 − 2,000 = 3,291.50; each filled whole or
    not at all, at most 2,454.55 (both: 11,000 at 102.73)."""
    cheap = Order("bot-x-low", "X", Side.BUY, 1_000.0, OrderType.LIMIT, price=96.0, stop_loss=90.0)
    best = 16_000.0 - 4_000.0 * math.sqrt(7.0)
    assert stops_gains(PART_HELD, PART_STOPS, None, (cheap, PART_ADD)) == pytest.approx(best)
    assert stops_gains(PART_HELD, PART_STOPS, None, (PART_ADD, cheap)) == pytest.approx(best)
    start = Netted(1_000.0, 98.0, PART_STOPS["X"])
    both = net_fill(start, (1_000.0, 96.0, 90.0))
    assert net_fill(both, (math.sqrt(28e6) - 2_000.0, 104.0, 103.0)).gains() == pytest.approx(best)


def test_the_entry_checked_of_a_limit_or_stop_may_fill_in_part_a_market_one_whole() -> None:
    """The buy stop as the entry checked: once sent it works like the others, and may fill in
    part (2,101.02). A market entry fills whole at the next bar: nothing books."""
    stop = OrderIntent("X", Side.BUY, 9_000.0, OrderType.STOP, price=104.0, stop_loss=103.0)
    gains = gains_after_entry(PART_HELD, PART_STOPS, stop, 9_000.0, 104.0)
    assert gains == pytest.approx(BEST_PART)
    market = OrderIntent("X", Side.BUY, 9_000.0, stop_loss=103.0)
    assert gains_after_entry(PART_HELD, PART_STOPS, market, 9_000.0, 104.0) == 0.0


def test_past_the_exact_count_the_loose_bound_counts_the_entry_checked_in_part() -> None:
    """Seven working buys at 130 (no stop) and the buy stop checked: the one-pass bound took
    the entry checked as filled (the average 103.40, nothing booked); in part it books
    2,101.02, so the bound is at least that."""
    start = Netted(1_000.0, 98.0, PART_STOPS["X"])
    dear: list[Leg] = [(1_000.0, 130.0, None)] * (EXACT_ENTRIES + 1)
    assert symbol_gains(start, dear, (9_000.0, 104.0, 103.0)) >= BEST_PART
    assert loose_gains(start, dear, (9_000.0, 104.0, 103.0)) >= BEST_PART


# Long 1,000 X at 100, its stop trailed to 104, the mark 110: a buy stop of 8,000 at 109 (its
# stop 108.50) works. Whole, the position nets to 9,000 at 108 and the 108.50 stop books 4,000,
# as much as the 104 stop alone; q = 3,000 √2 − 1,000 = 3,242.64 of it nets to 106.88 and
# books 9,500 − 3,000 √2 = 5,257.36.
PART_RAISING = Order(
    "bot-x-add", "X", Side.BUY, 8_000.0, OrderType.STOP, price=109.0, stop_loss=108.5
)
RAISED = 9_500.0 - 3_000.0 * math.sqrt(2.0)


def test_an_entry_is_vetoed_on_the_floor_a_part_of_a_working_entry_raises() -> None:
    """Day started flat at 100,000; 3,000 booked today (balance 103,000), equity 113,000. With
    the buy stop filled whole or not at all the next day's floor is 102,000, and a Y entry
    losing 500 ends at 113,000 − 6,000 − 4,000 − 500 = 102,500: approved. A part of the buy
    stop books 5,257.36: the floor is 103,257.36, and the entry is vetoed."""
    now = ctx(LATER, 113_000.0, dict(HELD), {"X": 110.0, "Y": 2_300.0}, dict(STOPS))
    now = now._replace(entries=(PART_RAISING,))
    entry = OrderIntent("Y", Side.BUY, 100.0, stop_loss=2_295.0)
    decision = started_at(PropFirmParams(**NO_COSTS)).check(entry, now)
    assert decision.action is RiskAction.VETO, decision.reason
    assert "equity would be 102,500.00" in decision.reason
    assert "next trading day's daily loss floor 103,257.36" in decision.reason


def test_the_cut_counts_a_part_of_a_working_entry() -> None:
    """The same account with a Z long of 100 at 2,300 (stop 2,252) and no Y: every stop hit
    leaves 113,000 − 6,000 − 4,800 = 102,200, above the 102,000 floor of the buy stop filled
    whole or not at all, below the 103,257.36 of a part of it: 1,057.36 of the 10,800 at risk
    is cut."""
    held = {**HELD, "Z": Position("Z", 100.0, 2_300.0)}
    stops: Stops = {**STOPS, "Z": ((100.0, 2_252.0),)}
    now = ctx(LATER, 113_000.0, held, {"X": 110.0, "Z": 2_300.0}, stops)
    now = now._replace(entries=(PART_RAISING,))
    actions = started_at(PropFirmParams(**NO_COSTS)).account_actions(now)
    assert [a.kind for a in actions] == [ActionKind.REDUCE]
    assert "next trading day's daily loss floor" in actions[0].reason
    assert actions[0].fraction == pytest.approx((RAISED - 4_200.0) / 10_800.0, rel=1e-3)


def booked_at(start: Netted, legs: list[Leg], fills: tuple[float, ...]) -> float:
    """What ``start`` books with each leg netted in at its fill (the same sign as the leg)."""
    book = start
    for (signed, price, stop), fill in zip(legs, fills, strict=True):
        book = net_fill(book, (math.copysign(fill, signed), price, stop))
    return book.gains()


# The shares of a leg the brute force fills: a grid, finer near nothing (a part's best can be
# a sliver of a large entry).
SHARES = sorted({i / 8 for i in range(9)} | {0.002, 0.01, 0.03, 0.06, 0.2, 0.3})

small_legs = st.lists(
    st.tuples(
        st.sampled_from([-6_000.0, -1_000.0, -300.0, 300.0, 1_000.0, 6_000.0]),
        st.sampled_from([92.0, 97.0, 100.0, 104.0, 108.0]),
        st.sampled_from([None, 89.0, 95.0, 99.0, 102.0, 106.0, 111.0]),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=150, deadline=None)
@given(
    size=st.sampled_from([0.0, 1_000.0, -1_000.0, 400.0]),
    average=st.sampled_from([96.0, 100.0, 103.0]),
    held_stops=st.lists(
        st.tuples(st.sampled_from([300.0, 1_000.0, 2_500.0]), st.sampled_from([90.0, 97.0, 104.0])),
        max_size=2,
    ),
    legs=small_legs,
    whole=st.lists(st.booleans(), min_size=3, max_size=3),
    checked=st.booleans(),
)
def test_no_fill_in_part_books_more_than_the_bound(
    size: float,
    average: float,
    held_stops: list[tuple[float, float]],
    legs: list[Leg],
    whole: list[bool],
    checked: bool,
) -> None:
    """Random small books (long, short or flat; stops covering less or more than held) with
    up to three entries of either side, the last one the entry checked or a working one, some
    market ones: the bound is never below what any fill of them books, each at a grid of its
    quantity (a market one whole or not at all, the market one checked whole)."""
    start = Netted(size, average if size else 0.0, tuple(held_stops))
    working, last = (legs[:-1], legs[-1]) if checked else (legs, None)
    market, last_market = whole[: len(working)], checked and whole[-1]
    grids: list[tuple[float, ...]] = []
    for i, (signed, _, _) in enumerate(legs):
        quantity = abs(signed)
        if i < len(working) and market[i]:
            grids.append((0.0, quantity))
        elif i == len(working) and last_market:
            grids.append((quantity,))
        else:
            grids.append(tuple(quantity * share for share in SHARES))
    most = max(booked_at(start, legs, fills) for fills in itertools.product(*grids))
    bound = symbol_gains(start, working, last, market, last_market)
    assert bound >= most - 1e-6 * max(1.0, most)
    # The two bounds it is the least of with, each alone, and the one-pass one past the count.
    assert sides_gains(start, legs) >= most - 1e-6 * max(1.0, most)
    assert loose_gains(start, working, last) >= most - 1e-6 * max(1.0, most)
