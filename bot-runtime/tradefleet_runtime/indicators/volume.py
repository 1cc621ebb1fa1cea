"""Volume-weighted average price of the typical price ``(high + low + close) / 3``: over a
rolling window of bars, or since the start of the current session."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import ClassVar

from tradefleet_runtime.indicators.averages import _check_period
from tradefleet_runtime.indicators.series import DEFAULT_HISTORY, NAN, PRICE, Indicator
from tradefleet_runtime.model import Bar

DAY = 86_400


class VWAP(Indicator):
    """Rolling VWAP over the last ``period`` bars (NaN while their volume is zero)."""

    chart: ClassVar[Mapping[str, str]] = {"value": PRICE}

    __slots__ = ("_volume", "_weighted", "_window", "period")

    def __init__(self, period: int = 20, history: int = DEFAULT_HISTORY) -> None:
        _check_period(period)
        super().__init__(period, history)
        self.period = period
        self._window: deque[tuple[float, float]] = deque()
        self._weighted = 0.0
        self._volume = 0.0

    def update(self, bar: Bar) -> None:
        volume = bar[7]
        weighted = (bar[4] + bar[5] + bar[6]) / 3.0 * volume
        window = self._window
        window.append((weighted, volume))
        self._weighted += weighted
        self._volume += volume
        self.count += 1
        if len(window) > self.period:
            old_weighted, old_volume = window.popleft()
            self._weighted -= old_weighted
            self._volume -= old_volume
        if self.count >= self.period and self._volume > 0.0:
            self.value = self._weighted / self._volume
        else:
            self.value = NAN
        self._push(self.value)


class SessionVWAP(Indicator):
    """VWAP since the session began: sessions start every day at ``session_start_s`` seconds
    after midnight UTC (0: midnight). A bar belongs to the session its open time falls in."""

    chart: ClassVar[Mapping[str, str]] = {"value": PRICE}

    __slots__ = ("_session", "_volume", "_weighted", "session_start_s")

    def __init__(self, session_start_s: int = 0, history: int = DEFAULT_HISTORY) -> None:
        if not 0 <= session_start_s < DAY:
            raise ValueError(f"session_start_s must be in [0, {DAY}), not {session_start_s}")
        super().__init__(1, history)
        self.session_start_s = session_start_s
        self._session = -1
        self._weighted = 0.0
        self._volume = 0.0

    def update(self, bar: Bar) -> None:
        session = (bar[2] - self.session_start_s) // DAY
        if session != self._session:
            self._session = session
            self._weighted = self._volume = 0.0
        volume = bar[7]
        self._weighted += (bar[4] + bar[5] + bar[6]) / 3.0 * volume
        self._volume += volume
        self.count += 1
        self.value = self._weighted / self._volume if self._volume > 0.0 else NAN
        self._push(self.value)
