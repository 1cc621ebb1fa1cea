"""Volatility and channels: Bollinger Bands, ATR (Wilder), Donchian."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from math import sqrt
from typing import ClassVar

from tradefleet_runtime.indicators.averages import _check_period
from tradefleet_runtime.indicators.extremes import RollingMax, RollingMin
from tradefleet_runtime.indicators.series import (
    DEFAULT_HISTORY,
    NAN,
    PRICE,
    CloseIndicator,
    Indicator,
    Series,
)
from tradefleet_runtime.model import Bar


class Bollinger(CloseIndicator):
    """SMA(``period``) ± ``k`` population standard deviations. ``self[-1]`` and ``middle`` are
    the SMA; ``upper`` and ``lower`` are series too. Running sums of x and x²: O(1) per bar."""

    chart: ClassVar[Mapping[str, str]] = {"middle": PRICE, "upper": PRICE, "lower": PRICE}

    __slots__ = (
        "_inline",
        "_push_lower",
        "_push_upper",
        "_squares",
        "_total",
        "_window",
        "k",
        "lower",
        "middle",
        "period",
        "upper",
    )

    def __init__(self, period: int = 20, k: float = 2.0, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period)
        super().__init__(period, history)
        self.period, self.k = period, k
        self._window: deque[float] = deque()
        self._total = 0.0
        self._squares = 0.0
        self.middle = self.values
        self.upper = Series(history)
        self.lower = Series(history)
        self._push_upper = self.upper.append
        self._push_lower = self.lower.append
        self._inline = self._adds_with(_BOLLINGER_ADD)

    def update(self, bar: Bar) -> None:
        period = self.period
        window = self._window
        if not (self._inline and len(window) == period and self.count >= period):
            self.add(bar[6])
            return
        # A full window (and this instance's add is Bollinger's own): add's arithmetic in
        # the same order — the new value in, the oldest out, mean and width.
        value = bar[6]
        window.append(value)
        old = window.popleft()
        total = self._total + value
        squares = self._squares + value * value
        self.count += 1
        total = self._total = total - old
        squares = self._squares = squares - old * old
        mean = self.value = total / period
        variance = squares / period - mean * mean
        width = self.k * sqrt(variance) if variance > 0.0 else 0.0
        self._push(mean)
        self._push_upper(mean + width)
        self._push_lower(mean - width)

    def add(self, value: float) -> None:
        window = self._window
        window.append(value)
        self._total += value
        self._squares += value * value
        self.count += 1
        if len(window) > self.period:
            old = window.popleft()
            self._total -= old
            self._squares -= old * old
        if self.count < self.period:
            self._push(NAN)
            self.upper.append(NAN)
            self.lower.append(NAN)
            return
        mean = self.value = self._total / self.period
        variance = self._squares / self.period - mean * mean
        width = self.k * sqrt(variance) if variance > 0.0 else 0.0
        self._push(mean)
        self.upper.append(mean + width)
        self.lower.append(mean - width)

    def outputs(self) -> dict[str, Series]:
        return {"middle": self.middle, "upper": self.upper, "lower": self.lower}


# The add Bollinger's update inlines, as defined here (not a subclass's).
_BOLLINGER_ADD = Bollinger.add


def true_range(high: float, low: float, previous_close: float) -> float:
    """The bar's range, stretched to the previous close when the bar gapped away from it."""
    top = high if high > previous_close else previous_close
    bottom = low if low < previous_close else previous_close
    return top - bottom


class ATR(Indicator):
    """Average true range with Wilder's smoothing; first value after ``period + 1`` bars (the
    first bar has no previous close, so its range is not counted, as in TA-Lib)."""

    __slots__ = ("_previous_close", "_total", "period")

    def __init__(self, period: int = 14, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period)
        super().__init__(period + 1, history)
        self.period = period
        self._previous_close = NAN
        self._total = 0.0

    def update(self, bar: Bar) -> None:
        count = self.count = self.count + 1
        previous = self._previous_close
        self._previous_close = bar[6]
        if count > 1:
            # ``true_range(high, low, previous)``, inlined: one call fewer per bar.
            high, low = bar[4], bar[5]
            tr = (high if high > previous else previous) - (low if low < previous else previous)
            period = self.period
            if count <= period + 1:
                self._total += tr
                if count == period + 1:
                    self.value = self._total / period
            else:
                self.value = (self.value * (period - 1) + tr) / period
        self._push(self.value)


class Donchian(Indicator):
    """Highest high and lowest low of the last ``period`` bars, the current bar included.

    ``self[-1]`` and ``upper`` are the highest high; ``lower`` and ``middle`` are series too.
    A breakout of the *previous* channel compares a close with ``upper[-2]``.
    """

    chart: ClassVar[Mapping[str, str]] = {"upper": PRICE, "lower": PRICE, "middle": PRICE}

    __slots__ = ("_high", "_low", "lower", "middle", "period", "upper")

    def __init__(self, period: int = 20, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period)
        super().__init__(period, history)
        self.period = period
        self._high = RollingMax(period)
        self._low = RollingMin(period)
        self.upper = self.values
        self.lower = Series(history)
        self.middle = Series(history)

    def update(self, bar: Bar) -> None:
        self.count += 1
        high = self._high.add(bar[4])
        low = self._low.add(bar[5])
        if self.count < self.period:
            high = low = NAN
        self.value = high
        self._push(high)
        self.lower.append(low)
        self.middle.append((high + low) / 2.0)

    def outputs(self) -> dict[str, Series]:
        return {"upper": self.upper, "lower": self.lower, "middle": self.middle}
