"""A bot whose runtime is halted while its spec has no stop is reported left halted by the
fleet resume, never "not halted".

A bot deleted and applied again during a fleet stop comes back without its spec stop and its
``tradefleet.io/fleet-stop`` record; its runtime restores the halt from its journal, and the
bot's status says so. The fleet resume does not lift that halt (it lifts only the stops it
recorded), so its report must say the bot stays halted, and how a person resumes it. A status
of a halt the operator is still lifting (``control.applied`` Halted, no spec stop) is not such
a halt. They drive the real ``stop_fleet`` / ``resume_fleet`` over an in-memory API server.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.operator.test_fleet_resume_own_halt import NS, SELECTOR, FakeKube, _resume, _stop_of
from tradefleet_operator.fleet import _report_line, stop_fleet


def _bot(name: str) -> dict[str, Any]:
    labels = {"tradefleet.io/team": "a"}
    return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": {"mode": "live"}}


def _fleet_stop(kube: FakeKube, reason: str) -> None:
    results = stop_fleet(
        kube,  # type: ignore[arg-type]
        selector=SELECTOR, namespace=NS, reason=reason, flatten=False, direct=False,
    )  # fmt: skip
    assert results and all(not result.error for result in results), results


def _applied_again(kube: FakeKube, name: str, halt_reason: str) -> None:
    """The bot deleted and applied again from its manifest; its runtime restored its halt."""
    bot = _bot(name)
    bot["status"] = {"phase": "Halted", "halted": True, "haltReason": halt_reason}
    kube.bots[name] = bot


def test_a_bot_applied_again_during_a_fleet_stop_is_reported_left_halted() -> None:
    kube = FakeKube([_bot("btc")])
    _fleet_stop(kube, "desk drill")
    journaled = _stop_of(kube, "btc")["reason"]
    _applied_again(kube, "btc", journaled)

    result = _resume(kube)["btc"]

    assert not result.resumed
    assert result.note == ""
    assert result.left_halted.startswith(
        f"its runtime is halted ({journaled}, per its status.haltReason) while its spec has no stop"
    )
    assert "tradefleet resume btc." in result.left_halted
    assert _report_line("resume", result).startswith("left halted (its runtime is halted")
    assert _stop_of(kube, "btc") is None  # nothing written: the halt is the runtime's


def test_a_halt_given_to_the_runtime_directly_is_reported_left_halted() -> None:
    """No fleet stop ever marked the bot; its runtime is halted by a person's direct call."""
    bot = _bot("eth")
    bot["status"] = {"phase": "Halted", "halted": True, "haltReason": "alice: bad fills"}
    kube = FakeKube([bot])

    result = _resume(kube)["eth"]

    assert not result.resumed
    assert "its runtime is halted (alice: bad fills" in result.left_halted


def test_a_fleet_stop_removed_by_hand_with_the_runtime_still_halted_says_so() -> None:
    """The record is there, the spec stop was removed since, and the runtime's halt is not
    the operator's (no ``control.applied`` Halted): the record goes, the bot is left halted."""
    kube = FakeKube([_bot("btc")])
    _fleet_stop(kube, "desk drill")
    del kube.bots["btc"]["spec"]["emergencyStop"]
    kube.bots["btc"]["status"] = {"phase": "Halted", "halted": True, "haltReason": "alice"}

    result = _resume(kube)["btc"]

    assert not result.resumed
    assert "its runtime is halted (alice" in result.left_halted


def test_a_halt_the_operator_is_still_lifting_is_not_reported_as_held() -> None:
    """``control.applied`` still Halted and no spec stop: the operator's own halt of a stop
    removed since, which its Resume lifts; the bot is not halted by anything the fleet or a
    person keeps."""
    bot = _bot("btc")
    status = {"phase": "Halted", "halted": True, "haltReason": "fleet stop: desk drill"}
    bot["status"] = {**status, "control": {"applied": "Halted", "generation": 1}}
    kube = FakeKube([copy.deepcopy(bot)])

    result = _resume(kube)["btc"]

    assert (result.left_halted, result.note) == ("", "not halted")
