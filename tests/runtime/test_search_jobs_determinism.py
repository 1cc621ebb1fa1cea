"""`tradefleet optimize`: the same seed gives the same trials and best whatever `--jobs`.

A user who reruns a search on a machine with more cores expects what the first run found.
The search asks trials in order, keeps at most ``parallel`` of TPE's in flight (a setting of
the search, not of the machine) and tells them in trial order, so neither the number of
processes nor which of them finishes first changes what the sampler knows at each ask.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import ROOT, eurusd_manifest
from tradefleet_runtime import cli
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.optimize.commands import _optimize_parser
from tradefleet_runtime.optimize.search import (
    DEFAULT_PARALLEL,
    SearchConfig,
    SearchResult,
    executor,
    open_storage,
    run_search,
)
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.optimize.walkforward import make_windows, walk_forward
from tradefleet_runtime.optimize.worker import Evaluation, Task, load_timeline

# 26 x 9 x 2 points: TPE has room to pick other points than random would.
SPACE = {
    "fast": {"int": [5, 30]},
    "slow": {"int": [40, 120, 10]},
    "allow_short": {"choice": [True, False]},
}
# Past TPE's 10 random start-up trials and its default 8 in flight: most trials are TPE's own.
TRIALS = 24


def _config(study: Path, sampler: str, **kwargs: Any) -> SearchConfig:
    return SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space(SPACE),
        study_path=study,
        study_name="jobs-check",
        sampler=sampler,
        metric="sharpe",
        trials=TRIALS,
        seed=11,
        **kwargs,
    )


def _trials(study: Path) -> list[tuple[int, str, dict[str, Any], float | None]]:
    """(number, state, params, value) of every trial, by number."""
    loaded = optuna.load_study(study_name="jobs-check", storage=open_storage(study))
    return [
        (t.number, t.state.name, dict(t.params), t.value)
        for t in sorted(loaded.trials, key=lambda t: t.number)
    ]


def _search_with_processes(study: Path, sampler: str, jobs: int) -> SearchResult:
    manifest = eurusd_manifest()
    with executor(jobs, manifest, str(ROOT)) as pool:
        return run_search(_config(study, sampler), pool, jobs=jobs)


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_one_and_two_processes_give_the_same_trials_for_a_seed(
    sampler: str, tmp_path: Path
) -> None:
    results = {}
    trials = {}
    for jobs in (1, 2):
        study = tmp_path / f"jobs{jobs}.jsonl"
        results[jobs] = _search_with_processes(study, sampler, jobs)
        trials[jobs] = _trials(study)
    assert len(trials[1]) == TRIALS
    assert trials[2] == trials[1]  # the same params, values, states, trial by trial
    assert results[2].best_params == results[1].best_params
    assert results[2].best_value == results[1].best_value
    assert results[1].complete > 0


# -- trials finishing in any order ------------------------------------------------------------


def _scored(task: Task) -> Evaluation:
    """A trial of a few milliseconds whose value has a peak TPE can find, finishing in an
    order that depends on its params (a later trial often finishes before an earlier one)."""
    fast, slow = int(task.params["fast"]), int(task.params["slow"])
    time.sleep(0.001 * ((fast * 7 + slow) % 5))
    sharpe = -((fast - 17) ** 2) / 50 - ((slow - 90) / 40) ** 2
    sharpe += 0.3 if task.params["allow_short"] else 0.0
    return Evaluation({"sharpe": sharpe, "trades": 10, "net_pnl": sharpe * 1_000}, (1, 2), 0)


def _search_scrambled(
    study: Path, sampler: str, jobs: int, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> tuple[SearchResult, list[tuple[int, int]]]:
    """The search on ``jobs`` threads whose trials finish out of order; and its progress."""
    from tradefleet_runtime.optimize import search

    monkeypatch.setattr(search, "evaluate", _scored)
    told: list[tuple[int, int]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        result = run_search(
            _config(study, sampler, **kwargs),
            pool,
            jobs=jobs,
            progress=lambda done, total: told.append((done, total)),
        )
    return result, told


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_the_order_trials_finish_in_changes_no_trial(
    sampler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = {}
    for jobs in (1, 3, 5):
        study = tmp_path / f"jobs{jobs}.jsonl"
        result, told = _search_scrambled(study, sampler, jobs, monkeypatch)
        chosen[jobs] = (_trials(study), result.best_params, result.best_value)
        # The progress bar still counts every trial, one at a time, up to the total.
        assert told == [(done, TRIALS) for done in range(1, TRIALS + 1)]
    assert chosen[3] == chosen[1]
    assert chosen[5] == chosen[1]


def test_parallel_one_asks_each_trial_knowing_every_value_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --parallel 1 is a plain sequential ask-and-tell (what --jobs 1 searched before
    # --parallel existed), whatever --jobs.
    result, _ = _search_scrambled(tmp_path / "s.jsonl", "tpe", 4, monkeypatch, parallel=1)
    sequential = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=11, constant_liar=False), direction="maximize"
    )
    for _ in range(TRIALS):
        trial = sequential.ask()
        params = {
            "fast": trial.suggest_int("fast", 5, 30),
            "slow": trial.suggest_int("slow", 40, 120, step=10),
            "allow_short": trial.suggest_categorical("allow_short", [True, False]),
        }
        value = _scored(Task({}, ".", params)).figures["sharpe"]
        assert value is not None
        sequential.tell(trial, value)
    expected = [(t.number, "COMPLETE", t.params, t.value) for t in sequential.trials]
    assert _trials(tmp_path / "s.jsonl") == expected
    assert result.best_params == sequential.best_params
    assert "ran at most 1 trial(s) at once (--parallel): 3 of the 4 processes" in " ".join(
        result.notes
    )


def test_a_parallel_below_one_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with executor(1) as pool, pytest.raises(SpecError) as refused:
        run_search(_config(tmp_path / "s.jsonl", "tpe", parallel=0), pool)
    assert [e.field for e in refused.value.errors] == ["--parallel"]


def test_the_command_takes_parallel_and_refuses_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(json.dumps(eurusd_manifest()))
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(SPACE))
    argv = ["optimize", str(manifest), "--space", str(space), "--jobs", "1", "--trials", "3"]
    assert cli.main([*argv, "--parallel", "0"]) == 2
    assert "--parallel" in capsys.readouterr().err
    study = tmp_path / "s.jsonl"
    assert cli.main([*argv, "--parallel", "2", "--study", str(study), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trials_complete"] == 3
    # The command's default (kept there so that --help needs no optuna) is the search's.
    assert _optimize_parser().parse_args(argv[1:]).parallel == DEFAULT_PARALLEL


# -- a search that ends early ------------------------------------------------------------------


def _failing_at(count: int, error: BaseException) -> tuple[Any, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def evaluate(task: Task) -> Evaluation:
        calls.append(dict(task.params))
        if len(calls) == count:
            raise error
        return _scored(task)

    return evaluate, calls


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), ValueError("a bug")], ids=["ctrl-c", "a-bug"]
)
def test_with_one_process_an_error_ends_the_search_at_its_trial(
    error: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TPE asks 8 trials before telling the first; in one process a trial still runs only when
    # the search waits for it, so the third trial's error ends the search before a fourth
    # runs, and no trial is left running in the study file.
    from tradefleet_runtime.optimize import search

    evaluate, calls = _failing_at(3, error)
    monkeypatch.setattr(search, "evaluate", evaluate)
    study = tmp_path / "s.jsonl"
    with executor(1) as pool, pytest.raises(type(error)):
        run_search(_config(study, "tpe"), pool)
    assert len(calls) == 3
    states = [state for _, state, _, _ in _trials(study)]
    assert states[:2] == ["COMPLETE", "COMPLETE"]
    assert set(states[2:]) == {"FAIL"}  # the failed trial and those asked after it


# -- walk-forward ------------------------------------------------------------------------------


def test_walk_forward_searches_the_same_trials_with_one_or_two_processes(tmp_path: Path) -> None:
    manifest = eurusd_manifest()
    timeline = load_timeline(manifest, str(ROOT))
    windows = make_windows(len(timeline), 1500, 1000, anchored=False)[:2]
    picked = {}
    for jobs in (1, 2):
        study = tmp_path / f"jobs{jobs}.jsonl"
        with executor(jobs, manifest, str(ROOT)) as pool:
            result = walk_forward(
                manifest=manifest,
                base_dir=str(ROOT),
                space=parse_space(SPACE),
                timeline=timeline,
                windows=windows,
                study_path=study,
                study_prefix="wf",
                pool=pool,
                jobs=jobs,
                sampler="tpe",
                trials=TRIALS,
                seed=11,
            )
        storage = open_storage(study)
        studies = {
            name: [
                (t.number, t.state.name, t.params, t.value)
                for t in optuna.load_study(study_name=name, storage=storage).trials
            ]
            for name in optuna.get_all_study_names(storage)
        }
        picked[jobs] = (studies, [w.search.best_params for w in result.windows])
    assert len(picked[1][0]) == 2
    assert picked[2] == picked[1]
