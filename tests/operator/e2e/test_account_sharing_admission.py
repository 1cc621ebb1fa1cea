"""Two bots on one venue account and symbol, through the real operator process: its webhook
(served over HTTPS, asked as the API server asks) refuses the second bot at create and an
update that brings a share, from the index kopf keeps of the bots it watches; an update that
pauses or halts a bot that shares already (applied while the webhook was not asked) is let
through; and the status timer marks both bots ``AccountShared`` with one Warning each."""

from __future__ import annotations

import base64
import copy
import ssl
import uuid
from typing import Any

import pytest

from tests.operator.e2e.conftest import NS, Cluster
from tests.operator.e2e.test_admission_https import (  # noqa: F401  (the fixture)
    _ask,
    _configuration,
    webhook_operator,
)


def _live_bot(name: str, symbols: list[str]) -> dict[str, Any]:
    """A live ccxt bot on Binance spot with the Secret ``binance-key`` (admitted offline)."""
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"tradefleet.io/mode": "live"},
            "annotations": {"tradefleet.io/runtime-address": "127.0.0.1:1"},
        },
        "spec": {
            "mode": "live",
            "liveConfirmation": name,
            "strategy": {"name": "ema-cross", "params": {"fast": 12, "slow": 48}},
            "market": {"symbols": symbols, "timeframe": "1h"},
            "broker": {
                "name": "ccxt",
                "params": {"exchange": "binance"},
                "credentialsSecret": {"name": "binance-key"},
            },
            "data": {"name": "csv", "params": {"path": "x.csv", "live_rehearsal": True}},
        },
    }


def _review(operation: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    resource = {"group": "tradefleet.io", "version": "v1alpha1", "resource": "tradingbots"}
    kind = {"group": "tradefleet.io", "version": "v1alpha1", "kind": "TradingBot"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()), "kind": kind, "resource": resource,
            "requestKind": kind, "requestResource": resource,
            "name": obj["metadata"]["name"], "namespace": NS, "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
            "object": obj, "oldObject": old, "dryRun": False,
        },
    }  # fmt: skip


def _reconciled(cluster: Cluster, name: str) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        bot = cluster.bot(name)
        return bot if bot and (bot.get("status") or {}).get("observedGeneration") else None

    found: dict[str, Any] = cluster.wait(seen, timeout=20, message=f"{name} reconciled")
    return found


def _shared(cluster: Cluster, name: str) -> dict[str, Any] | None:
    bot = cluster.bot(name) or {}
    for condition in (bot.get("status") or {}).get("conditions") or []:
        if condition["type"] == "AccountShared" and condition["status"] == "True":
            return dict(condition)
    return None


@pytest.mark.usefixtures("webhook_operator")
def test_a_second_bot_on_the_account_and_symbol_is_refused_and_a_sharing_bot_can_be_stopped(
    cluster: Cluster,
) -> None:
    validating = cluster.wait(
        lambda: _configuration(cluster, "validatingwebhookconfigurations"),
        timeout=30, message="the operator registered its validating webhooks",
    )  # fmt: skip
    hooks = {hook["name"].split(".")[0]: hook for hook in validating["webhooks"]}
    bundle = base64.b64decode(hooks["validate-live"]["clientConfig"]["caBundle"]).decode()
    context = ssl.create_default_context(cadata=bundle)
    url = hooks["validate-live"]["clientConfig"]["url"]

    cluster.apply_bot(_live_bot("alpha", ["BTC/USDT", "ETH/USDT"]))
    _reconciled(cluster, "alpha")  # indexed before its handlers ran

    # Create: the venue id of alpha's market on the same account is refused, naming both.
    answer = _ask(url, context, _review("CREATE", _live_bot("beta", ["BTCUSDT"]), None))
    assert answer["allowed"] is False and answer["status"]["code"] == 422, answer
    text = answer["status"]["message"]
    assert "spec.market.symbols[0]: BTCUSDT is traded by TradingBot 'alpha' (as 'BTC/USDT')" in (
        text
    ), text
    assert "Secret 'binance-key', exchange binance, market_type spot" in text
    answer = _ask(url, context, _review("CREATE", _live_bot("beta", ["SOL/USDT"]), None))
    assert answer["allowed"] is True, answer

    # Made anyway while the webhook was not asked (the emulator calls no webhook).
    cluster.apply_bot(_live_bot("beta", ["BTCUSDT"]))
    stored = _reconciled(cluster, "beta")

    # Pausing or halting it changes nothing about its symbols or account: admitted.
    for change in ({"paused": True}, {"emergencyStop": {"reason": "shares BTC", "flatten": False}}):
        updated = copy.deepcopy(stored)
        updated["spec"].update(change)
        answer = _ask(url, context, _review("UPDATE", updated, stored))
        assert answer["allowed"] is True, (change, answer)
    # Adding another of alpha's symbols brings a new share: refused, naming only that one.
    added = copy.deepcopy(stored)
    added["spec"]["market"]["symbols"] = ["BTCUSDT", "ETH/USDT"]
    answer = _ask(url, context, _review("UPDATE", added, stored))
    assert answer["allowed"] is False, answer
    assert "spec.market.symbols[1]: ETH/USDT" in answer["status"]["message"]
    assert "symbols[0]" not in answer["status"]["message"]

    # Without the webhook's word, the status says it: both bots, one Warning each.
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        condition = cluster.wait(
            lambda: _shared(cluster, name),  # noqa: B023
            timeout=20, message=f"{name}: AccountShared=True",
        )  # fmt: skip
        assert condition["reason"] == "SymbolSharedOnAccount"
        assert f"with TradingBot {other!r}" in condition["message"]
    cluster.wait(
        lambda: all(
            [e for e in cluster.events(n) if e.get("reason") == "AccountShared"]
            for n in ("alpha", "beta")
        ),
        message="an AccountShared Warning on each bot",
    )
    for name in ("alpha", "beta"):
        warned = [e for e in cluster.events(name) if e.get("reason") == "AccountShared"]
        assert len(warned) == 1 and warned[0]["type"] == "Warning", warned
