"""Execution quality over a rolling window, with process capability indices.

Traders who run prop-firm accounts cut size or stop when their execution drifts. Each measure
(win rate, slippage, bar-to-order time, reward/risk) keeps its last ``window`` samples; against
the limits in ``spec.quality`` we report

    Cp  = (upper - lower) / (6 σ)                       (needs both limits)
    Cpk = min(upper - μ, μ - lower) / (3 σ)             (one-sided when one limit is set)

Their users aim for ≥ 2.9 and act below 1.67.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from tradefleet_runtime.service.api import QualityFigure
from tradefleet_runtime.spec.model import QualityLimit, QualitySpec

MEASURES = ("win_rate", "slippage_bps", "bar_to_order_ms", "reward_risk")


def capability(
    samples: Iterable[float], lower: float | None, upper: float | None
) -> tuple[int, float, float, float | None, float | None]:
    """(count, mean, stddev, Cp, Cpk) of ``samples`` against optional limits."""
    values = list(samples)
    count = len(values)
    if count == 0:
        return 0, 0.0, 0.0, None, None
    mean = math.fsum(values) / count
    variance = math.fsum((v - mean) ** 2 for v in values) / (count - 1) if count > 1 else 0.0
    sigma = math.sqrt(variance)
    if count < 2 or sigma == 0.0 or (lower is None and upper is None):
        return count, mean, sigma, None, None
    cp = (upper - lower) / (6 * sigma) if lower is not None and upper is not None else None
    sides = []
    if upper is not None:
        sides.append((upper - mean) / (3 * sigma))
    if lower is not None:
        sides.append((mean - lower) / (3 * sigma))
    return count, mean, sigma, cp, min(sides)


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

    def figures(self) -> tuple[QualityFigure, ...]:
        out = []
        for name in MEASURES:
            limit: QualityLimit | None = getattr(self.spec, name)
            lower = limit.min if limit else None
            upper = limit.max if limit else None
            count, mean, sigma, cp, cpk = capability(self._samples[name], lower, upper)
            if count < self.spec.min_samples:
                cp = cpk = None
            out.append(QualityFigure(name, count, mean, sigma, cp, cpk))
        return tuple(out)
