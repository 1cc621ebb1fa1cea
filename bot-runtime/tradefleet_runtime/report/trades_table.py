"""``tradefleet report --trades``: every trade of a run, one row each (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.table import Table

from tradefleet_runtime.model import Trade
from tradefleet_runtime.report.table import duration, signed


def trades_table(title: str, trades: Sequence[Trade], currency: str) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    for column, right in (
        ("#", True),
        ("symbol", False),
        ("side", False),
        ("quantity", True),
        ("entry time (UTC)", False),
        ("entry price", True),
        ("exit time (UTC)", False),
        ("exit price", True),
        ("held", True),
        (f"net P&L ({currency})", True),
        ("entry reason", False),
        ("exit reason", False),
    ):
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for number, trade in enumerate(trades, 1):
        table.add_row(
            str(number),
            trade.symbol,
            "long" if trade.direction > 0 else "short",
            f"{trade.quantity:.10g}",
            _time(trade.entry_ts),
            f"{trade.entry_price:.10g}",
            _time(trade.exit_ts),
            f"{trade.exit_price:.10g}",
            duration(trade.exit_ts - trade.entry_ts),
            signed(f"{trade.net_pnl:,.2f}", trade.net_pnl),
            trade.entry_reason or "-",
            trade.exit_reason or "-",
        )
    return table


def _time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
