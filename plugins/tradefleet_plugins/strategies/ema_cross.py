"""``ema-cross``: long when the fast EMA crosses above the slow one, short (or flat) below.

EMAs use ``alpha = 2 / (period + 1)`` seeded with the first close. The direction is taken after
``slow`` bars, and the strategy trades only when it changes (a cross), never on warm-up. Orders
are left unsized: the bot's sizer (``fixed-size``, ``fixed-fractional``) decides the quantity.
"""

from __future__ import annotations

from tradefleet_plugins.strategies.ema_cross_params import EmaCrossParams
from tradefleet_runtime.sdk import Bar, Strategy, StrategyContext


class _SymbolState:
    __slots__ = ("count", "direction", "fast", "slow")

    def __init__(self) -> None:
        self.fast = 0.0
        self.slow = 0.0
        self.count = 0
        self.direction = 0


class EmaCross(Strategy):
    params: EmaCrossParams

    def __init__(self, params: EmaCrossParams) -> None:
        super().__init__(params)
        self._state: dict[str, _SymbolState] = {}
        self.on_params_changed()

    def on_params_changed(self) -> None:
        # EMAs keep their values; new periods change only how fast they move from here on.
        self._fast_alpha = 2.0 / (self.params.fast + 1)
        self._slow_alpha = 2.0 / (self.params.slow + 1)
        self._warmup = self.params.slow

    def warmup_bars(self) -> int:
        return self.params.slow

    def on_start(self, ctx: StrategyContext) -> None:
        self._state = {symbol: _SymbolState() for symbol in ctx.symbols}

    def on_bar(self, bar: Bar) -> None:
        state = self._state[bar[0]]
        close = bar[6]
        if state.count:
            state.fast += self._fast_alpha * (close - state.fast)
            state.slow += self._slow_alpha * (close - state.slow)
        else:
            state.fast = state.slow = close
        state.count += 1
        if state.count < self._warmup:
            return
        fast, slow = state.fast, state.slow
        direction = 1 if fast > slow else (-1 if fast < slow else 0)
        if direction == 0 or direction == state.direction:
            return
        previous, state.direction = state.direction, direction
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
