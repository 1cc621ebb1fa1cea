"""A study resumes only with the seed (and, for TPE, the ``--parallel``) it was made with.

A user who reruns a finished random search with another ``--seed`` to see what it finds got
no trial run and the first seed's best printed as the answer: the study's trials are the
first seed's, and a finished study runs none. The resume is refused, naming the option and
the value that continues the study, without a byte written to the study file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import ROOT, eurusd_manifest
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.optimize.search import (
    SearchConfig,
    SearchResult,
    executor,
    open_storage,
    run_search,
)
from tradefleet_runtime.optimize.space import parse_space

SPACE = {"fast": {"int": [6, 24]}, "slow": {"int": [48, 96]}}
NAME = "seed-check"


def _search(study: Path, sampler: str, **kwargs: Any) -> SearchResult:
    config = SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space(SPACE),
        study_path=study,
        study_name=NAME,
        sampler=sampler,
        trials=3,
        **kwargs,
    )
    with executor(1) as pool:
        return run_search(config, pool)


def _refused(study: Path, sampler: str, **kwargs: Any) -> list[tuple[str, str]]:
    before = study.read_bytes()
    with pytest.raises(SpecError) as refused:
        _search(study, sampler, **kwargs)
    assert study.read_bytes() == before  # not a line appended
    return [(e.field, e.message) for e in refused.value.errors]


@pytest.mark.parametrize("sampler", ["random", "grid", "tpe"])
def test_a_finished_study_rerun_with_another_seed_is_refused_naming_the_seed(
    tmp_path: Path, sampler: str
) -> None:
    study = tmp_path / "s.jsonl"
    _search(study, sampler, seed=0)
    [(field, message)] = _refused(study, sampler, seed=7)
    assert field == "--seed"
    assert "made with --seed 0, not 7" in message
    assert "rerun with --seed 0 to continue it" in message
    # The seed it was made with resumes it (finished: nothing to run).
    again = _search(study, sampler, seed=0)
    assert (again.ran, again.done) == (0, 3)


def test_a_tpe_study_resumed_with_another_parallel_is_refused(tmp_path: Path) -> None:
    # TPE's trials in flight decide which trials it picks: another --parallel is another search.
    study = tmp_path / "s.jsonl"
    _search(study, "tpe", seed=1, parallel=2)
    [(field, message)] = _refused(study, "tpe", seed=1, parallel=8)
    assert field == "--parallel"
    assert "made with --parallel 2, not 8" in message


def test_parallel_is_not_part_of_a_blind_samplers_search(tmp_path: Path) -> None:
    # Random and grid pick their trials without looking at any value: --parallel changes none.
    study = tmp_path / "s.jsonl"
    _search(study, "random", seed=1, parallel=2)
    again = _search(study, "random", seed=1, parallel=8)
    assert (again.ran, again.done) == (0, 3)


def test_a_study_from_before_seeds_were_recorded_resumes_with_any_seed(tmp_path: Path) -> None:
    # Nothing in it says which seed made it: resumed as before, not refused.
    study = tmp_path / "s.jsonl"
    _search(study, "random", seed=0)
    loaded = optuna.load_study(study_name=NAME, storage=open_storage(study))
    older = {k: v for k, v in loaded.user_attrs["identity"].items() if k != "seed"}
    loaded.set_user_attr("identity", older)
    again = _search(study, "random", seed=7)
    assert (again.ran, again.done) == (0, 3)


def test_a_whole_grid_rerun_with_another_seed_names_the_same_best(tmp_path: Path) -> None:
    # R51: a grid's seed orders its points only; run to its end every seed holds them all.
    space = {"fast": {"int": [6, 12, 6]}, "slow": {"int": [48, 96, 48]}}
    config = SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space(space),
        study_path=tmp_path / "s.jsonl",
        study_name=NAME,
        sampler="grid",
        seed=0,
    )
    with executor(1) as pool:
        first = run_search(config, pool)
        again = run_search(replace(config, seed=7), pool)
    assert (again.ran, again.done, again.best_params) == (0, 4, first.best_params)
