"""The pure parts of the status timer and the fleet command (no cluster, no runtime)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from tradefleet_operator.bot_api import LiveSpec
from tradefleet_operator.control import (
    Call,
    Control,
    observed_control,
    parse_reset_request,
    plan_control,
)
from tradefleet_operator.crd import PRINTER_COLUMNS
from tradefleet_operator.k8s_api import parse_selector, selector_matches
from tradefleet_operator.main import build_parser, options_from
from tradefleet_operator.names import Phase
from tradefleet_operator.runtime_client import snapshot_from_pb
from tradefleet_operator.snapshot import RiskState, RuntimeSnapshot
from tradefleet_operator.status_mapping import (
    advance,
    reachable_status,
    set_condition,
    status_changes,
    status_from_snapshot,
    unreachable_status,
)
from tradefleet_operator.status_model import BotStatus
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.spec.model import EmergencyStopSpec

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
EMPTY = BotStatus()


def snapshot(**fields: Any) -> RuntimeSnapshot:
    base: dict[str, Any] = dict(
        phase=Phase.RUNNING, equity=101_234.56789, balance=99_000.0, currency="USD",
        pnl_today=12.345678, pnl_total=1234.56789, drawdown_pct=1.5, open_positions=1,
        open_orders=2, last_bar_ts=1_483_315_200, config_hash="abc", broker_connected=True,
    )  # fmt: skip
    base.update(fields)
    return RuntimeSnapshot(**base)


def test_the_pure_modules_import_neither_grpc_nor_kopf() -> None:
    import subprocess

    code = (
        "import sys\n"
        "import tradefleet_operator.status_mapping, tradefleet_operator.control\n"
        "import tradefleet_operator.objects, tradefleet_operator.status_model\n"
        "import tradefleet_operator.crd\n"
        "bad = [m for m in ('grpc', 'kopf') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_snapshot_message_converts_to_a_plain_value() -> None:
    locked = pb.RiskPluginState(name="daily-loss", version="1", locked=True, reason="-5%")
    message = pb.StatusSnapshot(
        bot="b", phase=pb.PHASE_STOPPING, equity=1.5, currency="EUR", open_orders=3,
        last_bar_ts=7, paused=True, pause_reason="p", config_hash="h", risk=[locked],
    )  # fmt: skip
    value = snapshot_from_pb(message)
    assert value.phase is Phase.STOPPED  # the runtime's Stopping is the operator's Stopped
    assert (value.equity, value.currency, value.open_orders, value.last_bar_ts) == (
        1.5, "EUR", 3, 7,
    )  # fmt: skip
    assert (value.paused, value.pause_reason, value.config_hash) == (True, "p", "h")
    assert value.risk == (RiskState("daily-loss", True, "-5%"),)
    assert snapshot_from_pb(pb.StatusSnapshot(phase=pb.PHASE_STARTING)).phase is Phase.PENDING


def test_snapshot_maps_to_status_fields() -> None:
    locked = RiskState(name="daily-loss", locked=True, reason="-5%")
    free = RiskState(name="sizer")
    status = status_from_snapshot(
        EMPTY, snapshot(risk=(locked, free), halted=True, halt_reason="x")
    )
    fields = status.wire()
    assert fields["equity"] == 101_234.5679 and fields["pnlTotal"] == 1234.5679
    assert fields["lastBarTime"] == "2017-01-02T00:00:00Z"
    assert fields["riskLocks"] == [{"plugin": "daily-loss", "reason": "-5%"}]
    assert fields["halted"] and fields["haltReason"] == "x"
    assert (fields["currency"], fields["openOrders"], fields["runtimeConfigHash"]) == (
        "USD", 2, "abc",
    )  # fmt: skip
    assert status_from_snapshot(EMPTY, snapshot(last_bar_ts=0)).last_bar_time is None


def test_the_circuit_breaker_tier_and_locks_reach_the_status_and_its_columns() -> None:
    """Issue 15: the TradingBot shows the breaker's tier and any lock (`kubectl get tb`)."""
    breaker = RiskState(name="circuit-breaker", locked=True, reason="drawdown 15.2%", tier=3)
    sizer = RiskState(name="fixed-size")
    fields = status_from_snapshot(EMPTY, snapshot(risk=(sizer, breaker))).wire()
    assert fields["riskTier"] == 3
    assert fields["riskLocks"] == [{"plugin": "circuit-breaker", "reason": "drawdown 15.2%"}]
    assert status_from_snapshot(EMPTY, snapshot(risk=(sizer,))).wire()["riskTier"] == 0
    columns = {c["name"]: c["jsonPath"] for c in PRINTER_COLUMNS}
    assert columns["Tier"] == ".status.riskTier"
    assert columns["Locks"] == ".status.riskLocks[*].plugin"


def test_the_runtime_tier_is_read_from_its_status() -> None:
    message = pb.StatusSnapshot(
        risk=[pb.RiskPluginState(name="circuit-breaker", locked=False, tier=2)]
    )
    assert snapshot_from_pb(message).risk_tier == 2


def test_reachable_status_sets_phase_and_conditions() -> None:
    new = reachable_status(EMPTY, snapshot(phase=Phase.HALTED, halted=True), 3, NOW)
    assert new.phase is Phase.HALTED
    by_type = {c.type: c for c in new.conditions or ()}
    assert by_type["Ready"].status == "True" and by_type["Ready"].observed_generation == 3
    assert by_type["BrokerConnected"].status == "True"
    assert by_type["RiskLocked"].status == "False"
    # The same answer later changes nothing: no write.
    stored = new.wire()
    again = reachable_status(
        BotStatus.read(stored), snapshot(phase=Phase.HALTED, halted=True), 3, LATER
    )
    assert status_changes(stored, again) == {}


def test_a_runtime_waiting_for_its_venue_says_so_on_its_conditions() -> None:
    """A venue down at start (an exchange's maintenance): ``kubectl describe tb`` says what the
    runtime waits for, not only that it is starting; the message holds no attempt count, so
    the status is written once per error, not on every try."""
    waiting = "waiting for the venue: exchange binanceusdm: connecting failed (503)"
    message = pb.StatusSnapshot(
        phase=pb.PHASE_STARTING, broker_connected=False, starting_reason=waiting
    )
    new = reachable_status(EMPTY, snapshot_from_pb(message), 2, NOW)
    by_type = {c.type: c for c in new.conditions or ()}
    assert by_type["Ready"].status == "False"
    assert by_type["Ready"].message == f"the runtime reports Pending: {waiting}"
    assert by_type["BrokerConnected"].message == f"no broker connection: {waiting}"
    again = reachable_status(BotStatus.read(new.wire()), snapshot_from_pb(message), 2, LATER)
    assert status_changes(new.wire(), again) == {}
    running = reachable_status(BotStatus.read(new.wire()), snapshot(), 2, LATER)
    ready = next(c for c in running.conditions or () if c.type == "Ready")
    assert ready.message == "the runtime reports Running"


def test_unreachable_keeps_the_phase_and_flips_ready_once() -> None:
    running = reachable_status(EMPTY, snapshot(), 1, NOW)
    lost = unreachable_status(running, "UNAVAILABLE: refused", 1, LATER)
    assert lost.phase is Phase.RUNNING
    ready = next(c for c in lost.conditions or () if c.type == "Ready")
    assert (ready.status, ready.reason, ready.last_transition_time) == (
        "False",
        "RuntimeUnreachable",
        LATER,
    )
    assert unreachable_status(EMPTY, "x", None, NOW).phase is Phase.PENDING
    again = unreachable_status(lost, "UNAVAILABLE: refused", 1, "z")
    assert status_changes(lost.wire(), again) == {}


def test_status_changes_is_the_smallest_patch() -> None:
    stored = reachable_status(EMPTY, snapshot(), 1, NOW).wire()
    moved = reachable_status(BotStatus.read(stored), snapshot(equity=5.0), 1, LATER)
    assert status_changes(stored, moved) == {"equity": 5.0}
    # Keys the model does not know are left alone; a field that does not validate is dropped.
    assert BotStatus.read({"phase": "nonsense", "equity": 1.0, "other": 1}).wire()["phase"] is None
    assert BotStatus.read({"phase": "nonsense", "equity": 1.0}).equity == 1.0


def test_condition_transition_time_changes_only_with_status() -> None:
    first = set_condition(None, "Ready", True, "A", "m", 1, NOW)
    same = set_condition(first, "Ready", True, "B", "n", 2, LATER)
    assert same[0].last_transition_time == NOW and same[0].reason == "B"
    flipped = set_condition(same, "Ready", False, "C", "o", 2, LATER)
    assert flipped[0].last_transition_time == LATER
    assert set_condition(first, "Other", None, "D", "", 1, NOW)[1].status == "Unknown"


def test_phase_state_machine() -> None:
    assert advance(None, Phase.RUNNING) is Phase.RUNNING
    assert advance("Running", Phase.HALTED) is Phase.HALTED
    assert advance("Stopped", Phase.HALTED) is Phase.STOPPED  # a stale answer after a stop
    assert advance("Failed", Phase.PENDING) is Phase.PENDING
    assert advance("nonsense", Phase.PAUSED) is Phase.PAUSED


HALT = LiveSpec(emergency_stop=EmergencyStopSpec(reason="r", flatten=True))
PAUSE = LiveSpec(paused=True)
RUN = LiveSpec()


@pytest.mark.parametrize(
    ("live", "applied", "observed", "known", "methods"),
    [
        (RUN, None, None, False, []),  # a new running bot: nothing to do
        (PAUSE, None, None, False, ["Pause"]),
        (HALT, "Running", None, False, ["EmergencyStop"]),
        (PAUSE, "Halted", None, False, ["Pause", "Resume", "Pause"]),
        (RUN, "Halted", None, False, ["Resume"]),
        (HALT, "Halted", None, False, []),
        # the timer: enforce halts and pauses the spec asks for, even after a restart
        (HALT, "Halted", Control.RUNNING, True, ["EmergencyStop"]),
        (PAUSE, "Paused", Control.RUNNING, True, ["Pause"]),
        # ... but never resume: the timer's spec may be a generation old (issue 19, item 8)
        (RUN, "Running", Control.HALTED, True, []),
        (RUN, "Halted", Control.HALTED, True, []),  # the change handler retries a resume
        (RUN, None, Control.HALTED, True, []),  # status.control pruned or never written
        (RUN, "Paused", Control.PAUSED, True, []),
        (PAUSE, "Running", Control.HALTED, True, []),  # a halt is never turned into a pause
        (RUN, None, None, True, []),  # a runtime that is starting cannot be steered
    ],
)
def test_plan_control(
    live: LiveSpec,
    applied: str | None,
    observed: Control | None,
    known: bool,
    methods: list[str],
) -> None:
    # ``flattened``: the halt applied was this spec's, flatten included.
    calls = plan_control(live, applied, observed, known=known, flattened=True)
    assert [call.method for call in calls] == methods
    if methods == ["EmergencyStop"]:
        assert calls[0] == Call("EmergencyStop", "r", True)


def test_undoing_a_pause_the_operator_applied_never_lifts_a_halt() -> None:
    """spec.paused true → false undoes the pause the operator applied, and only that: the
    Resume goes with ``pause_only`` (a person's direct halt, a Degraded stop stay). Only the
    removal of the spec's own emergency stop sends the full Resume."""
    assert plan_control(RUN, "Paused", None, known=False) == [
        Call("Resume", "spec.paused is false", pause_only=True)
    ]
    full = plan_control(RUN, "Halted", None, known=False)
    assert [(c.method, c.pause_only) for c in full] == [("Resume", False)]
    # emergencyStop removed while the spec still pauses: the halt is lifted alone, the pause
    # landing before it (test_control_halt_lift_keeps_pause.py)
    both = plan_control(PAUSE, "Halted", None, known=False)
    assert [(c.method, c.pause_only, c.halt_only) for c in both] == [
        ("Pause", False, False),
        ("Resume", False, True),
        ("Pause", False, False),
    ]
    # the timer never resumes, not even a pause only
    assert plan_control(RUN, "Paused", Control.PAUSED, known=True) == []
    assert plan_control(RUN, "Paused", Control.HALTED, known=True) == []


def test_a_flatten_added_to_a_halt_already_applied_is_sent() -> None:
    """Halted without flatten, then the spec (or a fleet stop) asks to flatten too: the halt
    goes again, with it — the runtime flattens a bot that is already halted. Once done, or
    when the spec asks no flatten, nothing more is sent; the timer never sends it."""
    halt_only = LiveSpec(emergency_stop=EmergencyStopSpec(reason="r"))
    calls = plan_control(HALT, "Halted", None, known=False, flattened=False)
    assert calls == [Call("EmergencyStop", "r", True)]
    assert plan_control(HALT, "Halted", None, known=False, flattened=True) == []
    assert plan_control(halt_only, "Halted", None, known=False, flattened=False) == []
    assert plan_control(HALT, "Halted", Control.HALTED, known=True, flattened=False) == []


def test_live_fields_are_salvaged_from_a_spec_the_model_refuses() -> None:
    broken = {"market": {"timeframe": "7 fortnights"}, "emergencyStop": {"reason": "news"}}
    live = LiveSpec.salvage(broken)
    assert live is not None and live.emergency_stop == EmergencyStopSpec(reason="news")
    assert live.paused is False  # the model's default
    assert LiveSpec.salvage({"paused": "maybe"}) is None


def test_observed_control() -> None:
    assert observed_control(snapshot(halted=True)) is Control.HALTED
    assert observed_control(snapshot(paused=True, phase=Phase.PAUSED)) is Control.PAUSED
    assert observed_control(snapshot()) is Control.RUNNING
    assert observed_control(snapshot(phase=Phase.PENDING)) is None


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


def test_operator_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEFLEET_TEAM_LABEL", raising=False)
    args = build_parser().parse_args(["-n", "team-a", "--runtime-image", "img:1"])
    assert args.namespace == ["team-a"] and not args.all_namespaces
    options = options_from(args)
    assert options["settings"].runtime_image == "img:1" and "admission" not in options
    assert options["namespaced"]  # named namespaces: kopf's namespace scanning goes off
    assert options["settings"].team_label == "tradefleet.io/team"
    desk = options_from(build_parser().parse_args(["-A", "--team-label", "example.com/desk"]))
    assert desk["settings"].team_label == "example.com/desk"


def test_listeners_bind_all_interfaces_only_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19, item 5: liveness defaulted to 0.0.0.0:8080, metrics had no bind address, the
    webhook was hard-coded to 0.0.0.0."""
    from tradefleet_operator.main import liveness_url

    monkeypatch.delenv("POD_IP", raising=False)
    args = build_parser().parse_args(["-A", "--admission-port", "9443"])
    assert args.bind_address == "127.0.0.1"
    assert liveness_url(args) == "http://127.0.0.1:8080/healthz"
    assert options_from(args)["admission"]["address"] == "127.0.0.1"
    assert not options_from(args)["namespaced"]
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    args = build_parser().parse_args(["-A"])
    assert liveness_url(args) == "http://10.1.2.3:8080/healthz"
    assert liveness_url(build_parser().parse_args(["--liveness", ""])) is None


def _pod(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    container = {"name": "runtime", "state": state, "lastState": last or {}}
    return {"status": {"containerStatuses": [container]}}


def test_a_runtime_running_now_is_not_failed_by_an_earlier_crash() -> None:
    """``lastState`` keeps the previous run's end (an OOM kill days ago) while the container
    runs again: a runtime whose gRPC port does not answer for a moment is not Failed for it."""
    from tradefleet_operator.status_mapping import runtime_failure

    oom = {
        "terminated": {
            "exitCode": 137,
            "reason": "OOMKilled",
            "finishedAt": "2026-12-02T07:59:58Z",
        }
    }
    running = {"running": {"startedAt": "2026-12-02T08:00:00Z"}}
    assert runtime_failure([_pod(running, oom)]) is None
    # nor beside an older pod that failed (an evicted pod kept for its record)
    evicted = _pod({"terminated": {**oom["terminated"], "finishedAt": "2026-12-01T00:00:00Z"}})
    assert runtime_failure([evicted, _pod(running, oom)]) is None
    assert runtime_failure([_pod(running, oom), evicted]) is None
    # still failed while it waits to restart in a crash loop
    waiting = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert runtime_failure([_pod(waiting, oom)]) == "the runtime exited with code 137 (OOMKilled)"


def test_a_runtime_that_exited_non_zero_makes_the_bot_failed_with_its_reason() -> None:
    from tradefleet_operator.status_mapping import failed_status, runtime_failure

    crashed = {
        "terminated": {
            "exitCode": 1,
            "reason": "Error",
            "message": "journal refused: schema version 9 is newer than 3",
            "finishedAt": "2026-01-01T00:00:05Z",
        }
    }
    assert runtime_failure([_pod(crashed)]) == "journal refused: schema version 9 is newer than 3"
    # in a crash loop the reason is in lastState while the container waits to restart
    waiting = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert runtime_failure([_pod(waiting, crashed)]) == crashed["terminated"]["message"]
    killed = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    assert runtime_failure([_pod(killed)]) == "the runtime exited with code 137 (OOMKilled)"
    assert runtime_failure([_pod({"terminated": {"exitCode": 0}})]) is None
    assert runtime_failure([_pod({"running": {}})]) is None
    assert runtime_failure([]) is None
    status = failed_status(BotStatus(phase=Phase.RUNNING), "journal refused", 3, "now")
    assert status.phase == "Failed"
    ready = next(c for c in status.conditions or () if c.type == "Ready")
    assert (ready.status, ready.reason, ready.message) == (
        "False",
        "RuntimeFailed",
        "journal refused",
    )


def test_a_self_made_webhook_certificate_fails_liveness_before_it_ages_out(
    tmp_path: Path,
) -> None:
    import datetime

    import kopf

    from tradefleet_operator import handlers, webhook_tls

    tls = webhook_tls.self_signed(["tradefleet-operator.ops.svc", "10.0.0.7"], tmp_path)
    assert tls.not_after - tls.issued == datetime.timedelta(days=webhook_tls.SERVING_DAYS)
    assert webhook_tls.ROTATE_AFTER_DAYS < webhook_tls.SERVING_DAYS
    assert (tmp_path / "tls.key").stat().st_mode & 0o077 == 0
    memo = kopf.Memo(webhook_tls=tls)
    assert handlers.webhook_certificate(memo=memo) == tls.not_after.isoformat()
    old = dataclasses.replace(tls, issued=tls.issued - datetime.timedelta(days=61))
    with pytest.raises(RuntimeError, match="rotation"):
        handlers.webhook_certificate(memo=kopf.Memo(webhook_tls=old))
