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

from tests.e2e.serve_process import (
    CONTROL_TOKEN,
    READ_TOKEN,
    ServeProcess,
    ema_bot_manifest,
    running,
)
from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest


def token_secret(name: str) -> dict[str, Any]:
    tokens = {"control.token": CONTROL_TOKEN, "read.token": READ_TOKEN}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-api-token", "namespace": NS},
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

    # emergencyStop removed (paused still true) → Resume, then Pause again; then run.
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
