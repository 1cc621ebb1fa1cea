"""The operator and a real ``tradefleet serve`` (paper mode) through the runtime's gRPC API.

The operator reaches the runtime through the annotation ``tradefleet.io/runtime-address``; the
bot's ``<name>-api-token`` Secret is made beforehand with the tokens the serve process uses, so
the operator must adopt it, not overwrite it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.serve_process import (
    CONTROL_TOKEN,
    READ_TOKEN,
    ServeProcess,
    control,
    ema_bot_manifest,
    running,
)
from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest
from tests.operator.e2e.test_lifecycle import for_bot
from tradefleet_runtime.api.v1 import runtime_pb2 as pb


def token_secret(name: str) -> dict[str, Any]:
    tokens = {"control.token": CONTROL_TOKEN, "read.token": READ_TOKEN}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-api-token", "namespace": NS, "labels": for_bot(name)},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in tokens.items()},
    }


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    yield from running(tmp_path, ema_bot_manifest("paper-bot"), speed=36000)


def _status(cluster: Cluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = (cluster.bot(name) or {}).get("status") or {}
    return found


def test_status_follows_the_runtime_and_the_spec_steers_it(
    cluster: Cluster, operator: Operator, serve: ServeProcess
) -> None:
    cluster.create(token_secret("paper-bot"))
    cluster.apply_bot(bot_manifest("paper-bot", address=f"127.0.0.1:{serve.grpc_port}"))

    # Equity and P&L reach the TradingBot's status through the timer.
    status = cluster.wait(
        lambda: (
            (s := _status(cluster, "paper-bot")).get("phase") == "Running"
            and s.get("lastBarTime")
            and "pnlTotal" in s
            and s
        ),
        message="a Running status with equity",
    )
    assert status["equity"] > 0 and status["currency"] == "USD"
    assert {"balance", "pnlToday", "drawdownPct", "openPositions", "riskLocks"} <= set(status)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "RuntimeRunning")
    first_bar = status["lastBarTime"]
    cluster.wait(lambda: _status(cluster, "paper-bot")["lastBarTime"] != first_bar)

    # The pre-made token Secret was adopted, not rotated: the runtime still accepts its tokens.
    secret = cluster.get("v1", "secrets", "paper-bot-api-token")
    assert base64.b64decode(secret["data"]["control.token"]).decode() == CONTROL_TOKEN
    assert secret["metadata"]["ownerReferences"][0]["name"] == "paper-bot"

    # spec.paused → Pause
    cluster.patch_bot("paper-bot", {"spec": {"paused": True}})
    serve.wait_for(lambda s: s.paused, timeout=10)
    cluster.wait(lambda: _status(cluster, "paper-bot").get("phase") == "Paused")

    # spec.emergencyStop → EmergencyStop(reason)
    stop = {"reason": "e2e kill switch"}
    cluster.patch_bot("paper-bot", {"spec": {"emergencyStop": stop}})
    halted = serve.wait_for(lambda s: s.halted, timeout=10)
    assert halted.halt_reason == "e2e kill switch"
    status = cluster.wait(
        lambda: (s := _status(cluster, "paper-bot")).get("phase") == "Halted" and s
    )
    assert status["halted"] and status["haltReason"] == "e2e kill switch"
    assert status["control"]["flattened"] is False
    # ... then flatten added to the halt already applied: sent again, with it; the runtime
    # flattens the halted bot and the status records that the flatten was sent.
    cluster.patch_bot("paper-bot", {"spec": {"emergencyStop": {**stop, "flatten": True}}})
    cluster.wait(lambda: _status(cluster, "paper-bot")["control"].get("flattened") is True)
    flat = serve.wait_for(lambda s: s.halted and s.open_positions == 0, timeout=10)
    assert flat.halt_reason == "e2e kill switch"  # still the first halt

    # emergencyStop removed (paused still true) → Pause, Resume(halt_only), Pause; then run.
    cluster.patch_bot("paper-bot", {"spec": {"emergencyStop": None}})
    serve.wait_for(lambda s: not s.halted and s.paused, timeout=10)
    cluster.patch_bot("paper-bot", {"spec": {"paused": False}})
    serve.wait_for(lambda s: not s.halted and not s.paused, timeout=10)
    cluster.wait(lambda: _status(cluster, "paper-bot").get("phase") == "Running")
    reasons = [e["reason"] for e in cluster.events("paper-bot")]
    assert {"Paused", "Halted", "Resumed"} <= set(reasons)

    # The reset-risk-lock annotation is acted on once, and recorded.
    annotation = {"tradefleet.io/reset-risk-lock": "fixed-fractional: reviewed by e2e"}
    cluster.patch_bot("paper-bot", {"metadata": {"annotations": annotation}})
    status = cluster.wait(lambda: (s := _status(cluster, "paper-bot")).get("riskLockReset") and s)
    assert status["riskLockReset"]["request"] == annotation["tradefleet.io/reset-risk-lock"]
    time.sleep(2.5)  # timer ticks must not repeat it
    resets = [e for e in cluster.events("paper-bot") if e["reason"].startswith("RiskLockReset")]
    assert len(resets) == 1, resets

    # Deleting the bot stops its runtime (flattening, as spec.onStop says) before it goes.
    cluster.delete_bot("paper-bot")
    cluster.wait(lambda: cluster.bot("paper-bot") is None, message="bot deleted")
    stopped = serve.wait_for(lambda s: s.halted, timeout=5)
    assert stopped.halt_reason == "TradingBot deleted"
    assert stopped.open_positions == 0
    assert "Stopped" in [e["reason"] for e in cluster.events("paper-bot")]


def test_undoing_a_spec_pause_leaves_a_person_s_direct_halt_in_force(
    cluster: Cluster, operator: Operator, serve: ServeProcess
) -> None:
    """A person halts the bot directly (``tradefleet stop ADDRESS``); later its spec is paused
    and unpaused. The operator undoes only the pause it applied (``Resume`` with
    ``pause_only``): the person's emergency stop holds until a person resumes."""
    cluster.create(token_secret("paper-bot"))
    cluster.apply_bot(bot_manifest("paper-bot", address=f"127.0.0.1:{serve.grpc_port}"))
    cluster.wait(lambda: _status(cluster, "paper-bot").get("phase") == "Running")

    serve.stub().EmergencyStop(
        pb.EmergencyStopRequest(reason="drawdown 11%, investigating"), metadata=control()
    )
    cluster.wait(lambda: _status(cluster, "paper-bot").get("phase") == "Halted")

    cluster.patch_bot("paper-bot", {"spec": {"paused": True}})
    serve.wait_for(lambda s: s.paused, timeout=10)
    cluster.wait(
        lambda: (_status(cluster, "paper-bot").get("control") or {}).get("applied") == "Paused"
    )
    cluster.patch_bot("paper-bot", {"spec": {"paused": False}})
    unpaused = serve.wait_for(lambda s: not s.paused, timeout=10)
    assert unpaused.halted and unpaused.halt_reason == "drawdown 11%, investigating"
    message = cluster.wait(
        lambda: next(
            (e["message"] for e in cluster.events("paper-bot") if "pause lifted" in e["message"]),
            None,
        ),
        message="the event of the pause lifted",
    )
    assert "stays halted: drawdown 11%, investigating" in message
    time.sleep(2)  # several status ticks (TRADEFLEET_STATUS_INTERVAL=1): nothing resumes it
    still = serve.wait_for(lambda s: True)
    assert still.halted and not still.paused
    status = _status(cluster, "paper-bot")
    assert status["phase"] == "Halted" and status["haltReason"] == "drawdown 11%, investigating"


def test_a_restarted_pod_starts_as_the_spec_says_after_live_changes(
    cluster: Cluster, operator: Operator, serve: ServeProcess, tmp_path: Path
) -> None:
    """Pause and emergency stop go to the runtime over gRPC and roll no pod, but the
    ConfigMap's bot.yaml follows them: a pod that restarts (eviction, OOM kill) reads it and
    starts unpaused, paused or halted as the spec says now."""

    def bot_yaml() -> str:
        text: str = cluster.get("v1", "configmaps", "paper-bot-config")["data"]["bot.yaml"]
        return text

    def spec_in_configmap() -> dict[str, Any]:
        found: dict[str, Any] = yaml.safe_load(bot_yaml())["spec"]
        return found

    bot = bot_manifest("paper-bot", address=f"127.0.0.1:{serve.grpc_port}")
    bot["spec"]["paused"] = True
    cluster.create(token_secret("paper-bot"))
    cluster.apply_bot(bot)
    cluster.wait(lambda: _status(cluster, "paper-bot").get("phase") == "Paused")
    hash_before = cluster.get("apps/v1", "deployments", "paper-bot")["spec"]["template"]
    cluster.patch_bot("paper-bot", {"spec": {"paused": False}})
    cluster.wait(lambda: _status(cluster, "paper-bot").get("phase") == "Running")
    # unpaused is the default, which bot.yaml leaves out
    cluster.wait(lambda: "paused" not in spec_in_configmap(), message="bot.yaml unpaused")
    # no pod roll: the pod template is as it was
    assert cluster.get("apps/v1", "deployments", "paper-bot")["spec"]["template"] == hash_before

    # The pod restarts on its journal, reading the mounted bot.yaml: it trades, unpaused.
    serve.terminate()
    (tmp_path / "rt2").mkdir()
    restarted = ServeProcess(tmp_path / "rt2", bot_yaml(), journal=serve.journal).start()
    try:
        first = restarted.wait_for(lambda s: s.phase == pb.PHASE_RUNNING or s.paused, timeout=20)
        assert not first.paused and not first.halted

        address = {"tradefleet.io/runtime-address": f"127.0.0.1:{restarted.grpc_port}"}
        cluster.patch_bot("paper-bot", {"metadata": {"annotations": address}})
        cluster.patch_bot("paper-bot", {"spec": {"emergencyStop": {"reason": "e2e halt"}}})
        restarted.wait_for(lambda s: s.halted, timeout=10)
        cluster.wait(
            lambda: (spec_in_configmap().get("emergencyStop") or {}).get("reason") == "e2e halt",
            message="bot.yaml halted",
        )
    finally:
        restarted.kill()

    # A pod that restarts without the journal that holds the halt (an ephemeral one) still
    # starts halted: bot.yaml says so.
    (tmp_path / "rt3").mkdir()
    fresh = ServeProcess(tmp_path / "rt3", bot_yaml()).start()
    try:
        halted = fresh.wait_for(lambda s: s.halted or s.bars > 0, timeout=20)
        assert halted.halted and halted.halt_reason == "e2e halt"
    finally:
        fresh.kill()
