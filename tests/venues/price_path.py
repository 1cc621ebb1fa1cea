"""The clock and the scripted price path every fake venue's state shares.

:class:`Clock` is the venue's time (wall clock or frozen, plus an offset a test sets; the
shared ``candle_replay.ReplayClock`` moves it).  :class:`PricePath` is the queue of candles a
test scripts for a market: ``load_path`` (flat one-minute candles from now on),
``load_candles`` (the first ``history`` recorded as past candles, the rest queued) and
``advance`` (the next queued candles played through the venue's ``apply_candle``, which
fills and triggers its orders).  The venue's state names its markets (``_market``), records
a candle in its own shape (``_record_candle``) and plays it (``apply_candle``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Generic, Protocol, TypeVar


class Clock:
    """Wall-clock milliseconds, or a frozen instant, plus an offset the test can set."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self.frozen_ms: int | None = None

    def now_ms(self) -> int:
        base = self.frozen_ms if self.frozen_ms is not None else time.time_ns() // 1_000_000
        return base + self.offset_ms


class CandleLike(Protocol):
    open_time: int
    close: Decimal


C = TypeVar("C", bound=CandleLike)
T = TypeVar("T")  # a fill, as the venue records it


def dec(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class PricePath(Generic[C, T]):
    """``load_path`` / ``load_candles`` / ``advance`` over a venue state's candles."""

    # builds a flat candle: candle_type(open_time, open, high, low, close)
    candle_type: Callable[[int, Decimal, Decimal, Decimal, Decimal], C]
    prices: dict[str, Decimal]
    path: dict[str, list[C]]

    clock: Clock

    @property
    def now(self) -> int:
        return self.clock.now_ms()

    def _market(self, name: str) -> str:
        """The key of market ``name`` in ``prices``/``path``; the venue's error if unknown."""
        raise NotImplementedError

    def _record_candle(self, key: str, candle: C) -> None:
        raise NotImplementedError

    def apply_candle(self, name: str, candle: C) -> list[T]:
        raise NotImplementedError

    def load_path(self, name: str, prices: Iterable[object]) -> None:
        """Queue prices, one flat one-minute candle each; ``advance`` plays them."""
        key = self._market(name)
        start = self.now
        for i, p in enumerate(prices):
            v = dec(p)
            self.path[key].append(self.candle_type(start + i * 60_000, v, v, v, v))

    def load_candles(self, name: str, candles: Iterable[C], history: int = 0) -> None:
        """Queue candles for replay; the first ``history`` become past candles."""
        key = self._market(name)
        items = list(candles)
        for c in items[:history]:
            self._record_candle(key, c)
            self.prices[key] = c.close
        self.path[key].extend(items[history:])

    def advance(self, name: str, steps: int = 1) -> list[T]:
        key = self._market(name)
        fills: list[T] = []
        for _ in range(steps):
            if not self.path[key]:
                break
            fills += self.apply_candle(key, self.path[key].pop(0))
        return fills
