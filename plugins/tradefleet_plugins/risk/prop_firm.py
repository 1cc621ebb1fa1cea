"""``prop-firm``: FTMO-style challenge rules, checked in the worst case before every entry.

- Daily loss: equity must stay at or above ``(1 - max_daily_loss) ×`` the equity at the start of
  the trading day (a configured time in a configured timezone, DST-aware; floating P&L counts).
- Total loss: equity must stay at or above ``(1 - max_total_loss) ×`` the initial capital.
- An entry is vetoed when, with every open position's protective stop hit, every working
  entry order (sent on an earlier bar, or let through earlier in this one) filled and stopped,
  and the order's own stop hit, equity would end below the higher of the two floors
  (``worst < floor``: ending exactly on the floor is allowed). Stops are taken in the order
  the venue works them: an entry adding to a position whose stops outlived part of it (a cut
  leaves them whole) is closed by those first, at their prices, before its own stop. Orders
  without a stop are vetoed when ``require_stop``.
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
  loss, which also locks until a person resets. Both are taken as soon as the loss is seen,
  by ``check`` or between orders, with positions open or flat (a stop that closed the last
  position may be what took the loss there). When open positions could, if every stop were
  hit, take equity below the floor (a new day raised it), they are cut to fit (the share is
  found on the stops: a cut removes what the last stops cover, not a slice of every stop).
  A bot of several symbols is asked once per symbol's bar at a close, and a cut's orders fill
  at each symbol's bar of the next close: within the close a cut was asked at, only what it
  left short is asked, and at the next close nothing (its fills are still coming in).
- A position being closed is not at risk for what its exit closes: the market exits let through
  at a bar close (reduce-only: a strategy's ``close``, another plugin's cut) count as closing
  their quantity until the next close, less the fills on their side since. ``close`` cancels
  the position's stops first, so counted whole it looked unprotected, and a cut was asked of a
  position already going (its orders then cancelled: nothing left to reduce), an entry vetoed.
  The cut's own orders are the cut asked, not an exit on top of it.
- The day's start is the equity at its first bar close with every symbol marked at that close
  (a bot of several symbols: once the last symbol's bar of it is in); fills made after the
  close (a live venue's, reported between bars) are the new day's.
- Passing: equity at or above ``(1 + profit_target) ×`` initial with ``min_trading_days`` days
  traded; with ``stop_at_target`` no entry is taken after that.
- Restarts (``restores-equity``): the day's start, and the day's block once it was flattened,
  are rebuilt from the journaled equity, so a restart never gives the day a new start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

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
    OrderIntent,
    OrderType,
    Position,
    RiskContext,
    RiskDecision,
    Side,
    Trade,
)

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
        )


def floors(day_start: float, initial: float, limits: Limits) -> tuple[float, str]:
    """The equity the account must not end below, and which limit sets it."""
    daily = day_start * (1.0 - limits.daily)
    total = initial * (1.0 - limits.total)
    return (daily, "daily_loss") if daily >= total else (total, "total_loss")


def check_entry(
    intent: OrderIntent,
    ctx: RiskContext,
    day_start: float,
    initial: float,
    limits: Limits,
    p: PropFirmParams,
    sunk: float = 0.0,
) -> RiskDecision:
    """The veto rule for one entry, in the worst case (pure): every stop hit, with the costs
    of each fill that takes (``Limits.taker``/``maker``), and ``sunk`` (the costs of fills
    already on their way, the working market exits') besides."""
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
    floor, which = floors(day_start, initial, limits)
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
            f"{p.fee_bps:g} bps fee and {p.slippage_bps:g} bps slippage a fill included), "
            f"below the {which.replace('_', ' ')} floor {floor:,.2f}",
            which,
        )
    gross = open_gross + intent.quantity * entry
    if ctx.equity <= 0 or gross > limits.leverage * ctx.equity:
        return RiskDecision.veto(
            f"prop-firm: exposure {gross:,.2f} would exceed {limits.leverage:g}x equity",
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


def made(fill: Fill, marks: Mapping[str, float]) -> float:
    """What ``fill`` added to equity at ``marks``: its quantity's move from its price to the
    mark, less its fee."""
    return fill.quantity * fill.side.sign * (marks.get(fill.symbol, fill.price) - fill.price) - (
        fill.fee
    )


def close_moved(
    held: Mapping[str, float],
    seen: Mapping[str, float],
    marks: Mapping[str, float],
    fills: Sequence[Fill],
    close: int,
) -> float:
    """How far the equity at the bar close ``close`` moved since it was last looked at (at
    ``seen`` marks, ``held`` quantities): the held quantities from the marks seen to ``marks``
    (the other symbols' bars of that close came in), and the fills made before the close that
    were reported since. A fill at or after the close (a live venue reports them between
    bars, the engine still at the close) is the next day's and does not move it; nor does
    anything else (pure)."""
    moved = 0.0
    for symbol, quantity in held.items():
        before, now = seen.get(symbol), marks.get(symbol)
        if before is not None and now is not None:
            moved += quantity * (now - before)
    for fill in fills:
        if fill.ts < close:
            moved += made(fill, marks)
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
        self._day_start = 0.0
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
        # Market exits (reduce-only) let through at the close ``_exits_ts`` by symbol and side,
        # less the fills on that side since, and what of them the cuts asked at that close are.
        self._exits_ts: int | None = None
        self._exits: dict[tuple[str, Side], float] = {}
        self._own: dict[tuple[str, Side], float] = {}
        # The flatten a limit taken asked for and the account was not yet told of.
        self._owed: list[AccountAction] = []
        self._passed = False
        self._trades: Sequence[Trade] = ()
        self._fill_days: set[date] = set()
        # Days with a fill or a closed trade's entry or exit, kept as they come (``trading_days``
        # is asked on every intent; recounting every trade each time grew with the history).
        self._days: set[date] = set()
        self._trades_counted = 0
        self._clock = DayClock(params.timezone, params.day_start_minute)

    # -- capabilities ----------------------------------------------------------------------

    def bind_trades(self, trades: Sequence[Trade]) -> None:
        self._trades = trades
        self._days = set(self._fill_days)
        self._trades_counted = 0

    def on_fill(self, fill: Fill) -> None:
        self._fills.append(fill)
        key = (fill.symbol, fill.side)
        if key in self._exits:
            # The exit's own fill, or a stop's that leaves the exit less to close: either way
            # the position shrank by it, and the exit counts for that much less (a stop's
            # fill undercounts what the exit still closes: the safe side).
            self._exits[key] = max(0.0, self._exits[key] - fill.quantity)
        day = self._trading_day(fill.ts)
        self._fill_days.add(day)
        self._days.add(day)

    def lock_reason(self) -> str | None:
        return self._locked or None

    def reset_lock(self) -> str | None:
        self._locked = ""
        self._owed = []
        return None

    def restore_lock(self, reason: str, since_ts: int) -> None:
        self._locked, self._locked_since = reason, since_ts

    def restore_equity(self, timestamps: Sequence[int], equity: Sequence[float]) -> None:
        # The day's start as the live run took it (its first bar close), and the day's block
        # if the day's loss reached the flatten threshold since: a restart must not give the
        # day a new start, nor lift "no entries until the next trading day".
        for ts, value in zip(timestamps, equity, strict=True):
            self._roll_day(int(ts), float(value))
            if not self._day_blocked:
                self._day_blocked = self._day_block(self._day_start - float(value))
        # A journaled snapshot has every symbol marked at its close: a bar of that close seen
        # again after the restart must not move the day's start.
        self._day_ts = None

    def _day_block(self, day_loss: float) -> str:
        """Why the day takes no more entries once its loss reached ``flatten_at`` of the daily
        limit, or "" while it has not."""
        p, limits = self.params, self.limits
        if day_loss < _less(p.flatten_at * limits.daily * self._day_start):
            return ""
        return (
            f"the day's loss {day_loss:,.2f} reached {_share(p.flatten_at)} of the "
            f"{_share(limits.daily)} daily limit; no entries until the next trading day"
        )

    # -- state ------------------------------------------------------------------------------

    def _trading_day(self, ts: int) -> date:
        return self._clock.day(ts)

    def trading_days(self) -> int:
        trades = self._trades
        count = len(trades)
        if count < self._trades_counted:  # another sequence: count it afresh
            self._days, self._trades_counted = set(self._fill_days), 0
        if count != self._trades_counted:
            days = self._days
            for i in range(self._trades_counted, count):
                trade = trades[i]
                days.add(self._trading_day(trade.entry_ts))
                days.add(self._trading_day(trade.exit_ts))
            self._trades_counted = count
        return len(self._days)

    def _roll_day(self, ts: int, equity: float, ctx: RiskContext | None = None) -> None:
        """A new trading day starts, unblocked, from the equity at its first bar close.

        With several symbols that close comes as one bar per symbol, and the first one's is
        seen with the others still marked at the close before: taken there alone, the start
        was off by the others' last move (a start too low lowered the day's floor). While
        calls come at that close the start follows the marks their bars bring, so that once
        the last one is in it is the equity the engine journals for the close. Fills made
        after the close (a live venue reports them between bars, the engine still at the
        close) are the new day's: a stop hit just after midnight must not lower the start by
        its own loss."""
        fills, self._fills = self._fills, []
        day = self._clock.day(ts)
        if day != self._day:
            self._day, self._day_blocked, self._day_ts = day, "", ts
            if ctx is None:  # a journaled snapshot: every symbol marked at its close
                self._day_start, self._seen, self._held = equity, {}, {}
                return
            held = {symbol: p.quantity for symbol, p in ctx.positions.items()}
            late = 0.0
            for fill in fills:
                if fill.ts >= ts:
                    late += made(fill, ctx.marks)
                    held[fill.symbol] = held.get(fill.symbol, 0.0) - fill.quantity * fill.side.sign
            self._day_start, self._seen, self._held = equity - late, dict(ctx.marks), held
            return
        if ts != self._day_ts or ctx is None:
            self._day_ts = None  # a later close: the day's start is settled
            return
        held, marks = self._held, ctx.marks
        self._day_start += close_moved(held, self._seen, marks, fills, ts)
        for fill in fills:
            if fill.ts < ts:
                held[fill.symbol] = held.get(fill.symbol, 0.0) + fill.quantity * fill.side.sign
        self._seen = dict(marks)

    def _observe(self, ctx: RiskContext) -> None:
        self._roll_day(ctx.ts, ctx.equity, ctx)
        initial = ctx.initial_equity or ctx.equity
        if (
            not self._passed
            and self.limits.target > 0
            and ctx.equity >= _less(initial * (1.0 + self.limits.target))
            and self.trading_days() >= self.limits.min_days
        ):
            self._passed = True

    # -- the risk plugin ---------------------------------------------------------------------

    def _take_limits(self, ctx: RiskContext) -> None:
        """Take the total-loss lock and the day's block as soon as the loss reaches
        ``flatten_at`` of its limit — flat or not (a stop that closed the last position may be
        what took the loss there) —, and owe the flatten each one asks for (done by the next
        ``account_actions``, even when this ``check`` saw the loss first)."""
        initial = ctx.initial_equity or ctx.equity
        p, limits = self.params, self.limits
        total_loss = initial - ctx.equity
        if not self._locked and total_loss >= _less(p.flatten_at * limits.total * initial):
            self._locked = (
                f"total loss {total_loss:,.2f} reached {_share(p.flatten_at)} of the "
                f"{_share(limits.total)} limit"
            )
            self._locked_since = ctx.ts
            self._owed = _flatten(self._locked, "total_loss")
            return
        if not self._day_blocked and not self._locked:
            self._day_blocked = self._day_block(self._day_start - ctx.equity)
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
        if closing:  # a position being closed risks only what its exits leave of it
            left = after_exits(ctx.positions, closing)
            sunk = closed_cost(ctx.positions, left, ctx.marks, self.limits.taker)
            ctx = ctx._replace(positions=left)
        return check_entry(intent, ctx, self._day_start, initial, self.limits, self.params, sunk)

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
        floor, which = floors(self._day_start, initial, limits)
        # An exit already working closes its part of a position (whose stops ``close``
        # cancelled): only what it leaves is at risk, and a position it closes whole is not cut.
        closing = self._closing(ctx)
        positions = after_exits(ctx.positions, closing) if closing else ctx.positions
        # The same worst case as an entry's: each stop's exit with its costs, and the working
        # exits' market fills with theirs.
        taker, move = limits.taker, p.unprotected_move
        at_risk = open_risk(positions, ctx.marks, ctx.stops, move, taker)
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
        reason = f"open stops could take equity below the {which.replace('_', ' ')} floor"
        if asked > 0.0:
            reason += f" ({share:.2%} needed, {asked:.2%} already asked at this bar close)"
        if closing:
            reason += (
                " (not counting what working exits close: "
                + ", ".join(f"{quantity:g} {symbol}" for symbol, quantity in closing.items())
                + ")"
            )
        return [AccountAction(ActionKind.REDUCE, reason, None, extra, which)]


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
