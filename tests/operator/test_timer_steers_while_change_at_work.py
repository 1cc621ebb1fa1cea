"""F64 (review R30c): a person's emergency stop must not wait out a long retry of an earlier
change.

kopf runs no newer edit of a TradingBot while an earlier pass waits out its retry delay (up to
30 s for ``HalfApplied``/``NotLanded`` or a transient API error, 60 s for a taken name), and the
status timer used to return at once while a change was at work (``_change_at_work``). So an
emergency stop set meanwhile reached the runtime only when that delay ended. The timer now
enforces a halt or a pause the newest spec asks for (never a resume, no risk-lock reset) and
writes only what steering records (``status.control``).
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
from tests.operator.timer_writes import poll_tick, timer_status, written_status
from tradefleet_operator import handlers
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi, api_path
from tradefleet_operator.names import API_VERSION, PLURAL, Phase
from tradefleet_operator.runtime_client import RuntimeCallError, RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_model import BotStatus
from tradefleet_operator.tokens import tokens_from_secret

TOKEN_SECRET = "/api/v1/namespaces/trading/secrets/eurusd-paper-api-token"


@pytest.fixture(autouse=True)
def _no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)


class Runtime:
    """A runtime in a given state; records every read (by token) and every control call."""

    def __init__(self, *, halted: bool = False, paused: bool = False) -> None:
        self.halted, self.paused = halted, paused
        self.reads: list[str] = []
        self.calls: list[tuple[str, str, bool]] = []  # method, token, flatten
        self.resets: list[str] = []

    def saturated(self) -> bool:
        return False

    def _snapshot(self) -> RuntimeSnapshot:
        phase = Phase.HALTED if self.halted else Phase.PAUSED if self.paused else Phase.RUNNING
        return RuntimeSnapshot(phase=phase, halted=self.halted, paused=self.paused)

    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        self.reads.append(read_token)
        return self._snapshot()

    async def invoke(self, address: str, control_token: str, call: Any) -> RuntimeSnapshot:
        self.calls.append((call.method, control_token, call.flatten))
        if call.method == "EmergencyStop":
            self.halted = True
        elif call.method == "Pause":
            self.paused = True
        elif call.method == "Resume":
            self.halted = self.paused = False
        return self._snapshot()

    async def reset_risk_lock(self, address: str, token: str, plugin: str, reason: str) -> Any:
        self.resets.append(plugin)
        return self._snapshot()


def _made_bot(kube: FakeKube, *, reconciled_reason: str = "HalfApplied") -> dict[str, Any]:
    """eurusd-paper made and reconciled at generation 1, then edited (generation 2) and that
    change's pass failed and waits out its retry: its ``Reconciled`` condition and
    ``observedGeneration`` are of generation 1 (a ``HalfApplied`` pass of generation 2 would
    date its condition 2; here generation 3 comes while it waits, so the condition is older)."""
    body = _body()
    body["status"] = _reconcile(kube, body, "create")
    for condition in body["status"]["conditions"]:
        if condition["type"] == "Reconciled":
            condition.update(status="False", reason=reconciled_reason)
    body["status"]["control"] = {"applied": "Running", "generation": 1}
    body["status"]["runtimeReportedAt"] = "2026-12-07T09:00:00.000000Z"
    body["metadata"]["generation"] = 2
    assert handlers._change_at_work(BotStatus.read(body["status"]), 2)
    return body


def _tick(kube: FakeKube, runtime: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
    return timer_status(poll_tick(ctx, body), body)


def _tokens(kube: FakeKube) -> tuple[str, str]:
    tokens = tokens_from_secret(kube.objects[TOKEN_SECRET])
    assert tokens is not None
    return tokens.read, tokens.control


@pytest.mark.parametrize("flatten", [False, True])
@pytest.mark.parametrize("reason", ["HalfApplied", "NotLanded", "NameTaken"])
def test_an_emergency_stop_set_while_a_change_is_at_work_is_halted_by_the_timer(
    flatten: bool, reason: str
) -> None:
    kube, runtime = FakeKube(), Runtime()
    body = _made_bot(kube, reconciled_reason=reason)
    body["spec"]["emergencyStop"] = {"reason": "desk says stop", "flatten": flatten}
    before = copy.deepcopy(body["status"])
    written = _tick(kube, runtime, body)
    read, control = _tokens(kube)
    assert runtime.reads == [read]  # read with the read token
    # halted with the control token, flattening exactly as the spec's halt asks
    assert runtime.calls == [("EmergencyStop", control, flatten)]
    # only what steering records; the keys the change handler owns are left to it
    assert written == {"control": {"applied": "Halted", "generation": 2, "flattened": flatten}}
    assert body["status"] == before
    # the runtime is halted now: the next tick sends nothing again
    body["status"]["control"] = written["control"]
    assert _tick(kube, runtime, body) == {}
    assert len(runtime.calls) == 1


def test_a_pause_set_while_a_change_is_at_work_is_enforced_by_the_timer() -> None:
    kube, runtime = FakeKube(), Runtime()
    body = _made_bot(kube)
    body["spec"]["paused"] = True
    written = _tick(kube, runtime, body)
    assert [call[0] for call in runtime.calls] == ["Pause"]
    assert written == {"control": {"applied": "Paused", "generation": 2}}


def test_an_emergency_stop_removed_while_a_change_is_at_work_gets_no_resume() -> None:
    """Resuming is the change handler's, from the newest generation only: the timer neither
    resumes nor records anything, even with the runtime halted and the spec asking to run."""
    kube, runtime = FakeKube(), Runtime(halted=True)
    body = _made_bot(kube)
    body["status"]["control"] = {"applied": "Halted", "generation": 1}
    body["spec"].pop("emergencyStop", None)  # the stop removed in generation 2
    assert _tick(kube, runtime, body) == {}
    assert runtime.calls == [] and runtime.halted
    assert runtime.reads == []  # a spec that asks to run costs no call while at work


def test_a_halt_lifted_to_a_pause_while_at_work_is_not_lifted_by_the_timer() -> None:
    """Generation 2 removes the stop but keeps a pause: lifting the halt (``halt_only``) is the
    change handler's; the timer sees a halted runtime under a spec asking for a pause and
    sends nothing."""
    kube, runtime = FakeKube(), Runtime(halted=True, paused=True)
    body = _made_bot(kube)
    body["status"]["control"] = {"applied": "Halted", "generation": 1}
    body["spec"]["paused"] = True
    assert _tick(kube, runtime, body) == {}
    assert runtime.calls == [] and runtime.halted


def test_no_risk_lock_reset_while_a_change_is_at_work() -> None:
    kube, runtime = FakeKube(), Runtime()
    body = _made_bot(kube)
    body["metadata"]["annotations"]["tradefleet.io/reset-risk-lock"] = "max_drawdown: checked"
    body["spec"]["emergencyStop"] = {"reason": "stop"}
    written = _tick(kube, runtime, body)
    assert runtime.resets == []
    assert "riskLockReset" not in written
    assert [call[0] for call in runtime.calls] == ["EmergencyStop"]


def test_a_bot_never_made_costs_no_call_while_its_change_is_at_work() -> None:
    kube, runtime = FakeKube(), Runtime()
    body = _body(emergencyStop={"reason": "stop"})
    body["status"] = {"phase": "Failed"}  # its create pass failed and is retried
    kube.writes.clear()
    assert _tick(kube, runtime, body) == {}
    assert runtime.reads == [] and runtime.calls == []
    assert kube.writes == []


class Unreachable(Runtime):
    async def get_status(self, address: str, read_token: str) -> RuntimeSnapshot:
        raise RuntimeCallError("UNAVAILABLE", "connection refused", unreachable=True)


def test_an_unreachable_runtime_while_at_work_writes_nothing() -> None:
    """The change handler owns Ready and the phase while it works: the timer says nothing."""
    kube, runtime = FakeKube(), Unreachable()
    body = _made_bot(kube)
    body["spec"]["emergencyStop"] = {"reason": "stop"}
    assert _tick(kube, runtime, body) == {}
    assert runtime.calls == []


def _shared_tick(ctx: OperatorContext, body: dict[str, Any]) -> dict[str, Any]:
    """A timer tick of the operator whose context is ``ctx`` (as kopf's memo shares it)."""
    return timer_status(poll_tick(ctx, body), body)


def _handler_pass(ctx: OperatorContext, body: dict[str, Any], diff: Any) -> dict[str, Any]:
    patch = kopf.Patch()
    with contextlib.suppress(kopf.TemporaryError):
        asyncio.run(
            cast(Any, handlers.reconcile)(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body["status"]),
                patch=patch,
                memo=kopf.Memo(tradefleet=ctx),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason="update",
                diff=diff,
            )
        )
    return written_status(patch, body)


@pytest.mark.parametrize("flatten", [False, True])
def test_a_timer_halt_whose_record_was_lost_is_resumed_when_the_stop_goes(flatten: bool) -> None:
    """Review R33c: the timer halts at once, but its ``status.control`` record is a guarded
    write kopf may refuse (the object moved since the tick's read; the next tick drops it) or
    the waiting pass's own status write may overwrite. The person then removes the stop: the
    change handler planned from the stale "Running" record, sent no Resume, and the bot stayed
    halted under a spec with no stop, its status saying Running. The operator now remembers
    the timer's control until a change handler takes it in."""
    kube, runtime = FakeKube(), Runtime()
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
    body = _made_bot(kube)
    body["spec"]["emergencyStop"] = {"reason": "desk says stop", "flatten": flatten}
    written = _shared_tick(ctx, body)
    assert runtime.halted and written["control"]["applied"] == "Halted"
    # The record never lands (refused, then dropped). The person removes the stop.
    body["spec"].pop("emergencyStop")
    body["metadata"]["generation"] = 3
    kube.objects[api_path(API_VERSION, PLURAL, "trading", body["metadata"]["name"])] = body
    assert _shared_tick(ctx, body) == {}  # the timer never resumes, and records nothing
    diff = [("remove", ("spec", "emergencyStop"), {"reason": "desk says stop"}, None)]
    status = _handler_pass(ctx, body, diff)
    assert runtime.calls[-1][0] == "Resume" and not runtime.halted, runtime.calls
    assert status["control"] == {"applied": "Running", "generation": 3}
    assert ctx.timer_controls == {}  # taken in


def test_the_timers_lost_record_is_recorded_by_the_pass_that_finds_the_halt_wanted() -> None:
    """The waiting change's generation comes due with the stop still set: nothing is sent
    again (the runtime is halted by the timer's call), and the pass records the halt the
    timer gave, which ``status.control`` did not say."""
    kube, runtime = FakeKube(), Runtime()
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
    body = _made_bot(kube)
    body["spec"]["emergencyStop"] = {"reason": "desk says stop"}
    _shared_tick(ctx, body)  # halted; its record lost
    kube.objects[api_path(API_VERSION, PLURAL, "trading", body["metadata"]["name"])] = body
    diff = [("add", ("spec", "emergencyStop"), None, {"reason": "desk says stop"})]
    status = _handler_pass(ctx, body, diff)
    assert [call[0] for call in runtime.calls] == ["EmergencyStop"]
    assert status["control"]["applied"] == "Halted" and status["control"]["generation"] == 2
    assert ctx.timer_controls == {}
