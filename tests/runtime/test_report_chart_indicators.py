"""The chart's indicators: `backtest --plot` records each declared indicator once per traded bar
(the value `on_bar` saw) and hands them to the chart, price-scale outputs over the candles and
oscillators in panels of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradefleet_runtime.cli import main
from tradefleet_runtime.contracts import FeedRequest
from tradefleet_runtime.indicators import EMA, MACD, RSI, Bollinger, Indicator
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report import plot
from tradefleet_runtime.report.bars import BarRecorder
from tradefleet_runtime.report.plot import addplots, chart_data
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"
HOUR = 3600


def test_ema_cross_chart_carries_its_two_emas_at_the_traded_bars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mplfinance")
    seen: dict[str, Any] = {}

    def capture(path: Path, title: str, bars: Any, *args: Any, **kwargs: Any) -> list[Path]:
        seen.update(bars=bars, **kwargs)
        return []

    monkeypatch.setattr(plot, "write_charts", capture)
    argv = ["backtest", str(DEMO), "--json", "--plot", str(tmp_path / "c.png")]
    assert main([*argv, "--journal", str(tmp_path / "j.sqlite")]) == 0

    ohlc = seen["bars"]["EURUSD"]
    overlays = seen["overlays"]["EURUSD"]
    assert list(overlays) == ["EMA(48)", "EMA(192)"]
    assert seen["panels"]["EURUSD"] == {}
    # The same EMAs run incrementally over every bar of the file (warm-up included), read at
    # the traded bars.
    manifest = load_manifest(DEMO)
    bot = assemble(manifest, PluginRegistry.discover(), DEMO.parent, str(DEMO))
    assert bot.feed is not None
    fast, slow = EMA(48, seed_first=True), EMA(192, seed_first=True)
    by_ts: dict[int, tuple[float, float]] = {}
    for bar in bot.feed.bars(FeedRequest(("EURUSD",), HOUR, DEMO.parent)):
        fast.update(bar)
        slow.update(bar)
        by_ts[bar.ts] = (fast.value, slow.value)
    expected = np.array([by_ts[int(ts)] for ts in ohlc.ts])
    for name, column in (("EMA(48)", 0), ("EMA(192)", 1)):
        assert overlays[name].size == ohlc.ts.size > 6000
        np.testing.assert_array_equal(overlays[name], expected[:, column])
    # What the chart draws: those values at each candle's last bar.
    data = chart_data("EURUSD", ohlc, HOUR, [], [], [], overlays)
    assert data.overlays["EMA(48)"][-1] == overlays["EMA(48)"][-1]


def _bars(n: int) -> list[Bar]:
    rng = np.random.default_rng(7)
    closes = 100 + np.cumsum(rng.normal(0, 1, n))
    return [
        Bar("X", HOUR, i * HOUR, c - 0.2, c + 1.0, c - 1.0, float(c), 10.0)
        for i, c in enumerate(closes)
    ]


def test_oscillators_get_panels_and_bands_go_over_price() -> None:
    declared: list[tuple[tuple[str, int], Indicator]] = [
        (("X", HOUR), Bollinger(20)),
        (("X", HOUR), MACD()),
        (("X", HOUR), RSI(14)),
        (("X", 4 * HOUR), EMA(5)),
        (("Y", HOUR), EMA(3)),  # another symbol's: not on X's chart
    ]
    recorder = BarRecorder(ohlc=True, indicators=lambda: declared)
    bars = _bars(300)
    for bar in recorder.watch(bars):  # the engine: indicators updated while the bar is out
        for (symbol, timeframe), indicator in declared:
            if symbol == bar.symbol and timeframe == HOUR:
                indicator.update(bar)
    overlays, panels = recorder.overlays("X"), recorder.panels("X")
    assert list(overlays) == [
        "Bollinger(20,2) middle",
        "Bollinger(20,2) upper",
        "Bollinger(20,2) lower",
        "EMA(5) @4h",
    ]
    assert list(panels) == ["MACD(12,26,9)", "RSI(14)"]
    assert list(panels["MACD(12,26,9)"]) == ["line", "signal", "hist"]
    rsi = panels["RSI(14)"]["value"]
    assert rsi.size == 300 and np.isnan(rsi[:14]).all() and not np.isnan(rsi[14:]).any()
    assert rsi[-1] == declared[2][1].value
    assert np.isnan(overlays["EMA(5) @4h"]).all()  # never updated: NaN, not a stale zero

    ohlc = recorder.ohlc("X")
    data = chart_data("X", ohlc, HOUR, ohlc.ts + HOUR, np.ones(300), [], overlays, panels=panels)
    lines = [(p["panel"], p.get("label")) for p in addplots(data) if p.get("type") != "scatter"]
    assert lines == [
        (0, "Bollinger(20,2) middle"),
        (0, "Bollinger(20,2) upper"),
        (0, "Bollinger(20,2) lower"),
        (0, "EMA(5) @4h"),  # NaN over the candles is fine: they set the scale
        (1, "line"),
        (1, "signal"),
        (1, "hist"),
        (2, "value"),
        (3, None),  # equity
        (4, None),  # drawdown
    ]


def test_no_plot_records_no_indicators() -> None:
    asked = []
    recorder = BarRecorder(indicators=lambda: asked.append(1) or [])
    assert len(list(recorder.watch(_bars(5)))) == 5
    assert asked == [] and recorder.overlays("X") == {}
