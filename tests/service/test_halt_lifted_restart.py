"""R28a: a spec halt the operator lifted while a Degraded stop held the bot comes back after a
restart as a halt of unknown holder. ``Engine._lift`` journals ``halt_lifted`` (holder spec,
left ``["degraded"]``) after the spec's ``halted``; the Degraded halt is never journaled as a
halt event (a restart's reconciliation decides it again). At the restart
``restored_halts(halt_events())`` is then empty while ``last_control_event()`` still reads
``halted``, and ``BotSession._restore`` falls back to ``Halt(UNKNOWN_HOLDER, ...)``
(session.py ``halts or [...]``): the bot, whose venue now reconciles clean, is halted by the
fleet's lifted stop, which no operator Resume lifts again (it aims at the spec holder) and the
status timer never resumes. The HeldControl of the same journal (before the venue answers)
says it is not halted, so the status flips to halted once the engine opens. Fails now (the
restarted bot is halted "restored after restart (emergency stop by tradefleet-fleet ...)");
passes once a journal whose halts were all lifted restores no halt."""

from __future__ import annotations

from pathlib import Path

from tests.service.test_halt_holders import FLEET, OPERATOR, _served, _stop
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.engine.trading_state import Halt, halts_in_force, restored_halts
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.held_control import HeldControl

BOT = "holders"  # ``_served``'s bot


def test_a_spec_halt_lifted_beside_a_degraded_stop_is_not_restored(tmp_path: Path) -> None:
    with _served(tmp_path) as stub:
        assert _stop(stub, FLEET, "desk drill").halted
    # What Engine._lift journals when the operator's Resume (spec stop removed) finds the bot
    # Degraded too: the spec's halt goes, the Degraded one stays (never journaled as a halt).
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    try:
        who = f"{OPERATOR} (grpc, control token, ipv4:10.0.0.7:5)"
        journal.record_event(
            0,
            "halt_lifted",
            f"emergency stop of the spec lifted by {who}: spec asks for running; still "
            "halted: reconciliation: position drift",
            {"who": who, "reason": "spec asks for running", "holder": "spec", "left": ["degraded"]},
        )
        # Before the venue answers the runtime says: not halted.
        assert restored_halts(journal.halt_events(BOT)) == []
        held = HeldControl(journal, False, restored_halts(journal.halt_events(BOT)))
        assert not held.halted
    finally:
        journal.close()
    with _served(tmp_path) as stub:  # the pod restarts; the paper venue reconciles clean
        status = stub.GetStatus(pb.GetStatusRequest(), timeout=10)
        assert not status.halted, status.halt_reason


# -- the journal's readers of the halt in force ---------------------------------------------

_OPERATOR_WHO = f"{OPERATOR} (grpc, control token, ipv4:10.0.0.7:5)"


def _lift(journal: Journal, left: list[str]) -> None:
    """The ``halt_lifted`` row ``Engine._lift`` writes for the operator's Resume."""
    journal.record_event(
        0,
        "halt_lifted",
        f"emergency stop of the spec lifted by {_OPERATOR_WHO}: spec asks for running",
        {"who": _OPERATOR_WHO, "reason": "spec asks for running", "holder": "spec", "left": left},
    )


def _fleet_halt_with_flatten(journal: Journal) -> None:
    who = f"{FLEET} (grpc, control token, ipv4:10.0.0.7:5)"
    journal.record_event(
        0,
        "halted",
        f"emergency stop by {who}: desk drill",
        {"who": who, "reason": "desk drill", "flatten": True, "holder": "spec"},
    )


def test_the_flatten_of_a_halt_lifted_beside_a_degraded_stop_is_not_owed(tmp_path: Path) -> None:
    """The lifted stop's ``halted`` row stays the newest halt or resume; its flatten (never
    done: the venue could not be reached, say) must not be carried out by the next start, nor
    kept in force (closing every entry that fills) — the halt is not in force."""
    journal = Journal(tmp_path / "flatten.sqlite")
    try:
        _fleet_halt_with_flatten(journal)
        assert journal.flatten_owed(BOT) == (
            f"{FLEET} (grpc, control token, ipv4:10.0.0.7:5)",
            "desk drill",
        )
        _lift(journal, ["degraded"])
        assert journal.flatten_owed(BOT) is None
        assert journal.flatten_in_force(BOT) is None
        assert halts_in_force(journal.halt_events(BOT), journal.last_control_event(BOT)) == []
    finally:
        journal.close()


def test_a_halt_lifted_while_a_persons_holds_keeps_the_flatten_in_force(tmp_path: Path) -> None:
    """A lift that leaves a journaled halt (a person's) leaves the bot halted, as the live
    engine does (its flatten in force stays too): the flatten is still owed at a start."""
    journal = Journal(tmp_path / "kept.sqlite")
    try:
        _fleet_halt_with_flatten(journal)
        who = "alice@desk (grpc, control token, peer)"
        journal.record_event(
            0,
            "halt_joined",
            f"emergency stop by {who}: fills look wrong (already halted)",
            {"who": who, "reason": "fills look wrong", "holder": "person", "flatten": False},
        )
        _lift(journal, ["person"])
        assert journal.flatten_owed(BOT) is not None and journal.flatten_in_force(BOT) is not None
        halts = halts_in_force(journal.halt_events(BOT), journal.last_control_event(BOT))
        assert halts == [
            Halt("person", f"restored after restart (emergency stop by {who}: fills look wrong)")
        ]
    finally:
        journal.close()


def test_a_persons_halt_of_a_bot_only_degraded_survives_a_restart(tmp_path: Path) -> None:
    """A Degraded stop is never journaled as a halt: a person's halt given to a bot it alone
    held is journaled ``halt_joined`` with no ``halted`` row (newest halt or resume: a
    ``resumed``, or none). The start must restore it all the same: the account may reconcile
    clean then, and the person's stop still holds."""
    journal = Journal(tmp_path / "joined.sqlite")
    try:
        journal.record_event(0, "resumed", "resumed by bob: earlier", {"who": "bob"})
        who = "alice@desk (grpc, control token, peer)"
        journal.record_event(
            0,
            "halt_joined",
            f"emergency stop by {who}: look first (already halted)",
            {"who": who, "reason": "look first", "holder": "person", "flatten": True},
        )
        halts = halts_in_force(journal.halt_events(BOT), journal.last_control_event(BOT))
        assert halts == [
            Halt("person", f"restored after restart (emergency stop by {who}: look first)")
        ]
        assert journal.flatten_owed(BOT) == (who, "look first")
    finally:
        journal.close()


def test_a_joined_halt_restores_in_the_form_of_a_halted_one() -> None:
    """No "(already halted)" in what the status shows after a restart: the operator reads the
    reason given out of that text (``fleet._halted_for``)."""
    who = f"{FLEET} (grpc)"
    events = [
        ("halted", "emergency stop by alice@desk: look", {"who": "alice@desk", "holder": "person"}),
        ("halt_joined", f"emergency stop by {who}: drill (already halted)", {"holder": "spec"}),
    ]
    assert [halt.text for halt in restored_halts(events)] == [
        "restored after restart (emergency stop by alice@desk: look)",
        f"restored after restart (emergency stop by {who}: drill)",
    ]
