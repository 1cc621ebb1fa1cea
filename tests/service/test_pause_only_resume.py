"""``Resume`` with ``pause_only`` (what the operator sends when a spec's ``paused`` goes back to
false) undoes a pause and nothing else: an emergency stop a person gave stays, and so does a
Degraded stop (``tests/runtime/test_reconcile.py``). A person's resume clears both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.paper_bots import (
    SIGNALS,
    at_first_bar,
    event_kinds,
    paper_controller,
    paper_manifest,
    short_eurusd,
    signals_bot,
)
from tradefleet_runtime.engine.trading_state import TradingState
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.spec.model import EmergencyStopSpec


@pytest.fixture
def running(journal: Journal, tmp_path: Path) -> Iterator[BotController]:
    """A bot at its first bar, waiting an hour of wall clock for the next one."""
    with at_first_bar(signals_bot("pause-only-bot", journal, tmp_path)) as controller:
        yield controller


def test_unpause_clears_the_pause_alone() -> None:
    state = TradingState()
    assert not state.unpause()
    state.pause("lunch")
    state.halt("drawdown")
    assert state.unpause()
    assert not state.paused and state.pause_reason == ""
    assert state.halted and state.halt_reason == "drawdown"


def test_a_pause_only_resume_leaves_a_person_s_halt_in_force(
    running: BotController, journal: Journal
) -> None:
    running.emergency_stop("alice", "drawdown 11%")
    running.pause("operator", "spec.paused is true")
    answer = running.resume("operator", "spec.paused is false", pause_only=True)
    # The answer says the halt stays (no error: the request was valid and was done).
    assert answer.halted and answer.halt_reason == "drawdown 11%"
    assert not answer.paused and answer.phase is Phase.HALTED
    kinds = event_kinds(journal)
    assert "unpaused" in kinds and "resumed" not in kinds  # a restart keeps the halt
    [(message,)] = journal.query("SELECT message FROM events WHERE kind = 'unpaused'")
    assert "the emergency stop stays: drawdown 11%" in message
    assert journal.last_control_event(running.bot.name) == (
        "halted",
        "emergency stop by alice: drawdown 11%",
    )
    # A person's resume is the way out.
    after = running.resume("alice", "reviewed")
    assert not after.halted and after.phase is Phase.RUNNING


def test_a_pause_only_resume_of_a_paused_bot_runs_it(running: BotController) -> None:
    running.pause("operator", "spec.paused is true")
    assert running.get_status().phase is Phase.PAUSED
    answer = running.resume("operator", "spec.paused is false", pause_only=True)
    assert not answer.paused and not answer.halted and answer.phase is Phase.RUNNING


def test_a_bot_whose_manifest_says_halted_starts_halted(journal: Journal, tmp_path: Path) -> None:
    """bot.yaml carries ``spec.emergencyStop`` (the operator keeps the ConfigMap at the spec):
    a pod that restarts without the journaled halt (an ephemeral journal) trades nothing."""
    manifest = paper_manifest("halted-bot", SIGNALS, short_eurusd(tmp_path))
    stop = EmergencyStopSpec(reason="desk\nreview")
    manifest = manifest.model_copy(
        update={"spec": manifest.spec.model_copy(update={"emergency_stop": stop})}
    )
    with at_first_bar(paper_controller(manifest, journal, speed=0.0001)) as controller:
        status = controller.get_status()
        assert status.halted and status.phase is Phase.HALTED
        assert journal.last_control_event("halted-bot") == (
            "halted",
            "emergency stop by spec.emergencyStop: desk review",
        )
