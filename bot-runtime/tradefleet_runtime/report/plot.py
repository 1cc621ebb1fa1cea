"""The run's chart: candles with indicator overlays, entries and exits marked with their reason,
and the account's equity and drawdown in panels below (mplfinance, imported lazily).

Choices a reader should know:
- **One PNG per symbol.** The first symbol goes to the file asked for, each other one beside it
  as ``NAME-SYMBOL.png``; equity and drawdown are the whole account's in every file.
- **Long runs are downsampled, not paged.** Past ``MAX_CANDLES`` bars, each candle joins ``k``
  consecutive bars (open of the first, highest high, lowest low, close of the last) and the
  title says so; equity is the last value in each candle and drawdown its deepest. A trade's
  markers sit in the candle holding its fill, at the fill's price: several trades in one
  candle of the same kind share a marker there.
- **Indicators**: outputs on the price scale (averages, bands, channels) are lines over the
  candles; oscillators (RSI, MACD, ATR, ...) get a panel each between the candles and equity.
  Both are the value at each candle's last bar.
- ``chart_data`` (pure numpy) decides everything drawn; ``write_chart`` only draws it, so tests
  check the data handed to mplfinance, not pixels.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tradefleet_runtime.model import END_OF_DATA, Trade
from tradefleet_runtime.report.bars import OHLC
from tradefleet_runtime.report.metrics import (
    LIQUIDATION,
    OUTSIDE,
    RISK,
    SIGNAL,
    STOP_LOSS,
    TAKE_PROFIT,
    UNKNOWN,
    exit_kind,
)

MAX_CANDLES = 500
INSTALL_HINT = "pip install 'tradefleet[plot]'"

# Marker of each kind: (label, matplotlib marker, colour). Entries point the trade's way; exits
# differ in shape as well as colour, so they read in grey print too.
LONG_ENTRY = "long entry"
SHORT_ENTRY = "short entry"
MARKERS: dict[str, tuple[str, str]] = {
    LONG_ENTRY: ("^", "#1a9641"),
    SHORT_ENTRY: ("v", "#d7191c"),
    f"exit: {STOP_LOSS}": ("X", "#b2182b"),
    f"exit: {TAKE_PROFIT}": ("*", "#f4a300"),
    f"exit: {SIGNAL}": ("o", "#2166ac"),
    f"exit: {RISK}": ("D", "#7b3294"),
    f"exit: {END_OF_DATA}": ("s", "#636363"),
    f"exit: {OUTSIDE}": ("P", "#e08214"),
    f"exit: {LIQUIDATION}": ("h", "#67001f"),
    f"exit: {UNKNOWN}": ("p", "#969696"),
}
OVERLAY_COLOURS = ("#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22")


def plotting_missing() -> str | None:
    """None when the ``plot`` extra imports; else the modules that do not (for a message)."""
    missing = []
    for module in ("matplotlib", "pandas", "mplfinance"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return ", ".join(missing) or None


def image_formats() -> frozenset[str] | None:
    """The file suffixes matplotlib can write a chart as (its own list: ``savefig`` picks the
    format by suffix and refuses any other, after the run). None without matplotlib."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return None
    return frozenset(FigureCanvasBase.get_supported_filetypes())


@dataclass(frozen=True)
class ChartData:
    """What one symbol's chart draws, one value per candle."""

    symbol: str
    bars_per_candle: int
    times: np.ndarray  # open time of each candle, datetime64[s]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    equity: np.ndarray
    drawdown_pct: np.ndarray  # ≤ 0
    markers: dict[str, np.ndarray]  # kind -> price in the candle, NaN where none
    overlays: dict[str, np.ndarray]
    panels: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # name -> lines
    # kind -> trades of the symbol marked as it: a candle's marker may stand for several.
    trade_counts: dict[str, int] = field(default_factory=dict)

    def marker_count(self, kind: str) -> int:
        """Candles holding a marker of ``kind`` (not trades: see ``trade_counts``)."""
        return int(np.count_nonzero(~np.isnan(self.markers[kind])))


def chart_data(
    symbol: str,
    bars: OHLC,
    timeframe_s: int,
    equity_ts: Sequence[int] | np.ndarray,
    equity: Sequence[float] | np.ndarray,
    trades: Sequence[Trade],
    overlays: Mapping[str, Sequence[float | None] | np.ndarray] | None = None,
    max_candles: int = MAX_CANDLES,
    panels: Mapping[str, Mapping[str, Sequence[float | None] | np.ndarray]] | None = None,
) -> ChartData:
    """Candles, markers, overlays, equity and drawdown of ``symbol``, downsampled to at most
    ``max_candles`` candles. ``overlays`` are series aligned to ``bars`` (None or NaN: no
    value) drawn over the candles; ``panels`` groups of them drawn in a panel each."""
    n = int(bars.ts.size)
    if n == 0:
        raise ValueError(f"{symbol}: no bars to chart")
    k = max(1, -(-n // max_candles))  # bars per candle, rounded up
    starts = np.arange(0, n, k)
    ends = np.minimum(starts + k, n) - 1
    times = bars.ts[starts].astype("datetime64[s]")

    curve = np.asarray(equity, dtype=float)
    stamps = np.asarray(equity_ts, dtype="int64")
    if curve.size:
        # Equity when each candle closed, and the deepest drawdown reached inside it.
        peaks = np.maximum.accumulate(curve)
        drawdown = (curve - peaks) / peaks * 100.0
        closes_at = bars.ts[ends] + timeframe_s
        last = np.clip(np.searchsorted(stamps, closes_at, side="right") - 1, 0, curve.size - 1)
        first = np.concatenate(([0], np.minimum(last[:-1] + 1, curve.size - 1)))
        candle_equity = curve[last]
        candle_drawdown = np.minimum.reduceat(drawdown, first)
        candle_drawdown = np.minimum(candle_drawdown, drawdown[last])
    else:
        candle_equity = np.full(starts.size, np.nan)
        candle_drawdown = np.zeros(starts.size)

    def candle_of(ts: int) -> int:
        # The bar holding ts (fills happen at or after a bar's open); the end of data is the
        # last bar's close, which lands in the last candle.
        index = int(np.searchsorted(bars.ts, ts, side="right")) - 1
        return min(max(index, 0), n - 1) // k

    markers = {kind: np.full(starts.size, np.nan) for kind in MARKERS}
    counts = dict.fromkeys(MARKERS, 0)
    for trade in trades:
        if trade.symbol != symbol:
            continue
        entry = LONG_ENTRY if trade.direction > 0 else SHORT_ENTRY
        exit_ = f"exit: {exit_kind(trade.exit_reason)}"
        markers[entry][candle_of(trade.entry_ts)] = trade.entry_price
        markers[exit_][candle_of(trade.exit_ts)] = trade.exit_price
        counts[entry] += 1
        counts[exit_] += 1

    def at_candles(name: str, values: Sequence[float | None] | np.ndarray) -> np.ndarray:
        line: np.ndarray
        if isinstance(values, np.ndarray):
            line = values.astype(float)
        else:
            line = np.array([np.nan if v is None else v for v in values], dtype=float)
        if line.size != n:
            raise ValueError(f"overlay {name!r} has {line.size} values for {n} bars of {symbol}")
        at_close: np.ndarray = line[ends]  # the value at each candle's close
        return at_close

    series = {name: at_candles(name, values) for name, values in (overlays or {}).items()}
    lower = {
        panel: {name: at_candles(f"{panel} {name}", v) for name, v in lines.items()}
        for panel, lines in (panels or {}).items()
        if lines
    }
    return ChartData(
        symbol=symbol,
        bars_per_candle=k,
        times=times,
        open=bars.open[starts],
        high=np.maximum.reduceat(bars.high, starts),
        low=np.minimum.reduceat(bars.low, starts),
        close=bars.close[ends],
        equity=candle_equity,
        drawdown_pct=candle_drawdown,
        markers=markers,
        overlays=series,
        panels=lower,
        trade_counts=counts,
    )


def addplots(data: ChartData) -> list[dict[str, Any]]:
    """The ``mplfinance.make_addplot`` arguments of a chart (keyword dicts, for tests).

    Exits sit at their fill price. Entries point at their candle from outside it (a long's
    triangle below the low, a short's above the high): a reversal exits and enters at one
    price, and the two markers would hide each other.
    """
    plots: list[dict[str, Any]] = []
    for (name, line), colour in zip(data.overlays.items(), OVERLAY_COLOURS * 4, strict=False):
        plots.append({"data": line, "panel": 0, "color": colour, "width": 1.0, "label": name})
    pad = 0.012 * float(np.nanmax(data.high) - np.nanmin(data.low))
    for kind, prices in data.markers.items():
        if np.isnan(prices).all():
            continue  # mplfinance refuses an all-NaN scatter
        marker, colour = MARKERS[kind]
        shown = prices
        if kind == LONG_ENTRY:
            shown = np.minimum(prices, data.low) - pad
        elif kind == SHORT_ENTRY:
            shown = np.maximum(prices, data.high) + pad
        plots.append(
            {
                "data": shown,
                "panel": 0,
                "type": "scatter",
                "marker": marker,
                "color": colour,
                "edgecolors": "black",
                "linewidths": 0.4,
                "markersize": 45 if kind.startswith("exit: ") else 70,
                # Trades, as the report counts them (a candle may hold several).
                "label": f"{kind} ({data.trade_counts.get(kind, 0)})",
            }
        )
    panel = 0
    for panel, (name, lines) in enumerate(data.panels.items(), start=1):
        for (output, line), colour in zip(lines.items(), OVERLAY_COLOURS * 4, strict=False):
            if np.isnan(line).all():
                continue  # mplfinance cannot scale an all-NaN line
            plots.append(
                {
                    "data": line,
                    "panel": panel,
                    "color": colour,
                    "width": 0.9,
                    "label": output,
                    "ylabel": name,
                    "secondary_y": False,  # one scale per panel, not one per line
                }
            )
    plots.append(
        {
            "data": data.equity,
            "panel": panel + 1,
            "color": "#1f77b4",
            "width": 1.2,
            "ylabel": "equity",
        }
    )
    plots.append(
        {
            "data": data.drawdown_pct,
            "panel": panel + 2,
            "color": "#d62728",
            "width": 0.8,
            "ylabel": "drawdown %",
            "fill_between": {"y1": data.drawdown_pct, "y2": 0.0, "color": "#d62728", "alpha": 0.35},
        }
    )
    return plots


def write_chart(path: str | Path, title: str, data: ChartData, timeframe_s: int) -> Path:
    """Draw one symbol's chart to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplfinance as mpf
    import pandas as pd

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {"Open": data.open, "High": data.high, "Low": data.low, "Close": data.close},
        index=pd.DatetimeIndex(data.times),
    )
    span = _duration(timeframe_s * data.bars_per_candle)
    subtitle = f"{data.symbol}: 1 candle = {span}"
    if data.bars_per_candle > 1:
        subtitle += f" ({data.bars_per_candle} bars)"
    figure, axes = mpf.plot(
        frame,
        type="candle",
        style="yahoo",
        addplot=[mpf.make_addplot(**p) for p in addplots(data)],
        panel_ratios=(5, *(1.5 for _ in data.panels), 2, 1.2),
        figsize=(14, 9 + 1.5 * len(data.panels)),
        ylabel=data.symbol,
        datetime_format="%Y-%m-%d",
        xrotation=0,
        tight_layout=True,
        warn_too_much_data=10 * MAX_CANDLES,
        returnfig=True,
    )
    figure.suptitle(f"{title} — {subtitle}", fontsize=12)
    axes[0].legend(loc="upper left", fontsize=8, framealpha=0.85, ncol=2)
    # bbox "tight": mplfinance's right-hand tick labels are otherwise cut at the edge.
    figure.savefig(target, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return target


def write_charts(
    path: str | Path,
    title: str,
    bars: Mapping[str, OHLC],
    timeframe_s: int,
    equity_ts: Sequence[int] | np.ndarray,
    equity: Sequence[float] | np.ndarray,
    trades: Sequence[Trade],
    overlays: Mapping[str, Mapping[str, Sequence[float | None] | np.ndarray]] | None = None,
    panels: Mapping[str, Mapping[str, Mapping[str, Sequence[float | None] | np.ndarray]]]
    | None = None,
) -> list[Path]:
    """One chart per symbol (see the module's docstring): ``path``, then ``path-SYMBOL``.
    ``overlays`` and ``panels`` are by symbol (see :func:`chart_data`)."""
    target = Path(path)
    written = []
    for i, (symbol, ohlc) in enumerate(bars.items()):
        file = target if i == 0 else target.with_name(f"{target.stem}-{symbol}{target.suffix}")
        data = chart_data(
            symbol,
            ohlc,
            timeframe_s,
            equity_ts,
            equity,
            trades,
            (overlays or {}).get(symbol),
            panels=(panels or {}).get(symbol),
        )
        written.append(write_chart(file, title, data, timeframe_s))
    return written


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
