"""ADX with +DI and −DI (Wilder), step for step as TA-Lib computes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from tradefleet_runtime.indicators.averages import _check_period
from tradefleet_runtime.indicators.series import DEFAULT_HISTORY, NAN, PANEL, Indicator, Series
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
        "_push_minus",
        "_push_plus",
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
        self._push_plus = self.plus_di.append
        self._push_minus = self.minus_di.append

    def update(self, bar: Bar) -> None:
        count = self.count = self.count + 1
        high, low, previous = bar[4], bar[5], self._close
        up, down = high - self._high, self._low - low
        # ``true_range(high, low, previous)``, inlined: one call fewer per bar.
        tr = (high if high > previous else previous) - (low if low < previous else previous)
        self._high, self._low, self._close = high, low, bar[6]
        period = self.period
        plus_di = minus_di = NAN
        if count > 1:
            plus_dm, minus_dm, total_tr = self._plus_dm, self._minus_dm, self._tr
            if count > period:  # smoothing starts once period − 1 changes are summed
                plus_dm -= plus_dm / period
                minus_dm -= minus_dm / period
                total_tr -= total_tr / period
            if down > 0.0 and up < down:
                minus_dm += down
            elif up > 0.0 and up > down:
                plus_dm += up
            total_tr += tr
            self._plus_dm, self._minus_dm, self._tr = plus_dm, minus_dm, total_tr
            if count > period and total_tr != 0.0:
                plus_di = 100.0 * plus_dm / total_tr
                minus_di = 100.0 * minus_dm / total_tr
                both = plus_di + minus_di
                dx = 100.0 * abs(minus_di - plus_di) / both if both != 0.0 else 0.0
                if count <= 2 * period:
                    self._dx_total += dx
                    if count == 2 * period:
                        self.value = self._dx_total / period
                else:
                    self.value = (self.value * (period - 1) + dx) / period
        self._push(self.value)
        self._push_plus(plus_di)
        self._push_minus(minus_di)

    def outputs(self) -> dict[str, Series]:
        return {"adx": self.values, "plus_di": self.plus_di, "minus_di": self.minus_di}
