"""Walk-forward analysis: choose params in sample, judge them out of sample, stitch the latter.

Windows are counted in bars of the feed's timeline. Window *k* trains on ``train`` bars
(rolling: bars ``k·test`` to ``k·test + train``; anchored: from bar 0) and tests on the ``test``
bars right after them (the last test window may be shorter). The params the search ranks best
on the training bars — a search that is never shown a bar at or after the test window's first
one — are run on the test bars, with warm-up from the bars before them.

The first window's in-sample search warms up inside its own bars, like a backtest of them:
a ``train`` no longer than the strategy's warm-up leaves it no bar to trade, and is refused
(:func:`check_train`). A window whose in-sample trials all trade nothing chooses no params: it
is not run out of sample, and the run warns that its test bars are left out.

Only the out-of-sample runs make the report: their equity curves are stitched by adding each
window's P&L to where the previous one ended (every window starts with the bot's capital, as
the trades' P&L does), and the figures are computed from that curve and those trades alone.

The gate compares the metric out of sample with in sample: the *efficiency* is OOS ÷ IS (IS ÷
OOS for a figure to minimise, like drawdown), with P&L and return taken per bar so windows of
different lengths compare. Below ``min_oos_ratio`` (default 0.8: within 20% of in-sample) the
params are likely fitted to noise, and the run says so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradefleet_runtime.errors import FieldError, SpecError, StrategyRefused
from tradefleet_runtime.optimize.search import (
    METRICS,
    Progress,
    SearchConfig,
    SearchResult,
    check_params,
    run_search,
)
from tradefleet_runtime.optimize.space import Choice, Space, Value
from tradefleet_runtime.optimize.worker import (
    Evaluation,
    FigureValues,
    Task,
    Window,
    default_registry,
    evaluate,
    started_warmup,
    with_params,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.metrics import Figures, compute_figures

# Figures that grow with the window's length: compared per bar.
PER_BAR = frozenset({"net_pnl", "return_pct"})
# Param sets whose warm-up :func:`shortest_warmup` asks for (0.5 ms each).
MAX_CORNERS = 256


def make_windows(bars: int, train: int, test: int, anchored: bool) -> list[tuple[Window, Window]]:
    """(in-sample, out-of-sample) windows over ``bars`` bars; errors name the option."""
    if train < 1:
        raise SpecError([FieldError("--train", "must be at least 1 bar")])
    if test < 1:
        raise SpecError([FieldError("--test", "must be at least 1 bar")])
    if train >= bars:
        raise SpecError(
            [FieldError("--train", f"{train} bars leaves none to test (the data has {bars})")]
        )
    windows = []
    k = 0
    while (train_end := k * test + train) < bars:
        train_start = 0 if anchored else k * test
        windows.append(
            (Window(train_start, train_end), Window(train_end, min(train_end + test, bars)))
        )
        k += 1
    return windows


@dataclass(frozen=True)
class WindowResult:
    index: int
    train: Window
    test: Window
    search: SearchResult
    # None: the in-sample search chose no params (no trial traded), so nothing ran here.
    out_of_sample: Evaluation | None

    @property
    def in_sample(self) -> FigureValues:
        return self.search.best_figures

    @property
    def chosen(self) -> bool:
        return self.search.best_params is not None


@dataclass
class WalkForwardResult:
    metric: str
    min_oos_ratio: float
    windows: list[WindowResult]
    figures: Figures  # out of sample only, from the stitched curve
    equity_ts: list[int]
    equity: list[float]
    in_sample_value: float | None  # the metric in sample (mean over windows)
    out_of_sample_value: float | None  # the metric of the stitched out-of-sample run
    efficiency: float | None
    warnings: list[str] = field(default_factory=list)

    @property
    def gate_passed(self) -> bool:
        return self.efficiency is not None and self.efficiency >= self.min_oos_ratio


def comparable(figures: Mapping[str, Any], metric: str) -> float | None:
    """The metric as the gate compares it: per bar for P&L and return, else as it is."""
    value = figures.get(metric)
    if value is None or not math.isfinite(float(value)):
        return None
    if metric in PER_BAR:
        bars = int(figures.get("bars") or 0)
        return float(value) / bars if bars else None
    return float(value)


def efficiency(in_sample: float | None, out_of_sample: float | None, metric: str) -> float | None:
    """OOS ÷ IS (IS ÷ OOS when lower is better); None when IS is not a positive yardstick."""
    if in_sample is None or out_of_sample is None:
        return None
    if METRICS[metric] == "minimize":
        return in_sample / out_of_sample if out_of_sample > 0 else None
    return out_of_sample / in_sample if in_sample > 0 else None


def stitch(
    initial: float, runs: list[Evaluation]
) -> tuple[list[int], list[float], list[float], list[Any], float]:
    """One curve from the out-of-sample runs: each window's P&L added where the last ended."""
    timestamps: list[int] = []
    equity: list[float] = []
    exposure: list[float] = []
    trades: list[Any] = []
    fees = 0.0
    level = initial
    for run in runs:
        offset = level - initial
        timestamps.extend(run.equity_ts)
        equity.extend(value + offset for value in run.equity)
        exposure.extend(run.exposure)
        trades.extend(run.trades)
        fees += run.fees
        if equity:
            level = equity[-1]
    return timestamps, equity, exposure, trades, fees


def walk_forward(
    *,
    manifest: Mapping[str, Any],
    base_dir: str,
    space: Space,
    timeline: tuple[int, ...],
    windows: list[tuple[Window, Window]],
    study_path: Path,
    study_prefix: str,
    pool: Executor,
    jobs: int = 1,
    sampler: str = "tpe",
    metric: str = "sharpe",
    trials: int | None = None,
    seed: int = 0,
    min_oos_ratio: float = 0.8,
    progress: Progress | None = None,
) -> WalkForwardResult:
    """Search each in-sample window, run its best params out of sample, stitch, compare.

    ``trials`` is each window's in all: a rerun runs only those a window lacks (none when it
    is done), so the same command gives the same result however often it ran."""
    check_train(windows, shortest_warmup(manifest, base_dir, space, default_registry()))
    results: list[WindowResult] = []
    warnings: list[str] = []
    for index, (train, test) in enumerate(windows):
        config = SearchConfig(
            manifest=manifest,
            base_dir=base_dir,
            space=space,
            study_path=study_path,
            # One study per window in the same file: a rerun continues each where it stopped.
            study_name=f"{study_prefix}-window-{index}-{train.start}-{train.end}",
            sampler=sampler,
            metric=metric,
            trials=trials,
            seed=seed,
            window=train,
            timeline=timeline,
        )
        search = run_search(config, pool, jobs=jobs, progress=progress, require_best=False)
        if search.best_params is None:
            warnings.append(_no_choice(index, train, test, search))
            results.append(WindowResult(index, train, test, search, None))
            continue
        oos = evaluate(Task(manifest, base_dir, search.best_params, test, timeline, detail=True))
        results.append(WindowResult(index, train, test, search, oos))
    runs = [r.out_of_sample for r in results if r.out_of_sample is not None]
    if results and all(r.search.invalid + r.search.refused == r.search.done for r in results):
        # No set of the space ran at all (the params model or the strategy refused every one):
        # the space is at fault, not the windows' length, as ``optimize`` says it.
        raise SpecError([FieldError("--space", results[0].search.why_none)])
    if not runs:
        raise SpecError(
            [
                FieldError(
                    "--train",
                    "no window chose params: in every in-sample window no trial traded "
                    f"({results[0].search.why_none if results else 'no window'}); "
                    "give --train more bars, or search sets that trade",
                )
            ]
        )
    initial = float(manifest.get("spec", {}).get("capital", {}).get("initial", 100_000.0))
    timestamps, equity, exposure, trades, fees = stitch(initial, runs)
    figures = compute_figures(
        initial=initial,
        timestamps=timestamps,
        equity=equity,
        exposure=exposure,
        trades=trades,
        fees=fees,
    )
    chosen = [r for r in results if r.out_of_sample is not None]
    is_values = [comparable(r.in_sample, metric) for r in chosen]
    known = [v for v in is_values if v is not None]
    in_sample = sum(known) / len(known) if known else None
    out_of_sample = comparable(figures.as_json(), metric)
    ratio = efficiency(in_sample, out_of_sample, metric)
    # Every window run out of sample counts in sample: the mean of some would leave out the
    # ones the gate most needs (a profit factor infinite in sample: its best set never lost
    # there, the most fitted of all), and the gate passed on the rest.
    unmeasured = [r.index for r, v in zip(chosen, is_values, strict=True) if v is None]
    outcome = WalkForwardResult(
        metric,
        min_oos_ratio,
        results,
        figures,
        timestamps,
        equity,
        in_sample,
        out_of_sample,
        ratio,
        warnings,
    )
    if unmeasured:
        outcome.efficiency = None
        outcome.warnings.append(
            f"the gate cannot be judged: in-sample {metric} of window(s) "
            f"{', '.join(map(str, unmeasured))} is not a finite number (a profit factor of a "
            "set that never lost a trade is infinite); the mean of the other windows is no "
            "yardstick for them: treat the params as unvalidated"
        )
    elif ratio is None:
        outcome.warnings.append(
            f"the gate cannot be judged: in-sample {metric} is {in_sample} (not a positive "
            "yardstick); treat the params as unvalidated"
        )
    elif ratio < min_oos_ratio:
        outcome.warnings.append(
            f"out-of-sample {metric} is {ratio:.0%} of in-sample, below the gate of "
            f"{min_oos_ratio:.0%}: the params are likely fitted to noise"
        )
    return outcome


def _no_choice(index: int, train: Window, test: Window, search: SearchResult) -> str:
    """The warning for a window whose in-sample search chose nothing."""
    trials = f"in-sample trial(s) (bars {train.start}-{train.end})"
    if search.no_trades == search.done:
        why = f"none of its {search.done} {trials} made a trade"
    else:
        why = f"none of its {search.done} {trials} has a value to rank: {search.why_none}"
    return (
        f"window {index} chose no params: {why}; its {test.end - test.start} test bars "
        f"({test.start}-{test.end}) are left out of the out-of-sample report"
    )


def check_train(
    windows: list[tuple[Window, Window]], warmup: tuple[int, dict[str, Value]] | None
) -> None:
    """Refuse a first in-sample window no longer than the strategy's ``warmup`` (bars, and
    the params asking it): it starts at the data's first bar, so its warm-up is taken from
    its own bars and every trial would trade none — the search's "best" a tie of zeros."""
    if not windows or warmup is None:
        return
    bars, params = warmup
    train = windows[0][0]
    if train.end - train.start <= bars:
        said = ", ".join(f"{name}={value!r}" for name, value in sorted(params.items()))
        raise SpecError(
            [
                FieldError(
                    "--train",
                    f"{train.end - train.start} bars are no more than the strategy's warm-up "
                    f"of {bars} bars (its shortest in the space, at {said or 'its params'}): "
                    "the first window warms up on its own bars and its trials would trade "
                    f"none; give --train more than {bars} bars",
                )
            ]
        )


def shortest_warmup(
    manifest: Mapping[str, Any], base_dir: str, space: Space, registry: PluginRegistry
) -> tuple[int, dict[str, Value]] | None:
    """The smallest warm-up the strategy asks for at the space's corners — each range's ends,
    each choice's values, at most :data:`MAX_CORNERS` sets the params model takes — and the
    params asking it; None when no corner can start.

    Warm-ups grow with the periods a strategy's params set, so a corner holds the space's
    smallest; a strategy whose warm-up does not is caught later, by its window choosing no
    params (see :func:`walk_forward`).
    """
    best: tuple[int, dict[str, Value]] | None = None
    for params in itertools.islice(_corners(space), MAX_CORNERS):
        if check_params(manifest, params, registry):
            continue
        try:
            bars = started_warmup(with_params(manifest, params), registry, base_dir)
        except StrategyRefused:
            continue  # a set the strategy refuses at start never runs
        if best is None or bars < best[0]:
            best = (bars, params)
    return best


def _corners(space: Space) -> Iterator[dict[str, Value]]:
    ends: list[list[Value]] = []
    for dimension in space.dimensions.values():
        if isinstance(dimension, Choice):
            ends.append(list(dimension.options))
        else:  # a range's ends are among its values (a step divides it)
            ends.append(list(dict.fromkeys([dimension.low, dimension.high])))
    names = list(space.dimensions)
    for values in itertools.product(*ends):
        yield dict(zip(names, values, strict=True))
