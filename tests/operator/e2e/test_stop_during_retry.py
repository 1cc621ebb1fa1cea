"""A person's emergency stop of a bot whose earlier change waits out a retry (F64, review R30c),
through the real operator and a real ``tradefleet serve``.

An edit the API server half refuses (its ConfigMap cannot be put back: ``HalfApplied``) is
retried with a backoff growing to 30 s, and kopf runs no newer edit of the bot until that wait
ends. The status timer (every second here) used to return at once while a change was at work,
so the stop reached the runtime only when the wait ended. It now enforces a halt the newest spec
asks for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.serve_process import ServeProcess, ema_bot_manifest
from tests.operator.e2e.conftest import Cluster, Emulator, Operator, bot_manifest
from tests.operator.e2e.test_credentials_secret import condition, halted_within
from tests.operator.e2e.test_runtime import token_secret

BOT = "retried-bot"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ServeProcess]:
    serve = ServeProcess(tmp_path, ema_bot_manifest(BOT), speed=3600).start()
    try:
        yield serve
    finally:
        serve.kill()


@pytest.fixture
def half_refusing(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """An admission policy that, once it refused a Deployment write, refuses every ConfigMap
    write too while ``on``: a change's ConfigMap lands, its Deployment is refused, and the
    ConfigMap cannot be put back (``HalfApplied``, retried)."""
    state = {"on": False, "refusing": False}
    original = Emulator._invalid

    def invalid(self: Emulator, plural: str, data: dict[str, Any]) -> str | None:
        if not state["on"]:
            return original(self, plural, data)
        if plural == "deployments":
            state["refusing"] = True
            return "deployments: injected: refused by an admission policy"
        if plural == "configmaps" and state["refusing"]:
            return "configmaps: injected: refused by an admission policy"
        return original(self, plural, data)

    monkeypatch.setattr(Emulator, "_invalid", invalid)
    return state


def retries(cluster: Cluster) -> int:
    """How many times the reconcile handler has failed on the ongoing change (kopf's record)."""
    annotations = ((cluster.bot(BOT) or {}).get("metadata") or {}).get("annotations") or {}
    record = json.loads(annotations.get("tradefleet.io/reconcile") or "{}")
    return int(record.get("retries") or 0)


def test_a_stop_set_while_a_half_applied_change_waits_halts_the_runtime_at_once(
    cluster: Cluster, operator: Operator, runtime: ServeProcess, half_refusing: dict[str, bool]
) -> None:
    cluster.create(token_secret(BOT))
    cluster.apply_bot(bot_manifest(BOT, address=f"127.0.0.1:{runtime.grpc_port}"))
    cluster.wait(
        lambda: ((cluster.bot(BOT) or {}).get("status") or {}).get("phase") == "Running",
        message="running",
    )
    # The edit's ConfigMap lands, its Deployment is refused and the ConfigMap cannot be put
    # back: HalfApplied, retried with a growing backoff.
    cluster.call(lambda: half_refusing.update(on=True))
    fast = {"strategy": {"name": "ema-cross", "params": {"fast": 4, "slow": 8}}}
    cluster.patch_bot(BOT, {"spec": fast})
    cluster.wait(
        lambda: (condition(cluster, BOT, "Reconciled") or {}).get("reason") == "HalfApplied",
        message="half applied",
    )
    # The backoff has grown (2, 4, 6 s...): the stop comes just as a retry's wait has begun.
    cluster.wait(lambda: retries(cluster) >= 3, timeout=60, message="a lasting retry")
    before = retries(cluster)
    cluster.wait(lambda: retries(cluster) > before, timeout=40, message="the next retry")
    cluster.patch_bot(BOT, {"spec": {"emergencyStop": {"reason": "fills look wrong"}}})
    assert halted_within(runtime, 3.0, halted=True), "the stop waited for the change's retry"
    assert retries(cluster) == before + 1, "the change handler ran: the test proves nothing"

    # The refusals end: the change and the stop are applied by the change handler, and the
    # stop holds (the timer never resumes, nor does the handler from a stop still asked).
    cluster.call(lambda: half_refusing.update(on=False, refusing=False))
    cluster.wait(
        lambda: (condition(cluster, BOT, "Reconciled") or {}).get("reason") == "UpToDate",
        timeout=40,
        message="applied",
    )
    assert halted_within(runtime, 1.0, halted=True)
    control = ((cluster.bot(BOT) or {}).get("status") or {}).get("control") or {}
    assert control.get("applied") == "Halted"
