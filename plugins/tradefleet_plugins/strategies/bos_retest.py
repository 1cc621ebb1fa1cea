"""``bos-retest``: a break of structure on a higher timeframe, entered on its retest.

On the higher timeframe (default 5m), a close above the last confirmed swing high is a bullish
break (below the last swing low, bearish). The broken level is then watched on the base
timeframe for ``expiry_bars`` bars:

- **retest**: a bar reaches within ``retest_pips`` of the level and closes on the break's side
  of it → enter in the break's direction, stop ``stop_buffer_pips`` beyond the most extreme
  price since the break (the retest swing), target ``risk_multiple`` × the risk;
- **failed**: a bar closes beyond the level against the break by more than ``retest_pips`` →
  the setup is dropped;
- **expired**: no retest in ``expiry_bars`` bars → dropped.

A level is traded at most once. Each step is logged (``ctx.log``: ``bos-break``,
``bos-retest``, ``bos-failed``, ``bos-expired``).
"""

from __future__ import annotations

from collections.abc import Sequence

from tradefleet_plugins.strategies.bos_retest_params import BosRetestParams
from tradefleet_runtime.sdk import (
    Bar,
    Strategy,
    StrategyContext,
    Subscription,
    Swings,
    parse_timeframe,
)


class Setup:
    """A break waiting for its retest."""

    __slots__ = ("bars_left", "direction", "extreme", "level")

    def __init__(self, direction: int, level: float, bars_left: int, extreme: float) -> None:
        self.direction, self.level, self.bars_left, self.extreme = (
            direction,
            level,
            bars_left,
            extreme,
        )


class BosRetest(Strategy):
    params: BosRetestParams

    def __init__(self, params: BosRetestParams) -> None:
        super().__init__(params)
        self._higher_s = parse_timeframe(params.higher_timeframe)
        self._swings: dict[str, Swings] = {}
        self._used: dict[str, set[int]] = {}  # swing bar times already traded
        self.setups: dict[str, Setup | None] = {}

    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        base = [Subscription(symbol, base_timeframe_s) for symbol in symbols]
        return base + [Subscription(symbol, self._higher_s) for symbol in symbols]

    def on_start(self, ctx: StrategyContext) -> None:
        p = self.params
        for symbol in ctx.symbols:
            swings = Swings(p.swing_left, p.swing_right)
            self._swings[symbol] = self.indicator(swings, symbol, self._higher_s)
            self._used[symbol] = set()
            self.setups[symbol] = None

    def pip(self, symbol: str) -> float:
        return self.params.pip_sizes.get(symbol, self.params.pip_size)

    def on_bar(self, bar: Bar) -> None:
        if bar[1] == self._higher_s:
            self._on_higher(bar)
        elif self.setups[bar[0]] is not None:  # most base bars: no break waiting, no call
            self._on_base(bar)

    def _on_higher(self, bar: Bar) -> None:
        symbol, close = bar[0], bar[6]
        swings = self._swings[symbol]
        used = self._used[symbol]
        if self.setups[symbol] is not None or self.ctx.position(symbol).quantity:
            return
        if swings.high_ts >= 0 and close > swings.swing_high and swings.high_ts not in used:
            used.add(swings.high_ts)
            self._arm(symbol, 1, swings.swing_high)
        elif swings.low_ts >= 0 and close < swings.swing_low and swings.low_ts not in used:
            used.add(swings.low_ts)
            self._arm(symbol, -1, swings.swing_low)

    def _arm(self, symbol: str, direction: int, level: float) -> None:
        # The retest swing is the extreme of the base bars after the break.
        extreme = float("inf") if direction > 0 else float("-inf")
        self.setups[symbol] = Setup(direction, level, self.params.expiry_bars, extreme)
        self.ctx.log("bos-break", symbol=symbol, direction=direction, level=level)

    def _on_base(self, bar: Bar) -> None:
        symbol = bar[0]
        setup = self.setups[symbol]
        if setup is None:
            return
        p = self.params
        pip = self.pip(symbol)
        near = p.retest_pips * pip
        level, direction = setup.level, setup.direction
        high, low, close = bar[4], bar[5], bar[6]
        if direction > 0:
            setup.extreme = min(setup.extreme, low)
            failed = close < level - near
            retest = low <= level + near and close >= level
        else:
            setup.extreme = max(setup.extreme, high)
            failed = close > level + near
            retest = high >= level - near and close <= level
        if failed:
            self._drop(symbol, "bos-failed", level)
        elif retest and not self.ctx.position(symbol).quantity:
            self.setups[symbol] = None
            stop = setup.extreme - direction * p.stop_buffer_pips * pip
            risk = abs(close - stop)
            target = close + direction * p.risk_multiple * risk
            send = self.ctx.buy if direction > 0 else self.ctx.sell
            send(symbol, stop_loss=stop, take_profit=target, tag="bos-retest")
            self.ctx.log("bos-retest", symbol=symbol, level=level, stop=stop, target=target)
        else:
            setup.bars_left -= 1
            if setup.bars_left <= 0:
                self._drop(symbol, "bos-expired", level)

    def _drop(self, symbol: str, why: str, level: float) -> None:
        self.setups[symbol] = None
        self.ctx.log(why, symbol=symbol, level=level)
