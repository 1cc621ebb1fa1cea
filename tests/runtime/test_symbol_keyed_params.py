"""Params keyed by symbol keep to the bot's symbols: a key the bot does not trade (a typo) would
cap, size or feed nothing, silently, so the manifest is refused naming the key as the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.feeds.csv_params import CsvFeedParams
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams
from tradefleet_plugins.risk.sizers_params import FixedSizeParams
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.spec.checks import plugin_context, validate_plugins
from tradefleet_runtime.spec.load import parse_manifest

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
LISTED = "not one of the bot's symbols (spec.market.symbols: BTCUSDT, ETHUSDT)"

BASE: dict[str, Any] = {
    "apiVersion": "tradefleet.io/v1alpha1",
    "kind": "TradingBot",
    "metadata": {"name": "keyed-bot"},
    "spec": {
        "mode": "backtest",
        "strategy": {"name": "ema-cross", "params": {"fast": 2, "slow": 3}},
        "market": {"symbols": SYMBOLS, "timeframe": "1h"},
        "broker": {
            "name": "paper",
            "params": {"instruments": {"BTCUSDT": {"lot_step": 0.001}}},
        },
        "data": {
            "name": "csv",
            "params": {"files": {"BTCUSDT": "btc.csv", "ETHUSDT": "eth.csv"}},
        },
        "risk": [
            {"name": "fixed-size", "params": {"quantity": 1, "per_symbol": {"ETHUSDT": 2}}},
            {
                "name": "pre-trade",
                "params": {
                    "max_leverage_per_symbol": {"BTCUSDT": 0.1},
                    "groups": {"BTCUSDT": "crypto", "ETHUSDT": "crypto"},
                },
            },
        ],
        "capital": {"currency": "USDT", "initial": 10_000},
    },
}


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def errors_of(document: dict[str, Any], registry: PluginRegistry) -> list[str]:
    return [str(error) for error in validate_plugins(parse_manifest(document), registry)]


def test_keys_that_are_the_bots_symbols_pass(registry: PluginRegistry) -> None:
    assert errors_of(BASE, registry) == []


def _retype(params: dict[str, Any], field: str, good: str, bad: str) -> None:
    keyed = params[field]
    keyed[bad] = keyed.pop(good)


@pytest.mark.parametrize(
    ("where", "field", "good", "bad", "expected"),
    [
        (("broker",), "instruments", "BTCUSDT", "BTCUSTD",
         "spec.broker.params.instruments.BTCUSTD: {listed} (broker plugin 'paper')"),
        (("data",), "files", "ETHUSDT", "SOLUSDT",
         "spec.data.params.files.SOLUSDT: {listed} (data plugin 'csv')"),
        (("risk", 0), "per_symbol", "ETHUSDT", "ETHUSTD",
         "spec.risk[0].params.per_symbol.ETHUSTD: {listed} (risk plugin 'fixed-size')"),
        (("risk", 1), "max_leverage_per_symbol", "BTCUSDT", "BTCUSTD",
         "spec.risk[1].params.max_leverage_per_symbol.BTCUSTD: {listed} (risk plugin 'pre-trade')"),
        (("risk", 1), "groups", "ETHUSDT", "ethusdt",
         "spec.risk[1].params.groups.ethusdt: {listed} (risk plugin 'pre-trade')"),
    ],
)  # fmt: skip
def test_a_key_the_bot_does_not_trade_is_refused_naming_it(
    registry: PluginRegistry,
    where: tuple[str | int, ...],
    field: str,
    good: str,
    bad: str,
    expected: str,
) -> None:
    document = copy.deepcopy(BASE)
    section: Any = document["spec"]
    for part in where:
        section = section[part]
    _retype(section["params"], field, good, bad)
    errors = errors_of(document, registry)
    assert errors == [expected.format(listed=LISTED)]


def test_every_unknown_key_is_named(registry: PluginRegistry) -> None:
    document = copy.deepcopy(BASE)
    document["spec"]["risk"][1]["params"]["max_leverage_per_symbol"] = {
        "BTCUSTD": 0.1, "ETHUSDT": 0.2, "XRPUSDT": 0.3,
    }  # fmt: skip
    fields = [error.partition(": ")[0] for error in errors_of(document, registry)]
    assert fields == [
        "spec.risk[1].params.max_leverage_per_symbol.BTCUSTD",
        "spec.risk[1].params.max_leverage_per_symbol.XRPUSDT",
    ]


MODELS: list[tuple[type[Any], dict[str, Any]]] = [
    (PaperBrokerParams, {"instruments": {"BTCUSTD": {"lot_step": 0.001}}}),
    (CsvFeedParams, {"files": {"BTCUSTD": "btc.csv"}}),
    (FixedSizeParams, {"quantity": 1, "per_symbol": {"BTCUSTD": 2}}),
    (PreTradeParams, {"max_leverage_per_symbol": {"BTCUSTD": 0.1}, "groups": {"BTCUSTD": "x"}}),
]


@pytest.mark.parametrize(("model", "params"), MODELS)
def test_without_the_bots_symbols_the_check_is_skipped(
    model: type[Any], params: dict[str, Any]
) -> None:
    """A plugin's own test, ``tradefleet plugins`` (no context) and a search trial's check
    (a context without symbols) cannot know the bot's symbols: the keys pass."""
    model.model_validate(params)
    model.model_validate(params, context=plugin_context(3600))
    with pytest.raises(ValueError, match="not one of the bot's symbols"):
        model.model_validate(params, context=plugin_context(3600, "backtest", SYMBOLS))


def test_plugin_context_carries_the_symbols_and_keeps_its_callers() -> None:
    assert plugin_context(3600) == {
        "base_timeframe_s": 3600,
        "mode": "",
        "symbols": (),
        "base_dir": "",
    }
    assert plugin_context(60, "paper", ["A", "B"])["symbols"] == ("A", "B")
    assert plugin_context(60, "paper", ["A"], "/bots/a")["base_dir"] == "/bots/a"


def test_a_strategys_pip_sizes_keep_to_the_bots_symbols(registry: PluginRegistry) -> None:
    """bos-retest's ``pip_sizes``: in the manifest, in a search's trial and in UpdateParams the
    same check (a typo would leave the symbol at ``pip_size``, a hundred times off for JPY)."""
    from tradefleet_runtime.optimize.search import check_params

    document = copy.deepcopy(BASE)
    document["spec"]["strategy"] = {
        "name": "bos-retest",
        "params": {"pip_sizes": {"BTCUSDT": 0.1, "ETHUSTD": 0.01}},
    }
    (error,) = errors_of(document, registry)
    assert error.startswith(f"spec.strategy.params.pip_sizes.ETHUSTD: {LISTED}")
    good = copy.deepcopy(document)
    good["spec"]["strategy"]["params"] = {"pip_sizes": {"ETHUSDT": 0.01}}
    assert errors_of(good, registry) == []
    (trial,) = check_params(good, {"pip_sizes": {"ETHUSTD": 0.01}}, registry)
    assert str(trial).startswith(f"spec.strategy.params.pip_sizes.ETHUSTD: {LISTED}")
    assert check_params(good, {"pip_sizes": {"ETHUSDT": 0.02}}, registry) == []
