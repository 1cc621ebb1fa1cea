"""Control calls a real bot refuses without doing or journaling anything: every change once its
data has ended (FAILED_PRECONDITION), a reason with no text or too long (INVALID_ARGUMENT,
``reason``), a risk lock reset for a plugin that holds no lock (FAILED_PRECONDITION). An
emergency stop is never refused for its reason's form (walkthrough W24): the operator sends
``spec.emergencyStop.reason`` as written, which the cluster takes with any text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.paper_bots import (
    FIXED_SIZE,
    SIGNALS,
    at_first_bar,
    eurusd_signal,
    paper_controller,
    paper_manifest,
    short_eurusd,
    wait_until,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import NO_HALT_REASON, ControlError, NotNow, Phase
from tradefleet_runtime.service.controller import BotController


def _controller(journal: Journal, data: Path, speed: float) -> BotController:
    risk = (FIXED_SIZE, {"name": "circuit-breaker", "params": {"cooldown_minutes": 120}})
    manifest = paper_manifest("refusing-bot", SIGNALS, data, risk)
    return paper_controller(manifest, journal, speed)


def _journaled(journal: Journal) -> tuple[Any, ...]:
    """Everything a control call could have journaled."""
    return (
        journal.query("SELECT kind, message FROM events ORDER BY id"),
        journal.query("SELECT client_order_id FROM orders ORDER BY client_order_id"),
        journal.query("SELECT signal_id FROM signals"),
    )


@pytest.fixture
def running(journal: Journal, tmp_path: Path) -> Iterator[BotController]:
    """A bot at its first bar, waiting an hour of wall clock for the next one."""
    with at_first_bar(_controller(journal, short_eurusd(tmp_path), speed=0.0001)) as controller:
        yield controller


def test_a_bot_whose_data_ended_refuses_changes_and_still_answers_reads(
    journal: Journal, tmp_path: Path
) -> None:
    # ~20 bars a second: time to open a position before the data ends.
    with at_first_bar(_controller(journal, short_eurusd(tmp_path), speed=72_000)) as controller:
        assert controller.submit_signal(eurusd_signal("before-the-end")).accepted
        wait_until(lambda: controller.get_status().phase is Phase.STOPPED, controller)
        before = _journaled(journal)
        changes: dict[str, Callable[[], object]] = {
            "pause": lambda: controller.pause("alice", "lunch"),
            "resume": lambda: controller.resume("alice", "back"),
            "stop": lambda: controller.emergency_stop("alice", "incident", flatten=True),
            "reset": lambda: controller.reset_risk_lock("circuit-breaker", "alice", "new day"),
            "params": lambda: controller.update_params({"max_signal_age_s": 60}, "alice"),
            "signal": lambda: controller.submit_signal(eurusd_signal("after-the-end")),
        }
        for name, change in changes.items():
            with pytest.raises(NotNow, match="stopped") as refused:
                change()
            assert refused.value.grpc_code == "FAILED_PRECONDITION", name
        # A retry of a signal it took is still answered (it changes nothing).
        assert controller.submit_signal(eurusd_signal("before-the-end")).accepted
        status = controller.get_status()
        positions = controller.list_positions()
        orders = controller.list_orders(include_closed=True)
        trades = controller.list_trades()
        after = _journaled(journal)
    assert after == before  # nothing journaled: no pause, halt, flatten order or signal
    assert status.phase is Phase.STOPPED and not status.halted and not status.paused
    assert status.open_positions == 1 and len(positions) == 1  # the flatten did not run
    assert not [o for o in orders if o.reduce_only and o.parent_id is None]  # no close order
    assert trades.trades == ()


@pytest.mark.parametrize("reason", ["", "   ", "\n\t\x07\u202e", "x" * 1001])
def test_every_control_call_but_a_halt_checks_its_reason_the_same_way(
    running: BotController, journal: Journal, reason: str
) -> None:
    before = _journaled(journal)
    calls: dict[str, Callable[[], object]] = {
        "pause": lambda: running.pause("alice", reason),
        "resume": lambda: running.resume("alice", reason),
        "reset": lambda: running.reset_risk_lock("circuit-breaker", "alice", reason),
    }
    for name, call in calls.items():
        with pytest.raises(ControlError) as refused:
            call()
        assert refused.value.grpc_code == "INVALID_ARGUMENT", name
        assert refused.value.field == "reason", name
    assert _journaled(journal) == before
    assert running.get_status().phase is Phase.RUNNING


@pytest.mark.parametrize(
    ("given", "journaled"),
    [
        ("line one\nline two", "line one line two"),
        ("tab\there", "tab here"),
        ("bell\x07", "bell"),
        ("rtl\u202eevil", "rtl evil"),
    ],
)
def test_a_reason_is_journaled_on_one_line_and_never_refuses_a_halt(
    running: BotController, journal: Journal, given: str, journaled: str
) -> None:
    """The operator sends ``spec.emergencyStop.reason`` as written (a YAML block holds line
    breaks): refused for its form, the halt would not happen and the bot would trade on."""
    status = running.emergency_stop("alice", given)
    assert status.halted and status.halt_reason == journaled
    [(message,)] = journal.query("SELECT message FROM events WHERE kind = 'halted'")
    assert message.endswith(f": {journaled}")


@pytest.mark.parametrize(
    "reason", [" ", "\n", "\u200b", "\u00a0", ""], ids=["blank", "newline", "zwsp", "nbsp", "empty"]
)
def test_a_halt_whose_reason_holds_no_text_halts_the_bot(
    running: BotController, journal: Journal, reason: str
) -> None:
    """The CRD and the spec model take such a reason (``minLength: 1``); the operator sends it
    as written. Refused, the bot traded on while its spec said halted (the operator only
    warned and sent it again)."""
    status = running.emergency_stop("operator", reason)
    assert status.halted and status.halt_reason == NO_HALT_REASON
    assert not running.submit_signal(eurusd_signal("after-the-halt")).accepted
    [(message,)] = journal.query("SELECT message FROM events WHERE kind = 'halted'")
    assert message.endswith(f": {NO_HALT_REASON}")


def test_a_halt_whose_reason_is_too_long_halts_with_it_cut(running: BotController) -> None:
    status = running.emergency_stop("alice", "x" * 5000)
    assert status.halted
    kept = status.halt_reason
    assert kept.startswith("x" * 900) and kept.endswith("\u2026") and len(kept) <= 1000


def test_a_reason_is_journaled_without_its_surrounding_whitespace(
    running: BotController, journal: Journal
) -> None:
    status = running.pause("alice", "  lunch break\n")
    assert status.paused and status.pause_reason.endswith("lunch break")
    [(message,)] = journal.query("SELECT message FROM events WHERE kind = 'paused'")
    assert message.endswith(": lunch break")


def test_resetting_a_plugin_that_holds_no_lock_is_refused_and_journals_nothing(
    running: BotController, journal: Journal
) -> None:
    before = _journaled(journal)
    for plugin in ("circuit-breaker", "fixed-size"):  # a lock holder, and a sizer
        with pytest.raises(NotNow) as refused:
            running.reset_risk_lock(plugin, "alice", "new day")
        assert refused.value.grpc_code == "FAILED_PRECONDITION"
        assert refused.value.field == "plugin" and str(refused.value) == f"{plugin} holds no lock"
    with pytest.raises(ControlError) as unknown:
        running.reset_risk_lock("nope", "alice", "new day")
    assert unknown.value.grpc_code == "INVALID_ARGUMENT" and unknown.value.field == "plugin"
    assert _journaled(journal) == before
