"""``exits``: early exit, trailing exit and break-even, strategy-independent.

The exits are *virtual*: decided on closed bars (the best price since entry from bar highs and
lows, the exit level ratcheting only in the trade's favour) and executed as reduce-only market
orders through the engine's account actions, so they fill at the next bar's open — never better
than a native stop at the venue would, and without one resting at the venue between bars. The
protective stop-loss the strategy placed stays in force.

- Early exit: the loss from the entry reaches ``early_exit_fraction`` of the stop distance.
- Trailing: the close falls ``trailing_pct`` (or ``trailing_atr_multiple`` ATRs) behind the best
  price since entry.
- Break-even: once the best price was ``break_even_r`` × the initial risk in profit, a close back
  at the entry exits.

With ``trailing_native`` the trailing rule is also a *native* trailing stop: at each closed bar
the plugin asks the engine (MOVE_STOP) to move the position's stop-loss order to the trailing
distance behind the best price, whenever that tightens it; the engine refuses any move that
would loosen the stop or pass the mark. The stop then works at the venue between bars (a gap
fills at the trailed stop, or the open beyond it). The virtual trailing exit still closes a
position that has no stop-loss order (said once per trade in the log) and one whose bar closed
beyond the trail before the stop could be moved there.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from tradefleet_plugins.risk.exits_params import ExitsParams
from tradefleet_plugins.risk.volatility_target import Atr
from tradefleet_runtime.sdk import (
    AccountAction,
    ActionKind,
    Bar,
    OrderIntent,
    Position,
    RiskContext,
    RiskDecision,
)

# A plain approval: one immutable value, shared (no allocation per intent).
APPROVE = RiskDecision.approve()

log = logging.getLogger(__name__)


@dataclass
class _Trade:
    opened_ts: int
    best: float  # best price since entry: highest high (long) or lowest low (short)
    direction: float  # 1 long, -1 short
    exiting: bool = False
    asked_stop: float = math.nan  # the last stop price asked for (native trailing)
    said_unprotected: bool = False  # "no stop-loss order to trail" said for this trade


def trailing_gap(best: float, atr: float | None, p: ExitsParams) -> float:
    """How far behind the best price the trailing exit lies (0: trailing off) (pure)."""
    gap = 0.0
    if p.trailing_pct:
        gap = best * p.trailing_pct
    if p.trailing_atr_multiple and atr:
        gap = max(gap, p.trailing_atr_multiple * atr) if gap else p.trailing_atr_multiple * atr
    return gap


def trailed_stop(
    direction: float,
    best: float,
    mark: float,
    stops: tuple[tuple[float, float], ...],
    gap: float,
    asked: float,
) -> float | None:
    """The stop price to ask for (native trailing), or None (pure): ``best`` − ``gap`` for a
    long (+ for a short) when it tightens the loosest working stop, is short of the mark (a
    stop there would fill at once: the virtual exit closes instead) and tightens what was last
    ``asked`` (a refused ask is not repeated until the best price moves)."""
    if not gap or not stops:
        return None
    target = best - direction * gap
    loosest = min(price for _, price in stops) if direction > 0 else max(p for _, p in stops)
    if (target - loosest) * direction <= 0 or (mark - target) * direction <= 0:
        return None
    if not math.isnan(asked) and (target - asked) * direction <= 0:
        return None
    return target


def exit_reason(
    position: Position,
    mark: float,
    stop: float | None,
    best: float,
    atr: float | None,
    p: ExitsParams,
) -> tuple[str, str] | None:
    """(reason, code) to close ``position`` now, or None (pure)."""
    direction = 1.0 if position.quantity > 0 else -1.0
    entry = position.average_price
    profit = (mark - entry) * direction
    distance = abs(entry - stop) if stop is not None else 0.0
    if (
        p.early_exit_fraction
        and distance > 0
        and -profit >= p.early_exit_fraction * distance - 1e-12
    ):
        return (
            f"loss {-profit:g} reached {p.early_exit_fraction:.0%} of the stop distance "
            f"{distance:g}",
            "early_exit",
        )
    gap = trailing_gap(best, atr, p)
    if gap and (best - mark) * direction >= gap - 1e-12:
        return f"price {mark:g} trails the best {best:g} by {gap:g} or more", "trailing"
    if (
        p.break_even_r
        and distance > 0
        and (best - entry) * direction >= p.break_even_r * distance
        and profit <= 0
    ):
        return f"back at the entry {entry:g} after {p.break_even_r:g}R in profit", "break_even"
    return None


class Exits:
    def __init__(self, params: ExitsParams) -> None:
        self.params = params
        self._atr: dict[str, Atr] = {}
        self._trades: dict[str, _Trade] = {}

    def on_bar(self, bar: Bar) -> None:
        symbol = bar[0]
        trade = self._trades.get(symbol)
        if trade is not None:
            if trade.direction > 0:
                trade.best = max(trade.best, bar[4])
            else:
                trade.best = min(trade.best, bar[5])
        if self.params.trailing_atr_multiple:
            atr = self._atr.get(symbol)
            if atr is None:
                atr = self._atr[symbol] = Atr(self.params.atr_period)
            atr.add(bar[4], bar[5], bar[6])

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return APPROVE

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        actions = []
        for symbol in list(self._trades):
            if symbol not in ctx.positions:
                del self._trades[symbol]
        for symbol, position in ctx.positions.items():
            trade = self._trades.get(symbol)
            mark = ctx.mark(symbol)
            if trade is None or trade.opened_ts != position.opened_ts:
                direction = 1.0 if position.quantity > 0 else -1.0
                best = (
                    max(position.average_price, mark)
                    if direction > 0
                    else min(position.average_price, mark)
                )
                trade = self._trades[symbol] = _Trade(position.opened_ts, best, direction)
            if trade.exiting:
                continue
            stops = ctx.stops.get(symbol, ())
            stop = stops[0][1] if stops else None
            atr = self._atr.get(symbol)
            atr_value = atr.value if atr else None
            if self.params.trailing_native:
                move = self._native_trail(symbol, trade, mark, stops, atr_value)
                if move is not None:
                    actions.append(move)
            found = exit_reason(position, mark, stop, trade.best, atr_value, self.params)
            if found is not None:
                trade.exiting = True
                actions.append(AccountAction(ActionKind.FLATTEN, found[0], symbol, code=found[1]))
        return actions

    def _native_trail(
        self,
        symbol: str,
        trade: _Trade,
        mark: float,
        stops: tuple[tuple[float, float], ...],
        atr: float | None,
    ) -> AccountAction | None:
        """The MOVE_STOP of ``symbol``'s stop-loss to the trail, when it tightens it."""
        gap = trailing_gap(trade.best, atr, self.params)
        if gap and not stops and not trade.said_unprotected:
            trade.said_unprotected = True
            log.warning(
                "exits: %s has no stop-loss order to trail at the venue; the virtual "
                "trailing exit closes it at the next bar's open instead",
                symbol,
            )
        target = trailed_stop(trade.direction, trade.best, mark, stops, gap, trade.asked_stop)
        if target is None:
            return None
        trade.asked_stop = target
        return AccountAction(
            ActionKind.MOVE_STOP,
            f"trail {gap:g} behind the best {trade.best:g}",
            symbol,
            code="trailing_stop",
            price=target,
        )
