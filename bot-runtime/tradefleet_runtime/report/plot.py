"""The equity-curve plot: equity with trades marked, and drawdown below (matplotlib, lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tradefleet_runtime.model import Trade


def write_plot(
    path: str | Path,
    title: str,
    timestamps: Sequence[int],
    equity: Sequence[float],
    trades: Sequence[Trade],
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    times = [datetime.fromtimestamp(ts, UTC) for ts in timestamps]
    curve = np.asarray(equity, dtype=float)
    peaks = np.maximum.accumulate(curve) if curve.size else curve
    drawdown = (curve - peaks) / peaks * 100.0 if curve.size else curve
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot(times, curve, linewidth=1.0, color="#1f77b4", label="equity")
    index = {ts: i for i, ts in enumerate(timestamps)}
    for trade in trades:
        exit_i = _nearest(index, timestamps, trade.exit_ts)
        if exit_i is None:
            continue
        colour = "#2ca02c" if trade.net_pnl > 0 else "#d62728"
        marker = "^" if trade.direction > 0 else "v"
        top.scatter(times[exit_i], curve[exit_i], s=14, color=colour, marker=marker, zorder=3)
    top.set_title(title)
    top.set_ylabel("equity")
    top.grid(alpha=0.3)
    top.legend(
        loc="upper left",
        fontsize=8,
        title="▲ long / ▼ short exits; green win, red loss",
        title_fontsize=7,
    )
    bottom.fill_between(times, drawdown, 0.0, color="#d62728", alpha=0.4, linewidth=0)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def _nearest(index: dict[int, int], timestamps: Sequence[int], ts: int) -> int | None:
    if ts in index:
        return index[ts]
    position = int(np.searchsorted(np.asarray(timestamps), ts))
    if position >= len(timestamps):
        return len(timestamps) - 1 if timestamps else None
    return position
