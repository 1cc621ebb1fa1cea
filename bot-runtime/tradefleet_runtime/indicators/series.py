"""Bounded histories and the base of every indicator.

A history is read like a list from its end: ``[-1]`` is the newest value (the bar just handled),
``[-2]`` the one before. It keeps the last ``history`` values only, so memory stays bounded on a
bot that runs for months, and appending is O(1).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Literal

from tradefleet_runtime.model import Bar

#: Values an indicator keeps unless told otherwise: enough for any look-back a rule reads.
DEFAULT_HISTORY = 256

NAN = float("nan")

#: Where a chart draws an output: over the candles, or in the indicator's own panel below.
PRICE: Literal["price"] = "price"
PANEL: Literal["panel"] = "panel"
_LABEL_PARAMS = ("period", "fast_period", "slow_period", "signal_period", "k", "left", "right")


class Series:
    """The last ``maxlen`` values of one output, oldest first; index it from the end."""

    __slots__ = ("_values", "append")

    def __init__(self, maxlen: int = DEFAULT_HISTORY) -> None:
        if maxlen < 1:
            raise ValueError(f"history must hold at least one value, not {maxlen}")
        self._values: deque[float] = deque(maxlen=maxlen)
        # Bound once: indicators call it on every bar.
        self.append = self._values.append

    def __getitem__(self, index: int) -> float:
        return self._values[index]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[float]:
        return iter(self._values)

    def __repr__(self) -> str:
        tail = ", ".join(f"{v:.6g}" for v in list(self._values)[-3:])
        return f"Series([... {tail}], len={len(self._values)})"


class Indicator:
    """An incremental indicator: ``update(bar)`` once per closed bar, O(1) each.

    ``value`` is the newest value (NaN until ``ready``), ``self[-k]`` reads the history of the
    primary output; indicators with several outputs (MACD, Bollinger, ...) expose each as a
    :class:`Series` attribute too. ``warmup`` is how many bars it needs before its first value:
    a strategy's default ``warmup_bars()`` is the largest of its indicators'.

    ``chart`` says where a chart draws each output: ``PRICE`` over the candles (averages,
    bands, channels), ``PANEL`` in the indicator's own panel (oscillators); outputs it leaves
    out are not drawn.
    """

    chart: ClassVar[Mapping[str, str]] = {"value": PANEL}

    __slots__ = ("_push", "count", "history", "value", "values", "warmup")

    def __init__(self, warmup: int, history: int = DEFAULT_HISTORY) -> None:
        self.warmup = warmup
        self.history = history
        self.count = 0  # bars seen
        self.value = NAN
        self.values = Series(history)
        self._push = self.values.append

    @property
    def ready(self) -> bool:
        return self.count >= self.warmup

    def update(self, bar: Bar) -> None:
        raise NotImplementedError

    def outputs(self) -> dict[str, Series]:
        """Every output by name (charts draw these); the primary one first."""
        return {"value": self.values}

    def __getitem__(self, index: int) -> float:
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)

    def label(self) -> str:
        """A short name for legends: the class and its periods, e.g. ``EMA(20)``."""
        params = [
            getattr(self, name)
            for name in _LABEL_PARAMS
            if isinstance(getattr(self, name, None), int | float)
        ]
        shown = ",".join(f"{p:g}" for p in params)
        return f"{type(self).__name__}({shown})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(value={self.value:.6g}, bars={self.count})"


class CloseIndicator(Indicator):
    """An indicator of one number per bar (the close by default); ``add`` takes that number.

    ``update(bar)`` is ``add(bar.close)``. A hot indicator may do its ``add``'s arithmetic in
    ``update`` directly (one call per bar instead of two), but only on an instance whose ``add``
    is that very one (:meth:`_adds_with`): a subclass with its own ``add`` still sees every
    close through it, however its ``update`` is reached.
    """

    __slots__ = ()

    def _adds_with(self, add: Callable[[Any, float], None]) -> bool:
        """Whether this instance's ``add`` is ``add`` (the function ``update`` inlines)."""
        return type(self).add is add

    def update(self, bar: Bar) -> None:
        self.add(bar[6])

    def add(self, value: float) -> None:
        raise NotImplementedError


class BarHistory:
    """The last ``maxlen`` closed bars of one series: ``[-1]`` is the bar being handled."""

    __slots__ = ("_bars", "update")

    def __init__(self, maxlen: int = DEFAULT_HISTORY) -> None:
        if maxlen < 1:
            raise ValueError(f"history must hold at least one bar, not {maxlen}")
        self._bars: deque[Bar] = deque(maxlen=maxlen)
        self.update = self._bars.append

    @property
    def maxlen(self) -> int:
        return self._bars.maxlen or 0

    def __getitem__(self, index: int) -> Bar:
        return self._bars[index]

    def __len__(self) -> int:
        return len(self._bars)

    def __iter__(self) -> Iterator[Bar]:
        return iter(self._bars)
