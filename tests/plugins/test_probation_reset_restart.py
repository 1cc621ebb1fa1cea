"""probation: a person's reset starts the window afresh, and a restart keeps it so.

A paper bot (fixed-size 30, probation window 3) loses 1,650 on one trade (16.5% of 10,000): it
hibernates; a person resets the lock; it trades once more at full size (a flat trade). The same
bot restarted after that decides as the one that lived on: full size, the losing trade from
before the reset no longer in its window (kept as probation's state, ``restores-state``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import Action, Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_plugins.risk.probation import Probation, kept_state
from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_runtime.contracts import RiskContext, StrategyContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Instrument, OrderIntent, RiskAction, Side, Trade
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession

# Buy at a close of 100 (fills at the next open, 100), close at a close of 45 (fills at 45):
# -1,650 for 30 units (16.5%). Bar 2's entry is vetoed (hibernating); a person resets the lock
# after bar 2; a flat trade (bars 3-4) at full size; then the entry that tells the window (6).
CLOSES = [100, 45, 100, 100, 100, 100, 100, 100, 100, 100]
BARS = flat_bars([float(c) for c in CLOSES])
RESET_AFTER = 2  # index of the bar after which a person resets the lock
LIFE_ONE_ENDS = 6  # the first life handles bars 0..5 when there is a restart
PROBE = 6  # the entry whose size is asked


def _buy(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol, tag="entry")


def _close(ctx: StrategyContext, bar: Bar) -> None:
    ctx.close(bar.symbol, tag="exit")


ACTIONS: dict[int, Action] = {
    0: _buy,
    1: _close,
    2: _buy,
    3: _buy,
    4: _close,
    PROBE: _buy,
    PROBE + 1: _close,
}


def _life(folder: Path, bars: list[Bar]) -> BotSession:
    document = manifest(
        [
            {"name": "fixed-size", "params": {"quantity": 30}},
            {"name": "probation", "params": {"window_trades": 3}},
        ],
        mode="paper",
        leverage=1.0,
    )
    bot = bot_with(PluginRegistry.discover(), document, Scripted(actions=ACTIONS), folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            yield bar
            engine = session.engine
            assert engine is not None
            if bar.ts == BARS[RESET_AFTER].ts and engine.holds_risk_lock("probation"):
                assert engine.reset_risk_lock("probation", "ops", "loss accepted")[0]

    session.pacer = pace
    try:
        session.open()
        session.close(session.run())
    finally:
        journal.close()
    return session


def _entries(folder: Path) -> list[tuple[int, float]]:
    journal = Journal(folder / "bot.sqlite")
    try:
        rows = journal.query(
            "SELECT created_ts, quantity FROM orders WHERE tag = 'entry' AND parent_id IS NULL"
            " AND client_order_id IN (SELECT client_order_id FROM fills) ORDER BY created_ts"
        )
        return [(int(ts), float(q)) for ts, q in rows]
    finally:
        journal.close()


def _probation_says(folder: Path, ts: int) -> list[str]:
    journal = Journal(folder / "bot.sqlite")
    try:
        rows = journal.query(
            "SELECT action, reason FROM risk_decisions WHERE plugin = 'probation' AND ts = ?", ts
        )
        return [f"{action}: {reason}" for action, reason in rows]
    finally:
        journal.close()


def _probe_quantity(folder: Path) -> float:
    probe_close = BARS[PROBE].close_ts
    found = [q for ts, q in _entries(folder) if ts == probe_close]
    assert found, (
        f"the entry at bar {PROBE} never filled; probation said "
        f"{_probation_says(folder, probe_close)}"
    )
    return found[0]


def test_the_lived_bot_trades_full_size_after_the_reset(tmp_path: Path) -> None:
    """The control: one life through every bar. The reset starts the window afresh."""
    _life(tmp_path, BARS)
    assert len(_entries(tmp_path)) == 3  # the loser, the flat one, the probe
    assert _probe_quantity(tmp_path) == 30.0


def test_a_restart_after_a_reset_keeps_the_window_fresh(tmp_path: Path) -> None:
    _life(tmp_path, BARS[:LIFE_ONE_ENDS])
    _life(tmp_path, BARS)  # restarted: bars up to 5 are history, 6.. are new
    quantity = _probe_quantity(tmp_path)
    assert quantity == 30.0, f"probation sized the entry {quantity:g} after the restart, not 30"


# -- the kept state, on the plugin alone ------------------------------------------------------

LOSER = Trade("TEST", 1, 30.0, 0, 3600, 100.0, 45.0, -1_650.0, 0.0)
FLAT = Trade("TEST", 1, 30.0, 7200, 10800, 100.0, 100.0, 0.0, 0.0)
BUY = OrderIntent("TEST", Side.BUY, 30.0)


def _ctx(equity: float) -> RiskContext:
    return RiskContext(0, equity, equity, equity, equity, {}, {}, Instrument("TEST"))


def _restarted(trades: list[Trade], state: dict[str, Any] | None, lock: str = "") -> Probation:
    """A probation as a restart leaves it: the lock the engine restored (if any), the trades,
    then the state the journal kept (the engine's order)."""
    plugin = Probation(ProbationParams(window_trades=3))
    restored: list[Trade] = []
    plugin.bind_trades(restored)
    if lock:
        plugin.restore_lock(lock, 0)
    restored.extend(trades)
    if state is not None:
        plugin.restore_state(state)
    return plugin


def _lived_after_reset() -> tuple[list[Trade], dict[str, Any]]:
    trades = [LOSER]
    plugin = Probation(ProbationParams(window_trades=3))
    plugin.bind_trades(trades)
    assert plugin.check(BUY, _ctx(8_350.0)).code == "hibernating"
    hibernating = plugin.saved_state()
    assert plugin.reset_lock() is None
    return trades, hibernating


def test_the_state_kept_after_a_reset_starts_the_window_after_it() -> None:
    trades = [LOSER]
    plugin = Probation(ProbationParams(window_trades=3))
    plugin.bind_trades(trades)
    plugin.check(BUY, _ctx(8_350.0))
    plugin.reset_lock()
    restarted = _restarted([LOSER, FLAT], plugin.saved_state())
    assert restarted.check(BUY, _ctx(8_350.0)).action is RiskAction.APPROVE
    assert restarted.lock_reason() is None


def test_a_reset_journaled_after_the_last_state_still_starts_the_window() -> None:
    """The process ended between the reset (journaled by the engine: no lock restored) and the
    next bar's state: the last state still says hibernating."""
    _, hibernating = _lived_after_reset()
    assert hibernating["hibernated"]
    restarted = _restarted([LOSER, FLAT], hibernating)
    assert restarted.check(BUY, _ctx(8_350.0)).action is RiskAction.APPROVE


def test_a_restored_lock_holds_whatever_the_state() -> None:
    _, hibernating = _lived_after_reset()
    reason = "hibernating: rolling loss 16.50% over 1 trade(s) beyond 15%"
    for state in (hibernating, None, {**hibernating, "hibernated": {}}):
        restarted = _restarted([LOSER], state, lock=reason)
        decision = restarted.check(BUY, _ctx(8_350.0))
        assert decision.code == "hibernating", state
        assert restarted.lock_reason() == reason


def test_a_journal_without_the_state_counts_every_trade_as_before() -> None:
    restarted = _restarted([LOSER, FLAT], None)
    assert restarted.check(BUY, _ctx(8_350.0)).code == "hibernating"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"version": 0}, "version"),
        ({"from": 5}, "from"),
        ({"from": -1}, "from"),
        ({"from": True}, "from"),
        ({"taken_at": "1"}, "taken_at"),
        ({"hibernated": ["x"]}, "hibernated"),
        ({"hibernated": {"TEST": ""}}, "hibernated"),
    ],
)
def test_a_state_not_as_kept_is_said_naming_the_field_and_left_out(
    change: dict[str, Any], named: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = {"version": 1, "from": 1, "taken_at": 1, "hibernated": {}, **change}
    problem = kept_state(state, 2)
    assert isinstance(problem, str) and problem.startswith(named), problem
    with caplog.at_level(logging.WARNING):
        restarted = _restarted([LOSER, FLAT], state)
    assert named in caplog.text
    # Left out: the window counts every trade (the stricter answer).
    assert restarted.check(BUY, _ctx(8_350.0)).code == "hibernating"
