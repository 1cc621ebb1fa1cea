"""Candles played on a fake venue's own clock, for live data feeds under test.

A live feed waits for candles to close. :class:`ReplayClock` is a feed clock (``time`` and
``sleep``) whose sleep moves the fake venue's frozen clock forward instead of waiting, and plays
each scripted candle as the venue's time passes it, in three trades: at its open (flat at the
open), half-way (its high) and in its last second (its low and close); each brings a third of
its volume. Until its last second the venue shows it with the wrong low, close and volume, so
a feed that ever hands out a forming candle hands out one that differs from the script.

The venue's clock may run ``offset_ms`` apart from the local clock the feed reads
(``clock.offset_ms`` on the fake): candles follow the venue's time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.venues.binance import state as binance_state
from tests.venues.bybit import state as bybit_state

# (symbol, open_ms, open, high, low, close, volume) -> the fake records it
Apply = Callable[[str, int, Decimal, Decimal, Decimal, Decimal, Decimal], None]


@dataclass(frozen=True)
class ScriptCandle:
    symbol: str
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float = 10.0


class ReplayClock:
    """A feed clock that moves a fake venue's time and plays scripted candles on it."""

    def __init__(
        self,
        venue_clock: Any,
        apply: Apply,
        candles: Iterable[ScriptCandle],
        *,
        start_ms: int,
        timeframe_ms: int = 60_000,
        on_sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.venue_clock = venue_clock
        self.apply = apply
        self.timeframe_ms = timeframe_ms
        self.on_sleep = on_sleep
        self.slept: list[float] = []
        # (due venue ms, sequence, phase, candle): the three trades of each candle
        self._events: list[tuple[int, int, int, ScriptCandle]] = []
        offsets = (0, timeframe_ms // 2, timeframe_ms - 1_000)
        for i, candle in enumerate(candles):
            for phase, offset in enumerate(offsets):
                event = (candle.open_ms + offset, 3 * i + phase, phase, candle)
                heapq.heappush(self._events, event)
        self._local_ms = float(start_ms)
        venue_clock.frozen_ms = start_ms
        self._play()

    def venue_ms(self) -> int:
        return int(self.venue_clock.now_ms())

    def time(self) -> float:
        return self._local_ms / 1000  # the local clock: the venue's without its offset

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.slept.append(seconds)
        self._local_ms += seconds * 1000
        self.venue_clock.frozen_ms = int(self._local_ms)
        self._play()
        if self.on_sleep is not None:
            self.on_sleep(seconds)

    def remaining(self) -> int:
        return len(self._events)

    def _play(self) -> None:
        now = self.venue_ms()
        while self._events and self._events[0][0] <= now:
            due, _, phase, c = heapq.heappop(self._events)
            third = Decimal(repr(c.volume)) / 3
            o = Decimal(repr(c.open))
            if phase == 0:
                self.apply(c.symbol, due, o, o, o, o, third)
            elif phase == 1:
                high = Decimal(repr(c.high))
                self.apply(c.symbol, due, high, high, high, high, third)
            else:
                low, close = Decimal(repr(c.low)), Decimal(repr(c.close))
                self.apply(c.symbol, due, low, low, low, low, Decimal(repr(c.volume)) - 2 * third)
                self.apply(c.symbol, due, close, close, close, close, Decimal(0))


def binance_apply(fake: Any, market: str) -> Apply:
    """Record candles on a FakeBinance market ("spot" or "usdm")."""
    engine = fake.state.spot if market == "spot" else fake.state.usdm

    def apply(
        symbol: str, ms: int, o: Decimal, h: Decimal, low: Decimal, c: Decimal, v: Decimal
    ) -> None:
        with fake.state.lock:
            engine.apply_candle(symbol, binance_state.Candle(ms, o, h, low, c, v))

    return apply


def bybit_apply(fake: Any) -> Apply:
    """Record candles on a FakeBybit (linear)."""

    def apply(
        symbol: str, ms: int, o: Decimal, h: Decimal, low: Decimal, c: Decimal, v: Decimal
    ) -> None:
        with fake.state.lock:
            fake.state.apply_candle(symbol, bybit_state.Candle(ms, o, h, low, c, v))

    return apply


def wave(
    symbol: str,
    start_ms: int,
    count: int,
    *,
    timeframe_ms: int = 60_000,
    base: float = 50_000.0,
    skip: Sequence[int] = (),
) -> list[ScriptCandle]:
    """``count`` one-timeframe candles of a slow up-and-down walk (trends an EMA cross trades),
    without the indices in ``skip`` (venue gaps)."""
    out: list[ScriptCandle] = []
    price = base
    for i in range(count):
        # 40-candle legs up and down: every leg crosses the EMAs a test bot uses.
        step = base * 0.002 * (1 if (i // 40) % 2 == 0 else -1)
        open_ = price
        close = round(price + step, 1)
        price = close
        if i in skip:
            continue
        high = round(max(open_, close) + base * 0.0005, 1)
        low = round(min(open_, close) - base * 0.0005, 1)
        out.append(
            ScriptCandle(symbol, start_ms + i * timeframe_ms, round(open_, 1), high, low, close)
        )
    return out
