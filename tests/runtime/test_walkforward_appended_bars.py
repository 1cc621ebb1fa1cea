"""A walk-forward rerun on a data file that gained the next bars keeps the windows it searched.

A user's CSV gains a month of bars and they rerun the same `walkforward` command with the same
study file. The study was refused (`spec.data: ... was made on other bars`): each window's
study recorded a hash of every bar. A window's in-sample trials are given only bars before its
end, so each window's study now records the hash of those: the windows whose bars did not
change keep their trials (they would be the same runs), new windows are searched, and a change
to a bar a window ran on is still refused, naming the window's end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import DATA, eurusd_manifest
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.optimize import worker
from tradefleet_runtime.optimize.search import WINDOW_BARS, executor, open_storage
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.optimize.walkforward import WalkForwardResult, make_windows, walk_forward
from tradefleet_runtime.optimize.worker import load_timeline

GRID = {"fast": {"int": [6, 12, 6]}, "slow": {"int": [24, 48, 24]}}
TRAIN, TEST = 1500, 1000
FIRST_PART = 4000  # bars in the file at first: three windows; all 6225: five
LINES = DATA.read_text().splitlines(keepends=True)  # a header, then a bar a line


def _write(path: Path, bars: int) -> None:
    path.write_text("".join(LINES[: 1 + bars]))


def _manifest(data: Path) -> dict[str, Any]:
    manifest = eurusd_manifest()
    manifest["spec"]["data"]["params"]["path"] = str(data)
    return manifest


def _walk(data: Path, study: Path, monkeypatch: pytest.MonkeyPatch) -> WalkForwardResult:
    # A command is a process of its own: this test's process must not keep the old bars.
    monkeypatch.setattr(worker, "_BARS", {})
    manifest = _manifest(data)
    timeline = load_timeline(manifest, str(data.parent))
    with executor(1) as pool:
        return walk_forward(
            manifest=manifest,
            base_dir=str(data.parent),
            space=parse_space(GRID),
            timeline=timeline,
            windows=make_windows(len(timeline), TRAIN, TEST, anchored=False),
            study_path=study,
            study_prefix="wf",
            pool=pool,
            sampler="grid",
        )


def _chosen(result: WalkForwardResult) -> list[tuple[int, int, Any, Any]]:
    return [(w.train.start, w.train.end, w.search.best_params, w.in_sample) for w in result.windows]


def test_appended_bars_keep_the_windows_searched_and_search_the_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, study = tmp_path / "EURUSD.csv", tmp_path / "wf.jsonl"
    _write(data, FIRST_PART)
    first = _walk(data, study, monkeypatch)
    assert [w.search.ran for w in first.windows] == [4, 4, 4]

    _write(data, len(LINES) - 1)  # the next bars appended
    resumed = _walk(data, study, monkeypatch)
    # The three windows searched keep their trials, run none again; two new ones are searched.
    assert [w.search.ran for w in resumed.windows] == [0, 0, 0, 4, 4]
    assert [w.search.done for w in resumed.windows] == [4] * 5
    assert _chosen(resumed)[:3] == _chosen(first)
    # What a walk-forward of the whole file from scratch chooses, window by window.
    fresh = _walk(data, tmp_path / "fresh.jsonl", monkeypatch)
    assert _chosen(resumed) == _chosen(fresh)
    assert resumed.out_of_sample_value == fresh.out_of_sample_value
    # The third window's test bars grew (1000 where 500 were left): its out-of-sample run
    # is the whole file's, not the first run's.
    assert [w.test.end - w.test.start for w in first.windows][-1] == 500
    assert resumed.windows[2].out_of_sample == fresh.windows[2].out_of_sample


def test_a_changed_bar_refuses_the_windows_that_ran_on_it_naming_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, study = tmp_path / "EURUSD.csv", tmp_path / "wf.jsonl"
    _write(data, FIRST_PART)
    _walk(data, study, monkeypatch)
    # Bar 2200 is in the second window's in-sample bars (1000-2500), after the first's.
    lines = LINES[: 1 + FIRST_PART]
    cells = lines[1 + 2200].split(",")
    cells[4] = f"{float(cells[4]) + 0.00001:.5f}"
    assert float(cells[3]) <= float(cells[4]) <= float(cells[2])
    lines[1 + 2200] = ",".join(cells)
    data.write_text("".join(lines))
    before = study.read_bytes()
    with pytest.raises(SpecError) as refused:
        _walk(data, study, monkeypatch)
    (error,) = refused.value.errors
    assert error.field == "spec.data"
    said = " ".join(error.message.split())
    assert "the study 'wf-window-1-1000-2500'" in said  # the first window was resumed
    assert "the bars up to this window's end (bar 2499, 2017-05-" in said
    assert "use another --study file or remove it" in said
    assert study.read_bytes() == before  # nothing written for the refused window


def _strip_window_bars(study: Path) -> None:
    """Make each window's study one written before the bars before its end were recorded."""
    storage = open_storage(study)
    for summary in optuna.get_all_study_summaries(storage):
        loaded = optuna.load_study(study_name=summary.study_name, storage=storage)
        identity = dict(loaded.user_attrs["identity"])
        identity.pop(WINDOW_BARS)
        loaded.set_user_attr("identity", identity)


def _window_bars_recorded(study: Path) -> list[bool]:
    storage = open_storage(study)
    return [
        WINDOW_BARS
        in optuna.load_study(study_name=s.study_name, storage=storage).user_attrs["identity"]
        for s in optuna.get_all_study_summaries(storage)
    ]


def test_an_earlier_window_study_is_refused_on_appended_bars_naming_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, study = tmp_path / "EURUSD.csv", tmp_path / "wf.jsonl"
    _write(data, FIRST_PART)
    _walk(data, study, monkeypatch)
    _strip_window_bars(study)
    _write(data, len(LINES) - 1)
    before = study.read_bytes()
    with pytest.raises(SpecError) as refused:
        _walk(data, study, monkeypatch)
    (error,) = refused.value.errors
    said = " ".join(error.message.split())
    assert error.field == "spec.data"
    assert "made by an earlier tradefleet" in said
    assert "bars appended since cannot be told from bars changed" in said
    assert "use another --study file or remove it" in said
    assert study.read_bytes() == before


def test_an_earlier_window_study_resumed_on_its_own_bars_accepts_bars_appended_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, study = tmp_path / "EURUSD.csv", tmp_path / "wf.jsonl"
    _write(data, FIRST_PART)
    _walk(data, study, monkeypatch)
    _strip_window_bars(study)
    # Rerun on the bars it was made on (all of them checked): it records each window's bars.
    again = _walk(data, study, monkeypatch)
    assert [w.search.ran for w in again.windows] == [0, 0, 0]
    assert _window_bars_recorded(study) == [True, True, True]
    _write(data, len(LINES) - 1)
    resumed = _walk(data, study, monkeypatch)
    assert [w.search.ran for w in resumed.windows] == [0, 0, 0, 4, 4]
