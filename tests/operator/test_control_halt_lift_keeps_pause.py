"""A bot whose spec says paused is never open to entries while its emergency stop is lifted.

``spec.paused: true``, then ``spec.emergencyStop`` set and removed (a fleet stop and a fleet
resume): the operator plans ``Pause``, a ``Resume`` with ``halt_only`` (the runtime lifts the
halt and keeps the pause, in one command on its engine thread) and one more ``Pause`` (for a
runtime older than ``halt_only``, which clears the pause with the halt). A full ``Resume`` here
(``TradingState.resume`` clears the pause too) would leave the bot taking entries until a
``Pause`` after it got through. The calls are applied, in order, to the runtime's own
``TradingState`` as the runtime carries them out, and its gate is asked after each one.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from tradefleet_operator import steering
from tradefleet_operator.bot_api import LiveSpec
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.control import Call, plan_control
from tradefleet_operator.names import Control, Phase
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import RUNTIME_ADDRESS_ANNOTATION, OperatorSettings
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.status_model import BotStatus
from tradefleet_operator.tokens import ApiTokens
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.engine.trading_state import TradingState
from tradefleet_runtime.model import OrderIntent, Side

ENTRY = OrderIntent("EURUSD", Side.BUY)


def _apply(state: TradingState, call: Call, *, knows_halt_only: bool = True) -> None:
    """What the runtime does with each control call (``BotController.pause/resume/
    emergency_stop`` over ``Engine.pause/resume/halt``)."""
    if call.method == "Pause":
        state.pause(call.reason)
    elif call.method == "EmergencyStop":
        state.halt(call.reason)
    elif call.method == "Resume" and call.pause_only:
        state.unpause()
    elif call.method == "Resume" and call.halt_only and knows_halt_only:
        # BotController.resume(halt_only=True): the engine's resume, then its pause again,
        # in one command on the engine thread (no bar or signal is handled in between).
        if state.halted:
            kept = state.pause_reason if state.paused else None
            state.resume()
            if kept is not None:
                state.pause(kept)
    elif call.method == "Resume":
        state.resume()  # also a runtime older than halt_only: it ignores the field
    else:
        raise AssertionError(f"unknown call {call}")


def _open_after(
    state: TradingState, calls: list[Call], *, knows_halt_only: bool = True
) -> list[str]:
    opened: list[str] = []
    for call in calls:
        _apply(state, call, knows_halt_only=knows_halt_only)
        if state.gate(ENTRY) is None:
            opened.append(
                f"{call.method}(pause_only={call.pause_only}, halt_only={call.halt_only})"
            )
    return opened


def test_a_paused_bot_is_never_open_to_entries_while_its_fleet_halt_is_lifted() -> None:
    # The runtime as the fleet stop left it: paused by the spec, then halted.
    state = TradingState(paused=True, pause_reason="spec.paused", halted=True, halt_reason="drill")
    assert state.gate(ENTRY) is not None

    calls = plan_control(LiveSpec(paused=True), "Halted", None, known=False)
    assert calls, "the fleet resume must lift the fleet's halt"
    opened = _open_after(state, calls)
    assert not opened, f"entries let through after {opened} of {calls}"
    assert state.paused and not state.halted
    assert [(c.method, c.halt_only) for c in calls] == [
        ("Pause", False),
        ("Resume", True),
        ("Pause", False),
    ]


def test_a_bot_paused_in_the_same_change_that_lifts_its_halt_is_never_open() -> None:
    """``paused: true`` and the stop's removal in one spec change: the runtime is halted but
    not paused yet, so the pause must land before the halt goes."""
    state = TradingState(halted=True, halt_reason="drill")
    calls = plan_control(LiveSpec(paused=True), "Halted", None, known=False)
    assert not _open_after(state, calls)
    assert state.paused and not state.halted


@pytest.mark.parametrize("paused_before", [True, False])
def test_a_runtime_older_than_halt_only_ends_paused(paused_before: bool) -> None:
    """An older runtime ignores ``halt_only`` and clears the pause with the halt (open until
    the next call, as before): the last ``Pause`` leaves it paused all the same."""
    state = TradingState(paused=paused_before, halted=True, halt_reason="drill")
    calls = plan_control(LiveSpec(paused=True), "Halted", None, known=False)
    _open_after(state, calls, knows_halt_only=False)
    assert state.paused and not state.halted


class _Kube:
    async def get(self, path: str) -> dict[str, Any]:
        return {"metadata": {"generation": 3}}  # the handler's view is the newest spec


class _Runtime:
    """A runtime that knows ``halt_only``: its ``TradingState`` and the gate after each call."""

    def __init__(self, state: TradingState) -> None:
        self.state = state
        self.opened: list[Call] = []
        self.calls: list[Call] = []

    async def invoke(self, address: str, token: str, call: Call) -> RuntimeSnapshot:
        self.calls.append(call)
        _apply(self.state, call)
        if self.state.gate(ENTRY) is None:
            self.opened.append(call)
        phase = Phase.HALTED if self.state.halted else Phase.PAUSED
        return RuntimeSnapshot(phase=phase, halted=self.state.halted, paused=self.state.paused)


def test_the_change_handler_lifts_the_halt_of_a_paused_bot_without_opening_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``steering.steer`` on the fleet resume's spec change (stop removed, still paused)."""
    events: list[str] = []
    monkeypatch.setattr(steering, "event", lambda body, **kw: events.append(kw["message"]))
    state = TradingState(paused=True, pause_reason="spec.paused", halted=True, halt_reason="drill")
    runtime = _Runtime(state)
    ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(Any, _Kube()),
        runtime=cast(Any, runtime),
        tokens={("ns", "bot"): ApiTokens("control", "read")},
    )
    body = {
        "metadata": {
            "name": "bot",
            "namespace": "ns",
            "generation": 3,
            "annotations": {RUNTIME_ADDRESS_ANNOTATION: "127.0.0.1:1"},
        },
        "spec": {"paused": True},
    }
    status = BotStatus.read({"control": {"applied": "Halted", "generation": 2}})
    steered = asyncio.run(steering.steer(ctx, body, LiveSpec(paused=True), status))

    assert [call.halt_only for call in runtime.calls if call.method == "Resume"] == [True]
    assert runtime.opened == [] and state.paused and not state.halted
    assert steered.control is not None and steered.control.applied is Control.PAUSED
    assert events == ["emergency stop lifted, the pause kept; paused (spec.paused is true)"]


def test_the_runtime_client_sends_halt_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []

    async def call(address: str, token: str, method: str, request: Any, timeout: Any) -> Any:
        sent.append(request)
        return RuntimeSnapshot(phase=Phase.PAUSED, paused=True)

    async def invoke() -> None:
        clients = RuntimeClients()
        monkeypatch.setattr(clients, "_call", call)
        await clients.invoke("127.0.0.1:1", "control", Call("Resume", "lifted", halt_only=True))

    asyncio.run(invoke())
    assert sent == [pb.ResumeRequest(reason="lifted", actor=sent[0].actor, halt_only=True)]
