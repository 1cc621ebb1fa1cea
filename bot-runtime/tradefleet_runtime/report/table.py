"""The report table (rich)."""

from __future__ import annotations

from rich.table import Table

from tradefleet_runtime.report.metrics import Figures


def report_table(title: str, figures: Figures, currency: str) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    pf = "∞ (no losing trade)" if figures.profit_factor is None else f"{figures.profit_factor:.3f}"
    rows = [
        ("bars", f"{figures.bars:,}"),
        ("trades", f"{figures.trades:,}"),
        ("win rate", f"{figures.win_rate:.1%}"),
        ("net P&L", f"{figures.net_pnl:,.2f} {currency}"),
        ("fees", f"{figures.fees:,.2f} {currency}"),
        ("final equity", f"{figures.final_equity:,.2f} {currency}"),
        ("return", f"{figures.return_pct:.2f} %"),
        ("Sharpe (annualised)", f"{figures.sharpe:.3f}"),
        ("Sortino (annualised)", f"{figures.sortino:.3f}"),
        ("max drawdown", f"{figures.max_drawdown_pct:.2f} %"),
        ("profit factor", pf),
        ("exposure", f"{figures.exposure_pct:.1f} % of bars"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
