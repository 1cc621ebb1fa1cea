"""Pure helpers the risk rules share: trading days in a timezone, exposure, worst-case losses.

No I/O and no clock: every function takes the bar time it decides at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from tradefleet_runtime.sdk import (
    Order,
    OrderIntent,
    OrderType,
    Position,
    RiskContext,
    RiskDecision,
    round_quantity,
)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1024)
def trading_day(ts: int, tz: str, start_minute: int = 0) -> date:
    """The trading day bar time ``ts`` (UTC epoch seconds) falls in, for days that begin at
    ``start_minute`` past local midnight in ``tz`` (DST-aware: the local wall clock decides)."""
    # One conversion straight into the zone (the same instant and wall clock as converting from
    # UTC, at a quarter of the cost: this runs once per bar per rule).
    local = datetime.fromtimestamp(ts, zone(tz))
    if start_minute:
        local -= timedelta(minutes=start_minute)
    return local.date()


@lru_cache(maxsize=1024)
def trading_week(ts: int, tz: str, start_minute: int = 0) -> tuple[int, int]:
    """(ISO year, ISO week) of the trading day of ``ts``."""
    iso = trading_day(ts, tz, start_minute).isocalendar()
    return iso[0], iso[1]


@lru_cache(maxsize=1024)
def local_weekday_minute(ts: int, tz: str) -> tuple[int, int]:
    """(weekday 0 = Monday, minute of the day) of ``ts`` on the local wall clock of ``tz``."""
    local = datetime.fromtimestamp(ts, zone(tz))
    return local.weekday(), local.hour * 60 + local.minute


def gross_exposure(positions: Mapping[str, Position], marks: Mapping[str, float]) -> float:
    total = 0.0
    for symbol, position in positions.items():
        quantity = position.quantity
        total += (quantity if quantity > 0 else -quantity) * marks.get(
            symbol, position.average_price
        )
    return total


def exposure_cut(
    positions: Mapping[str, Position], marks: Mapping[str, float], fraction: float
) -> list[tuple[str, float]]:
    """Which positions to reduce, and by what share of each, to take ``fraction`` of the gross
    exposure off: the riskiest first (largest notional, then the worst unrealised P&L), whole
    positions while they fit, the last one in part."""
    notional = {
        s: abs(p.quantity) * marks.get(s, p.average_price)
        for s, p in positions.items()
        if p.quantity
    }
    target = sum(notional.values()) * min(max(fraction, 0.0), 1.0)
    order = sorted(
        notional,
        key=lambda s: (-notional[s], positions[s].unrealized_pnl(marks.get(s, 0.0)), s),
    )
    cuts: list[tuple[str, float]] = []
    for symbol in order:
        if target <= 1e-12:
            break
        value = notional[symbol]
        if value <= 0.0:
            continue
        share = min(1.0, target / value)
        cuts.append((symbol, share))
        target -= value * share
    return cuts


def fill_cost(fee: float, slippage: float) -> float:
    """What a market or stop fill costs beyond its price, as a fraction of that price: it fills
    ``slippage`` past the price, and pays ``fee`` on what it filled at (counted on ``1 +
    slippage`` of the price for either side: exact for a buy, the safe side for a sell)."""
    return slippage + (1.0 + slippage) * fee


def open_risk(
    positions: Mapping[str, Position],
    marks: Mapping[str, float],
    stops: Mapping[str, tuple[tuple[float, float], ...]],
    unprotected_move: float,
    exit_cost: float = 0.0,
) -> float:
    """What the open positions lose from their marks if every protective stop is hit (≥ 0).

    Each stopped unit also costs ``exit_cost`` (a fraction of its stop price, ``fill_cost``:
    the stop's fill slipping past it and its fee). Quantity no stop protects is assumed to move
    ``unprotected_move`` (a fraction of its mark) against the position, and is charged that
    alone. A stop already beyond the mark (the loss is in the price) counts only its exit's
    cost.
    """
    total = 0.0
    empty: tuple[tuple[float, float], ...] = ()
    for symbol, position in positions.items():
        signed = position.quantity
        if not signed:
            continue
        mark = marks.get(symbol, position.average_price)
        quantity, direction = (signed, 1.0) if signed > 0 else (-signed, -1.0)
        covered = 0.0
        for stop_quantity, stop in stops.get(symbol, empty):
            left = quantity - covered
            if left <= 0.0:
                break
            take = stop_quantity if stop_quantity < left else left
            loss = (mark - stop) * direction
            if loss < 0.0:
                loss = 0.0
            total += take * (loss + stop * exit_cost)
            covered += take
        if covered < quantity:
            total += (quantity - covered) * mark * unprotected_move
    return total


def open_risk_and_gross(
    positions: Mapping[str, Position],
    marks: Mapping[str, float],
    stops: Mapping[str, tuple[tuple[float, float], ...]],
    unprotected_move: float,
    exit_cost: float = 0.0,
) -> tuple[float, float]:
    """``(open_risk(...), gross_exposure(...))`` in one pass (the same sums, in the same order).

    ``open_risk``, this and ``position_risk`` each walk the stops inline: they run for every
    intent through ``prop-firm``, and summing ``position_risk`` per position instead cost the
    plugin 0.8 µs (10%) in ``bench_risk.py``. ``tests/runtime/test_risk_rules_agree.py`` holds the
    three to the same figures."""
    total = gross = 0.0
    empty: tuple[tuple[float, float], ...] = ()
    mark_of, stops_of = marks.get, stops.get
    for symbol, position in positions.items():
        signed = position.quantity
        mark = mark_of(symbol)
        if mark is None:
            mark = position.average_price
        if signed > 0:
            quantity, direction = signed, 1.0
        elif signed < 0:
            quantity, direction = -signed, -1.0
        else:  # flat: adds its 0 x mark to the gross, and no risk
            gross += -signed * mark
            continue
        gross += quantity * mark
        covered = 0.0
        for stop_quantity, stop in stops_of(symbol, empty):
            left = quantity - covered
            if left <= 0.0:
                break
            take = stop_quantity if stop_quantity < left else left
            loss = (mark - stop) * direction
            if loss < 0.0:
                loss = 0.0
            total += take * (loss + stop * exit_cost)
            covered += take
        if covered < quantity:
            total += (quantity - covered) * mark * unprotected_move
    return total, gross


def position_risk(
    quantity: float,
    mark: float,
    stops: tuple[tuple[float, float], ...],
    unprotected_move: float,
    exit_cost: float = 0.0,
) -> float:
    """``open_risk`` of one position of signed ``quantity`` at ``mark`` (the same sum)."""
    if not quantity:
        return 0.0
    size, direction = (quantity, 1.0) if quantity > 0 else (-quantity, -1.0)
    total = covered = 0.0
    for stop_quantity, stop in stops:
        left = size - covered
        if left <= 0.0:
            break
        take = stop_quantity if stop_quantity < left else left
        loss = (mark - stop) * direction
        if loss < 0.0:
            loss = 0.0
        total += take * (loss + stop * exit_cost)
        covered += take
    if covered < size:
        total += (size - covered) * mark * unprotected_move
    return total


def risk_after_entry(
    held: float,
    mark: float,
    stops: tuple[tuple[float, float], ...],
    signed_quantity: float,
    entry: float,
    stop: float | None,
    unprotected_move: float,
    exit_cost: float = 0.0,
) -> float:
    """What a position of ``held`` (signed) at ``mark``, with ``stops`` working for it, loses
    from now if an entry of ``signed_quantity`` filled at ``entry`` and then every stop were
    hit, the order's own worked after those already held (≥ 0).

    Stops fill in the order the venue holds them, so stops larger than what is left of their
    position (a position cut by a reduce order keeps its stops whole) close the new quantity
    first, at their own, possibly much wider, prices: the order's own stop protects only what
    they leave. Units bought at ``entry`` rather than the mark add ``(entry - mark)`` each.
    Only for an entry that opens or adds to a position; one against it nets the position and
    leaves the venue's stops on the wrong side, which this does not model. Each stopped unit
    also costs ``exit_cost`` of its stop (as in ``open_risk``); the entry's own fill costs are
    the caller's to add.
    """
    if stop is not None:
        stops = (*stops, (abs(signed_quantity), stop))
    risk = position_risk(held + signed_quantity, mark, stops, unprotected_move, exit_cost)
    return max(0.0, risk + signed_quantity * (entry - mark))


def share_to_cut(
    positions: Mapping[str, Position],
    marks: Mapping[str, float],
    stops: Mapping[str, tuple[tuple[float, float], ...]],
    unprotected_move: float,
    room: float,
    at_least: float = 0.0,
    exit_cost: float = 0.0,
) -> float:
    """The smallest share (≥ ``at_least``) of every open position to close so that
    ``open_risk`` of what is left is at most ``room``.

    With ``exit_cost`` each stopped unit left costs that share of its stop, and the cut's own
    market orders cost it of their marks (they are paid at once, whatever the stops do).

    A reduce order closes quantity but leaves the stops whole, and stops cover a position in
    the order the venue holds them: the cut takes off the quantity the last stops covered,
    not a slice of every stop. When the last stops are the tighter ones, what is left risks
    more than its share of the whole, so the share is found on ``open_risk`` itself (bisection:
    the risk only falls as the cut grows), ending on the side that fits.
    """

    cut_cost = gross_exposure(positions, marks) * exit_cost

    def risk_left(share: float) -> float:
        keep = 1.0 - share
        cut = {s: Position(s, p.quantity * keep, p.average_price) for s, p in positions.items()}
        return open_risk(cut, marks, stops, unprotected_move, exit_cost) + share * cut_cost

    return smallest_share(risk_left, room, at_least)


def smallest_share(
    risk_left: Callable[[float], float], room: float, at_least: float = 0.0
) -> float:
    """The smallest share in [``at_least``, 1] whose ``risk_left`` is at most ``room``, by
    bisection (the risk only falls as the share grows), ending on the side that fits."""
    low = min(max(at_least, 0.0), 1.0)
    if risk_left(low) <= room:
        return low
    high = 1.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if risk_left(middle) <= room:
            high = middle
        else:
            low = middle
    return high


def order_risk(
    quantity: float,
    entry: float,
    stop: float | None,
    unprotected_move: float,
    exit_cost: float = 0.0,
) -> float:
    """What an order loses from ``entry`` if its stop is hit, the stop's fill costing
    ``exit_cost`` of its price (or the assumed move without a stop). Not its entry's costs."""
    if stop is None:
        return quantity * entry * unprotected_move
    return quantity * (abs(entry - stop) + stop * exit_cost)


def entry_cost(order_type: OrderType, taker: float, maker: float) -> float:
    """What filling an entry costs, as a fraction of its price: a limit fills at its price
    and pays the fee (``maker``); a market or stop order may slip past it too (``taker``,
    ``fill_cost``)."""
    return maker if order_type is OrderType.LIMIT else taker


def entries_risk_and_gross(
    entries: Sequence[Order],
    marks: Mapping[str, float],
    unprotected_move: float,
    taker: float = 0.0,
    maker: float = 0.0,
) -> tuple[float, float]:
    """What the working entry orders (``RiskContext.entries``) may lose once filled if each
    one's stop is hit (the assumed move for one without a stop), and the exposure they add:
    each at its own price (a limit's or a stop's), a market order at its symbol's mark. Each
    one's fill costs ``entry_cost`` of its price and its stop's ``taker`` of the stop."""
    risk = gross = 0.0
    for order in entries:
        price = order.price or marks.get(order.symbol, 0.0)
        quantity = order.quantity
        risk += order_risk(quantity, price, order.stop_loss, unprotected_move, taker)
        if taker or maker:
            risk += quantity * price * entry_cost(order.order_type, taker, maker)
        gross += quantity * price
    return risk, gross


def entry_symbols(entries: Sequence[Order], positions: Mapping[str, Position]) -> set[str]:
    """Symbols a working entry order would open a position in (none open there yet)."""
    return {order.symbol for order in entries if order.symbol not in positions}


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_FIXED_UTC = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"})


class DayClock:
    """``trading_day`` and ``trading_week`` of one (timezone, day start), with the current
    day's bounds cached: in UTC (no DST) a day is a fixed [start, start + 86400) range, so a bar
    time inside it costs two comparisons; other zones go through the cached conversions."""

    __slots__ = ("_day", "_end", "_start", "_start_minute", "_tz", "_utc", "_week")

    def __init__(self, tz: str, start_minute: int = 0) -> None:
        self._tz, self._start_minute = tz, start_minute
        self._utc = tz in _FIXED_UTC
        self._start = self._end = 0
        self._day = date(1970, 1, 1)
        self._week = (0, 0)

    def day(self, ts: int) -> date:
        if not self._utc:
            return trading_day(ts, self._tz, self._start_minute)
        if not self._start <= ts < self._end:
            shift = self._start_minute * 60
            index = (ts - shift) // 86400
            self._start = index * 86400 + shift
            self._end = self._start + 86400
            self._day = date.fromordinal(_EPOCH_ORDINAL + index)
            iso = self._day.isocalendar()
            self._week = (iso[0], iso[1])
        return self._day

    def week(self, ts: int) -> tuple[int, int]:
        if not self._utc:
            return trading_week(ts, self._tz, self._start_minute)
        self.day(ts)
        return self._week


# A plain approval: one immutable value, shared (no allocation per intent).
_APPROVE = RiskDecision.approve()


def entry_cut(
    intent: OrderIntent,
    quantity: float,
    factor: float,
    reason: str,
    code: str,
    ctx: RiskContext | None = None,
) -> RiskDecision:
    """A rule's cut of an entry of ``quantity`` to ``factor`` of it (0: refused), ``reason``
    and ``code`` saying which rule and why (pure).

    The part of an order closing an opposite position (``ctx.closing``: a reversal sent as one
    order) is an exit, which no rule stops, as pre-trade's caps have it: only what the order
    opens is cut, a refused reversal is shrunk to its closing part, and what is left to open
    below the instrument's minimum is not sent (it would leave a position too small for the
    venue to take an order closing it). An order that only closes passes whole. Without a
    ``ctx`` (no account told) all of the order opens."""
    closing = ctx.closing(intent, quantity) if ctx is not None else 0.0
    if ctx is None or closing <= 0.0:
        if factor <= 0.0:
            return RiskDecision.veto(reason, code)
        return RiskDecision.shrink(quantity * factor, reason, code)
    if quantity <= closing:
        return _APPROVE  # an exit whole (the engine sends it reduce-only before the chain)
    symbol, instrument = intent.symbol, ctx.instrument
    opening = quantity - closing
    kept = round_quantity(opening * factor, instrument.lot_step) if factor > 0.0 else 0.0
    if kept <= 0.0 or kept < instrument.min_quantity:
        small = (
            f"; what it may open, {kept:.10g}, is below {symbol}'s minimum quantity "
            f"{instrument.min_quantity:.10g} and is not sent"
            if kept > 0.0
            else ""
        )
        return RiskDecision.shrink(
            closing,
            f"{reason}: {quantity:.10g} -> {closing:.10g}, the part closing {symbol}'s "
            f"position (an exit is never cut){small}",
            code,
        )
    sent = closing + kept
    return RiskDecision.shrink(
        sent,
        f"{reason}, of the {opening:.10g} it opens: {quantity:.10g} -> {sent:.10g} "
        f"({closing:.10g} close {symbol}'s position)",
        code,
    )
