"""The runtime keeps each halt's holder: a person's emergency stop given after a fleet stop
survives that fleet's resume (the operator's ``Resume``, sent when the fleet resume removes the
spec's stop), also across a restart between the two; a person's own resume lifts every halt.

A halt is undone only by a newer, explicit resume: the operator's resume is about the spec's
stop (the fleet's), never about the halt a person gave the runtime directly meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.service.paper_bots import event_kinds, served_at_first_bar, signals_bot
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.engine.trading_state import (
    PERSON_HOLDER,
    SPEC_HOLDER,
    UNKNOWN_HOLDER,
    Halt,
    TradingState,
    halt_holder,
    restored_halt_reason,
    restored_halts,
    resume_holder,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.held_control import HeldControl

FLEET = "tradefleet-fleet"  # fleet.ACTOR: the fleet stop's direct call
OPERATOR = "tradefleet-operator"  # runtime_client.ACTOR: the spec's halt and its resume
PERSON = "alice@desk"  # tradefleet stop/resume ADDRESS (the CLI's default actor: user@host)


def _stop(stub: pb_grpc.RuntimeServiceStub, actor: str, reason: str) -> pb.StatusSnapshot:
    request = pb.EmergencyStopRequest(reason=reason, actor=actor)
    answer: pb.StatusSnapshot = stub.EmergencyStop(request, timeout=10)
    return answer


def _resume(stub: pb_grpc.RuntimeServiceStub, actor: str, reason: str) -> pb.StatusSnapshot:
    answer: pb.StatusSnapshot = stub.Resume(
        pb.ResumeRequest(reason=reason, actor=actor), timeout=10
    )
    return answer


@contextmanager
def _served(folder: Path, name: str = "holders") -> Iterator[pb_grpc.RuntimeServiceStub]:
    """A paper bot on the journal in ``folder`` (the same file at each call: a restart),
    behind its gRPC API, at its first bar."""
    journal = Journal(folder / "j.sqlite", durable=True)
    try:
        with served_at_first_bar(signals_bot(name, journal, folder)) as stub:
            yield stub
    finally:
        journal.close()


def _fleet_stop(stub: pb_grpc.RuntimeServiceStub) -> None:
    """What a fleet stop does to a runtime: its direct call, then the operator's halt for the
    spec stop it wrote (the runtime is halted already)."""
    assert _stop(stub, FLEET, "desk drill").halted
    assert _stop(stub, OPERATOR, "desk drill").halt_reason == "desk drill"


def test_a_persons_halt_after_a_fleet_stop_survives_the_fleet_resume(tmp_path: Path) -> None:
    with _served(tmp_path) as stub:
        _fleet_stop(stub)
        both = _stop(stub, PERSON, "fills look wrong")
        # The first halt's reason first, as the status always read; the person's is named too.
        assert both.halt_reason.startswith("desk drill; emergency stop by alice@desk (grpc")
        assert both.halt_reason.endswith(": fills look wrong")

        # The fleet resume removes the spec stop; the operator resumes: the fleet's halt goes.
        answer = _resume(stub, OPERATOR, "spec asks for running")
        assert answer.halted and answer.phase == pb.PHASE_HALTED
        assert answer.halt_reason.startswith("emergency stop by alice@desk (grpc")
        assert "desk drill" not in answer.halt_reason
        assert answer.halt_reason.endswith(": fills look wrong")

        # The person's own resume lifts it.
        answer = _resume(stub, PERSON, "checked the fills")
        assert not answer.halted and answer.halt_reason == ""
        assert answer.phase == pb.PHASE_RUNNING


def test_the_persons_halt_survives_a_restart_before_the_fleet_resume(tmp_path: Path) -> None:
    with _served(tmp_path) as stub:
        _fleet_stop(stub)
        _stop(stub, PERSON, "fills look wrong")
    with _served(tmp_path) as stub:  # the pod restarted on its journal
        status = stub.GetStatus(pb.GetStatusRequest(), timeout=10)
        assert status.halted
        assert status.halt_reason.startswith("restored after restart (emergency stop by tradefl")
        assert "; restored after restart (emergency stop by alice@desk" in status.halt_reason

        answer = _resume(stub, OPERATOR, "spec asks for running")
        assert answer.halted
        assert answer.halt_reason.startswith("restored after restart (emergency stop by alice@")
        assert "desk drill" not in answer.halt_reason
    with _served(tmp_path) as stub:  # and again: the fleet's halt, lifted, is not restored
        status = stub.GetStatus(pb.GetStatusRequest(), timeout=10)
        assert status.halted and "desk drill" not in status.halt_reason
        assert not _resume(stub, PERSON, "checked the fills").halted


def test_a_fleet_stop_and_its_resume_without_a_person_resume_the_bot(tmp_path: Path) -> None:
    with _served(tmp_path) as stub:
        _fleet_stop(stub)
        answer = _resume(stub, OPERATOR, "spec asks for running")
        assert not answer.halted and answer.phase == pb.PHASE_RUNNING


def test_a_persons_resume_lifts_every_halt(tmp_path: Path) -> None:
    with _served(tmp_path) as stub:
        _fleet_stop(stub)
        _stop(stub, PERSON, "fills look wrong")
        answer = _resume(stub, PERSON, "all clear")
        assert not answer.halted and answer.phase == pb.PHASE_RUNNING
    with _served(tmp_path) as stub:  # journaled as the resume it always was
        assert not stub.GetStatus(pb.GetStatusRequest(), timeout=10).halted


def test_a_persons_stop_and_resume_alone_are_as_before(tmp_path: Path) -> None:
    with _served(tmp_path) as stub:
        assert _stop(stub, PERSON, "fills look wrong").halt_reason == "fills look wrong"
        assert not _resume(stub, PERSON, "all clear").halted


def test_the_journal_says_each_holders_halt_and_its_lift(tmp_path: Path) -> None:
    with _served(tmp_path) as stub:
        _fleet_stop(stub)
        _stop(stub, PERSON, "fills look wrong")
        _stop(stub, PERSON, "again")  # the same holder: nothing new
        _resume(stub, OPERATOR, "spec asks for running")
    journal = Journal(tmp_path / "j.sqlite")
    try:
        kinds = [k for k in event_kinds(journal) if k.startswith(("halt", "resumed"))]
        assert kinds == ["halted", "halt_joined", "halt_lifted"]
        assert [
            holder for _, _, data in journal.halt_events("holders") if (holder := data["holder"])
        ] == [
            SPEC_HOLDER,
            halt_holder(PERSON),
            SPEC_HOLDER,
        ]
    finally:
        journal.close()


# -- the rules, pure ------------------------------------------------------------------------


def test_who_holds_a_halt_and_whom_a_resume_is_aimed_at() -> None:
    grpc_who = "tradefleet-operator (grpc, control token, ipv4:10.0.0.7:51234)"
    assert halt_holder(grpc_who) == SPEC_HOLDER == halt_holder("tradefleet-fleet (grpc, x)")
    assert halt_holder("spec.emergencyStop") == SPEC_HOLDER  # the start's, from the manifest
    assert halt_holder("alice@desk (grpc, control token, peer)") == PERSON_HOLDER
    assert resume_holder(grpc_who) == SPEC_HOLDER
    assert resume_holder("alice@desk (grpc, control token, peer)") is None  # every halt


def test_a_journal_of_an_older_runtime_restores_its_one_halt() -> None:
    """Rows without ``holder``: the holder is their ``who``'s; one row, one holder."""
    old = [
        (
            "halted",
            "emergency stop by tradefleet-fleet (grpc): drill",
            {"who": "tradefleet-fleet (grpc)"},
        )
    ]
    assert restored_halts(old) == [
        Halt(SPEC_HOLDER, restored_halt_reason("emergency stop by tradefleet-fleet (grpc): drill"))
    ]
    # A row without ``who`` either: a holder of its own, lifted only by a person's resume.
    assert restored_halts([("halted", "emergency stop by x: y", {})]) == [
        Halt(UNKNOWN_HOLDER, "restored after restart (emergency stop by x: y)")
    ]


def test_a_halt_held_before_the_venue_answers_keeps_its_holders(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "held.sqlite")
    try:
        held = HeldControl(journal, paused=False, halts=[])
        held.halt(FLEET, "desk drill")
        held.halt(PERSON, "fills look wrong")
        held.resume(OPERATOR, "spec asks for running")
        assert held.halted and held.halt_reason == "emergency stop by alice@desk: fills look wrong"
        # What the start then restores: the person's halt alone.
        halts = restored_halts(journal.halt_events("holders"))
        assert [halt.holder for halt in halts] == [halt_holder(PERSON)]
        held.resume(PERSON, "all clear")
        assert not held.halted and journal.halt_events("holders") == []
    finally:
        journal.close()


def test_a_risk_lock_is_no_halt_holder() -> None:
    """A resume aimed at the spec's halt neither lifts nor adds a lock: only a reset does."""
    state = TradingState()
    state.held["circuit-breaker"] = ("drawdown 11%", 0)
    assert state.halt("desk drill", SPEC_HOLDER)
    assert state.lift(SPEC_HOLDER) and not state.halted
    assert state.held == {"circuit-breaker": ("drawdown 11%", 0)}


@pytest.mark.parametrize("holder", [SPEC_HOLDER, PERSON_HOLDER])
def test_a_holder_halting_twice_keeps_its_first_halt(holder: str) -> None:
    state = TradingState()
    assert state.halt("first", holder)
    assert not state.join(holder, "second")
    assert state.halt_reason == "first"
