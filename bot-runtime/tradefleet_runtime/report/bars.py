"""What a run's bars leave for the report: per symbol the first open and last close (the
buy-and-hold benchmark) and, for a chart, every bar's OHLC and the strategy's declared
indicators' values in typed arrays.

The recorder wraps the bar stream a session trades (its pacer), so it sees exactly the bars
that produced equity: not warm-up history. Arrays hold 8 bytes a value and no per-bar Python
objects, so a million-bar run costs 40 MB per charted symbol, and nothing when no chart is
asked for. An indicator's value is read once per traded bar of its symbol, after the engine
has handled that bar (the generator resumes only then), so it is the value ``on_bar`` saw;
NaN in warm-up, and a higher timeframe's indicator holds its last value between its bars.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from tradefleet_runtime.indicators import PANEL, PRICE, Indicator, Series
from tradefleet_runtime.model import Bar
from tradefleet_runtime.report.metrics import SymbolRange

# ts, open, high, low, close
_Columns: TypeAlias = "tuple[array[int], array[float], array[float], array[float], array[float]]"
#: The declared indicators, each with its series key (symbol, timeframe in seconds).
IndicatorSource: TypeAlias = Callable[[], Iterable[tuple[tuple[str, int], Indicator]]]
_Plan: TypeAlias = "list[tuple[Series, array[float]]]"
NAN = float("nan")


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
    """Counts and (with ``ohlc``) keeps the bars passing through ``watch``; with ``indicators``
    too, each declared indicator's chart outputs (asked for at a symbol's first bar, when the
    strategy has declared them)."""

    def __init__(self, *, ohlc: bool = False, indicators: IndicatorSource | None = None) -> None:
        self.keep_ohlc = ohlc
        self._indicators = indicators if ohlc else None
        # Each symbol's first and latest bar, and how many came.
        self._firsts: dict[str, Bar] = {}
        self._lasts: dict[str, Bar] = {}
        self._counts: dict[str, int] = {}
        self._arrays: dict[str, _Columns] = {}
        self._plans: dict[str, _Plan] = {}
        # symbol -> name -> values: outputs on the price scale, and panels of the others
        self._price: dict[str, dict[str, array[float]]] = {}
        self._panels: dict[str, dict[str, dict[str, array[float]]]] = {}

    def _plan(self, symbol: str, timeframe_s: int) -> _Plan:
        plan: _Plan = []
        price = self._price[symbol] = {}
        panels = self._panels[symbol] = {}
        assert self._indicators is not None
        for (of, timeframe), indicator in self._indicators():
            if of != symbol:
                continue
            label = indicator.label()
            if timeframe != timeframe_s:
                label += f" @{_span(timeframe)}"
            outputs = indicator.outputs()
            panel: dict[str, array[float]] = {}
            for output, where in indicator.chart.items():
                values: array[float] = array("d")
                plan.append((outputs[output], values))
                if where == PANEL:
                    panel[output] = values
                elif where == PRICE:
                    name = label if output == "value" else f"{label} {output}"
                    price[_unique(name, price)] = values
            if panel:
                panels[_unique(label, panels)] = panel
        return plan

    def watch(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        # This generator runs on every traded bar: per symbol it keeps the first and the latest
        # bar and a count (nothing built per bar), and with a chart the OHLC arrays too.
        firsts, lasts, counts = self._firsts, self._lasts, self._counts
        arrays, plans, keep = self._arrays, self._plans, self.keep_ohlc
        for bar in bars:
            symbol = bar[0]
            if symbol not in firsts:
                firsts[symbol] = bar
                counts[symbol] = 0
                if keep:
                    arrays[symbol] = (array("q"), array("d"), array("d"), array("d"), array("d"))
                    if self._indicators is not None:
                        plans[symbol] = self._plan(symbol, bar[1])
            counts[symbol] += 1
            lasts[symbol] = bar
            if keep:
                ts, o, h, lo, c = arrays[symbol]
                ts.append(bar[2])
                o.append(bar[3])
                h.append(bar[4])
                lo.append(bar[5])
                c.append(bar[6])
                plan = plans.get(symbol)
                if plan:
                    try:
                        yield bar  # the engine handles the bar (and updates indicators) here
                    finally:
                        for series, values in plan:
                            values.append(series[-1] if len(series) else NAN)
                    continue
            yield bar

    def ranges(self) -> list[SymbolRange]:
        lasts, counts = self._lasts, self._counts
        return [
            SymbolRange(symbol, counts[symbol], first[2], first[3], *lasts[symbol][2:7:4])
            for symbol, first in sorted(self._firsts.items())
        ]

    def symbols(self) -> list[str]:
        """Symbols in the order their first bar came."""
        return list(self._firsts)

    def ohlc(self, symbol: str) -> OHLC:
        ts, o, h, lo, c = self._arrays[symbol]
        return OHLC(
            np.frombuffer(ts, dtype="int64"),
            *(np.frombuffer(a, dtype=float) for a in (o, h, lo, c)),
        )

    def overlays(self, symbol: str) -> dict[str, np.ndarray]:
        """Outputs drawn over ``symbol``'s candles, by name, one value per traded bar."""
        return {name: _floats(v) for name, v in self._price.get(symbol, {}).items()}

    def panels(self, symbol: str) -> dict[str, dict[str, np.ndarray]]:
        """Outputs drawn in their indicator's own panel: {indicator: {output: values}}."""
        return {
            name: {output: _floats(v) for output, v in outputs.items()}
            for name, outputs in self._panels.get(symbol, {}).items()
        }


def _floats(values: array[float]) -> np.ndarray:
    return np.frombuffer(values, dtype=float) if len(values) else np.zeros(0)


def _unique(name: str, taken: Container[str]) -> str:
    n, unique = 1, name
    while unique in taken:
        n += 1
        unique = f"{name} #{n}"
    return unique


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
