"""A retry of the pass that resumed a bot (its stop removed) sends no second Resume.

kopf records the handled spec (its diff base) only when the reconcile handler succeeds, so each
retry of a pass that failed after its steering is called with the same diff: the removal of
``spec.emergencyStop`` is in it every time. The removal is planned as a halt the operator
applied (``stop_removed``) only while ``status.control`` is older than this generation: once
the first try resumed and recorded it, a retry (a bot held for a missing credentials Secret
retries every 2 s) sends nothing, and a pause or halt given to the runtime directly since (a
person's ``tradefleet pause``, a fleet stop's direct halt whose spec patch has not landed yet)
stays. Found in review (R36).

The runtime here is a real :class:`Engine` (its holder semantics: ``resume``/``resume_holder``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_credentials_secret import Kube, body_with, ctx_of
from tests.operator.timer_writes import written_status
from tests.runtime.helpers import Scripted, make_engine
from tradefleet_operator import handlers
from tradefleet_operator.control import Call
from tradefleet_operator.k8s_api import api_path
from tradefleet_operator.names import API_VERSION, PLURAL, Phase
from tradefleet_operator.runtime_client import ACTOR
from tradefleet_operator.snapshot import RuntimeSnapshot

STOP = {"reason": "desk says stop"}
OPERATOR = f"{ACTOR} (grpc, control, 10.0.0.1)"


class EngineRuntime:
    """A runtime that is a real engine: each control call goes to the engine as the gRPC
    controller sends it (``service/controller.py``); no ``halt_only`` here."""

    def __init__(self) -> None:
        self.engine = make_engine(Scripted())
        self.calls: list[str] = []

    def saturated(self) -> bool:
        return False

    def snapshot(self) -> RuntimeSnapshot:
        engine = self.engine
        phase = Phase.HALTED if engine.halted else Phase.PAUSED if engine.paused else Phase.RUNNING
        return RuntimeSnapshot(
            phase=phase,
            halted=engine.halted,
            halt_reason=engine.halt_reason,
            paused=engine.paused,
            pause_reason=engine.pause_reason,
        )

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        return self.snapshot()

    async def invoke(self, address: str, control_token: str, call: Call) -> RuntimeSnapshot:
        assert not call.halt_only
        self.calls.append(call.method)
        if call.method == "EmergencyStop":
            self.engine.halt(OPERATOR, call.reason, flatten=call.flatten)
        elif call.method == "Pause":
            self.engine.pause(OPERATOR, call.reason)
        elif call.method == "Resume":
            self.engine.resume(OPERATOR, call.reason, pause_only=call.pause_only)
        return self.snapshot()


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    posted: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda _body, **kw: posted.append(kw))
    yield posted


def _pass(
    kube: Kube,
    runtime: EngineRuntime,
    body: dict[str, Any],
    diff: Any,
    retry: int = 0,
    reason: str = "update",
) -> bool:
    """One reconcile pass (kopf's ``retry``-th try); its status written into ``body`` as kopf
    would; True when it asked for a retry."""
    patch = kopf.Patch()
    retried = False
    try:
        asyncio.run(
            cast(Any, handlers.reconcile)(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body.get("status") or {}),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx_of(kube, runtime)),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason=reason,
                diff=cast(Any, diff),
                retry=retry,
            )
        )
    except kopf.TemporaryError:
        retried = True
    body["status"] = {**body.get("status", {}), **written_status(patch, body)}
    return retried


def _resumed_but_held(kube: Kube, runtime: EngineRuntime) -> tuple[dict[str, Any], Any]:
    """A bot halted by its spec's stop (handled: kopf's diff base has the stop); then one edit
    removes the stop and names a credentials Secret not made yet (a ``kubectl apply`` of the
    manifest): the pass resumes the bot, then is held for the Secret and retried."""
    kube.add_secret("keys")
    body = body_with("keys")
    kube.objects[api_path(API_VERSION, PLURAL, "trading", "eurusd-paper")] = body
    assert not _pass(kube, runtime, body, (), reason="create")
    body["spec"]["emergencyStop"] = dict(STOP)
    body["metadata"]["generation"] = 2
    _pass(kube, runtime, body, [("add", ("spec", "emergencyStop"), None, STOP)])
    assert runtime.engine.halted and body["status"]["control"]["applied"] == "Halted"

    body["spec"].pop("emergencyStop")
    body["spec"]["broker"]["credentialsSecret"] = {"name": "keys-v2"}
    body["metadata"]["generation"] = 3
    diff = [
        ("remove", ("spec", "emergencyStop"), STOP, None),
        ("change", ("spec", "broker", "credentialsSecret", "name"), "keys", "keys-v2"),
    ]
    runtime.calls.clear()
    assert _pass(kube, runtime, body, diff, 0)  # held for the Secret: retried
    assert runtime.calls == ["Resume"] and not runtime.engine.halted
    assert body["status"]["control"] == {"applied": "Running", "generation": 3}
    return body, diff


def test_a_retry_of_the_pass_that_resumed_sends_no_second_resume(
    events: list[dict[str, Any]],
) -> None:
    kube, runtime = Kube(), EngineRuntime()
    body, diff = _resumed_but_held(kube, runtime)
    runtime.calls.clear()
    events.clear()
    for retry in (1, 2, 3):  # every 2 s while the Secret is missing
        assert _pass(kube, runtime, body, diff, retry)
    assert runtime.calls == []  # this generation's control is applied and recorded
    assert [e["reason"] for e in events if e["reason"] in ("Resumed", "StillHalted")] == []


@pytest.mark.parametrize(
    ("who", "direct"),
    [
        # a person pauses the bot directly while the key is being made (docs/operations.md)
        ("alice@desk (grpc, control, 10.0.0.9)", "pause"),
        # a fleet stop's direct call, its spec patch not landed yet (fleet.py, step 1 then 2)
        ("tradefleet-fleet (grpc, control, 10.0.0.8)", "halt"),
    ],
)
def test_a_control_given_directly_after_the_resume_survives_the_retries(
    events: list[dict[str, Any]], who: str, direct: str
) -> None:
    kube, runtime = Kube(), EngineRuntime()
    body, diff = _resumed_but_held(kube, runtime)
    if direct == "pause":
        runtime.engine.pause(who, "fills look off while the key rotates")
    else:
        runtime.engine.halt(who, "fleet stop: desk drill")
    _pass(kube, runtime, body, diff, 1)
    engine = runtime.engine
    assert engine.paused if direct == "pause" else engine.halted, runtime.calls
