"""A person's command given to a restarted bot before its first bar is stamped at the close of
the last bar its journal holds (``Engine.restore_clock``), not at 0.

A circuit-breaker's lock survives a restart; a person resets it before the restarted bot's first
bar. The reset was journaled at ts 0 (a live bot's clock before its first bar after a restart),
and the next restart replays the account's equity to a ``restores-equity`` plugin from the newest
reset of its lock (``Journal.lock_resets``, ``Engine.restore_equity``): from 0, i.e. all of it,
so the breaker found the old loss again and locked ("tier 0 -> 3"). Stamped at the last close,
the replay starts at the equity the reset took as its new start.

Halts and resumes are read in the journal's order, not by their time (``last_control_event``): a
resume stamped 0 still ended the halt before it at the next restart; it is stamped at the last
close too.

A live ccxt bot on the fake Binance USDⓈ-M; bars the test hands it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import hand_to_a_bot, until
from tests.brokers.harness import SYMBOL, VenueHarness, harness_for
from tests.brokers.live_manifests import live_ccxt_manifest
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, OrderType, Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
BREAKER = "circuit-breaker"


class BuyFirst(Strategy):
    """A market buy of 0.5 BTC at the bar of time ``at``; nothing else."""

    def __init__(self, at: int) -> None:
        super().__init__(None)
        self.at = at

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == self.at:
            self.ctx.buy(bar.symbol, 0.5, order_type=OrderType.MARKET)


def _manifest(folder: Path, harness: VenueHarness) -> Path:
    return live_ccxt_manifest(
        folder,
        harness,
        exchange="binanceusdm",
        market_type="linear",
        initial=50000,
        risk=(
            "- name: fixed-size\n"
            "  params: {quantity: 0.01}\n"
            f"- name: {BREAKER}\n"
            "  params: {warn_drawdown: 0.01, reduce_drawdown: 0.02, lock_drawdown: 0.03,"
            " cooldown_minutes: 0}\n"
        ),
    )


def _bars() -> list[Bar]:
    """Two closed hourly bars of one UTC day: 50,000, then 45,000 (0.5 BTC loses 2,500: 5 %)."""
    start = (int(time.time()) // 86_400 - 1) * 86_400 + 2 * HOUR  # yesterday 02:00 UTC
    return [
        Bar(SYMBOL, HOUR, start, 50_000.0, 50_000.0, 50_000.0, 50_000.0, 1),
        Bar(SYMBOL, HOUR, start + HOUR, 45_000.0, 45_000.0, 45_000.0, 45_000.0, 1),
    ]


def _orders_ended(engine: Engine) -> None:
    until(engine, lambda: not engine.open_orders(), "the bar's orders to end")


def _life(folder: Path, harness: VenueHarness, bars: list[Bar], step: object) -> None:
    """One run of the bot on ``bars`` (each bar's orders answered before the next), then
    ``step(engine)``, then a clean stop."""
    bot = assemble(load_manifest(_manifest(folder, harness)), PluginRegistry.discover(), folder)
    if bars:
        bot.strategy = BuyFirst(bars[0].ts)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            if bar.close < 50_000.0:
                harness.trade_through(bar.close)  # the venue's market moves with the bars
            yield bar
            engine = session.engine
            assert engine is not None
            _orders_ended(engine)
        assert session.engine is not None
        step(session.engine)  # type: ignore[operator]

    session.pacer = pace
    try:
        session.open()
        session.close(session.run())
    finally:
        bot.broker.close()
        journal.close()


@pytest.fixture(name="usdm")
def _usdm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with harness_for("binance-usdm", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        hand_to_a_bot(harness, monkeypatch)
        yield harness


def test_a_lock_reset_before_the_restarted_bots_first_bar_stays_reset(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    locked: list[bool] = []

    def read(engine: Engine) -> None:
        locked.append(engine.holds_risk_lock(BREAKER))

    def reset(engine: Engine) -> None:
        assert engine.holds_risk_lock(BREAKER)  # the lock survived the restart
        assert engine.reset_risk_lock(BREAKER, "w5", "reviewed") == (True, "")
        locked.append(engine.holds_risk_lock(BREAKER))

    bars = _bars()  # once: the day is taken from the clock, which may pass midnight meanwhile
    _life(tmp_path, usdm, bars, read)  # the 5 % loss locks the breaker
    _life(tmp_path, usdm, [], reset)  # restarted; reset before any bar
    _life(tmp_path, usdm, [], read)  # restarted again
    journal = Journal(tmp_path / "bot.sqlite")
    try:
        resets = journal.query("SELECT ts FROM events WHERE kind = 'risk_lock_reset'")
    finally:
        journal.close()
    assert locked[:2] == [True, False]
    assert locked[2] is False, (
        f"the lock a person reset is back after the next restart (reset journaled at ts "
        f"{[int(ts) for (ts,) in resets]})"
    )
    assert [int(ts) for (ts,) in resets] == [bars[-1].close_ts]


def test_a_resume_before_the_restarted_bots_first_bar_is_stamped_at_the_last_close(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    halted: list[bool] = []

    def halt(engine: Engine) -> None:
        assert engine.halt("w5", "looking at the venue")

    def resume(engine: Engine) -> None:
        halted.append(engine.halted)  # the halt survived the restart
        engine.resume("w5", "reviewed")
        halted.append(engine.halted)

    def read(engine: Engine) -> None:
        halted.append(engine.halted)

    bars = _bars()[:1]  # the entry at 50,000: nothing lost, nothing locked
    _life(tmp_path, usdm, bars, halt)
    _life(tmp_path, usdm, [], resume)  # restarted; resumed before any bar
    _life(tmp_path, usdm, [], read)  # restarted again
    journal = Journal(tmp_path / "bot.sqlite")
    try:
        stamps = journal.query(
            "SELECT kind, ts FROM events WHERE kind IN ('halted', 'resumed') ORDER BY id"
        )
    finally:
        journal.close()
    assert halted == [True, False, False]
    close = bars[-1].close_ts
    assert [(str(kind), int(ts)) for kind, ts in stamps] == [("halted", close), ("resumed", close)]
