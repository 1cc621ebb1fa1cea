"""The report tables (rich): the figures, then long/short, symbols, exit reasons, months."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tradefleet_runtime.report.metrics import Figures, Report, TradeGroup, exit_kind

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def report_table(title: str, report: Report, currency: str) -> Group:
    """Every table of the report, in reading order (the JSON carries the same figures)."""
    parts: list[Table] = [_figures(title, report, currency)]
    if report.by_direction:
        parts.append(_groups("long vs short", "side", report.by_direction, currency))
    if len(report.by_symbol) > 1:
        parts.append(_groups("per symbol", "symbol", report.by_symbol, currency))
    if report.exit_reasons:
        parts.append(_groups("exit reasons", "reason", report.exit_reasons, currency, kind=True))
    if report.monthly:
        parts.append(_monthly(report.monthly))
    return Group(*parts)


def _figures(title: str, report: Report, currency: str) -> Table:
    figures = report.figures
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("bars", f"{figures.bars:,}"),
        ("span", f"{report.years:.2f} years"),
        ("trades", f"{figures.trades:,}"),
        ("win rate", f"{figures.win_rate:.1%}"),
        ("net P&L", _money(figures.net_pnl, currency)),
        ("fees", _money(figures.fees, currency)),
        *([("funding", _money(report.funding, currency))] if report.funding else []),
        ("final equity", _money(figures.final_equity, currency)),
        ("return", f"{figures.return_pct:.2f} %"),
        ("CAGR", _pct(report.cagr)),
        ("Sharpe (annualised)", f"{figures.sharpe:.3f}"),
        ("Sortino (annualised)", f"{figures.sortino:.3f}"),
        ("max drawdown", f"{figures.max_drawdown_pct:.2f} %"),
        ("Calmar", "-" if report.calmar is None else f"{report.calmar:.3f}"),
        ("profit factor", _profit_factor(figures)),
        ("expectancy (per trade)", _money(report.expectancy, currency)),
        ("average win", _money(report.average_win, currency)),
        ("average loss", _money(report.average_loss, currency)),
        ("average trade duration", duration(report.average_duration_s)),
        ("longest losing streak", f"{report.longest_losing_streak} trades"),
        ("exposure", f"{figures.exposure_pct:.1f} % of bars"),
    ]
    if report.benchmark is not None:
        held = report.benchmark.return_pct
        names = ", ".join(s.symbol for s in report.benchmark.symbols)
        rows.append((f"buy and hold ({names}, equal weight)", f"{held:.2f} %"))
        # A difference of two returns: percentage points, not a percent of anything.
        over = figures.return_pct - held
        rows.append(("return over buy and hold", f"{over:+.2f} percentage points"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _groups(
    title: str, label: str, groups: Mapping[str, TradeGroup], currency: str, *, kind: bool = False
) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column(label)
    if kind:
        table.add_column("kind")
    for column in ("trades", "win rate", f"net P&L ({currency})", "expectancy"):
        table.add_column(column, justify="right")
    for name, group in groups.items():
        cells = [name, exit_kind(name)] if kind else [name]
        table.add_row(
            *cells,
            f"{group.trades:,}",
            f"{group.win_rate:.1%}",
            f"{group.net_pnl:,.2f}",
            f"{group.expectancy:,.2f}",
        )
    return table


def _monthly(monthly: list[tuple[str, float]]) -> Table:
    """Months in a year-by-month grid, with each year's compounded return."""
    years: dict[str, dict[int, float]] = {}
    for month, value in monthly:
        year, number = month.split("-")
        years.setdefault(year, {})[int(number)] = value
    # Compact (one decimal, no sign for gains, no frame) so a year fits 80 columns.
    table = Table(
        title="monthly returns %",
        show_header=True,
        header_style="bold",
        box=None,
        padding=(0, 0, 0, 1),
    )
    table.add_column("year")
    for name in MONTHS:
        table.add_column(name, justify="right")
    table.add_column("year", justify="right")
    for year, months in years.items():
        total = math.prod(1.0 + v for v in months.values()) - 1.0
        cells = [_signed(months[m]) if m in months else "" for m in range(1, 13)]
        table.add_row(year, *cells, _signed(total))
    return table


def _profit_factor(figures: Figures) -> str:
    """Gains over losses. Without a losing trade there is no ratio: ∞ when trades won, else
    nothing to divide (no trade at all, or only break-even ones)."""
    if figures.profit_factor is not None:
        return f"{figures.profit_factor:.3f}"
    if not figures.trades:
        return "- (no trades)"
    return "∞ (no losing trade)" if figures.win_rate > 0 else "- (no winning or losing trade)"


def signed(text: str, value: float) -> Text:
    """``text`` green for a gain, red for a loss (a style, not markup: printed as given)."""
    return Text(text, style="green" if value > 0 else "red" if value < 0 else "")


def _signed(value: float) -> Text:
    return signed(f"{value * 100.0:.1f}", value)


def _money(value: float | None, currency: str) -> str:
    return "-" if value is None else f"{value:,.2f} {currency}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100.0:.2f} %"


def duration(seconds: float | None) -> str:
    """A span for people: "2d 5h", "3h 20min", "45min"."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60.0)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}min" if minutes else f"{hours}h"
    return f"{minutes}min"
