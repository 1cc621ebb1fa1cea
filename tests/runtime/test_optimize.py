"""`tradefleet optimize`: the space file, the search on real data, resume, processes, the CLI."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import Field

from tests.plugin_hooks import registry_with
from tradefleet_runtime import cli
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.errors import SpecError, StrategyError, StrategyRefused
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import END_OF_DATA, Bar
from tradefleet_runtime.optimize.search import SearchConfig, executor, run_search
from tradefleet_runtime.optimize.space import (
    Choice,
    FloatRange,
    IntRange,
    check_names,
    load_space,
    parse_space,
)
from tradefleet_runtime.optimize.worker import (
    Evaluation,
    Task,
    evaluate,
    with_params,
)
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.sdk import MACD, PluginParams, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "EURUSD_H1_2017.csv"
SMALL_GRID = {"fast": {"int": [12, 24, 12]}, "slow": {"int": [48, 96, 48]}}


def eurusd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "opt-check"},
        "spec": {
            "mode": "backtest",
            "strategy": {"name": "ema-cross", "params": {"fast": 10, "slow": 30}},
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "broker": {
                "name": "paper",
                "params": {"fee_bps": 0.2, "slippage_bps": 0.3, "leverage": 100},
            },
            "data": {"name": "csv", "params": {"path": str(DATA)}},
            "risk": [{"name": "fixed-size", "params": {"quantity": 100_000}}],
            "capital": {"currency": "USD", "initial": 100_000},
        },
    }


def _config(study: Path, space: dict[str, Any], **kwargs: Any) -> SearchConfig:
    return SearchConfig(
        manifest=eurusd_manifest(),
        base_dir=str(ROOT),
        space=parse_space(space),
        study_path=study,
        study_name="opt-check",
        **{"sampler": "grid", "metric": "sharpe", **kwargs},
    )


# -- the space file ---------------------------------------------------------------------------


def test_a_space_reads_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(
        textwrap.dedent(
            """
            fast: {int: [5, 50]}
            slow: {int: [20, 200, 10]}
            stop_loss_pct: {float: [0.001, 0.05], log: true}
            take_profit_pct: {float: [0.01, 0.03, 0.01]}
            allow_short: {choice: [true, false]}
            """
        )
    )
    space = load_space(path)
    assert space.dimensions == {
        "fast": IntRange(5, 50),
        "slow": IntRange(20, 200, 10),
        "stop_loss_pct": FloatRange(0.001, 0.05, None, log=True),
        "take_profit_pct": FloatRange(0.01, 0.03, 0.01),
        "allow_short": Choice((True, False)),
    }
    assert space.dimensions["slow"].values() == list(range(20, 201, 10))
    assert space.dimensions["take_profit_pct"].values() == [0.01, 0.02, 0.03]
    assert space.grid_size() is None  # a float range without a step has no grid
    with pytest.raises(SpecError) as refused:
        space.grid()
    assert [e.field for e in refused.value.errors] == ["space.stop_loss_pct.float"]


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        ({"fast": 5}, "space.fast", "expected a mapping"),
        ({"fast": {"int": [50, 5]}}, "space.fast.int", "low 50 is above high 5"),
        ({"fast": {"int": [5]}}, "space.fast.int", "[low, high]"),
        ({"fast": {"int": [1.5, 3]}}, "space.fast.int", "whole numbers"),
        ({"fast": {"int": [True, 3]}}, "space.fast.int", "must be numbers"),
        ({"fast": {"int": [0, 10, 3]}}, "space.fast.int", "does not divide"),
        ({"fast": {"int": [0, 10, 0]}}, "space.fast.int", "must be positive"),
        ({"fast": {"int": [1, 2], "float": [1, 2]}}, "space.fast", "exactly one"),
        ({"fast": {"itn": [1, 2]}}, "space.fast.itn", "unknown key"),
        ({"sl": {"float": [0, 0.1], "log": True}}, "space.sl.log", "low > 0"),
        ({"sl": {"float": [0.1, 1, 0.1], "log": True}}, "space.sl.log", "no step"),
        ({"sl": {"float": [0.1, 1], "log": "yes"}}, "space.sl.log", "true or false"),
        ({"short": {"choice": []}}, "space.short.choice", "non-empty"),
        ({"short": {"choice": [1, 1]}}, "space.short.choice", "twice"),
        ([1, 2], "space", "mapping"),
    ],
)
def test_a_bad_space_names_the_field(document: Any, field: str, words: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_space(document)
    assert [e.field for e in refused.value.errors] == [field]
    assert words in refused.value.errors[0].message


def test_a_space_param_the_strategy_lacks_is_named() -> None:
    registry = PluginRegistry.discover()
    schema = registry.get(PluginKind.STRATEGY, "ema-cross").spec.params_schema()
    space = parse_space({"fast": {"int": [5, 10]}, "fsat": {"int": [5, 10]}})
    problems = check_names(space, schema, "ema-cross")
    assert [p.field for p in problems] == ["space.fsat"]
    assert "no param 'fsat'" in problems[0].message


# -- the search on real data ------------------------------------------------------------------


def _backtest_sharpe(params: dict[str, Any], tmp_path: Path) -> float:
    """The plain backtest path (assemble → BotSession → a journal file), not the worker."""
    manifest = parse_manifest(with_params(eurusd_manifest(), params))
    bot = assemble(manifest, PluginRegistry.discover(), ROOT)
    journal = Journal(tmp_path / f"{params['fast']}-{params['slow']}.sqlite", batched=True)
    try:
        return BotSession(bot, journal).run_to_end().figures.sharpe
    finally:
        journal.close()


def test_a_grid_finds_the_best_of_running_each_param_set(tmp_path: Path) -> None:
    with executor(1) as pool:
        result = run_search(_config(tmp_path / "study.jsonl", SMALL_GRID), pool)
    direct = {
        (fast, slow): _backtest_sharpe({"fast": fast, "slow": slow}, tmp_path)
        for fast in (12, 24)
        for slow in (48, 96)
    }
    (fast, slow), sharpe = max(direct.items(), key=lambda item: item[1])
    assert (result.complete, result.ran, result.invalid) == (4, 4, 0)
    assert result.best_params == {"fast": fast, "slow": slow}
    assert result.best_value == sharpe
    assert result.best_figures["sharpe"] == sharpe
    assert len(set(direct.values())) == 4  # the grid's points really differ


def test_param_sets_the_params_model_refuses_are_not_run(tmp_path: Path) -> None:
    space = {"fast": {"int": [24, 48, 24]}, "slow": {"int": [24, 48, 24]}}
    with executor(1) as pool:
        result = run_search(_config(tmp_path / "study.jsonl", space), pool)
    # slow must exceed fast: (24, 24), (48, 24) and (48, 48) are refused before running.
    assert (result.complete, result.invalid, result.failed) == (1, 3, 0)
    assert result.best_params == {"fast": 24, "slow": 48}


def test_a_second_run_resumes_the_study_file(tmp_path: Path) -> None:
    study = tmp_path / "study.jsonl"
    with executor(1) as pool:
        first = run_search(_config(study, SMALL_GRID, trials=3), pool)
        assert (first.ran, first.complete) == (3, 3)
        second = run_search(_config(study, SMALL_GRID), pool)
        assert (second.ran, second.complete) == (1, 4)  # only the grid's last point ran
        third = run_search(_config(study, SMALL_GRID), pool)
        assert (third.ran, third.complete) == (0, 4)
    import optuna

    trials = optuna.load_study(study_name="opt-check", storage=str_storage(study)).trials
    assert sorted((t.params["fast"], t.params["slow"]) for t in trials) == [
        (12, 48),
        (12, 96),
        (24, 48),
        (24, 96),
    ]
    assert third.best_params == second.best_params


def str_storage(path: Path) -> Any:
    from tradefleet_runtime.optimize.search import open_storage

    return open_storage(path)


def test_resuming_with_another_metric_is_refused(tmp_path: Path) -> None:
    study = tmp_path / "study.jsonl"
    with executor(1) as pool:
        run_search(_config(study, SMALL_GRID, trials=1), pool)
        with pytest.raises(SpecError) as refused:
            run_search(_config(study, SMALL_GRID, metric="net_pnl"), pool)
    assert [e.field for e in refused.value.errors] == ["--metric"]


def test_two_processes_give_the_grid_one_process_gives(tmp_path: Path) -> None:
    results = {}
    values = {}
    for jobs in (1, 2):
        study = tmp_path / f"jobs{jobs}.jsonl"
        with executor(jobs) as pool:
            results[jobs] = run_search(_config(study, SMALL_GRID), pool, jobs=jobs)
        import optuna

        trials = optuna.load_study(study_name="opt-check", storage=str_storage(study)).trials
        values[jobs] = {(t.params["fast"], t.params["slow"]): t.value for t in trials}
    assert values[1] == values[2]
    assert len(values[1]) == 4
    assert results[1].best_params == results[2].best_params
    assert results[1].best_value == results[2].best_value


def test_the_worker_scores_what_a_backtest_scores(tmp_path: Path) -> None:
    evaluation = evaluate(Task(eurusd_manifest(), str(ROOT), {"fast": 12, "slow": 48}))
    assert evaluation.figures["sharpe"] == _backtest_sharpe({"fast": 12, "slow": 48}, tmp_path)


@pytest.mark.parametrize("vector", [True, False], ids=["vector", "engine"])
def test_a_trial_counts_every_figure_as_the_backtest_report_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vector: bool
) -> None:
    """Trades, win rate, profit factor, expectancy: a position still open when the data ends
    is a trade closed at its last mark (``end of data``) in the report, so it is in a trial's
    figures (both paths) and in the run summary the journal keeps; ranking by any figure ranks
    what ``tradefleet backtest`` then shows."""
    params = {"fast": 12, "slow": 48, "allow_short": True}  # always in the market
    evaluation = evaluate(Task(eurusd_manifest(), str(ROOT), params, vector=vector))
    assert evaluation.path == ("vector" if vector else "engine"), evaluation.fallback
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(json.dumps(with_params(eurusd_manifest(), params)))
    journal = tmp_path / "bot.sqlite"
    assert cli.main(["backtest", str(manifest), "--json", "--journal", str(journal)]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {row["reason"] for row in report["exit_reasons"]}
    assert END_OF_DATA in reasons  # the case this test is about
    opened = Journal(journal)
    try:
        (run,) = opened.runs()
    finally:
        opened.close()
    assert run.summary is not None
    for name, value in evaluation.figures.items():
        assert report[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
        assert run.summary[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert {"trades", "win_rate", "profit_factor", "sharpe"} <= set(evaluation.figures)


# -- the command ------------------------------------------------------------------------------


def _files(tmp_path: Path, space: dict[str, Any]) -> tuple[Path, Path]:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(json.dumps(eurusd_manifest()))
    space_file = tmp_path / "space.yaml"
    space_file.write_text(json.dumps(space))
    return manifest, space_file


@pytest.mark.parametrize("command", ["optimize", "walkforward"])
def test_without_optuna_the_command_names_the_extra_to_install(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A plain install (or the runtime image) has no optuna: say what to install, no traceback.
    monkeypatch.setitem(sys.modules, "optuna", None)
    for module in ("tradefleet_runtime.optimize.search", "tradefleet_runtime.optimize.walkforward"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    manifest, space = _files(tmp_path, SMALL_GRID)
    windows = ["--train", "200", "--test", "100"] if command == "walkforward" else []
    code = cli.main([command, str(manifest), "--space", str(space), "--jobs", "1", *windows])
    assert code == 1
    err = capsys.readouterr().err
    assert "pip install 'tradefleet[optimize]'" in err
    assert "Traceback" not in err


def test_the_command_prints_the_best_params_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, space = _files(tmp_path, SMALL_GRID)
    study = tmp_path / "study.jsonl"
    argv = ["optimize", str(manifest), "--space", str(space), "--sampler", "grid"]
    code = cli.main([*argv, "--jobs", "1", "--study", str(study), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["trials_complete"] == 4
    assert printed["study_file"] == str(study)
    assert set(printed["best_params"]) == {"fast", "slow"}
    assert study.exists()


def test_the_command_refuses_a_bad_space_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, space = _files(tmp_path, {"fast": {"int": [5, 10]}, "fsat": {"int": [5, 10]}})
    code = cli.main(["optimize", str(manifest), "--space", str(space), "--jobs", "1"])
    assert code == 2
    assert "space.fsat" in capsys.readouterr().err


def test_the_command_loads_no_service_and_optuna_only_when_it_runs(tmp_path: Path) -> None:
    manifest, space = _files(tmp_path, {"fast": {"int": [12, 12]}, "slow": {"int": [48, 48]}})
    argv = ["optimize", str(manifest), "--space", str(space), "--sampler", "grid", "--jobs", "1"]
    argv += ["--study", str(tmp_path / "study.jsonl"), "--json"]
    probe = textwrap.dedent(
        f"""
        import sys, contextlib, io
        from tradefleet_runtime import cli
        heavy = ("grpc", "aiohttp", "prometheus_client", "kopf", "optuna")
        print(",".join(m for m in heavy if m in sys.modules))
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main({argv!r}) == 0
        print(",".join(m for m in heavy if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.splitlines()
    assert (before, after) == ("", "optuna")


def test_points_an_interrupted_run_left_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradefleet_runtime.optimize import search

    calls = []

    def interrupted(task: Task) -> Any:
        calls.append(task.params)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return evaluate(task)

    study = tmp_path / "study.jsonl"
    monkeypatch.setattr(search, "evaluate", interrupted)
    with executor(1) as pool, pytest.raises(KeyboardInterrupt):
        run_search(_config(study, SMALL_GRID), pool)
    monkeypatch.undo()
    with executor(1) as pool:
        resumed = run_search(_config(study, SMALL_GRID), pool)
    # The point the interruption failed ran again, with the one never reached: all four done.
    assert (resumed.ran, resumed.complete) == (2, 4)
    assert resumed.notes == [
        "1 grid point(s) an earlier run did not finish run again",
        "2 trial(s) evaluated by the vectorised path",
    ]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_seeded_sampler_searches_every_kind_of_range_reproducibly(
    sampler: str, tmp_path: Path
) -> None:
    space = {
        "fast": {"int": [5, 20]},
        "slow": {"int": [30, 60, 10]},
        "allow_short": {"choice": [True, False]},
        "stop_loss_pct": {"float": [0.001, 0.05], "log": True},
    }
    import optuna

    chosen = []
    for run in range(2):
        study = tmp_path / f"{run}.jsonl"
        with executor(1) as pool:
            result = run_search(_config(study, space, sampler=sampler, trials=6, seed=7), pool)
        assert (result.ran, result.complete) == (6, 6)
        trials = optuna.load_study(study_name="opt-check", storage=str_storage(study)).trials
        chosen.append([t.params for t in trials])
    assert chosen[0] == chosen[1]  # the same seed samples the same params
    for params in chosen[0]:
        assert 5 <= params["fast"] <= 20
        assert params["slow"] in (30, 40, 50, 60)
        assert params["allow_short"] in (True, False)
        assert 0.001 <= params["stop_loss_pct"] <= 0.05


def test_the_command_prints_the_best_trials_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, space = _files(tmp_path, SMALL_GRID)
    argv = ["optimize", str(manifest), "--space", str(space), "--sampler", "grid"]
    code = cli.main([*argv, "--jobs", "1", "--study", str(tmp_path / "s.jsonl")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 complete" in " ".join(printed.split())
    assert "best trial" in printed and "exit reasons" in printed


# -- trials without a value: refused at the strategy's start, or nothing to rank ----------------


class _MacdProbeParams(PluginParams):
    # No cross-field check, as a plugin's model may lack one: MACD's own makes it at start.
    fast: int = Field(default=12, ge=2)
    slow: int = Field(default=26, ge=3)
    bug: str = Field(default="", description="'type-at-start' or 'value-on-bar': fail so.")


class _MacdProbe(Strategy):
    """Declares MACD(fast, slow) in on_start, as indicator-confluence does; buys once (a set
    that never trades is not ranked)."""

    params: _MacdProbeParams

    def on_start(self, ctx: StrategyContext) -> None:
        if self.params.bug == "type-at-start":
            raise TypeError("a bug at start")
        for symbol in ctx.symbols:
            self.indicator(MACD(self.params.fast, self.params.slow, 9), symbol)

    def on_bar(self, bar: Bar) -> None:
        if self.params.bug == "value-on-bar":
            raise ValueError("a bug in on_bar")
        if not self.ctx.position(bar.symbol).quantity:
            self.ctx.buy(bar.symbol)


def _probe_registry() -> PluginRegistry:
    spec = PluginSpec(
        kind=PluginKind.STRATEGY,
        name="macd-probe",
        version="1.0.0",
        factory=_MacdProbe,
        params=_MacdProbeParams,
    )
    return registry_with(SimpleNamespace(tradefleet_strategies=hookimpl(lambda: [spec])))


def _probe_search(study: Path, monkeypatch: pytest.MonkeyPatch, space: dict[str, Any]) -> Any:
    """Search ``space`` of macd-probe on EURUSD (trials in this process, on its registry)."""
    from tradefleet_runtime.optimize import search

    registry = _probe_registry()
    monkeypatch.setattr(search, "evaluate", lambda task: evaluate(task, registry))
    manifest = eurusd_manifest()
    manifest["spec"]["strategy"] = {"name": "macd-probe", "params": {}}
    config = SearchConfig(
        manifest=manifest,
        base_dir=str(ROOT),
        space=parse_space(space),
        study_path=study,
        study_name="opt-check",
        sampler="grid",
        metric="net_pnl",
    )
    with executor(1) as pool:
        return run_search(config, pool, registry=registry)


def test_a_set_the_strategy_refuses_at_start_is_recorded_and_the_search_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The params model takes fast 40 with slow 26; MACD refuses it when the strategy starts.
    space = {"fast": {"choice": [10, 40]}, "slow": {"choice": [26]}}
    study = tmp_path / "study.jsonl"
    result = _probe_search(study, monkeypatch, space)
    assert (result.complete, result.refused, result.invalid, result.failed) == (1, 1, 0, 0)
    assert result.best_params == {"fast": 10, "slow": 26}
    assert "1 refused by the strategy at start" in result.counts()
    import optuna

    trials = optuna.load_study(study_name="opt-check", storage=str_storage(study)).trials
    (refused,) = [t for t in trials if t.params["fast"] == 40]
    assert refused.user_attrs["invalid_kind"] == "strategy"
    assert "slow (26) must be greater than fast (40)" in refused.user_attrs["invalid"]
    # Done, as a params-model refusal is: a resumed grid does not run it again.
    again = _probe_search(study, monkeypatch, space)
    assert (again.ran, again.refused, again.complete) == (0, 1, 1)


def test_a_refusal_at_start_crosses_a_process_pool_as_itself() -> None:
    # A pool pickles the worker's error: the search must still see a StrategyRefused.
    manifest = eurusd_manifest()
    manifest["spec"]["strategy"] = {"name": "macd-probe", "params": {"fast": 40, "slow": 26}}
    with pytest.raises(StrategyRefused) as refused:
        evaluate(Task(manifest, str(ROOT), {}), _probe_registry())
    copied = pickle.loads(pickle.dumps(refused.value))
    assert type(copied) is StrategyRefused
    assert str(copied) == str(refused.value)


@pytest.mark.parametrize(
    ("bug", "error"),
    [("type-at-start", TypeError), ("value-on-bar", ValueError)],
    ids=["another-type-at-start", "value-error-after-start"],
)
def test_other_errors_of_a_trial_still_end_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: str, error: type[Exception]
) -> None:
    # A bug would recur in every trial: loud, not recorded as a refused set.
    space = {"fast": {"choice": [10]}, "slow": {"choice": [26]}, "bug": {"choice": [bug]}}
    with pytest.raises(StrategyError) as raised:
        _probe_search(tmp_path / "study.jsonl", monkeypatch, space)
    assert not isinstance(raised.value, StrategyRefused)
    assert raised.value.kind == error.__name__  # named, with the trial, in one line


def _ranked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: dict[int, dict[str, Any]]
) -> Any:
    """A profit-factor grid over ``fast`` whose trials score ``figures[fast]``."""
    from tradefleet_runtime.optimize import search

    def scored(task: Task) -> Evaluation:
        return Evaluation(figures[int(task.params["fast"])], (None, None), 0)

    monkeypatch.setattr(search, "evaluate", scored)
    space = {"fast": {"int": [min(figures), max(figures)]}}
    with executor(1) as pool:
        return run_search(_config(tmp_path / "study.jsonl", space, metric="profit_factor"), pool)


def _figures(trades: int, wins: int, profit_factor: float | None, net_pnl: float) -> Any:
    return {
        "trades": trades,
        "win_rate": wins / trades if trades else 0.0,
        "profit_factor": profit_factor,
        "net_pnl": net_pnl,
    }


def test_profit_factor_ranks_a_set_without_a_losing_trade_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every trade won: the report's "∞ (no losing trade)", the best a set can do (it was
    # thrown away as "not defined"). Of two such sets, the one that made more is the best.
    figures = {
        5: _figures(8, 8, None, 900.0),
        6: _figures(10, 6, 3.0, 2_000.0),
        7: _figures(9, 9, None, 1_200.0),
        8: _figures(12, 5, 1.4, 300.0),
    }
    result = _ranked(tmp_path, monkeypatch, figures)
    assert (result.complete, result.invalid, result.no_trades, result.failed) == (4, 0, 0, 0)
    assert result.best_params == {"fast": 7}
    assert result.best_value == math.inf
    assert result.as_json()["best_value"] is None  # JSON has no infinity


def test_profit_factor_counts_a_set_without_trades_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No trade: no profit factor to rank, and no refusal by the params model (which took it).
    figures = {5: _figures(0, 0, None, 0.0), 6: _figures(10, 6, 3.0, 2_000.0)}
    result = _ranked(tmp_path, monkeypatch, figures)
    assert (result.complete, result.invalid, result.no_trades, result.failed) == (1, 0, 1, 0)
    assert result.best_params == {"fast": 6}
    counts = result.counts()
    assert "0 refused by the params model" in counts
    assert "1 without trades (no profit_factor)" in counts
    assert result.as_json()["trials_without_trades"] == 1


def test_profit_factor_with_no_set_that_traded_names_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = {5: _figures(0, 0, None, 0.0), 6: _figures(0, 0, None, 0.0)}
    with pytest.raises(SpecError) as refused:
        _ranked(tmp_path, monkeypatch, figures)
    assert "no trial completed: no trades: profit_factor is not defined" in str(refused.value)
