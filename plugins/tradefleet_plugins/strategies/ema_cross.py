"""``ema-cross``: long when the fast EMA crosses above the slow one, short (or flat) below.

EMAs use ``alpha = 2 / (period + 1)`` seeded with the first close (``EMA(seed_first=True)``,
declared per symbol and updated by the engine before each bar). The direction is taken after
``slow`` bars, and the strategy trades only when it changes (a cross), never on warm-up. Orders
are left unsized: the bot's sizer (``fixed-size``, ``fixed-fractional``) decides the quantity.

Without stop-loss or take-profit the whole run is a target position per bar
(:meth:`EmaCross.target_positions`, capability ``target-positions``), which the optimiser's
vectorised path evaluates without the event loop.
"""

from __future__ import annotations

import numpy as np

from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_runtime.sdk import (
    EMA,
    Bar,
    BarColumns,
    Strategy,
    StrategyContext,
    TargetPlan,
    vectorised,
)

# Vectorised EMAs agree with the incremental ones to about 1e-15 of the price (measured on 1M
# bars); where the two EMAs are closer than this, the incremental arithmetic decides the side.
_TIE = 1e-11
# The tags of a turn's orders: the fills' and trades' reasons (and the vectorised path's).
_CLOSE_TAG, _UP_TAG, _DOWN_TAG = "cross", "cross-up", "cross-down"


class _Leg:
    """One symbol's EMAs and the direction last taken: bound once, read on every bar."""

    __slots__ = ("direction", "fast", "slow")

    def __init__(self, fast: EMA, slow: EMA) -> None:
        self.fast = fast
        self.slow = slow
        self.direction = 0


class EmaCross(Strategy):
    params: EmaCrossParams

    def __init__(self, params: EmaCrossParams) -> None:
        super().__init__(params)
        self._legs: dict[str, _Leg] = {}

    def on_params_changed(self) -> None:
        # EMAs keep their values; new periods change only how fast they move from here on.
        fast, slow = self.params.fast, self.params.slow
        for leg in self._legs.values():
            leg.fast.period, leg.fast.alpha = fast, 2.0 / (fast + 1)
            leg.slow.period, leg.slow.alpha = slow, 2.0 / (slow + 1)

    def warmup_bars(self) -> int:
        return self.params.slow

    def on_start(self, ctx: StrategyContext) -> None:
        fast, slow = self.params.fast, self.params.slow
        for symbol in ctx.symbols:
            self._legs[symbol] = _Leg(
                self.indicator(EMA(fast, seed_first=True), symbol),
                self.indicator(EMA(slow, seed_first=True), symbol),
            )

    def on_bar(self, bar: Bar) -> None:
        leg = self._legs[bar[0]]
        fast, slow = leg.fast.value, leg.slow.value
        # Most bars keep the direction: decided with two comparisons, nothing else read.
        if fast > slow:
            direction = 1
        elif fast < slow:
            direction = -1
        else:
            return
        previous = leg.direction
        if direction == previous:
            return
        if leg.slow.count < self.params.slow:
            return  # no direction before `slow` bars were seen
        leg.direction = direction
        if previous == 0:
            return  # the first direction after warm-up is not a cross
        self._turn(bar, direction)

    def _turn(self, bar: Bar, direction: int) -> None:
        ctx = self.ctx
        symbol = bar.symbol
        if ctx.position(symbol).quantity:
            ctx.close(symbol, tag=_CLOSE_TAG)
        if direction < 0 and not self.params.allow_short:
            return
        close = bar.close
        stop = self.params.stop_loss_pct
        target = self.params.take_profit_pct
        if direction > 0:
            ctx.buy(
                symbol,
                stop_loss=close * (1 - stop) if stop else None,
                take_profit=close * (1 + target) if target else None,
                tag=_UP_TAG,
            )
        else:
            ctx.sell(
                symbol,
                stop_loss=close * (1 + stop) if stop else None,
                take_profit=close * (1 - target) if target else None,
                tag=_DOWN_TAG,
            )

    def target_positions(self, columns: BarColumns) -> TargetPlan | None:
        """The position after each bar's close, as :meth:`on_bar` trades it: flat until the
        first cross after the direction is known (bar ``slow``), then the direction (or flat
        below, without ``allow_short``). None with brackets: they need the event engine."""
        params = self.params
        if params.stop_loss_pct is not None or params.take_profit_pct is not None:
            return None
        close = columns.close
        count = close.size
        fast = vectorised.ema(close, params.fast, seed_first=True)
        slow = vectorised.ema(close, params.slow, seed_first=True)
        known_from = params.slow - 1  # both EMAs start at the first close: equal before
        gap = np.abs(fast[known_from:] - slow[known_from:])
        if (gap <= _TIE * np.abs(slow[known_from:])).any():
            fast, slow = _incremental_ema(close, params.fast), _incremental_ema(close, params.slow)
        direction = np.sign(fast - slow)
        direction[: params.slow - 1] = 0.0  # no direction before `slow` bars were seen
        # A bar where the EMAs are equal keeps the direction it had.
        known = np.where(direction != 0.0, np.arange(count), -1)
        np.maximum.accumulate(known, out=known)
        held = np.where(known >= 0, direction[np.maximum(known, 0)], 0.0)
        target = np.zeros(count)
        first = np.flatnonzero(held != 0.0)
        if first.size:
            turns = np.flatnonzero(held[first[0] + 1 :] != held[first[0] : -1]) + first[0] + 1
            if turns.size:  # the first direction is not a cross: trading starts at a turn
                target[turns[0] :] = held[turns[0] :]
        if not params.allow_short:
            np.maximum(target, 0.0, out=target)
        return TargetPlan(target, close_tag=_CLOSE_TAG, buy_tag=_UP_TAG, sell_tag=_DOWN_TAG)


def _incremental_ema(close: np.ndarray, period: int) -> np.ndarray:
    """The EMA exactly as the strategy's indicator computes it, bar by bar."""
    ema = EMA(period, seed_first=True)
    out = np.empty(close.size)
    for i, value in enumerate(close.tolist()):
        ema.add(value)
        out[i] = ema.value
    return out
