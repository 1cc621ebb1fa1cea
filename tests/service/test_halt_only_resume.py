"""``Resume`` with ``halt_only`` (what the operator sends when a spec's ``emergencyStop`` goes
while its ``paused`` stays true, e.g. a fleet resume of a paused bot) lifts the halt and keeps
the pause: the bot is never open to entries in between, and a signal sent after it is refused
as paused. A bot with no halt is left as it is; ``pause_only`` with it is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.service.fakes import HaltedJournal
from tests.service.paper_bots import (
    at_first_bar,
    eurusd_signal,
    event_kinds,
    served_at_first_bar,
    signals_bot,
)
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.engine.trading_state import halts_in_force
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import ControlError, Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.held_control import HeldControl


@pytest.fixture
def running(journal: Journal, tmp_path: Path) -> Iterator[BotController]:
    """A bot at its first bar, waiting an hour of wall clock for the next one."""
    with at_first_bar(signals_bot("halt-only-bot", journal, tmp_path)) as controller:
        yield controller


def test_a_halt_only_resume_lifts_the_halt_and_keeps_the_pause(
    running: BotController, journal: Journal
) -> None:
    running.pause("operator", "spec.paused is true")
    running.emergency_stop("tradefleet-fleet", "desk drill")
    answer = running.resume("operator", "spec.emergencyStop removed", halt_only=True)
    assert not answer.halted and answer.halt_reason == ""
    assert answer.paused and answer.pause_reason == "spec.paused is true"
    assert answer.phase is Phase.PAUSED
    # The halt's end is journaled (a restart must not restore it); the pause is said again.
    assert event_kinds(journal)[-2:] == ["resumed", "paused"]
    assert journal.last_control_event(running.bot.name) == (
        "resumed",
        "resumed by operator: spec.emergencyStop removed",
    )
    assert running.engine is not None and running.engine.paused
    refused = running.submit_signal(eurusd_signal("after-the-halt"))
    assert not refused.accepted and "paused" in refused.reason


def test_a_halt_only_resume_of_a_bot_not_halted_changes_nothing(
    running: BotController, journal: Journal
) -> None:
    running.pause("operator", "spec.paused is true")
    before = event_kinds(journal)
    answer = running.resume("operator", "spec.emergencyStop removed", halt_only=True)
    assert answer.paused and not answer.halted and answer.phase is Phase.PAUSED
    assert event_kinds(journal) == before


def test_pause_only_and_halt_only_together_are_refused(running: BotController) -> None:
    with pytest.raises(ControlError) as refused:
        running.resume("operator", "both", pause_only=True, halt_only=True)
    assert refused.value.field == "halt_only"


def test_halt_only_goes_through_the_grpc_api(journal: Journal, tmp_path: Path) -> None:
    with served_at_first_bar(signals_bot("halt-only-grpc", journal, tmp_path)) as stub:
        stub.Pause(pb.PauseRequest(reason="spec.paused is true"), timeout=10)
        stub.EmergencyStop(pb.EmergencyStopRequest(reason="desk drill"), timeout=10)
        answer = stub.Resume(pb.ResumeRequest(reason="lifted", halt_only=True), timeout=10)
        assert answer.paused and not answer.halted and answer.phase == pb.PHASE_PAUSED
        with pytest.raises(grpc.RpcError) as both:
            stub.Resume(pb.ResumeRequest(reason="x", pause_only=True, halt_only=True), timeout=10)
        assert both.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_halt_only_resume_before_the_venue_answers_keeps_the_pause() -> None:
    journal = HaltedJournal()
    held = HeldControl(journal, True, halts_in_force([], journal.last_control_event()))
    assert held.halted and held.paused
    held.resume("operator", "spec.emergencyStop removed", halt_only=True)
    assert not held.halted and held.paused
    assert journal.events[-1] == ("resumed", "resumed by operator: spec.emergencyStop removed")
