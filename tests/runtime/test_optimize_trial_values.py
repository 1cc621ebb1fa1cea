"""What a search says of its trials: a stepped float as its range writes it, and the trials it
ran — not the sets the params model refused before running them.

A random or TPE sampler's point of a stepped float range is ``low + k * step``, whose sum
carries float noise (``0.07 + 2 * 0.01`` is ``0.09000000000000001``): the best params were
printed, and written into a manifest, with it. And ``trials_run`` (with the rate line's
trials/s) counted the sets the params model refused, which never ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import ROOT, eurusd_manifest
from tradefleet_runtime.optimize.search import SearchConfig, executor, run_search, suggest
from tradefleet_runtime.optimize.space import FloatRange, parse_space

# Every point of this range but its low carries noise when summed as low + k * step.
NOISY = {"float": [0.07, 0.13, 0.01]}


@pytest.mark.parametrize(
    "sampler", [optuna.samplers.RandomSampler(seed=3), optuna.samplers.TPESampler(seed=3)]
)
def test_a_samplers_stepped_float_is_a_point_of_the_range_as_written(
    sampler: optuna.samplers.BaseSampler,
) -> None:
    space = parse_space({"stop_loss_pct": NOISY, "fast": {"int": [2, 5]}})
    dimension = space.dimensions["stop_loss_pct"]
    assert isinstance(dimension, FloatRange)
    written = set(dimension.values())
    assert written == {0.07, 0.08, 0.09, 0.1, 0.11, 0.12, 0.13}
    study = optuna.create_study(sampler=sampler)
    seen = set()
    for _ in range(40):
        trial = study.ask()
        params = suggest(trial, space)
        seen.add(params["stop_loss_pct"])
        study.tell(trial, 0.0)
    assert seen <= written, f"points with float noise: {sorted(seen - written)}"
    assert len(seen) > 3  # the sampler did reach the noisy points


def test_the_best_params_of_a_random_search_carry_no_float_noise(tmp_path: Path) -> None:
    config = SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space(
            {"stop_loss_pct": NOISY, "take_profit_pct": {"float": [0.01, 0.03, 0.01]}}
        ),
        study_path=tmp_path / "s.jsonl",
        study_name="noise-check",
        sampler="random",
        trials=12,
        seed=2,  # its best is the range's third point, 0.07 + 2 * 0.01
    )
    with executor(1) as pool:
        result = run_search(config, pool)
    assert result.best_params == {"stop_loss_pct": 0.09, "take_profit_pct": 0.01}
    assert repr(result.best_params["stop_loss_pct"]) == "0.09"


def test_trials_run_counts_only_the_sets_that_ran(tmp_path: Path) -> None:
    # slow must exceed fast: (36, 24), (48, 24), (24, 24) and (48, 48) are refused unrun.
    space: dict[str, Any] = {"fast": {"int": [12, 48, 12]}, "slow": {"int": [24, 48, 24]}}
    config = SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space(space),
        study_path=tmp_path / "s.jsonl",
        study_name="ran-check",
        sampler="grid",
    )
    with executor(1) as pool:
        result = run_search(config, pool)
    assert (result.complete, result.invalid) == (4, 4)
    assert result.as_json()["trials_run"] == 4
    assert result.ran == result.complete


@pytest.mark.parametrize(
    ("bounds", "points"),
    [
        ([1.2e-7, 1.00000012, 0.5], [1.2e-07, 0.50000012, 1.00000012]),
        ([1.23456789, 2.23456789, 0.5], [1.23456789, 1.73456789, 2.23456789]),
    ],
    ids=["fine-low", "long-low"],
)
def test_a_ranges_points_keep_the_digits_its_low_is_written_with(
    bounds: list[float], points: list[float]
) -> None:
    # R51: rounding to the step's decimals alone cut 1.00000012 to 1.0000001.
    space = parse_space({"stop_loss_pct": {"float": bounds}})
    dimension = space.dimensions["stop_loss_pct"]
    assert isinstance(dimension, FloatRange)
    assert dimension.values() == points
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(12):
        trial = study.ask()
        assert suggest(trial, space)["stop_loss_pct"] in points
        study.tell(trial, 0.0)
