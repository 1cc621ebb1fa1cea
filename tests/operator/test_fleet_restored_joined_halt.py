"""R28a: the fleet takes its own halt for a person's once the runtime restarted. A spec halt
given while a person's held the runtime is journaled ``halt_joined`` with the message
"emergency stop by WHO: REASON (already halted)"; a restart restores it as "restored after
restart (emergency stop by tradefleet-fleet (...): REASON (already halted))". The operator's
``fleet._halted_for`` strips only the flatten suffix, so it reads "REASON (already halted)",
which matches no fleet reason: ``foreign_halt`` calls the fleet's own stop foreign, and a
later fleet stop (``stop_patch`` via ``_foreign_parts``) adopts it as the bot's own stop, which
no fleet resume ever lifts (safe side, but a bot left halted by a stop nobody gave). Fails now
(foreign_halt is True for the restored joined form); passes once that form is recognised."""

from __future__ import annotations

from tradefleet_operator.fleet import foreign_halt

_WHO = "tradefleet-fleet (grpc, control token, ipv4:10.0.0.7:51234)"
_BOT = {"spec": {"emergencyStop": {"reason": "desk drill", "flatten": False}}, "metadata": {}}


def test_the_fleets_joined_halt_restored_after_a_restart_is_its_own() -> None:
    live = f"emergency stop by {_WHO}: desk drill"
    assert not foreign_halt(live, "desk drill", _BOT)  # as given: the fleet's own
    restored = f"restored after restart (emergency stop by {_WHO}: desk drill (already halted))"
    assert not foreign_halt(restored, "desk drill", _BOT)
