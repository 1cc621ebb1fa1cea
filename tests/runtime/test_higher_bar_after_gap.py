"""A higher-timeframe bar whose last base bars never came is traded as a live bot trades it (W33).

The aggregator ends such a bar when its symbol's next base bar comes. FX closes Friday 22:00
UTC, so the Friday 20:00 4h bucket holds two hours every week and is ended by Sunday's first
bar: the backtest handed it to the strategy then and traded it at Sunday's gapped open, where a
live bot (``session.LateBars``, the judge ``Engine.run(late=...)`` uses for live feeds) shows
that bar as history — a newer 4h bar had closed on the clock — and sends nothing. The engine
now judges such a bar on the bars' own clock (the close of the bar that ended it) in every run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from tests.runtime.helpers import HOUR, make_engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.sdk import Strategy, Subscription
from tradefleet_runtime.session import LateBars

FOUR = 4 * HOUR
MONDAY = 1_704_067_200  # 2024-01-01 00:00 UTC
FRIDAY = MONDAY + 4 * 86400
SUNDAY_OPEN = FRIDAY + 2 * 86400 + 22 * HOUR


class FourHourBuyer(Strategy):
    """Buys 1 when a 4h bar closes up while flat; records each 4h bar it is shown."""

    def __init__(self) -> None:
        super().__init__(None)
        self.seen: list[Bar] = []

    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        return [Subscription(s, FOUR) for s in symbols]

    def on_bar(self, bar: Bar) -> None:
        self.seen.append(bar)
        if not self.ctx.position(bar.symbol).quantity and bar.close > bar.open:
            self.ctx.buy(bar.symbol, 1.0, tag="h4-up")


def _bar(ts: int, open_: float, close: float) -> Bar:
    high, low = max(open_, close) + 0.1, min(open_, close) - 0.1
    return Bar("EURUSD", HOUR, ts, open_, high, low, close, 1.0)


def _fx_week_end() -> list[Bar]:
    """Friday 16:00-21:00: the 16:00 bucket falls, the 20:00 one (two hours) rises; then
    Sunday 22:00 onwards, falling."""
    out = [_bar(FRIDAY + h * HOUR, 100.0, 99.9) for h in range(16, 20)]
    out += [_bar(FRIDAY + h * HOUR, 100.0 + h - 20, 101.0 + h - 20) for h in (20, 21)]
    out += [_bar(SUNDAY_OPEN + k * HOUR, 90.0 - k * 0.1, 89.9 - k * 0.1) for k in range(6)]
    return out


def _feed(bars: list[Bar], clock: list[float]) -> Iterator[Bar]:
    """The bars, each handed over 2 s after its close on the market's clock."""
    for bar in bars:
        clock[0] = bar.close_ts + 2
        yield bar


def _run(live: bool, bars: list[Bar]) -> tuple[list[tuple[int, str]], FourHourBuyer, Journal]:
    strategy = FourHourBuyer()
    journal = Journal(":memory:")
    engine = make_engine(strategy, symbols=("EURUSD",), journal=journal)
    clock = [0.0]
    if live:
        late = LateBars(lambda: clock[0], 0)
        engine.run(late.watch(_feed(bars, clock)), late=late)
    else:
        engine.run(_feed(bars, clock))
    engine.finish()
    rows = journal.query(
        "SELECT created_ts, tag FROM orders WHERE parent_id IS NULL ORDER BY created_ts"
    )
    return [(int(ts), str(tag)) for ts, tag in rows], strategy, journal


def test_the_backtest_drops_fridays_4h_bar_as_a_live_bot_does() -> None:
    backtest, strategy, journal = _run(False, _fx_week_end())
    live, _, _ = _run(True, _fx_week_end())
    assert backtest == live == [], f"backtest sent {backtest}, a live bot on the same bars {live}"
    # The strategy was shown the bar (its indicators see it), as history.
    assert [b.ts for b in strategy.seen][:2] == [FRIDAY + 16 * HOUR, FRIDAY + 20 * HOUR]
    [(message,)] = journal.query("SELECT message FROM events WHERE kind = 'bars_late'")
    assert "lacked its last base bars" in message


def test_a_bucket_missing_its_last_hour_is_traded_alike_by_backtest_and_live() -> None:
    # Ended by the next bar an hour late, before the next 4h bar closed: both trade it then.
    bars = [_bar(MONDAY + h * HOUR, 100.0, 99.9) for h in range(0, 4)]
    bars += [_bar(MONDAY + h * HOUR, 100.0, 101.0) for h in range(4, 7)]  # no 07:00
    bars += [_bar(MONDAY + h * HOUR, 101.0, 100.5) for h in range(8, 12)]
    backtest, _, _ = _run(False, bars)
    assert backtest == _run(True, bars)[0] == [(MONDAY + 9 * HOUR, "h4-up")]


WEEK = 7 * 86400


def _three_fx_weekends() -> list[Bar]:
    """Three weeks' Friday 16:00-21:00 and Sunday 22:00 to Monday 15:00."""
    bars: list[Bar] = []
    for week in range(3):
        bars += [_bar(FRIDAY + week * WEEK + h * HOUR, 100.0, 99.9) for h in range(16, 22)]
        bars += [_bar(SUNDAY_OPEN + week * WEEK + k * HOUR, 90.0, 89.9) for k in range(18)]
    return bars


def test_each_weekends_dropped_bar_is_said_at_its_weekend_as_a_live_bot_says_it() -> None:
    # R51: with no live judge no bar on time came to say them: one event at the run's end.
    said = []
    for live in (True, False):
        _, _, journal = _run(live, _three_fx_weekends())
        rows = journal.query("SELECT ts, data FROM events WHERE kind = 'bars_late' ORDER BY id")
        said.append([(int(ts), json.loads(data)) for ts, data in rows])
    saturdays = [FRIDAY + w * WEEK + 24 * HOUR for w in range(3)]
    assert [data for _, data in said[0]] == [
        {"bars": 1, "first_close": c, "last_close": c} for c in saturdays
    ]
    # Said as it is shown (a live bot: at its next bar on time, an hour later).
    assert [data for _, data in said[1]] == [data for _, data in said[0]]
    assert [ts for ts, _ in said[1]] == [c + 47 * HOUR for c in saturdays]
