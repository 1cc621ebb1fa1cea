"""Buy when the close is ``band_pct`` below its mean; close at the mean."""

from __future__ import annotations

from collections import deque
from typing import Any

from tradefleet_runtime.sdk import Bar, Strategy, StrategyContext


class MeanReversion(Strategy):
    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.closes: dict[str, deque[float]] = {}

    def warmup_bars(self) -> int:
        return int(self.params.lookback)

    def on_start(self, ctx: StrategyContext) -> None:
        self.closes = {s: deque(maxlen=self.params.lookback) for s in ctx.symbols}

    def on_bar(self, bar: Bar) -> None:
        closes = self.closes[bar.symbol]
        closes.append(bar.close)
        if len(closes) < closes.maxlen:  # type: ignore[operator]
            return
        mean = sum(closes) / len(closes)
        held = self.ctx.position(bar.symbol).quantity
        if not held and bar.close < mean * (1 - self.params.band_pct / 100):
            self.ctx.buy(bar.symbol, stop_loss=bar.close * 0.99, tag="stretch")
        elif held > 0 and bar.close >= mean:
            self.ctx.close(bar.symbol, tag="mean")
