"""Walk-forward reruns: idempotent, resumable to the same counts; windows too short refused.

The same completed `walkforward` command run twice added 40 more trials to each finished window
(40 -> 80) and chose other params; `--trials N` now means N trials per window in all. A first
window no longer than the strategy's warm-up traded no bar in any trial, and its "best" came
from a tie of zeros; it is refused, and a window whose trials all trade nothing chooses none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.test_optimize import ROOT, eurusd_manifest
from tradefleet_runtime import cli
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.optimize.search import executor
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.optimize.walkforward import WalkForwardResult, make_windows, walk_forward
from tradefleet_runtime.optimize.worker import Evaluation, Task, evaluate, load_timeline

SPACE = {"fast": {"int": [6, 30]}, "slow": {"int": [48, 120, 8]}}
TRIALS = 5
# slow from 48 to 192: the shortest warm-up the space asks for is 48 bars.
SLOW_SPACE = {"fast": {"int": [6, 36, 6]}, "slow": {"int": [48, 192, 24]}}


def _walk(
    study: Path,
    train: int = 1500,
    test: int = 1000,
    space: dict[str, Any] = SPACE,
    sampler: str = "random",
    windows: int = 2,
) -> WalkForwardResult:
    manifest = eurusd_manifest()
    timeline = load_timeline(manifest, str(ROOT))
    with executor(1) as pool:
        return walk_forward(
            manifest=manifest,
            base_dir=str(ROOT),
            space=parse_space(space),
            timeline=timeline,
            windows=make_windows(len(timeline), train, test, anchored=False)[:windows],
            study_path=study,
            study_prefix="wf",
            pool=pool,
            sampler=sampler,
            trials=TRIALS,
            seed=5,
        )


def _summary(result: WalkForwardResult) -> list[tuple[int, int, Any, Any]]:
    return [
        (
            w.search.done,
            w.search.ran,
            w.search.best_params,
            w.out_of_sample.figures if w.out_of_sample is not None else None,
        )
        for w in result.windows
    ]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_same_walkforward_again_runs_nothing_and_gives_the_same_result(
    sampler: str, tmp_path: Path
) -> None:
    study = tmp_path / "s.jsonl"
    first = _walk(study, sampler=sampler)
    again = _walk(study, sampler=sampler)
    assert [(done, ran) for done, ran, _, _ in _summary(first)] == [(TRIALS, TRIALS)] * 2
    assert [(done, ran) for done, ran, _, _ in _summary(again)] == [(TRIALS, 0)] * 2
    assert [s[2:] for s in _summary(again)] == [s[2:] for s in _summary(first)]
    assert again.out_of_sample_value == first.out_of_sample_value


def _interrupting_at(count: int) -> Callable[[Task], Evaluation]:
    calls = []

    def interrupted(task: Task) -> Evaluation:
        calls.append(task)
        if len(calls) == count:
            raise KeyboardInterrupt
        return evaluate(task)

    return interrupted


def test_an_interrupted_walkforward_resumed_has_the_trials_of_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradefleet_runtime.optimize import search

    whole = _walk(tmp_path / "whole.jsonl")
    study = tmp_path / "cut.jsonl"
    # Interrupted in the second window's search, after its second trial.
    monkeypatch.setattr(search, "evaluate", _interrupting_at(TRIALS + 3))
    with pytest.raises(KeyboardInterrupt):
        _walk(study)
    monkeypatch.undo()
    resumed = _walk(study)
    assert [w.search.done for w in resumed.windows] == [TRIALS, TRIALS]
    assert [w.search.done for w in resumed.windows] == [w.search.done for w in whole.windows]
    # The first window was done: it ran none and chose what the uninterrupted run chose.
    assert resumed.windows[0].search.ran == 0
    assert resumed.windows[0].search.best_params == whole.windows[0].search.best_params


def test_a_train_no_longer_than_the_warm_up_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    study = tmp_path / "s.jsonl"
    with pytest.raises(SpecError) as refused:
        _walk(study, train=48, test=3000, space=SLOW_SPACE, sampler="grid")
    (error,) = refused.value.errors
    assert error.field == "--train"
    assert "warm-up of 48 bars" in error.message and "slow=48" in error.message
    assert not study.exists()


def test_a_window_whose_trials_all_trade_nothing_chooses_no_params(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 50 bars: only slow 48 warms up inside them, with 2 bars left, and no set trades. Its
    # "best" was a tie of zeros, broken by the params' text; now it chooses none, says so,
    # and its test bars are left out of the out-of-sample report.
    bot, space, out = tmp_path / "bot.yaml", tmp_path / "space.yaml", tmp_path / "wf.json"
    bot.write_text(json.dumps(eurusd_manifest()))
    space.write_text(json.dumps(SLOW_SPACE))
    argv = ["walkforward", str(bot), "--space", str(space), "--sampler", "grid"]
    argv += ["--train", "50", "--test", "3000", "--jobs", "1"]
    argv += ["--study", str(tmp_path / "s.jsonl"), "--out", str(out), "--json"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    saved = json.loads(out.read_text())
    first = saved["windows"][0]
    assert first["params"] is None and first["out_of_sample_figures"] is None
    assert (first["trials"], first["trials_ranked"], first["trials_without_trades"]) == (42, 0, 42)
    assert all(w["params"] is not None for w in saved["windows"][1:])
    warned = " ".join(captured.err.split())
    assert "window 0 chose no params: none of its 42 in-sample trial(s)" in warned
    assert "its 3000 test bars (50-3050) are left out" in warned
    tested = sum(w["out_of_sample"]["end"] - w["out_of_sample"]["start"] for w in saved["windows"])
    assert saved["out_of_sample"]["bars"] == tested - 3000
