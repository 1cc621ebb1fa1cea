"""pre-trade's ``max_correlation`` decides on the exact correlation of the window's returns.

Its running sums were floats: after a return that dwarfs the window's (a bad print, a 50% wick,
among returns of ~1e-7 at a BTC-like 60,000 moving a few cents) had been taken out again, its
rounding stayed behind and the estimate was off by anything (6.8 was measured), so a 0.92
correlation read as below a 0.7 cap and the entry went through, for up to a window of bars.
Two series of steady returns (flat: their variation is rounding) came out at exactly +1 or -1
and vetoed each other, and a perfect correlation came out at 1 + 2e-16, over a cap of 1.

The figures must agree with numpy.corrcoef on the same windows to 1e-9 over 100,000 bars, bad
prints and flat stretches included; stay within [-1, 1]; be exactly ±1 (to 1e-12) for perfectly
(anti-)correlated series; and a flat window has no figure and vetoes nothing.
"""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tradefleet_plugins.risk.pre_trade import PreTrade, correlation
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_plugins.risk.rolling_corr import RollingReturns, paired
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, Position, RiskAction, Side

TS = int(datetime(2024, 6, 5, 12, 0, tzinfo=UTC).timestamp())
WINDOW = 100
TOLERANCE = 1e-9
BUY_X = OrderIntent("X", Side.BUY, 1.0)
LONG_Y = {"Y": Position("Y", 1.0, 60_000.0)}


def _plugin(limit: float = 0.7, window: int = WINDOW) -> PreTrade:
    """A pre-trade with only the correlation cap on."""
    return PreTrade(
        PreTradeParams(
            max_correlation=limit, correlation_bars=window, price_band=0, max_gross_exposure=0,
            group_cap=0, max_open_positions=0, max_leverage=0, max_trades_per_day=0,
        )
    )  # fmt: skip


def _context(ts: int, positions: dict[str, Position] = LONG_Y) -> RiskContext:
    equity = 1_000_000.0
    return RiskContext(
        ts=ts, equity=equity, cash=equity, start_of_day_equity=equity, peak_equity=equity,
        positions=positions, marks={"X": 60_000.0, "Y": 60_000.0}, instrument=Instrument("X"),
        leverage=1.0, initial_equity=equity,
    )  # fmt: skip


def _bar(symbol: str, i: int, close: float) -> Bar:
    return Bar(symbol, 60, TS + i * 60, close, close, close, close, 1.0)


def _btc_like(seed: int, n: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Two minute series near 60,000 moving ~a cent a bar, their moves correlated ~``rho``
    (which drifts, so windows near any cap occur), with bad prints and flat stretches."""
    rng = np.random.default_rng(seed)
    common, own = rng.normal(size=(2, n))
    weight = np.clip(rho + 0.3 * np.sin(np.arange(n) / 700.0), -1.0, 1.0)
    x = 60_000.0 + np.cumsum(0.01 * common)
    y = 60_000.0 + np.cumsum(0.01 * (weight * common + np.sqrt(1.0 - weight**2) * own))
    for i in range(1_000, n, 9_973):  # a bad print, four orders of magnitude off, or a wick
        x[i] = (6.0, 6_000_000.0, x[i] * 0.5)[i % 3]
        y[i + 3] *= 1.5
    a, b = 2 * n // 5, 7 * n // 10
    x[a : a + 300] = x[a - 1]  # X does not move for three windows
    y[b : b + 150] = y[b - 1]  # nor Y, for one and a half
    return x, y


def _numpy_figures(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The correlation of every window of WINDOW returns (as the plugin computes a return:
    close / previous - 1), the two-pass way numpy.corrcoef computes it; NaN for a flat one."""
    rx, ry = (sliding_window_view(c[1:] / c[:-1] - 1.0, WINDOW) for c in (x, y))
    dx = rx - rx.mean(axis=1, keepdims=True)
    dy = ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        figures: np.ndarray = (dx * dy).sum(axis=1) / np.sqrt(
            (dx * dx).sum(axis=1) * (dy * dy).sum(axis=1)
        )
    flat = (rx.max(axis=1) == rx.min(axis=1)) | (ry.max(axis=1) == ry.min(axis=1))
    figures[flat] = np.nan
    # The batch is numpy.corrcoef's arithmetic: checked against it on a sample of windows.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a flat window: 0/0
        for w in range(0, len(figures), 997):
            theirs = np.corrcoef(rx[w], ry[w])[0, 1]
            assert np.isnan(theirs) if flat[w] else abs(theirs - figures[w]) <= 1e-14
    return figures


def test_100k_btc_like_bars_agree_with_numpy_corrcoef_to_1e_9() -> None:
    x, y = _btc_like(7, 100_001, 0.6)
    expected = _numpy_figures(x, y)
    plugin = _plugin()
    rolling = plugin._rolling
    mine: list[float] = []
    for i in range(len(x)):
        plugin.on_bar(_bar("X", i, float(x[i])))
        plugin.on_bar(_bar("Y", i, float(y[i])))
        figure = rolling.correlation("X", "Y")  # asked every bar: the sums run from the start
        if i >= WINDOW:
            mine.append(np.nan if figure is None else figure)
    got = np.array(mine)
    assert np.array_equal(np.isnan(got), np.isnan(expected)), "flat windows differ"
    moving = ~np.isnan(expected)
    assert moving.sum() > 99_000
    assert np.abs(got[moving]).max() <= 1.0
    error = np.abs(got[moving] - expected[moving])
    assert error.max() <= TOLERANCE, f"worst {error.max():.2e} at window {error.argmax()}"


def test_the_cap_decides_on_the_exact_figure_after_bad_prints() -> None:
    """A cap just under the window's correlation vetoes, one just over lets the entry through,
    on every bar: bad prints that left the window leave nothing behind."""
    x, y = _btc_like(3, 20_001, 0.8)
    expected = _numpy_figures(x, y)
    plugin = _plugin()
    wrong = []
    for i in range(len(x)):
        plugin.on_bar(_bar("X", i, float(x[i])))
        plugin.on_bar(_bar("Y", i, float(y[i])))
        figure = expected[i - WINDOW] if i >= WINDOW else np.nan
        if np.isnan(figure):
            continue
        context = _context(TS + i * 60)
        for limit, vetoed in ((figure - TOLERANCE, True), (figure + TOLERANCE, False)):
            if (plugin._correlated(BUY_X, context, float(limit)) is not None) != vetoed:
                wrong.append((i, float(figure), float(limit)))
    assert not wrong, f"{len(wrong)} wrong decisions, first {wrong[:3]}"


def test_a_correlated_entry_is_vetoed_once_a_bad_print_left_the_window() -> None:
    """X and Y move together (~0.9); one print of X a hundred times its price (bar 150: its
    returns +99 and -0.99 are in the window of 50 until bar 200, and outweigh the rest there).
    Outside that, the entry in X next to a long Y is vetoed at the 0.7 cap on every bar (the
    float sums let it through at 0.91 from bar 202 on)."""
    rng = random.Random(0)
    plugin = _plugin(0.7, window=50)
    x = y = 60_000.0
    for i in range(400):
        move = rng.gauss(0.0, 0.01)
        x += move + rng.gauss(0.0, 0.003)
        y += move + rng.gauss(0.0, 0.003)
        plugin.on_bar(_bar("X", i, x * 100.0 if i == 150 else x))
        plugin.on_bar(_bar("Y", i, y))
        if i > 55:
            decision = plugin.check(BUY_X, _context(TS + i * 60))
            if not 150 <= i <= 200:
                assert decision.action is RiskAction.VETO, f"bar {i}: {decision}"


def test_perfectly_correlated_series_give_exactly_one_and_a_cap_of_one_vetoes_nothing() -> None:
    """Y's price is exactly twice X's (the same returns); Z's returns are three times X's (to
    the rounding of its price). Their figures are 1 (to 1e-12, never above), and a cap of 1
    ("above 1") never vetoes; one just under 1 always does."""
    rng = random.Random(11)
    at_one, under_one = _plugin(1.0), _plugin(0.999999)
    x, z = 60_000.0, 100.0
    for i in range(600):
        previous = x
        x += rng.gauss(0.0, 0.05)
        z *= 1.0 + 3.0 * (x / previous - 1.0)
        for plugin in (at_one, under_one):
            plugin.on_bar(_bar("X", i, x))
            plugin.on_bar(_bar("Y", i, 2.0 * x))
            plugin.on_bar(_bar("Z", i, z))
        if i < 20:
            continue
        for k, other in enumerate(("Y", "Z")):
            figure = at_one._rolling.correlation("X", other)
            assert figure is not None and 1.0 - 1e-12 <= figure <= 1.0, f"bar {i}: {figure}"
            # A second past the bar for Z: check's answer is cached per bar time, not position.
            held = _context(TS + i * 60 + k, {other: Position(other, 1.0, 100.0)})
            assert at_one.check(BUY_X, held).action is RiskAction.APPROVE, f"bar {i} {other}"
            assert under_one.check(BUY_X, held).action is RiskAction.VETO, f"bar {i} {other}"


def test_perfectly_anti_correlated_returns_give_exactly_minus_one() -> None:
    rng = random.Random(13)
    rolling = RollingReturns(WINDOW)
    for i in range(5_000):
        r = rng.gauss(0.0, 1e-7)
        rolling.append("X", i, r)
        rolling.append("Y", i, -r)
        rolling.append("Z", i, -3.0 * r)  # ~exact multiples: 3r is rounded
        if i >= 10:
            for other in ("Y", "Z"):
                figure = rolling.correlation("X", other)
                assert figure is not None and -1.0 <= figure <= -1.0 + 1e-12, (i, other, figure)
    xs = [rng.gauss(0.0, 1e-4) for _ in range(100)]
    for k in (1.0, 2.0, 0.7, 1e3, -1.0, -2.0, -0.7, -1e3):
        figure = correlation(xs, [k * v for v in xs])
        assert figure is not None and abs(abs(figure) - 1.0) <= 1e-12 and abs(figure) <= 1.0
        assert (figure > 0) == (k > 0)


def test_steady_returns_are_flat_have_no_figure_and_veto_nothing() -> None:
    """Two symbols accruing at a steady rate: their returns vary only by the rounding of the
    price arithmetic. No correlation (not noise read as ±1), so no veto whatever the cap."""
    assert correlation([0.1] * 20, [0.3] * 20) is None  # exactly constant: 0/0
    assert correlation([1e-4] * 20, [float(i % 7) for i in range(20)]) is None
    plugin = _plugin(0.01)
    x, y = 60_000.0, 101.0
    for i in range(300):
        x *= 1.000001
        y *= 1.0000025
        plugin.on_bar(_bar("X", i, x))
        plugin.on_bar(_bar("Y", i, y))
        if i >= 20:
            assert plugin._rolling.correlation("X", "Y") is None, f"bar {i}"
            for side in (Side.BUY, Side.SELL):
                intent = OrderIntent("X", side, 1.0)
                decision = plugin.check(intent, _context(TS + i * 60))
                assert decision.action is RiskAction.APPROVE, f"bar {i} {side}: {decision}"


def test_a_price_that_stops_moving_is_flat_then_counts_again_exactly() -> None:
    rng = random.Random(17)
    rolling_plugin = _plugin(0.5, window=30)
    x = y = 60_000.0
    for i in range(200):
        move = rng.gauss(0.0, 0.02)
        x += move
        if not 50 <= i < 120:
            y += move + rng.gauss(0.0, 0.01)
        rolling_plugin.on_bar(_bar("X", i, x))
        rolling_plugin.on_bar(_bar("Y", i, y))
        figure = rolling_plugin._rolling.correlation("X", "Y")
        if 50 + 30 <= i < 120:  # Y's window holds only zero returns
            assert figure is None, f"bar {i}: {figure}"
            decision = rolling_plugin.check(BUY_X, _context(TS + i * 60))
            assert decision.action is RiskAction.APPROVE
        elif i >= 120 + 12:
            series = rolling_plugin._returns
            assert figure is not None and figure == paired(series["X"], series["Y"])


def test_the_running_sums_equal_a_fresh_pairing_at_every_bar() -> None:
    """Irregular streams (missing bars, gaps, bad prints, a window of 13): the figure from the
    running sums is, bit for bit, the one pairing the two windows afresh gives."""
    rng = random.Random(19)
    rolling = RollingReturns(13)
    ts = 0
    for i in range(20_000):
        ts += 60 if rng.random() < 0.97 else 600
        for symbol in ("A", "B", "C"):
            if rng.random() < 0.9:
                r = rng.gauss(0.0, 1e-6) if rng.random() < 0.995 else rng.choice((9_999.0, -0.5))
                rolling.append(symbol, ts, r)
        if i % 3 == 0 and i > 5:
            for a, b in (("A", "B"), ("C", "A"), ("B", "C")):
                series = rolling.series
                assert rolling.correlation(a, b) == paired(series[a], series[b]), (i, a, b)


def test_returns_a_float_cannot_hold_are_not_counted() -> None:
    plugin = _plugin()
    closes = [60_000.0 + i for i in range(30)] + [1e-300, 1e10] + [60_000.0 + i for i in range(30)]
    for i, close in enumerate(closes):
        plugin.on_bar(_bar("X", i, close))
        plugin.on_bar(_bar("Y", i, 60_000.0 + (i * 7) % 5))
    figure = plugin._rolling.correlation("X", "Y")
    assert figure is not None and -1.0 <= figure <= 1.0
    assert all(abs(r) < 1e30 for _, r in plugin._returns["X"])
