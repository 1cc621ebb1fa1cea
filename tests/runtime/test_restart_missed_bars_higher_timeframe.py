"""A restarted bot whose strategy decides on a higher timeframe built from its base bars
(docs/operations.md, "Disruptions", item 3): the newest closed bar of every series the strategy
trades is traded, a little late, as a running bot would have — a 4h bar stays the newest until
the next 4h bar closes, however many of its 1h bases closed since — and older bars stay
history. The decision goes out at the restart under the id it would have had (a restart that
hands the bar over again sends nothing twice); a paper bot fills it from the first live bar,
not at a missed bar's open.

The bot: a paper bot on 1h bars whose strategy buys 1 when a 4h bar (or, in one test, a daily
bar) closes above 105 while it is flat. Its first life handles a flat 4h bucket (bars 0-3).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from tests.runtime.test_restart_missed_bars import (
    NOT_RE_ARMED,
    told_clock_life,
    told_clock_manifest,
    told_clock_registry,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, Strategy, Subscription
from tradefleet_runtime.session import MissedBars

HOUR = 3600
FOUR = 4 * HOUR
DAY = 24 * HOUR
T4 = 1_700_000_000 // DAY * DAY  # a midnight: a 4h and a daily bucket start here
SYMBOL = "BTC/USDT"
SLIP = 2 / 10_000  # the manifest's slippage_bps


class HigherBuyer(Strategy):
    """Decides on ``higher`` bars only: buys 1 when one closes above 105 while flat. With
    ``base_too``, it also buys on a base bar closing at exactly 95 while flat (tag "h1")."""

    higher: ClassVar[int] = FOUR
    base_too: ClassVar[bool] = False

    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        wanted = [Subscription(s, self.higher) for s in symbols]
        if self.base_too:
            wanted += [Subscription(s, base_timeframe_s) for s in symbols]
        return wanted

    def on_bar(self, bar: Bar) -> None:
        if self.ctx.position(bar.symbol).quantity:
            return
        if bar.timeframe_s == self.higher and bar.close > 105:
            self.ctx.buy(bar.symbol, 1.0, tag="h4-up")
        elif bar.timeframe_s == HOUR and bar.close == 95.0:
            self.ctx.buy(bar.symbol, 1.0, tag="h1")


@pytest.fixture(autouse=True)
def _four_hours() -> None:
    HigherBuyer.higher, HigherBuyer.base_too = FOUR, False


def _registry() -> PluginRegistry:
    return told_clock_registry(("higher-buyer", HigherBuyer))


def _manifest(folder: Path) -> Path:
    return told_clock_manifest(
        folder, "h4-restart", "{name: higher-buyer}", fee_bps=10, slippage_bps=2
    )


def _bars(closes: list[float]) -> list[Bar]:
    return [Bar(SYMBOL, HOUR, T4 + i * HOUR, c, c, c, c, 1.0) for i, c in enumerate(closes)]


@dataclass
class Life:
    orders: list[str]  # tags of the orders this life created (re-armed ones left out)
    fills: list[tuple[int, float]]  # (ts, price) of this life's fills
    held: float
    warmed: list[str]  # its ``warmed_up`` messages
    known: int  # its ``order_known`` events (an order an earlier run sent, not sent again)


def _life(folder: Path, bars: list[Bar], now: float) -> Life:
    run_id, held = told_clock_life(folder, _manifest(folder), _registry(), bars, now, told=now)
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        orders = db.execute(
            f"SELECT o.tag FROM orders o WHERE o.run_id = ? AND {NOT_RE_ARMED}", (run_id,)
        ).fetchall()
        fills = db.execute("SELECT ts, price FROM fills WHERE run_id = ?", (run_id,)).fetchall()
        warmed = db.execute(
            "SELECT message FROM events WHERE run_id = ? AND kind = 'warmed_up'", (run_id,)
        ).fetchall()
        (known,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE run_id = ? AND kind = 'order_known'", (run_id,)
        ).fetchone()
    return Life(
        [str(tag) for (tag,) in orders],
        [(int(ts), float(price)) for ts, price in fills],
        held,
        [str(m) for (m,) in warmed],
        int(known),
    )


def _restart(folder: Path, outage: list[float], late: float = 30) -> Life:
    """A first life on the flat 4h bucket (bars 0-3), then a restart ``late`` seconds after
    the outage's last bar closed."""
    flat = _bars([100.0] * 4)
    assert _life(folder, flat, flat[-1].close_ts + 30).orders == []
    bars = _bars([100.0] * 4 + outage)
    return _life(folder, bars, bars[-1].close_ts + late)


def test_back_30_s_after_the_4h_close_the_4h_signal_is_traded(tmp_path: Path) -> None:
    # Bars 4-7 complete a 4h bar closing at 110 (T4 + 8h); back at T4 + 8h + 30 s.
    assert _restart(tmp_path, [110.0] * 4).orders == ["h4-up"]


@pytest.mark.parametrize("later", [1, 3])
def test_back_hours_later_the_newest_4h_bar_is_still_traded(tmp_path: Path, later: int) -> None:
    # The same 4h bar, still the newest closed one; ``later`` more 1h bars closed since.
    life = _restart(tmp_path, [110.0] * (4 + later))
    assert life.orders == ["h4-up"], (
        "the newest closed 4h bar (T4+4h..T4+8h) was handed over as history because its last "
        f"1h bar had a newer 1h bar after it: its signal was dropped ({life.orders})"
    )
    (warmed,) = life.warmed
    assert "1 order(s) sent for the newest closed bar of a higher timeframe" in warmed, warmed


def test_the_decision_fills_at_the_first_live_bar_not_at_a_missed_bars_open(
    tmp_path: Path,
) -> None:
    # Back at T4 + 10h + 30 s: bar 8 (opens at 111) closed while the bot was down, bar 9
    # (opens at 112) is the newest. The order went out at the restart: it was not on the
    # book at bar 8.
    life = _restart(tmp_path, [110.0] * 4 + [111.0, 112.0])
    ((ts, price),) = life.fills
    assert ts == T4 + 9 * HOUR and price == pytest.approx(112.0 * (1 + SLIP))
    assert life.held == 1.0


def test_a_4h_bar_a_newer_4h_bar_followed_stays_history(tmp_path: Path) -> None:
    # The 4h bar closing at 110 (T4 + 8h) was followed by one closing at 100 (T4 + 12h),
    # the newest: the older one's signal is not traded.
    assert _restart(tmp_path, [110.0] * 4 + [100.0] * 5).orders == []


def test_a_daily_strategy_back_hours_after_midnight_trades_the_days_close(
    tmp_path: Path,
) -> None:
    HigherBuyer.higher = DAY
    flat = _bars([100.0] * 24)  # day 0, handled by the first life
    assert _life(tmp_path, flat, flat[-1].close_ts + 30).orders == []
    # Day 1 closes at 110 at midnight; the bot is back five hours later.
    bars = _bars([100.0] * 24 + [110.0] * 24 + [110.0] * 5)
    life = _life(tmp_path, bars, bars[-1].close_ts + 30)
    assert life.orders == ["h4-up"]


def test_the_base_bars_that_closed_while_the_bot_was_down_stay_history(tmp_path: Path) -> None:
    # The strategy trades its 1h bars too: bar 8 (95) closed while the bot was down, its
    # 1h signal is dropped, while the newest 4h bar's goes.
    HigherBuyer.base_too = True
    life = _restart(tmp_path, [110.0] * 4 + [95.0, 100.0])
    assert life.orders == ["h4-up"]


def test_a_restart_handing_the_4h_bar_over_again_does_not_send_it_twice(tmp_path: Path) -> None:
    flat = _bars([100.0] * 4)
    assert _life(tmp_path, flat, flat[-1].close_ts + 30).orders == []
    # Back at T4 + 9h + 30 s, before the feed has sent bar 8: bar 7 closed while the bot was
    # down, the 4h bar is the newest; its order goes out, no live bar follows (nothing marked
    # handled after it).
    outage = _bars([100.0] * 4 + [110.0] * 4)
    second = _life(tmp_path, outage, T4 + 9 * HOUR + 30)
    assert (second.orders, second.fills) == (["h4-up"], [])
    # Back again 15 s later: the same 4h bar is the newest again. Its order is the one sent
    # (re-armed, filled at bar 8's open), not a second one.
    third = _life(tmp_path, _bars([100.0] * 4 + [110.0] * 5), T4 + 9 * HOUR + 45)
    assert third.orders == [] and third.known == 1
    ((ts, price),) = third.fills
    assert ts == T4 + 8 * HOUR and price == pytest.approx(110.0 * (1 + SLIP))
    assert third.held == 1.0


# -- the rule, pure ---------------------------------------------------------------------------


def _missed(came_back: float | None) -> MissedBars:
    missed = MissedBars(came_back=came_back)
    missed.add(Bar(SYMBOL, HOUR, T4 + 4 * HOUR, 1, 1, 1, 1, 1))  # closes at T4 + 5h
    return missed


@pytest.mark.parametrize(
    ("series", "came_back", "newest"),
    [
        (Bar(SYMBOL, FOUR, T4 + FOUR, 1, 1, 1, 1, 1), T4 + 9 * HOUR, True),
        (Bar(SYMBOL, FOUR, T4 + FOUR, 1, 1, 1, 1, 1), T4 + 12 * HOUR - 1, True),
        (Bar(SYMBOL, FOUR, T4 + FOUR, 1, 1, 1, 1, 1), T4 + 12 * HOUR, False),  # next closed
        (Bar(SYMBOL, HOUR, T4 + 7 * HOUR, 1, 1, 1, 1, 1), T4 + 9 * HOUR, False),  # a base bar
        (Bar(SYMBOL, FOUR, T4 + FOUR, 1, 1, 1, 1, 1), None, False),  # no market time read
    ],
)
def test_a_series_bar_is_the_newest_until_the_next_bar_of_its_series_closed(
    series: Bar, came_back: float | None, newest: bool
) -> None:
    assert _missed(came_back).still_newest(series) is newest


def test_the_bars_that_closed_while_the_bot_was_down_are_historys_last() -> None:
    missed = _missed(T4 + 9 * HOUR)
    before = Bar(SYMBOL, HOUR, T4 + 3 * HOUR, 1, 1, 1, 1, 1)
    assert not missed.closed_while_down(before)
    assert missed.closed_while_down(Bar(SYMBOL, HOUR, T4 + 4 * HOUR, 1, 1, 1, 1, 1))
    assert not MissedBars(came_back=T4 + 9 * HOUR).closed_while_down(before)  # none counted
