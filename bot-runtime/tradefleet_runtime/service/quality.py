"""Execution quality over a rolling window, with process capability indices.

Traders who run prop-firm accounts cut size or stop when their execution drifts. Each measure
(win rate, slippage, bar-to-order time, reward/risk) keeps its last ``window`` samples; against
the limits in ``spec.quality`` we report Cp and Cpk (``tradefleet_runtime.process_capability``,
the same computation the ``quality-guard`` risk plugin acts on). Their users aim for ≥ 2.9 and
act below 1.67.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from tradefleet_runtime.model import Fill, Trade
from tradefleet_runtime.process_capability import capability_indices, slippage_bps
from tradefleet_runtime.service.api import QualityFigure
from tradefleet_runtime.spec.model import QualityLimit, QualitySpec

MEASURES = ("win_rate", "slippage_bps", "bar_to_order_ms", "reward_risk")


class RollingQuality:
    """Samples per measure, bounded; figures on demand."""

    def __init__(self, spec: QualitySpec) -> None:
        self.spec = spec
        self._samples: dict[str, deque[float]] = {
            name: deque(maxlen=spec.window) for name in MEASURES
        }

    def add(self, measure: str, value: float) -> None:
        if math.isfinite(value):
            self._samples[measure].append(value)

    def restore(self, fills: Sequence[tuple[Fill, float]], trades: Sequence[Trade]) -> None:
        """Continue from earlier runs: their fills' slippage against the prices their orders
        were decided at, and their closed trades' wins, oldest first (the window keeps the
        newest). Time to order and reward/risk are not journaled: they start afresh."""
        for fill, reference in fills:
            if reference > 0.0:
                self.add("slippage_bps", slippage_bps(fill.side, fill.price, reference))
        for trade in trades[-self.spec.window :]:
            self.add("win_rate", 1.0 if trade.net_pnl > 0 else 0.0)

    def figures(self) -> tuple[QualityFigure, ...]:
        out = []
        for name in MEASURES:
            limit: QualityLimit | None = getattr(self.spec, name)
            lower = limit.min if limit else None
            upper = limit.max if limit else None
            count, mean, sigma, cp, cpk = capability_indices(self._samples[name], lower, upper)
            if count < self.spec.min_samples:
                cp = cpk = None
            out.append(QualityFigure(name, count, mean, sigma, cp, cpk))
        return tuple(out)
