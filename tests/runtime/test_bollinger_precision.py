"""Bollinger's bands stay exact at high prices.

Running sums of x and x² lost the width there: at a BTC-like 60,000 the half-width was off by
up to ~1e-5 of itself, and at 100,000 with moves of a thousandth a flat stretch had a width of
0.0156 while a moving one had 0. The bands must agree with an exact computation of the window's
mean and population standard deviation to 1e-9 (as the docs say), a flat window's width must be
exactly 0, and a bad tick must not spoil the bands once it has left the window.
"""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from tradefleet_runtime.indicators import Bollinger
from tradefleet_runtime.model import Bar

PERIOD, K = 20, 2.0
REL = 1e-9


def _bands(closes: list[float]) -> tuple[list[float], list[float], list[float]]:
    """(middle, upper, lower) after each close, through ``update`` as the engine calls it."""
    bands = Bollinger(PERIOD, K, history=len(closes))
    for i, close in enumerate(closes):
        bands.update(Bar("X", 60, i * 60, close, close, close, close, 1.0))
    return list(bands.middle), list(bands.upper), list(bands.lower)


def _exact(closes: list[float], i: int) -> tuple[float, float]:
    """The window's mean and K population standard deviations, from exact rational sums."""
    window = closes[i - PERIOD + 1 : i + 1]
    return statistics.fmean(window), K * statistics.pstdev(window)


def _band_ok(band: float, exact: float, width: float) -> bool:
    """Within ``REL`` of the half-width of the exact band — plus the band's own rounding (an
    ulp of the price: the most any float band can get at 100,000 with a width of 0.003)."""
    return abs(band - exact) <= REL * width + math.ulp(exact)


def _check_window(
    bands: tuple[list[float], list[float], list[float]], i: int, closes: list[float]
) -> None:
    middle, upper, lower = (band[i] for band in bands)
    exact_middle, width = _exact(closes, i)
    assert _band_ok(middle, exact_middle, width), f"bar {i}: middle {middle} vs {exact_middle}"
    assert _band_ok(upper, exact_middle + width, width), f"bar {i}: upper {upper}"
    assert _band_ok(lower, exact_middle - width, width), f"bar {i}: lower {lower}"


def _random_walk(seed: int, start: float, step: float, n: int, cents: bool) -> list[float]:
    rng = random.Random(seed)
    closes, price = [], start
    for _ in range(n):
        price += rng.gauss(0.0, step)
        closes.append(round(price, 2) if cents else price)
    return closes


def test_a_btc_like_minute_series_agrees_with_the_exact_bands_to_1e_9() -> None:
    # 200,000 one-minute bars near 60,000 moving ~3 a minute, quoted in cents.
    closes = _random_walk(7, 60_000.0, 3.0, 200_000, cents=True)
    windows = sliding_window_view(np.array(closes), PERIOD)
    exact_middle = windows.mean(axis=1)  # numpy's two-pass: exact to ~1e-15 here
    width = K * windows.std(axis=1)
    assert width.min() > 0.1  # no flat window: each is checked relative to its width
    for mine, exact in zip(
        _bands(closes), (exact_middle, exact_middle + width, exact_middle - width), strict=True
    ):
        error = np.abs(np.array(mine[PERIOD - 1 :]) - exact) / width
        assert error.max() <= REL, f"worst error {error.max():.2e} of the half-width"


def test_tiny_moves_at_100k_and_a_flat_stretch_have_the_exact_bands() -> None:
    closes = _random_walk(1, 100_000.0, 0.001, 1_500, cents=False)
    closes[600:700] = [closes[599]] * 100  # the price does not move for 100 bars
    bands = _bands(closes)
    middle, upper, lower = bands
    for i in range(PERIOD - 1, len(closes)):
        _check_window(bands, i, closes)
        if 599 + PERIOD - 1 <= i < 700:  # a window of one price: no width at all
            assert upper[i] == middle[i] == lower[i] == closes[599], f"bar {i}: not flat"


def test_a_bad_tick_does_not_spoil_the_bands_after_it_left_the_window() -> None:
    closes = _random_walk(3, 60_000.0, 0.5, 600, cents=True)
    closes[300] = 6.0  # a fat-fingered print, four orders of magnitude away
    closes[400] = 6_000_000.0
    bands = _bands(closes)
    for i in range(PERIOD - 1, len(closes)):
        _check_window(bands, i, closes)


def test_prices_crossing_zero_agree_with_the_exact_bands() -> None:
    # A spread or an oil future: values near and below zero, where no price level helps.
    closes = _random_walk(5, 0.3, 0.05, 2_000, cents=False)
    bands = _bands(closes)
    for i in range(PERIOD - 1, len(closes)):
        _check_window(bands, i, closes)


def test_ta_lib_agrees_on_the_btc_like_series() -> None:
    talib = pytest.importorskip("talib")
    closes = np.array(_random_walk(11, 60_000.0, 3.0, 50_000, cents=True))
    middle, upper, lower = _bands(list(closes))
    their_upper, their_middle, their_lower = talib.BBANDS(closes, PERIOD, K, K)
    width = (their_upper - their_middle)[PERIOD - 1 :]
    for mine, theirs in ((middle, their_middle), (upper, their_upper), (lower, their_lower)):
        error = np.abs(np.array(mine[PERIOD - 1 :]) - theirs[PERIOD - 1 :]) / width
        assert error.max() <= REL, f"worst error vs TA-Lib {error.max():.2e} of the half-width"
