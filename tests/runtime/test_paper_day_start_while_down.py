"""The day start after a restart over fills made while the bot was
down, on a *paper* bot. The paper broker is its own venue (``MissedBarMatcher``): it works the
orders that rested before the restart over the bars that closed meanwhile
(``Engine._worked_while_down``), all before the strategy is shown those bars — the same
situation as a live bot's reconciliation, which books the venue's fills first. Those fills
are fills made while the bot was down too (``Engine._ahead``): the new day begins at its first
close without them, not at the first live close after the stop's loss.

The bot: paper, hourly bars, no fees. Its first life buys 100 at 108 (bar of 22:00 of D),
stop-loss 104.5. It is down from 23:00; the bar closing at midnight closes at 106; the one of
00:00 of D+1 dips to 100 (the stop fills at 104.5, a loss of 150 against midnight's 106); it is
back 30 s after the 03:00 close. A bot that ran through began D+1 at the midnight close (the
position at 106): its P&L today is -150.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.runtime.test_restart_missed_bars import (
    ToldClockFeed,
    told_clock_manifest,
    told_clock_registry,
)
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Bar, Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
DAY = 86_400
D = 1_700_000_000 // DAY * DAY
T0 = D + 19 * HOUR
SYMBOL = "BTC/USDT"
OHLC = tuple[float, float, float, float]
LIFE1: list[OHLC] = [(100.0,) * 4, (100.0,) * 4, (110.0,) * 4, (108.0,) * 4]
QUIET: OHLC = (106.0, 107.0, 105.0, 106.0)
DIP: OHLC = (106.0, 106.5, 100.0, 105.0)  # the stop at 104.5 inside it


class Buy100At110(Strategy):
    def on_bar(self, bar: Bar) -> None:
        if bar.close == 110.0 and not self.ctx.position(bar.symbol).quantity:
            self.ctx.buy(bar.symbol, 100.0, stop_loss=104.5, tag="in")


def _bars(ohlc: list[OHLC]) -> list[Bar]:
    return [
        Bar(SYMBOL, HOUR, T0 + i * HOUR, o, h, low, c, 1.0) for i, (o, h, low, c) in enumerate(ohlc)
    ]


def _life(folder: Path, ohlc: list[OHLC]) -> Engine:
    bars = _bars(ohlc)
    now = bars[-1].close_ts + 30
    manifest = told_clock_manifest(folder, "paper-day", "{name: buy-100}")
    registry = told_clock_registry(("buy-100", Buy100At110))
    ToldClockFeed.bars_given, ToldClockFeed.market_now = bars, now
    bot = assemble(load_manifest(manifest), registry, folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(
        bot, journal, bars=None, should_stop=threading.Event().is_set, clock=lambda: now
    )
    try:
        engine = session.open()
        session.run()
        session.close("completed")
    finally:
        journal.close()
    return engine


def test_a_paper_stop_filled_after_midnight_while_down_is_the_new_days_loss(
    tmp_path: Path,
) -> None:
    first = _life(tmp_path, LIFE1)
    assert first.portfolio.position(SYMBOL).quantity == pytest.approx(100.0)
    # Bars 4 (closes 00:00 of D+1) to 6 closed while the bot was down; bar 7 is the newest.
    second = _life(tmp_path, [*LIFE1, QUIET, DIP, QUIET, QUIET])
    assert second.portfolio.position(SYMBOL).quantity == pytest.approx(0.0)
    pnl_today = second.equity - second.day_start_equity
    assert pnl_today == pytest.approx(-150.0, abs=1.0), (
        f"P&L today {pnl_today:.2f}: D+1 began at the first live close (03:00), after the "
        "paper venue's stop filled at 00:00-01:00 of D+1 while the bot was down; a bot that "
        "ran through began it at the midnight close and lost 150 on D+1"
    )
