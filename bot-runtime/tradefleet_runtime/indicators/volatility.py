"""Volatility and channels: Bollinger Bands, ATR (Wilder), Donchian."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from math import fsum, sqrt
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
    the SMA; ``upper`` and ``lower`` are series too. O(1) per bar.

    Running sums of x and x² lose the width at high prices: x² of a price near 60,000 carries
    ~1e-6 of rounding, as much as the variance of a quiet minute. So the sums are of deviations
    from a reference value of the window (``d = x - reference``: small, exact for nearby
    prices), and the window is summed again exactly (:meth:`_rebase`) whenever the rounding
    they may have gathered since could reach ~1e-10 of the variance: after a jump leaves the
    window, when the reference is far from the prices, and every few hundred bars anyway. The
    bands then agree with an exact two-pass computation to ~1e-10, and a flat window's width
    is 0.
    """

    chart: ClassVar[Mapping[str, str]] = {"middle": PRICE, "upper": PRICE, "lower": PRICE}

    __slots__ = (
        "_drift",
        "_inline",
        "_limit",
        "_push_lower",
        "_push_upper",
        "_reference",
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
        # Σ(x - reference) and Σ(x - reference)² over the window.
        self._reference = 0.0
        self._total = 0.0
        self._squares = 0.0
        # Σ of the squares sum after each bar since the last rebase: what bounds the rounding
        # the sums gathered (≲ a few ulps of it), compared with the variance's own size.
        self._drift = 0.0
        # A rebase keeps the sums' rounding under ~1e-10 of n·variance; it starts at most n
        # times the variance away (the reference is one of the window's values), so the limit
        # stays above that for a long period.
        self._limit = max(_DRIFT_LIMIT, 8.0 * period)
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
        reference = self._reference
        new = value - reference
        old = window.popleft() - reference
        self.count += 1
        total = self._total = self._total + new - old
        squares = self._squares = self._squares + new * new - old * old
        spread = squares - total * total / period
        drift = self._drift = self._drift + squares
        if not drift <= self._limit * spread:  # not: a NaN close rebases too, until it left
            reference, total, spread = self._rebase()
        mean = self.value = reference + total / period
        variance = spread / period
        width = self.k * sqrt(variance) if variance > 0.0 else 0.0
        self._push(mean)
        self._push_upper(mean + width)
        self._push_lower(mean - width)

    def add(self, value: float) -> None:
        window = self._window
        if not window:  # the first value: the reference starts among the prices
            self._reference = value
        window.append(value)
        reference = self._reference
        new = value - reference
        self._total += new
        self._squares += new * new
        self.count += 1
        if len(window) > self.period:
            old = window.popleft() - reference
            self._total -= old
            self._squares -= old * old
        if self.count < self.period:
            self._push(NAN)
            self.upper.append(NAN)
            self.lower.append(NAN)
            return
        period = self.period
        total = self._total
        spread = self._squares - total * total / period
        drift = self._drift = self._drift + self._squares
        if not drift <= self._limit * spread:
            reference, total, spread = self._rebase()
        mean = self.value = reference + total / period
        variance = spread / period
        width = self.k * sqrt(variance) if variance > 0.0 else 0.0
        self._push(mean)
        self.upper.append(mean + width)
        self.lower.append(mean - width)

    def _rebase(self) -> tuple[float, float, float]:
        """Sum the window again, exactly, from its newest value; returns the reference, the
        sum of deviations and n·variance (the sum of squared deviations from the mean).

        O(period), on a few bars in a thousand: the newest value as reference makes a flat
        window's sums exactly 0, so it is never rebased bar after bar.
        """
        window = self._window
        reference = self._reference = window[-1]
        deviations = [value - reference for value in window]
        total = self._total = fsum(deviations)
        squares = self._squares = fsum([d * d for d in deviations])
        self._drift = squares
        return reference, total, squares - total * total / self.period

    def outputs(self) -> dict[str, Series]:
        return {"middle": self.middle, "upper": self.upper, "lower": self.lower}


# How far the rounding the sums gather may grow, in units of n·variance, before a rebase: each
# bar's adds and subtracts round by ≲ 4 ulps of the squares sum, so this keeps the variance
# within ~1e-10 of itself (the bands within ~5e-11), well inside the 1e-9 the docs promise.
_DRIFT_LIMIT = 1e5

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
