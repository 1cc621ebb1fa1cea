"""Two TradingBots must not trade one symbol on one venue account (docs/operations.md): the
account key, the shared symbols, admission's refusal at create and at an update that brings a
share, an update that only stops a sharing bot let through, and the ``AccountShared``
condition the status timer sets."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, cast

import kopf
import pytest

from tests.operator.timer_writes import timer_status
from tradefleet_operator import admission, handlers
from tradefleet_operator.account_sharing import (
    NO_ACCOUNT,
    NOT_CHECKED,
    NOT_SHARED,
    SHARED,
    AccountKey,
    BotAccount,
    account_key,
    account_of,
    bot_account,
    new_shares,
    share_errors,
    shared_symbols,
    sharing_condition,
)
from tradefleet_operator.bot_api import TradingBot
from tradefleet_operator.context import OperatorContext
from tradefleet_operator.k8s_api import KubeApi
from tradefleet_operator.runtime_client import RuntimeClients
from tradefleet_operator.settings import OperatorSettings
from tradefleet_operator.status_model import BotStatus
from tradefleet_runtime.errors import FieldError
from tradefleet_runtime.plugins.registry import PluginRegistry

NS = "trading"


def bot(
    name: str,
    symbols: list[str],
    *,
    secret: str = "binance-key",
    params: dict[str, Any] | None = None,
    broker: str = "ccxt",
    mode: str = "live",
    namespace: str = NS,
) -> dict[str, Any]:
    """A TradingBot object (a live ccxt bot on Binance spot unless told otherwise) that
    admission's other checks accept offline."""
    spec: dict[str, Any] = {
        "mode": mode,
        "strategy": {"name": "ema-cross", "params": {"fast": 12, "slow": 48}},
        "market": {"symbols": symbols, "timeframe": "1h"},
        "broker": {
            "name": broker,
            "params": params if params is not None else {"exchange": "binance"},
        },
        "data": {"name": "csv", "params": {"path": "x.csv", "live_rehearsal": True}},
    }
    if broker != "paper":
        spec["broker"]["credentialsSecret"] = {"name": secret}
    if mode == "live":
        spec["liveConfirmation"] = name
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
        "spec": spec,
    }


def key_of(body: dict[str, Any]) -> AccountKey | None:
    parsed = TradingBot.parse(body)
    return account_key(parsed.namespace, parsed.spec)


def account(body: dict[str, Any]) -> BotAccount:
    found = account_of(body)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return admission.default_registry()


# --- the account key -------------------------------------------------------------------------


def test_backtest_and_paper_bots_reach_no_shared_account() -> None:
    backtest = bot("a", ["BTC/USDT"], mode="backtest")
    assert key_of(backtest) is None  # a backtest is simulated, whatever its broker
    paper = bot("b", ["EURUSD"], broker="paper", params={}, mode="paper")
    assert key_of(paper) is None  # the paper broker: an account of its own per bot


def test_binance_spot_and_usdm_futures_are_separate_wallets_of_one_key() -> None:
    spot = key_of(bot("a", ["BTC/USDT"], params={"exchange": "binance"}))
    futures = key_of(
        bot("b", ["BTC/USDT:USDT"], params={"exchange": "binanceusdm", "market_type": "linear"})
    )
    assert spot is not None and futures is not None
    assert spot != futures
    assert (
        spot.describe() == "broker ccxt, Secret 'binance-key', exchange binance, market_type spot"
    )


def test_another_secret_or_namespace_is_another_account() -> None:
    base = key_of(bot("a", ["BTC/USDT"]))
    assert base == key_of(bot("b", ["ETH/USDT"]))
    assert base != key_of(bot("b", ["BTC/USDT"], secret="binance-sub-account"))
    assert base != key_of(bot("b", ["BTC/USDT"], namespace="desk-2"))


def test_the_testnet_is_another_account_and_defaults_written_out_are_not() -> None:
    base = key_of(bot("a", ["BTC/USDT"]))
    assert base != key_of(bot("b", ["BTC/USDT"], params={"exchange": "binance", "sandbox": True}))
    # The broker's own choices written out, and params that pick no other wallet: the same key
    # (``options.defaultType`` moves no order: test_account_sharing_spellings.py).
    for params in (
        {"exchange": "binance", "market_type": "spot", "sandbox": False},
        {"exchange": "binance", "options": {"defaultType": "spot"}},
        {"exchange": "binance", "api_url": "http://proxy:8080", "poll_interval_s": 2.0},
    ):
        assert key_of(bot("b", ["BTC/USDT"], params=params)) == base, params
    linear = {"exchange": "binanceusdm", "market_type": "linear"}
    levered = {**linear, "leverage": 5, "margin_mode": "isolated"}
    assert key_of(bot("a", ["BTCUSDT"], params=linear)) == key_of(
        bot("b", ["BTCUSDT"], params=levered)
    )  # leverage and margin mode are set on the same position


def test_mt5_is_keyed_but_never_refused_and_other_brokers_by_their_secret() -> None:
    mt5 = key_of(bot("a", ["EURUSD"], broker="mt5", params={}, secret="mt5-login"))
    assert mt5 is not None and mt5.nets is False
    other = key_of(bot("a", ["EURUSD"], broker="my-venue", params={"desk": 1}))
    assert other == AccountKey(NS, "my-venue", "binance-key")


# --- shared symbols --------------------------------------------------------------------------


def test_a_symbol_traded_by_another_bot_on_the_account_is_named_by_index_and_bot() -> None:
    alpha = account(bot("alpha", ["ETH/USDT", "BTC/USDT"]))
    beta = account(bot("beta", ["SOL/USDT", "BTCUSDT"]))  # the venue id of the same market
    errors = share_errors(shared_symbols(alpha, [alpha, beta]))
    assert errors == [
        FieldError(
            "spec.market.symbols[1]",
            "BTC/USDT is traded by TradingBot 'beta' (as 'BTCUSDT') on the same account "
            "(broker ccxt, Secret 'binance-key', exchange binance, market_type spot): two bots "
            "must not share a symbol on one account, whose venue nets their positions — give "
            "one a sub-account with its own key",
        )
    ]


def test_no_overlap_another_account_or_an_mt5_login_is_not_a_share() -> None:
    alpha = account(bot("alpha", ["BTC/USDT"]))
    assert shared_symbols(alpha, [account(bot("beta", ["ETH/USDT"]))]) == []
    assert shared_symbols(alpha, [account(bot("beta", ["BTC/USDT"], secret="sub"))]) == []
    gamma = account(bot("gamma", ["EURUSD"], broker="mt5", params={}, secret="login"))
    delta = account(bot("delta", ["EURUSD"], broker="mt5", params={}, secret="login"))
    assert gamma.key == delta.key and shared_symbols(gamma, [delta]) == []


def test_symbol_spellings_are_compared_as_each_broker_maps_them() -> None:
    linear = {"exchange": "bybit", "market_type": "linear"}
    perpetual = account(bot("a", ["BTC/USDT:USDT"], params=linear))
    assert shared_symbols(perpetual, [account(bot("b", ["btc-usdt"], params=linear))])
    dated = account(bot("c", ["BTC/USDT:USDT-250328"], params=linear))
    assert shared_symbols(perpetual, [dated]) == []  # a dated future is another contract
    mapped = {"symbols": {"XAUUSD": "GOLD.pro"}}
    gold = bot_account(
        NS, "g", TradingBot.parse(bot("g", ["XAUUSD"], broker="mt5", params=mapped)).spec
    )
    assert gold.venue_symbols == ("GOLD.pro",)


def test_a_bot_being_deleted_or_refused_by_the_model_does_not_count() -> None:
    deleting = bot("beta", ["BTC/USDT"])
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert account_of(deleting) is None
    broken = bot("beta", ["BTC/USDT"])
    broken["spec"]["market"]["timeframe"] = "7q"
    assert account_of(broken) is None


# --- admission -------------------------------------------------------------------------------


def test_create_of_a_bot_sharing_a_symbol_is_refused(registry: PluginRegistry) -> None:
    others = [account(bot("alpha", ["BTC/USDT"]))]
    beta = bot("beta", ["ETH/USDT", "BTC/USDT"])
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.admit(beta, registry, None, others)
    assert refused.value.code == 422
    text = str(refused.value)
    assert "spec.market.symbols[1]: BTC/USDT is traded by TradingBot 'alpha'" in text
    assert "symbols[0]" not in text
    admission.admit(bot("beta", ["ETH/USDT"]), registry, None, others)  # no share: admitted
    admission.admit(bot("beta", ["BTC/USDT"], secret="sub"), registry, None, others)


def test_an_update_that_stops_a_bot_already_sharing_is_admitted(registry: PluginRegistry) -> None:
    """Made before the check (or while the webhook was down): pausing it, halting it and
    editing anything but its symbols and account must never be refused."""
    alpha, beta = bot("alpha", ["BTC/USDT"]), bot("beta", ["BTC/USDT", "ETH/USDT"])
    others = [account(alpha), account(beta)]  # the index holds beta's stored version too
    for change in (
        {"paused": True},
        {"emergencyStop": {"reason": "desk closed", "flatten": True}},
        {"strategy": {"name": "ema-cross", "params": {"fast": 10, "slow": 48}}},
        {"market": {"symbols": ["BTCUSDT", "ETH/USDT"], "timeframe": "1h"}},  # a respelling
    ):
        updated = copy.deepcopy(beta)
        updated["spec"].update(change)
        admission.admit(updated, registry, beta, others)  # does not raise


def test_an_update_that_brings_a_share_is_refused(registry: PluginRegistry) -> None:
    alpha = bot("alpha", ["BTC/USDT", "SOL/USDT"])
    beta = bot("beta", ["BTC/USDT"], secret="sub")
    others = [account(alpha), account(beta)]
    moved = copy.deepcopy(beta)  # onto alpha's key
    moved["spec"]["broker"]["credentialsSecret"] = {"name": "binance-key"}
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.admit(moved, registry, beta, others)
    assert "spec.market.symbols[0]: BTC/USDT is traded by TradingBot 'alpha'" in str(refused.value)
    # Sharing BTC/USDT already (an old share), it adds SOL/USDT: only the new one is named.
    sharing = bot("beta", ["BTC/USDT"])
    added = copy.deepcopy(sharing)
    added["spec"]["market"]["symbols"] = ["BTC/USDT", "SOL/USDT"]
    with pytest.raises(kopf.AdmissionError) as refused:
        admission.admit(added, registry, sharing, [account(alpha), account(sharing)])
    text = str(refused.value)
    assert "spec.market.symbols[1]: SOL/USDT" in text and "symbols[0]" not in text


def test_new_shares_of_an_update_are_those_the_old_object_did_not_have() -> None:
    alpha = account(bot("alpha", ["BTC/USDT"]))
    beta = account(bot("beta", ["BTC/USDT"]))
    assert new_shares(beta, beta, [alpha]) == []
    assert [s.other for s in new_shares(beta, None, [alpha])] == ["alpha"]


def test_the_validate_handler_passes_the_index_of_the_bots_namespace() -> None:
    index = {NS: [account(bot("alpha", ["BTC/USDT"]))]}
    beta = bot("beta", ["BTC/USDT"])
    beta["metadata"]["labels"] = {"tradefleet.io/mode": "live"}
    with pytest.raises(kopf.AdmissionError, match="TradingBot 'alpha'"):
        handlers.validate(cast(kopf.Body, beta), None, cast(Any, index))
    elsewhere = copy.deepcopy(beta)
    elsewhere["metadata"]["namespace"] = "desk-2"
    handlers.validate(cast(kopf.Body, elsewhere), None, cast(Any, index))


# --- the condition ---------------------------------------------------------------------------


def test_sharing_condition_says_which_symbols_and_which_bot() -> None:
    alpha = account(bot("alpha", ["BTC/USDT", "ETH/USDT"]))
    beta = account(bot("beta", ["BTC/USDT"]))
    shared, reason, message = sharing_condition(alpha, [alpha, beta])
    assert (shared, reason) == (True, SHARED)
    assert "BTC/USDT with TradingBot 'beta'" in message and "ETH/USDT" not in message
    assert sharing_condition(alpha, [alpha])[:2] == (False, NOT_SHARED)
    paper = account(bot("p", ["EURUSD"], broker="paper", params={}, mode="paper"))
    assert sharing_condition(paper, [paper])[:2] == (False, NO_ACCOUNT)
    mt5 = account(bot("m", ["EURUSD"], broker="mt5", params={}))
    assert sharing_condition(mt5, [mt5])[:2] == (False, NOT_CHECKED)


def test_the_condition_message_is_bounded() -> None:
    symbols = [f"C{i:03d}/USDT" for i in range(200)]
    alpha = account(bot("alpha", symbols))
    beta = account(bot("beta", symbols))
    message = sharing_condition(alpha, [beta])[2]
    assert len(message) < 1200 and "more." in message


class _Unreachable:
    def saturated(self) -> bool:
        return False

    async def get_status(self, address: str, read_token: str) -> Any:
        raise ConnectionError("no runtime here")


class _Kube:
    async def get(self, path: str) -> dict[str, Any] | None:
        return {"data": {"read.token": "cmVhZA==", "control.token": "Y29udHJvbA=="}}

    async def list(self, *_: Any) -> list[dict[str, Any]]:
        return []


def _tick(body: dict[str, Any], index: dict[str, list[BotAccount]]) -> dict[str, Any]:
    ctx = OperatorContext(
        settings=OperatorSettings(),
        kube=cast(KubeApi, _Kube()),
        runtime=cast(RuntimeClients, _Unreachable()),
    )
    patch = kopf.Patch()
    asyncio.run(
        handlers.poll_status(
            body=cast(kopf.Body, body),
            status=cast(kopf.Status, body.get("status") or {}),
            meta=cast(kopf.Meta, body["metadata"]),
            patch=patch,
            memo=kopf.Memo(tradefleet=ctx),
            logger=cast(kopf.Logger, logging.getLogger("test")),
            bot_accounts=cast(Any, index),
        )
    )
    return timer_status(patch, body)


def test_the_status_timer_sets_account_shared_warns_once_and_clears(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(handlers, "event", lambda body, **kwargs: events.append(kwargs))
    alpha, beta = bot("alpha", ["BTC/USDT"]), bot("beta", ["BTCUSDT"])
    alpha["metadata"]["annotations"] = {"tradefleet.io/runtime-address": "127.0.0.1:1"}
    alpha["status"] = {"observedGeneration": 1}
    index = {NS: [account(alpha), account(beta)]}

    def condition(status: dict[str, Any]) -> tuple[str, str, str]:
        found = BotStatus.read(status).conditions or []
        (cond,) = [c for c in found if c.type == "AccountShared"]
        return cond.status, cond.reason, cond.message

    written = _tick(alpha, index)
    state, reason, message = condition(written)
    assert (state, reason) == ("True", "SymbolSharedOnAccount")
    assert "BTC/USDT with TradingBot 'beta'" in message
    warned = [e for e in events if e.get("reason") == "AccountShared"]
    assert len(warned) == 1 and warned[0]["warning"] is True

    alpha["status"].update(written)
    assert "conditions" not in _tick(alpha, index)  # the next tick: nothing new written
    assert len([e for e in events if e.get("reason") == "AccountShared"]) == 1  # once

    written = _tick(alpha, {NS: [account(alpha)]})  # beta deleted: out of the index
    assert condition({**alpha["status"], **written})[:2] == ("False", "NoSharedSymbol")
    assert len([e for e in events if e.get("reason") == "AccountShared"]) == 1
