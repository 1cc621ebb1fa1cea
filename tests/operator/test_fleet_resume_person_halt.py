"""``fleet resume`` says a bot is left halted when its runtime holds a person's halt given
after the fleet stop besides the fleet's (the runtime keeps each halt's holder and names them
all in its ``halt_reason``; the operator's resume lifts only the fleet's): the fleet's stop is
lifted from the spec all the same, and the report names the halt that stays."""

from __future__ import annotations

from typing import Any

from tests.operator.test_fleet_resume_own_halt import (
    SELECTOR,
    FakeKube,
    _bot,
    _resume,
    _stop,
    _stop_of,
)
from tradefleet_operator.fleet import _report_line, stop_patch

PERSON = "emergency stop by alice@desk (grpc, control token, ipv4:10.0.0.9:4711): fills look wrong"


def _status(halt_reason: str) -> dict[str, Any]:
    return {
        "phase": "Halted",
        "halted": True,
        "haltReason": halt_reason,
        "control": {"applied": "Halted"},
    }


def test_a_persons_halt_besides_the_fleets_is_reported_left_halted() -> None:
    kube = FakeKube([_bot("btc-live"), _bot("eth-paper")])
    _stop(kube)
    kube.bots["btc-live"]["status"] = _status(f"desk drill; {PERSON}")
    kube.bots["eth-paper"]["status"] = _status("desk drill")  # the fleet's halt alone
    resumed = _resume(kube)

    assert _stop_of(kube, "btc-live") is None  # the fleet's stop is lifted all the same
    assert not resumed["btc-live"].resumed
    line = _report_line("resume", resumed["btc-live"])
    assert line.startswith(f"left halted (its runtime is halted (desk drill; {PERSON}, per its")
    assert "a person resumes it (tradefleet resume btc-live." in line
    assert resumed["eth-paper"].resumed and not resumed["eth-paper"].left_halted


def test_the_same_after_the_runtime_restarted() -> None:
    """Restored, each holder's halt reads ``restored after restart (emergency stop by ...)``."""
    kube = FakeKube([_bot("btc-live"), _bot("eth-paper")])
    _stop(kube)
    fleet = "restored after restart (emergency stop by tradefleet-fleet (grpc, x): desk drill)"
    kube.bots["btc-live"]["status"] = _status(f"{fleet}; restored after restart ({PERSON})")
    kube.bots["eth-paper"]["status"] = _status(fleet)
    resumed = _resume(kube)
    assert resumed["btc-live"].left_halted and not resumed["btc-live"].resumed
    assert resumed["eth-paper"].resumed


def test_a_second_fleet_stop_records_only_the_persons_halt_as_the_own_stop() -> None:
    """The runtime, halted by a person and then by the fleet, names both: the fleet's own
    halt is never recorded as part of the bot's own stop."""
    kube = FakeKube([_bot("btc-live")])
    fleet = "emergency stop by tradefleet-fleet (grpc, control token, ipv4:10.0.0.2:1): desk drill"
    found = f"fills look wrong; {fleet}"
    step = stop_patch(kube.bots["btc-live"], "desk drill", False, SELECTOR, runtime_halt=found)
    assert step.adopted == "fills look wrong"
    # The fleet's halt alone, as the runtime names it when it joined a person's: not foreign.
    alone = stop_patch(kube.bots["btc-live"], "desk drill", False, SELECTOR, runtime_halt=fleet)
    assert alone.adopted == ""
