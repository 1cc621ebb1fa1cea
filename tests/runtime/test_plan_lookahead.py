"""The vectorised path refuses a target-positions plan that reads bars after the one it decides
at: the backtest (and a sweep's trial) runs on the event engine instead, whose strategy sees
only the bars up to now. Before, a plan peeking one bar ahead turned a losing backtest into a
large profit, with nothing said."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.runtime.test_vector_backtest import NOTE, _backtest, _bot, _gapped, _write
from tradefleet_plugins.strategies.ema_cross import EmaCross
from tradefleet_runtime.bar_columns import BarColumns
from tradefleet_runtime.capabilities import TargetPlan
from tradefleet_runtime.optimize.plan_check import plan_looks_ahead
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry


def _foresight(columns: BarColumns) -> TargetPlan:
    """Long when the next close is higher: one bar of foresight."""
    ahead = np.append(columns.close[1:], columns.close[-1])
    return TargetPlan(np.sign(ahead - columns.close))


def _whole_mean(columns: BarColumns) -> TargetPlan:
    """Long above the whole run's mean: every bar reads the last one."""
    return TargetPlan(np.where(columns.close > columns.close.mean(), 1.0, -1.0))


def _rolled(columns: BarColumns) -> TargetPlan:
    """np.roll's wrap-around: the last bars read the first, the others the next one."""
    return TargetPlan(np.sign(np.roll(columns.close, -3) - columns.close))


def _momentum(columns: BarColumns) -> TargetPlan:
    """Causal: long after a rise over the last 5 bars (flat before)."""
    target = np.zeros(len(columns))
    target[5:] = np.sign(columns.close[5:] - columns.close[:-5])
    return TargetPlan(target)


@pytest.mark.parametrize("plan_of", [_foresight, _whole_mean, _rolled])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plans_that_read_later_bars_are_caught(plan_of: Any, seed: int) -> None:
    columns = _gapped(5_000, seed)
    why = plan_looks_ahead(plan_of, columns, plan_of(columns).target, 0)
    assert why is not None and "reads bars after the one it decides at" in why


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_causal_plans_pass(seed: int) -> None:
    columns = _gapped(20_000, seed)
    assert plan_looks_ahead(_momentum, columns, _momentum(columns).target, 5) is None
    registry = PluginRegistry.discover()
    for fast, slow in ((3, 8), (8, 21), (20, 60)):
        for allow_short in (True, False):
            strategy = registry.build(
                PluginKind.STRATEGY,
                "ema-cross",
                {"fast": fast, "slow": slow, "allow_short": allow_short},
                ["strategy"],
            )
            plan = strategy.target_positions(columns)
            assert plan is not None
            why = plan_looks_ahead(strategy.target_positions, columns, plan.target, slow)
            assert why is None, (fast, slow, allow_short)


def test_a_short_run_is_checked_on_what_it_has() -> None:
    columns = _gapped(30, 5)
    assert plan_looks_ahead(_momentum, columns, _momentum(columns).target, 5) is None
    assert plan_looks_ahead(_foresight, columns, _foresight(columns).target, 0) is not None
    assert plan_looks_ahead(_foresight, columns.take(slice(0, 1)), np.zeros(1), 0) is None


def test_a_backtest_whose_plan_peeks_runs_on_the_engine_and_says_so(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    csv = _write(_gapped(3_000, seed=4), tmp_path / "syn.csv")
    manifest = _bot(tmp_path, csv)
    honest, err = _backtest(capsys, manifest, tmp_path / "honest.sqlite")
    assert NOTE in err

    def peeking(self: EmaCross, columns: BarColumns) -> TargetPlan:
        return TargetPlan(_foresight(columns).target, "cross", "up", "down")

    monkeypatch.setattr(EmaCross, "target_positions", peeking)
    with caplog.at_level(logging.WARNING, logger="tradefleet.vector"):
        chosen, err = _backtest(capsys, manifest, tmp_path / "peeking.sqlite")
    assert NOTE not in err
    assert any("looks ahead" in record.getMessage() for record in caplog.records)
    # The engine's run: on_bar's trading, not the plan's foresight.
    assert json.loads(chosen) == json.loads(honest)
