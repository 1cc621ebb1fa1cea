"""A lock a person reset before a restarted bot's first bar survives the next restart when the
earlier run ended on a fill between bars.

``Engine._end_snapshot`` journals two equity points at the run's last close when a fill arrived
after it: the equity at the close, then the equity the run ended at. A reset before the next
run's first bar is stamped at that same close (``Engine.restore_clock``); the restart after it
replays the equity to a ``restores-equity`` plugin from the last point at the reset's stamp
(``engine._replay_from``), the equity the reset took as its new start, not from the first (the
equity before the loss), from which the breaker found the reset loss again.

A live ccxt bot on the fake Binance USDⓈ-M (capital 50,000): one bar buys 0.5 BTC at 50,000
with a stop at 47,000; the market drops to 46,000 before the next bar (a loss of about 2,000,
4 %, past a 3 % lock); the bot stops; restarted, a person resets the lock; restarted again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import hand_to_a_bot
from tests.brokers.harness import VenueHarness, harness_for
from tests.runtime import test_restart_day_start as day
from tradefleet_runtime.engine.engine import Engine, _replay_from
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

BREAKER = "circuit-breaker"


def _manifest(folder: Path, harness: VenueHarness) -> Path:
    path = day._manifest(folder, harness)
    text = path.read_text().replace(
        "params: {warn_drawdown: 0.02, reduce_drawdown: 0.5, lock_drawdown: 0.6,",
        "params: {warn_drawdown: 0.01, reduce_drawdown: 0.02, lock_drawdown: 0.03,"
        " cooldown_minutes: 0,",
    )
    assert "lock_drawdown: 0.03" in text
    path.write_text(text)
    return path


def _life(
    folder: Path, harness: VenueHarness, bars: list[Bar], step: Callable[[Engine], None]
) -> None:
    bot = assemble(load_manifest(_manifest(folder, harness)), PluginRegistry.discover(), folder)
    if bars:
        bot.strategy = day.EntryWithStop(bars[0].ts)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            yield bar
            engine = session.engine
            assert engine is not None
            day._stop_fills_between_bars(engine, harness)  # after the last close: late fill
        assert session.engine is not None
        step(session.engine)

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


def test_a_reset_after_a_run_that_ended_on_a_late_fill_survives_the_next_restart(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    locked: list[bool] = []

    def read(engine: Engine) -> None:
        locked.append(engine.holds_risk_lock(BREAKER))

    def reset(engine: Engine) -> None:
        locked.append(engine.holds_risk_lock(BREAKER))
        assert engine.reset_risk_lock(BREAKER, "ops", "loss accepted") == (True, "")
        locked.append(engine.holds_risk_lock(BREAKER))

    _life(tmp_path, usdm, day._bars(1), read)  # the stop's 4 % loss after the close locks
    journal = Journal(tmp_path / "bot.sqlite")
    try:
        stamps, equity = journal.account_equity(day.BOT)
    finally:
        journal.close()
    close = day._bars(1)[0].close_ts
    assert list(stamps) == [close, close]  # the two-point end: before and after the loss
    assert equity[0] - equity[1] > 1_900
    _life(tmp_path, usdm, [], reset)  # restarted: the lock holds; a person resets it
    _life(tmp_path, usdm, [], read)  # restarted again, nothing traded since
    assert locked[:3] == [True, True, False]
    assert locked[3] is False, (
        "the lock a person reset is back after the next restart: the reset, stamped at the "
        f"last close {close}, replays from the first of its two points ({equity[0]:,.2f}, "
        f"before the loss) and the breaker finds the {equity[0] - equity[1]:,.2f} loss again"
    )


@pytest.mark.parametrize(
    ("reset", "start"),
    [
        (None, 0),  # never reset: everything
        (100, 0),  # before the first snapshot
        (200, 1),  # at a snapshot: from it, the equity the reset started from
        (250, 2),  # between two: from the next
        (300, 3),  # at the two-point end: from its last point, the equity after the fill
        (400, 4),  # after the last: nothing
    ],
)
def test_a_reset_replays_from_the_last_snapshot_at_its_time(reset: int | None, start: int) -> None:
    assert _replay_from([100, 200, 300, 300], reset) == start
