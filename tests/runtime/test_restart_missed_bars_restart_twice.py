"""A restarted paper bot killed before it handled a live bar (a crash loop, a kill while it
waited for the newest candle), then restarted again: the second restart is handed the same
bars that closed while the bot was down, and its venue works over each of them only the orders
that were on its book by then (``MissedBars.rested_on``; docs/operations.md, "Disruptions",
item 3).

An order the first restart sent — a higher timeframe's decision, a close owed — carries an
earlier bar time, but reached the venue when that restart came back (journaled:
``Journal.record_came_back``): it fills from that restart's first live bar on, never at the
open of a bar that had closed before it was sent. An order resting since before the first
restart, and a bracket child its entry's fill put on the book during the outage, are worked from
their own time, as before.

The higher-timeframe bot is that of tests/runtime/test_restart_missed_bars_higher_timeframe.py
(a paper bot on 1h bars buying 1 at market when a 4h bar closes above 105 while flat; with
``base_too``, also on a 1h bar closing at exactly 95).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runtime.test_restart_missed_bars import (
    NOT_RE_ARMED,
    Killed,
    latest_run_id,
    told_clock_life,
    told_clock_manifest,
    told_clock_registry,
)
from tests.runtime.test_restart_missed_bars_higher_timeframe import (
    HOUR,
    SLIP,
    SYMBOL,
    T4,
    HigherBuyer,
    _bars,
    _four_hours,  # noqa: F401  (autouse fixture: the strategy's 4h series)
    _life,
)
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, OrderType, Side
from tradefleet_runtime.sdk import Bar, Strategy
from tradefleet_runtime.session import MissedBars, rested_since

OHLC = tuple[float, float, float, float]
_Killed = Killed  # the name tests/runtime/test_restart_missed_bars_order_ids.py imports


def test_a_second_restart_fills_the_first_restarts_decision_from_a_live_bar(
    tmp_path: Path,
) -> None:
    flat = _bars([100.0] * 4)
    assert _life(tmp_path, flat, flat[-1].close_ts + 30).orders == []
    # Restart 1 at T4 + 10h + 30 s: bars 4-7 make the 4h bar closing at 110 (T4 + 8h), still
    # the newest; bar 8 (T4 + 8h .. 9h) closed while the bot was down, and the process is
    # killed before the newest bar (bar 9) comes through.
    outage = _bars([100.0] * 4 + [110.0] * 4 + [111.0])
    first = _life(tmp_path, outage, T4 + 10 * HOUR + 30)
    assert (first.orders, first.fills) == (["h4-up"], [])
    # Restart 2, 15 s later: bar 8 missed again, bar 9 (opens at 112) live.
    second = _life(tmp_path, _bars([100.0] * 4 + [110.0] * 4 + [111.0, 112.0]), T4 + 10 * HOUR + 45)
    assert second.orders == []  # not sent twice
    ((ts, price),) = second.fills
    assert ts == T4 + 9 * HOUR and price == pytest.approx(112.0 * (1 + SLIP)), (
        "the order sent at the first restart was filled at a missed bar's open, before it "
        f"was sent: {(ts, price)}"
    )


def test_a_decision_re_armed_by_a_later_restart_keeps_the_time_the_first_sent_it(
    tmp_path: Path,
) -> None:
    flat = _bars([100.0] * 4)
    assert _life(tmp_path, flat, flat[-1].close_ts + 30).orders == []
    closes = [100.0] * 4 + [110.0] * 4 + [111.0, 112.0, 113.0, 104.0]
    first = _life(tmp_path, _bars(closes[:9]), T4 + 10 * HOUR + 30)
    assert first.orders == ["h4-up"]  # sent at T4 + 10h + 30 s: bar 9 is its first live bar
    # Restart 2 at T4 + 11h + 30 s, its feed still without bar 9: none of bars 4-8 was worked
    # for the order, re-armed (journaled again, by this run), and no live bar came.
    second = _life(tmp_path, _bars(closes[:9]), T4 + 11 * HOUR + 30)
    assert (second.orders, second.fills, second.known) == ([], [], 1)
    # Restart 3: bars 9 and 10 closed while the bot was down too. The order has been on the
    # book since the first restart: bar 9 fills it (taken as sent at the second, bar 10).
    third = _life(tmp_path, _bars(closes), T4 + 12 * HOUR + 30)
    ((ts, price),) = third.fills
    assert ts == T4 + 9 * HOUR and price == pytest.approx(112.0 * (1 + SLIP)), (ts, price)
    assert third.held == 1.0


def _owe_a_close(folder: Path) -> None:
    """Journal, in the latest run, that the stop policy's flatten still owes the close of the
    position (a ``close_owed`` event: the run ended before its close was sent)."""
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        run_id = latest_run_id(db)
        data = {"symbol": SYMBOL, "by": "stop-flatten", "owed": True}
        db.execute(
            "INSERT INTO events (run_id, ts, kind, message, data) VALUES (?, ?, ?, ?, ?)",
            (run_id, T4 + 4 * HOUR, "close_owed", "close owed", json.dumps(data)),
        )
        db.commit()


def test_a_close_owed_sent_at_the_first_restart_fills_from_its_first_live_bar(
    tmp_path: Path,
) -> None:
    HigherBuyer.base_too = True  # buys at bar 1's close (95), filled at bar 2's open
    first = _bars([100.0, 95.0, 100.0, 100.0])
    assert _life(tmp_path, first, first[-1].close_ts + 30).held == 1.0
    _owe_a_close(tmp_path)
    closes = [100.0, 95.0, 100.0, 100.0, 101.0, 102.0, 103.0, 104.0, 101.5, 102.5, 103.5, 104.5]
    # Restart 1 at T4 + 10h + 30 s sends the close (stamped T4 + 4h, its last handled bar's
    # close) and is killed before its first live bar, bar 9.
    restart = _life(tmp_path, _bars(closes[:9]), T4 + 10 * HOUR + 30)
    assert (restart.orders, restart.fills, restart.held) == (["stop-flatten"], [], 1.0)
    # Restart 2: bars 4-10 closed while the bot was down. The close was on the venue's book
    # from bar 9 on, not at bar 4's open (101) some six hours before it was sent.
    again = _life(tmp_path, _bars(closes), T4 + 12 * HOUR + 30)
    assert again.orders == []
    ((ts, price),) = again.fills
    assert ts == T4 + 9 * HOUR and price == pytest.approx(102.5 * (1 - SLIP)), (ts, price)
    assert again.held == 0.0


# -- a bracket child put on the book during the outage -----------------------------------------


class DipBuyer(Strategy):
    """On bar 1 only: a limit buy of 1 at 95, stop-loss 90, take-profit 110."""

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == T4 + HOUR:
            self.ctx.buy(
                bar.symbol, 1.0, order_type=OrderType.LIMIT, price=95.0, stop_loss=90.0,
                take_profit=110.0, tag="dip",
            )  # fmt: skip


@dataclass
class Planted:
    orders: list[tuple[str, str]]  # (symbol, tag) of the orders the life created, not re-armed
    fills: list[tuple[str, int, float]]  # (reason, ts, price) of its fills
    known: int  # its ``order_known`` events


def planted_life(
    folder: Path,
    strategy: type[Strategy],
    bars: list[Bar],
    now: float,
    symbols: Sequence[str] = (SYMBOL,),
    kill: Callable[[Journal], None] | None = None,
) -> Planted:
    """A life of a paper bot trading ``strategy`` on ``bars``, the market's time ``now``;
    ``kill`` (given the journal) sets up a ``_Killed`` raised part-way through the run."""
    manifest = told_clock_manifest(folder, "restart-twice", "{name: planted}", symbols=symbols)
    registry = told_clock_registry(("planted", strategy))
    run_id, _ = told_clock_life(folder, manifest, registry, bars, now, told=now, kill=kill)
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        orders = db.execute(
            f"SELECT o.symbol, o.tag FROM orders o WHERE o.run_id = ? AND {NOT_RE_ARMED}"
            " ORDER BY o.rowid",
            (run_id,),
        ).fetchall()
        fills = db.execute(
            "SELECT reason, ts, price FROM fills WHERE run_id = ? ORDER BY ts", (run_id,)
        ).fetchall()
        (known,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE run_id = ? AND kind = 'order_known'", (run_id,)
        ).fetchone()
    return Planted(
        [(str(s), str(t)) for s, t in orders],
        [(str(r), int(ts), float(p)) for r, ts, p in fills],
        int(known),
    )


def _ohlc_bars(ohlc: list[OHLC]) -> list[Bar]:
    return [Bar(SYMBOL, HOUR, T4 + i * HOUR, *prices, 1.0) for i, prices in enumerate(ohlc)]


def test_a_child_a_missed_bars_fill_put_on_the_book_is_worked_from_that_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    level: OHLC = (100.0, 100.0, 100.0, 100.0)
    dip: OHLC = (100.0, 100.0, 95.0, 97.0)  # fills the limit at 95; neither child reached
    drop: OHLC = (97.0, 97.0, 89.0, 92.0)  # through the stop-loss at 90
    life0 = planted_life(tmp_path, DipBuyer, _ohlc_bars([level] * 4), T4 + 4 * HOUR + 30)
    assert (life0.orders, life0.fills) == ([(SYMBOL, "dip")], [])  # rests below the price

    def kill_once_filled(engine: Engine, fill: object) -> None:
        raise _Killed  # the entry's fill and its children are journaled, bar 5 worked alone

    # Restart 1 at T4 + 10h + 30 s: bar 5 fills the entry while the bot was down (its
    # stop-loss and take-profit go on the book then), and the process is killed right after.
    outage = [level] * 4 + [level, dip, drop, level, level]
    with monkeypatch.context() as patched:
        patched.setattr(Engine, "_say_filled_while_down", kill_once_filled)
        planted_life(
            tmp_path, DipBuyer, _ohlc_bars(outage), T4 + 10 * HOUR + 30, kill=lambda j: None
        )
    # Restart 2: the children, journaled by restart 1, were on the book from bar 5: bar 6
    # (before restart 1 came back) crossed the stop-loss.
    again = planted_life(tmp_path, DipBuyer, _ohlc_bars(outage + [level] * 3), T4 + 12 * HOUR + 30)
    assert again.fills == [("stop_loss", T4 + 6 * HOUR, 90.0)], again.fills


# -- the rule, pure ---------------------------------------------------------------------------


def _order(order_id: str, parent: str | None = None) -> Order:
    return Order(order_id, SYMBOL, Side.SELL, 1.0, OrderType.MARKET, parent_id=parent)


@pytest.mark.parametrize(
    ("open_hour", "rested"),
    [(8, False), (9, True), (10, True)],  # bar 8 closed at 9h: missed when sent at 10h + 30 s
)
def test_an_order_a_restart_sent_rests_from_that_restarts_first_live_bar(
    open_hour: int, rested: bool
) -> None:
    sent = T4 + 10 * HOUR + 30
    bar = Bar(SYMBOL, HOUR, T4 + open_hour * HOUR, 1, 1, 1, 1, 1)
    assert rested_since(bar, sent) is rested
    missed = MissedBars(came_back=T4 + 12 * HOUR, sent_back={"sent": sent, "child": sent})
    assert missed.rested_on(_order("sent"), bar) is rested
    assert missed.rested_on(_order("earlier"), bar)  # no restart of its own: its time rules
    assert missed.rested_on(_order("child", parent="entry"), bar)  # put there by a fill


# -- a restart killed before its feed told the market's time (F28) ----------------------------
#
# A restart journals the host's clock as the time it came back until the feed tells the
# market's (``BotSession._restore``). Killed in between, with a host clock minutes behind the
# market's, that time would let a second restart work the close it sent on a bar that had
# closed before it was sent. A time the host's clock told is marked as such and never trusted:
# such an order rests from the next restart's first live bar (``Journal.came_back_of``).

_OWED = [100.0, 95.0, 100.0, 100.0, 101.0, 102.0, 103.0, 104.0, 101.5, 102.5, 103.5, 104.5]


def _killed_before_the_market_time(journal: Journal) -> None:
    """Kill the run as it would journal the market's time it came back at (the feed's first
    answer, after the orders it sent at its start): the host clock's time stays journaled."""

    def killed(*args: object, **kwargs: object) -> None:
        raise _Killed

    journal.record_came_back = killed  # type: ignore[method-assign]


def _restart_on_a_slow_host(folder: Path, bars: list[Bar], market: float, host: float) -> list[str]:
    """A restart of the higher-timeframe bot, the market's time ``market`` and the host's
    clock ``host``, killed before it journaled the market's time. The tags of its orders."""
    manifest = told_clock_manifest(
        folder, "h4-restart", "{name: higher-buyer}", fee_bps=10, slippage_bps=2
    )
    registry = told_clock_registry(("higher-buyer", HigherBuyer))
    run_id, _ = told_clock_life(
        folder, manifest, registry, bars, host, told=market, kill=_killed_before_the_market_time
    )
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        rows = db.execute(
            f"SELECT o.tag FROM orders o WHERE o.run_id = ? AND {NOT_RE_ARMED}", (run_id,)
        ).fetchall()
    return [str(tag) for (tag,) in rows]


def _owed_close_sent_on_a_slow_host(folder: Path) -> None:
    """Held 1 (bought at bar 1's close, 95), the close owed; restart 1 comes back at
    T4 + 10h + 30 s (the market's time), its host's clock 5 minutes behind, sends the close
    and is killed before it journals the market's time: bar 8 had closed when it was sent."""
    HigherBuyer.base_too = True
    first = _bars(_OWED[:4])
    assert _life(folder, first, first[-1].close_ts + 30).held == 1.0
    _owe_a_close(folder)
    came_back = T4 + 10 * HOUR + 30
    sent = _restart_on_a_slow_host(folder, _bars(_OWED[:9]), came_back, came_back - 5 * 60)
    assert sent == ["stop-flatten"]


def test_a_host_clock_minutes_behind_never_fills_a_close_before_it_was_sent(
    tmp_path: Path,
) -> None:
    _owed_close_sent_on_a_slow_host(tmp_path)
    # Restart 2: bars 4-10 closed while the bot was down, bar 11 is live. When restart 1 sent
    # the close is not known: it is worked on none of them, and fills at bar 11's open.
    again = _life(tmp_path, _bars(_OWED), T4 + 12 * HOUR + 30)
    assert again.orders == []  # not sent twice
    ((ts, price),) = again.fills
    assert ts == T4 + 11 * HOUR and price == pytest.approx(104.5 * (1 - SLIP)), (
        f"the close sent at T4 + 10h + 30 s (market time) was filled at the bar opening at {ts}"
    )
    assert again.held == 0.0


def test_a_close_sent_on_a_slow_host_rests_from_the_next_restarts_first_live_bar(
    tmp_path: Path,
) -> None:
    _owed_close_sent_on_a_slow_host(tmp_path)
    # Restart 2 at T4 + 11h + 30 s reads the market's time, re-arms the close and works it on
    # no missed bar; its feed ends before its first live bar, bar 10.
    second = _life(tmp_path, _bars(_OWED[:10]), T4 + 11 * HOUR + 30)
    assert (second.orders, second.fills, second.held) == ([], [], 1.0)
    # Restart 3: the close was on the book from restart 2's first live bar, bar 10.
    third = _life(tmp_path, _bars(_OWED), T4 + 12 * HOUR + 30)
    ((ts, price),) = third.fills
    assert ts == T4 + 10 * HOUR and price == pytest.approx(103.5 * (1 - SLIP)), (ts, price)
    assert third.held == 0.0


def test_a_came_back_time_not_the_markets_rests_an_order_on_no_missed_bar() -> None:
    from tradefleet_runtime.journal.sqlite import _market_came_back

    sent = T4 + 10 * HOUR + 30
    assert _market_came_back(f"market:{sent!r}") == sent
    # The host's clock; a bare number (journaled by 625ea8a: host's or market's, not said).
    assert _market_came_back(f"host:{sent!r}") is None
    assert _market_came_back(repr(float(sent))) is None
    missed = MissedBars(came_back=T4 + 12 * HOUR, sent_back={"host": None, "market": sent})
    for hour in (4, 8, 9, 10, 11):
        bar = Bar(SYMBOL, HOUR, T4 + hour * HOUR, 1, 1, 1, 1, 1)
        assert not missed.rested_on(_order("host"), bar)
        assert missed.rested_on(_order("market"), bar) is (hour >= 9)
        assert missed.rested_on(_order("child", parent="host"), bar)
