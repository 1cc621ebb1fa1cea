"""After a restart, a fill logs only the trades it closed, not the earlier runs' trades.

Seen live (`tradefleet serve`, Binance USDⓈ-M fake): a bot whose earlier run closed one trade
was restarted; its first fill, an *opening* buy, logged ``trade closed: long 0.1 BTCUSDT 50000 →
50000, net P&L -5.00 USDT, exit signal`` — a trade of the earlier run, with the new fill's reason
as its exit — and a later stop-loss fill logged three "trade closed" lines. ``run`` and
``serve`` log every trade close as one line; a line for a close that did not happen is a lie a
person (or a log alert) acts on. The listener is attached before the journal's trades are
restored, and took them for new ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.service.paper_bots import EURUSD, FIXED_SIZE, SIGNALS, paper_manifest, short_eurusd
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.trade_log import TradeLogListener

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BuyAndSell(Strategy):
    """Buys at the bar of time ``buy``, closes at the bar of time ``close``."""

    buy: int
    close: int | None = None

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == self.buy:
            self.ctx.buy(bar.symbol, 1000)
        elif bar.ts == self.close:
            self.ctx.close(bar.symbol)


def _bar_time(index: int) -> int:
    """The open time of the CSV's bar ``index`` (0-based), in epoch seconds."""
    with EURUSD.open() as source:
        next(source)
        row = [line for _, line in zip(range(index + 1), source, strict=False)][-1]
    stamp = row.split(",")[0]
    parsed = datetime.strptime(stamp, "%d.%m.%Y %H:%M:%S.%f").replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _run(folder: Path, bars: int, strategy: Strategy) -> None:
    manifest = paper_manifest("w5-log", SIGNALS, short_eurusd(folder, bars), (FIXED_SIZE,))
    bot = assemble(manifest, PluginRegistry.discover(), ROOT)
    bot.strategy = strategy
    journal = Journal(folder / "bot.sqlite")
    try:
        listener = TradeLogListener(bot.name, "USD")
        BotSession(bot, journal, prepare=listener.attach).run_to_end()
    finally:
        journal.close()


def test_a_restarted_bots_opening_fill_logs_no_trade_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _run(
        tmp_path, 20, BuyAndSell(buy=_bar_time(2), close=_bar_time(5))
    )  # one trade, closed in the first run
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tradefleet.trading"):
        # The restart resumes after bar 20: its strategy buys at a new bar and closes nothing.
        _run(tmp_path, 30, BuyAndSell(buy=_bar_time(23)))
    fills = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fill:")]
    closed = [r.getMessage() for r in caplog.records if "trade closed" in r.getMessage()]
    assert fills, "the restarted run made its opening fill"
    assert closed == [], f"no trade closed in the restarted run, but it logged: {closed}"
