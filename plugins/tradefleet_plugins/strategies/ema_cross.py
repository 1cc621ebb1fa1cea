"""``ema-cross``: long when the fast EMA crosses above the slow one, short (or flat) below.

EMAs use ``alpha = 2 / (period + 1)`` seeded with the first close (``EMA(seed_first=True)``,
declared per symbol and updated by the engine before each bar). The direction is taken after
``slow`` bars, and the strategy trades only when it changes (a cross), never on warm-up. Orders
are left unsized: the bot's sizer (``fixed-size``, ``fixed-fractional``) decides the quantity.
"""

from __future__ import annotations

from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_runtime.sdk import EMA, Bar, Strategy, StrategyContext


class EmaCross(Strategy):
    params: EmaCrossParams

    def __init__(self, params: EmaCrossParams) -> None:
        super().__init__(params)
        self._fast: dict[str, EMA] = {}
        self._slow: dict[str, EMA] = {}
        self._direction: dict[str, int] = {}

    def on_params_changed(self) -> None:
        # EMAs keep their values; new periods change only how fast they move from here on.
        for ema in self._fast.values():
            ema.period, ema.alpha = self.params.fast, 2.0 / (self.params.fast + 1)
        for ema in self._slow.values():
            ema.period, ema.alpha = self.params.slow, 2.0 / (self.params.slow + 1)

    def warmup_bars(self) -> int:
        return self.params.slow

    def on_start(self, ctx: StrategyContext) -> None:
        fast, slow = self.params.fast, self.params.slow
        for symbol in ctx.symbols:
            self._fast[symbol] = self.indicator(EMA(fast, seed_first=True), symbol)
            self._slow[symbol] = self.indicator(EMA(slow, seed_first=True), symbol)
            self._direction[symbol] = 0

    def on_bar(self, bar: Bar) -> None:
        symbol = bar[0]
        slow_ema = self._slow[symbol]
        if slow_ema.count < self.params.slow:
            return
        fast, slow = self._fast[symbol].value, slow_ema.value
        direction = 1 if fast > slow else (-1 if fast < slow else 0)
        previous = self._direction[symbol]
        if direction == 0 or direction == previous:
            return
        self._direction[symbol] = direction
        if previous == 0:
            return  # the first direction after warm-up is not a cross
        self._turn(bar, direction)

    def _turn(self, bar: Bar, direction: int) -> None:
        ctx = self.ctx
        symbol = bar.symbol
        if ctx.position(symbol).quantity:
            ctx.close(symbol, tag="cross")
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
                tag="cross-up",
            )
        else:
            ctx.sell(
                symbol,
                stop_loss=close * (1 + stop) if stop else None,
                take_profit=close * (1 - target) if target else None,
                tag="cross-down",
            )
