"""Swing highs and lows (fractals) and the Fibonacci levels of the last swing.

A bar is a swing high when its high is above the highs of the ``left`` bars before it and not
below those of the ``right`` bars after it (lows mirrored). It is known only ``right`` bars
later — that is when it is *confirmed* and shows up here, never earlier (no lookahead).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import ClassVar

from tradefleet_runtime.indicators.series import DEFAULT_HISTORY, NAN, PRICE, Indicator, Series
from tradefleet_runtime.model import Bar

#: Retracement ratios traders watch, and the usual extensions.
RETRACEMENTS = (0.236, 0.382, 0.5, 0.618, 0.786)
EXTENSIONS = (1.272, 1.618, 2.0)


class Swings(Indicator):
    """Confirmed swing points. ``high``/``low`` are series of the last confirmed swing high and
    low prices; ``high_ts``/``low_ts`` their bars' open times; ``last`` is +1 when the newest
    confirmed point is a high, −1 a low, 0 none yet. ``self[-1]`` is ``last``."""

    chart: ClassVar[Mapping[str, str]] = {"high": PRICE, "low": PRICE}

    __slots__ = (
        "_bars",
        "high",
        "high_ts",
        "last",
        "left",
        "low",
        "low_ts",
        "new_high",
        "new_low",
        "right",
        "swing_high",
        "swing_low",
    )

    def __init__(self, left: int = 2, right: int = 2, history: int = DEFAULT_HISTORY) -> None:
        if left < 1 or right < 0:
            raise ValueError(f"need left >= 1 and right >= 0 bars, not {left} and {right}")
        super().__init__(left + right + 1, history)
        self.left, self.right = left, right
        self._bars: deque[tuple[int, float, float]] = deque(maxlen=left + right + 1)
        self.swing_high = self.swing_low = NAN
        self.high_ts = self.low_ts = -1
        self.last = 0
        self.new_high = self.new_low = False  # confirmed on the bar just handled
        self.high = Series(history)
        self.low = Series(history)

    def update(self, bar: Bar) -> None:
        bars = self._bars
        bars.append((bar[2], bar[4], bar[5]))
        self.count += 1
        self.new_high = self.new_low = False
        if len(bars) == bars.maxlen:
            left = self.left
            ts, high, low = bars[left]
            before = [bars[i] for i in range(left)]
            after = [bars[i] for i in range(left + 1, len(bars))]
            if all(b[1] < high for b in before) and all(b[1] <= high for b in after):
                self.swing_high, self.high_ts, self.new_high = high, ts, True
                self.last = 1
            if all(b[2] > low for b in before) and all(b[2] >= low for b in after):
                self.swing_low, self.low_ts, self.new_low = low, ts, True
                # An outside bar that is both: the later extreme decides nothing, keep the high.
                self.last = -1 if not self.new_high else self.last
        self.value = float(self.last)
        self._push(self.value)
        self.high.append(self.swing_high)
        self.low.append(self.swing_low)

    def outputs(self) -> dict[str, Series]:
        return {"last": self.values, "high": self.high, "low": self.low}


class Fibonacci(Indicator):
    """Fibonacci levels of the last swing between a confirmed low and high (in either order).

    ``direction`` is +1 when the swing went up (low, then high), −1 down, 0 before the first
    swing. ``retracement(r)`` is the price ``r`` of the way back from the swing's end toward its
    start; ``extension(e)`` is ``e`` times the swing measured from its start. ``self[-1]`` is the
    61.8% retracement.
    """

    chart: ClassVar[Mapping[str, str]] = {"value": PRICE}

    __slots__ = ("direction", "end", "start", "swings")

    def __init__(self, left: int = 3, right: int = 3, history: int = DEFAULT_HISTORY) -> None:
        self.swings = Swings(left, right, history=2)
        super().__init__(self.swings.warmup, history)
        self.direction = 0
        self.start = self.end = NAN

    def update(self, bar: Bar) -> None:
        swings = self.swings
        swings.update(bar)
        self.count += 1
        if swings.high_ts >= 0 and swings.low_ts >= 0:
            if swings.high_ts > swings.low_ts:
                self.direction, self.start, self.end = 1, swings.swing_low, swings.swing_high
            elif swings.low_ts > swings.high_ts:
                self.direction, self.start, self.end = -1, swings.swing_high, swings.swing_low
        self.value = self.retracement(0.618)
        self._push(self.value)

    def retracement(self, ratio: float) -> float:
        return self.end - ratio * (self.end - self.start)

    def extension(self, ratio: float) -> float:
        return self.start + ratio * (self.end - self.start)

    def levels(self) -> dict[float, float]:
        """The usual retracement levels by ratio (NaN before the first swing)."""
        return {ratio: self.retracement(ratio) for ratio in RETRACEMENTS}
