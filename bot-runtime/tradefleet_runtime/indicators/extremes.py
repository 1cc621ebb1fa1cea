"""Rolling maximum and minimum in amortised O(1): a monotonic deque of (index, value)."""

from __future__ import annotations

from collections import deque


class RollingMax:
    """The largest of the last ``period`` values added."""

    __slots__ = ("_index", "_window", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[tuple[int, float]] = deque()
        self._index = 0

    def add(self, value: float) -> float:
        window = self._window
        while window and window[-1][1] <= value:
            window.pop()
        window.append((self._index, value))
        if window[0][0] <= self._index - self.period:
            window.popleft()
        self._index += 1
        return window[0][1]


class RollingMin:
    """The smallest of the last ``period`` values added."""

    __slots__ = ("_index", "_window", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[tuple[int, float]] = deque()
        self._index = 0

    def add(self, value: float) -> float:
        window = self._window
        while window and window[-1][1] >= value:
            window.pop()
        window.append((self._index, value))
        if window[0][0] <= self._index - self.period:
            window.popleft()
        self._index += 1
        return window[0][1]
