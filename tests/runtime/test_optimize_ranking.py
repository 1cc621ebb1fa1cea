"""A param set that never trades is not ranked, whatever the metric; ties break on numbers.

A run without a trade has a Sharpe of 0, above every losing set, and a drawdown of 0, the best
there is: `--metric max_drawdown_pct` chose fast 10 / slow 3100, a set that never traded. Those
are figures of standing aside, not of the params.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.test_optimize import ROOT, eurusd_manifest
from tradefleet_runtime import cli
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.optimize.search import (
    METRICS,
    SearchConfig,
    SearchResult,
    executor,
    run_search,
)
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.optimize.worker import Evaluation, Task

# A losing set that trades, and one that never does (which the figures leave at zero).
LOSER = {
    "trades": 12,
    "sharpe": -0.8,
    "sortino": -1.1,
    "net_pnl": -900.0,
    "return_pct": -0.9,
    "profit_factor": 0.7,
    "win_rate": 0.25,
    "max_drawdown_pct": 4.0,
}
IDLE = {
    "trades": 0,
    "sharpe": 0.0,
    "sortino": 0.0,
    "net_pnl": 0.0,
    "return_pct": 0.0,
    "profit_factor": None,
    "win_rate": 0.0,
    "max_drawdown_pct": 0.0,
}


def _ranked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: dict[int, dict[str, Any]],
    metric: str,
    **kwargs: Any,
) -> SearchResult:
    """A grid over ``fast`` whose trials score ``figures[fast]``."""
    from tradefleet_runtime.optimize import search

    def scored(task: Task) -> Evaluation:
        return Evaluation(figures[int(task.params["fast"])], (None, None), 0)

    monkeypatch.setattr(search, "evaluate", scored)
    config = SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space({"fast": {"choice": sorted(figures)}}),
        study_path=tmp_path / "study.jsonl",
        study_name="ranking",
        sampler="grid",
        metric=metric,
    )
    with executor(1) as pool:
        return run_search(config, pool, **kwargs)


@pytest.mark.parametrize("metric", list(METRICS))
def test_a_set_without_trades_is_not_ranked_by_any_metric(
    metric: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _ranked(tmp_path, monkeypatch, {5: IDLE, 6: LOSER}, metric)
    assert result.best_params == {"fast": 6}
    assert (result.complete, result.no_trades, result.done) == (1, 1, 2)
    assert result.as_json()["trials_without_trades"] == 1
    assert f"1 without trades (no {metric})" in result.counts()


@pytest.mark.parametrize("metric", ["sharpe", "max_drawdown_pct"])
def test_a_search_where_no_set_traded_names_no_best(
    metric: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SpecError) as refused:
        _ranked(tmp_path, monkeypatch, {5: IDLE, 6: IDLE}, metric)
    (error,) = refused.value.errors
    assert error.field == "--space"
    assert "2 trial(s) ran without a trade" in error.message
    assert "no params are best" in error.message


def test_without_require_best_the_result_says_there_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _ranked(tmp_path, monkeypatch, {5: IDLE, 6: IDLE}, "sharpe", require_best=False)
    assert result.best_params is None and math.isnan(result.best_value)
    assert (result.no_trades, result.done) == (2, 2)
    assert result.as_json()["best_value"] is None
    with pytest.raises(SpecError):
        result.chosen_params()


def test_ties_break_on_the_params_as_numbers_not_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Equal values and equal P&L: the smaller fast wins. As text "fast=10" < "fast=6".
    result = _ranked(tmp_path, monkeypatch, {6: LOSER, 10: LOSER, 40: LOSER}, "sharpe")
    assert result.best_params == {"fast": 6}


def test_max_drawdown_on_real_data_chooses_a_set_that_trades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The probe's case: slow 3100 and 6100 never cross on a year of hourly bars.
    bot, space = tmp_path / "bot.yaml", tmp_path / "space.yaml"
    bot.write_text(json.dumps(eurusd_manifest()))
    space.write_text(
        json.dumps({"fast": {"int": [10, 50, 20]}, "slow": {"int": [100, 6100, 3000]}})
    )
    argv = ["optimize", str(bot), "--space", str(space), "--sampler", "grid", "--jobs", "1"]
    argv += ["--metric", "max_drawdown_pct", "--study", str(tmp_path / "s.jsonl"), "--json"]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["best_figures"]["trades"] > 0
    assert printed["best_params"]["slow"] == 100
    assert printed["trials_without_trades"] == 6
    assert printed["trials_complete"] == 3
