"""``prop-firm``: FTMO-style challenge rules, checked in the worst case before every entry.

- Daily loss: equity (floating P&L counts) must stay at or above the day's start less
  ``max_daily_loss ×`` the initial capital (``daily_loss_of: initial``: FTMO, both presets) or
  the day's start itself (``day_start``). The day's start is taken at the trading day's boundary
  (a configured time in a configured timezone, DST-aware) from the balance (what the closed
  positions left: the engine's cash plus each position at its own price, ``balance_of`` — so
  neither the floating P&L nor a payment accrued and not booked, an MT5 swap, is in it: FTMO,
  and a loss carried over midnight counts against the new day), the equity, or the higher of
  the two (``day_start_from``).
- Total loss: equity must stay at or above the initial capital less ``max_total_loss ×`` it;
  with ``max_loss_trails`` (FTMO 1-Step) the highest end-of-day balance, when above the initial
  capital, instead: the day's start balances so far, each the balance at the end of the day
  before; fixed for the day, only ever rising.
- An entry is vetoed when, with every open position's protective stop hit, every working
  entry order (sent on an earlier bar, or let through earlier in this one) filled and stopped,
  and the order's own stop hit, equity would end below the higher of the two floors
  (``worst < floor``: ending exactly on the floor is allowed). On the balance basis (FTMO)
  the floor is also the next trading day's, when higher: what is carried over midnight and
  stopped after it is measured from the midnight balance, which a profit booked today — or
  booked by a stop closing part of a netted position beyond its average, at most
  (``stop_gains``), each working entry (and the entry checked) netted into its position
  first, whole, in part (a limit or stop entry can fill in part and rest there) or not at
  all, wherever that raises it (``symbol_gains``) — raises while the loss still open stays
  (``carried_floor``).
  Stops are taken in the order the venue works them: an entry adding to a position whose
  stops outlived part of it (a cut leaves them whole) is closed by those first, at their
  prices, before its own stop. Orders without a stop are vetoed when ``require_stop``.
- The worst case counts the costs of getting in and out, which the floor does not forgive
  (the fees took backtests 0.14-0.3% past the daily limit when it did not): each stop's exit
  slips ``slippage_bps`` past its price and pays ``fee_bps`` on its fill; the entry (and each
  working entry) pays ``fee_bps`` on its fill, a market or stop one slipping ``slippage_bps``
  past its price first; working market exits pay what a market fill does. Quantity no stop
  protects is charged ``unprotected_move`` alone, as before. The cuts below count the same,
  their own orders' costs included.
- Gross exposure after the order (working entry orders included) may not exceed
  ``max_leverage ×`` equity.
- Between orders (``acts-on-account``): once the day's loss reaches ``flatten_at`` of its
  allowance, everything is flattened and the day takes no more entries; the same on the total
  loss, which also locks until a person resets (refused, naming the equity and the floor,
  while the last close's loss is still past ``flatten_at``: it would lock again at once,
  ``reset_refusal``). Both are taken as soon as the loss is seen,
  by ``check`` or between orders, with positions open or flat (a stop that closed the last
  position may be what took the loss there). When open positions could, if every stop were
  hit, take equity below the floor (a new day raised it, or a profit booked today the next
  day's), they are cut to fit (the share is
  found on the stops: a cut removes what the last stops cover, not a slice of every stop).
  A bot of several symbols is asked once per symbol's bar at a close, and a cut's orders fill
  at each symbol's bar of the next close: within the close a cut was asked at, only what it
  left short is asked, and at the next close nothing (its fills are still coming in).
- A position being closed is not at risk for what its exit closes: the market exits let through
  at a bar close (reduce-only: a strategy's ``close``, another plugin's cut) count as closing
  their quantity until the next close, less the fills on their side since, and the position's
  stops cover only what they leave (``stops_left``: ``close`` keeps them working until its
  fill). Counted whole, a position already going was cut (its orders then cancelled: nothing
  left to reduce), and an entry beside the close (a reversal) vetoed.
  The cut's own orders are the cut asked, not an exit on top of it.
- The day's start is taken at its first bar close with every symbol marked at that close
  (a bot of several symbols: once the last symbol's bar of it is in); fills made after the
  boundary are the new day's — made inside a bar that straddles it (H4 or D1 bars, a server
  clock), while no bar came, or reported between bars while the engine was still at the old
  day's last close —: their move of the equity, and what they booked into the balance
  (realised P&L less fees), are taken out of it.
- Passing (FTMO): the balance of closed positions at or above ``(1 + profit_target) ×``
  initial with no position open, on ``min_trading_days`` days on which a position was opened
  (a trade held over days counts the day it opened); checked on the account at each call and
  at each moment a closed trade left it flat (the initial capital plus the closed trades' net
  P&L: a payment booked outside any trade is not in it). With ``stop_at_target`` no entry is
  taken after that, ever (FTMO: once passed, passed).
- Restarts: the day's start, the day's block once it was flattened, the highest end-of-day
  balance and a pass are rebuilt from the journaled equity and trades (``restores-equity``,
  ``reads-trades``), so a restart never gives the day a new start nor trades on a passed
  challenge; the journaled equity holds no floating P&L, so the day's balance and the high come
  back from the plugin's own journaled state (``restores-state``), which a journal of an older
  release lacks (the day's start then is its equity until the next day, the high the days'
  starting equity). A trade that closed after the boundary while the bot was down (reconciled,
  never shown as a fill) is taken out of the new day's start with its net P&L, its entry fee
  included (the start then errs high, the safe side, by the fee); what such a trade booked
  before the boundary by closing part of it is taken out too (a profit taken that way errs
  the start low by it: the trades hold no fill-by-fill record).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, NamedTuple, TypeGuard

from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_plugins.risk.rules import (
    DayClock,
    entries_risk_and_gross,
    entry_cost,
    fill_cost,
    open_risk,
    open_risk_and_gross,
    order_risk,
    position_risk,
    risk_after_entry,
    share_to_cut,
    smallest_share,
)
from tradefleet_runtime.sdk import (
    AccountAction,
    ActionKind,
    Fill,
    Order,
    OrderIntent,
    OrderType,
    Position,
    RiskContext,
    RiskDecision,
    Side,
    Trade,
    apply_fill,
    equity_made,
)

log = logging.getLogger(__name__)

# What ``saved_state`` writes; a state of another version is not taken back.
STATE_VERSION = 1

# A plain approval: one immutable value, shared (no allocation per intent).
APPROVE = RiskDecision.approve()


@dataclass(frozen=True, slots=True)
class Limits:
    daily: float
    total: float
    target: float
    min_days: int
    leverage: float
    # What a fill costs beyond its price, a fraction of it: a market or stop fill (slipping,
    # then paying the fee: ``fill_cost``) and a limit one (the fee alone).
    taker: float = 0.0
    maker: float = 0.0
    # The daily limit is a share of the initial capital (FTMO), else of the day's start.
    of_initial: bool = True
    # The maximum loss trails the highest end-of-day balance (FTMO 1-Step), else is fixed.
    trails: bool = False

    @classmethod
    def of(cls, p: PropFirmParams) -> Limits:
        fee, slippage = p.fee_bps / 10_000.0, p.slippage_bps / 10_000.0
        return cls(
            p.value("max_daily_loss"),
            p.value("max_total_loss"),
            p.value("profit_target"),
            int(p.value("min_trading_days")),
            p.value("max_leverage"),
            fill_cost(fee, slippage),
            fee,
            p.daily_loss_base() == "initial",
            p.loss_trails(),
        )


def daily_allowance(day_start: float, initial: float, limits: Limits) -> float:
    """What the day may lose from its start: the daily share of the initial capital (FTMO:
    5% of 100,000 is 5,000 whether the day starts at 95,000 or 120,000), else of the start."""
    return limits.daily * (initial if limits.of_initial else day_start)


def total_base(initial: float, high: float, limits: Limits) -> float:
    """What the maximum loss is measured from: the initial capital, or, when it trails (FTMO
    1-Step), the highest end-of-day balance ``high`` if that is higher (pure)."""
    return max(initial, high) if limits.trails else initial


def floors(
    day_start: float, initial: float, limits: Limits, base: float | None = None
) -> tuple[float, str]:
    """The equity the account must not end below, and which limit sets it: the day's, or the
    maximum loss's (``max_total_loss`` of the initial capital below ``base``, the initial
    capital unless it trails: ``total_base``)."""
    daily = day_start - daily_allowance(day_start, initial, limits)
    total = (initial if base is None else base) - limits.total * initial
    return (daily, "daily_loss") if daily >= total else (total, "total_loss")


def total_breached(loss: float, initial: float, flatten_at: float, limits: Limits) -> bool:
    """Whether a total ``loss`` (from the maximum loss's base) reached ``flatten_at`` of the
    limit, where the total loss locks the account (pure)."""
    return loss >= _less(flatten_at * limits.total * initial)


def reset_refusal(
    equity: float | None, initial: float, base: float, flatten_at: float, limits: Limits
) -> str | None:
    """Why a person's reset of the total-loss lock is refused at ``equity`` (the last bar
    close's), or None when it may be cleared (pure). A reset is taken only where the rule
    would not lock again at once: cleared at a loss still past ``flatten_at``, the next bar
    locks again and owes another flatten, and the journal would say a lock was reset that
    never stopped holding (FTMO: a breach of the maximum loss fails the account)."""
    if equity is None:
        return (
            "the total loss cannot be measured yet: no bar close seen since the start "
            "(reset after the next bar)"
        )
    loss = base - equity
    if not total_breached(loss, initial, flatten_at, limits):
        return None
    allowance = limits.total * initial
    return (
        f"the total loss still holds: equity {equity:,.2f} at the last bar close is "
        f"{loss:,.2f} below {base:,.2f}, at or past {_share(flatten_at)} of the "
        f"{allowance:,.2f} limit ({_share(limits.total)} of the initial capital; the lock is "
        f"taken at equity {base - flatten_at * allowance:,.2f}, the floor is "
        f"{base - allowance:,.2f}): cleared now, it would lock again at the next bar"
    )


def stop_gains(quantity: float, average: float, stops: tuple[tuple[float, float], ...]) -> float:
    """The most the stops working for one position (signed ``quantity``, netted at
    ``average``) can book into the balance: each stop's fill that closes its part beyond the
    average on the winning side books that gain (netting: a reduce keeps the average), gross
    of its costs — the bound errs high by them, the safe side. A stop on the losing side books
    a loss, which lowers the balance and the next day's floor with it: counted as nothing
    (pure)."""
    if not quantity:
        return 0.0
    size, direction = (quantity, 1.0) if quantity > 0 else (-quantity, -1.0)
    total = covered = 0.0
    for stop_quantity, stop in stops:
        left = size - covered
        if left <= 0.0:
            break
        take = stop_quantity if stop_quantity < left else left
        gain = take * (stop - average) * direction
        if gain > 0.0:
            total += gain
        covered += take
    return total


def exit_gains(
    positions: Mapping[str, Position], left: Mapping[str, Position], marks: Mapping[str, float]
) -> float:
    """What the working market exits closing ``positions`` down to ``left`` book into the
    balance at the marks, counting only gains (as ``stop_gains``) (pure)."""
    total = 0.0
    for symbol, position in positions.items():
        kept = left.get(symbol)
        gone = abs(position.quantity) - (abs(kept.quantity) if kept is not None else 0.0)
        if gone > 0.0:
            mark = marks.get(symbol, position.average_price)
            direction = 1.0 if position.quantity > 0 else -1.0
            total += gone * max(0.0, (mark - position.average_price) * direction)
    return total


Stops = tuple[tuple[float, float], ...]

# Working entries of one symbol up to which the bound tries every corner of their fills (each
# whole or not at all: 2^n) and every edge between them (one in part); past it a looser bound
# in one pass (``loose_gains``): a greedy pass missed combinations (two buys that book nothing
# alone can together).
EXACT_ENTRIES = 6


class Netted(NamedTuple):
    """One symbol's position as the bound nets fills into it: the signed ``size`` at
    ``average``, the stops working for it in the venue's order, and what fills against it
    ``booked`` (gains only, as ``stop_gains``)."""

    size: float
    average: float
    stops: Stops
    booked: float = 0.0

    def gains(self) -> float:
        """What it books by midnight at most: its fills against it and its stops."""
        return self.booked + stop_gains(self.size, self.average, self.stops)


# A fill the bound nets into its symbol's book: signed quantity, price, its stop (or None).
Leg = tuple[float, float, float | None]


def net_fill(book: Netted, leg: Leg) -> Netted:
    """``book`` once ``leg`` filled (netted: adding moves the average, ``apply_fill``'s;
    against it books what it closes, a gain counted, a loss as nothing) and its stop joined
    the stops, worked after those already there (pure)."""
    signed, price, stop = leg
    quantity = abs(signed)
    size, average, booked = book.size, book.average, book.booked
    if not size:
        size, average = signed, price
    elif size * signed > 0.0:
        total = size + signed
        average = (abs(size) * average + quantity * price) / abs(total)
        size = total
    else:  # against the position: it books what it closes (rare: netted by the book itself)
        netted = Position("", size, average)
        side = Side.BUY if signed > 0.0 else Side.SELL
        booked += max(
            0.0, apply_fill(netted, Fill("", "", side, quantity, price, 0.0, 0, "")).realized_pnl
        )
        size, average = netted.quantity, netted.average_price
    stops = book.stops if stop is None else (*book.stops, (quantity, stop))
    return Netted(size, average, stops, booked)


def symbol_gains(
    start: Netted,
    working: Sequence[Leg],
    last: Leg | None = None,
    whole: Sequence[bool] = (),
    last_whole: bool = False,
) -> float:
    """The most one symbol's book can book by midnight (``Netted.gains`` of ``start`` with its
    ``working`` entries and then ``last``, the entry checked, netted in by ``net_fill``) over
    every way each of them can fill (pure): a limit or stop entry whole, not at all, or in
    part — it can fill in part and rest there, the broker bracketing what filled with that
    part's own stop, and a part can book more than either end: long 1,000 at 98 with a buy of
    9,000 at 104 (its stop 103) working, filled whole or not at all nothing books; 1,449 of it
    nets the average to 101.55 and its stop books 2,101. A market entry (``whole``, one flag a
    working entry; ``last_whole``) fills whole at the next bar: a working one whole or not at
    all, the one checked whole. The entry checked of a limit or stop may fill in part too: once
    sent it is a working entry like the others.

    Never below that most, and the most itself where every entry adds to the position and
    the held stops cover no more than it (``adding_gains``). Elsewhere the least of two upper
    bounds: ``sides_gains``, and the larger of ``adding_gains`` over the fills that keep the
    position's side and ``sides_gains`` over those that may take it to the other. Past
    ``EXACT_ENTRIES`` working entries the least of ``sides_gains`` and ``loose_gains``.
    O(2^n (n + s)) for n entries and s stops (2^(n+1) with an entry against the position
    followed by one adding to it), past it O((n + s) log(n + s))."""
    legs = [*working, last] if last is not None else list(working)
    if not legs:
        return start.gains()
    if len(working) > EXACT_ENTRIES:
        return min(sides_gains(start, legs), loose_gains(start, working, last))
    fills: list[Fills] = [
        "either" if i < len(whole) and whole[i] else "part" for i in range(len(working))
    ]
    if last is not None:
        fills.append("whole" if last_whole else "part")
    most = adding_gains(start, legs, fills)  # the fills that keep the position's side
    direction = 1.0 if (start.size or legs[0][0]) > 0.0 else -1.0
    against = sum(-signed * direction for signed, _, _ in legs if signed * direction < 0.0)
    if not against and sum(quantity for quantity, _ in start.stops) <= abs(start.size):
        return most  # the most itself: no bound is below it
    if against > abs(start.size):  # and the fills that may take it to the other side
        most = max(most, sides_gains(start, legs, turned=True))
    return min(sides_gains(start, legs), most)


# How a leg may fill: anywhere from nothing to its quantity (a limit or stop entry), whole or
# not at all (a working market entry), or whole (the market entry checked).
Fills = Literal["part", "either", "whole"]


# A leg in the book's direction (a short's prices negated, so a unit closed at σ against the
# average A books σ − A either way): its quantity, price, stop (None: no stop that can book)
# and whether it may fill in part (else whole or not at all).
Adding = tuple[float, float, float | None, bool]
# A stop, or a fill closing the book, bounded as covering a fixed quantity: (quantity, price).
Closer = tuple[float, float]


def adding_gains(start: Netted, legs: Sequence[Leg], fills: Sequence[Fills] = ()) -> float:
    """An upper bound of what ``start`` books by midnight with ``legs`` netted in, each
    filling as its ``fills`` says (default: in part), over the fills that never take the
    position to the other side — every fill, when the entries against it are too few to
    (``symbol_gains``) (pure).

    In the position's direction (a short's prices negated: a unit closed at σ against the
    average A books σ − A either way), a fill against the position closes its part of every
    unit alike (netting keeps the average): the average is that of the start and the adding
    legs weighed by what of them is left. Weights n'0 in [n0 − (entries against it followed
    by an adding leg), n0] at the start's average and q'_j in [0, Q_j] at p_j cover every
    such average, A = (Σ weight × price) / (Σ weight), and the book is then at most

        U(q') = K + Σ_k w_k (σ_k − A)⁺ + Σ_j q'_j (s_j − A)⁺

    over the closers (w_k, σ_k): each held stop at what it covers of the largest position
    (``stop_gains`` fills the stops in order: a stop's cover only grows with the position);
    an entry against the position after the last adding leg closing its whole quantity at
    its price (against the final average), one before it booking at most its quantity beyond
    the lowest price held before it (K); each one's stop what the stops before it can leave
    uncovered; and the units such an earlier one took from adding legs before it, at the
    dearest of their stops (a stop keeps the quantity filled). Each adding leg's stop counts
    at its leg's weight (none when the held stops' surplus over the position always covers
    everything before it). When every leg adds and the held stops cover no more than the
    position, every stop covers its whole quantity whatever fills: U is the book itself, and
    its maximum (``fills_most``) the most."""
    direction = 1.0 if (start.size or legs[0][0]) > 0.0 else -1.0
    held = abs(start.size)
    entries = [
        (abs(signed), price * direction, None if stop is None else stop * direction, signed)
        for signed, price, stop in legs
    ]
    adds = [i for i, leg in enumerate(legs) if leg[0] * direction > 0.0]
    last_add = adds[-1] if adds else -1
    # The entries against the position followed by an adding leg: what they close weighs the
    # legs after them more in the average than those before.
    early = [i for i, leg in enumerate(legs) if leg[0] * direction < 0.0 and i < last_add]
    last_early = early[-1] if early else -1
    adds_total = sum(entries[i][0] for i in adds)
    largest = held + adds_total
    closers: list[Closer] = []
    covered = 0.0
    for quantity, at in start.stops:
        cover = min(quantity, largest - covered)
        if cover > 0.0:
            closers.append((cover, at * direction))
        covered += quantity
    # What of the position no held stop covers (below zero: their surplus over it, which
    # covers the first fills added before any leg's own stop does).
    spare = held - covered
    average = start.average * direction
    n0 = max(0.0, held - sum(entries[i][0] for i in early))
    m0 = n0 * average
    legs_in: list[Adding] = []
    if held > n0:  # the start's weight is a leg of its own
        legs_in.append((held - n0, average, None, True))
    fixed = 0.0  # K
    lowest = average if held else math.inf  # the lowest price held so far
    before = unstopped = taken = taken_from = 0.0
    dearest_stop = -math.inf
    for i, (quantity, price, stop, signed) in enumerate(entries):
        # The most this leg's stop can cover: the spare, the adding legs from it on, and the
        # unstopped ones before it.
        reach = spare + (adds_total - before) + unstopped
        own = stop if stop is not None and reach > 0.0 else None
        fill = fills[i] if i < len(fills) else "part"
        if signed * direction > 0.0:
            followed = i < last_early  # an earlier entry against it may take from it
            if fill == "whole" and not followed:
                n0, m0 = n0 + quantity, m0 + quantity * price
                if own is not None:
                    closers.append((quantity, own))
            else:
                legs_in.append((quantity, price, own, followed or fill == "part"))
            if followed:
                taken_from += quantity
                if own is not None:
                    dearest_stop = max(dearest_stop, own)
            lowest = min(lowest, price)
            before += quantity
            if stop is None:
                unstopped += quantity
        elif lowest < math.inf:  # with nothing held before it, it could only open the other side
            if i > last_add:
                closers.append((quantity, price))
            else:
                fixed += quantity * max(0.0, price - lowest)
                if before:
                    taken += quantity
            if own is not None:
                closers.append((min(quantity, reach), own))
    if taken > 0.0 and dearest_stop > -math.inf:
        closers.append((min(taken, taken_from), dearest_stop))
    return start.booked + fixed + fills_most(n0, m0, closers, legs_in)


def fills_most(n0: float, m0: float, closers: Sequence[Closer], legs: Sequence[Adding]) -> float:
    """The maximum of ``adding_gains``' U over every fill of ``legs`` (Q_j, p_j, s_j, in
    part), each q_j in [0, Q_j] (0 or Q_j when not in part), on ``n0`` held at ``m0 / n0``
    with the ``closers`` (pure): the best of the 2^n corners (each leg whole or not at all)
    and of the edges between them (one leg in part, ``part_gains``).

    Why no fill books more than that: take any q with a position (n0 + Σ q > 0) and let
    a = A(q). Each q' with A(q') ≤ a has U(q') ≥ L(q') = Σ_k w_k (σ_k − a)⁺ + Σ_j q'_j
    (s_j − a)⁺ (every gap only widens), with equality at q. L is linear, and A(q') ≤ a is the
    one linear constraint Σ q'_j (p_j − a) ≤ n0 a − m0: over the box it is a linear program
    whose optimum is at a vertex, where n independent constraints hold with equality, at
    least n − 1 of them q'_j = 0 or Q_j — at most one leg in part. If that vertex is no fill
    with nothing held, every leg of q filled priced at most a (one is: a averages them) whole
    instead is as good (L does not fall along it). So U(q) = L(q) ≤ L(q') ≤ U(q') for a q'
    with at most one leg in part: a corner or a point of an edge. (The legs filled whole or
    not at all keep q's fills: the argument runs over the others.)"""
    count = len(legs)
    corners = 1 << count
    sizes, money = [n0] * corners, [m0] * corners
    for mask in range(1, corners):
        low = mask & -mask
        rest, (quantity, price, _, _) = mask ^ low, legs[low.bit_length() - 1]
        sizes[mask], money[mask] = sizes[rest] + quantity, money[rest] + quantity * price
    values = [0.0] * corners
    for mask in range(corners):
        if sizes[mask] <= 0.0:
            continue  # nothing held: nothing books
        average = money[mask] / sizes[mask]
        value = 0.0
        for weight, price in closers:
            if price > average:
                value += weight * (price - average)
        for j in range(count):
            quantity, _, stop, _ = legs[j]
            if mask >> j & 1 and stop is not None and stop > average:
                value += quantity * (stop - average)
        values[mask] = value
    best = max(values)
    for mask in range(corners):
        if sizes[mask] <= 0.0:
            continue  # from no position a leg nets at its own price: U only rises to its corner
        average = money[mask] / sizes[mask]
        for j in range(count):
            quantity, price, stop, part = legs[j]
            # Along the edge the average only rises from this corner's (p_j above it), so the
            # closers book at most what they book here, the leg's stop at most Q_j (s_j − a).
            if (
                mask >> j & 1
                or not part
                or stop is None
                or price <= average
                or stop <= average
                or values[mask] + quantity * (stop - average) <= best
            ):
                continue
            here = [*closers]
            for i in range(count):
                own = legs[i][2]
                if mask >> i & 1 and own is not None:
                    here.append((legs[i][0], own))
            best = max(best, part_gains(sizes[mask], money[mask], here, (quantity, price, stop)))
    return best


def part_gains(
    size: float, money: float, closers: Sequence[Closer], leg: tuple[float, float, float]
) -> float:
    """The most U (``adding_gains``) reaches inside one edge: ``size`` held at
    ``money / size`` = a with the ``closers``, and the leg (Q, p, s), a < s and a < p,
    filling q in (0, Q] (pure).

    The average A(q) = (money + q p) / (size + q) rises from a toward p, so the closers drop
    out of the money one by one (at q = size (σ − a) / (p − σ)), and the leg's own stop at A =
    s, after which U only falls. Between two of those points, with the closers above A weighing
    C in all, U(q) = D − C A(q) + q (s − A(q)) and dU/dq = h(q) / (size + q)² with
    h(q) = α size − γ C − 2 β size q − β q², α = size (s − a), β = p − s, γ = size (p − a)
    (as γ − α = β size). For β > 0, h falls for q > −size: U rises, then falls, at most once
    — its top at q* = −size + √(size² + (α size − γ C) / β), held inside the stretch; for
    β ≤ 0 it falls, then rises: its top at an end. So the stretches' ends and their q* hold
    the most."""
    quantity, price, stop = leg
    average = money / size
    gap = price - stop
    alpha, gamma = size * (stop - average), size * (price - average)
    end = quantity
    if gap > 0.0:
        end = min(quantity, alpha / gap)  # where the average reaches the leg's stop
    weight = total = 0.0
    cuts: list[tuple[float, float, float]] = []
    for cover, at in closers:
        if at > average:
            weight += cover
            total += cover * at
            if at < price:
                cut = size * (at - average) / (price - at)
                if cut < end:
                    cuts.append((cut, cover, at))
    cuts.sort()
    best, low = -math.inf, 0.0
    for high, cover, at in (*cuts, (end, 0.0, 0.0)):
        tops = [high]
        if gap > 0.0:
            radicand = size * size + (alpha * size - gamma * weight) / gap
            top = math.sqrt(radicand) - size if radicand > 0.0 else -size
            if low < top < high:
                tops.append(top)
        for q in tops:
            now = (money + q * price) / (size + q)
            best = max(best, total - weight * now + q * (stop - now))
        weight -= cover
        total -= cover * at
        low = high
    return best


def sides_gains(start: Netted, legs: Sequence[Leg], turned: bool = False) -> float:
    """An upper bound of ``symbol_gains`` for legs of any side, filled anywhere in [0, their
    quantity] (pure): O((n + s) log(n + s)); with ``turned``, over the fills that take the
    position (or the first leg's) to the other side at some point.

    Every unit the book books on was opened long (held at the start, or by a buy) or short: at
    most the start's and the legs' quantities on that side. A long book's average weighs the
    prices that opened its units (netting: an add averages, a reduce keeps it, a reversal
    starts at its fill's price), so it is never below the lowest of them; a short's never
    above the highest. Each unit is booked at most once: closed by a fill against it (a sell
    closing a long books at most its price less that lowest) or, at the end, by a stop of the
    book left (at most the stop's price less it). So each side books at most its units given
    to its dearest closers, each up to its quantity, the stops to the side the book ends on.
    (A fill's quantity may be counted both closing one side and opening the other: the bound
    errs high by it.) A fill that turned the position had closed all it held: a book ending on
    its side again was opened after the first entry against it, by entries after that one, so
    its stops book against no better an average than theirs."""
    long_units, short_units = max(start.size, 0.0), max(-start.size, 0.0)
    low = start.average if start.size > 0.0 else math.inf
    high = start.average if start.size < 0.0 else -math.inf
    for signed, price, _ in legs:
        if signed > 0.0:
            long_units, low = long_units + signed, min(low, price)
        elif signed < 0.0:
            short_units, high = short_units - signed, max(high, price)
    # Only fills against the book close its units, so before the first unit opens on the other
    # side they have closed every unit held at the start: that much of them opens nothing.
    if start.size > 0.0:
        short_units = max(0.0, short_units - start.size)
    elif start.size < 0.0:
        long_units = max(0.0, long_units + start.size)
    stops = [*start.stops, *((abs(signed), stop) for signed, _, stop in legs if stop is not None)]
    long_end, short_end = low, high  # the averages the stops book against, ending long, short
    if turned:
        direction = 1.0 if (start.size or legs[0][0]) > 0.0 else -1.0
        first = next((i for i, leg in enumerate(legs) if leg[0] * direction < 0.0), len(legs))
        later = [price for signed, price, _ in legs[first + 1 :] if signed * direction > 0.0]
        if direction > 0.0:
            long_end = min(later, default=math.inf)
        else:
            short_end = max(later, default=-math.inf)
    sells: list[Closer] = []
    buys: list[Closer] = []
    long_stops: list[Closer] = []
    short_stops: list[Closer] = []
    if long_units > 0.0:
        sells = [(-signed, price - low) for signed, price, _ in legs if signed < 0.0]
        long_stops = [(quantity, stop - long_end) for quantity, stop in stops]
    if short_units > 0.0:
        buys = [(signed, high - price) for signed, price, _ in legs if signed > 0.0]
        short_stops = [(quantity, short_end - stop) for quantity, stop in stops]
    ending_long = dearest(long_units, [*sells, *long_stops]) + dearest(short_units, buys)
    ending_short = dearest(long_units, sells) + dearest(short_units, [*buys, *short_stops])
    return start.booked + max(ending_long, ending_short)


def dearest(units: float, closers: Sequence[Closer]) -> float:
    """The most ``units`` book given to the ``closers`` (quantity, gain a unit), each taking up
    to its quantity, the dearest first (pure)."""
    total = 0.0
    for gain, quantity in sorted(((g, q) for q, g in closers if g > 0.0), reverse=True):
        if units <= 0.0:
            break
        take = quantity if quantity < units else units
        total += take * gain
        units -= take
    return total


def loose_gains(start: Netted, working: Sequence[Leg], last: Leg | None = None) -> float:
    """An upper bound of ``symbol_gains`` in one pass (pure): every stop (held, and each
    entry's) booking its whole quantity against the most favourable average any fill of the
    entries can net to — when they all add on one side, the average of ``start`` with the
    cheapest (a long's; a short's dearest) entries added while they improve it, which no fill
    beats (the average is a ratio of sums linear in the fills, least at a corner: the entry
    checked among them, since it may fill in part or not at all too); with an entry against
    the position, the farthest of all the prices from the stop, and each entry closing at its
    own against it."""
    legs = [*working, last] if last is not None else list(working)
    stops = [*start.stops, *((abs(q), stop) for q, _, stop in legs if stop is not None)]
    direction = 1.0 if (start.size or legs[0][0]) > 0.0 else -1.0
    if all(q * direction > 0.0 for q, _, _ in legs):
        size, average = abs(start.size), start.average
        for quantity, price, _ in sorted(legs, key=lambda leg: leg[1] * direction):
            if size and (price - average) * direction >= 0.0:
                break  # sorted: no later entry improves the average either
            average = (size * average + abs(quantity) * price) / (size + abs(quantity))
            size += abs(quantity)
        return start.booked + sum(q * max(0.0, (stop - average) * direction) for q, stop in stops)
    prices = [price for _, price, _ in legs]
    if start.size:
        prices.append(start.average)
    low, high = min(prices), max(prices)
    total = start.booked
    for quantity, price in (*stops, *((abs(q), p) for q, p, _ in legs)):
        total += quantity * max(0.0, price - low, high - price)
    return total


def midnight_gains(
    positions: Mapping[str, Position],
    stops: Mapping[str, Stops],
    entries: Sequence[Order] = (),
    marks: Mapping[str, float] | None = None,
    last: tuple[str, Leg] | None = None,
    last_whole: bool = False,
) -> float:
    """The most the stops can book into the balance by midnight (``stop_gains`` of every open
    position), with the working ``entries`` (``RiskContext.entries``, each at its own price, a
    market one at its symbol's mark in ``marks``, its stop as given) netted into their
    symbols' positions — whole, in part or not at all (a market one whole or not at all) —
    where that raises it, and ``last`` (symbol, leg: the entry checked; ``last_whole``: a
    market one, filled whole) after them (``symbol_gains``) (pure). An entry with no price
    known is left out.

    A working entry adding to a position moves the average its stops book against, and its
    own stop joins them: counting the open positions alone understated the next day's floor.
    O(p + e) with no working entry besides ``last``; the symbols with some add
    ``symbol_gains``' cost each."""
    empty: Stops = ()
    working: dict[str, list[Leg]] = {}
    whole: dict[str, list[bool]] = {}
    for order in entries:
        price = order.price or (marks or {}).get(order.symbol, 0.0)
        if price > 0.0 and order.quantity > 0.0:
            leg = (order.quantity * order.side.sign, price, order.stop_loss)
            working.setdefault(order.symbol, []).append(leg)
            whole.setdefault(order.symbol, []).append(order.order_type is OrderType.MARKET)
    own = None if last is None else last[0]
    total = 0.0
    for symbol, position in positions.items():
        if symbol != own and symbol not in working:
            total += stop_gains(position.quantity, position.average_price, stops.get(symbol, empty))
    if own is not None and own not in working:
        working[own] = []
    for symbol, legs in working.items():
        held = positions.get(symbol)
        start = (
            Netted(held.quantity, held.average_price, stops.get(symbol, empty))
            if held is not None and held.quantity
            else Netted(0.0, 0.0, stops.get(symbol, empty))
        )
        checked = last[1] if last is not None and symbol == own else None
        total += symbol_gains(start, legs, checked, whole.get(symbol, ()), last_whole)
    return total


def stops_gains(
    positions: Mapping[str, Position],
    stops: Mapping[str, Stops],
    skip: str | None = None,
    entries: Sequence[Order] = (),
    marks: Mapping[str, float] | None = None,
) -> float:
    """``stop_gains`` of every open position but ``skip``'s, summed, with the working
    ``entries`` netted in where that raises it (``midnight_gains``) (pure)."""
    if skip is not None:
        positions = {s: p for s, p in positions.items() if s != skip}
        entries = tuple(order for order in entries if order.symbol != skip)
    return midnight_gains(positions, stops, entries, marks)


def gains_after_entry(
    positions: Mapping[str, Position],
    stops: Mapping[str, Stops],
    intent: OrderIntent,
    quantity: float,
    entry: float,
    entries: Sequence[Order] = (),
    marks: Mapping[str, float] | None = None,
) -> float:
    """``stop_gains`` of every open position once ``quantity`` of ``intent`` filled at
    ``entry`` — a market one whole, a limit or stop one whole, in part or not at all, wherever
    that raises it (``symbol_gains``) — (netted into its symbol's position: an entry against it
    books what it closes, a gain counted) and its own stop joined the stops, worked after those
    already held and the working ``entries``' (netted in before it where that raises the sum:
    ``midnight_gains``) (pure). The entry's fee and slippage are left out: they lower the
    balance, or move the average against the gains, so the bound errs high."""
    leg = (quantity * intent.side.sign, entry, intent.stop_loss)
    market = intent.order_type is OrderType.MARKET
    return midnight_gains(positions, stops, entries, marks, (intent.symbol, leg), market)


def carried_floor(
    today: tuple[float, str],
    next_balance: float | None,
    initial: float,
    limits: Limits,
    base: float | None = None,
) -> tuple[float, str, str]:
    """The floor the worst case must stay above, its limit's code and how a reason names it:
    today's (``floors``), or the next trading day's when higher (pure).

    FTMO's day starts from the balance at midnight, and a position carried over it may hit
    its stop the next day, measured against that day's floor: the balance the stops and exits
    can leave by then (``next_balance``, at most: ``stop_gains``) less the allowance. A
    profit booked today (a stop closing part of a netted position beyond its average, a
    position closed in profit) raises that floor above today's while the loss still open does
    not shrink: checked against today's alone, a short the price turned against ended the next
    day 0.80 below FTMO's floor, the flatten at its first close costing more than the room
    left. None (``day_start_from: equity``): the next day's start is the equity at the
    boundary, which nothing now bounds."""
    floor, which = today
    label = f"{which.replace('_', ' ')} floor"
    if next_balance is None:
        return floor, which, label
    next_base = initial if base is None else base
    if limits.trails:  # the next day's start balance is among the end-of-day balances
        next_base = max(next_base, next_balance)
    upcoming, code = floors(next_balance, initial, limits, next_base)
    if upcoming > floor:
        return upcoming, code, f"next trading day's {code.replace('_', ' ')} floor"
    return floor, which, label


def balance_of(cash: float, positions: Mapping[str, Position]) -> float:
    """The account's balance — what its closed positions left: the initial capital, realised
    P&L, fees and booked payments — from the engine's cash, which pays for a position as it
    buys it (spot-style: ``equity = cash + Σ quantity × mark + Σ accrued``) (pure).

    Equity less the floating P&L counted a payment accrued on an open position and not booked
    yet (an MT5 swap, ``reports-accruals``) as if booked: a prop firm's balance holds it only
    once the closing deal books it, and the day's start was that much off."""
    total = cash
    for position in positions.values():
        total += position.quantity * position.average_price
    return total


def booked_each(before: Mapping[str, Position], fills: Sequence[Fill]) -> list[float]:
    """What each of ``fills`` booked into the balance — realised P&L less its fee —, netted in
    order into copies of the positions ``before`` them (pure). A stop that closed a position
    just after the day's boundary moved the balance by its loss to the entry, which the
    position it closed (gone from the account) no longer shows."""
    book = {symbol: Position(symbol, p.quantity, p.average_price) for symbol, p in before.items()}
    amounts = []
    for fill in fills:
        position = book.get(fill.symbol)
        if position is None:
            position = book[fill.symbol] = Position(fill.symbol)
        amounts.append(apply_fill(position, fill).realized_pnl - fill.fee)
    return amounts


def booked(
    before: Mapping[str, Position], fills: Sequence[Fill], boundary: int
) -> tuple[float, float]:
    """What ``fills`` booked into the balance (``booked_each``): those made before
    ``boundary`` and those at or after it (pure)."""
    early = late = 0.0
    for fill, amount in zip(fills, booked_each(before, fills), strict=True):
        if fill.ts < boundary:
            early += amount
        else:
            late += amount
    return early, late


def start_from(basis: str, balance: float, equity: float) -> float:
    """The day's start on ``basis`` (``day_start_from``) of the balance and equity at it."""
    if basis == "balance":
        return balance
    if basis == "equity":
        return equity
    return max(balance, equity)


def flat_after(trades: Sequence[Trade], start: int, open_since: float) -> list[int]:
    """The indexes from ``start`` of the closed trades (in the order they closed) after whose
    exit the account held nothing: no trade listed after it had entered by then, nor a
    position still open (the earliest opened at ``open_since``; none: infinity) (pure). A
    trade ending as another begins at its time (a reversal) leaves the account holding."""
    flat: list[int] = []
    later_entry = open_since
    for i in range(len(trades) - 1, start - 1, -1):
        trade = trades[i]
        if later_entry > trade.exit_ts:
            flat.append(i)
        later_entry = min(later_entry, trade.entry_ts)
    flat.reverse()
    return flat


def opens(held: float, signed: float) -> bool:
    """Whether a fill of ``signed`` quantity opens a position (or adds to one, or reverses it)
    when ``held`` is held: a new trade, which makes its day a trading day (pure)."""
    return held * signed >= 0.0 or abs(signed) > abs(held)


def check_entry(
    intent: OrderIntent,
    ctx: RiskContext,
    day_start: float,
    initial: float,
    limits: Limits,
    p: PropFirmParams,
    sunk: float = 0.0,
    base: float | None = None,
    balance: float | None = None,
) -> RiskDecision:
    """The veto rule for one entry, in the worst case (pure): every stop hit, with the costs
    of each fill that takes (``Limits.taker``/``maker``), and ``sunk`` (the costs of fills
    already on their way, the working market exits') besides; the maximum loss measured from
    ``base`` (``floors``); with ``balance`` (the balance now, and what the working exits book),
    above the next trading day's floor too (``carried_floor``)."""
    if intent.reduce_only:
        return APPROVE
    if intent.stop_loss is None and p.require_stop:
        return RiskDecision.veto("prop-firm: an entry needs a stop-loss", "no_stop")
    if intent.quantity is None:
        return RiskDecision.veto(
            "prop-firm: the order has no size yet (put a sizer before prop-firm)", "unsized"
        )
    entry = intent.price or ctx.mark(intent.symbol)
    if entry <= 0:
        return RiskDecision.veto(f"prop-firm: no price known for {intent.symbol}", "no_price")
    next_balance = None
    if balance is not None:
        gains = gains_after_entry(
            ctx.positions, ctx.stops, intent, intent.quantity, entry, ctx.entries, ctx.marks
        )
        next_balance = balance + gains
    today = floors(day_start, initial, limits, base)
    floor, which, label = carried_floor(today, next_balance, initial, limits, base)
    taker, move = limits.taker, p.unprotected_move
    at_risk, open_gross = open_risk_and_gross(ctx.positions, ctx.marks, ctx.stops, move, taker)
    at_risk += sunk
    if ctx.entries:  # entries working (sent earlier, or let through earlier this bar) count
        pending_risk, pending_gross = entries_risk_and_gross(
            ctx.entries, ctx.marks, move, taker, limits.maker
        )
        at_risk += pending_risk
        open_gross += pending_gross
    # The entry's own fill costs are paid whatever its stop does.
    own = intent.quantity * entry * entry_cost(intent.order_type, taker, limits.maker)
    loss = at_risk + order_risk(intent.quantity, entry, intent.stop_loss, move, taker) + own
    signed = intent.quantity * intent.side.sign
    position = ctx.positions.get(intent.symbol)
    held = position.quantity if position is not None else 0.0
    if held * signed >= 0.0 and intent.symbol in ctx.stops:
        # Opening or adding: the stops already worked may close the new quantity before its
        # own stop does (the larger of the two ways of counting is the worst case; with no
        # stop working for the symbol the two are the same).
        mark = ctx.marks.get(
            intent.symbol, position.average_price if position is not None else entry
        )
        stops = ctx.stops.get(intent.symbol, ())
        before = position_risk(held, mark, stops, move, taker)
        after = risk_after_entry(held, mark, stops, signed, entry, intent.stop_loss, move, taker)
        loss = max(loss, at_risk - before + after + own)
    worst = ctx.equity - loss
    if worst < _less(floor):
        return RiskDecision.veto(
            f"prop-firm: if every stop is hit equity would be {worst:,.2f} (costs of "
            f"{p.fee_bps:.10g} bps fee and {p.slippage_bps:.10g} bps slippage a fill included), "
            f"below the {label} {floor:,.2f}",
            which,
        )
    gross = open_gross + intent.quantity * entry
    if ctx.equity <= 0 or gross > limits.leverage * ctx.equity:
        return RiskDecision.veto(
            f"prop-firm: exposure {gross:,.2f} would exceed {limits.leverage:.10g}x equity",
            "max_leverage",
        )
    return APPROVE


def still_to_cut(share: float, asked: float) -> float:
    """What to ask now of every open position when ``share`` of it must go and cuts asked at
    this same bar close (not filled yet: positions are as they were) already take ``asked``.

    A REDUCE closes its fraction of each position as it stands, and a cut's orders fill at the
    next bar: asking ``share`` again at every symbol's bar of one close cut a bot of three
    symbols up to three times over. Only the part not yet asked is (none when none is left)."""
    extra = share - asked
    return extra if extra > 1e-9 else 0.0


def close_moved(
    held: Mapping[str, float],
    seen: Mapping[str, float],
    marks: Mapping[str, float],
    early: Sequence[Fill],
) -> float:
    """How far the equity at the day's first bar close moved since it was last looked at (at
    ``seen`` marks, ``held`` quantities): the held quantities from the marks seen to ``marks``
    (the other symbols' bars of that close came in), and the fills made before the day's
    boundary that were reported since (``early``). A fill after the boundary (a live venue
    reports them between bars, the engine still at the close) is the new day's and does not
    move it; nor does anything else (pure)."""
    moved = 0.0
    for symbol, quantity in held.items():
        before, now = seen.get(symbol), marks.get(symbol)
        if before is not None and now is not None:
            moved += quantity * (now - before)
    for fill in early:
        moved += equity_made(fill, marks)
    return moved


Exits = Mapping[tuple[str, Side], float]


def covered(positions: Mapping[str, Position], exits: Exits, own: Exits) -> dict[str, float]:
    """How much of each open position the working market exits on its closing side will close
    (never more than is held): ``exits`` less ``own`` (the cut's own orders, counted as the
    share asked instead). Only symbols with some covered are in it (pure)."""
    result: dict[str, float] = {}
    for symbol, position in positions.items():
        held = position.quantity
        if not held:
            continue
        key = (symbol, Side.SELL if held > 0 else Side.BUY)
        closing = exits.get(key, 0.0) - own.get(key, 0.0)
        if closing > 1e-9 * abs(held):
            result[symbol] = min(closing, abs(held))
    return result


def after_exits(
    positions: Mapping[str, Position], closing: Mapping[str, float], share: float = 0.0
) -> dict[str, Position]:
    """The open positions once ``share`` of each is cut and the exits working against them
    (``closing``, from :func:`covered`) have closed what they close: reduce-only, the two
    together close no more than is held (pure)."""
    if not closing and not share:
        return dict(positions)
    keep = 1.0 - share
    left: dict[str, Position] = {}
    for symbol, position in positions.items():
        held = position.quantity
        size = max(0.0, abs(held) * keep - closing.get(symbol, 0.0))
        left[symbol] = Position(symbol, size if held > 0 else -size, position.average_price)
    return left


def stops_left(left: Mapping[str, Position], stops: Mapping[str, Stops]) -> dict[str, Stops]:
    """``stops`` of the positions as the working exits leave them (``left``, from
    :func:`after_exits`): each symbol's stops, in order, covering no more than is left of its
    position, and none of a position they close whole. A strategy's ``close`` and a flatten
    keep the position's stops working until the close fills (a close refused would leave it
    bare): counted beside the close, a stop whose position is closing looked like one already
    working for an entry of the symbol, and the entry was charged what it could close (pure)."""
    result: dict[str, Stops] = {}
    for symbol, each in stops.items():
        position = left.get(symbol)
        if position is None:
            result[symbol] = each
            continue
        room = abs(position.quantity)
        kept: list[tuple[float, float]] = []
        for quantity, price in each:
            if room <= 1e-12:
                break
            take = min(quantity, room)
            kept.append((take, price))
            room -= take
        if kept:
            result[symbol] = tuple(kept)
    return result


def closed_cost(
    positions: Mapping[str, Position],
    left: Mapping[str, Position],
    marks: Mapping[str, float],
    cost: float,
) -> float:
    """What closing at market the quantity ``positions`` hold beyond what is ``left`` of them
    costs, ``cost`` of each unit's mark (a market fill's slip and fee: ``Limits.taker``)."""
    if not cost:
        return 0.0
    total = 0.0
    for symbol, position in positions.items():
        kept = left.get(symbol)
        gone = abs(position.quantity) - (abs(kept.quantity) if kept is not None else 0.0)
        if gone > 0.0:
            total += gone * marks.get(symbol, position.average_price) * cost
    return total


def share_to_cut_after_exits(
    positions: Mapping[str, Position],
    closing: Mapping[str, float],
    marks: Mapping[str, float],
    stops: Mapping[str, tuple[tuple[float, float], ...]],
    unprotected_move: float,
    room: float,
    exit_cost: float = 0.0,
) -> float:
    """The smallest share of every open position (as it stands: a REDUCE closes its fraction
    of the position, not of what the exits leave) to cut so that ``open_risk`` of what the cut
    and the exits leave, with the costs of their own market fills, is at most ``room`` —
    ``share_to_cut`` with exits working (pure). Bisection: the risk only falls as the cut
    grows, ending on the side that fits."""

    def risk_left(share: float) -> float:
        left = after_exits(positions, closing, share)
        return open_risk(left, marks, stops, unprotected_move, exit_cost) + closed_cost(
            positions, left, marks, exit_cost
        )

    return smallest_share(risk_left, room)


def cut_to_fit(equity: float, at_risk: float, floor: float) -> float:
    """Share of every open position to close so that all stops hit leaves equity >= floor."""
    if at_risk <= 0.0 or equity - at_risk >= _less(floor):
        return 0.0
    # Leave a hair of room, so the cut (and float rounding) does not land just under the floor
    # and ask for another sliver on the next bar.
    room = max(0.0, equity - floor) * (1.0 - 1e-6)
    return min(1.0, 1.0 - room / at_risk)


class PropFirm:
    def __init__(self, params: PropFirmParams) -> None:
        self.params = params
        self.limits = Limits.of(params)
        self._day: date | None = None
        # The day's start on the basis ``day_start_from`` names, and on both bases: the balance
        # (``balance_of``) and the equity at the day's boundary, as its first close shows them.
        self._basis = params.day_start_basis()
        self._day_start = 0.0
        self._start_balance = 0.0
        self._start_equity = 0.0
        # The highest balance at the end of a trading day before this one (each is the next
        # day's start balance): with today's start, what a trailing maximum loss is measured
        # from (``total_base``).
        self._high_balance = 0.0
        # The positions at the last call: the fills since are netted into them to find what
        # they booked into the balance (``booked_each``).
        self._positions_seen: Mapping[str, Position] = {}
        # Fills of a later trading day than the close of the call that took them (a venue's
        # stop after midnight, reported while the engine is still at the day's last close),
        # with what each booked: the next day's, kept for its start.
        self._ahead: list[tuple[Fill, float]] = []
        # What a restart's journaled equity left to settle at the first call, which carries
        # the initial capital: the restored day's lowest equity.
        self._restored_low: float | None = None
        # The day a restart left the plugin on, until its first call: a trade that closed
        # after the next day's boundary while the bot was down (its fills, reconciled, are
        # never shown to the plugin) is that day's, not in its start.
        self._restored_day: date | None = None
        # The first fill shown since the plugin was built: trades that ended before it were
        # not shown to it (an earlier run's, or reconciled at a restart).
        self._first_fill_ts: int | None = None
        # The equity last seen, with its bar time: a call's, or the last journaled snapshot's.
        self._last_seen: tuple[int, float] | None = None
        # Restored and not asked yet: the positions are unknown, so a fill shown now can be
        # neither netted nor told opening; it is left to the trades, as the reconciled ones.
        self._blind = False
        # The bar close the day started at, while calls still come at it (the other symbols'
        # bars of that close): the day's start follows their marks as they come in, from the
        # marks seen at the last call and the quantities held at the close.
        self._day_ts: int | None = None
        self._seen: dict[str, float] = {}
        self._held: dict[str, float] = {}
        # The fills reported since the last call.
        self._fills: list[Fill] = []
        # The bar close of the last cut asked, the share of every position asked at it, and
        # the close after it (the cut's orders fill there, symbol by symbol), once seen.
        self._cut_ts: int | None = None
        self._cut_asked = 0.0
        self._cut_fills_ts: int | None = None
        self._day_blocked = ""
        self._locked = ""
        self._locked_since = 0
        # The equity and initial capital at the last call: what a person's reset of the lock
        # is measured at (``reset_refusal``); None before the first call.
        self._equity_seen: float | None = None
        self._initial_seen = 0.0
        # Market exits (reduce-only) let through at the close ``_exits_ts`` by symbol and side,
        # less the fills on that side since, and what of them the cuts asked at that close are.
        self._exits_ts: int | None = None
        self._exits: dict[tuple[str, Side], float] = {}
        self._own: dict[tuple[str, Side], float] = {}
        # The flatten a limit taken asked for and the account was not yet told of.
        self._owed: list[AccountAction] = []
        self._passed = False
        self._trades: Sequence[Trade] = ()
        # Days a fill seen opened a position or added to one (a trade's entry day comes from
        # the trades too): FTMO's trading days are the days a trade was opened.
        self._open_days: set[date] = set()
        # Trading days, kept as they come (``trading_days`` is asked on every intent;
        # recounting every trade each time grew with the history).
        self._days: set[date] = set()
        self._trades_counted = 0
        # The pass found on the closed trades (``_passed_on_trades``): how many were walked,
        # their net P&L and their entry days.
        self._walked = 0
        self._walked_pnl = 0.0
        self._walked_days: set[date] = set()
        self._clock = DayClock(params.timezone, params.day_start_minute)

    # -- capabilities ----------------------------------------------------------------------

    def bind_trades(self, trades: Sequence[Trade]) -> None:
        self._trades = trades
        self._days = set(self._open_days)
        self._trades_counted = 0
        self._walked, self._walked_pnl, self._walked_days = 0, 0.0, set()

    def on_fill(self, fill: Fill) -> None:
        if self._blind:
            return
        if opens(self._held_now(fill.symbol), fill.quantity * fill.side.sign):
            day = self._trading_day(fill.ts)
            self._open_days.add(day)
            self._days.add(day)
        if self._first_fill_ts is None:
            self._first_fill_ts = fill.ts
        self._fills.append(fill)
        key = (fill.symbol, fill.side)
        if key in self._exits:
            # The exit's own fill, or a stop's that leaves the exit less to close: either way
            # the position shrank by it, and the exit counts for that much less (a stop's
            # fill undercounts what the exit still closes: the safe side).
            self._exits[key] = max(0.0, self._exits[key] - fill.quantity)

    def _held_now(self, symbol: str) -> float:
        """What is held of ``symbol`` before the fill being shown: the positions at the last
        call and the fills since."""
        position = self._positions_seen.get(symbol)
        held = position.quantity if position is not None else 0.0
        for fill in self._fills:
            if fill.symbol == symbol:
                held += fill.quantity * fill.side.sign
        return held

    def lock_reason(self) -> str | None:
        return self._locked or None

    def reset_lock(self) -> str | None:
        if self._locked:
            initial = self._initial_seen
            refusal = reset_refusal(
                self._equity_seen, initial, self._base(initial), self.params.flatten_at, self.limits
            )
            if refusal is not None:
                return refusal
        self._locked = ""
        self._owed = []
        return None

    def restore_lock(self, reason: str, since_ts: int) -> None:
        self._locked, self._locked_since = reason, since_ts

    def restore_equity(self, timestamps: Sequence[int], equity: Sequence[float]) -> None:
        # The day's start as the live run took it (its first bar close) and the day's lowest
        # equity since: a restart must not give the day a new start nor lift "no entries until
        # the next trading day". The block is measured against the initial capital, which only
        # a context carries: it is settled at the first call (``_settle_restored``).
        low = math.inf
        for ts, value in zip(timestamps, equity, strict=True):
            day = self._day
            self._roll_day(int(ts), float(value))
            low = min(low, float(value)) if self._day == day else float(value)
        # A journaled snapshot has every symbol marked at its close: a bar of that close seen
        # again after the restart must not move the day's start.
        self._day_ts = None
        if len(timestamps):
            self._restored_low = low
            self._restored_day = self._day
            self._blind = True
            self._last_seen = (int(timestamps[-1]), float(equity[-1]))

    def saved_state(self) -> dict[str, Any]:
        """The day (its start on both bases: the journaled equity holds no floating P&L, so a
        balance start cannot be rebuilt from it), its block, the pass and the highest
        end-of-day balance (``restores-state``); journaled by the engine whenever it changes."""
        return {
            "version": STATE_VERSION,
            "day": self._day.isoformat() if self._day is not None else None,
            "start_balance": self._start_balance,
            "start_equity": self._start_equity,
            "blocked": self._day_blocked,
            "passed": self._passed,
            "high_balance": self._high_balance,
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Take back an earlier run's day, pass and highest end-of-day balance. Called after
        ``restore_equity``: a state of the day the journaled equity ends in (or a later one)
        gives the day's start on every basis and the high; an older one only its pass and
        (at least) its high. One not as ``saved_state`` writes it is said and left out (the
        journaled equity's day stands)."""
        kept = kept_state(state)
        if isinstance(kept, str):
            log.warning("prop-firm: the kept state is left out, %s", kept)
            return
        self._passed = self._passed or kept.passed
        self._blind = True
        if kept.day is None or (self._day is not None and kept.day < self._day):
            # The days after it were rebuilt from the journaled equity alone.
            self._high_balance = max(self._high_balance, kept.high or 0.0)
            return
        if kept.day != self._day:  # the state is newer than the journaled equity
            self._day, self._day_blocked, self._restored_low = kept.day, "", None
        self._day_ts, self._seen, self._held = None, {}, {}
        self._set_start(kept.balance, kept.equity)
        self._day_blocked = self._day_blocked or kept.blocked
        if kept.high is not None:  # exact, where the journaled equity's day starts were not
            self._high_balance = kept.high
        self._restored_day = self._day

    def _settle_restored(self, ctx: RiskContext) -> None:
        """At the first call after a restart: the restored day's block (its lowest journaled
        equity against the restored start)."""
        initial = ctx.initial_equity or ctx.equity
        low, self._restored_low = self._restored_low, None
        if low is not None and not self._day_blocked:
            self._day_blocked = self._day_block(self._day_start - low, initial)

    def _day_block(self, day_loss: float, initial: float) -> str:
        """Why the day takes no more entries once its loss reached ``flatten_at`` of the daily
        limit, or "" while it has not."""
        p, limits = self.params, self.limits
        allowance = daily_allowance(self._day_start, initial, limits)
        if day_loss < _less(p.flatten_at * allowance):
            return ""
        of = "initial capital" if limits.of_initial else "day's start"
        return (
            f"the day's loss {day_loss:,.2f} reached {_share(p.flatten_at)} of the "
            f"{allowance:,.2f} daily limit ({_share(limits.daily)} of the {of}); no entries "
            "until the next trading day"
        )

    # -- state ------------------------------------------------------------------------------

    def _trading_day(self, ts: int) -> date:
        return self._clock.day(ts)

    def trading_days(self) -> int:
        """Days a position was opened (or added to): the closed trades' entries and the
        opening fills seen. A trade held over several days counts its first day alone."""
        trades = self._trades
        count = len(trades)
        if count < self._trades_counted:  # another sequence: count it afresh
            self._days, self._trades_counted = set(self._open_days), 0
        if count != self._trades_counted:
            days = self._days
            for i in range(self._trades_counted, count):
                days.add(self._trading_day(trades[i].entry_ts))
            self._trades_counted = count
        return len(self._days)

    def _base(self, initial: float) -> float:
        """What the maximum loss is measured from today (``total_base``): the highest balance
        at the end of an earlier day, today's start among them."""
        if not self.limits.trails:  # asked a few times an intent: the usual case costs nothing
            return initial
        return total_base(initial, max(self._high_balance, self._start_balance), self.limits)

    def _roll_day(self, ts: int, equity: float, ctx: RiskContext | None = None) -> None:
        """A new trading day starts, unblocked, from the balance and equity at its boundary,
        taken at its first bar close.

        With several symbols that close comes as one bar per symbol, and the first one's is
        seen with the others still marked at the close before: taken there alone, the equity
        start was off by the others' last move (a start too low lowered the day's floor).
        While calls come at that close the start follows the marks their bars bring, so that
        once the last one is in it is the equity the engine journals for the close. Fills
        made after the boundary — reported between bars, made inside a bar that straddles it
        (H4 or D1 bars, a broker's server clock), or while no bar came (a gap) — are the new
        day's: a stop hit after midnight must not lower the start by its own loss, on either
        basis (the balance by what it booked, ``booked_each``)."""
        fills, self._fills = self._fills, []
        day = self._clock.day(ts)
        if ctx is None:  # a journaled snapshot: every symbol marked, floating P&L unknown
            if day != self._day:
                self._new_day(day, ts)
                self._seen, self._held = {}, {}
                self._set_start(equity, equity)
            else:
                self._day_ts = None
            return
        taken: list[tuple[Fill, float]] = self._ahead
        if fills:
            amounts = booked_each(self._positions_seen, fills)
            taken = taken + list(zip(fills, amounts, strict=True))
        if taken:
            self._ahead = [pair for pair in taken if self._clock.day(pair[0].ts) > day]
            if self._ahead:
                taken = [pair for pair in taken if self._clock.day(pair[0].ts) <= day]
        if day != self._day:
            # The restored day is told to the first new day only, whatever asked before it: a
            # signal judged at the restored clock, before the first bar after the restart,
            # must not use it up (the new day then started after the loss made while down).
            restored, self._restored_day = self._restored_day, None
            self._new_day(day, ts)
            self._start_day(ctx, equity, taken, restored)
        elif ts != self._day_ts:
            self._day_ts = None  # a later close: the day's start is settled
        else:
            self._follow_close(ctx, taken)

    def _new_day(self, day: date, ts: int) -> None:
        if self._day is not None:
            # The day that ends started from the balance at the end of the one before it.
            self._high_balance = max(self._high_balance, self._start_balance)
        self._day, self._day_blocked, self._day_ts = day, "", ts

    def _start_day(
        self,
        ctx: RiskContext,
        equity: float,
        taken: Sequence[tuple[Fill, float]],
        restored: date | None,
    ) -> None:
        """The day's start at its first call: the account at the close less the fills made
        after the boundary (and, after a restart over it, the trades closed since)."""
        day = self._day
        held = {symbol: p.quantity for symbol, p in ctx.positions.items()}
        late_equity = late_balance = 0.0
        for fill, amount in taken:
            if self._clock.day(fill.ts) == day:
                late_equity += equity_made(fill, ctx.marks)
                late_balance += amount
                held[fill.symbol] = held.get(fill.symbol, 0.0) - fill.quantity * fill.side.sign
        if restored is not None and day is not None and day > restored:
            late_balance += self._closed_unseen(day)
        for fill in ctx.fills_while_down:
            # Made at the venue on this day while the bot was down, booked before the bars that
            # closed meanwhile (never shown here): the day's loss, not in its equity start (the
            # balance start has it through ``_closed_unseen``).
            if day is not None and self._clock.day(fill.ts) >= day:
                late_equity += equity_made(fill, ctx.marks)
                # Held at the close without it: the start follows the other symbols' marks
                # as their bars come in (``_follow_close``), a fill's own part too.
                held[fill.symbol] = held.get(fill.symbol, 0.0) - fill.quantity * fill.side.sign
        self._seen, self._held = dict(ctx.marks), held
        equity_start = equity - late_equity
        if day is not None and self._seen_before(ctx, day):
            # The venue filled orders while the bot was down only on this day, after the
            # equity last seen on the day before: the day's first close may have come while
            # the bot was down too (it came back bars later), and this first call, at later
            # marks, cannot price the start. That equity, when higher, holds none of those
            # fills (as circuit-breaker's day after such a restart).
            assert self._last_seen is not None
            equity_start = max(equity_start, self._last_seen[1])
        self._set_start(balance_of(ctx.cash, ctx.positions) - late_balance, equity_start)

    def _seen_before(self, ctx: RiskContext, day: date) -> bool:
        """Whether the equity last seen is of the day before ``day`` and every fill made while
        the bot was down after it falls on ``day`` or later (none on the old day)."""
        if self._last_seen is None or not ctx.fills_while_down:
            return False
        seen_ts = self._last_seen[0]
        if (day - self._clock.day(seen_ts)).days != 1:
            return False
        days = [self._clock.day(f.ts) for f in ctx.fills_while_down if f.ts > seen_ts]
        return bool(days) and min(days) >= day

    def _closed_unseen(self, day: date) -> float:
        """The net P&L of the trades that closed on ``day`` before the first fill the plugin
        was shown: after a restart, those the bot made while down (reconciled, never shown as
        fills). A trade's entry fee is counted with it (the start then errs high, the safe
        side, by the fee), and so is what a part it closed before the boundary booked."""
        seen = self._first_fill_ts
        total = 0.0
        for trade in reversed(self._trades):
            ended = self._clock.day(trade.exit_ts)
            if ended < day:
                break
            if ended == day and (seen is None or trade.exit_ts < seen):
                total += trade.net_pnl
        return total

    def _follow_close(self, ctx: RiskContext, taken: Sequence[tuple[Fill, float]]) -> None:
        """Another call at the day's first close (another symbol's bar): the equity start
        follows the marks, and both starts the fills made before the boundary that were
        reported since (the old day's); those after it do not move them."""
        day = self._day
        early = [pair for pair in taken if day is not None and self._clock.day(pair[0].ts) < day]
        held, marks = self._held, ctx.marks
        moved = close_moved(held, self._seen, marks, [fill for fill, _ in early])
        for fill, _ in early:
            held[fill.symbol] = held.get(fill.symbol, 0.0) + fill.quantity * fill.side.sign
        self._seen = dict(marks)
        booked_early = sum(amount for _, amount in early)
        self._set_start(self._start_balance + booked_early, self._start_equity + moved)

    def _set_start(self, balance: float, equity: float) -> None:
        self._start_balance, self._start_equity = balance, equity
        self._day_start = start_from(self._basis, balance, equity)

    def _observe(self, ctx: RiskContext) -> None:
        if self._restored_low is not None:
            self._settle_restored(ctx)
        self._roll_day(ctx.ts, ctx.equity, ctx)
        self._last_seen = (ctx.ts, ctx.equity)
        self._equity_seen, self._initial_seen = ctx.equity, ctx.initial_equity or ctx.equity
        # The positions the next call's fills are netted into (``booked_each``).
        self._positions_seen, self._blind = ctx.positions, False
        if not self._passed and self.limits.target > 0:
            self._passed = self._passes(ctx)

    def _passes(self, ctx: RiskContext) -> bool:
        """FTMO's pass: the balance of closed positions at the target with none open, and the
        trading days made. Checked on the account now, and at each moment a closed trade left
        it flat (a new position opened before the next call, or a restart, hides that one)."""
        # Most calls hold a position and bring no new trade: decided without the arithmetic.
        new_trades = len(self._trades) != self._walked
        holding = _holding(ctx.positions)
        if holding and not new_trades:
            return False
        initial = ctx.initial_equity or ctx.equity
        goal = _less(initial * (1.0 + self.limits.target))
        if new_trades and self._passed_on_trades(initial, goal, ctx.positions):
            return True
        return (
            not holding
            and balance_of(ctx.cash, ctx.positions) >= goal
            and self.trading_days() >= self.limits.min_days
        )

    def _passed_on_trades(
        self, initial: float, goal: float, positions: Mapping[str, Position]
    ) -> bool:
        """Whether a trade closed since the last call left the account flat with the initial
        capital and the closed trades' net P&L at ``goal``, and the trading days made by then
        (the opening fills seen, the trades' entries). A payment booked outside any trade is
        not in it (the account's own balance is, when flat now: ``_passes``)."""
        trades = self._trades
        count = len(trades)
        if count < self._walked:  # another sequence: walk it afresh
            self._walked, self._walked_pnl, self._walked_days = 0, 0.0, set()
        if count == self._walked:
            return False
        open_since = min((p.opened_ts for p in positions.values() if p.quantity), default=math.inf)
        flat = set(flat_after(trades, self._walked, open_since))
        for i in range(self._walked, count):
            trade = trades[i]
            self._walked_pnl += trade.net_pnl
            self._walked_days.add(self._trading_day(trade.entry_ts))
            if i in flat and initial + self._walked_pnl >= goal:
                last = self._trading_day(trade.exit_ts)
                days = self._walked_days | {day for day in self._open_days if day <= last}
                if len(days) >= self.limits.min_days:
                    self._walked = i + 1
                    return True
        self._walked = count
        return False

    # -- the risk plugin ---------------------------------------------------------------------

    def _take_limits(self, ctx: RiskContext) -> None:
        """Take the total-loss lock and the day's block as soon as the loss reaches
        ``flatten_at`` of its limit — flat or not (a stop that closed the last position may be
        what took the loss there) —, and owe the flatten each one asks for (done by the next
        ``account_actions``, even when this ``check`` saw the loss first)."""
        initial = ctx.initial_equity or ctx.equity
        p, limits = self.params, self.limits
        base = self._base(initial)
        total_loss = base - ctx.equity
        if not self._locked and total_breached(total_loss, initial, p.flatten_at, limits):
            since = f" since the highest end-of-day balance {base:,.2f}" if base > initial else ""
            self._locked = (
                f"total loss {total_loss:,.2f}{since} reached {_share(p.flatten_at)} of the "
                f"{_share(limits.total)} limit"
            )
            self._locked_since = ctx.ts
            self._owed = _flatten(self._locked, "total_loss")
            return
        if not self._day_blocked and not self._locked:
            self._day_blocked = self._day_block(self._day_start - ctx.equity, initial)
            if self._day_blocked:
                self._owed = _flatten(self._day_blocked, "daily_loss")

    def _exits_at(self, ts: int) -> None:
        """Forget the exits of an earlier close: a market exit fills at the next bar (a live
        venue's within seconds), so by the next close the positions show what it closed, and
        one the venue refused is then counted at risk again."""
        if ts != self._exits_ts:
            self._exits_ts, self._exits, self._own = ts, {}, {}

    def _note_exit(self, intent: OrderIntent, ts: int) -> None:
        """Count a reduce-only market order let through: it closes what it asks, at the next
        bar. A stop exit is among ``RiskContext.stops`` already; a limit one caps no loss."""
        if intent.order_type is not OrderType.MARKET or not intent.quantity:
            return
        self._exits_at(ts)
        key = (intent.symbol, intent.side)
        self._exits[key] = self._exits.get(key, 0.0) + intent.quantity

    def _closing(self, ctx: RiskContext) -> dict[str, float]:
        """What of each open position the exits let through at this close will close."""
        self._exits_at(ctx.ts)
        if not self._exits:
            return {}
        return covered(ctx.positions, self._exits, self._own)

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        self._observe(ctx)
        if intent.reduce_only:
            self._note_exit(intent, ctx.ts)
            return APPROVE
        self._take_limits(ctx)
        if self._locked:
            return RiskDecision.veto(f"prop-firm: {self._locked}", "total_loss")
        if self._day_blocked:
            return RiskDecision.veto(f"prop-firm: {self._day_blocked}", "daily_loss")
        if self._passed and self.params.stop_at_target:
            return RiskDecision.veto("prop-firm: profit target reached", "target_reached")
        initial = ctx.initial_equity or ctx.equity
        closing = self._closing(ctx)
        sunk = 0.0
        balance = self._balance(ctx)  # of the positions as they stand, exits not yet filled
        if closing:  # a position being closed risks only what its exits leave of it
            left = after_exits(ctx.positions, closing)
            sunk = closed_cost(ctx.positions, left, ctx.marks, self.limits.taker)
            if balance is not None:
                balance += exit_gains(ctx.positions, left, ctx.marks)
            ctx = ctx._replace(positions=left, stops=stops_left(left, ctx.stops))
        base = self._base(initial)
        return check_entry(
            intent, ctx, self._day_start, initial, self.limits, self.params, sunk, base, balance
        )

    def _balance(self, ctx: RiskContext) -> float | None:
        """The balance now, which the next trading day's start is measured from (on the
        balance basis, and the higher one's lower bound); None on the equity basis, whose next
        start nothing now bounds (``carried_floor``)."""
        return None if self._basis == "equity" else balance_of(ctx.cash, ctx.positions)

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        self._observe(ctx)
        self._take_limits(ctx)
        if self._owed:
            owed, self._owed = self._owed, []
            # A flatten asks for everything: no cut on top of it at this close.
            self._cut_ts, self._cut_asked, self._cut_fills_ts = ctx.ts, 1.0, None
            return owed
        if (
            self._cut_ts is not None
            and ctx.ts != self._cut_ts
            and self._cut_fills_ts in (None, ctx.ts)
        ):
            # The close after a cut: its orders fill at this close's bars, symbol by symbol,
            # and the positions still waiting for theirs look uncut. The cut asked is taken
            # as the cut made until the next close shows what it did (one refused is then
            # asked again). A stopped position's equity and reach move together, so waiting
            # one close lets nothing new below the floor.
            self._cut_fills_ts = ctx.ts
            return []
        if not ctx.positions:
            return []
        initial = ctx.initial_equity or ctx.equity
        limits, p = self.limits, self.params
        # An exit already working closes its part of a position: only what it leaves is at risk
        # (covered by the position's stops as far as they go), and a position it closes whole
        # is not cut.
        closing = self._closing(ctx)
        positions = after_exits(ctx.positions, closing) if closing else ctx.positions
        stops = stops_left(positions, ctx.stops) if closing else ctx.stops
        # What is carried over the boundary must fit the next day's floor as well as today's:
        # measured from the balance the stops and exits may leave by then (``carried_floor``).
        next_balance = self._balance(ctx)
        if next_balance is not None:
            next_balance += exit_gains(ctx.positions, positions, ctx.marks)
            next_balance += stops_gains(positions, stops, None, ctx.entries, ctx.marks)
        base = self._base(initial)
        today = floors(self._day_start, initial, limits, base)
        floor, which, label = carried_floor(today, next_balance, initial, limits, base)
        # The same worst case as an entry's: each stop's exit with its costs, and the working
        # exits' market fills with theirs.
        taker, move = limits.taker, p.unprotected_move
        at_risk = open_risk(positions, ctx.marks, stops, move, taker)
        if closing:
            at_risk += closed_cost(ctx.positions, positions, ctx.marks, taker)
        share = cut_to_fit(ctx.equity, at_risk, floor)
        if share <= 0.0:
            return []
        room = max(0.0, ctx.equity - floor) * (1.0 - 1e-6)
        if closing:
            # The share is of every position as it stands (a REDUCE's), found on what it and
            # the exits leave together.
            share = share_to_cut_after_exits(
                ctx.positions, closing, ctx.marks, ctx.stops, move, room, taker
            )
        else:
            # The proportional share is too small when the stops covering what a cut leaves
            # are the wider ones, or the cut's own fills cost; cut to what actually fits
            # (never less than the proportional share).
            share = share_to_cut(
                ctx.positions, ctx.marks, ctx.stops, move, room, at_least=share, exit_cost=taker
            )
        asked = self._cut_asked if ctx.ts == self._cut_ts else 0.0
        extra = still_to_cut(share, asked)
        if extra <= 0.0:
            return []
        self._cut_ts, self._cut_asked, self._cut_fills_ts = ctx.ts, asked + extra, None
        # The cut's orders (reduce-only market, ``extra`` of each position) come back through
        # ``check`` as exits: they are the share asked, not an exit besides it.
        for symbol, position in ctx.positions.items():
            if position.quantity:
                key = (symbol, Side.SELL if position.quantity > 0 else Side.BUY)
                self._own[key] = self._own.get(key, 0.0) + abs(position.quantity) * extra
        reason = f"open stops could take equity below the {label}"
        if asked > 0.0:
            reason += f" ({share:.2%} needed, {asked:.2%} already asked at this bar close)"
        if closing:
            reason += (
                " (not counting what working exits close: "
                + ", ".join(f"{quantity:.10g} {symbol}" for symbol, quantity in closing.items())
                + ")"
            )
        return [AccountAction(ActionKind.REDUCE, reason, None, extra, which)]


class KeptState(NamedTuple):
    """``saved_state`` read back."""

    day: date | None
    balance: float
    equity: float
    blocked: str
    passed: bool
    # The highest end-of-day balance; None in a state written before it was kept.
    high: float | None = None


def _finite(value: object) -> TypeGuard[int | float]:
    """A finite number (a bool, which JSON keeps apart, is not one)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def kept_state(state: Mapping[str, Any]) -> KeptState | str:
    """``saved_state``'s fields read back, or what is wrong with them, naming the field
    (pure)."""
    if state.get("version") != STATE_VERSION:
        return f"version {state.get('version')!r} is not {STATE_VERSION}"
    raw_day = state.get("day")
    day: date | None = None
    if raw_day is not None:
        try:
            day = date.fromisoformat(str(raw_day))
        except ValueError:
            return f"day {raw_day!r} is not a date"
    starts: list[float] = []
    for name in ("start_balance", "start_equity"):
        value = state.get(name)
        if not _finite(value):
            return f"{name} {value!r} is not a finite number"
        starts.append(float(value))
    blocked, passed = state.get("blocked"), state.get("passed")
    if not isinstance(blocked, str):
        return f"blocked {blocked!r} is not text"
    if not isinstance(passed, bool):
        return f"passed {passed!r} is not true or false"
    raw_high = state.get("high_balance")
    high: float | None = None
    if raw_high is not None:
        if not _finite(raw_high):
            return f"high_balance {raw_high!r} is not a finite number"
        high = float(raw_high)
    return KeptState(day, starts[0], starts[1], blocked, passed, high)


def _holding(positions: Mapping[str, Position]) -> bool:
    """Whether any position is open (a snapshot may list one at 0)."""
    # A loop, not any() over a generator: asked on every call, it cost a tenth of the call.
    for position in positions.values():  # noqa: SIM110
        if position.quantity:
            return True
    return False


def _share(value: float) -> str:
    """A fraction as a percentage with the digits it has: 0.05 reads 5%, 0.004 reads 0.4%
    (``:.0%`` printed a 0.4% limit as "0%")."""
    return f"{value * 100:.4g}%"


def _less(value: float) -> float:
    """``value`` less a relative 1e-9: a limit computed as 0.8 × 0.05 × 100,000 is 4,000."""
    return value - abs(value) * 1e-9


def _flatten(reason: str, code: str) -> list[AccountAction]:
    return [
        AccountAction(ActionKind.CANCEL_ENTRIES, reason, code=code),
        AccountAction(ActionKind.FLATTEN, reason, code=code),
    ]
