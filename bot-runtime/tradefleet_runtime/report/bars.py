"""What a run's bars leave for the report: per symbol the first open and last close (the
buy-and-hold benchmark) and, for a chart, every bar's OHLC in typed arrays.

The recorder wraps the bar stream a session trades (its pacer), so it sees exactly the bars
that produced equity: not warm-up history. Arrays hold 8 bytes a value and no per-bar Python
objects, so a million-bar run costs 40 MB per charted symbol, and nothing when no chart is
asked for.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from tradefleet_runtime.model import Bar
from tradefleet_runtime.report.metrics import SymbolRange

# ts, open, high, low, close
_Columns: TypeAlias = "tuple[array[int], array[float], array[float], array[float], array[float]]"


@dataclass(frozen=True)
class OHLC:
    """One symbol's bars as arrays; ``ts`` is each bar's open time (epoch seconds)."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray

    @classmethod
    def of(cls, bars: Iterable[Bar]) -> OHLC:
        rows = [(b.ts, b.open, b.high, b.low, b.close) for b in bars]
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
        return cls(
            np.asarray(columns[0], dtype="int64"),
            *(np.asarray(c, dtype=float) for c in columns[1:]),
        )


class BarRecorder:
    """Counts and (with ``ohlc``) keeps the bars passing through ``watch``."""

    def __init__(self, *, ohlc: bool = False) -> None:
        self.keep_ohlc = ohlc
        # symbol -> [bars, first ts, first open, last ts, last close]
        self._ranges: dict[str, list[float]] = {}
        self._arrays: dict[str, _Columns] = {}

    def watch(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        ranges, arrays, keep = self._ranges, self._arrays, self.keep_ohlc
        for bar in bars:
            symbol = bar[0]
            state = ranges.get(symbol)
            if state is None:
                state = ranges[symbol] = [0, bar[2], bar[3], 0, 0.0]
                if keep:
                    arrays[symbol] = (
                        array("q"),
                        array("d"),
                        array("d"),
                        array("d"),
                        array("d"),
                    )
            state[0] += 1
            state[3] = bar[2]
            state[4] = bar[6]
            if keep:
                ts, o, h, lo, c = arrays[symbol]
                ts.append(bar[2])
                o.append(bar[3])
                h.append(bar[4])
                lo.append(bar[5])
                c.append(bar[6])
            yield bar

    def ranges(self) -> list[SymbolRange]:
        return [
            SymbolRange(symbol, int(s[0]), int(s[1]), s[2], int(s[3]), s[4])
            for symbol, s in sorted(self._ranges.items())
        ]

    def symbols(self) -> list[str]:
        """Symbols in the order their first bar came."""
        return list(self._ranges)

    def ohlc(self, symbol: str) -> OHLC:
        ts, o, h, lo, c = self._arrays[symbol]
        return OHLC(
            np.frombuffer(ts, dtype="int64"),
            *(np.frombuffer(a, dtype=float) for a in (o, h, lo, c)),
        )
