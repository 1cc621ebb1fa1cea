"""Oscillators: RSI (Wilder), MACD, Stochastic — seeded exactly as TA-Lib seeds them."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import ClassVar

from tradefleet_runtime.indicators.averages import _check_period
from tradefleet_runtime.indicators.extremes import RollingMax, RollingMin
from tradefleet_runtime.indicators.series import (
    DEFAULT_HISTORY,
    NAN,
    PANEL,
    CloseIndicator,
    Indicator,
    Series,
)
from tradefleet_runtime.model import Bar


class RSI(CloseIndicator):
    """Relative strength index with Wilder's smoothing; first value after ``period + 1`` bars
    (the first change needs two closes; gains and losses are averaged over ``period`` changes).
    """

    __slots__ = ("_gain", "_inline", "_loss", "_previous", "period")

    def __init__(self, period: int = 14, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period, 2)
        super().__init__(period + 1, history)
        self.period = period
        self._previous = NAN
        self._gain = 0.0
        self._loss = 0.0
        self._inline = self._adds_with(_RSI_ADD)

    def update(self, bar: Bar) -> None:
        if not (self._inline and self.count > self.period):
            self.add(bar[6])
            return
        # Seeded (and this instance's add is RSI's own): add's smoothing step, inlined.
        value = bar[6]
        self.count += 1
        change = value - self._previous
        self._previous = value
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        period = self.period
        average_gain = self._gain = (self._gain * (period - 1) + gain) / period
        average_loss = self._loss = (self._loss * (period - 1) + loss) / period
        total = average_gain + average_loss
        rsi = self.value = 100.0 * average_gain / total if total != 0.0 else 0.0
        self._push(rsi)

    def add(self, value: float) -> None:
        count = self.count = self.count + 1
        change = value - self._previous
        self._previous = value
        if count == 1:
            self._push(NAN)
            return
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        period = self.period
        if count <= period + 1:
            # Seed: plain sums of the first `period` changes, averaged once complete.
            self._gain += gain
            self._loss += loss
            if count < period + 1:
                self._push(NAN)
                return
            self._gain /= period
            self._loss /= period
        else:
            self._gain = (self._gain * (period - 1) + gain) / period
            self._loss = (self._loss * (period - 1) + loss) / period
        total = self._gain + self._loss
        self.value = 100.0 * self._gain / total if total != 0.0 else 0.0
        self._push(self.value)


class MACD(CloseIndicator):
    """MACD line (fast EMA − slow EMA), its signal line (EMA of the line) and the histogram.

    ``self[-1]`` and ``line`` are the line; ``signal`` and ``hist`` are series too. As in
    TA-Lib, the fast EMA is seeded on the same bar as the slow one (the SMA of the ``fast``
    closes up to bar ``slow``), so the first values appear after ``slow + signal − 1`` bars.
    """

    chart: ClassVar[Mapping[str, str]] = {"line": PANEL, "signal": PANEL, "hist": PANEL}

    __slots__ = (
        "_closes",
        "_fast",
        "_inline",
        "_line_seed",
        "_push_hist",
        "_push_signal",
        "_slow",
        "_slow_seed",
        "fast_alpha",
        "fast_period",
        "hist",
        "line",
        "line_value",
        "signal",
        "signal_alpha",
        "signal_period",
        "signal_value",
        "slow_alpha",
        "slow_period",
    )

    def __init__(
        self, fast: int = 12, slow: int = 26, signal: int = 9, history: int = DEFAULT_HISTORY
    ) -> None:
        _check_period(fast, 2)
        _check_period(signal)
        if slow <= fast:
            raise ValueError(f"slow ({slow}) must be greater than fast ({fast})")
        super().__init__(slow + signal - 1, history)
        self.fast_period, self.slow_period, self.signal_period = fast, slow, signal
        self.fast_alpha = 2.0 / (fast + 1)
        self.slow_alpha = 2.0 / (slow + 1)
        self.signal_alpha = 2.0 / (signal + 1)
        self._closes: deque[float] = deque(maxlen=fast)
        self._slow_seed = 0.0
        self._line_seed = 0.0
        self._fast = self._slow = NAN
        self.line_value = self.signal_value = NAN
        self.line = self.values  # the primary output
        self.signal = Series(history)
        self.hist = Series(history)
        self._push_signal = self.signal.append
        self._push_hist = self.hist.append
        self._inline = self._adds_with(_MACD_ADD)

    def update(self, bar: Bar) -> None:
        if not (self._inline and self.count >= self.slow_period + self.signal_period - 1):
            self.add(bar[6])
            return
        # Every line seeded (and this instance's add is MACD's own): add's three EMA steps.
        value = bar[6]
        self.count += 1
        fast = self._fast
        fast = self._fast = fast + self.fast_alpha * (value - fast)
        slow = self._slow
        slow = self._slow = slow + self.slow_alpha * (value - slow)
        line = self.line_value = fast - slow
        signal = self.signal_value
        signal = self.signal_value = signal + self.signal_alpha * (line - signal)
        self.value = line
        self._push(line)
        self._push_signal(signal)
        self._push_hist(line - signal)

    def add(self, value: float) -> None:
        count = self.count = self.count + 1
        slow_period = self.slow_period
        if count < slow_period:
            self._closes.append(value)
            self._slow_seed += value
            self._push(NAN)
            self.signal.append(NAN)
            self.hist.append(NAN)
            return
        if count == slow_period:
            self._closes.append(value)
            self._slow = (self._slow_seed + value) / slow_period
            self._fast = sum(self._closes) / self.fast_period
        else:
            self._fast += self.fast_alpha * (value - self._fast)
            self._slow += self.slow_alpha * (value - self._slow)
        line = self.line_value = self._fast - self._slow
        lines = count - slow_period + 1
        if lines < self.signal_period:
            self._line_seed += line
            self._push(NAN)
            self.signal.append(NAN)
            self.hist.append(NAN)
            return
        if lines == self.signal_period:
            self.signal_value = (self._line_seed + line) / self.signal_period
        else:
            self.signal_value += self.signal_alpha * (line - self.signal_value)
        self.value = line
        self._push(line)
        self.signal.append(self.signal_value)
        self.hist.append(line - self.signal_value)

    def outputs(self) -> dict[str, Series]:
        return {"line": self.line, "signal": self.signal, "hist": self.hist}


# The adds the updates above inline, as defined here: an instance whose add is another one
# (a subclass's) has update call it.
_RSI_ADD = RSI.add
_MACD_ADD = MACD.add


class Stochastic(Indicator):
    """Slow stochastic: %K = SMA(``smooth_k``) of the raw %K over ``period`` bars, %D =
    SMA(``d``) of %K. ``self[-1]`` is %K; ``d`` is a series too (TA-Lib ``STOCH``)."""

    chart: ClassVar[Mapping[str, str]] = {"k": PANEL, "d": PANEL}

    __slots__ = (
        "_d_window",
        "_high",
        "_k_window",
        "_low",
        "d",
        "d_period",
        "d_value",
        "period",
        "smooth_k",
    )

    def __init__(
        self, period: int = 14, smooth_k: int = 3, d: int = 3, history: int = DEFAULT_HISTORY
    ) -> None:
        _check_period(period)
        _check_period(smooth_k)
        _check_period(d)
        super().__init__(period + smooth_k + d - 2, history)
        self.period, self.smooth_k, self.d_period = period, smooth_k, d
        self._high = RollingMax(period)
        self._low = RollingMin(period)
        self._k_window: deque[float] = deque()
        self._d_window: deque[float] = deque()
        self.d_value = NAN
        self.d = Series(history)

    def update(self, bar: Bar) -> None:
        self.count += 1
        highest = self._high.add(bar[4])
        lowest = self._low.add(bar[5])
        if self.count >= self.period:
            spread = highest - lowest
            raw = 100.0 * (bar[6] - lowest) / spread if spread != 0.0 else 0.0
            k = _windowed_mean(self._k_window, raw, self.smooth_k)
            if k == k:
                self.d_value = _windowed_mean(self._d_window, k, self.d_period)
                if self.d_value == self.d_value:
                    self.value = k
        self._push(self.value)
        self.d.append(self.d_value if self.value == self.value else NAN)

    def outputs(self) -> dict[str, Series]:
        return {"k": self.values, "d": self.d}


def _windowed_mean(window: deque[float], value: float, size: int) -> float:
    """Append ``value`` and return the mean of the last ``size`` values (NaN until full).

    Small windows (a few bars): summing them each time is as fast as a running sum and keeps
    no drift.
    """
    window.append(value)
    if len(window) > size:
        window.popleft()
    elif len(window) < size:
        return NAN
    return sum(window) / size
