"""Whole-series (vectorised) versions of the indicators, for backtests that have every bar up
front: each function takes numpy arrays of the bars' prices and returns, for every bar, the
value the incremental indicator has after that bar — NaN in the same warm-up bars, and equal
after it to 1e-9 (``tests/runtime/test_indicators_precomputed.py``).

Recursive ones (EMA, Wilder's RSI and ATR, MACD) are first-order linear recurrences
``y[t] = d·y[t-1] + a·x[t]``, solved in blocks: inside a block ``y = dᵗ·(y₀ + a·Σ x·d⁻ⁱ)``,
one cumulative sum, with the block short enough that ``d⁻ⁱ`` stays far from overflow.

:func:`precompute` maps a declared indicator to its outputs by name (as ``outputs()`` names
them); it returns None for an indicator without a vectorised form here (ADX, Stochastic, VWAP,
swings, Fibonacci).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tradefleet_runtime.indicators.averages import EMA, SMA, WMA
from tradefleet_runtime.indicators.oscillators import MACD, RSI
from tradefleet_runtime.indicators.series import Indicator
from tradefleet_runtime.indicators.volatility import ATR, Bollinger, Donchian

Array = np.ndarray

#: Largest d⁻ⁱ a block lets grow (far below float64's 1.8e308).
_GROWTH = 1e150
_MAX_BLOCK = 4096


def _floats(values: Array) -> Array:
    array: Array = np.asarray(values, dtype=float)
    return array


def _nan(n: int) -> Array:
    return np.full(n, np.nan)


def smooth(x: Array, alpha: float, seed: float) -> Array:
    """``y[0] = seed``, then ``y[t] = y[t-1] + alpha·(x[t] − y[t-1])`` for every later t."""
    x = _floats(x)
    n = x.size
    out = np.empty(n)
    if n == 0:
        return out
    out[0] = seed
    d = 1.0 - alpha
    if d <= 0.0:  # alpha 1: the value itself
        out[1:] = x[1:]
        return out
    block = (
        _MAX_BLOCK if d >= 1.0 else max(1, min(_MAX_BLOCK, int(math.log(_GROWTH) / -math.log(d))))
    )
    powers = d ** np.arange(1, block + 1)  # d¹ .. dᴮ
    inverse = 1.0 / powers
    previous = seed
    for start in range(1, n, block):
        chunk = x[start : start + block]
        m = chunk.size
        y = powers[:m] * (previous + alpha * np.cumsum(chunk * inverse[:m]))
        out[start : start + m] = y
        previous = y[-1]
    return out


def sma(close: Array, period: int) -> Array:
    """Simple moving average (first value at bar ``period``)."""
    x = _floats(close)
    out = _nan(x.size)
    if x.size >= period:
        out[period - 1 :] = sliding_window_view(x, period).mean(axis=1)
    return out


def wma(close: Array, period: int) -> Array:
    """Linearly weighted moving average, weights 1..period (newest heaviest)."""
    x = _floats(close)
    out = _nan(x.size)
    if x.size >= period:
        weights = np.arange(1, period + 1, dtype=float)
        out[period - 1 :] = sliding_window_view(x, period) @ weights / weights.sum()
    return out


def ema(close: Array, period: int, *, seed_first: bool = False) -> Array:
    """EMA, ``alpha = 2/(period+1)``, seeded with the SMA of the first ``period`` values (or
    with the first value, ``seed_first``) as :class:`~tradefleet_runtime.indicators.EMA`."""
    x = _floats(close)
    out = _nan(x.size)
    alpha = 2.0 / (period + 1)
    first = 0 if seed_first else period - 1
    if x.size > first:
        seed = x[0] if seed_first else x[:period].mean()
        out[first:] = smooth(x[first:], alpha, seed)
    return out


def _wilder(values: Array, period: int, first: int) -> Array:
    """Wilder's average of ``values[first:]``: the mean of the first ``period`` of them, then
    ``(prev·(period−1) + v)/period``; its first value at index ``first + period − 1``."""
    out = _nan(values.size)
    seeded = first + period - 1
    if values.size > seeded:
        seed = values[first : seeded + 1].mean()
        out[seeded:] = smooth(values[seeded:], 1.0 / period, seed)
    return out


def rsi(close: Array, period: int = 14) -> Array:
    """Wilder's RSI (first value at bar ``period + 1``); 0 where gains and losses are both 0."""
    x = _floats(close)
    change = np.concatenate(([np.nan], np.diff(x)))
    gain = _wilder(np.where(change > 0.0, change, 0.0), period, 1)
    loss = _wilder(np.where(change < 0.0, -change, 0.0), period, 1)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out: Array = np.where(total != 0.0, 100.0 * gain / total, 0.0)
    out[np.isnan(total)] = np.nan
    return out


def true_ranges(high: Array, low: Array, close: Array) -> Array:
    """Each bar's true range (NaN for the first: it has no previous close)."""
    h, lo, c = _floats(high), _floats(low), _floats(close)
    previous = np.concatenate(([np.nan], c[:-1]))
    ranges: Array = np.maximum(h, previous) - np.minimum(lo, previous)
    if ranges.size:
        ranges[0] = np.nan
    return ranges


def atr(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    """Wilder's average true range (first value at bar ``period + 1``)."""
    return _wilder(true_ranges(high, low, close), period, 1)


def bollinger(close: Array, period: int = 20, k: float = 2.0) -> dict[str, Array]:
    """SMA ± ``k`` population standard deviations: ``middle``, ``upper``, ``lower``."""
    x = _floats(close)
    middle, width = _nan(x.size), _nan(x.size)
    if x.size >= period:
        windows = sliding_window_view(x, period)
        middle[period - 1 :] = windows.mean(axis=1)
        width[period - 1 :] = k * windows.std(axis=1)
    return {"middle": middle, "upper": middle + width, "lower": middle - width}


def donchian(high: Array, low: Array, period: int = 20) -> dict[str, Array]:
    """Highest high and lowest low of the last ``period`` bars: ``upper``, ``lower``,
    ``middle``."""
    h, lo = _floats(high), _floats(low)
    upper, lower = _nan(h.size), _nan(h.size)
    if h.size >= period:
        upper[period - 1 :] = sliding_window_view(h, period).max(axis=1)
        lower[period - 1 :] = sliding_window_view(lo, period).min(axis=1)
    return {"upper": upper, "lower": lower, "middle": (upper + lower) / 2.0}


def macd(close: Array, fast: int = 12, slow: int = 26, signal: int = 9) -> dict[str, Array]:
    """MACD ``line``, ``signal`` and ``hist`` as TA-Lib (and
    :class:`~tradefleet_runtime.indicators.MACD`) compute them: both EMAs seeded at bar
    ``slow``, every output NaN until the signal line has its first value."""
    x = _floats(close)
    n = x.size
    line, signal_line = _nan(n), _nan(n)
    first = slow - 1
    if n > first:
        slow_ema = smooth(x[first:], 2.0 / (slow + 1), x[:slow].mean())
        fast_ema = smooth(x[first:], 2.0 / (fast + 1), x[slow - fast : slow].mean())
        lines = fast_ema - slow_ema
        if lines.size >= signal:
            seeded = signal - 1
            signal_line[first + seeded :] = smooth(
                lines[seeded:], 2.0 / (signal + 1), lines[:signal].mean()
            )
            line[first + seeded :] = lines[seeded:]
    return {"line": line, "signal": signal_line, "hist": line - signal_line}


def precompute(
    indicator: Indicator, high: Array, low: Array, close: Array
) -> dict[str, Array] | None:
    """Every output of ``indicator`` (a fresh one's parameters) over whole arrays of bars,
    named as its ``outputs()``; None when it has no vectorised form here."""
    if isinstance(indicator, SMA):
        return {"value": sma(close, indicator.period)}
    if isinstance(indicator, EMA):
        return {"value": ema(close, indicator.period, seed_first=indicator.seed_first)}
    if isinstance(indicator, WMA):
        return {"value": wma(close, indicator.period)}
    if isinstance(indicator, RSI):
        return {"value": rsi(close, indicator.period)}
    if isinstance(indicator, ATR):
        return {"value": atr(high, low, close, indicator.period)}
    if isinstance(indicator, Bollinger):
        return bollinger(close, indicator.period, indicator.k)
    if isinstance(indicator, Donchian):
        return donchian(high, low, indicator.period)
    if isinstance(indicator, MACD):
        return macd(close, indicator.fast_period, indicator.slow_period, indicator.signal_period)
    return None
