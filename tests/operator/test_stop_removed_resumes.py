"""Removing the spec's ``emergencyStop`` resumes the bot even when no record of its halt landed.

The status timer halts a bot whose newest spec asks for a stop while an earlier change waits
out its retry; its record of that halt (``status.control``) is a separate, guarded write that
the API server refuses when the object moved since the timer's read, and the operator's memory
of it (``OperatorContext.timer_controls``) is gone after an operator restart. The change
handler used to plan only from those: with ``status.control`` saying Running, removing the
stop planned nothing, and the bot stayed halted under a spec with no stop. A change that
removes the stop is a person's explicit resume of the spec's halt: the handler sends it, aimed
at the spec's halt alone (a halt a person gave directly stays: the runtime keeps each halt's
holder).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_reconcile import FakeKube
from tests.operator.test_timer_steers_while_change_at_work import Runtime, _made_bot, _tick
from tradefleet_operator import handlers
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.handlers import stop_removed
from tradefleet_operator.k8s_api import KubeApi, api_path
from tradefleet_operator.names import API_VERSION, PLURAL
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings

STOP = {"reason": "desk says stop"}


@pytest.fixture(autouse=True)
def _no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf, "event", lambda *_, **__: None)


def _handler_pass(kube: FakeKube, runtime: Runtime, body: dict[str, Any], diff: Any) -> None:
    """A change handler's pass in an operator that has just started (a fresh context: the
    timer's memory of its halt is gone)."""
    ctx = OperatorContext(
        settings=OperatorSettings(), kube=cast(KubeApi, kube), runtime=cast(RuntimeClients, runtime)
    )
    with contextlib.suppress(kopf.TemporaryError):
        asyncio.run(
            cast(Any, handlers.reconcile)(
                body=cast(kopf.Body, body),
                meta=cast(kopf.Meta, body["metadata"]),
                status=cast(kopf.Status, body["status"]),
                patch=kopf.Patch(),
                memo=kopf.Memo(tradefleet=ctx),
                logger=cast(kopf.Logger, logging.getLogger("test")),
                reason="update",
                diff=cast(Any, diff),
            )
        )


def _halted_by_the_timer_without_record(kube: FakeKube, runtime: Runtime) -> dict[str, Any]:
    body = _made_bot(kube)  # generation 2 at work, control Running (generation 1)
    body["spec"]["emergencyStop"] = dict(STOP)
    written = _tick(kube, runtime, body)
    assert runtime.halted and written["control"]["applied"] == "Halted"
    # Its record refused: the status still says Running. The person removes the stop.
    body["spec"].pop("emergencyStop")
    body["metadata"]["generation"] = 3
    kube.objects[api_path(API_VERSION, PLURAL, "trading", body["metadata"]["name"])] = body
    assert _tick(kube, runtime, body) == {}  # the timer never resumes
    return body


def test_the_timers_halt_is_resumed_when_the_stop_goes_after_an_operator_restart() -> None:
    kube, runtime = FakeKube(), Runtime()
    body = _halted_by_the_timer_without_record(kube, runtime)
    _handler_pass(kube, runtime, body, [("remove", ("spec", "emergencyStop"), STOP, None)])
    assert [call[0] for call in runtime.calls][-1] == "Resume" and not runtime.halted


def test_a_change_that_leaves_no_stop_but_did_not_remove_one_resumes_nothing() -> None:
    """Only the removal is a resume: another edit of a bot the record says runs sends none
    (the runtime's halt may be a person's, or a Degraded start's)."""
    kube, runtime = FakeKube(), Runtime()
    body = _halted_by_the_timer_without_record(kube, runtime)
    calls = len(runtime.calls)
    _handler_pass(kube, runtime, body, [("change", ("spec", "capital"), 1, 2)])
    assert "Resume" not in [call[0] for call in runtime.calls[calls:]] and runtime.halted


def test_stop_removed_reads_kopfs_diff() -> None:
    assert stop_removed("update", [("remove", ("spec", "emergencyStop"), STOP, None)])
    assert stop_removed("update", [("change", ("spec",), {"emergencyStop": STOP}, {"a": 1})])
    assert not stop_removed("update", [("add", ("spec", "emergencyStop"), None, STOP)])
    assert not stop_removed("update", [("change", ("spec", "emergencyStop", "reason"), "a", "b")])
    assert not stop_removed("update", [("change", ("spec",), {"a": 1}, {"a": 2})])
    assert not stop_removed("resume", [("remove", ("spec", "emergencyStop"), STOP, None)])
    assert not stop_removed("update", ())
