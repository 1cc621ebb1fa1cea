"""`--trials N` counts a study's trials in all, and a resumed study draws new points.

The same random command run twice ran 100 trials of which only 49 points were distinct: the
second run's sampler, rebuilt from the same seed, drew the first run's points again. Now a
rerun of a finished command runs nothing, and a study resumed to run more continues its
sampler with a seed of its own (``resumed_seed``), so its new trials are new points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import ROOT, eurusd_manifest
from tradefleet_runtime.optimize.search import (
    SearchConfig,
    SearchResult,
    executor,
    open_storage,
    resumed_seed,
    run_search,
)
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.optimize.worker import Evaluation, Task

# A continuous range: two draws of the same point are the same sampler state, not chance.
SPACE = {
    "fast": {"int": [2, 60]},
    "slow": {"int": [100, 300]},
    "stop_loss_pct": {"float": [0.001, 0.2]},
}


def _scored(task: Task) -> Evaluation:
    sharpe = -abs(float(task.params["stop_loss_pct"]) - 0.05) - abs(task.params["fast"] - 20) / 100
    return Evaluation({"sharpe": sharpe, "trades": 5, "net_pnl": sharpe}, (1, 2), 0)


def _search(
    study: Path, sampler: str, trials: int | None, monkeypatch: pytest.MonkeyPatch
) -> SearchResult:
    from tradefleet_runtime.optimize import search

    monkeypatch.setattr(search, "evaluate", _scored)
    config = SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space(SPACE),
        study_path=study,
        study_name="sampling",
        sampler=sampler,
        trials=trials,
        seed=3,
    )
    with executor(1) as pool:
        return run_search(config, pool)


def _points(study: Path) -> list[tuple[Any, ...]]:
    loaded = optuna.load_study(study_name="sampling", storage=open_storage(study))
    trials = sorted(loaded.trials, key=lambda t: t.number)
    return [tuple(sorted(t.params.items())) for t in trials]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_same_command_again_runs_nothing(
    sampler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "s.jsonl"
    first = _search(study, sampler, 6, monkeypatch)
    again = _search(study, sampler, 6, monkeypatch)
    assert (first.ran, again.ran, again.done) == (6, 0, 6)
    assert again.best_params == first.best_params
    assert "none to run" in " ".join(again.notes)
    assert len(_points(study)) == 6


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_study_draws_new_points(
    sampler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TPE's first 10 trials are random draws too: a rebuilt sampler repeated them.
    study = tmp_path / "s.jsonl"
    _search(study, sampler, 5, monkeypatch)
    more = _search(study, sampler, 10, monkeypatch)
    assert (more.ran, more.done) == (5, 10)
    points = _points(study)
    assert len(points) == 10
    assert len(set(points)) == 10  # the five new points are not the first five again


def test_a_resumed_study_is_as_reproducible_as_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = []
    for copy in ("a", "b"):
        study = tmp_path / f"{copy}.jsonl"
        _search(study, "random", 4, monkeypatch)
        _search(study, "random", 9, monkeypatch)
        runs.append(_points(study))
    assert runs[0] == runs[1]


def test_a_new_study_keeps_its_seed() -> None:
    # What a seed gave before resuming existed is what it gives a new study.
    assert resumed_seed(7, 0) == 7
    assert resumed_seed(7, 5) != resumed_seed(7, 6) != 7
    assert 0 <= resumed_seed(7, 5) < 2**32
