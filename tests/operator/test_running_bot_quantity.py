"""A running TradingBot whose spec the admission's quantity rules would now refuse (admitted
before them, or with the webhook off: ``requests.memory: 500m`` is only a warning for
Kubernetes, and its pod runs and trades) is still read as the bot it is: deleting it flattens
as its spec says, it still guards its symbols against a second bot on its account, and an
operator restart does not mark it Failed.

A first form of the quantity check refused such a spec in ``TradingBot.parse``, and every
reader that takes a parse failure for "this bot trades nothing" misread it: the delete fell
back to a stop policy that does not flatten, and another bot on the same symbol was admitted.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf
import pytest

from tests.operator.test_account_sharing import bot
from tradefleet_operator import admission, handlers
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi
from tradefleet_operator.metrics import forget_phase
from tradefleet_operator.names import Phase
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.snapshot import RuntimeSnapshot
from tradefleet_operator.tokens import ApiTokens

# Running fine: Kubernetes warns "fractional byte value" for a memory request and rounds it
# up; it refuses nothing. Only the operator's own rule (whole bytes) refuses it.
RUNNING_RESOURCES = {"requests": {"memory": "500m"}, "limits": {"memory": "1Gi"}}


def running_live_bot(name: str, symbols: list[str]) -> dict[str, Any]:
    body = bot(name, symbols)
    body["spec"]["runtime"] = {"resources": RUNNING_RESOURCES}
    return body


def test_a_running_bot_with_a_fractional_memory_request_still_guards_its_symbols() -> None:
    """alpha trades BTC/USDT live on the Secret 'binance-key'. It drops out of the operator's
    account index (``bot_accounts`` → ``account_of`` → parse refused), so a second bot on the
    same account and symbol is admitted: two bots netting one position."""
    alpha = running_live_bot("alpha", ["BTC/USDT"])
    index_bot: Any = handlers.bot_accounts
    indexed: dict[str, Any] = index_bot(body=cast(kopf.Body, alpha), memo=kopf.Memo())
    others = list(indexed.values())
    beta = bot("beta", ["BTC/USDT"])
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.admit(beta, admission.default_registry(), None, others)
    assert "BTC/USDT is traded by TradingBot 'alpha'" in str(refused.value)


class _Runtime:
    """A runtime that halts (and flattens when asked) at once, recording what it was asked."""

    def __init__(self) -> None:
        self.flatten: list[bool] = []

    def saturated(self) -> bool:
        return False

    async def emergency_stop(
        self, address: str, control_token: str, reason: str, flatten: bool, timeout: float
    ) -> RuntimeSnapshot:
        self.flatten.append(flatten)
        return RuntimeSnapshot(phase=Phase.HALTED, halted=True, open_positions=0)


def test_deleting_a_running_bot_with_a_fractional_memory_request_flattens_as_its_spec_says() -> (
    None
):
    """``spec.onStop.flattenPositions: true``: the delete must ask the runtime to flatten. The
    parse now fails, ``_stop_runtime`` falls back to ``StopPolicy()`` (flatten False) and the
    live positions are left open at the venue."""
    body = running_live_bot("alpha", ["BTC/USDT"])
    body["spec"]["onStop"] = {"flattenPositions": True}
    runtime = _Runtime()
    ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeApi, object()),
        runtime=cast(RuntimeClients, runtime),
        stop_timeout=2.0,
    )
    ctx.tokens[("trading", "alpha")] = ApiTokens(control="c", read="r")
    problem, _snapshot, flatten = asyncio.run(handlers._stop_runtime(ctx, cast(kopf.Body, body)))
    assert problem == ""
    assert runtime.flatten == [True]
    assert flatten is True


def test_an_operator_restart_does_not_mark_a_running_bot_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the operator's restart (kopf's resume) the bot's spec is parsed again and refused:
    the pass writes phase Failed, and the per-bot gauge ``TradefleetBotFailed`` reads says
    Failed, for a bot whose pod and objects are left running and trading (the timer's next read
    of the runtime puts Running back: the phase flaps at every reconcile)."""
    from prometheus_client import REGISTRY

    from tests.operator.test_reconcile import FakeKube, _body, _reconcile

    monkeypatch.setattr(handlers, "event", lambda body, **kwargs: None)
    body = _body(runtime={"resources": RUNNING_RESOURCES})
    body["metadata"]["name"] = "r3-running-bot"
    body["metadata"]["uid"] = "uid-r3-running-bot"
    body["status"] = {"phase": "Running", "observedGeneration": 1, "configHash": "abc"}
    written = _reconcile(FakeKube(), body, "resume", retried=True)
    try:
        # A refused spec keeps the phase too (it writes nothing): the pass must apply it.
        reconciled = next(c for c in written["conditions"] if c["type"] == "Reconciled")
        assert (reconciled["status"], reconciled["reason"]) == ("True", "UpToDate")
        assert written.get("phase", "Running") == "Running"
        failed = REGISTRY.get_sample_value(
            "tradefleet_operator_bot_phase",
            {"bot_namespace": "trading", "bot": "r3-running-bot", "phase": "Failed"},
        )
        assert failed is None
    finally:
        forget_phase("uid-r3-running-bot")
