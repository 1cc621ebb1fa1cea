"""A restarted bot and the bars that closed while it was down (docs/operations.md,
"Disruptions", item 3): from a feed that tells the market's time (``tells-market-time``) they
go to the strategy as history only — no order for a bar that has passed — and the newest
closed bar is traded. A feed without market time (the csv replay), or one that does not know
it yet, is traded as before.

The bot: an ``ema-cross`` (fast 2, slow 3) paper bot, fixed size 1, on hourly bars. Its first
life handles six flat bars. It is down for eight hours; after a dip the fast EMA crosses the
slow one on a bar that closed five hours before the restart, and the bars after it are flat.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

from tests.plugin_hooks import registry_with
from tradefleet_runtime.capabilities import Capability, check_object
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import (
    Bar,
    FeedReport,
    FeedRequest,
    NoParams,
    PluginKind,
    PluginSpec,
    Strategy,
    hookimpl,
)
from tradefleet_runtime.session import BotSession, MissedBars, assemble, bar_missed, split_history
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_700_000_000 // HOUR * HOUR
SYMBOL = "BTC/USDT"
FLAT = [100.0] * 6
# Down from bar 6 to bar 13: a dip, the cross up at bar 8 (closed at T0 + 9h), then flat.
OUTAGE = [95.0, 95.0, 110.0] + [110.0] * 5


class ToldClockFeed:
    """A feed declaring ``tells-market-time``: the test's bars, and the market's time it is
    given (None: not known)."""

    bars_given: ClassVar[list[Bar]] = []
    market_now: ClassVar[float | None] = None

    def __init__(self, params: NoParams) -> None:
        self.params = params

    def bars(self, request: FeedRequest) -> Iterator[Bar]:
        return iter(self.bars_given)

    def report(self) -> FeedReport:
        return FeedReport()

    def market_time(self) -> float | None:
        return self.market_now


TOLD = "{name: told-clock}"
CSV = "{name: csv, params: {path: btc.csv}}"
# An order a restart found journaled by an earlier run and re-armed, not created by this run.
NOT_RE_ARMED = (
    "NOT EXISTS (SELECT 1 FROM order_updates u WHERE u.run_id = o.run_id AND"
    " u.client_order_id = o.client_order_id AND u.reason = 're-armed on restart')"
)


class Killed(BaseException):
    """SIGKILL."""


def told_clock_registry(strategy: tuple[str, type[Strategy]] | None = None) -> PluginRegistry:
    """The installed plugins, the told-clock feed and, given, ``strategy`` (name, class)."""
    feed = PluginSpec(
        kind=PluginKind.DATA_FEED, name="told-clock", version="1.0.0", factory=ToldClockFeed,
        params=NoParams, capabilities=frozenset({Capability.TELLS_MARKET_TIME}),
    )  # fmt: skip
    hooks = SimpleNamespace(tradefleet_data_feeds=hookimpl(lambda: [feed]))
    if strategy is not None:
        name, factory = strategy
        planted = PluginSpec(
            kind=PluginKind.STRATEGY, name=name, version="1.0.0", factory=factory, params=NoParams
        )
        hooks.tradefleet_strategies = hookimpl(lambda: [planted])
    return registry_with(hooks)


def told_clock_manifest(
    folder: Path,
    name: str,
    strategy: str,
    *,
    symbols: Sequence[str] = (SYMBOL,),
    fee_bps: int = 0,
    slippage_bps: int = 0,
    data: str = TOLD,
    risk: str | None = None,
) -> Path:
    """``folder``/bot.yaml: the paper bot ``name`` trading ``strategy`` (its YAML) on 1h bars
    of ``symbols`` from ``data``, on 100,000 USDT, with ``risk`` (its YAML) when given."""
    risk_line = "" if risk is None else f"  risk: {risk}\n"
    path = folder / "bot.yaml"
    path.write_text(
        f"""
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {{name: {name}}}
spec:
  mode: paper
  strategy: {strategy}
  market: {{symbols: {json.dumps(list(symbols))}, timeframe: 1h}}
  broker: {{name: paper, params: {{fee_bps: {fee_bps}, slippage_bps: {slippage_bps}}}}}
  data: {data}
{risk_line}  capital: {{currency: USDT, initial: 100000}}
"""
    )
    return path


def latest_run_id(db: sqlite3.Connection) -> str:
    """The journal's latest run: the life that has just ended."""
    (run_id,) = db.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    return str(run_id)


def told_clock_life(
    folder: Path,
    manifest: Path,
    registry: PluginRegistry,
    bars: list[Bar],
    now: float,
    *,
    told: float | None,
    given: list[Bar] | None = None,
    kill: Callable[[Journal], None] | None = None,
) -> tuple[str, float]:
    """One life of the bot of ``manifest`` (journal: ``folder``/bot.sqlite) on ``bars``, the
    wall clock at ``now`` and the told-clock feed telling ``told`` as the market's time;
    ``given``: the bars handed to the session (a csv replay's file is empty); ``kill`` (given
    the journal) sets up a ``Killed`` raised part-way through the run, which ends it there.
    The life's run id, and the position it held in ``SYMBOL`` when its bars ran out."""
    ToldClockFeed.bars_given, ToldClockFeed.market_now = bars, told
    bot = assemble(load_manifest(manifest), registry, folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(
        bot, journal, bars=given, should_stop=threading.Event().is_set, clock=lambda: now
    )
    try:
        engine = session.open()
        if kill is not None:
            kill(journal)
            with pytest.raises(Killed):
                session.run()
        else:
            session.run()
        # Read, not created: ``position()`` would add an empty one for a symbol not traded.
        position = engine.portfolio.positions.get(SYMBOL)
        held = 0.0 if position is None else position.quantity
        if kill is None:
            session.close("completed")
    finally:
        journal.close()
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        return latest_run_id(db), held


def _manifest(folder: Path, data: str) -> Path:
    (folder / "btc.csv").write_text("timestamp,open,high,low,close,volume\n")
    return told_clock_manifest(
        folder,
        "restart-missed",
        "{name: ema-cross, params: {fast: 2, slow: 3, allow_short: false}}",
        fee_bps=10,
        slippage_bps=2,
        data=data,
        risk="[{name: fixed-size, params: {quantity: 1}}]",
    )


def _bars(closes: list[float]) -> list[Bar]:
    return [Bar(SYMBOL, HOUR, T0 + i * HOUR, c, c, c, c, 1.0) for i, c in enumerate(closes)]


def _life(
    folder: Path, bars: list[Bar], now: float, *, told: float | None, data: str
) -> tuple[list[tuple[str, int]], list[str]]:
    """One life of the paper bot on ``bars``, the wall clock at ``now`` and the feed telling
    ``told`` as the market's time; the orders this life created (tag, created_ts) and its
    ``warmed_up`` messages."""
    given = None if data.startswith("{name: told-clock") else bars  # the csv file is empty
    manifest = _manifest(folder, data)
    run_id, _ = told_clock_life(
        folder, manifest, told_clock_registry(), bars, now, told=told, given=given
    )
    with closing(sqlite3.connect(folder / "bot.sqlite")) as db:
        rows = db.execute("SELECT tag, created_ts FROM orders WHERE run_id = ?", (run_id,))
        orders = [(str(tag), int(ts)) for tag, ts in rows.fetchall()]
        warmed = db.execute(
            "SELECT message FROM events WHERE run_id = ? AND kind = 'warmed_up'", (run_id,)
        ).fetchall()
    return orders, [str(message) for (message,) in warmed]


def _restart(
    folder: Path, outage: list[float], *, told: bool, data: str = TOLD
) -> tuple[list[tuple[str, int]], list[str], int]:
    """The first life on six flat bars, then the restart 30 s after the outage's last bar
    closed (the feed telling that time when ``told``): the restart's orders, its
    ``warmed_up`` messages and its time."""
    flat = _bars(FLAT)
    first, _ = _life(folder, flat, flat[-1].close_ts + 30, told=flat[-1].close_ts + 30, data=data)
    assert first == [], "six flat bars: no cross, no order"
    bars = _bars(FLAT + outage)
    restart = bars[-1].close_ts + 30
    orders, warmed = _life(folder, bars, restart, told=restart if told else None, data=data)
    return orders, warmed, restart


def test_bars_that_closed_while_the_bot_was_down_are_history_at_its_restart(
    tmp_path: Path,
) -> None:
    orders, warmed, restart = _restart(tmp_path, OUTAGE, told=True)
    assert orders == [], (
        "orders decided on bars that closed while the bot was down (the docs: history only, "
        f"none for a bar that has passed): {orders}, restart at {restart}"
    )
    # Bars 6 to 12 closed while it was down; bar 13, the newest closed, was traded (flat).
    (message,) = warmed
    assert "7 bar(s) closed while the bot was down" in message, message
    assert "history only" in message


def test_the_newest_closed_bar_is_traded_at_the_restart(tmp_path: Path) -> None:
    # The cross comes on the outage's last bar, closed 30 s before the restart.
    orders, _, restart = _restart(tmp_path, [100.0] * 5 + [95.0, 95.0, 110.0], told=True)
    assert orders == [("cross-up", restart - 30)]


def test_a_feed_that_does_not_know_the_market_time_yet_trades_as_before(tmp_path: Path) -> None:
    orders, warmed, _ = _restart(tmp_path, OUTAGE, told=False)
    # As before the capability: the cross of bar 8 is traded at the restart.
    assert ("cross-up", T0 + 9 * HOUR) in orders, orders
    assert not any("closed while the bot was down" in m for m in warmed), warmed


def test_a_csv_paper_replay_resumes_and_trades_the_rest_as_before(tmp_path: Path) -> None:
    orders, warmed, _ = _restart(tmp_path, OUTAGE, told=False, data=CSV)
    # A replay has no market time: everything after the last bar handled is traded.
    assert ("cross-up", T0 + 9 * HOUR) in orders, orders
    assert not any("closed while the bot was down" in m for m in warmed), warmed


# -- the rule, pure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("close_ts", "now", "missed"),
    [
        (T0, None, False),  # the market's time unknown: traded
        (T0, T0 + HOUR - 1, False),  # the newest closed bar
        (T0, T0 + HOUR, True),  # the next one has just closed
        (T0, T0 + 5 * HOUR, True),
    ],
)
def test_a_bar_is_missed_once_a_newer_one_closed(
    close_ts: int, now: float | None, missed: bool
) -> None:
    assert bar_missed(close_ts, HOUR, now) is missed


def test_split_history_judges_each_timestamp_on_the_market_time_the_bot_came_back() -> None:
    """Two symbols, resumed after bar 1: bars 2 and 3 closed while the bot was down, bar 4 is
    the newest; the market's time is read once, at the first timestamp after the resume point
    (the time the bot came back), and each timestamp is judged against it: one the feed
    releases later (a symbol waited for) is not taken for a missed one."""
    bars = [
        Bar(symbol, HOUR, T0 + i * HOUR, 1.0, 1.0, 1.0, 1.0, 1.0)
        for i in range(6)
        for symbol in ("A", "B")
    ]
    asked: list[float] = []

    def market_time() -> float:
        now = T0 + 5 * HOUR + 10 + len(asked)
        asked.append(now)
        return now

    missed = MissedBars()
    history, live = split_history(iter(bars), 1, T0 + 2 * HOUR, market_time, missed)
    shown = list(history)
    assert [b.ts for b in shown] == [T0 + i * HOUR for i in (0, 0, 1, 1, 2, 2, 3, 3)]
    assert [(b.symbol, b.ts) for b in live()] == [
        (s, T0 + i * HOUR) for i in (4, 5) for s in ("A", "B")
    ]
    assert len(asked) == 1  # once: the time the bot came back
    # Counted per bar time (two symbols' bars of each).
    assert (missed.bars, missed.first_close, missed.last_close) == (2, T0 + 3 * HOUR, T0 + 4 * HOUR)


def test_a_first_start_misses_nothing_however_late_its_bars_come() -> None:
    """Nothing handled yet (``resume_after_ts`` 0): bars after the warm-up are traded even when
    the market's time is a bar or more past them (a feed that waited for a late symbol)."""
    bars = [Bar("A", HOUR, T0 + i * HOUR, 1.0, 1.0, 1.0, 1.0, 1.0) for i in range(4)]
    missed = MissedBars()
    history, live = split_history(iter(bars), 1, 0, lambda: T0 + 10 * HOUR, missed)
    assert [b.ts for b in history] == [T0]
    assert [b.ts for b in live()] == [T0 + i * HOUR for i in (1, 2, 3)]
    assert missed.bars == 0


def test_split_history_without_market_time_is_as_before() -> None:
    bars = _bars([1.0] * 5)
    history, live = split_history(iter(bars), 2, T0 + 3 * HOUR)
    assert [b.ts for b in history] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert [b.ts for b in live()] == [T0 + 3 * HOUR, T0 + 4 * HOUR]


def test_the_live_feeds_declare_and_have_market_time() -> None:
    registry = PluginRegistry.discover()
    for name in ("ccxt", "mt5"):
        assert registry.get(PluginKind.DATA_FEED, name).spec.has(Capability.TELLS_MARKET_TIME)
    assert not registry.get(PluginKind.DATA_FEED, "csv").spec.has(Capability.TELLS_MARKET_TIME)
    declared = frozenset({Capability.TELLS_MARKET_TIME})
    assert check_object("data", ToldClockFeed(NoParams()), frozenset()) == [
        "has method 'market_time' but does not declare capability 'tells-market-time' (add it "
        "to the descriptor's capabilities, or the runtime will never call it)"
    ]
    assert check_object("data", ToldClockFeed(NoParams()), declared) == []
