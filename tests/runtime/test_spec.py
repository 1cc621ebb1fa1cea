"""The TradingBot manifest: one clear error per wrong field; live needs explicit safeguards."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.spec import load_manifest, parse_manifest
from tradefleet_runtime.spec.checks import validate_plugins
from tradefleet_runtime.spec.model import Mode

ROOT = Path(__file__).resolve().parents[2]

GOOD: dict[str, Any] = {
    "apiVersion": "tradefleet.io/v1alpha1",
    "kind": "TradingBot",
    "metadata": {"name": "eurusd-ema"},
    "spec": {
        "mode": "backtest",
        "strategy": {"name": "ema-cross", "params": {"fast": 10, "slow": 30}},
        "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
        "broker": {"name": "paper", "params": {"fee_bps": 10, "slippage_bps": 1}},
        "data": {"name": "csv", "params": {"path": "x.csv"}},
        "risk": [{"name": "fixed-fractional", "params": {"risk_per_trade": 0.01}}],
        "capital": {"currency": "USD", "initial": 100000},
    },
}


def _with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        target = document
        parts = dotted.split("__")
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[parts[-1]] = value
    return document


def _errors(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        manifest = parse_manifest(document)
        problems = validate_plugins(manifest, PluginRegistry.discover())
        if problems:
            raise SpecError(problems)
    return {e.field: e.message for e in caught.value.errors}


def test_the_good_manifest_parses() -> None:
    manifest = parse_manifest(GOOD)
    assert manifest.spec.mode is Mode.BACKTEST
    assert manifest.spec.market.timeframe_s == 3600
    assert validate_plugins(manifest, PluginRegistry.discover()) == []


def test_every_example_manifest_is_valid() -> None:
    for path in sorted((ROOT / "examples" / "bots").glob("*.yaml")):
        manifest = load_manifest(path)
        assert validate_plugins(manifest, PluginRegistry.discover()) == [], path


def test_mode_defaults_to_paper_never_live() -> None:
    document = _with()
    del document["spec"]["mode"]
    document["spec"]["data"] = None
    assert parse_manifest(document).spec.mode is Mode.PAPER


def test_each_wrong_field_gets_exactly_one_error_naming_it() -> None:
    document = _with(
        kind="Bot",
        metadata__name="Not_A_DNS_Name",
        spec__market__timeframe="7x",
        spec__capital__initial=-5,
        spec__mode="yolo",
    )
    document["spec"]["colour"] = "blue"
    errors = _errors(document)
    assert set(errors) == {
        "kind",
        "metadata.name",
        "spec.market.timeframe",
        "spec.capital.initial",
        "spec.mode",
        "spec.colour",
    }
    assert "7x" in errors["spec.market.timeframe"]
    assert "unknown field" in errors["spec.colour"]


def test_plugin_params_errors_name_plugin_and_field() -> None:
    document = _with(
        spec__strategy__params={"fast": 30, "slow": 10, "speed": 1},
        spec__risk__0__params={"risk_per_trade": 5},
        spec__broker__params={"fee_bps": -1},
    )
    errors = _errors(document)
    assert set(errors) == {
        "spec.strategy.params.slow",
        "spec.strategy.params.speed",
        "spec.risk[0].params.risk_per_trade",
        "spec.broker.params.fee_bps",
    }
    assert "strategy plugin 'ema-cross'" in errors["spec.strategy.params.slow"]
    assert "greater than fast" in errors["spec.strategy.params.slow"]
    assert "unknown param" in errors["spec.strategy.params.speed"]


def test_unknown_plugin_names_the_installed_ones() -> None:
    errors = _errors(_with(spec__strategy__name="no-such-strategy"))
    assert "ema-cross" in errors["spec.strategy.name"]


def test_duplicate_symbols_are_refused() -> None:
    errors = _errors(_with(spec__market__symbols=["EURUSD", "EURUSD"]))
    assert "twice" in errors["spec.market.symbols"]


def test_backtest_needs_a_data_feed() -> None:
    document = _with()
    document["spec"]["data"] = None
    assert "data feed" in _errors(document)["spec.data"]


def test_live_without_confirmation_or_credentials_is_refused_with_both_reasons() -> None:
    errors = _errors(_with(spec__mode="live"))
    assert set(errors) == {"spec.liveConfirmation", "spec.broker.credentialsSecret"}
    assert "eurusd-ema" in errors["spec.liveConfirmation"]


def test_live_confirmation_must_be_the_bots_own_name() -> None:
    document = _with(spec__mode="live", spec__liveConfirmation="other-bot")
    document["spec"]["broker"]["credentialsSecret"] = {"name": "binance-main"}
    assert set(_errors(document)) == {"spec.liveConfirmation"}


def test_paper_broker_refuses_live_even_when_confirmed() -> None:
    document = _with(spec__mode="live", spec__liveConfirmation="eurusd-ema")
    document["spec"]["broker"]["credentialsSecret"] = {"name": "binance-main"}
    errors = _errors(document)
    assert set(errors) == {"spec.broker.name", "spec.data.params.live_rehearsal"}
    assert "cannot serve mode live" in errors["spec.broker.name"]


def test_a_live_bot_on_the_csv_feed_is_refused_unless_a_rehearsal() -> None:
    # A paper manifest switched to live keeps its csv feed: real orders at replayed prices.
    document = _with(spec__mode="live", spec__liveConfirmation="eurusd-ema")
    document["spec"]["broker"] = {
        "name": "ccxt",
        "params": {"exchange": "binance"},
        "credentialsSecret": {"name": "binance-main"},
    }
    errors = _errors(document)
    assert set(errors) == {"spec.data.params.live_rehearsal"}
    assert "real orders at the file's prices" in errors["spec.data.params.live_rehearsal"]
    # A rehearsal against a test venue says so; a paper bot replays the file as ever.
    document["spec"]["data"]["params"]["live_rehearsal"] = True
    assert validate_plugins(parse_manifest(document), PluginRegistry.discover()) == []
    del document["spec"]["data"]["params"]["live_rehearsal"]
    document["spec"]["mode"] = "paper"
    document["spec"]["broker"] = {"name": "paper"}
    assert validate_plugins(parse_manifest(document), PluginRegistry.discover()) == []


def test_the_webhooks_allow_list_is_checked_naming_the_entry() -> None:
    document = _with(spec__runtime={"webhook": True, "webhookAllow": ["10.0.0.0/8", "10.0.0.300"]})
    errors = _errors(document)
    assert set(errors) == {"spec.runtime.webhookAllow[1]"}
    assert "'10.0.0.300' is not a CIDR" in errors["spec.runtime.webhookAllow[1]"]
    # Without the webhook an allow list guards nothing: the user meant to turn the webhook on.
    errors = _errors(_with(spec__runtime={"webhookAllow": ["10.0.0.0/8"]}))
    assert "need spec.runtime.webhook: true" in errors["spec.runtime"]
    document = _with(spec__runtime={"webhook": True, "webhookAllow": ["10.0.0.0/8", "::1"]})
    assert parse_manifest(document).spec.runtime.webhook_allow == ["10.0.0.0/8", "::1"]


def test_yaml_errors_give_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: tradefleet.io/v1alpha1\nkind: [unclosed\n")
    with pytest.raises(SpecError) as caught:
        load_manifest(path)
    assert caught.value.errors[0].field == "(yaml)"
    assert "line" in caught.value.errors[0].message
