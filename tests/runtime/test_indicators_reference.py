"""Every indicator against a reference on the bundled EURUSD H1 2017 bars, to 1e-9 after
warm-up: TA-Lib where it has the indicator (the ``ta-lib`` wheel, a dev dependency), else a
plain numpy formula written here from the definition (VWAP, swings, Fibonacci levels)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tradefleet_runtime.indicators import (
    ADX,
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    VWAP,
    WMA,
    Bollinger,
    Donchian,
    Fibonacci,
    Indicator,
    SessionVWAP,
    Stochastic,
    Swings,
)
from tradefleet_runtime.model import Bar

talib = pytest.importorskip("talib")

DATA = Path(__file__).resolve().parents[2] / "data" / "EURUSD_H1_2017.csv"
TOLERANCE = 1e-9


def eurusd_bars() -> list[Bar]:
    """The bundled EURUSD H1 2017 bars (symbol ``EURUSD``)."""
    bars = []
    with DATA.open() as handle:
        for row in csv.DictReader(handle):
            opened = datetime.strptime(row["Time"], "%d.%m.%Y %H:%M:%S.%f").replace(tzinfo=UTC)
            ts = int(opened.timestamp())
            bars.append(
                Bar(
                    "EURUSD",
                    3600,
                    ts,
                    float(row["Open"]),
                    float(row["High"]),
                    float(row["Low"]),
                    float(row["Close"]),
                    float(row["Volume"]),
                )
            )
    return bars


BARS = eurusd_bars()
H, L, C, V = (np.array([bar[i] for bar in BARS]) for i in (4, 5, 6, 7))
TS = np.array([bar.ts for bar in BARS])


def _run(indicator: Indicator, *outputs: str) -> list[np.ndarray]:
    """Feed every bar; collect the named outputs' newest value after each bar."""
    got: list[list[float]] = [[] for _ in outputs]
    for bar in BARS:
        indicator.update(bar)
        series = indicator.outputs()
        for column, name in zip(got, outputs, strict=True):
            column.append(series[name][-1])
    return [np.array(column) for column in got]


def _agree(got: np.ndarray, reference: np.ndarray, warmup: int) -> None:
    assert got.shape == reference.shape
    # Before warm-up: no value (NaN), exactly where the reference has none.
    assert np.isnan(got[: warmup - 1]).all()
    assert np.isnan(reference[: warmup - 1]).all()
    assert not np.isnan(got[warmup - 1 :]).any()
    np.testing.assert_allclose(got[warmup - 1 :], reference[warmup - 1 :], rtol=0, atol=TOLERANCE)


Reference = Callable[[], tuple[np.ndarray, ...]]
CASES: dict[str, tuple[Callable[[], Indicator], tuple[str, ...], Reference]] = {
    "sma": (lambda: SMA(20), ("value",), lambda: (talib.SMA(C, 20),)),
    "ema": (lambda: EMA(20), ("value",), lambda: (talib.EMA(C, 20),)),
    "wma": (lambda: WMA(20), ("value",), lambda: (talib.WMA(C, 20),)),
    "rsi": (lambda: RSI(14), ("value",), lambda: (talib.RSI(C, 14),)),
    "macd": (lambda: MACD(12, 26, 9), ("line", "signal", "hist"), lambda: talib.MACD(C, 12, 26, 9)),
    "bollinger": (
        lambda: Bollinger(20, 2.0),
        ("upper", "middle", "lower"),
        lambda: talib.BBANDS(C, 20, 2.0, 2.0, 0),
    ),
    "atr": (lambda: ATR(14), ("value",), lambda: (talib.ATR(H, L, C, 14),)),
    "adx": (
        lambda: ADX(14),
        ("adx",),
        lambda: (talib.ADX(H, L, C, 14),),
    ),
    "stochastic": (
        lambda: Stochastic(14, 3, 3),
        ("k", "d"),
        lambda: talib.STOCH(H, L, C, 14, 3, 0, 3, 0),
    ),
    "donchian": (
        lambda: Donchian(20),
        ("upper", "lower"),
        lambda: (talib.MAX(H, 20), talib.MIN(L, 20)),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_indicator_equals_talib(name: str) -> None:
    make, outputs, reference = CASES[name]
    indicator = make()
    for got, expected in zip(_run(indicator, *outputs), reference(), strict=True):
        _agree(got, np.asarray(expected, dtype=float), indicator.warmup)


def test_directional_indicators_equal_talib_after_their_warm_up() -> None:
    plus, minus = _run(ADX(14), "plus_di", "minus_di")
    # TA-Lib's DIs start a bar after 14 changes; ours too (the ADX needs 14 more).
    np.testing.assert_allclose(plus[15:], talib.PLUS_DI(H, L, C, 14)[15:], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(minus[15:], talib.MINUS_DI(H, L, C, 14)[15:], rtol=0, atol=TOLERANCE)


def test_other_periods_equal_talib() -> None:
    for period in (2, 5, 50):
        (got,) = _run(EMA(period), "value")
        _agree(got, talib.EMA(C, period), period)
        (got,) = _run(RSI(period), "value")
        _agree(got, talib.RSI(C, period), period + 1)
        (got,) = _run(ATR(period), "value")
        _agree(got, talib.ATR(H, L, C, period), period + 1)


def test_rolling_vwap_equals_the_formula() -> None:
    (got,) = _run(VWAP(24), "value")
    typical = (H + L + C) / 3.0
    kernel = np.ones(24)
    weighted = np.convolve(typical * V, kernel, "valid")
    volume = np.convolve(V, kernel, "valid")
    reference = np.concatenate((np.full(23, np.nan), weighted / volume))
    _agree(got, reference, 24)


def test_session_vwap_restarts_each_day() -> None:
    (got,) = _run(SessionVWAP(), "value")
    typical = (H + L + C) / 3.0
    day = TS // 86_400
    reference = np.empty_like(C)
    for session in np.unique(day):
        rows = day == session
        reference[rows] = np.cumsum(typical[rows] * V[rows]) / np.cumsum(V[rows])
    np.testing.assert_allclose(got, reference, rtol=0, atol=TOLERANCE)


def test_swings_are_the_fractals_known_right_bars_later() -> None:
    left, right = 3, 2
    highs, lows = _run(Swings(left, right), "high", "low")
    expected_high = np.full(C.size, np.nan)
    expected_low = np.full(C.size, np.nan)
    last_high = last_low = np.nan
    for i in range(C.size):
        pivot = i - right  # the bar confirmed by bar i
        if pivot - left >= 0:
            before, after = slice(pivot - left, pivot), slice(pivot + 1, i + 1)
            if (H[before] < H[pivot]).all() and (H[after] <= H[pivot]).all():
                last_high = H[pivot]
            if (L[before] > L[pivot]).all() and (L[after] >= L[pivot]).all():
                last_low = L[pivot]
        expected_high[i], expected_low[i] = last_high, last_low
    np.testing.assert_array_equal(highs, expected_high)
    np.testing.assert_array_equal(lows, expected_low)
    assert np.count_nonzero(np.diff(highs[~np.isnan(highs)])) > 300  # it finds many swings


def test_fibonacci_levels_are_those_of_the_last_swing() -> None:
    fib = Fibonacci(3, 3)
    checked = 0
    for bar in BARS:
        fib.update(bar)
        swings = fib.swings
        if swings.high_ts < 0 or swings.low_ts < 0:
            assert fib.direction == 0
            continue
        if swings.high_ts == swings.low_ts:
            continue  # one outside bar is both: the swing before it still stands
        up = swings.high_ts > swings.low_ts
        low, high = swings.swing_low, swings.swing_high
        assert fib.direction == (1 if up else -1)
        for ratio in (0.382, 0.5, 0.618):
            expected = high - ratio * (high - low) if up else low + ratio * (high - low)
            assert fib.retracement(ratio) == pytest.approx(expected, abs=TOLERANCE)
        expected_ext = low + 1.618 * (high - low) if up else high - 1.618 * (high - low)
        assert fib.extension(1.618) == pytest.approx(expected_ext, abs=TOLERANCE)
        checked += 1
    assert checked > 6000
