"""Params that must agree with each other, or with the bot, are refused by the manifest check.

Each of these passed validation, then failed at the bot's start with a traceback (leaving the
journal's run at ``running``) or ran and never traded; now the manifest check names the field.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradefleet_plugins.strategies.bos_retest_params import BosRetestParams
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.optimize.search import check_params
from tradefleet_runtime.plugins.registry import BUILTIN_MODULE, PluginRegistry
from tradefleet_runtime.service.api import ControlError
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.checks import validate_plugins

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"
TRADEFLEET = str(Path(sys.executable).parent / "tradefleet")


def _manifest(
    strategy: dict[str, Any] | None = None,
    risk: list[dict[str, Any]] | None = None,
    timeframe: str = "1h",
) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    spec = document["spec"]
    if strategy is not None:
        spec["strategy"] = strategy
    if risk is not None:
        spec["risk"] = risk
    spec["market"]["timeframe"] = timeframe
    spec["data"]["params"]["path"] = str(ROOT / "data" / "EURUSD_H1_2017.csv")
    return document


def _errors(document: dict[str, Any]) -> dict[str, str]:
    """The plugin errors of a manifest, by field (as ``tradefleet backtest`` lists them)."""
    registry = PluginRegistry.from_modules(importlib.import_module(BUILTIN_MODULE))
    return {e.field: e.message for e in validate_plugins(parse_manifest(document), registry)}


def _strategy(name: str, **params: Any) -> dict[str, Any]:
    return _errors(_manifest({"name": name, "params": params}))


# -- indicator-confluence ----------------------------------------------------------------------


@pytest.mark.parametrize(("fast", "slow"), [(40, 10), (26, 26)])
def test_confluence_macd_slow_not_above_fast_is_refused(fast: int, slow: int) -> None:
    errors = _strategy("indicator-confluence", macd_fast=fast, macd_slow=slow)
    assert errors == {
        "spec.strategy.params.macd_slow": f"must be greater than macd_fast ({fast}) "
        "(strategy plugin 'indicator-confluence')"
    }


def test_confluence_rsi_oversold_not_below_overbought_is_refused() -> None:
    # Each one's own bound allows 50 (oversold at most 50, overbought at least 50).
    errors = _strategy("indicator-confluence", rsi_oversold=50, rsi_overbought=50)
    assert errors == {
        "spec.strategy.params.rsi_overbought": "must be greater than rsi_oversold (50) "
        "(strategy plugin 'indicator-confluence')"
    }


def test_confluence_params_that_agree_pass() -> None:
    assert _strategy("indicator-confluence") == {}
    assert _strategy("indicator-confluence", macd_fast=5, macd_slow=6, rsi_oversold=49.9) == {}


# -- bos-retest --------------------------------------------------------------------------------


@pytest.mark.parametrize("higher", ["30m", "7m", "90m", "61m"])
def test_bos_retest_higher_timeframe_off_the_bots_is_refused_by_field(higher: str) -> None:
    errors = _strategy("bos-retest", higher_timeframe=higher)
    assert list(errors) == ["spec.strategy.params.higher_timeframe"]
    assert errors["spec.strategy.params.higher_timeframe"] == (
        f"{higher} is not a multiple of the bot's timeframe (spec.market.timeframe: 1h) "
        "(strategy plugin 'bos-retest')"
    )


@pytest.mark.parametrize(("higher", "timeframe"), [("1h", "1h"), ("4h", "1h"), ("15m", "5m")])
def test_bos_retest_higher_timeframe_on_the_bots_grid_passes(higher: str, timeframe: str) -> None:
    document = _manifest({"name": "bos-retest", "params": {"higher_timeframe": higher}}, None)
    document["spec"]["market"]["timeframe"] = timeframe
    assert _errors(document) == {}


def test_bos_retest_params_alone_cannot_know_the_bots_timeframe() -> None:
    # Built without a manifest (tests, `plugins list`): only the timeframe's shape is checked.
    assert BosRetestParams(higher_timeframe="30m").higher_timeframe == "30m"


def test_a_search_trial_and_update_params_check_the_higher_timeframe_against_the_bot(
    tmp_path: Path,
) -> None:
    """Not only the manifest: a trial's params (``check_params``, before it runs) and a running
    bot's UpdateParams are given the bot's timeframe too, so neither lets a 30m higher
    timeframe through on a 1h bot (a trial would end the search at start; a bot would take
    it)."""
    document = _manifest({"name": "bos-retest", "params": {}})
    registry = PluginRegistry.from_modules(importlib.import_module(BUILTIN_MODULE))
    [error] = check_params(document, {"higher_timeframe": "30m"}, registry)
    assert error.field == "spec.strategy.params.higher_timeframe"
    assert check_params(document, {"higher_timeframe": "4h"}, registry) == []
    journal = Journal(tmp_path / "j.sqlite")
    try:
        bot = assemble(parse_manifest(document), registry, ROOT)
        with pytest.raises(ControlError) as refused:
            BotController(bot, journal, registry).update_params({"higher_timeframe": "30m"}, "al")
    finally:
        journal.close()
    assert refused.value.field == "params.higher_timeframe"
    assert "not a multiple of the bot's timeframe" in str(refused.value)


def test_update_params_checks_symbol_keys_against_the_bot(tmp_path: Path) -> None:
    """A running bot's UpdateParams is given the bot's symbols too: a pip size for a symbol
    it does not trade (a typo) is refused, naming the key, not taken silently."""
    document = _manifest({"name": "bos-retest", "params": {}})
    symbol = document["spec"]["market"]["symbols"][0]
    registry = PluginRegistry.from_modules(importlib.import_module(BUILTIN_MODULE))
    journal = Journal(tmp_path / "j.sqlite")
    try:
        bot = assemble(parse_manifest(document), registry, ROOT)
        controller = BotController(bot, journal, registry)
        with pytest.raises(ControlError) as refused:
            controller.update_params({"pip_sizes": {symbol + "X": 0.01}}, "al")
    finally:
        journal.close()
    assert refused.value.field == f"params.pip_sizes.{symbol}X"
    assert "not one of the bot's symbols" in str(refused.value)


# -- ensemble ------------------------------------------------------------------------------------


def test_ensemble_quorum_above_its_children_is_refused() -> None:
    child = {"name": "ema-cross", "params": {"fast": 5, "slow": 20}}
    errors = _strategy("ensemble", children=[child], quorum=5)
    assert errors == {
        "spec.strategy.params.quorum": "must be at most the number of children (1), not 5 "
        "(strategy plugin 'ensemble')"
    }
    assert _strategy("ensemble", children=[child, child], quorum=2) == {}
    assert _strategy("ensemble") == {}  # three default children, quorum 2


# -- fixed-size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -5, -0.001])
def test_fixed_size_per_symbol_quantity_must_be_positive(quantity: float) -> None:
    risk = [{"name": "fixed-size", "params": {"quantity": 1, "per_symbol": {"EURUSD": quantity}}}]
    errors = _errors(_manifest(risk=risk))
    assert errors == {
        "spec.risk[0].params.per_symbol.EURUSD": "Input should be greater than 0 "
        "(risk plugin 'fixed-size')"
    }


def test_fixed_size_per_symbol_positive_quantities_pass() -> None:
    risk = [{"name": "fixed-size", "params": {"quantity": 1, "per_symbol": {"EURUSD": 2.5}}}]
    assert _errors(_manifest(risk=risk)) == {}


# -- end to end ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "field"),
    [
        (
            {"name": "indicator-confluence", "params": {"macd_fast": 40, "macd_slow": 10}},
            "macd_slow",
        ),
        ({"name": "bos-retest", "params": {"higher_timeframe": "30m"}}, "higher_timeframe"),
    ],
    ids=["macd", "bos-htf"],
)
def test_backtest_refuses_before_it_starts_a_run(
    tmp_path: Path, strategy: dict[str, Any], field: str
) -> None:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(yaml.safe_dump(_manifest(strategy)))
    journal = tmp_path / "bot.sqlite"
    result = subprocess.run(
        [TRADEFLEET, "backtest", str(manifest), "--journal", str(journal)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"spec.strategy.params.{field}:" in result.stdout + result.stderr
    if journal.exists():  # no run of it is left "running"
        with sqlite3.connect(journal) as db:
            assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def test_a_strategy_that_refuses_to_start_fails_its_run_with_an_error_naming_it(
    tmp_path: Path,
) -> None:
    """What no params model can see (a bos-retest child of an ensemble asking for a 30m series
    on a 1h bot): the strategy refuses at its start. The run is journaled as failed, not left
    'running', and the CLI says so in one line naming the strategy, not with a traceback."""
    child = {"name": "bos-retest", "params": {"higher_timeframe": "30m"}}
    strategy = {"name": "ensemble", "params": {"quorum": 1, "children": [child]}}
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(yaml.safe_dump(_manifest(strategy)))
    journal = tmp_path / "bot.sqlite"
    result = subprocess.run(
        [TRADEFLEET, "backtest", str(manifest), "--journal", str(journal), "--engine"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "error: spec.strategy: ensemble could not start: strategy asked for a 1800s" in (
        result.stderr
    )
    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("failed",)]


# -- prop-firm -----------------------------------------------------------------------------------


def _risk(*risk: dict[str, Any]) -> dict[str, str]:
    return _errors(_manifest(risk=list(risk)))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_daily_loss": 0.2, "max_total_loss": 0.1}, "max_daily_loss"),
        ({"max_daily_loss": 0.2}, "max_daily_loss"),  # the preset's total is 10%
        ({"max_total_loss": 0.04}, "max_total_loss"),  # the preset's daily is 5%
    ],
)
def test_prop_firm_daily_loss_above_the_total_is_refused(
    params: dict[str, float], field: str
) -> None:
    errors = _risk({"name": "prop-firm", "params": params})
    assert list(errors) == [f"spec.risk[0].params.{field}"]
    assert "exceeds the total loss limit" in errors[f"spec.risk[0].params.{field}"]


def test_prop_firm_limits_that_agree_pass() -> None:
    assert _risk({"name": "prop-firm", "params": {"max_daily_loss": 0.1}}) == {}
    assert _risk({"name": "prop-firm", "params": {"preset": "ftmo-1step"}}) == {}


# -- the chain's order: a sizer before what cuts sizes --------------------------------------------


@pytest.mark.parametrize("cutter", ["circuit-breaker", "probation", "quality-guard", "prop-firm"])
def test_a_size_cutter_before_the_sizer_is_refused_naming_its_place(cutter: str) -> None:
    """circuit-breaker's tier-1 cut (probation's and quality-guard's shares, prop-firm's worst
    case) decide on the order's size: before the sizer they saw unsized orders and cut nothing."""
    sizer = {"name": "fixed-fractional", "params": {}}
    errors = _risk({"name": "fixed-size", "params": {"quantity": 1}}, sizer)
    assert errors == {}
    errors = _risk({"name": "pre-trade", "params": {}}, {"name": cutter, "params": {}}, sizer)
    assert errors == {
        "spec.risk[1]": f"{cutter} decides on the order's size, but the sizer fixed-fractional "
        f"comes after it (spec.risk[2]): put a sizer before {cutter}"
    }
    assert _risk(sizer, {"name": cutter, "params": {}}) == {}
    # Without a sizer the strategy sizes its orders: nothing to refuse.
    assert _risk({"name": cutter, "params": {}}) == {}


# -- an ensemble's children ----------------------------------------------------------------------


def test_an_ensemble_childs_wrong_params_are_named_by_their_place_in_the_manifest() -> None:
    from tradefleet_plugins.strategies.ensemble import Ensemble
    from tradefleet_plugins.strategies.ensemble_params import EnsembleParams
    from tradefleet_runtime.errors import SpecError

    params = EnsembleParams(
        children=[
            {"name": "ema-cross", "params": {"fast": 50, "slow": 20}},  # type: ignore[list-item]
            {"name": "ema-cross"},  # type: ignore[list-item]
        ],
        quorum=1,
    )
    with pytest.raises(SpecError) as refused:
        Ensemble(params)
    assert [e.field for e in refused.value.errors] == [
        "spec.strategy.params.children[0].params.slow"
    ]
    unknown = EnsembleParams(children=[{"name": "no-such"}], quorum=1)  # type: ignore[list-item]
    with pytest.raises(SpecError) as missing:
        Ensemble(unknown)
    assert [e.field for e in missing.value.errors] == ["spec.strategy.params.children[0].name"]
