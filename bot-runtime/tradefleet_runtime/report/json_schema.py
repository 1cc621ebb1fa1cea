"""The report as one JSON object: the only place its shape is decided.

``tradefleet backtest --json`` and ``tradefleet report --json`` both print ``report_json`` of a
``Report`` (built by ``metrics.build_report`` from a run just finished or from its journal), so
the two cannot drift apart. The first keys are the figures scripts relied on before the
trader's report existed; non-finite numbers are written as null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from tradefleet_runtime.model import Trade
from tradefleet_runtime.report.metrics import Report, exit_kind

# The figures `backtest --json` printed before the trader's report, in this order: scripts
# rely on these keys.
FIGURE_KEYS = (
    "trades",
    "win_rate",
    "net_pnl",
    "fees",
    "final_equity",
    "return_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "profit_factor",
    "exposure_pct",
    "bars",
    "periods_per_year",
)


def report_json(report: Report, currency: str) -> dict[str, object]:
    """Everything the report table shows, as plain JSON values."""
    figures = report.figures.as_json()
    out: dict[str, object] = {key: figures[key] for key in FIGURE_KEYS}
    out.update(
        {
            "currency": currency,
            # Funding booked into cash (+ received, - paid): in net_pnl, in no trade's.
            "funding": report.funding,
            "start": _iso(report.start_ts),
            "end": _iso(report.end_ts),
            "years": report.years,
            "cagr_pct": None if report.cagr is None else report.cagr * 100.0,
            "calmar": report.calmar,
            "expectancy": report.expectancy,
            "average_win": report.average_win,
            "average_loss": report.average_loss,
            "average_trade_duration_s": report.average_duration_s,
            "longest_losing_streak": report.longest_losing_streak,
            "long_short": {k: g.as_json() for k, g in report.by_direction.items()},
            "symbols": {k: g.as_json() for k, g in report.by_symbol.items()},
            "exit_reasons": [
                {"reason": reason, "kind": exit_kind(reason), **group.as_json()}
                for reason, group in report.exit_reasons.items()
            ],
            "monthly_returns": [
                {"month": month, "return_pct": value * 100.0} for month, value in report.monthly
            ],
            "benchmark": None if report.benchmark is None else report.benchmark.as_json(),
        }
    )
    return _finite(out)  # type: ignore[return-value]


def trades_json(trades: Sequence[Trade]) -> list[dict[str, object]]:
    """The trade list of ``tradefleet report --trades --json``."""
    return [
        _finite(  # type: ignore[misc]
            {
                "symbol": t.symbol,
                "side": "long" if t.direction > 0 else "short",
                "quantity": t.quantity,
                "entry_time": _iso(t.entry_ts),
                "entry_price": t.entry_price,
                "exit_time": _iso(t.exit_ts),
                "exit_price": t.exit_price,
                "gross_pnl": t.gross_pnl,
                "fees": t.fees,
                "funding": t.funding,
                "net_pnl": t.net_pnl,
                "entry_reason": t.entry_reason,
                "exit_reason": t.exit_reason,
                "exit_kind": exit_kind(t.exit_reason),
            }
        )
        for t in trades
    ]


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _finite(value: object) -> object:
    """The value with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
