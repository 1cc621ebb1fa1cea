"""Incremental indicators: one ``update(bar)`` per closed bar, O(1) each, pure (no I/O).

Strategies declare them (``self.indicator(EMA(20), symbol)`` in ``on_start``) and the engine
updates them before each ``on_bar``; see ``docs/writing-a-strategy.md``. Values agree with
TA-Lib (or, where TA-Lib has none, the pandas formula) to 1e-9 after warm-up
(``tests/runtime/test_indicators_reference.py``).
"""

from __future__ import annotations

from tradefleet_runtime.indicators.averages import EMA, SMA, WMA
from tradefleet_runtime.indicators.book import IndicatorBook, UnfedSeries, bar_handler, check_series
from tradefleet_runtime.indicators.oscillators import MACD, RSI, Stochastic
from tradefleet_runtime.indicators.series import (
    DEFAULT_HISTORY,
    PANEL,
    PRICE,
    BarHistory,
    CloseIndicator,
    Indicator,
    Series,
)
from tradefleet_runtime.indicators.swings import EXTENSIONS, RETRACEMENTS, Fibonacci, Swings
from tradefleet_runtime.indicators.trend import ADX
from tradefleet_runtime.indicators.volatility import ATR, Bollinger, Donchian, true_range
from tradefleet_runtime.indicators.volume import VWAP, SessionVWAP

__all__ = [
    "ADX",
    "ATR",
    "DEFAULT_HISTORY",
    "EMA",
    "EXTENSIONS",
    "MACD",
    "PANEL",
    "PRICE",
    "RETRACEMENTS",
    "RSI",
    "SMA",
    "VWAP",
    "WMA",
    "BarHistory",
    "Bollinger",
    "CloseIndicator",
    "Donchian",
    "Fibonacci",
    "Indicator",
    "IndicatorBook",
    "Series",
    "SessionVWAP",
    "Stochastic",
    "Swings",
    "UnfedSeries",
    "bar_handler",
    "check_series",
    "true_range",
]
