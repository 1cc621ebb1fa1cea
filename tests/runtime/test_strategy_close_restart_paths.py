"""A strategy's close that waited, across a restart (review R41).

- A close that stopped waiting because a newer ``close`` took it over with nothing to wait
  for (the position flat, or nothing left working) is journaled as ended, so a restart does
  not ask it again (it closed a position the strategy opened later).
- A close asked again by a restart is journaled as done only once its own order is: a process
  that dies in between asks it again at its next start (the mark went first, and a death
  before the close left the exits cancelled and the journal saying it was resumed).
- Held: a resumed close that waits again is asked again by the next restart, once; a flatten
  in force closes instead; a halted bot still sends it; a backtest of the same bot name in
  the same journal neither ends nor adds a wait; beside an owed flatten close, no second
  close.

The venue is the paper broker whose cancels take effect when the test answers them
(``SlowCancels``). A restart is what ``BotSession`` does after the reconciliation:
``engine.resume_strategy_closes(journal.strategy_closes_waiting(bot))``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.held_closes import journaled_events
from tests.runtime.helpers import bar, start_test_run
from tests.runtime.test_flatten_waits_for_reducing_orders import (
    BARS,
    SYMBOL,
    _buy,
    _closes,
    _long_with_a_resting_sell,
    _slow_engine,
)
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)


def _buy_plain(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0)


def _waiting(engine: Engine) -> dict[str, str]:
    journal = engine.journal
    assert isinstance(journal, Journal)
    journal.flush()
    return journal.strategy_closes_waiting("bot")


def _flat_by_the_stop_while_the_close_waits(tmp_path: Path) -> tuple[Engine, str]:
    """Long 1 (stop 90, take-profit 130) and a resting sell S at 120; the strategy closes
    (waits for S's cancel), the stop-loss then fills (flat) while S's cancel is unanswered."""
    engine, _venue, sell = _long_with_a_resting_sell(tmp_path)
    engine.strategy.actions[2] = _close  # type: ignore[attr-defined]
    engine.run(BARS[2:3])
    assert [d.get("waiting_for") for _m, d in journaled_events(engine, "close_waits")] == [[sell]]
    engine.run([bar(3, 100.0, 100.0, 85.0, 88.0)])  # through the stop at 90
    assert engine.position(SYMBOL).quantity == 0.0
    assert sell in {o.client_order_id for o in engine.open_orders()}
    return engine, sell


def test_a_second_close_of_a_flat_position_leaves_no_stale_wait(tmp_path: Path) -> None:
    """The strategy closes again (it sees the exit condition again) once the stop made
    it flat, while the first close still waits for S's cancel. That close took the first
    over and ended it: journaled so, the next restart does not read the old wait as pending
    (it did, and closed the new long the strategy opened later on purpose)."""
    engine, _sell = _flat_by_the_stop_while_the_close_waits(tmp_path)
    venue = engine.broker
    engine.strategy.actions[4] = _close  # type: ignore[attr-defined]
    engine.run([bar(4, 88.0, 88.0, 88.0, 88.0)])
    venue.answer_cancels()  # type: ignore[attr-defined]
    engine.pump()
    assert not engine.open_orders()
    engine.strategy.actions[5] = _buy_plain  # type: ignore[attr-defined]
    engine.run([bar(i, 88.0, 88.0, 88.0, 88.0) for i in (5, 6)])
    assert engine.position(SYMBOL).quantity == 1.0  # a new long, on purpose
    # What the next start reads and does (``BotSession``, after the reconciliation):
    waiting = _waiting(engine)
    resumed = engine.resume_strategy_closes(waiting)
    assert (waiting, resumed, _closes(engine, "close")) == ({}, [], []), (
        "a wait that ended is still pending in the journal: the restart closes the new long"
    )


def test_a_wait_that_ended_flat_is_said_ended(tmp_path: Path) -> None:
    """without a second close, S's cancel ends the wait and it is journaled ended."""
    engine, _sell = _flat_by_the_stop_while_the_close_waits(tmp_path)
    engine.broker.answer_cancels()  # type: ignore[attr-defined]
    engine.pump()
    assert "ended" in journaled_events(engine, "close_waits")[-1][1]
    assert _waiting(engine) == {}


class _Killed(BaseException):
    """The process dies here (a SIGKILL, an OOM kill)."""


def test_a_kill_after_the_resumed_mark_before_the_close_loses_nothing(tmp_path: Path) -> None:
    """The earlier run's journal says the close waited. The restart asks it again, and dies
    before the close was journaled: the next start must still find it waiting (the
    ``resumed`` mark used to end it first)."""
    engine, _venue = _slow_engine(tmp_path, {0: _buy})
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 1.0
    engine.journal.record_event(  # type: ignore[attr-defined]
        0,
        "close_waits",
        "the earlier run's wait",
        {"symbol": SYMBOL, "waiting_for": ["s"], "tag": "exit"},
    )

    def killed(replay: bool = False) -> None:
        raise _Killed

    engine._process_intents = killed  # type: ignore[method-assign]
    with pytest.raises(_Killed):
        engine.resume_strategy_closes({SYMBOL: "exit"})
    assert _closes(engine, "exit") == []  # the close was never journaled
    assert _venue.asked == []  # its guards are kept until the close fills: not bare
    # The next start:
    assert _waiting(engine) == {SYMBOL: "exit"}, "the close is marked resumed but never went"


def test_a_resumed_close_that_waits_again_is_resumed_by_the_next_restart(tmp_path: Path) -> None:
    """resumed while S still works (its cancel unanswered), the close waits again and
    journals it with its tag, so a second restart in a row asks it again, with the tag."""
    engine, _venue, sell = _long_with_a_resting_sell(tmp_path)
    assert engine.resume_strategy_closes({SYMBOL: "exit"}) == [SYMBOL]
    assert _closes(engine, "exit") == []
    assert journaled_events(engine, "close_waits")[-1][1] == {
        "symbol": SYMBOL,
        "waiting_for": [sell],
        "tag": "exit",
    }
    assert _waiting(engine) == {SYMBOL: "exit"}
    # The second restart, in the same process for the test: one close, once S is cancelled.
    assert engine.resume_strategy_closes(_waiting(engine)) == [SYMBOL]
    engine.broker.answer_cancels()  # type: ignore[attr-defined]
    engine.pump()
    assert [q for _i, q in _closes(engine, "exit")] == [1.0]
    assert _waiting(engine) == {}


def test_a_flatten_in_force_closes_instead(tmp_path: Path) -> None:
    """an emergency flatten in force at the restart: no strategy close beside it."""
    engine, _venue = _slow_engine(tmp_path, {0: _buy})
    engine.run(BARS[:2])
    engine.halt("alice", "incident")  # restored as ``restore_halt`` does, then its flatten
    engine.keep_flatten("alice", "incident")
    assert engine.resume_strategy_closes({SYMBOL: "exit"}) == []
    assert _closes(engine, "exit") == []
    assert _waiting(engine) == {}


def test_a_halted_bot_still_sends_the_resumed_close(tmp_path: Path) -> None:
    """a halt restored at start refuses entries, not the reduce-only close."""
    engine, _venue = _slow_engine(tmp_path, {0: _buy})
    engine.run(BARS[:2])
    engine.halt("alice", "desk closed")
    assert engine.resume_strategy_closes({SYMBOL: "exit"}) == [SYMBOL]
    assert [q for _i, q in _closes(engine, "exit")] == [1.0]


def test_a_backtest_of_the_same_bot_neither_ends_nor_adds_a_wait(tmp_path: Path) -> None:
    """a backtest journaled in the same file under the same bot name between two paper
    runs: its ``close_waits`` events are not the bot's."""
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    journal.record_event(0, "close_waits", "…", {"symbol": "A", "waiting_for": ["a1"], "tag": "x"})
    start_test_run(journal, "bt", mode="backtest")
    journal.record_event(0, "close_waits", "…", {"symbol": "A", "ended": [], "resumed": True})
    journal.record_event(0, "close_waits", "…", {"symbol": "B", "waiting_for": ["b1"], "tag": "y"})
    start_test_run(journal, "run-2")
    journal.flush()
    assert journal.strategy_closes_waiting("bot") == {"A": "x"}


def test_a_resumed_close_beside_an_owed_flatten_close_sends_no_second_close(
    tmp_path: Path,
) -> None:
    """the stop policy's owed close is resumed first (``resume_closes``) and is on its
    way; the strategy's resumed close leaves it working and sends nothing beside it."""
    engine, venue = _slow_engine(tmp_path, {0: _buy})
    engine.run(BARS[:2])
    assert engine.resume_closes({SYMBOL: ("stop-flatten", None)}) == [SYMBOL]
    [(owed_close, quantity)] = _closes(engine, "stop-flatten")
    assert quantity == 1.0
    engine.resume_strategy_closes({SYMBOL: "exit"})
    assert _closes(engine, "exit") == []
    assert owed_close not in venue.asked  # not cancelled
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (2, 3)])
    assert engine.position(SYMBOL).quantity == 0.0
