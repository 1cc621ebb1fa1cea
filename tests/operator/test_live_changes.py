"""Which updates only touch live fields (applied over gRPC, no child object depends on them)."""

from __future__ import annotations

from tradefleet_operator.handlers import live_only_change


def test_pause_and_emergency_stop_are_live() -> None:
    assert live_only_change("update", [("change", ("spec", "paused"), False, True)])
    assert live_only_change(
        "update",
        [
            ("add", ("spec", "emergencyStop"), None, {"reason": "x"}),
            ("change", ("metadata", "annotations", "a"), "1", "2"),
        ],
    )
    assert live_only_change(
        "update", [("remove", ("spec", "emergencyStop", "flatten"), True, None)]
    )


def test_anything_else_needs_the_object_pass() -> None:
    assert not live_only_change("update", [("change", ("spec", "strategy", "params"), {}, {})])
    assert not live_only_change(
        "update",
        [("change", ("spec", "paused"), False, True), ("change", ("spec", "risk"), [], [{}])],
    )
    assert not live_only_change("update", [("change", ("spec",), {}, {})])
    assert not live_only_change("create", [("change", ("spec", "paused"), False, True)])
    assert not live_only_change("resume", ())
    assert not live_only_change("update", ())


def test_a_label_change_needs_the_object_pass() -> None:
    """Labels reach the pod (the team label is its TRADEFLEET_TEAM) and bot.yaml."""
    team = ("change", ("metadata", "labels", "tradefleet.io/team"), "a", "b")
    assert not live_only_change("update", [team])
    assert not live_only_change("update", [("change", ("spec", "paused"), False, True), team])
    assert not live_only_change("update", [("add", ("metadata", "labels"), None, {"x": "y"})])
