"""A higher timeframe's decision a restart sends for bars that closed while the bot was down
takes the id a running bot gave it (``Engine._send_missed_decisions``), so that an earlier run
that sent it — killed before the timestamp was marked handled — is recognised, and nothing is
sent twice.

Order ids number one bar time's orders across the symbols (``Engine._next_order_id``). At the
4h close C a running bot numbers, in the order it handles them, symbol A's 1h order (0) and 4h
order (1), then B's (2 and 3). A restart hands C's 1h bars over as history: their orders are
dropped, but each uses up its number, as a running bot's did.

The bot: a paper bot on 1h bars, two symbols, whose strategy buys 1 on a 1h bar closing at
exactly 111 (tag "h1") and on a 4h bar closing above 105 (tag "h4"), holding or not; both
symbols close at 111 at C = T4 + 8h, and at 100 or 110 before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.runtime.test_restart_missed_bars_higher_timeframe import FOUR, HOUR, T4
from tests.runtime.test_restart_missed_bars_restart_twice import _Killed, planted_life
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Bar, Strategy, Subscription

SYMBOLS = ("AAA/USDT", "BBB/USDT")
C = T4 + 8 * HOUR  # the close of bar 7, and of the 4h bar of bars 4-7


class BothTimeframes(Strategy):
    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        return [Subscription(s, t) for s in symbols for t in (base_timeframe_s, FOUR)]

    def on_bar(self, bar: Bar) -> None:
        if bar.timeframe_s == HOUR and bar.close == 111.0:
            self.ctx.buy(bar.symbol, 1.0, tag="h1")
        elif bar.timeframe_s == FOUR and bar.close > 105.0:
            self.ctx.buy(bar.symbol, 1.0, tag="h4")


def _bars(count: int) -> list[Bar]:
    closes = [100.0] * 4 + [110.0] * 3 + [111.0] + [100.0] * 4
    return [
        Bar(symbol, HOUR, T4 + i * HOUR, c, c, c, c, 1.0)
        for i, c in enumerate(closes[:count])
        for symbol in SYMBOLS
    ]


def _killed_before_cs_mark(journal: Journal) -> None:
    mark = journal.record_bar_handled

    def killed(close_ts: int) -> None:
        if close_ts == C:
            journal.flush()
            raise _Killed  # C's four orders are journaled; its handled mark is not
        mark(close_ts)

    journal.record_bar_handled = killed  # type: ignore[method-assign]


def test_a_restart_after_a_kill_at_the_4h_close_sends_no_decision_twice(tmp_path: Path) -> None:
    first = planted_life(
        tmp_path, BothTimeframes, _bars(8), C + 30, SYMBOLS, kill=_killed_before_cs_mark
    )
    assert first.orders == [(s, tag) for s in SYMBOLS for tag in ("h1", "h4")]
    # Back an hour later: bar 7 (C) closed while the bot was down, the 4h bar closing at C
    # is still the newest, and its decisions are the very orders the killed run sent.
    again = planted_life(tmp_path, BothTimeframes, _bars(9), C + HOUR + 30, SYMBOLS)
    assert again.orders == [], f"sent a second time under an id no run had used: {again.orders}"
    assert again.known == 2
