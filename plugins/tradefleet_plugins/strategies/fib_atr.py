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


class FibAtr(Strategy):
    params: FibAtrParams

    def __init__(self, params: FibAtrParams) -> None:
        super().__init__(params)
        self._trend: dict[str, EMA] = {}
        self._atr: dict[str, ATR] = {}
        self._fib: dict[str, Fibonacci] = {}
        self._traded: dict[str, tuple[float, float]] = {}

    def on_start(self, ctx: StrategyContext) -> None:
        p = self.params
        for symbol in ctx.symbols:
            self._trend[symbol] = self.indicator(EMA(p.trend_period), symbol)
            self._atr[symbol] = self.indicator(ATR(p.atr_period), symbol)
            self._fib[symbol] = self.indicator(Fibonacci(p.swing_left, p.swing_right), symbol)

    def touched_level(self, bar: Bar) -> float | None:
        """The retracement level this bar bounced from in the trend's direction, or None."""
        symbol = bar[0]
        fib, trend = self._fib[symbol], self._trend[symbol].value
        if fib.direction == 0 or trend != trend:
            return None
        close = bar[6]
        direction = 1 if close > trend else -1
        if fib.direction != direction or self._traded.get(symbol) == (fib.start, fib.end):
            return None
        if direction > 0:
            if bar[5] <= fib.start:  # the swing's low broke: no pullback any more
                return None
            hit = [lvl for r in self.params.levels if bar[5] <= (lvl := fib.retracement(r)) < close]
        else:
            if bar[4] >= fib.start:
                return None
            hit = [lvl for r in self.params.levels if bar[4] >= (lvl := fib.retracement(r)) > close]
        return hit[-1] if hit else None  # the deepest level reached

    def on_bar(self, bar: Bar) -> None:
        symbol = bar[0]
        ctx = self.ctx
        if ctx.position(symbol).quantity or ctx.open_orders(symbol):
            return
        level = self.touched_level(bar)
        atr = self._atr[symbol].value
        if level is None or atr != atr:
            return
        fib = self._fib[symbol]
        self._traded[symbol] = (fib.start, fib.end)
        close, p = bar[6], self.params
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
