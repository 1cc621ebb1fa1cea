"""Higher-timeframe bars built from base bars, handed over only once they have closed."""

from __future__ import annotations

from tradefleet_runtime.model import Bar
from tradefleet_runtime.timeframes import bucket_start

_new_bar = tuple.__new__


class BarAggregator:
    """Aggregates one symbol's base bars into ``timeframe_s`` bars.

    ``add`` returns ``(closed_before, closed_after)``: a higher bar whose bucket a data gap left
    unfinished closes *before* the first base bar of a later bucket is handled; a bar whose
    last base bar arrives closes *after* it. Either way a strategy never sees a bar that has
    not closed.
    """

    __slots__ = ("_close", "_high", "_low", "_open", "_start", "_volume", "symbol", "timeframe_s")

    def __init__(self, symbol: str, timeframe_s: int) -> None:
        self.symbol = symbol
        self.timeframe_s = timeframe_s
        self._start: int | None = None
        self._open = self._high = self._low = self._close = self._volume = 0.0

    def _emit(self) -> Bar:
        assert self._start is not None
        bar: Bar = _new_bar(
            Bar,
            (
                self.symbol,
                self.timeframe_s,
                self._start,
                self._open,
                self._high,
                self._low,
                self._close,
                self._volume,
            ),
        )
        self._start = None
        return bar

    def add(self, bar: Bar) -> tuple[Bar | None, Bar | None]:
        start = bucket_start(bar.ts, self.timeframe_s)
        before = None
        if self._start is not None and start != self._start:
            before = self._emit()
        if self._start is None:
            self._start = start
            self._open, self._high, self._low = bar.open, bar.high, bar.low
            self._close, self._volume = bar.close, bar.volume
        else:
            if bar.high > self._high:
                self._high = bar.high
            if bar.low < self._low:
                self._low = bar.low
            self._close = bar.close
            self._volume += bar.volume
        after = None
        if bar.ts + bar.timeframe_s >= start + self.timeframe_s:
            after = self._emit()
        return before, after
