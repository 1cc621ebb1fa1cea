"""`tradefleet walkforward`: windows, warm-up before a test window, no peeking, OOS-only report."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.runtime.test_optimize import DATA, ROOT, eurusd_manifest
from tradefleet_runtime import cli
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.optimize.search import executor, open_storage
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.optimize.walkforward import (
    WalkForwardResult,
    comparable,
    efficiency,
    make_windows,
    stitch,
    walk_forward,
)
from tradefleet_runtime.optimize.worker import (
    Task,
    Window,
    default_registry,
    evaluate,
    load_timeline,
    started_warmup,
)
from tradefleet_runtime.report.metrics import compute_figures

HOUR = 3600
GRID = {"fast": {"int": [6, 18, 6]}, "slow": {"int": [24, 48, 24]}}
TRAIN, TEST = 1500, 1000


def test_rolling_windows_step_by_the_test_length() -> None:
    windows = make_windows(5000, 2000, 1000, anchored=False)
    assert [(w[0].start, w[0].end, w[1].start, w[1].end) for w in windows] == [
        (0, 2000, 2000, 3000),
        (1000, 3000, 3000, 4000),
        (2000, 4000, 4000, 5000),
    ]


def test_anchored_windows_all_train_from_the_first_bar() -> None:
    windows = make_windows(4500, 2000, 1000, anchored=True)
    assert [(w[0].start, w[0].end, w[1].start, w[1].end) for w in windows] == [
        (0, 2000, 2000, 3000),
        (0, 3000, 3000, 4000),
        (0, 4000, 4000, 4500),  # the last test window takes what is left
    ]


@pytest.mark.parametrize(
    ("train", "test", "field"), [(0, 10, "--train"), (10, 0, "--test"), (100, 10, "--train")]
)
def test_impossible_windows_name_the_option(train: int, test: int, field: str) -> None:
    with pytest.raises(SpecError) as refused:
        make_windows(100, train, test, anchored=False)
    assert [e.field for e in refused.value.errors] == [field]


@pytest.mark.parametrize("reuse_bars", [True, False], ids=["sliced", "feed-limited"])
def test_a_test_window_warms_up_on_the_bars_before_it_and_trades_from_its_start(
    reuse_bars: bool,
) -> None:
    manifest = eurusd_manifest()
    timeline = load_timeline(manifest, str(ROOT))
    window = Window(1000, 1500)
    slow = 48
    run = evaluate(
        Task(manifest, str(ROOT), {"fast": 12, "slow": slow}, window, timeline, True, reuse_bars)
    )
    # Fed from `slow` bars before the window (the strategy's warm-up) to its last bar ...
    assert run.seen == (timeline[1000 - slow], timeline[1499])
    assert run.history_bars == slow
    # ... and the first equity mark is the close of the window's first bar: trading starts there.
    assert run.equity_ts[0] == timeline[1000] + HOUR
    assert run.equity_ts[-1] == timeline[1499] + HOUR
    assert len(run.equity_ts) == 500
    assert run.trades and all(timeline[1000] <= t.entry_ts for t in run.trades)


@pytest.mark.parametrize("reuse_bars", [True, False], ids=["sliced", "feed-limited"])
def test_a_strategy_whose_warm_up_its_indicators_set_warms_up_before_its_window(
    reuse_bars: bool,
) -> None:
    """indicator-confluence states no warm-up of its own: it is what the indicators it
    declares at start need (asked before the start, 0). The window's run is fed that many bars
    before its first, and trades from its first bar, as a backtest of the window would."""
    manifest = eurusd_manifest()
    manifest["spec"]["strategy"] = {"name": "indicator-confluence", "params": {}}
    timeline = load_timeline(manifest, str(ROOT))
    warmup = started_warmup(manifest, default_registry(), str(ROOT))
    assert warmup > 0
    run = evaluate(Task(manifest, str(ROOT), {}, Window(1000, 1500), timeline, True, reuse_bars))
    assert run.seen == (timeline[1000 - warmup], timeline[1499])
    assert run.history_bars == warmup
    assert run.equity_ts[0] == timeline[1000] + HOUR
    assert len(run.equity_ts) == 500


def test_the_feed_limited_by_its_params_gives_the_bars_the_slice_gives() -> None:
    manifest = eurusd_manifest()
    timeline = load_timeline(manifest, str(ROOT))
    runs = [
        evaluate(
            Task(
                manifest,
                str(ROOT),
                {"fast": 6, "slow": 24},
                Window(200, 900),
                timeline,
                True,
                reuse,
            )
        )
        for reuse in (True, False)
    ]
    assert runs[0].figures == runs[1].figures
    assert runs[0].seen == runs[1].seen
    assert runs[0].equity == runs[1].equity


def _walk(manifest: dict[str, Any], study: Path, jobs: int = 1) -> WalkForwardResult:
    timeline = load_timeline(manifest, str(ROOT))
    with executor(jobs, manifest, str(ROOT)) as pool:
        return walk_forward(
            manifest=manifest,
            base_dir=str(ROOT),
            space=parse_space(GRID),
            timeline=timeline,
            windows=make_windows(len(timeline), TRAIN, TEST, anchored=False),
            study_path=study,
            study_prefix="wf",
            pool=pool,
            jobs=jobs,
            sampler="grid",
        )


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> tuple[WalkForwardResult, Path]:
    study = tmp_path_factory.mktemp("wf") / "study.jsonl"
    return _walk(eurusd_manifest(), study), study


def test_no_in_sample_trial_saw_a_bar_of_its_test_window(
    walked: tuple[WalkForwardResult, Path],
) -> None:
    result, study_path = walked
    timeline = load_timeline(eurusd_manifest(), str(ROOT))
    storage = open_storage(study_path)
    assert len(result.windows) == 5
    for window in result.windows:
        study = optuna.load_study(study_name=window.search.study_name, storage=storage)
        seen = [t.user_attrs["bars_seen"] for t in study.trials]
        assert len(seen) == 6  # every grid point ran, each recorded the bars it was given
        assert all(last < timeline[window.test.start] for _first, last in seen)
        assert max(last for _first, last in seen) == timeline[window.train.end - 1]


def _perturbed_copy(folder: Path, from_ts: int) -> Path:
    """The EURUSD file with every bar from ``from_ts`` on mirrored: prices fall where they rose."""
    with DATA.open(newline="") as handle:
        rows = list(csv.reader(handle))
    out = [rows[0]]
    pivot = None

    for row in rows[1:]:
        ts = _ts(row[0])
        if ts < from_ts:
            out.append(row)
            continue
        o, h, low, c = (float(v) for v in row[1:5])
        pivot = pivot if pivot is not None else o
        mirror = [2 * pivot - v for v in (o, low, h, c)]  # high and low swap places
        out.append([row[0], *(f"{v:.5f}" for v in mirror), row[5]])
    target = folder / "EURUSD_perturbed.csv"
    with target.open("w", newline="") as handle:
        csv.writer(handle).writerows(out)
    return target


def _ts(cell: str) -> int:
    return int(datetime.strptime(cell, "%d.%m.%Y %H:%M:%S.%f").replace(tzinfo=UTC).timestamp())


def test_perturbing_a_test_window_changes_no_choice_made_before_it(
    walked: tuple[WalkForwardResult, Path], tmp_path: Path
) -> None:
    original, _ = walked
    timeline = load_timeline(eurusd_manifest(), str(ROOT))
    k = 2
    cut = timeline[original.windows[k].test.start]
    manifest = eurusd_manifest()
    manifest["spec"]["data"]["params"]["path"] = str(_perturbed_copy(tmp_path, cut))
    perturbed = _walk(manifest, tmp_path / "study.jsonl", jobs=2)
    for before, after in zip(original.windows, perturbed.windows, strict=True):
        if before.index <= k:
            # Chosen on bars before the cut: the same params, from the same in-sample figures.
            assert after.search.best_params == before.search.best_params
            assert after.in_sample == before.in_sample
    # The perturbation did reach the test window and everything after it.
    assert perturbed.windows[k].out_of_sample.figures != original.windows[k].out_of_sample.figures
    assert perturbed.windows[k + 1].in_sample != original.windows[k + 1].in_sample


def test_the_report_holds_out_of_sample_figures_only(
    walked: tuple[WalkForwardResult, Path],
) -> None:
    result, _ = walked
    timeline = load_timeline(eurusd_manifest(), str(ROOT))
    spans = [(timeline[w.test.start], timeline[w.test.end - 1] + HOUR) for w in result.windows]

    def inside(ts: int) -> bool:
        return any(start <= ts <= end for start, end in spans)

    assert result.equity_ts and all(inside(ts) for ts in result.equity_ts)
    assert result.figures.bars == sum(w.test.end - w.test.start for w in result.windows)
    trades = [t for w in result.windows for t in w.out_of_sample.trades]
    assert trades and all(inside(t.entry_ts) and inside(t.exit_ts) for t in trades)
    assert result.figures.trades == len(trades)
    # The figures are those of the stitched out-of-sample runs, nothing else.
    initial = 100_000.0
    timestamps, equity, exposure, stitched_trades, fees = stitch(
        initial, [w.out_of_sample for w in result.windows]
    )
    assert result.figures == compute_figures(
        initial=initial,
        timestamps=timestamps,
        equity=equity,
        exposure=exposure,
        trades=stitched_trades,
        fees=fees,
    )
    # P&L adds up: the stitched net P&L is the sum of the windows'.
    assert result.figures.net_pnl == pytest.approx(
        sum(float(w.out_of_sample.figures["net_pnl"] or 0) for w in result.windows)
    )


def test_the_gate_compares_per_bar_and_warns_below_the_ratio() -> None:
    is_figures = {"net_pnl": 3000.0, "bars": 3000, "sharpe": 1.5}
    oos_figures = {"net_pnl": 700.0, "bars": 1000, "sharpe": 1.4}
    assert comparable(is_figures, "net_pnl") == 1.0  # per bar
    ratio = efficiency(
        comparable(is_figures, "net_pnl"), comparable(oos_figures, "net_pnl"), "net_pnl"
    )
    assert ratio == pytest.approx(0.7)
    assert efficiency(1.5, 1.4, "sharpe") == pytest.approx(1.4 / 1.5)
    assert efficiency(10.0, 12.5, "max_drawdown_pct") == pytest.approx(0.8)  # lower is better
    assert efficiency(-0.5, 1.0, "sharpe") is None  # no positive yardstick


def test_walked_result_states_its_gate(walked: tuple[WalkForwardResult, Path]) -> None:
    result, _ = walked
    if result.efficiency is not None and result.efficiency >= result.min_oos_ratio:
        assert result.gate_passed and not result.warnings
    else:
        assert not result.gate_passed
        assert result.warnings


def test_the_command_saves_its_results_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(json.dumps(eurusd_manifest()))
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(GRID))
    out = tmp_path / "wf.json"
    argv = ["walkforward", str(manifest), "--space", str(space), "--sampler", "grid"]
    argv += ["--train", "3000", "--test", "2000", "--anchored", "--jobs", "1"]
    code = cli.main([*argv, "--study", str(tmp_path / "s.jsonl"), "--out", str(out), "--json"])
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved == json.loads(capsys.readouterr().out)
    assert [w["in_sample"]["start"] for w in saved["windows"]] == [0, 0]
    assert [w["out_of_sample"]["start"] for w in saved["windows"]] == [3000, 5000]
    assert set(saved) >= {"out_of_sample", "gap", "efficiency", "gate_passed", "equity"}
    assert saved["out_of_sample"]["bars"] == 6225 - 3000


def test_the_command_prints_the_out_of_sample_report_and_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(json.dumps(eurusd_manifest()))
    space = tmp_path / "space.yaml"
    space.write_text(json.dumps(GRID))
    argv = ["walkforward", str(manifest), "--space", str(space), "--sampler", "grid"]
    argv += ["--train", "3000", "--test", "2000", "--jobs", "1"]
    code = cli.main([*argv, "--study", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "o")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "out of sample only (stitched)" in printed
    assert "efficiency" in printed and "gate 80%" in printed
