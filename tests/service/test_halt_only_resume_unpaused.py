"""``Resume`` with ``halt_only`` means "lift the halt, stay paused", also on a runtime that is
not paused when it arrives.

The operator sends ``Pause``, ``Resume(halt_only)``, ``Pause`` when a paused bot's emergency stop
goes. A pause lives in the process only, the halt is journaled: a runtime restarted between the
first ``Pause`` and the ``Resume`` is halted but not paused. Lifting its halt alone would leave it
open to entries until the last ``Pause`` got through (never, if that call failed). So the resume
pauses it, in the same command on the engine thread, with a reason saying the operator keeps it
paused; and the held control of a bot waiting for its venue does the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.fakes import HaltedJournal
from tests.service.paper_bots import at_first_bar, eurusd_signal, event_kinds, signals_bot
from tradefleet_runtime.engine.trading_state import halts_in_force
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.held_control import HALT_ONLY_PAUSE_REASON, HeldControl


@pytest.fixture
def running(journal: Journal, tmp_path: Path) -> Iterator[BotController]:
    """A bot at its first bar, waiting an hour of wall clock for the next one."""
    with at_first_bar(signals_bot("halt-only-unpaused", journal, tmp_path)) as controller:
        yield controller


def test_a_halt_only_resume_of_a_halted_unpaused_bot_leaves_it_paused(
    running: BotController, journal: Journal
) -> None:
    # Halted (journaled, survives a restart); the operator's Pause was lost with the process.
    running.emergency_stop("tradefleet-fleet", "desk drill")
    answer = running.resume("operator", "spec.emergencyStop removed", halt_only=True)
    assert not answer.halted and answer.halt_reason == ""
    assert answer.paused and answer.pause_reason == HALT_ONLY_PAUSE_REASON
    assert answer.phase is Phase.PAUSED
    assert event_kinds(journal)[-2:] == ["resumed", "paused"]
    taken = running.submit_signal(eurusd_signal("between-the-calls"))
    assert not taken.accepted and "paused" in taken.reason


def test_a_halt_only_resume_of_a_bot_neither_halted_nor_paused_pauses_it(
    running: BotController,
) -> None:
    answer = running.resume("operator", "spec.emergencyStop removed", halt_only=True)
    assert answer.paused and not answer.halted and answer.phase is Phase.PAUSED
    assert answer.pause_reason == HALT_ONLY_PAUSE_REASON
    assert not running.submit_signal(eurusd_signal("after")).accepted


def test_a_halt_only_resume_before_the_venue_answers_pauses_an_unpaused_bot() -> None:
    """The spec's pause is not known to a pod that restarted (``paused=False`` here)."""
    journal = HaltedJournal()
    held = HeldControl(journal, False, halts_in_force([], journal.last_control_event()))
    assert held.halted and not held.paused
    held.resume("operator", "spec.emergencyStop removed", halt_only=True)
    assert not held.halted and held.paused and held.pause_reason == HALT_ONLY_PAUSE_REASON
    assert journal.events[-1] == ("resumed", "resumed by operator: spec.emergencyStop removed")
