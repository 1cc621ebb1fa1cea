"""``tradefleet optimize`` and ``tradefleet walkforward``: entry points that parse their own argv.

They take no CLI framework's objects (``main(argv) -> exit code``), so whichever framework
``tradefleet`` uses hands them the arguments after the command's name. Optuna, and the search
module with it, is imported only once a command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tradefleet_runtime import terminal
from tradefleet_runtime.errors import (
    SPACE_FILE,
    STUDY_FILE,
    DataError,
    FieldError,
    JournalError,
    PluginError,
    SpecError,
    StrategyError,
)
from tradefleet_runtime.optimize.space import Space, check_names, load_space
from tradefleet_runtime.optimize.worker import (
    Evaluation,
    Task,
    default_registry,
    evaluate,
    load_timeline,
)
from tradefleet_runtime.plugins.registry import PluginKind
from tradefleet_runtime.report.metrics import Report, ReportInput, build_report
from tradefleet_runtime.report.table import report_table
from tradefleet_runtime.spec import load_manifest
from tradefleet_runtime.timeframes import parse_timeframe

if TYPE_CHECKING:
    from tradefleet_runtime.optimize.search import SearchResult
    from tradefleet_runtime.optimize.walkforward import WalkForwardResult

# Kept here (not imported from the search module) so that --help needs no optuna.
METRIC_NAMES = (
    "sharpe",
    "sortino",
    "net_pnl",
    "return_pct",
    "profit_factor",
    "win_rate",
    "max_drawdown_pct",
)
SAMPLER_NAMES = ("grid", "random", "tpe")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="the bot's TradingBot manifest")
    parser.add_argument("--space", type=Path, required=True, help="search space (YAML)")
    parser.add_argument("--sampler", choices=SAMPLER_NAMES, default="tpe")
    parser.add_argument("--metric", choices=METRIC_NAMES, default="sharpe")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: every core)"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true")


def _optimize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradefleet optimize", description="search a strategy's params on its data"
    )
    _common(parser)
    parser.add_argument(
        "--trials",
        type=int,
        help="trials the study holds when done, earlier runs' included: a rerun runs only "
        "the missing ones (default: the whole grid, or 100)",
    )
    parser.add_argument(
        "--study",
        type=Path,
        help="Optuna study file (default studies/NAME-optimize.jsonl); the same file resumes",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=8,  # search.DEFAULT_PARALLEL (not imported: --help needs no optuna)
        help="trials tpe runs at once, whatever --jobs: with --seed it fixes the trials "
        "(default 8)",
    )
    return parser


def _walkforward_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradefleet walkforward",
        description="choose params in sample, judge them out of sample",
    )
    _common(parser)
    parser.add_argument("--train", type=int, required=True, help="in-sample bars per window")
    parser.add_argument("--test", type=int, required=True, help="out-of-sample bars per window")
    parser.add_argument(
        "--anchored", action="store_true", help="every in-sample window starts at bar 0"
    )
    parser.add_argument(
        "--trials",
        type=int,
        help="trials per in-sample window in all, earlier runs' included: a rerun runs only "
        "the missing ones (default: the whole grid, or 100)",
    )
    parser.add_argument(
        "--min-oos-ratio",
        type=float,
        default=0.8,
        help="warn when out of sample falls below this fraction of in sample (default 0.8)",
    )
    parser.add_argument(
        "--study", type=Path, help="Optuna study file (default studies/NAME-walkforward.jsonl)"
    )
    parser.add_argument(
        "--out", type=Path, help="results JSON (default studies/NAME-walkforward.json)"
    )
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread: the search ends as on Ctrl-C — the trials in flight
    recorded as failed, the study file written, the worker processes stopped — instead of the
    process dying at once and leaving its workers behind."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` while the command runs (the handler is put back)."""

    def terminated(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread (a test's or an embedding program's): left as is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _guarded(run: Callable[[], int]) -> int:
    err = terminal.console(stderr=True)
    try:
        with _sigterm_raises():
            return run()
    except SpecError as error:
        err.print(terminal.labelled("refused", "bold red", error))
        return 2
    except (DataError, PluginError) as error:
        err.print(terminal.labelled("error", "bold red", error))
        return 2
    except (JournalError, StrategyError) as error:
        # A strategy's bug names the trial, the plugin, the hook and the bar: one line, exit 1.
        err.print(terminal.labelled("error", "bold red", error))
        return 1
    except ModuleNotFoundError as error:
        if error.name != "optuna":
            raise
        # The runtime image and a plain install leave the search out (the ``optimize`` extra).
        err.print(
            terminal.labelled(
                "error",
                "bold red",
                "optuna is not installed: pip install 'tradefleet[optimize]' to search params",
            )
        )
        return 1
    except KeyboardInterrupt:
        # The study file keeps every trial told so far: the same command continues it.
        err.print("interrupted: run the same command again to continue the study")
        return 130
    except Terminated:
        err.print("terminated: run the same command again to continue the study")
        return 128 + signal.SIGTERM  # 143, as a shell reports a process SIGTERM ended


def _prepare(args: argparse.Namespace) -> tuple[dict[str, Any], str, str, Space]:
    """The manifest document, its folder, the bot's name and the checked space."""
    for option in ("jobs", "trials", "parallel"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise SpecError([FieldError(f"--{option}", "must be at least 1")])
    manifest = load_manifest(args.manifest)
    document = manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
    strategy = manifest.spec.strategy.name
    schema = default_registry().get(PluginKind.STRATEGY, strategy).spec.params_schema()
    with _told_as(SPACE_FILE, str(args.space)):
        space = load_space(args.space)
        problems = check_names(space, schema, strategy)
        if problems:
            raise SpecError(problems, str(args.space))
        if args.sampler == "grid":
            space.grid()  # refuses a float range without a step, naming it
    base_dir = str(args.manifest.parent.resolve())
    return document, base_dir, manifest.metadata.name, space


@contextmanager
def _told_as(subject: str, source: str, *, only_its_own: bool = False) -> Iterator[None]:
    """Refusals raised inside headed as being about ``subject`` in ``source``: the space and
    search modules say what they refused, not which of the command's files it came from.
    ``only_its_own``: only those already naming ``source`` (a study file's mismatch, not a
    refused --metric)."""
    try:
        yield
    except SpecError as error:
        if only_its_own and error.source != source:
            raise
        raise error.about(subject, source) from None


@contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal (and wanted)."""
    err = Console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _params_table(title: str, params: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("param")
    table.add_column("value", justify="right")
    for name, value in params.items():
        table.add_row(name, json.dumps(value))
    return table


def optimize_main(argv: list[str]) -> int:
    """``tradefleet optimize MANIFEST --space SPACE.yaml ...``; returns the exit code."""
    args = _optimize_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _guarded(lambda: _optimize(args))


def _optimize(args: argparse.Namespace) -> int:
    document, base_dir, name, space = _prepare(args)
    from tradefleet_runtime.optimize.search import SearchConfig, executor, run_search

    study_path = args.study or Path("studies") / f"{name}-optimize.jsonl"
    config = SearchConfig(
        manifest=document,
        base_dir=base_dir,
        space=space,
        study_path=study_path,
        study_name=name,
        sampler=args.sampler,
        metric=args.metric,
        trials=args.trials,
        seed=args.seed,
        parallel=args.parallel,
    )
    with (
        _told_as(STUDY_FILE, str(study_path), only_its_own=True),
        executor(args.jobs, document, base_dir) as pool,
        _progress(not (args.json or args.no_progress), "optimize") as progress,
    ):
        result = run_search(config, pool, jobs=args.jobs, progress=progress)
    out = terminal.console()
    if args.json:
        out.print_json(json.dumps({"study_file": str(study_path), **result.as_json()}))
        return 0
    # The study keeps the best trial's figures; its full report (exit reasons, months) comes
    # from running it once more here.
    best = evaluate(Task(document, base_dir, result.chosen_params(), detail=True))
    _print_search(out, result, str(study_path), document, _report(document, [best]))
    return 0


def _report(document: dict[str, Any], runs: list[Evaluation]) -> Report:
    """The report of ``runs`` stitched (one run: itself), as ``tradefleet backtest`` shows it."""
    from tradefleet_runtime.optimize.walkforward import stitch

    spec = document.get("spec", {})
    initial = float(spec.get("capital", {}).get("initial", 100_000.0))
    timestamps, equity, exposure, trades, fees = stitch(initial, runs)
    return build_report(
        ReportInput(
            initial=initial,
            currency=str(spec.get("capital", {}).get("currency", "USD")),
            timeframe_s=parse_timeframe(str(spec.get("market", {}).get("timeframe", "1h"))),
            timestamps=timestamps,
            equity=equity,
            exposure=exposure,
            trades=trades,
            fees=fees,
        )
    )


def _print_search(
    out: Console, result: SearchResult, study: str, document: dict[str, Any], best: Report
) -> None:
    currency = str(document.get("spec", {}).get("capital", {}).get("currency", "USD"))
    out.print(
        f"study {study}: {result.counts()}; ran {result.ran} now "
        f"({result.trials_per_s:.1f} trials/s)"
    )
    for note in result.notes:
        out.print(f"note: {note}")
    title = f"best {result.metric}: {result.best_value:.4g}"
    out.print(_params_table(title, result.chosen_params()))
    out.print(report_table("best trial", best, currency))


def walkforward_main(argv: list[str]) -> int:
    """``tradefleet walkforward MANIFEST --space SPACE.yaml --train N --test M ...``."""
    args = _walkforward_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _guarded(lambda: _walkforward(args))


def _walkforward(args: argparse.Namespace) -> int:
    if not 0 < args.min_oos_ratio <= 1:
        raise SpecError([FieldError("--min-oos-ratio", "must be above 0 and at most 1")])
    document, base_dir, name, space = _prepare(args)
    from tradefleet_runtime.optimize.search import executor
    from tradefleet_runtime.optimize.walkforward import make_windows, walk_forward

    timeline = load_timeline(document, base_dir)
    windows = make_windows(len(timeline), args.train, args.test, args.anchored)
    study_path = args.study or Path("studies") / f"{name}-walkforward.jsonl"
    out_path = args.out or Path("studies") / f"{name}-walkforward.json"
    with (
        _told_as(STUDY_FILE, str(study_path), only_its_own=True),
        executor(args.jobs, document, base_dir) as pool,
        _progress(not (args.json or args.no_progress), "in-sample search") as progress,
    ):
        result = walk_forward(
            manifest=document,
            base_dir=base_dir,
            space=space,
            timeline=timeline,
            windows=windows,
            study_path=study_path,
            study_prefix=name + ("-anchored" if args.anchored else ""),
            pool=pool,
            jobs=args.jobs,
            sampler=args.sampler,
            metric=args.metric,
            trials=args.trials,
            seed=args.seed,
            min_oos_ratio=args.min_oos_ratio,
            progress=progress,
        )
    report = walkforward_json(result, timeline, str(study_path))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out = terminal.console()
    err = terminal.console(stderr=True)
    for warning in result.warnings:
        err.print(terminal.labelled("warning", "bold yellow", warning))
    if args.json:
        out.print_json(json.dumps(report))
        return 0
    currency = str(document.get("spec", {}).get("capital", {}).get("currency", "USD"))
    stitched = _report(
        document, [w.out_of_sample for w in result.windows if w.out_of_sample is not None]
    )
    _print_walkforward(out, result, timeline, currency, stitched)
    out.print(f"results: {out_path}; studies: {study_path}")
    return 0


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _span(timeline: tuple[int, ...], start: int, end: int) -> str:
    return f"{_day(timeline[start])}…{_day(timeline[end - 1])} ({end - start})"


def _print_walkforward(
    out: Console,
    result: WalkForwardResult,
    timeline: tuple[int, ...],
    currency: str,
    stitched: Report,
) -> None:
    from tradefleet_runtime.optimize.walkforward import comparable

    metric = result.metric
    table = Table(title=f"walk-forward ({metric})", header_style="bold")
    for column in ("window", "in sample", "out of sample", "params", "IS", "OOS"):
        table.add_column(column, overflow="fold")
    for window in result.windows:
        is_value = comparable(window.in_sample, metric)
        oos = window.out_of_sample
        oos_value = comparable(oos.figures, metric) if oos is not None else None
        table.add_row(
            str(window.index),
            _span(timeline, window.train.start, window.train.end),
            _span(timeline, window.test.start, window.test.end),
            # A window whose trials all traded nothing chose none (the warnings say so).
            json.dumps(window.search.best_params) if window.chosen else "none chosen",
            "-" if is_value is None else f"{is_value:.4g}",
            "-" if oos_value is None else f"{oos_value:.4g}",
        )
    out.print(table)
    out.print(report_table("out of sample only (stitched)", stitched, currency))
    per_bar = " per bar" if metric in ("net_pnl", "return_pct") else ""
    ratio = "n/a" if result.efficiency is None else f"{result.efficiency:.0%}"
    out.print(
        f"{metric}{per_bar}: in sample {_number(result.in_sample_value)}, out of sample "
        f"{_number(result.out_of_sample_value)}; efficiency {ratio} "
        f"(gate {result.min_oos_ratio:.0%}: {'passed' if result.gate_passed else 'FAILED'})"
    )


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def walkforward_json(
    result: WalkForwardResult, timeline: tuple[int, ...], study: str
) -> dict[str, Any]:
    """Everything the walk-forward table shows, and the stitched curve, as JSON."""

    def bounds(start: int, end: int) -> dict[str, Any]:
        return {
            "start": start,
            "end": end,
            "first_ts": timeline[start],
            "last_ts": timeline[end - 1],
        }

    gap = (
        None
        if result.in_sample_value is None or result.out_of_sample_value is None
        else result.out_of_sample_value - result.in_sample_value
    )
    return {
        "study_file": study,
        "metric": result.metric,
        "windows": [
            {
                "index": w.index,
                "in_sample": bounds(w.train.start, w.train.end),
                "out_of_sample": bounds(w.test.start, w.test.end),
                # None (and no out-of-sample run) when no in-sample trial had a value.
                "params": w.search.best_params,
                "in_sample_figures": w.in_sample,
                "out_of_sample_figures": (
                    w.out_of_sample.figures if w.out_of_sample is not None else None
                ),
                # Trials done, ranked or not: what --trials counts (the study's, all runs').
                "trials": w.search.done,
                "trials_ranked": w.search.complete,
                "trials_without_trades": w.search.no_trades,
                "trials_invalid": w.search.invalid,
                "trials_refused_by_strategy": w.search.refused,
                "trials_unranked": w.search.unranked,
                # Which path ran the window's trials (the vectorised one, or the engine and
                # why), as ``optimize`` prints them.
                "notes": list(w.search.notes),
            }
            for w in result.windows
        ],
        "out_of_sample": result.figures.as_json(),
        "in_sample_value": result.in_sample_value,
        "out_of_sample_value": result.out_of_sample_value,
        "gap": gap,
        "efficiency": result.efficiency,
        "min_oos_ratio": result.min_oos_ratio,
        "gate_passed": result.gate_passed,
        "warnings": result.warnings,
        "equity": [[ts, value] for ts, value in zip(result.equity_ts, result.equity, strict=True)],
    }
