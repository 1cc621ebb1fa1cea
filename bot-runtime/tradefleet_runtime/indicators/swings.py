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
        "_after",
        "_before",
        "_highs",
        "_lows",
        "_push_high",
        "_push_low",
        "_size",
        "_stamps",
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
        size = left + right + 1
        super().__init__(size, history)
        self.left, self.right = left, right
        # The window's open times, highs and lows side by side (no tuple built per bar).
        self._size = size
        self._stamps: deque[int] = deque(maxlen=size)
        self._highs: deque[float] = deque(maxlen=size)
        self._lows: deque[float] = deque(maxlen=size)
        # Window positions before and after the middle bar, nearest first: a neighbour is
        # the likeliest to rule a bar out, and the first failed comparison ends the check.
        self._before = tuple(range(left - 1, -1, -1))
        self._after = tuple(range(left + 1, size))
        self.swing_high = self.swing_low = NAN
        self.high_ts = self.low_ts = -1
        self.last = 0
        self.new_high = self.new_low = False  # confirmed on the bar just handled
        self.high = Series(history)
        self.low = Series(history)
        self._push_high = self.high.append
        self._push_low = self.low.append

    def update(self, bar: Bar) -> None:
        highs, lows = self._highs, self._lows
        self._stamps.append(bar[2])
        highs.append(bar[4])
        lows.append(bar[5])
        count = self.count = self.count + 1
        new_high = new_low = False
        if count >= self._size:
            # The middle bar is a swing high when every high before it is below its high and
            # none after it is above; the same comparisons as ``all(b < high for b in
            # before) and all(b <= high for b in after)``, stopping at the first that fails.
            left = self.left
            high = highs[left]
            for i in self._before:
                if not highs[i] < high:
                    break
            else:
                for i in self._after:
                    if not highs[i] <= high:
                        break
                else:
                    new_high = True
                    self.swing_high, self.high_ts = high, self._stamps[left]
                    self.last = 1
            low = lows[left]
            for i in self._before:
                if not lows[i] > low:
                    break
            else:
                for i in self._after:
                    if not lows[i] >= low:
                        break
                else:
                    new_low = True
                    self.swing_low, self.low_ts = low, self._stamps[left]
                    # An outside bar that is both: the later extreme decides nothing, keep the
                    # high.
                    if not new_high:
                        self.last = -1
        self.new_high, self.new_low = new_high, new_low
        value = self.value = float(self.last)
        self._push(value)
        self._push_high(self.swing_high)
        self._push_low(self.swing_low)

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
        # The swing changes only on a bar that confirmed a point (and both are known).
        if swings.new_high or swings.new_low:
            high_ts, low_ts = swings.high_ts, swings.low_ts
            if high_ts >= 0 and low_ts >= 0:
                if high_ts > low_ts:
                    self.direction, self.start, self.end = 1, swings.swing_low, swings.swing_high
                elif low_ts > high_ts:
                    self.direction, self.start, self.end = -1, swings.swing_high, swings.swing_low
        # ``retracement(0.618)``'s arithmetic.
        end = self.end
        value = self.value = end - 0.618 * (end - self.start)
        self._push(value)

    def retracement(self, ratio: float) -> float:
        return self.end - ratio * (self.end - self.start)

    def extension(self, ratio: float) -> float:
        return self.start + ratio * (self.end - self.start)

    def levels(self) -> dict[float, float]:
        """The usual retracement levels by ratio (NaN before the first swing)."""
        return {ratio: self.retracement(ratio) for ratio in RETRACEMENTS}
