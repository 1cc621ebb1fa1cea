"""Trials cut short by Ctrl-C, SIGTERM or a killed run are not failures: a resumed search runs
their points again and no longer counts them as failed.

A grid interrupted at its third point and resumed ran every point, yet its study said "4
complete, ..., 1 failed" on that run and every later one; a TPE search stopped with 8 trials
in flight said 8 failed. Only a trial's own error (a bug, a worker lost) counts as a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import SMALL_GRID, _config
from tradefleet_runtime.optimize import search
from tradefleet_runtime.optimize.commands import Terminated
from tradefleet_runtime.optimize.search import INTERRUPTED, executor, open_storage, run_search
from tradefleet_runtime.optimize.worker import Evaluation, Task, evaluate


def _stopping_at(count: int, error: BaseException) -> Callable[[Task], Evaluation]:
    calls: list[Task] = []

    def stopped(task: Task) -> Evaluation:
        calls.append(task)
        if len(calls) == count:
            raise error
        return evaluate(task)

    return stopped


def _cut_short(
    study: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, at: int, **kwargs: Any
) -> None:
    monkeypatch.setattr(search, "evaluate", _stopping_at(at, error))
    with executor(1) as pool, pytest.raises(type(error)):
        run_search(_config(study, SMALL_GRID, **kwargs), pool)
    monkeypatch.undo()


def _trials(study: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="opt-check", storage=open_storage(study)).trials


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), Terminated()], ids=["ctrl-c", "sigterm"])
def test_a_resumed_grid_does_not_count_the_point_an_interruption_cut_short_as_failed(
    stop: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = tmp_path / "s.jsonl"
    _cut_short(study, monkeypatch, stop, at=3)
    with executor(1) as pool:
        resumed = run_search(_config(study, SMALL_GRID), pool)
    # Its point ran again, with the one never reached: every point done, none failed.
    assert (resumed.ran, resumed.complete, resumed.failed) == (2, 4, 0)
    assert resumed.counts().endswith("0 failed")
    assert resumed.as_json()["trials_failed"] == 0
    (cut,) = [t for t in _trials(study) if t.state.name == "FAIL"]
    assert cut.user_attrs[INTERRUPTED] == f"the search was stopped ({type(stop).__name__})"
    with executor(1) as pool:
        again = run_search(_config(study, SMALL_GRID), pool)
    assert (again.ran, again.failed) == (0, 0)  # and on every later run


def test_the_trials_in_flight_when_a_search_is_stopped_are_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TPE has 8 trials in flight: Ctrl-C in the first leaves it and the 7 asked after it.
    study = tmp_path / "s.jsonl"
    space = {"fast": {"int": [6, 30]}, "slow": {"int": [48, 120, 8]}}

    def config() -> search.SearchConfig:
        return _config(study, space, sampler="tpe", trials=10, seed=3)

    monkeypatch.setattr(search, "evaluate", _stopping_at(1, KeyboardInterrupt()))
    with executor(1) as pool, pytest.raises(KeyboardInterrupt):
        run_search(config(), pool)
    monkeypatch.undo()
    assert [t.state.name for t in _trials(study)] == ["FAIL"] * 8
    with executor(1) as pool:
        resumed = run_search(config(), pool)
    assert (resumed.ran, resumed.done, resumed.failed) == (10, 10, 0)
    assert all(INTERRUPTED in t.user_attrs for t in _trials(study)[:8])


def test_a_trial_a_killed_run_left_running_is_not_failed(tmp_path: Path) -> None:
    study = tmp_path / "s.jsonl"
    with executor(1) as pool:
        run_search(_config(study, SMALL_GRID, trials=2), pool)
    # A run killed (SIGKILL, a node lost) between asking a trial and telling it.
    loaded = optuna.load_study(study_name="opt-check", storage=open_storage(study))
    loaded.ask()
    with executor(1) as pool:
        resumed = run_search(_config(study, SMALL_GRID), pool)
    assert (resumed.complete, resumed.failed) == (4, 0)
    assert resumed.notes[0] == "1 trial(s) a killed run left running were ended as interrupted"
    (left,) = [t for t in _trials(study) if t.state.name == "FAIL"]
    assert left.user_attrs[INTERRUPTED] == "left running by a run that was killed"


def test_a_trials_own_error_is_still_counted_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug ends the search at its trial; that trial failed (the resumed grid runs it again).
    study = tmp_path / "s.jsonl"
    _cut_short(study, monkeypatch, ValueError("a bug"), at=3)
    (failed,) = [t for t in _trials(study) if t.state.name == "FAIL"]
    assert INTERRUPTED not in failed.user_attrs
    with executor(1) as pool:
        resumed = run_search(_config(study, SMALL_GRID), pool)
    assert (resumed.ran, resumed.complete, resumed.failed) == (2, 4, 1)
