"""The pure parts of the status timer and the fleet command (no cluster, no runtime)."""

from __future__ import annotations

import pytest

from tradefleet_operator.fleet import parse_selector, selector_matches
from tradefleet_operator.main import build_parser, options_from
from tradefleet_operator.status import (
    Call,
    Control,
    Phase,
    advance,
    observed_control,
    parse_reset_request,
    plan_control,
    reachable_status,
    set_condition,
    status_changes,
    status_from_snapshot,
    unreachable_status,
)
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"


def snapshot(**fields: object) -> pb.StatusSnapshot:
    base: dict[str, object] = dict(
        bot="b", mode="paper", phase=pb.PHASE_RUNNING, equity=101_234.56789, balance=99_000.0,
        currency="USD", pnl_today=12.345678, pnl_total=1234.56789, drawdown_pct=1.5,
        open_positions=1, open_orders=2, last_bar_ts=1_483_315_200, config_hash="abc",
        broker_connected=True,
    )  # fmt: skip
    base.update(fields)
    return pb.StatusSnapshot(**base)  # type: ignore[arg-type]


def test_snapshot_maps_to_status_fields() -> None:
    locked = pb.RiskPluginState(name="daily-loss", version="1", locked=True, reason="-5%")
    free = pb.RiskPluginState(name="sizer", version="1")
    fields = status_from_snapshot(snapshot(risk=[locked, free], halted=True, halt_reason="x"))
    assert fields["equity"] == 101_234.5679 and fields["pnlTotal"] == 1234.5679
    assert fields["lastBarTime"] == "2017-01-02T00:00:00Z"
    assert fields["riskLocks"] == [{"plugin": "daily-loss", "reason": "-5%"}]
    assert fields["halted"] and fields["haltReason"] == "x"
    assert status_from_snapshot(snapshot(last_bar_ts=0))["lastBarTime"] is None


def test_reachable_status_sets_phase_and_conditions() -> None:
    new = reachable_status({}, snapshot(phase=pb.PHASE_HALTED, halted=True), 3, NOW)
    assert new["phase"] == "Halted"
    by_type = {c["type"]: c for c in new["conditions"]}
    assert by_type["Ready"]["status"] == "True" and by_type["Ready"]["observedGeneration"] == 3
    assert by_type["BrokerConnected"]["status"] == "True"
    assert by_type["RiskLocked"]["status"] == "False"
    # The same answer later changes nothing: no write.
    again = reachable_status(new, snapshot(phase=pb.PHASE_HALTED, halted=True), 3, LATER)
    assert status_changes(new, again) == {}


def test_unreachable_keeps_the_phase_and_flips_ready_once() -> None:
    running = reachable_status({}, snapshot(), 1, NOW)
    lost = unreachable_status(running, "UNAVAILABLE: refused", 1, LATER)
    assert lost["phase"] == "Running"
    ready = next(c for c in lost["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "False",
        "RuntimeUnreachable",
        LATER,
    )
    assert unreachable_status({}, "x", None, NOW)["phase"] == "Pending"
    assert status_changes(lost, unreachable_status(lost, "UNAVAILABLE: refused", 1, "z")) == {}


def test_condition_transition_time_changes_only_with_status() -> None:
    first = set_condition(None, "Ready", True, "A", "m", 1, NOW)
    same = set_condition(first, "Ready", True, "B", "n", 2, LATER)
    assert same[0]["lastTransitionTime"] == NOW and same[0]["reason"] == "B"
    flipped = set_condition(same, "Ready", False, "C", "o", 2, LATER)
    assert flipped[0]["lastTransitionTime"] == LATER
    assert set_condition(first, "Other", None, "D", "", 1, NOW)[1]["status"] == "Unknown"


def test_phase_state_machine() -> None:
    assert advance(None, Phase.RUNNING) is Phase.RUNNING
    assert advance("Running", Phase.HALTED) is Phase.HALTED
    assert advance("Stopped", Phase.HALTED) is Phase.STOPPED  # a stale answer after a stop
    assert advance("Failed", Phase.PENDING) is Phase.PENDING
    assert advance("nonsense", Phase.PAUSED) is Phase.PAUSED


HALT = {"emergencyStop": {"reason": "r", "flatten": True}}


@pytest.mark.parametrize(
    ("spec", "applied", "observed", "known", "methods"),
    [
        ({}, None, None, False, []),  # a new running bot: nothing to do
        ({"paused": True}, None, None, False, ["Pause"]),
        (HALT, "Running", None, False, ["EmergencyStop"]),
        ({"paused": True}, "Halted", None, False, ["Resume", "Pause"]),
        ({}, "Halted", None, False, ["Resume"]),
        (HALT, "Halted", None, False, []),
        # the timer: enforce halts and pauses the spec asks for, even after a restart
        (HALT, "Halted", Control.RUNNING, True, ["EmergencyStop"]),
        ({"paused": True}, "Paused", Control.RUNNING, True, ["Pause"]),
        # ... but leave a halt someone made by hand alone when the spec says run
        ({}, "Running", Control.HALTED, True, []),
        ({}, "Halted", Control.HALTED, True, ["Resume"]),  # the spec's resume did not land yet
        ({}, None, None, True, []),  # a runtime that is starting cannot be steered
    ],
)
def test_plan_control(
    spec: dict[str, object],
    applied: str | None,
    observed: Control | None,
    known: bool,
    methods: list[str],
) -> None:
    calls = plan_control(spec, applied, observed, known=known)
    assert [call.method for call in calls] == methods
    if methods == ["EmergencyStop"]:
        assert calls[0] == Call("EmergencyStop", "r", True)


def test_observed_control() -> None:
    assert observed_control(snapshot(halted=True)) is Control.HALTED
    assert observed_control(snapshot(paused=True, phase=pb.PHASE_PAUSED)) is Control.PAUSED
    assert observed_control(snapshot()) is Control.RUNNING
    assert observed_control(snapshot(phase=pb.PHASE_STARTING)) is None


def test_reset_request_annotation() -> None:
    assert parse_reset_request("daily-loss: reviewed, ok") == ("daily-loss", "reviewed, ok")
    assert parse_reset_request("daily-loss") is None
    assert parse_reset_request(": why") is None


def test_label_selectors() -> None:
    bot = {"metadata": {"labels": {"team": "a", "tier": "gold"}}}
    assert selector_matches("team=a", bot) and selector_matches("team==a,tier", bot)
    assert not selector_matches("team!=a", bot) and not selector_matches("!tier", bot)
    assert selector_matches("tier in (gold, silver)", bot)
    assert not selector_matches("tier notin (gold)", bot)
    assert selector_matches("", bot)
    assert parse_selector("a in (x,y),!b") == [("a", "in", ("x", "y")), ("b", "!exists", ())]
    with pytest.raises(ValueError):
        parse_selector("team=a=b")


def test_operator_command_line() -> None:
    args = build_parser().parse_args(["-n", "team-a", "--runtime-image", "img:1"])
    assert args.namespace == ["team-a"] and not args.all_namespaces
    options = options_from(args)
    assert options["settings"].runtime_image == "img:1" and "admission" not in options
