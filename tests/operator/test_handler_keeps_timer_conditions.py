"""A change handler's pass that steered the runtime keeps the status timer's newer conditions.

A pass that steered the runtime rewrites the runtime-view conditions (``Ready``,
``BrokerConnected``, ``RiskLocked``, ...) from its own call's answer; those are the status
timer's too. The pass sets them only where the stored list still holds what it read
(``conditions_write``: only ``Reconciled`` is the handler's alone). Here a retried Resume's pass
runs while a risk plugin locks the bot and the timer writes ``RiskLocked=True``: the pass,
built on its Resume's answer, used to set ``RiskLocked=False`` over it. Found in review (R36).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_reconcile import FakeKube, _body, _reconcile
from tests.operator.timer_writes import applied, written_status
from tradefleet_operator import handlers
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.control import Call
from tradefleet_operator.k8s_api import KubeApi, api_path
from tradefleet_operator.names import API_VERSION, PLURAL, Phase
from tradefleet_operator.runtime_client import RuntimeCallError, RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.snapshot import RiskState, RuntimeSnapshot

STOP = {"reason": "desk says stop"}
CONFIG_MAP = "/api/v1/namespaces/trading/configmaps/eurusd-paper-config"
LOCK = RiskState("daily-loss", locked=True, reason="lost 5% today")


@pytest.fixture(autouse=True)
def _no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)


class Runtime:
    def __init__(self) -> None:
        self.halted = self.locked = self.down = False

    def saturated(self) -> bool:
        return False

    def snapshot(self) -> RuntimeSnapshot:
        return RuntimeSnapshot(
            phase=Phase.HALTED if self.halted else Phase.RUNNING,
            halted=self.halted,
            broker_connected=True,
            risk=(LOCK,) if self.locked else (),
        )

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        if self.down:
            raise RuntimeCallError("UNAVAILABLE", "no answer", unreachable=True)
        return self.snapshot()

    async def invoke(self, address: str, control_token: str, call: Call) -> RuntimeSnapshot:
        if self.down:
            raise RuntimeCallError("UNAVAILABLE", "no answer", unreachable=True)
        self.halted = call.method == "EmergencyStop"
        return self.snapshot()


def _ctx(kube: FakeKube, runtime: Runtime) -> OperatorContext:
    return OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )


async def _handler(kube: FakeKube, runtime: Runtime, body: dict[str, Any], diff: Any) -> kopf.Patch:
    patch = kopf.Patch()
    with contextlib.suppress(kopf.TemporaryError):
        await cast(Any, handlers.reconcile)(
            body=cast(kopf.Body, body),
            meta=cast(kopf.Meta, body["metadata"]),
            status=cast(kopf.Status, body["status"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=_ctx(kube, runtime)),
            logger=cast(kopf.Logger, logging.getLogger("test")),
            reason="update",
            diff=cast(Any, diff),
        )
    return patch


async def _timer(kube: FakeKube, runtime: Runtime, body: dict[str, Any]) -> kopf.Patch:
    patch = kopf.Patch()
    await cast(Any, handlers.poll_status)(
        body=cast(kopf.Body, body),
        status=cast(kopf.Status, body["status"]),
        meta=cast(kopf.Meta, body["metadata"]),
        patch=patch,
        memo=kopf.Memo(tradefleet=_ctx(kube, runtime)),
        logger=cast(kopf.Logger, logging.getLogger("timer")),
    )
    return patch


def _risk_locked(status: dict[str, Any]) -> dict[str, Any]:
    (found,) = [c for c in status["conditions"] if c["type"] == "RiskLocked"]
    return dict(found)


def test_a_retried_resume_keeps_the_risk_lock_the_timer_wrote_during_its_pass() -> None:
    kube, runtime = FakeKube(), Runtime()
    body = _body()
    body["status"] = _reconcile(kube, body, "create")
    kube.objects[api_path(API_VERSION, PLURAL, "trading", "eurusd-paper")] = body
    # halted by the spec's stop (generation 2), the timer's reads recorded
    body["spec"]["emergencyStop"] = dict(STOP)
    body["metadata"]["generation"] = 2
    patch = asyncio.run(
        _handler(kube, runtime, body, [("add", ("spec", "emergencyStop"), None, STOP)])
    )
    body["status"] = {**body["status"], **written_status(patch, body)}
    body["status"] = applied(asyncio.run(_timer(kube, runtime, body)), body)["status"]
    assert runtime.halted and _risk_locked(body["status"])["status"] == "False"

    # the stop removed while the runtime does not answer: the Resume is retried by kopf; the
    # pass ends (observedGeneration 3), so the timer reads the bot as usual meanwhile
    body["spec"].pop("emergencyStop")
    body["metadata"]["generation"] = 3
    diff = [("remove", ("spec", "emergencyStop"), STOP, None)]
    runtime.down = True
    patch = asyncio.run(_handler(kube, runtime, body, diff))
    body["status"] = {**body["status"], **written_status(patch, body)}
    assert body["status"]["observedGeneration"] == 3
    body["status"] = applied(asyncio.run(_timer(kube, runtime, body)), body)["status"]
    runtime.down = False

    # The retry: the Resume goes; during its ConfigMap write a risk plugin locks the bot and
    # the timer writes RiskLocked=True onto the stored object.
    stored: dict[str, Any] = copy.deepcopy(body)
    real_get = kube.get

    async def get(path: str) -> dict[str, Any] | None:
        if path == CONFIG_MAP and not runtime.locked:
            runtime.locked = True
            tick = await _timer(kube, runtime, stored)
            stored["status"] = applied(tick, stored)["status"]
            assert _risk_locked(stored["status"])["status"] == "True"
        return await real_get(path)

    kube.get = get  # type: ignore[method-assign]
    patch = asyncio.run(_handler(kube, runtime, body, diff))
    assert runtime.locked and not runtime.halted
    after = applied(patch, stored)["status"]
    assert _risk_locked(after)["status"] == "True", _risk_locked(after)
