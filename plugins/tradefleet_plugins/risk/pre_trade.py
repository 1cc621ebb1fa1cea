"""``pre-trade``: the checks every entry passes before it reaches the venue.

Each check is a pure function of the intent, the account snapshot and the plugin's own small
state (returns for correlation, trade counts): price band, order size and notional, free margin,
gross and per-group exposure, correlation with open positions, open positions, leverage per
symbol, trading hours and days in a timezone, trades per day, minimum holding period, cooldown
after a loss, minimum balance, and the loss an entry takes at its stop (``max_risk_per_trade``:
it shrinks an order to the risk allowed whoever sized it — a strategy, a signal's volume, a
sizer, whose ``max_leverage`` bounds the notional and not the loss at the stop — so it needs the
size, and the loader refuses pre-trade placed before the chain's sizer while it is on).
Reduce-only orders, and orders that only close a position, always pass: no check may stop an
exit. The part of an order closing an opposite position (``RiskContext.closing``, a reversal
sent as one order) is an exit that always goes: the checks (the minimum balance, trading
hours, no equity; the free margin, gross and group exposure, ``max_risk_per_trade``) judge and
cut only what the order opens, the exit taking its exposure and margin with it, and a reversal
whose opening part one refuses is shrunk to its closing part; a symbol's leverage is judged on
the position after the order whether the exits and entries already working fill or not; the
largest order bounds the whole order sent, but never below its closing part. After a
``ctx.close`` that exit closes the position, and an entry sent with it opens all it asks.
Entry orders still working (``RiskContext.entries``: sent on an earlier bar, or let through
earlier in this one) count as what they will open: a position each for ``max_open_positions``,
their notional in the free margin, gross, group and per-symbol exposure, and the direction they
leave their symbol in for ``max_correlation``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_plugins.risk.rolling_corr import RollingReturns
from tradefleet_plugins.risk.rolling_corr import correlation as correlation  # part of this API
from tradefleet_plugins.risk.rules import DayClock, entry_symbols, local_weekday_minute
from tradefleet_plugins.risk.sizing import loss_text, loss_to_trigger
from tradefleet_runtime.sdk import (
    Bar,
    Instrument,
    Order,
    OrderIntent,
    Position,
    RiskAction,
    RiskContext,
    RiskDecision,
    Trade,
    round_quantity,
)

log = logging.getLogger(__name__)

APPROVE = RiskDecision.approve()
VETO = RiskAction.VETO  # a module name: an enum member read through its class costs ~0.3 µs


def in_hours(ts: int, p: PreTradeParams) -> bool:
    if p.trading_hours is None and len(p.trading_days) == 7:
        return True
    weekday, minute = local_weekday_minute(ts, p.timezone)
    if weekday not in p.trading_days:
        return False
    if p.trading_hours is None:
        return True
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in p.trading_hours)
    return start <= minute < end if start <= end else minute >= start or minute < end


# A quantity sized to the cap exactly (``fixed-fractional`` at the same fraction) risks it to
# within a float's last bits: that much over is no breach, and shrinking by it would journal a
# shrink of nothing.
_RISK_TOLERANCE = 1e-9


def risk_at_stop(
    quantity: float, price: float, stop: float | None, without_stop: float
) -> float | None:
    """What ``quantity`` entered at ``price`` loses if its stop is hit: the stop's distance, or
    ``without_stop`` of the price for an entry with no stop; None when it has no stop and no
    move is assumed (nothing bounds it). Fees and slippage are not counted: the measure
    ``fixed-fractional`` sizes to, so the two at one fraction agree."""
    if stop is not None:
        return quantity * abs(price - stop)
    if without_stop > 0.0:
        return quantity * price * without_stop
    return None


def risk_cap(
    intent: OrderIntent,
    quantity: float,
    price: float,
    equity: float,
    limit: float,
    without_stop: float,
    instrument: Instrument,
    closing: float = 0.0,
) -> RiskDecision | None:
    """``max_risk_per_trade`` for an order of ``quantity`` at ``price`` (pure), ``closing`` of
    which closes an opposite position (``RiskContext.closing``): that part is an exit, neither
    measured nor cut, and only what the order opens is held to the cap. None when that risk at
    the stop is within ``limit × equity`` (or the order opens nothing); else a shrink to the
    largest quantity on the instrument's lot step within it; when nothing may open (no stop,
    or the cap allows less than the instrument's minimum), a veto, or for a reversal a shrink
    to its closing part. Rounding down keeps the order the venue sees within the cap: the
    engine would round an unrounded shrink down too, but the reason must name the quantity
    that is sent."""
    opening = quantity - closing
    if opening <= 0.0:
        return None
    risk = risk_at_stop(opening, price, intent.stop_loss, without_stop)
    allowed = limit * equity
    if risk is not None and risk <= allowed * (1.0 + _RISK_TOLERANCE):
        return None
    symbol, step = intent.symbol, instrument.lot_step
    # A reversal's reason says the cap judged only what it opens.
    opens_part = f" for the {opening:.10g} it opens" if closing > 0.0 else ""
    if risk is None:
        code, fits, below = "no_stop", 0.0, ""
        why = (
            f"{symbol} {'reversal' if closing > 0.0 else 'entry'} has no stop-loss{opens_part}: "
            f"its loss is unbounded and max_risk_per_trade ({limit:.2%}) cannot hold it (set a "
            "stop, or risk_without_stop)"
        )
    else:
        code, fits = "max_risk_per_trade", round_quantity(opening * allowed / risk, step)
        why = (
            f"risk {risk:,.2f} at the stop{opens_part} exceeds {limit:.2%} of equity "
            f"{equity:,.2f} (max_risk_per_trade)"
        )
        below = (
            f"{fits:.10g}, below {symbol}'s minimum quantity {instrument.min_quantity:.10g} "
            f"(lot step {step:.10g})"
        )
    opens = fits > 0.0 and fits >= instrument.min_quantity
    if closing <= 0.0:
        if opens:
            return RiskDecision.shrink(fits, f"{why}: {quantity:.10g} -> {fits:.10g}", code)
        return RiskDecision.veto(f"{why}: {quantity:.10g} -> {below}" if below else why, code)
    # A reversal: the part closing the position always goes, as an exit.
    if opens:
        sent = round_quantity(closing + fits, step)  # not below ``closing``: fits >= one step
        return RiskDecision.shrink(
            sent,
            f"{why}: {quantity:.10g} -> {sent:.10g} ({closing:.10g} close {symbol}'s position)",
            code,
        )
    # Nothing may open. What the cap allows below the minimum is not sent either: it would
    # leave a position too small for the venue to take an order closing it.
    small = f"; what it may open, {below}, is not sent" if below else ""
    return RiskDecision.shrink(
        closing,
        f"{why}: {quantity:.10g} -> {closing:.10g}, the part closing {symbol}'s position "
        f"(an exit is never cut){small}",
        code,
    )


def static_checks(intent: OrderIntent, ctx: RiskContext, p: PreTradeParams) -> RiskDecision:
    """Checks on the intent and the snapshot alone (no history)."""
    symbol = intent.symbol
    last = ctx.mark(symbol)
    quantity = intent.quantity
    # The part closing an opposite position (a reversal sent as one order) is an exit: every
    # check below judges and cuts only what the order opens, and that part always goes. An
    # order that only closes is an exit whole, as a reduce-only one (which the engine makes
    # of it before the chain: here for the plugin on its own).
    closing = ctx.closing(intent, quantity) if quantity is not None else 0.0
    if quantity is not None and 0.0 < quantity <= closing:
        return APPROVE
    if p.min_balance and ctx.equity < p.min_balance:
        return _or_exit(
            RiskDecision.veto(
                f"equity {ctx.equity:,.2f} below the minimum balance {p.min_balance:,.2f}",
                "min_balance",
            ),
            quantity,
            closing,
            symbol,
        )
    if not in_hours(ctx.ts, p):
        return _or_exit(
            RiskDecision.veto("outside the allowed trading hours or days", "trading_hours"),
            quantity,
            closing,
            symbol,
        )
    if p.price_band and intent.price is not None and last > 0:
        off = abs(intent.price - last) / last
        if off > p.price_band + 1e-12:
            return RiskDecision.veto(
                f"price {intent.price:.10g} is {off:.2%} from the last price {last:.10g} "
                f"(band {p.price_band:.0%})",
                "price_band",
            )
    risk_limit = p.max_risk_per_trade_per_symbol.get(symbol, p.max_risk_per_trade)
    if quantity is None:
        if risk_limit:
            # Placed before the sizer, the cap would never see the size the order leaves with.
            return RiskDecision.veto(
                "max_risk_per_trade needs the order's size: put pre-trade after the sizer in "
                "spec.risk",
                "unsized",
            )
        return APPROVE  # sizers come first; an unsized order is the engine's to refuse
    price = intent.price or last
    if price <= 0:
        return RiskDecision.veto(f"no price known for {symbol}", "no_price")
    cap_reason = cap_text = ""
    # The largest order bounds the order sent (a fat-finger guard), but never below the part
    # that closes: a reversal beyond it only closes, or closes and opens what is left of it.
    if p.max_order_quantity and quantity > p.max_order_quantity:
        largest = max(p.max_order_quantity, closing)
        if largest < quantity:
            quantity, cap_reason = largest, "max_quantity"
    if p.max_order_notional and quantity * price > p.max_order_notional:
        largest = max(p.max_order_notional / price, closing)
        if largest < quantity:
            quantity, cap_reason = largest, "max_notional"
    if risk_limit and ctx.equity > 0:  # no equity: vetoed below, as such
        # Before the margin and exposure checks, which then judge the order that is sent.
        capped = risk_cap(
            intent,
            quantity,
            price,
            ctx.equity,
            risk_limit,
            p.risk_without_stop,
            ctx.instrument,
            closing,
        )
        if capped is not None:
            if capped.action is VETO or capped.quantity is None:
                return capped
            if cap_reason:  # the quantity or notional cap came first: both are said
                cap_text = f"order capped at {quantity:.10g} ({cap_reason.replace('_', ' ')}); "
            quantity, cap_reason = capped.quantity, capped.code
            cap_text += capped.reason
    positions = ctx.positions
    entries = ctx.entries  # working entry orders: what they open and add counts already
    held = positions.get(symbol)
    opens_one = held is None or not held.quantity
    if p.max_open_positions and opens_one:
        pending = entry_symbols(entries, positions) if entries else set()
        open_count = len(positions) + len(pending)
        if symbol not in pending and open_count >= p.max_open_positions:
            waiting = f" ({len(pending)} of them entry orders still working)" if pending else ""
            return RiskDecision.veto(
                f"{open_count} positions open{waiting} (at most {p.max_open_positions})",
                "max_positions",
            )
    if ctx.equity <= 0:
        return _or_exit(RiskDecision.veto("no equity", "no_equity"), quantity, closing, symbol)
    marks = ctx.marks
    groups = p.groups
    group = groups.get(symbol) if p.group_cap else None
    gross = 0.0
    in_group_values: list[float] = []
    for s, pos in positions.items():  # gross exposure and the order's group, in one pass
        q = pos.quantity
        value = (q if q > 0 else -q) * marks.get(s, pos.average_price)
        gross += value
        if group is not None and groups.get(s) == group:
            in_group_values.append(value)
    # What the symbol's working entries add, buys and sells apart (signed): each may fill or not.
    pending_buys = pending_sells = 0.0
    for order in entries:
        s = order.symbol
        value = order.quantity * (order.price or marks.get(s, 0.0))
        gross += value
        if group is not None and groups.get(s) == group:
            in_group_values.append(value)
        if s == symbol:
            if order.side.sign > 0:
                pending_buys += order.quantity
            else:
                pending_sells -= order.quantity
    refused = (
        exposure_refusal(
            p,
            ctx,
            intent,
            quantity,
            closing,
            price,
            gross,
            in_group_values,
            (pending_buys, pending_sells),
        )
        if quantity > closing  # an order that only closes is an exit: it takes no margin
        else None
    )
    if cap_reason and not cap_text:
        cap_text = f"order capped at {quantity:.10g} ({cap_reason.replace('_', ' ')})"
    if refused is not None:
        if closing <= 0.0:
            return refused
        # A reversal: what it opens is refused, the part closing the position still goes.
        return exit_only(refused, quantity, closing, symbol, cap_text)
    if cap_reason:
        return RiskDecision.shrink(quantity, cap_text, cap_reason)
    return APPROVE


def exposure_refusal(
    p: PreTradeParams,
    ctx: RiskContext,
    intent: OrderIntent,
    quantity: float,
    closing: float,
    price: float,
    gross: float,
    in_group_values: Sequence[float],
    pending_here: tuple[float, float],
) -> RiskDecision | None:
    """The veto of the free margin, gross and group exposure or symbol leverage check an
    order of ``quantity`` at ``price`` fails, or None (pure). ``closing`` of it closes an
    opposite position (``RiskContext.closing``): that part opens nothing and takes its
    exposure and margin with it, so each cap judges what the order leaves (the position's
    value at the mark, as ``gross`` counts it). ``gross`` and ``in_group_values``: the open
    positions' and working entries' values (the order's group's); ``pending_here``: the
    signed quantities the symbol's working buy and sell entries add.

    Each cap reads the equity at the fill: less what a stop's closing part loses moving the
    position from the mark to its trigger (``sizing.loss_to_trigger``), booked before what it
    opens needs its margin. Without it a buy stop at 110 reversing a short of 400 at mark 100
    passed the free margin on 10,000 while the close left 6,000 under what it opened."""
    symbol = intent.symbol
    loss = loss_to_trigger(intent, ctx, price, closing)
    equity = ctx.equity - loss if loss > 0.0 else ctx.equity
    counted = loss_text(loss, price)
    if equity <= 0.0:  # the close's loss takes it all: nothing may open (and no x-equity text)
        return RiskDecision.veto(f"no equity left to open on{counted}", "free_margin")
    notional = (quantity - closing) * price
    if closing > 0.0:
        held = ctx.positions[symbol]  # ``closing`` is of a position held
        released = closing * ctx.marks.get(symbol, held.average_price)
    else:
        released = 0.0
    leverage = p.margin_leverage or ctx.leverage or 1.0
    free = equity - (gross - released) / leverage
    if notional / leverage > free + 1e-9:
        return RiskDecision.veto(
            f"order margin {notional / leverage:,.2f} exceeds free margin {free:,.2f}{counted}",
            "free_margin",
        )
    after = gross - released + notional
    if p.max_gross_exposure and after > p.max_gross_exposure * equity + 1e-9:
        return RiskDecision.veto(
            f"gross exposure would be {after / equity:.0%} of equity "
            f"(cap {p.max_gross_exposure:.0%}){counted}",
            "gross_exposure",
        )
    group = p.groups.get(symbol) if p.group_cap else None
    if group is not None:
        in_group = sum(in_group_values) - released + notional
        if in_group > p.group_cap * equity + 1e-9:
            return RiskDecision.veto(
                f"group {group} would hold {in_group / equity:.0%} of equity "
                f"(cap {p.group_cap:.0%}){counted}",
                "group_cap",
            )
    cap = p.max_leverage_per_symbol.get(symbol, p.max_leverage)
    if cap:
        position = ctx.positions.get(symbol)
        holding = position.quantity if position else 0.0
        # The position after it (a reversal nets), whether the exits and the entries already
        # working fill or not: the largest. Ignoring the exits let a reversal behind a
        # ``ctx.close`` open twice the cap; taking an exit (a take-profit) or an entry on the
        # other side (a limit) as filled lets the order open more should it never fill.
        left = _left_to_close(ctx, symbol, holding)
        after_exits = math.copysign(left, holding) if holding else 0.0
        buys, sells = pending_here
        mine = quantity * intent.side.sign
        size = max(
            abs(base + pending + mine)
            for base in (holding, after_exits)
            for pending in (0.0, buys, sells, buys + sells)
        )
        if size * price > cap * equity + 1e-9:
            return RiskDecision.veto(
                f"{symbol} would be {size * price / equity:.1f}x equity (at most {cap:.10g}x)"
                f"{counted}",
                "max_leverage",
            )
    return None


def _or_exit(
    refused: RiskDecision, quantity: float | None, closing: float, symbol: str
) -> RiskDecision:
    """``refused`` for an order that opens alone; for a reversal, shrunk to its closing part
    (``exit_only``): the exit goes whatever refused what it opens (pure)."""
    if quantity is None or closing <= 0.0:
        return refused
    return exit_only(refused, quantity, closing, symbol)


def _left_to_close(ctx: RiskContext, symbol: str, held: float) -> float:
    """What of ``symbol``'s position of ``held`` no working exit closes yet
    (``RiskContext.closable``; all of it when the engine does not say)."""
    closable = ctx.closable
    return abs(held) if closable is None else min(abs(held), closable.get(symbol, 0.0))


def exit_only(
    refused: RiskDecision, quantity: float, closing: float, symbol: str, capped: str = ""
) -> RiskDecision:
    """A cap refused what a reversal of ``quantity`` opens: it is shrunk to its ``closing``
    part, an exit no cap cuts (pure). ``refused``'s code and reason say which cap; ``capped``,
    how an earlier cap already cut the order (said first)."""
    said = f"{capped}; " if capped else ""
    return RiskDecision.shrink(
        closing,
        f"{said}{refused.reason}: {quantity:.10g} -> {closing:.10g}, the part closing "
        f"{symbol}'s position (an exit is never cut)",
        refused.code,
    )


def held_directions(
    positions: Mapping[str, Position], entries: Sequence[Order]
) -> dict[str, tuple[int, ...]]:
    """Every direction (1 long, -1 short) each symbol may hold once the working entry orders
    fill, the open positions' symbols first, then the entries' in their order: what
    ``max_correlation`` compares an entry with.

    Without the entries, one let through earlier in the same bar (or still working from an
    earlier one) is invisible until it fills, and two correlated symbols entered together on
    one bar both pass. An entry against an open position counts both ways: the snapshot does
    not show whether an exit closes the position first (a reversal) or the entry only trims it,
    and a guard against doubling up errs towards the veto."""
    directions: dict[str, tuple[int, ...]] = {
        s: ((1,) if p.quantity > 0 else (-1,)) for s, p in positions.items()
    }
    for order in entries:
        sign = order.side.sign
        have = directions.get(order.symbol, ())
        if sign not in have:
            directions[order.symbol] = (*have, sign)
    return directions


def correlated_with(
    intent: OrderIntent,
    positions: Mapping[str, object],
    signs: Mapping[str, float],
    returns: Mapping[str, deque[tuple[int, float]]],
    limit: float,
) -> tuple[str, float] | None:
    """An open position the entry would double up on: (symbol, correlation), or None.
    ``signs``: the direction of each of ``positions`` (1 long, -1 short)."""
    own = returns.get(intent.symbol)
    if own is None:
        return None
    mine = dict(own)
    for symbol in positions:
        if symbol == intent.symbol:
            continue
        other = returns.get(symbol)
        if other is None:
            continue
        pairs = [(mine[ts], value) for ts, value in other if ts in mine]
        rho = correlation([a for a, _ in pairs], [b for _, b in pairs])
        if rho is None:
            continue
        if rho * intent.side.sign * signs[symbol] > limit:
            return symbol, rho
    return None


STATE_VERSION = 1


def kept_entries(state: Mapping[str, Any]) -> tuple[date | None, int] | str:
    """``PreTrade.saved_state``'s (day, entries that day) read back, or what is wrong with it,
    naming the field (pure)."""
    if state.get("version") != STATE_VERSION:
        return f"version {state.get('version')!r} is not {STATE_VERSION}"
    count = state.get("entries_today")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return f"entries_today {count!r} is not a count"
    day = state.get("day")
    if day is None:
        return None, 0
    try:
        return date.fromisoformat(str(day)), count
    except ValueError:
        return f"day {day!r} is not a date"


class PreTrade:
    def __init__(self, params: PreTradeParams) -> None:
        self.params = params
        self._rolling = RollingReturns(params.correlation_bars)
        self._returns: dict[str, deque[tuple[int, float]]] = self._rolling.series
        self._last_close: dict[str, float] = {}
        self._trades: Sequence[Trade] = ()
        self._day: date | None = None
        self._entries_today = 0
        self._clock = DayClock(params.timezone)
        self._corr_cache: dict[
            tuple[int, str, int, tuple[tuple[str, int], ...]], tuple[str, float] | None
        ] = {}

    def bind_trades(self, trades: Sequence[Trade]) -> None:
        self._trades = trades

    # -- the state a restart takes back -----------------------------------------------------

    def saved_state(self) -> dict[str, Any]:
        """The entries approved on the current day (``restores-state``): bars and fills do not
        rebuild them (an entry still open is no closed trade), and a restart that forgot them
        would approve ``max_trades_per_day`` more the same day. Journaled by the engine with
        the order whose approval changed it."""
        return {
            "version": STATE_VERSION,
            "day": None if self._day is None else self._day.isoformat(),
            "entries_today": self._entries_today,
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Take back an earlier run's count of the day's entries; one not as ``saved_state``
        writes it is said as a warning naming the field, and left out."""
        kept = kept_entries(state)
        if isinstance(kept, str):
            log.warning("pre-trade: the kept state is left out, %s", kept)
            return
        self._day, self._entries_today = kept

    def on_bar(self, bar: Bar) -> None:
        if not self.params.max_correlation:
            return
        symbol, close = bar[0], bar[6]
        previous = self._last_close.get(symbol)
        self._last_close[symbol] = close
        if previous:
            self._rolling.append(symbol, bar[2], close / previous - 1.0)
            self._corr_cache.clear()

    def _correlated(
        self, intent: OrderIntent, ctx: RiskContext, limit: float
    ) -> tuple[str, float] | None:
        """``correlated_with``'s answer (the same figures: the running sums are exact), with
        the working entries' directions (``held_directions``) when there are any."""
        symbol = intent.symbol
        if symbol not in self._returns:
            return None
        side = intent.side.sign
        rolling = self._rolling
        if not ctx.entries:
            for other, position in ctx.positions.items():
                if other == symbol:
                    continue
                rho = rolling.correlation(symbol, other)
                if rho is not None and rho * (side if position.quantity > 0 else -side) > limit:
                    return other, rho
            return None
        for other, directions in held_directions(ctx.positions, ctx.entries).items():
            if other == symbol:
                continue
            rho = rolling.correlation(symbol, other)
            if rho is not None:
                for direction in directions:
                    if rho * side * direction > limit:
                        return other, rho
        return None

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only:
            return APPROVE
        p = self.params
        decision = static_checks(intent, ctx, p)
        if decision.action is VETO:
            return decision
        held = ctx.positions.get(intent.symbol)
        if p.min_holding_s and held is not None and held.quantity * intent.side.sign < 0:
            age = ctx.ts - held.opened_ts
            if age < p.min_holding_s:
                return RiskDecision.veto(
                    f"{intent.symbol} position is {age}s old (held at least {p.min_holding_s}s)",
                    "min_holding",
                )
        if p.cooldown_after_loss_s and self._trades:
            last = self._trades[-1]
            wait = last.exit_ts + p.cooldown_after_loss_s - ctx.ts
            if last.net_pnl < 0 and wait > 0:
                return RiskDecision.veto(
                    f"cooling down after a losing trade ({wait}s left)", "loss_cooldown"
                )
        if p.max_correlation and (ctx.positions or ctx.entries):
            # The answer depends on which symbols are held (or entered) in which direction,
            # and that changes within a bar as its entries are let through: part of the key.
            # Positions do not change between two bars' returns (the cache is cleared then),
            # but the working entries do within a bar, as its entries are let through.
            key = (
                ctx.ts,
                intent.symbol,
                intent.side.sign,
                tuple((o.symbol, o.side.sign) for o in ctx.entries),
            )
            if key in self._corr_cache:
                found = self._corr_cache[key]
            else:
                found = self._correlated(intent, ctx, p.max_correlation)
                self._corr_cache[key] = found
            if found is not None:
                other, rho = found
                position = ctx.positions.get(other)
                by_position = position is not None and (
                    rho * intent.side.sign * math.copysign(1.0, position.quantity)
                    > p.max_correlation
                )
                what = f"open {other}" if by_position else f"{other} (entry order working)"
                return RiskDecision.veto(
                    f"{intent.symbol} correlates {rho:.2f} with {what} "
                    f"(limit {p.max_correlation:.10g})",
                    "correlation",
                )
        if p.max_trades_per_day:
            day = self._clock.day(ctx.ts)  # the local calendar day
            if day != self._day:
                self._day, self._entries_today = day, 0
            if self._entries_today >= p.max_trades_per_day:
                return RiskDecision.veto(
                    f"{self._entries_today} entries today (at most {p.max_trades_per_day})",
                    "max_trades",
                )
            self._entries_today += 1
        return decision
