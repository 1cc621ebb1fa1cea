"""Performance figures of a run, as pure functions of its equity curve and trades.

Sharpe and Sortino are annualised with the number of bars per year *observed in the data*
(a forex market closed at weekends has about 6,200 hourly bars a year, crypto 8,766), with a
zero risk-free rate. Returns are simple per-bar returns of equity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from tradefleet_runtime.model import Trade

SECONDS_PER_YEAR = 365.25 * 86400


@dataclass(frozen=True)
class Figures:
    trades: int
    win_rate: float
    net_pnl: float
    fees: float
    final_equity: float
    return_pct: float
    sharpe: float
    sortino: float
    max_drawdown_pct: float
    profit_factor: float | None  # None when there are no losing trades
    exposure_pct: float
    bars: int
    periods_per_year: float

    def as_json(self) -> dict[str, float | int | None]:
        figures = asdict(self)
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in figures.items()
        }


def periods_per_year(timestamps: Sequence[int] | np.ndarray) -> float:
    if len(timestamps) < 2:
        return 0.0
    span = float(timestamps[-1]) - float(timestamps[0])
    return (len(timestamps) - 1) / (span / SECONDS_PER_YEAR) if span > 0 else 0.0


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a fraction of that peak."""
    if equity.size == 0:
        return 0.0
    peaks = np.maximum.accumulate(equity)
    return float(np.max((peaks - equity) / peaks))


def sharpe_sortino(equity: np.ndarray, initial: float, per_year: float) -> tuple[float, float]:
    if equity.size < 2 or per_year <= 0:
        return 0.0, 0.0
    curve = np.concatenate(([initial], equity))
    returns = np.diff(curve) / curve[:-1]
    mean = float(returns.mean())
    std = float(returns.std(ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    scale = math.sqrt(per_year)
    sharpe = mean / std * scale if std > 0 else 0.0
    sortino = mean / downside * scale if downside > 0 else 0.0
    return sharpe, sortino


def compute_figures(
    *,
    initial: float,
    timestamps: Sequence[int] | np.ndarray,
    equity: Sequence[float] | np.ndarray,
    exposure: Sequence[float] | np.ndarray,
    trades: Sequence[Trade],
    fees: float,
) -> Figures:
    curve = np.asarray(equity, dtype=float)
    final = float(curve[-1]) if curve.size else initial
    per_year = periods_per_year(timestamps)
    sharpe, sortino = sharpe_sortino(curve, initial, per_year)
    wins = [t.net_pnl for t in trades if t.net_pnl > 0]
    losses = [t.net_pnl for t in trades if t.net_pnl <= 0]
    gross_loss = -sum(losses)
    profit_factor = sum(wins) / gross_loss if gross_loss > 0 else None
    # Share of bars that closed with a position open.
    exposed = float(np.mean(np.asarray(exposure, dtype=float) > 0.0)) if len(exposure) else 0.0
    return Figures(
        trades=len(trades),
        win_rate=len(wins) / len(trades) if trades else 0.0,
        net_pnl=final - initial,
        fees=fees,
        final_equity=final,
        return_pct=(final / initial - 1.0) * 100.0,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown_pct=max_drawdown(curve) * 100.0,
        profit_factor=profit_factor,
        exposure_pct=exposed * 100.0,
        bars=int(curve.size),
        periods_per_year=per_year,
    )
