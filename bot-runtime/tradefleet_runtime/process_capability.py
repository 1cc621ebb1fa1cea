"""Process capability indices (Cp, Cpk) of a sample against specification limits; pure.

    Cp  = (upper - lower) / (6 σ)                       (needs both limits)
    Cpk = min(upper - μ, μ - lower) / (3 σ)             (one-sided when one limit is set)

σ is the sample standard deviation (n - 1). The service reports them for ``spec.quality``
(``service/quality.py``) and the ``quality-guard`` risk plugin acts on them (through the SDK);
both compute them here so the figure a person reads is the figure the guard acts on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple


def slippage_bps(side: str, price: float, reference: float) -> float:
    """A fill's slippage against the price its order was decided at, in basis points; worse
    for the bot is positive (a buy filled higher, a sell lower). ``side``: "buy" or "sell"."""
    sign = 1.0 if side == "buy" else -1.0
    return (price - reference) / reference * 10_000.0 * sign


class CapabilityFigures(NamedTuple):
    """A sample's size, mean, standard deviation, and its indices (None when undefined: no
    limit, fewer than two samples, or no spread)."""

    size: int
    mean: float
    sigma: float
    cp: float | None
    cpk: float | None


def capability_indices(
    samples: Iterable[float], lower: float | None, upper: float | None
) -> CapabilityFigures:
    """(count, mean, stddev, Cp, Cpk) of ``samples`` against optional limits."""
    values = list(samples)
    count = len(values)
    if count == 0:
        return CapabilityFigures(0, 0.0, 0.0, None, None)
    mean = math.fsum(values) / count
    variance = math.fsum((v - mean) ** 2 for v in values) / (count - 1) if count > 1 else 0.0
    sigma = math.sqrt(variance)
    if count < 2 or sigma == 0.0 or (lower is None and upper is None):
        return CapabilityFigures(count, mean, sigma, None, None)
    cp = (upper - lower) / (6 * sigma) if lower is not None and upper is not None else None
    sides = []
    if upper is not None:
        sides.append((upper - mean) / (3 * sigma))
    if lower is not None:
        sides.append((mean - lower) / (3 * sigma))
    return CapabilityFigures(count, mean, sigma, cp, min(sides))


__all__ = ["CapabilityFigures", "capability_indices"]
