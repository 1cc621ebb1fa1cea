"""Moving averages: SMA, EMA, WMA (as TA-Lib computes them)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import ClassVar

from tradefleet_runtime.indicators.series import DEFAULT_HISTORY, PRICE, CloseIndicator
from tradefleet_runtime.model import Bar


def _check_period(period: int, least: int = 1) -> None:
    if period < least:
        raise ValueError(f"period must be at least {least}, not {period}")


class SMA(CloseIndicator):
    """Simple moving average of the last ``period`` values (a running sum: O(1) per bar)."""

    chart: ClassVar[Mapping[str, str]] = {"value": PRICE}

    __slots__ = ("_total", "_window", "period")

    def __init__(self, period: int, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period)
        super().__init__(period, history)
        self.period = period
        self._window: deque[float] = deque()
        self._total = 0.0

    def add(self, value: float) -> None:
        window = self._window
        window.append(value)
        self._total += value
        self.count += 1
        if len(window) > self.period:
            self._total -= window.popleft()
        if self.count >= self.period:
            self.value = self._total / self.period
        self._push(self.value)


class EMA(CloseIndicator):
    """Exponential moving average, ``alpha = 2 / (period + 1)``.

    Seeded, like TA-Lib, with the SMA of the first ``period`` values (first value after
    ``period`` bars); ``seed_first=True`` seeds with the first value instead and has a value
    from the first bar (``ema-cross``'s historical definition).
    """

    chart: ClassVar[Mapping[str, str]] = {"value": PRICE}

    __slots__ = ("_inline_from", "_seed_total", "alpha", "period", "seed_first")

    def __init__(
        self, period: int, *, seed_first: bool = False, history: int = DEFAULT_HISTORY
    ) -> None:
        _check_period(period)
        super().__init__(1 if seed_first else period, history)
        self.period = period
        self.alpha = 2.0 / (period + 1)
        self.seed_first = seed_first
        self._seed_total = 0.0
        # From this count on, update() does add's multiply-add itself (never, with a subclass's
        # own add).
        self._inline_from = self.warmup if self._adds_with(_EMA_ADD) else math.inf

    def update(self, bar: Bar) -> None:
        if self.count >= self._inline_from:  # seeded: one multiply-add, as ``add`` does it
            current = self.value
            current += self.alpha * (bar[6] - current)
            self.value = current
            self.count += 1
            self._push(current)
        else:
            self.add(bar[6])

    def add(self, value: float) -> None:
        count = self.count = self.count + 1
        if count > self.warmup:
            self.value += self.alpha * (value - self.value)
        elif self.seed_first:
            self.value = value
        else:
            self._seed_total += value
            if count == self.period:
                self.value = self._seed_total / self.period
        self._push(self.value)


class WMA(CloseIndicator):
    """Linearly weighted moving average (weights 1..period, newest heaviest), O(1) per bar."""

    chart: ClassVar[Mapping[str, str]] = {"value": PRICE}

    __slots__ = ("_divisor", "_numerator", "_total", "_window", "period")

    def __init__(self, period: int, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period)
        super().__init__(period, history)
        self.period = period
        self._window: deque[float] = deque()
        self._numerator = 0.0  # Σ weight × value over the window
        self._total = 0.0  # Σ value over the window
        self._divisor = period * (period + 1) / 2.0

    def add(self, value: float) -> None:
        window = self._window
        self.count += 1
        if len(window) < self.period:
            window.append(value)
            self._numerator += len(window) * value
            self._total += value
        else:
            # Every weight drops by one (−total) and the new value enters with the top weight.
            self._numerator += self.period * value - self._total
            self._total += value - window.popleft()
            window.append(value)
        if self.count >= self.period:
            self.value = self._numerator / self._divisor
        self._push(self.value)


# The add EMA.update inlines, as defined here (not as a subclass or a patch redefines it): an
# instance whose add is another one has update call it.
_EMA_ADD = EMA.add
