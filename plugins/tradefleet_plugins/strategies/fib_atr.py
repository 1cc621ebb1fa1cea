"""``fib-atr``: buy pullbacks to the Fibonacci retracements of the last swing in the trend.

The trend is the side of the close to an EMA (``trend_period``). When the last confirmed swing
went the trend's way (up in an uptrend: a swing low, then a swing high) and a bar dips to one of
its retracement ``levels`` (default 38.2/50/61.8%) and closes back above it — without breaking
the swing's start — the strategy enters with the trend, stop ``stop_atr`` ATRs away and target
``target_atr`` ATRs away (downtrends mirrored). Each swing is traded at most once.
"""

from __future__ import annotations

from tradefleet_plugins.strategies.fib_atr_params import FibAtrParams
from tradefleet_runtime.sdk import ATR, EMA, Bar, Fibonacci, Strategy, StrategyContext


class _Leg:
    """One symbol's indicators: bound once, read on every bar."""

    __slots__ = ("atr", "fib", "trend")

    def __init__(self, trend: EMA, atr: ATR, fib: Fibonacci) -> None:
        self.trend, self.atr, self.fib = trend, atr, fib


class FibAtr(Strategy):
    params: FibAtrParams

    def __init__(self, params: FibAtrParams) -> None:
        super().__init__(params)
        self._legs: dict[str, _Leg] = {}
        self._traded: dict[str, tuple[float, float]] = {}

    def on_start(self, ctx: StrategyContext) -> None:
        p = self.params
        for symbol in ctx.symbols:
            self._legs[symbol] = _Leg(
                self.indicator(EMA(p.trend_period), symbol),
                self.indicator(ATR(p.atr_period), symbol),
                self.indicator(Fibonacci(p.swing_left, p.swing_right), symbol),
            )

    def touched_level(self, bar: Bar) -> float | None:
        """The retracement level this bar bounced from in the trend's direction, or None."""
        symbol = bar[0]
        leg = self._legs[symbol]
        fib, trend = leg.fib, leg.trend.value
        swing = fib.direction
        if swing == 0 or trend != trend:
            return None
        close = bar[6]
        direction = 1 if close > trend else -1
        if swing != direction:
            return None
        start, end = fib.start, fib.end
        traded = self._traded.get(symbol)
        if traded is not None and traded[0] == start and traded[1] == end:
            return None  # one trade per swing
        # The deepest level reached: levels are sorted, so the last one hit, found from the
        # end (``retracement(r)``'s arithmetic: end - r * (end - start)).
        if direction > 0:
            low = bar[5]
            if low <= start:  # the swing's low broke: no pullback any more
                return None
            for ratio in reversed(self.params.levels):
                level = end - ratio * (end - start)
                if low <= level < close:
                    return level
        else:
            high = bar[4]
            if high >= start:
                return None
            for ratio in reversed(self.params.levels):
                level = end - ratio * (end - start)
                if high >= level > close:
                    return level
        return None

    def on_bar(self, bar: Bar) -> None:
        symbol = bar[0]
        ctx = self.ctx
        if ctx.position(symbol).quantity or ctx.open_orders(symbol):
            return
        level = self.touched_level(bar)
        if level is None:
            return
        leg = self._legs[symbol]
        atr = leg.atr.value
        if atr != atr:
            return
        fib = leg.fib
        close, p = bar[6], self.params
        if fib.direction < 0 and not p.allow_short:
            return  # long only (a spot account): the swing stays untraded
        self._traded[symbol] = (fib.start, fib.end)
        if fib.direction > 0:
            ctx.buy(
                symbol,
                stop_loss=close - p.stop_atr * atr,
                take_profit=close + p.target_atr * atr,
                tag="fib-long",
            )
        else:
            ctx.sell(
                symbol,
                stop_loss=close + p.stop_atr * atr,
                take_profit=close - p.target_atr * atr,
                tag="fib-short",
            )
