"""A restart keeps the day's start: the loss of a fill a venue reports between two bars.

The equity a paper or live bot journals for a bar's close is the equity at that close
(``Engine.close_timestamp``, once every symbol's bar of it is handled): a fill the venue reports
while the bot waits for the next bar (a stop-loss hit mid-bar) belongs to the next close. Taken
when the next bar arrived, the snapshot held that fill, and a restart replaying the snapshots
(``restores-equity``) started the day after its loss: a circuit-breaker in tier 1 (4 % down, past
a 2 % warning) came back in tier 0, and the status's "pnl today" lost the fill's loss.

A live ccxt bot on the fake Binance USDⓈ-M (capital 50,000): the day's first bar buys 0.5 BTC at
50,000 with a stop at 47,000; the market drops to 46,000 before the next bar and the position is
closed there (a loss of about 2,000, 4 %).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.brokers.ccxt_restart_life import hand_to_a_bot, until
from tests.brokers.harness import BOT, SYMBOL, VenueHarness, harness_for
from tests.brokers.live_manifests import live_ccxt_manifest
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, OrderType, Strategy
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
BREAKER = "circuit-breaker"
CAPITAL = 50_000.0
# The entry's fee (5 bp of 25,000): all the account may have lost at the day's first close.
ENTRY_FEE = 12.5


class EntryWithStop(Strategy):
    """A market buy of 0.5 BTC with a stop-loss at 47,000 at the bar of time ``at``."""

    def __init__(self, at: int) -> None:
        super().__init__(None)
        self.at = at

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == self.at:
            self.ctx.buy(bar.symbol, 0.5, order_type=OrderType.MARKET, stop_loss=47_000.0)


class Seen(NamedTuple):
    """What the running bot held once it handled its bars."""

    tier: int
    peak: float
    equity: float
    day_start: float


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
            "  params: {warn_drawdown: 0.02, reduce_drawdown: 0.5, lock_drawdown: 0.6,"
            " weekly_loss: 0.5, max_drawdown: 0.9}\n"
        ),
    )


def _bars(count: int = 3) -> list[Bar]:
    """Closed hourly bars of one UTC day (yesterday from 02:00): 50,000 then 46,000."""
    start = (int(time.time()) // 86_400 - 1) * 86_400 + 2 * HOUR
    closes = (50_000.0, 46_000.0, 46_000.0)[:count]
    return [Bar(SYMBOL, HOUR, start + i * HOUR, c, c, c, c, 1) for i, c in enumerate(closes)]


def _stop_fills_between_bars(engine: Engine, harness: VenueHarness) -> None:
    """Once the entry and its stop work at the venue, the market drops through the stop."""

    def protected() -> bool:
        return engine.portfolio.position(SYMBOL).quantity > 0 and bool(engine.open_orders())

    until(engine, protected, "the entry and its stop")
    harness.trade_through(46_000.0)
    until(engine, lambda: engine.portfolio.position(SYMBOL).quantity == 0, "the stop's fill")


def _run(folder: Path, harness: VenueHarness, bars: list[Bar]) -> Seen:
    """One run of the bot on ``bars`` (the position stopped out after the first): what it held
    once it handled them."""
    bot = assemble(load_manifest(_manifest(folder, harness)), PluginRegistry.discover(), folder)
    if bars:
        bot.strategy = EntryWithStop(bars[0].ts)
    [breaker] = [plugin for name, plugin in bot.risk if name == BREAKER]
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)
    seen: list[Seen] = []

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for index, bar in enumerate(released):
            yield bar
            engine = session.engine
            assert engine is not None
            if index == 0:  # between the day's first bar and the next: the stop fills
                _stop_fills_between_bars(engine, harness)
        engine = session.engine
        assert engine is not None
        tier = breaker.tier()  # type: ignore[attr-defined]
        seen.append(Seen(tier, engine.peak_equity, engine.equity, engine.day_start_equity))

    session.pacer = pace
    try:
        session.open()
        session.close(session.run())
    finally:
        bot.broker.close()
        journal.close()
    return seen[-1]


def _journaled_equity(folder: Path) -> tuple[list[int], list[float]]:
    """Every equity snapshot the bot's runs journaled, oldest first (what a restart replays)."""
    journal = Journal(folder / "bot.sqlite")
    try:
        timestamps, equity = journal.account_equity(BOT)
    finally:
        journal.close()
    return list(timestamps), list(equity)


@pytest.fixture(name="usdm")
def _usdm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with harness_for("binance-usdm", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        hand_to_a_bot(harness, monkeypatch)
        yield harness


def test_a_restart_keeps_the_days_loss_made_before_the_days_second_bar(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    live = _run(tmp_path, usdm, _bars())
    assert live.tier == 1  # the live run: 4 % down on the day, past warn_drawdown's 2 %
    restarted = _run(tmp_path, usdm, [])  # the same day, no bar since
    assert restarted.tier == live.tier, (
        f"the breaker was in tier {live.tier} when the bot stopped and is in tier "
        f"{restarted.tier} after the restart: the day now starts after the stop-loss's loss"
    )
    # The status's "pnl today" and drawdown, once running, are the live run's.
    assert restarted.day_start == pytest.approx(live.day_start)
    assert restarted.peak == pytest.approx(live.peak)


def test_the_equity_journaled_for_a_close_is_the_equity_at_that_close(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    bars = _bars()  # once: the day is taken from the clock, which may pass midnight meanwhile
    live = _run(tmp_path, usdm, bars)
    timestamps, equity = _journaled_equity(tmp_path)
    closes = [bar.close_ts for bar in bars]
    assert timestamps == closes
    # The day's first close: before the stop's loss (about 2,000), at most the entry's fee
    # below the capital. The loss is the second close's.
    assert equity[0] >= CAPITAL - ENTRY_FEE - 1e-6, equity
    assert equity[1] == pytest.approx(live.equity) and equity[1] < CAPITAL - 1_900
    assert live.day_start == pytest.approx(equity[0])  # the running bot's day started there


def test_a_fill_after_the_last_close_is_a_second_snapshot_of_that_close(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """The run ends between bars, after the stop filled: its last close keeps the equity at the
    close, and the equity the run ended at is a second point of the same time (the restart's
    own figures start there)."""
    bars = _bars(1)  # once: the day is taken from the clock, which may pass midnight meanwhile
    live = _run(tmp_path, usdm, bars)  # the day's first bar; the stop fills; stopped
    assert live.tier == 1
    timestamps, equity = _journaled_equity(tmp_path)
    close = bars[0].close_ts
    assert timestamps == [close, close]
    assert equity[0] >= CAPITAL - ENTRY_FEE - 1e-6
    assert equity[1] == pytest.approx(live.equity)
    restarted = _run(tmp_path, usdm, [])
    assert restarted.tier == live.tier
    assert restarted.day_start == pytest.approx(equity[0])
    journal = Journal(tmp_path / "bot.sqlite")
    try:
        runs = [run for run in journal.runs() if run.bot == BOT]
        assert journal.start_equity(runs[-1]) == pytest.approx(live.equity)
    finally:
        journal.close()


def test_prop_firm_takes_the_days_start_from_the_journaled_close(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """prop-firm's day starts at its first bar close (fills after it are the new day's); a
    restart rebuilds it from the journaled equity (its own kept state aside, which a journal of
    an older release lacks): the close's equity, not the stop-loss's loss after it."""
    _run(tmp_path, usdm, _bars())
    timestamps, equity = _journaled_equity(tmp_path)
    plugin = PropFirm(PropFirmParams())
    plugin.restore_equity(timestamps, equity)
    start = plugin.saved_state()["start_equity"]
    assert start >= CAPITAL - ENTRY_FEE - 1e-6, (
        f"prop-firm's day starts at {start:,.2f} after the restart: after the stop's loss"
    )


def test_the_status_while_starting_shows_the_drawdown_and_pnl_the_running_bot_then_shows(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """`tradefleet status` of a restarted bot shows the account as its journal last held it
    until its engine runs (docs/operations.md); its drawdown and today's P&L are the ones the
    running bot then shows, with nothing traded in between."""
    _run(tmp_path, usdm, _bars())
    registry = PluginRegistry.discover()
    manifest = load_manifest(_manifest(tmp_path, usdm))
    journal = Journal(tmp_path / "bot.sqlite")
    try:
        starting = BotController(assemble(manifest, registry, tmp_path), journal, registry)
        status = starting.get_status()
    finally:
        journal.close()
    assert status.last_known
    running = _run(tmp_path, usdm, [])  # restarted, before any bar
    peak = max(running.peak, running.equity)
    drawdown = (peak - running.equity) / peak * 100.0
    assert status.equity == pytest.approx(running.equity)
    assert status.drawdown_pct == pytest.approx(drawdown), (
        f"while Starting: drawdown {status.drawdown_pct:.2f} %; running: {drawdown:.2f} %"
    )
    assert status.pnl_today == pytest.approx(running.equity - running.day_start)
