"""ADX with +DI and −DI (Wilder), step for step as TA-Lib computes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from tradefleet_runtime.indicators.averages import _check_period
from tradefleet_runtime.indicators.series import DEFAULT_HISTORY, NAN, PANEL, Indicator, Series
from tradefleet_runtime.indicators.volatility import true_range
from tradefleet_runtime.model import Bar


class ADX(Indicator):
    """Average directional index; ``plus_di`` and ``minus_di`` are series too.

    Directional movement and true range are summed over the first ``period − 1`` changes, then
    Wilder-smoothed; the first ADX is the mean of ``period`` DX values (after ``2 × period``
    bars) and is Wilder-smoothed after that.
    """

    chart: ClassVar[Mapping[str, str]] = {"adx": PANEL, "plus_di": PANEL, "minus_di": PANEL}

    __slots__ = (
        "_close",
        "_dx_total",
        "_high",
        "_low",
        "_minus_dm",
        "_plus_dm",
        "_tr",
        "minus_di",
        "period",
        "plus_di",
    )

    def __init__(self, period: int = 14, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period, 2)
        super().__init__(2 * period, history)
        self.period = period
        self._high = self._low = self._close = NAN
        self._plus_dm = self._minus_dm = self._tr = 0.0
        self._dx_total = 0.0
        self.plus_di = Series(history)
        self.minus_di = Series(history)

    def update(self, bar: Bar) -> None:
        count = self.count = self.count + 1
        high, low = bar[4], bar[5]
        up, down = high - self._high, self._low - low
        tr = true_range(high, low, self._close)
        self._high, self._low, self._close = high, low, bar[6]
        period = self.period
        plus_di = minus_di = NAN
        if count > 1:
            if count > period:  # smoothing starts once period − 1 changes are summed
                self._plus_dm -= self._plus_dm / period
                self._minus_dm -= self._minus_dm / period
                self._tr -= self._tr / period
            if down > 0.0 and up < down:
                self._minus_dm += down
            elif up > 0.0 and up > down:
                self._plus_dm += up
            self._tr += tr
            if count > period and self._tr != 0.0:
                plus_di = 100.0 * self._plus_dm / self._tr
                minus_di = 100.0 * self._minus_dm / self._tr
                both = plus_di + minus_di
                dx = 100.0 * abs(minus_di - plus_di) / both if both != 0.0 else 0.0
                if count <= 2 * period:
                    self._dx_total += dx
                    if count == 2 * period:
                        self.value = self._dx_total / period
                else:
                    self.value = (self.value * (period - 1) + dx) / period
        self._push(self.value)
        self.plus_di.append(plus_di)
        self.minus_di.append(minus_di)

    def outputs(self) -> dict[str, Series]:
        return {"adx": self.values, "plus_di": self.plus_di, "minus_di": self.minus_di}
