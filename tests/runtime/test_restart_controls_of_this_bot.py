"""A restart takes the halts, resumes, flattens and closes owed, risk locks and lock resets of
its own bot's paper and live runs only (``Journal._control_runs``), never another bot's sharing
the journal file, nor a backtest's written into it (``tradefleet backtest --journal``, same bot
name).

Before, those readers read every run of the file: another bot's ``resumed`` ended this bot's
halt (it came back trading), another bot's ``close_owed`` cleared, or its ``flattened``
finished, this bot's debt; a backtest's ``risk_locked`` locked the paper bot (only a person
can clear a lock), and a backtest's or another bot's ``risk_lock_reset`` cleared its real one.

A person's command given while the bot was down is journaled under a run of the bot (the
``HeldControl`` of a start waiting for its venue) and is still found; so is an event written
under no run at all (by hand), as before.

The events are written as the running engine writes them, then a paper session of
``risk-bot`` opens on the same file, as a restart does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import T0, Scripted
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.trading_state import Halt
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, OrderStatus, Side
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.held_control import HeldControl

BOT = "risk-bot"  # the restarted bot (``risk_helpers.manifest``)
OTHER = "other-bot"  # another bot sharing the journal file
BREAKER = "circuit-breaker"
ALICE = "alice@desk (grpc, control token, peer)"


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def _run(journal: Journal, run_id: str, bot: str = BOT, mode: str = "paper") -> None:
    journal.start_run(
        run_id=run_id, bot=bot, mode=mode, currency="USD", initial_capital=1e4,
        timeframe_s=3600, config_hash="x", manifest={},
    )  # fmt: skip
    time.sleep(0.01)  # runs are ordered by started_at


def _halt(journal: Journal, flatten: bool = False) -> None:
    journal.record_event(
        T0,
        "halted",
        f"emergency stop by {ALICE}: incident",
        {"who": ALICE, "reason": "incident", "flatten": flatten, "holder": "person"},
    )


def _resume(journal: Journal, who: str = "bob") -> None:
    journal.record_event(T0, "resumed", f"resumed by {who}: all clear", {"who": who})


def _lock(journal: Journal) -> None:
    journal.record_event(
        T0,
        "risk_locked",
        "circuit-breaker locked",
        {"plugin": BREAKER, "reason": "circuit breaker tier 3: drawdown", "since_ts": T0},
    )


def _reset(journal: Journal) -> None:
    journal.record_event(
        T0 + 3600,
        "risk_lock_reset",
        "circuit-breaker lock reset",
        {"plugin": BREAKER, "who": "ops", "reason": "reviewed"},
    )


def _close_owed(journal: Journal, owed: bool) -> None:
    data: dict[str, Any] = {"symbol": "TEST", "by": "risk:flattener", "owed": owed}
    journal.record_event(T0, "close_owed", "the close of TEST", {**data, "refused": None})


def _restarted(registry: PluginRegistry, path: Path, folder: Path) -> Engine:
    """A paper session of ``risk-bot`` (the circuit breaker in its chain) opened on ``path``:
    its start restores what the journal holds of it."""
    document = manifest([{"name": BREAKER}], mode="paper")
    session = open_session(bot_with(registry, document, Scripted(), folder), path)
    assert session.engine is not None
    return session.engine


# -- another bot sharing the file ------------------------------------------------------------


def test_another_bots_resume_does_not_end_this_bots_halt(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Money: A is halted by a person and stops; B, on the same journal file, is resumed.
    A comes back halted (before, B's ``resumed``, the newest of the file, ended A's halt)."""
    path = tmp_path / "shared.sqlite"
    journal = Journal(path)
    _run(journal, "a-1")
    _halt(journal)
    _run(journal, "b-1", bot=OTHER)
    _resume(journal)
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert engine.halted, "another bot's resume ended this bot's emergency stop"
    assert "incident" in engine.halt_reason


def test_another_bots_halt_does_not_halt_this_bot(registry: PluginRegistry, tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    journal = Journal(path)
    _run(journal, "a-1")
    _run(journal, "b-1", bot=OTHER)
    _halt(journal, flatten=True)
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert not engine.halted, engine.halt_reason


def test_another_bots_flatten_does_not_finish_this_bots(tmp_path: Path) -> None:
    """Money: A's halt with flatten named a close that never filled; B's ``flattened`` (its
    own flatten, nothing left) came after it in the file. A's flatten is still owed."""
    journal = Journal(tmp_path / "shared.sqlite")
    try:
        _run(journal, "a-1")
        _halt(journal, flatten=True)
        journal.record_order(Order("a-close", "TEST", Side.SELL, 1.0), OrderStatus.OPEN, T0)
        closes = {"who": ALICE, "reason": "incident", "closes": ["a-close"], "left": []}
        journal.record_event(T0, "flattened", "flattened: 1 close sent", closes)
        _run(journal, "b-1", bot=OTHER)
        journal.record_event(T0, "flattened", "flattened", {"who": "bob", "closes": []})
        journal.run_id = "a-2"  # A's restart (its run not started yet)
        assert journal.flatten_owed(BOT) == (ALICE, "incident")
        assert journal.flatten_in_force(BOT) == (ALICE, "incident")
        assert journal.flatten_owed(OTHER) is None
    finally:
        journal.close()


def test_another_bots_close_owed_is_neither_owed_nor_cleared_for_this_bot(
    tmp_path: Path,
) -> None:
    """Money: A owes the close of TEST; B, sharing the file, journals its own TEST close done
    (``owed`` false). A still owes it, and B's debts are never A's."""
    journal = Journal(tmp_path / "shared.sqlite")
    try:
        _run(journal, "a-1")
        _close_owed(journal, owed=True)
        _run(journal, "b-1", bot=OTHER)
        _close_owed(journal, owed=False)
        journal.run_id = "a-2"
        assert journal.closes_owed(BOT) == {"TEST": ("risk:flattener", None)}
        _run(journal, "b-2", bot=OTHER)
        _close_owed(journal, owed=True)
        _run(journal, "a-2")
        _close_owed(journal, owed=False)
        journal.run_id = "a-3"
        assert journal.closes_owed(BOT) == {}
    finally:
        journal.close()


def test_another_bots_lock_reset_does_not_clear_this_bots_lock(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "shared.sqlite"
    journal = Journal(path)
    _run(journal, "a-1")
    _lock(journal)
    _run(journal, "b-1", bot=OTHER)
    _reset(journal)
    journal.run_id = "a-2"
    assert journal.lock_resets(BOT) == {}
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert engine.holds_risk_lock(BREAKER), "another bot's reset cleared this bot's lock"


# -- a backtest of the same bot name in the file ----------------------------------------------


def test_a_backtests_lock_does_not_lock_the_paper_restart(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """A backtest of ``risk-bot`` written into its paper journal tripped the breaker: the
    paper restart does not start locked by the simulation (only a person clears a lock)."""
    path = tmp_path / "paper.sqlite"
    journal = Journal(path)
    _run(journal, "paper-1")
    _run(journal, "bt-1", mode="backtest")
    _lock(journal)
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert not engine.holds_risk_lock(BREAKER), engine.state.locks()


def test_a_backtests_reset_does_not_clear_the_paper_lock(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Unsafe direction: the paper run's own lock survives a backtest's reset of the same
    plugin journaled after it; the backtest's reset time is no baseline of the paper account."""
    path = tmp_path / "paper.sqlite"
    journal = Journal(path)
    _run(journal, "paper-1")
    _lock(journal)
    _run(journal, "bt-1", mode="backtest")
    _reset(journal)
    journal.run_id = "paper-2"
    assert journal.lock_resets(BOT) == {}
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert engine.holds_risk_lock(BREAKER), "a backtest's reset cleared the paper bot's lock"


def test_a_backtests_fill_of_a_close_id_does_not_finish_the_paper_flatten(
    tmp_path: Path,
) -> None:
    """Money: a backtest of the same bot name sends the same ids (a bare name's prefix, the
    same bar): its fill of an id the paper flatten named is not the paper close's."""
    journal = Journal(tmp_path / "paper.sqlite")
    try:
        _run(journal, "paper-1")
        _halt(journal, flatten=True)
        close = Order("tf-close", "TEST", Side.SELL, 1.0)
        journal.record_order(close, OrderStatus.OPEN, T0)
        closes = {"who": ALICE, "reason": "incident", "closes": ["tf-close"], "left": []}
        journal.record_event(T0, "flattened", "flattened: 1 close sent", closes)
        _run(journal, "bt-1", mode="backtest")
        journal.record_order(close, OrderStatus.OPEN, T0)
        journal.update_order("tf-close", OrderStatus.FILLED, T0)
        journal.run_id = "paper-2"
        assert journal.flatten_owed(BOT) == (ALICE, "incident")
    finally:
        journal.close()


def test_a_backtests_halt_and_resume_are_not_the_paper_bots(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "paper.sqlite")
    try:
        _run(journal, "paper-1")
        _halt(journal)
        _run(journal, "bt-1", mode="backtest")
        _resume(journal)
        _halt(journal, flatten=True)
        journal.run_id = "paper-2"
        assert journal.last_control_event(BOT) == ("halted", f"emergency stop by {ALICE}: incident")
        assert [kind for kind, _, _ in journal.halt_events(BOT)] == ["halted"]
        assert journal.flatten_in_force(BOT) is None  # the backtest's halt asked for it
    finally:
        journal.close()


# -- a person's command given while the bot was down ------------------------------------------


def test_a_resume_given_while_the_bot_waited_for_its_venue_is_found_by_the_next_start(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Halted in run 1; run 2 waits for its venue and a person resumes it (``HeldControl``,
    journaled under run 2), then run 2 stops before it trades; another bot's halt follows.
    Run 3 starts not halted."""
    path = tmp_path / "shared.sqlite"
    journal = Journal(path)
    _run(journal, "a-1")
    _halt(journal)
    _run(journal, "a-2")
    held = HeldControl(journal, False, [Halt("person", "incident")])  # as the start reads it
    held.resume(ALICE, "all clear")
    journal.finish_run("stopped", {"error": "stopped while waiting for the venue"})
    _run(journal, "b-1", bot=OTHER)
    _halt(journal)
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert not engine.halted, engine.halt_reason


def test_a_halt_given_while_the_bot_waited_for_its_venue_holds_at_the_next_start(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "shared.sqlite"
    journal = Journal(path)
    _run(journal, "a-1")
    _run(journal, "a-2")
    HeldControl(journal, False, []).halt(ALICE, "incident")
    _run(journal, "b-1", bot=OTHER)
    _resume(journal)
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert engine.halted and "incident" in engine.halt_reason


def test_a_halt_written_under_no_run_still_holds(registry: PluginRegistry, tmp_path: Path) -> None:
    """An event no run row owns (written by hand into the file) names no bot: taken, as
    before, rather than dropped (a halt dropped is the unsafe side)."""
    path = tmp_path / "paper.sqlite"
    journal = Journal(path)
    _run(journal, "paper-1")
    journal.run_id = ""
    _halt(journal)
    journal.close()
    engine = _restarted(registry, path, tmp_path)
    assert engine.halted and "incident" in engine.halt_reason
