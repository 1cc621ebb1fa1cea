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

A restart keeps what bars alone cannot rebuild (``restores-state``): a paper or live bot
journals each trade's best price since entry, its break-even arm and the last stop asked for,
and hands them back after a restart. They are taken only for the position they were kept for
(the same opening time and direction): a position closed and reopened while the bot was down
trails from its own entry, as a new trade does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    # Break-even armed: the best price once reached ``break_even_r`` times the risk to the
    # stop. Kept once armed (a stop moved closer, or gone, does not disarm it).
    armed: bool = False


# The shape of ``Exits.state``; a state of another version is not taken back.
STATE_VERSION = 1


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
    armed: bool = False,
) -> tuple[str, str] | None:
    """(reason, code) to close ``position`` now, or None (pure). ``armed``: break-even was
    armed at an earlier bar (``break_even_armed``)."""
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
            f"loss {-profit:.10g} reached {p.early_exit_fraction:.0%} of the stop distance "
            f"{distance:.10g}",
            "early_exit",
        )
    gap = trailing_gap(best, atr, p)
    if gap and (best - mark) * direction >= gap - 1e-12:
        return f"price {mark:.10g} trails the best {best:.10g} by {gap:.10g} or more", "trailing"
    # An arm kept from a run whose manifest had break-even on does nothing once it is off.
    if p.break_even_r and (armed or break_even_armed(position, stop, best, p)) and profit <= 0:
        return (
            f"back at the entry {entry:.10g} after {p.break_even_r:.10g}R in profit",
            "break_even",
        )
    return None


def break_even_armed(position: Position, stop: float | None, best: float, p: ExitsParams) -> bool:
    """Whether the best price since entry reached ``break_even_r`` times the distance from
    the entry to the stop (pure; never without break-even on or a stop)."""
    entry = position.average_price
    distance = abs(entry - stop) if stop is not None else 0.0
    direction = 1.0 if position.quantity > 0 else -1.0
    return bool(
        p.break_even_r and distance > 0 and (best - entry) * direction >= p.break_even_r * distance
    )


def _price(value: Any) -> float | None:
    """``value`` as a price when it is a positive finite number (a bool is none), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def kept_trade(symbol: str, entry: Any) -> _Trade | str:
    """A trade as ``Exits.state`` kept it, or why it cannot be taken back (pure)."""
    if not isinstance(entry, Mapping):
        return f"{symbol}: not an object"
    opened, direction = entry.get("opened_ts"), entry.get("direction")
    best, armed, asked = (
        _price(entry.get("best")),
        entry.get("armed", False),
        entry.get("asked_stop"),
    )
    if not isinstance(opened, int) or isinstance(opened, bool):
        return f"{symbol}.opened_ts: {opened!r} is not a whole number"
    if direction not in (1, -1) or isinstance(direction, bool):
        return f"{symbol}.direction: {direction!r} is not 1 or -1"
    if best is None:
        return f"{symbol}.best: {entry.get('best')!r} is not a positive finite price"
    if not isinstance(armed, bool):
        return f"{symbol}.armed: {armed!r} is not true or false"
    asked_stop = math.nan if asked is None else _price(asked)
    if asked_stop is None:
        return f"{symbol}.asked_stop: {asked!r} is not a positive finite price"
    return _Trade(opened, best, 1.0 if direction == 1 else -1.0, asked_stop=asked_stop, armed=armed)


class Exits:
    def __init__(self, params: ExitsParams) -> None:
        self.params = params
        self._atr: dict[str, Atr] = {}
        self._trades: dict[str, _Trade] = {}
        # Trades an earlier run kept (``restore_state``), until ``account_actions`` first sees
        # the positions: taken for the position they were kept for, dropped otherwise.
        self._restored: dict[str, _Trade] = {}

    def on_bar(self, bar: Bar) -> None:
        symbol = bar[0]
        trade = self._trades.get(symbol)
        if trade is None and self._restored:
            trade = self._restored.get(symbol)
            # Only a bar after the entry's: the bars a restart shows again from before the
            # entry never were the trade's (those after it are in its best already).
            if trade is not None and bar[2] <= trade.opened_ts:
                trade = None
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
        if self._restored:
            self._take_restored(ctx)
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
            if not trade.armed and break_even_armed(position, stop, trade.best, self.params):
                trade.armed = True
            found = exit_reason(
                position, mark, stop, trade.best, atr_value, self.params, trade.armed
            )
            if found is not None:
                trade.exiting = True
                actions.append(AccountAction(ActionKind.FLATTEN, found[0], symbol, code=found[1]))
        return actions

    def saved_state(self) -> dict[str, Any]:
        """Each trade's best price since entry, break-even arm and last stop asked for, by
        symbol (``restores-state``); journaled by the engine whenever it changes."""
        trades = {**self._restored, **self._trades}
        return {
            "version": STATE_VERSION,
            "trades": {
                symbol: {
                    "opened_ts": trade.opened_ts,
                    "direction": int(trade.direction),
                    "best": trade.best,
                    "armed": trade.armed,
                    "asked_stop": None if math.isnan(trade.asked_stop) else trade.asked_stop,
                }
                for symbol, trade in trades.items()
            },
        }

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Keep the trades of an earlier run's ``state`` until the positions are seen; a part
        that is not what ``state`` writes is left out, said as a warning naming it."""
        if state.get("version") != STATE_VERSION or not isinstance(state.get("trades"), Mapping):
            log.warning(
                "exits: the kept state is not of version %s with trades (version %r): the "
                "trails start again from the mark",
                STATE_VERSION,
                state.get("version"),
            )
            return
        restored: dict[str, _Trade] = {}
        for symbol, entry in state["trades"].items():
            kept = kept_trade(str(symbol), entry)
            if isinstance(kept, str):
                log.warning("exits: kept state left out, %s; it trails from the mark", kept)
                continue
            restored[str(symbol)] = kept
        self._restored = restored

    def _take_restored(self, ctx: RiskContext) -> None:
        """At the first positions seen after a restart: each kept trade becomes the trade of
        the position it was kept for (the same opening time and direction); the others are
        dropped (closed, or closed and reopened while the bot was down)."""
        for symbol, kept in self._restored.items():
            position = ctx.positions.get(symbol)
            direction = 0.0 if position is None else (1.0 if position.quantity > 0 else -1.0)
            if position is None or (position.opened_ts, direction) != (
                kept.opened_ts,
                kept.direction,
            ):
                log.warning(
                    "exits: %s is not the position kept before the restart (opened at %s): "
                    "its kept best price %g is not taken",
                    symbol,
                    kept.opened_ts,
                    kept.best,
                )
                continue
            mark = ctx.mark(symbol)
            kept.best = max(kept.best, mark) if direction > 0 else min(kept.best, mark)
            self._trades[symbol] = kept
        self._restored = {}

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
            f"trail {gap:.10g} behind the best {trade.best:.10g}",
            symbol,
            code="trailing_stop",
            price=target,
        )
