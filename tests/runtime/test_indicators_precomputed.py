"""Vectorised (precomputed) indicators equal the incremental ones, bar by bar: NaN in exactly the
same warm-up bars and within 1e-9 after, on the bundled EURUSD H1 2017 bars and on synthetic
bars with gaps (missing hours and price jumps across them)."""

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
    WMA,
    Bollinger,
    Donchian,
    Indicator,
)
from tradefleet_runtime.indicators import vectorised as vec
from tradefleet_runtime.model import Bar

TOLERANCE = 1e-9
DATA = Path(__file__).resolve().parents[2] / "data" / "EURUSD_H1_2017.csv"


def eurusd_bars() -> list[Bar]:
    """The bundled bars, read here (the TA-Lib reference test skips without TA-Lib)."""
    with DATA.open() as handle:
        return [
            Bar(
                "EURUSD",
                3600,
                int(
                    datetime.strptime(row["Time"], "%d.%m.%Y %H:%M:%S.%f")
                    .replace(tzinfo=UTC)
                    .timestamp()
                ),
                *(float(row[k]) for k in ("Open", "High", "Low", "Close", "Volume")),
            )
            for row in csv.DictReader(handle)
        ]


def gapped_bars(n: int = 5_000, seed: int = 3) -> list[Bar]:
    """A random walk around 100 with a gap (2–60 missing hours, the price jumping up to ±3%)
    every ~50 bars, and now and then a bar that closes where it opened."""
    rng = np.random.default_rng(seed)
    bars, ts, price = [], 1_500_000_000, 100.0
    for i in range(n):
        gap = rng.random() < 0.02
        ts += 3600 * (int(rng.integers(2, 60)) if gap else 1)
        opened = price * (1 + rng.uniform(-0.03, 0.03)) if gap else price
        close = opened if i % 97 == 0 else opened * (1 + rng.normal(0, 0.004))
        high = max(opened, close) * (1 + abs(rng.normal(0, 0.002)))
        low = min(opened, close) * (1 - abs(rng.normal(0, 0.002)))
        bars.append(Bar("SYN", 3600, ts, opened, high, low, close, float(rng.integers(1, 1000))))
        price = close
    return bars


DATASETS = {"EURUSD-H1-2017": eurusd_bars(), "gapped-synthetic": gapped_bars()}

CASES: dict[str, Callable[[], Indicator]] = {
    "SMA(20)": lambda: SMA(20),
    "SMA(1)": lambda: SMA(1),
    "EMA(20)": lambda: EMA(20),
    "EMA(2)": lambda: EMA(2),
    "EMA(200)": lambda: EMA(200),
    "EMA(48, seed_first)": lambda: EMA(48, seed_first=True),
    "WMA(30)": lambda: WMA(30),
    "RSI(14)": lambda: RSI(14),
    "RSI(2)": lambda: RSI(2),
    "ATR(14)": lambda: ATR(14),
    "Bollinger(20,2)": lambda: Bollinger(20, 2.0),
    "Donchian(55)": lambda: Donchian(55),
    "MACD(12,26,9)": lambda: MACD(12, 26, 9),
    "MACD(5,35,5)": lambda: MACD(5, 35, 5),
}


def _incremental(indicator: Indicator, bars: list[Bar]) -> dict[str, np.ndarray]:
    outputs = indicator.outputs()
    got: dict[str, list[float]] = {name: [] for name in outputs}
    for bar in bars:
        indicator.update(bar)
        for name, series in outputs.items():
            got[name].append(series[-1])
    return {name: np.array(values) for name, values in got.items()}


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("case", list(CASES))
def test_precomputed_equals_incremental(case: str, dataset: str) -> None:
    bars = DATASETS[dataset]
    high, low, close = (np.array([bar[i] for bar in bars]) for i in (4, 5, 6))
    precomputed = vec.precompute(CASES[case](), high, low, close)
    assert precomputed is not None
    incremental = _incremental(CASES[case](), bars)
    assert list(precomputed) == list(incremental)
    for name, expected in incremental.items():
        got = precomputed[name]
        assert got.shape == expected.shape, name
        warm = np.isnan(expected)
        assert warm.any() or case in ("SMA(1)", "EMA(48, seed_first)"), name
        np.testing.assert_array_equal(np.isnan(got), warm, err_msg=f"{name}: NaN bars differ")
        np.testing.assert_allclose(got[~warm], expected[~warm], rtol=0, atol=TOLERANCE)


def test_short_series_are_all_warm_up() -> None:
    close = np.array([1.0, 2.0, 3.0])
    assert np.isnan(vec.sma(close, 5)).all() and np.isnan(vec.ema(close, 5)).all()
    assert np.isnan(vec.rsi(close, 3)).all() and np.isnan(vec.macd(close)["line"]).all()
    assert vec.ema(np.array([]), 3).size == 0


def test_indicators_without_a_vectorised_form_say_so() -> None:
    assert vec.precompute(ADX(14), np.ones(3), np.ones(3), np.ones(3)) is None
