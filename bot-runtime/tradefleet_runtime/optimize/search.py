"""The search: an Optuna study on a file, asked for params here, trials run in processes.

This process owns the study (ask → run → tell), so the study's file has one writer and the
workers stay plain functions of a :class:`~tradefleet_runtime.optimize.worker.Task`. Up to
``jobs`` trials run at once in a process pool (the engine is pure Python: threads would share
one core).

The same seed gives the same trials whatever ``jobs`` (another machine, more cores): what the
sampler knows when it is asked for trial *k* — which trials are told, with which values, and
which are still running — depends on *k* alone, never on which process finished first. Trials
are asked in order and told strictly in trial order: the search asks the next one while fewer
than :func:`trials_in_flight` are asked and not told, else waits for the oldest of those and
tells it. For TPE, the one sampler here that learns from the values, that count is
``SearchConfig.parallel`` (a setting of the search, not of the machine); grid and random pick
a trial without looking at any value, so theirs follows ``jobs``. ``jobs`` then only decides
how many of those trials run at once.

The study lives in an Optuna ``JournalStorage`` on a file: run the same command
with the same ``--study`` again and it continues (a grid skips the points already done) up to
``SearchConfig.trials`` trials in all, so a finished search rerun runs none. The study records
what its trials' figures depend on (:func:`_identity`: the bot's spec but the searched params,
a hash of its bars — a walk-forward window's, of the bars before its end, which bars appended
to the data leave as they were —, the metric, sampler, space and window) and a resume with
anything else is refused before the file is written to. A trial cut short by Ctrl-C, SIGTERM
or a killed run is recorded as interrupted (``INTERRUPTED``), not failed.
``optuna.load_study`` reads the file for anything else.

Optuna is imported by this module only, which the commands import when they run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import optuna
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from tradefleet_runtime.errors import (
    SEARCH,
    FieldError,
    SpecError,
    StrategyError,
    StrategyRefused,
)
from tradefleet_runtime.optimize.plugin_code import factory_module, package_code_hash
from tradefleet_runtime.optimize.space import Choice, FloatRange, IntRange, Space, Value
from tradefleet_runtime.optimize.worker import (
    Evaluation,
    FigureValues,
    Task,
    Window,
    data_key,
    default_registry,
    evaluate,
    warm_up,
)
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.spec.checks import plugin_context
from tradefleet_runtime.timeframes import parse_timeframe

# The figures a search may rank by, and which way is better.
Direction = Literal["maximize", "minimize"]
METRICS: dict[str, Direction] = {
    "sharpe": "maximize",
    "sortino": "maximize",
    "net_pnl": "maximize",
    "return_pct": "maximize",
    "profit_factor": "maximize",
    "win_rate": "maximize",
    "max_drawdown_pct": "minimize",
}
SAMPLERS = ("grid", "random", "tpe")
DEFAULT_TRIALS = 100  # random and TPE; a grid runs its points
# Samplers whose choice of params never depends on the values told (random draws from its
# seeded generator alone; the grid skips the points asked already, told or not): how many of
# their trials are in flight cannot change what they pick. Any other sampler (TPE, and any
# added later) is given ``SearchConfig.parallel`` trials in flight, whatever ``jobs``.
BLIND_SAMPLERS = ("grid", "random")
# TPE's trials in flight: it picks trial k knowing every value but those of the (up to) 7
# trials before it, which it counts as bad ones still running (Optuna's constant liar). 8 keeps
# the processes of most machines busy and costs TPE little of what it learns in 100 trials;
# a machine with more cores runs more only with a larger ``--parallel`` (and other trials).
DEFAULT_PARALLEL = 8

# Why a trial that is done has no value to rank: its ``invalid`` user attribute says it in
# words, ``invalid_kind`` names which of these it is. They are counted apart, as each says
# something else about the space; none is run again on resuming (each would recur).
PARAMS_MODEL = "params model"  # the strategy's params model refused the set: never run
STRATEGY = "strategy"  # the strategy refused it when it started (errors.StrategyRefused)
# It ran and traded nothing: whatever the metric, it is not ranked. A run without a trade has
# a Sharpe of 0 (above every losing set), a drawdown of 0 (the best there is): figures of
# standing aside, not of the params, which would otherwise win a search they never traded in.
NO_TRADES = "no trades"
UNRANKED = "unranked"  # it traded, but the metric is not defined for its run

# Parts of a bot's spec that no trial's figures depend on, left out of a study's identity: a
# trial always runs as a backtest (``worker.with_params``), and the runtime's settings (image,
# pod, journal volume, replay pace) and the live confirmation do not touch a backtest's run.
# The commands hand the manifest over with the YAML's names (``liveConfirmation``).
NOT_IN_FIGURES = ("mode", "runtime", "liveConfirmation", "live_confirmation")

# The identity's key of a walk-forward window's bars: the hash of those before its end, which
# a resumed window's study is checked on (not the hash of all the bars, which appending the
# next month's bars changes).
WINDOW_BARS = "window_bars"

# The user attribute of a trial cut short — Ctrl-C, SIGTERM, a run killed, or asked after the
# trial that ended the search — saying why. Such a trial is in Optuna's FAIL state (the only
# end without a value) but did not fail: a resumed grid runs its point again, and it is not
# counted among the failed trials (a failure is an error of the trial itself).
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class SearchConfig:
    manifest: Mapping[str, Any]
    base_dir: str
    space: Space
    study_path: Path
    study_name: str
    sampler: str = "tpe"
    metric: str = "sharpe"
    trials: int | None = None
    seed: int = 0
    window: Window | None = None
    timeline: tuple[int, ...] = ()
    # Trials a learning sampler (TPE) has in flight at once; with the seed it fixes the trials,
    # so it is the search's setting and not the machine's (``jobs``): see the module's doc.
    parallel: int = DEFAULT_PARALLEL


@dataclass
class SearchResult:
    study_name: str
    metric: str
    direction: str
    # None when no trial has a value to rank (none traded, say): no params are best.
    best_params: dict[str, Any] | None
    best_value: float  # NaN without best params
    best_figures: FigureValues
    ran: int  # trials run by this call (not the sets the params model refused, never run)
    complete: int  # complete trials in the study (earlier runs included)
    failed: int
    invalid: int  # refused by the params model (never run)
    seconds: float
    notes: list[str] = field(default_factory=list)
    refused: int = 0  # refused by the strategy when it started
    no_trades: int = 0  # ran without a trade, and the metric needs one
    unranked: int = 0  # traded, but the metric is not defined for them
    why_none: str = ""  # without best params: why no trial has a value

    @property
    def done(self) -> int:
        """Trials the study holds that are done, ranked or not: what ``--trials`` counts
        (failed ones — interrupted, lost with a worker — are run again, so they are not)."""
        return self.complete + self.invalid + self.refused + self.no_trades + self.unranked

    def chosen_params(self) -> dict[str, Any]:
        """The best params; a search that has none (``run_search(require_best=False)``)
        refuses, naming why."""
        if self.best_params is None:
            raise SpecError([FieldError("--space", self.why_none)])
        return self.best_params

    @property
    def trials_per_s(self) -> float:
        return self.ran / self.seconds if self.seconds > 0 else 0.0

    def counts(self) -> str:
        """The study's trials by outcome, in words; the kinds that are rare only when some."""
        parts = [f"{self.complete} complete", f"{self.invalid} refused by the params model"]
        if self.refused:
            parts.append(f"{self.refused} refused by the strategy at start")
        if self.no_trades:
            parts.append(f"{self.no_trades} without trades (no {self.metric})")
        if self.unranked:
            parts.append(f"{self.unranked} with no {self.metric} to rank")
        parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "study": self.study_name,
            "metric": self.metric,
            "direction": self.direction,
            "best_params": self.best_params,
            # JSON has no infinity (an all-winning profit factor): None, as the figures say it.
            # None too without best params (NaN).
            "best_value": self.best_value if math.isfinite(self.best_value) else None,
            "best_figures": self.best_figures,
            "trials_run": self.ran,
            "trials_complete": self.complete,
            "trials_failed": self.failed,
            "trials_invalid": self.invalid,
            "trials_refused_by_strategy": self.refused,
            "trials_without_trades": self.no_trades,
            "trials_unranked": self.unranked,
            "seconds": round(self.seconds, 3),
            "trials_per_s": round(self.trials_per_s, 3),
            # Which path ran the trials (the vectorised one, or the engine and why).
            "notes": list(self.notes),
        }


Progress = Callable[[int, int], None]  # (trials done by this call, trials to run)


class InlineExecutor(Executor):
    """Runs each task in this process when its result is asked for: ``--jobs 1`` needs no pool.

    Not at submit: the search submits a trial when it asks for it, up to ``parallel`` trials
    before telling the first of them; run at once, a trial's error (or Ctrl-C) would wait for
    the trials asked after it to run before the search saw it.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return _Deferred(lambda: fn(*args, **kwargs))


class _Deferred(Future[Any]):
    """A future whose call runs, in the caller's thread, the first time it is waited on."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__()
        self._call: Callable[[], Any] | None = call

    def result(self, timeout: float | None = None) -> Any:
        self._run()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._run()
        return super().exception(timeout)

    def _run(self) -> None:
        call, self._call = self._call, None
        if call is None or not self.set_running_or_notify_cancel():
            return  # ran already, or cancelled before it ran
        try:
            self.set_result(call())
        except BaseException as error:  # handed to the waiter, who re-raises it (Ctrl-C too)
            self.set_exception(error)


@contextmanager
def executor(
    jobs: int, manifest: Mapping[str, Any] | None = None, base_dir: str = "."
) -> Iterator[Executor]:
    """A pool of ``jobs`` processes (or this process for 1), shut down on leaving.

    With ``manifest``, the bot's data is read before the workers start, so they start with it.
    Call this before starting any thread (a progress bar): see below.
    """
    if jobs <= 1:
        yield InlineExecutor()
        return
    initargs = (dict(manifest) if manifest is not None else None, base_dir)
    if sys.platform == "linux":
        # fork: a worker starts as a copy of this process — plugins discovered, data read — in
        # milliseconds, where a fresh interpreter takes seconds to import and read them again
        # (longer than a 100-trial grid). A fork copies only the forking thread, so the workers
        # are all started here, at the first submit, before this process starts another thread.
        warm_up(*initargs)
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("spawn")
    # This process's children before the pool: any started after it are the pool's workers.
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_worker_start, initargs=initargs
    )
    try:
        pool.submit(int).result()  # starts the workers now (with fork, all of them at once)
        yield pool
    except BaseException:
        # The search ends (Ctrl-C, SIGTERM, an error): the trials still running are of no use
        # to it and are stopped, not waited for — a trial of a long run would hold the exit.
        _stop_workers(before)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_start(manifest: Mapping[str, Any] | None, base_dir: str) -> None:
    """A pool worker's start: it leaves Ctrl-C and SIGTERM to the search, which stops it.

    A terminal's Ctrl-C reaches every process of the group: each worker's KeyboardInterrupt
    traceback would bury the one line the search prints. A forked worker also inherits the
    search's SIGTERM handler, which is the search's own business: its SIGTERM ends it plainly.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    warm_up(manifest, base_dir)


def _stop_workers(before: Set[BaseProcess]) -> None:
    """Kill the pool's workers: this process's children but those it had before the pool.

    ``ProcessPoolExecutor`` has no public way to end its workers before Python 3.14
    (``kill_workers``). Each worker it starts is a ``multiprocessing`` child of this process,
    which ``multiprocessing.active_children()`` lists (public, on every start method): the
    ones started since the pool was made are its workers, as the search starts no other
    process. A ``Process`` object signals only a child not yet reaped, so a pid the system
    gave to another program since is never signalled (pids sent by the workers could be).
    They hold nothing to save (a trial writes nothing). Killed, the pool is broken and its
    shutdown returns without waiting for their trials.
    """
    for process in multiprocessing.active_children():
        if process not in before:
            process.kill()


class BufferedJournalFile(BaseJournalBackend):
    """Optuna's journal file, appended to at most every ``interval`` seconds.

    ``JournalFileBackend`` fsyncs each of the ~8 log lines a trial writes (about 30 ms a trial
    here, as long as the trial itself), and the one process that owns the study would spend
    its time waiting on the disk. This process is the study's only writer, so it keeps its
    newest lines in memory (reads see them) and appends them in one go: an interrupted run
    loses at most the last ``interval`` seconds of trials, which a resumed run runs again.
    """

    def __init__(self, path: Path, interval: float = 0.5) -> None:
        self._file = JournalFileBackend(str(path))
        self._in_file = sum(1 for _ in self._file.read_logs(0))
        self._pending: list[dict[str, Any]] = []
        self._interval = interval
        self._flushed_at = time.monotonic()

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        if log_number_from < self._in_file:
            yield from self._file.read_logs(log_number_from)
        yield from self._pending[max(0, log_number_from - self._in_file) :]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._pending.extend(logs)
        if time.monotonic() - self._flushed_at >= self._interval:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            # Lines appended but not yet counted as in the file would be appended again by
            # the next flush (the one on leaving, after Ctrl-C), and read twice: the study
            # would hold each op twice and no longer load (a duplicated study, a trial told
            # twice). A signal waits for both to be done.
            with _signals_deferred():
                self._file.append_logs(self._pending)
                self._in_file += len(self._pending)
                self._pending = []
        self._flushed_at = time.monotonic()


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM arriving inside the block are handled when it ends, by the handlers
    in place before it (KeyboardInterrupt, the command's SIGTERM), as if they arrived then.

    Python runs a signal's handler in the main thread between any two of its steps, so only
    the main thread's handlers can be held; another thread's blocks run as they are.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, FrameType | None]] = []

    def defer(signum: int, frame: FrameType | None) -> None:
        caught.append((signum, frame))

    held = (signal.SIGINT, signal.SIGTERM)
    previous: dict[int, Any] = {number: signal.signal(number, defer) for number in held}
    try:
        yield
    finally:
        for number, handler in previous.items():
            # None: a handler not set from Python, which cannot be put back; the default is.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for signum, frame in caught[:1]:
            _handle(previous[signum], signum, frame)


def _handle(handler: Any, signum: int, frame: FrameType | None) -> None:
    """What ``handler`` (as ``signal.signal`` returned it) does with ``signum``."""
    if callable(handler):
        handler(signum, frame)
    elif handler is None or handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # the default action: the process ends by the signal


def open_storage(path: Path) -> JournalStorage:
    """The study file for reading (e.g. ``optuna.load_study``), unbuffered."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


class _AskTellGridSampler(GridSampler):
    """A grid sampler that does not call ``study.stop()`` when the grid is done.

    ``stop`` works only inside ``study.optimize``; with ask and tell this module counts the
    grid's remaining points itself and asks for no more.
    """

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def _sampler(config: SearchConfig, asked: int) -> BaseSampler:
    """The sampler for a study that holds ``asked`` trials already (0: a new study)."""
    if config.sampler == "grid":
        # The grid skips the points asked already, whatever its seed.
        return _AskTellGridSampler(config.space.grid(), seed=config.seed)
    seed = resumed_seed(config.seed, asked)
    if config.sampler == "random":
        return RandomSampler(seed=seed)
    # constant_liar: trials still running count as bad, so the trials in flight spread out.
    # Decided by ``parallel``, never by ``jobs``: the same seed picks the same trials anywhere.
    return TPESampler(seed=seed, constant_liar=config.parallel > 1)


def resumed_seed(seed: int, asked: int) -> int:
    """The sampler's seed for a study holding ``asked`` trials: ``seed`` for a new study.

    A sampler rebuilt from ``seed`` on resuming would draw the first run's points again (a
    random search rerun ran the same 50 points twice; TPE's first 10 are random draws too), so
    a resumed study goes on with a seed of its own: another draw per trial count, the same
    for the same study file and seed. A resumed search is therefore not the search an
    uninterrupted run of the same total makes — its later trials differ — only as
    reproducible.
    """
    if asked == 0:
        return seed
    digest = hashlib.sha256(f"tradefleet-resumed-study:{seed}:{asked}".encode()).digest()
    return int.from_bytes(digest[:4], "big")  # numpy's seeds are below 2**32


def trials_in_flight(sampler: str, parallel: int, jobs: int) -> int:
    """How many trials the search keeps asked but not yet told.

    A learning sampler (TPE) gets ``parallel``: what it knows at each ask then depends on the
    trial's number alone. A blind one (grid, random) picks the same trials however many are
    in flight, so it gets what keeps ``jobs`` processes busy: one trial per process and one
    more queued behind each, so a worker starts its next trial while this process records the
    last one (with trials of a few milliseconds, a worker waiting on this process made two
    workers slower than one).
    """
    if sampler not in BLIND_SAMPLERS:
        return parallel
    return max(jobs, 1) * (2 if jobs > 1 else 1)


def suggest(trial: Trial, space: Space) -> dict[str, Value]:
    params: dict[str, Value] = {}
    for name, dimension in space.dimensions.items():
        if isinstance(dimension, IntRange):
            params[name] = trial.suggest_int(
                name, dimension.low, dimension.high, step=dimension.step, log=dimension.log
            )
        elif isinstance(dimension, FloatRange):
            params[name] = trial.suggest_float(
                name, dimension.low, dimension.high, step=dimension.step, log=dimension.log
            )
        else:
            assert isinstance(dimension, Choice)
            params[name] = trial.suggest_categorical(name, list(dimension.options))
    return space.on_steps(params)


def check_params(
    manifest: Mapping[str, Any], params: Mapping[str, Any], registry: PluginRegistry
) -> list[FieldError]:
    """The strategy's params model on the manifest's params with ``params`` set over them."""
    strategy = manifest.get("spec", {}).get("strategy", {})
    merged = {**(strategy.get("params") or {}), **params}
    market = manifest.get("spec", {}).get("market", {})
    market = market if isinstance(market, dict) else {}
    try:
        timeframe = parse_timeframe(str(market["timeframe"]))
    except (KeyError, TypeError, ValueError):
        bot = None  # the manifest's own check names that field
    else:
        symbols = market.get("symbols")
        listed = [str(s) for s in symbols] if isinstance(symbols, list) else []
        bot = plugin_context(timeframe, symbols=listed)
    _, errors = registry.check(
        PluginKind.STRATEGY, str(strategy.get("name")), merged, ["spec", "strategy"], bot=bot
    )
    return errors


def _identity(
    config: SearchConfig,
    bars: str,
    plugins: Mapping[str, str] | None = None,
    window_bars: str | None = None,
) -> dict[str, Any]:
    """What a study was made for, which a resumed study must match: everything its trials'
    figures depend on but the params searched. ``bars``: the hash of the feed's bars;
    ``plugins``: the bot's plugins' code (``plugin_versions``); ``window_bars``: a window's
    search only, the hash of the bars before its end (:func:`_window_bars`)."""
    identity = {
        "metric": config.metric,
        "sampler": config.sampler,
        "space": config.space.as_json(),
        "strategy": config.manifest.get("spec", {}).get("strategy", {}).get("name"),
        "window": config.window.as_json() if config.window is not None else None,
        "bot": bot_identity(config.manifest, config.space),
        # Kept for a window's study too: an earlier tradefleet, which knows no
        # ``window_bars``, then still refuses it on other bars.
        "bars": bars,
        "plugins": dict(plugins or {}),
        # Which trials a search picks: a study resumed with another seed would name the best
        # of the first seed's trials (a finished one runs none) as this search's.
        "seed": config.seed,
    }
    if config.sampler not in BLIND_SAMPLERS:
        identity["parallel"] = config.parallel  # TPE's trials in flight pick its trials too
    if window_bars is not None:
        identity[WINDOW_BARS] = window_bars
    return identity


def _window_bars(config: SearchConfig, registry: PluginRegistry) -> str | None:
    """A walk-forward window's bars: the hash of the bars before the window's end (None
    without a window). Its trials are given no other (warm-up included), so bars appended to
    the data since leave its trials as they were — a rerun keeps them — while a change to
    any bar before its end refuses it."""
    if config.window is None:
        return None
    end = config.window.end
    # A window reaching the data's end has every bar (an in-sample one never does).
    until = config.timeline[end] if end < len(config.timeline) else None
    return data_key(config.manifest, config.base_dir, registry, end=until)


def plugin_versions(manifest: Mapping[str, Any], registry: PluginRegistry) -> dict[str, str]:
    """The distribution, version and code of each plugin the bot names (``strategy
    ema-cross``: ``tradefleet 0.1.0 (built-in) 0.1.0 code 3f2a…``, the code being the hash
    of its package's sources: ``plugin_code``): other code may give other figures for the
    same settings, so a study made with other plugin code is not resumed, even when the code
    was edited in place under the same version. A plugin the registry does not know is left
    out (the trials refuse it by name)."""
    spec = manifest.get("spec") or {}
    refs: list[tuple[PluginKind, Any]] = [
        (PluginKind.STRATEGY, spec.get("strategy")),
        (PluginKind.BROKER, spec.get("broker")),
        (PluginKind.DATA_FEED, spec.get("data")),
    ]
    refs += [(PluginKind.RISK, ref) for ref in spec.get("risk") or ()]
    versions: dict[str, str] = {}
    for kind, ref in refs:
        name = ref.get("name") if isinstance(ref, Mapping) else None
        found = registry.plugins.get((kind, name)) if isinstance(name, str) else None
        if found is not None:
            module = factory_module(found.spec.factory)
            code = package_code_hash(module) if module else None
            versions[f"{kind.value} {name}"] = f"{found.source} {found.spec.version}" + (
                f" code {code}" if code else ""
            )
    return versions


def bot_identity(manifest: Mapping[str, Any], space: Space) -> dict[str, str]:
    """The bot's spec, but the params searched and the parts no figure depends on, as a hash
    per setting (``spec.broker.params.fee_bps``): a changed setting can be named, and no
    value of the manifest (a plugin's params may hold a secret) is written to the study."""
    spec = copy.deepcopy(dict(manifest.get("spec") or {}))
    for name in NOT_IN_FIGURES:
        spec.pop(name, None)
    strategy = spec.get("strategy")
    if isinstance(strategy, dict) and isinstance(strategy.get("params"), dict):
        # A searched param's value in the manifest is never used: each trial sets it.
        strategy["params"] = {
            k: v for k, v in strategy["params"].items() if k not in space.dimensions
        }
    return _settings(spec, "spec")


def _settings(value: Any, path: str) -> dict[str, str]:
    """``value``'s leaves by dotted path (``spec.risk[0].params.quantity``), each hashed. An
    empty mapping or list has none: it sets nothing a missing one would not."""
    if isinstance(value, dict):
        leaves: dict[str, str] = {}
        for key in sorted(value):
            leaves.update(_settings(value[key], f"{path}.{key}"))
        return leaves
    if isinstance(value, list):
        leaves = {}
        for index, item in enumerate(value):
            leaves.update(_settings(item, f"{path}[{index}]"))
        return leaves
    text = json.dumps(value, sort_keys=True, default=str)
    return {path: hashlib.sha256(text.encode()).hexdigest()[:16]}


_OPTIONS = {"metric": "--metric", "sampler": "--sampler", "space": "--space"}
_SHOWN_CHANGES = 6  # settings named one by one; more are counted


def _check_resumed(
    stored: Mapping[str, Any] | None, wanted: Mapping[str, Any], config: SearchConfig
) -> None:
    """Refuse to resume a study made for another search, naming what differs."""
    study = f"the study {config.study_name!r} in {config.study_path}"
    advice = "use another --study file or remove it"
    if stored is None or "bot" not in stored or "bars" not in stored:
        raise SpecError(
            [
                FieldError(
                    "--study",
                    f"{study} was made by an earlier tradefleet, which did not record the bot "
                    "and the bars its trials ran on: they cannot be checked against this bot "
                    f"and its data, so the study is not resumed; {advice}",
                )
            ],
            str(config.study_path),
        )
    problems = [
        FieldError(
            _OPTIONS.get(key, key),
            f"{study} was made with {key} {stored.get(key)!r}, not {wanted[key]!r}: {advice}",
        )
        for key in ("metric", "sampler", "space", "strategy", "window")
        if stored.get(key) != wanted[key]
    ]
    # A study made before its seed was recorded cannot be checked for it: resumed as before.
    problems += [
        FieldError(
            f"--{key}",
            f"{study} was made with --{key} {stored[key]}, not {wanted[key]}: its trials are "
            f"that search's; rerun with --{key} {stored[key]} to continue it, or {advice}",
        )
        for key in ("seed", "parallel")
        if key in stored
        and key in wanted
        and stored[key] != wanted[key]
        and (key != "seed" or _seed_picks_trials(config))
    ]
    changed = _changed(stored["bot"], wanted["bot"])
    problems += [
        FieldError(path, f"{study} was made with another bot: this setting changed; {advice}")
        for path in changed[:_SHOWN_CHANGES]
    ]
    if len(changed) > _SHOWN_CHANGES:
        more = ", ".join(changed[_SHOWN_CHANGES:])
        problems.append(FieldError("spec", f"and these settings changed too: {more}"))
    problems += [
        FieldError(
            "spec",
            f"{study} was made with the {plugin} plugin of {stored_code or 'unknown code'},"
            f" not {wanted_code or 'none'}: other code may give other figures; {advice}",
        )
        for plugin in sorted(set(stored.get("plugins") or {}) | set(wanted.get("plugins") or {}))
        if (stored_code := (stored.get("plugins") or {}).get(plugin))
        != (wanted_code := (wanted.get("plugins") or {}).get(plugin))
    ]
    problems += _bars_changed(stored, wanted, config, f"{study} was made on other bars", advice)
    if problems:
        raise SpecError(problems, str(config.study_path))


def _seed_picks_trials(config: SearchConfig) -> bool:
    """Whether ``config``'s seed decides which trials its study holds when done: a grid's seed
    orders its points only, so a grid run to its end holds every point whatever the seed; one
    that ``--trials`` caps below its size holds the points its seed put first."""
    if config.sampler != "grid":
        return True
    size = config.space.grid_size() or 0
    return config.trials is not None and config.trials < size


def _bars_changed(
    stored: Mapping[str, Any],
    wanted: Mapping[str, Any],
    config: SearchConfig,
    other_bars: str,
    advice: str,
) -> list[FieldError]:
    """A resumed study's bars, if they changed: for a walk-forward window, those before its
    end (bars appended after them are not a change); else every bar the feed gives."""
    if WINDOW_BARS in wanted and WINDOW_BARS in stored:
        if stored[WINDOW_BARS] == wanted[WINDOW_BARS]:
            return []
        why = (
            f"the bars up to this window's end ({_window_end(config)}), which its trials ran "
            "on, changed (the data file's content, or where it is read from); bars appended "
            "after them would not be a change"
        )
    elif stored["bars"] == wanted["bars"]:
        return []
    elif WINDOW_BARS in wanted:
        # A window's study from before its bars were recorded: its hash covers every bar.
        why = (
            "the bars the feed gives changed, and the study, made by an earlier tradefleet, "
            "recorded a hash of all of them, not of those up to its window's end, so bars "
            "appended since cannot be told from bars changed"
        )
    else:
        why = "the bars the feed gives changed (the data file's content, or where it is read from)"
    return [FieldError("spec.data", f"{other_bars}: {why}; {advice}")]


def _window_end(config: SearchConfig) -> str:
    """Where a window's bars end, in words: "bar 1499, 2017-03-10 11:00 UTC"."""
    assert config.window is not None  # only a window's study records its bars
    last = config.window.end - 1
    if last >= len(config.timeline):
        return f"bar {last}"
    when = datetime.fromtimestamp(config.timeline[last], UTC)
    return f"bar {last}, {when:%Y-%m-%d %H:%M} UTC"


def _changed(stored: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """The settings added, removed or changed between two ``bot_identity`` results."""
    return sorted(
        path for path in stored.keys() | wanted.keys() if stored.get(path) != wanted.get(path)
    )


def _open_study(
    config: SearchConfig, storage: JournalStorage, direction: Direction, identity: dict[str, Any]
) -> optuna.Study:
    """The study ``config`` names: resumed when the file holds it and it was made for this
    search (else refused, the file not written to), created otherwise.

    Not ``create_study(load_if_exists=True)``: on a journal file that appends a create-study
    line for a study that exists, on every resume and on a refused one.
    """
    try:
        study_id = storage.get_study_id_from_name(config.study_name)
    except KeyError:
        study = optuna.create_study(
            study_name=config.study_name,
            storage=storage,
            sampler=_sampler(config, 0),
            direction=direction,
        )
        study.set_user_attr("identity", identity)
        return study
    trials = storage.get_all_trials(study_id, deepcopy=False)
    stored = storage.get_study_user_attrs(study_id).get("identity")
    if stored is None and not trials:
        # Created but never recorded (another program's, or a run killed between the two
        # writes): nothing in it to check.
        storage.set_study_user_attr(study_id, "identity", identity)
    else:
        _check_resumed(stored, identity, config)
        if stored is not None and WINDOW_BARS in identity and WINDOW_BARS not in stored:
            # A window's study from before its bars were recorded, resumed on the bars it
            # was made on (all of them checked): its trials ran on the bars before its end,
            # so they are recorded now and bars appended later are accepted.
            upgraded = {**stored, WINDOW_BARS: identity[WINDOW_BARS]}
            storage.set_study_user_attr(study_id, "identity", upgraded)
    return optuna.load_study(
        study_name=config.study_name, storage=storage, sampler=_sampler(config, len(trials))
    )


def _done(study: optuna.Study) -> int:
    """Trials done: ranked (complete) or without a value to rank (``invalid``). Failed ones —
    interrupted, or lost with a worker — are not: a resumed search runs others instead."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state is TrialState.COMPLETE
        or (t.state is TrialState.FAIL and "invalid" in t.user_attrs)
    )


def _fail_stale(study: optuna.Study, storage: JournalStorage) -> int:
    """Trials a run that was killed left running: ended as interrupted (not failed), so a grid
    runs their points again and they are not counted as failures."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED, "left running by a run that was killed")
        study.tell(trial.number, state=TrialState.FAIL)
    return len(stale)


def _point(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((name, repr(params[name])) for name in sorted(params))


def _grid_progress(study: optuna.Study) -> tuple[int, int]:
    """(grid points done, points queued again): failed points — interrupted or lost with a
    worker, not invalid (refused, or without a value to rank) — are queued to run again.

    Optuna's grid sampler counts a failed trial's point as visited; it is not, so its params
    are enqueued (``study.ask`` hands out enqueued trials first).
    """
    trials = study.get_trials(deepcopy=False)
    done = {
        _point(t.params)
        for t in trials
        if t.state is TrialState.COMPLETE
        or (t.state is TrialState.FAIL and "invalid" in t.user_attrs)
    }
    waiting = {
        _point(t.system_attrs.get("fixed_params", {}))
        for t in trials
        if t.state is TrialState.WAITING
    }
    again: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for trial in trials:
        point = _point(trial.params)
        if trial.state is TrialState.FAIL and trial.params and point not in done | waiting:
            again[point] = dict(trial.params)
    for params in again.values():
        study.enqueue_trial(params, skip_if_exists=False)
    return len(done), len(again) + len(waiting)


def _trial_said(trial: Trial, space: Space) -> str:
    """ "trial 3 (fast=10, slow=30)": which trial failed, with the params to reproduce it."""
    ran = space.on_steps(trial.params)
    params = ", ".join(f"{name}={value!r}" for name, value in sorted(ran.items()))
    return f"trial {trial.number} ({params or 'no params'})"


def _tell_cut_short(study: optuna.Study, trial: Trial, error: BaseException) -> None:
    """End ``trial``, which did not finish because of ``error``: failed when the error is one
    (``Exception``: a bug, a worker lost), interrupted when the search was stopped (Ctrl-C's
    ``KeyboardInterrupt``, SIGTERM's ``Terminated``: ``BaseException`` only). Either way a
    resumed search makes it up (a grid runs its point again); only a failure counts as one."""
    if isinstance(error, Exception):
        study.tell(trial, state=TrialState.FAIL)
    else:
        _tell_interrupted(study, trial, f"the search was stopped ({type(error).__name__})")


def _tell_interrupted(study: optuna.Study, trial: Trial, why: str) -> None:
    """End ``trial`` as cut short (``why``): a resumed grid runs its point again, and it is
    not counted as failed."""
    trial.set_user_attr(INTERRUPTED, why)
    study.tell(trial, state=TrialState.FAIL)


def _tell_invalid(study: optuna.Study, trial: Trial, kind: str, why: str) -> None:
    """End ``trial`` as done without a value: ``kind`` is one of PARAMS_MODEL, STRATEGY,
    NO_TRADES, UNRANKED; ``why`` is the trial's own reason (``optuna.load_study`` shows it)."""
    trial.set_user_attr("invalid", why)
    trial.set_user_attr("invalid_kind", kind)
    study.tell(trial, state=TrialState.FAIL)


def _invalid_kind(trial: FrozenTrial) -> str:
    """Which kind of invalid trial ``trial`` is (it has ``invalid``). A study written before
    kinds were recorded says so by its figures: a trial with figures ran."""
    kind = trial.user_attrs.get("invalid_kind")
    if kind is not None:
        return str(kind)
    figures = trial.user_attrs.get("figures")
    if figures is None:
        return PARAMS_MODEL
    return UNRANKED if figures.get("trades") else NO_TRADES


def _value(figures: FigureValues, metric: str) -> float | str:
    """The value a trial is ranked by, or why it has none (a run without a trade: none)."""
    if not figures.get("trades"):
        return (
            f"no trades: {metric} is not defined without a trade "
            "(a set that never trades is not ranked)"
        )
    value = figures.get(metric)
    if value is None and metric == "profit_factor":
        return _profit_factor_without_a_loss(figures)
    if value is None or not math.isfinite(float(value)):
        return f"{metric} is not defined"
    return float(value)


def _profit_factor_without_a_loss(figures: FigureValues) -> float | str:
    """The profit factor of a run with trades but no losing one (the figures leave it None, as
    gross profit ÷ a gross loss of 0 is no number): infinite when a trade won — no set can do
    better, so it ranks first, as the report's "∞ (no losing trade)" says — and none when
    every trade closed at exactly 0: nothing to rank them by."""
    if not figures.get("win_rate"):
        return "no trade won or lost: profit_factor is not defined"
    return math.inf


def run_search(
    config: SearchConfig,
    pool: Executor,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    registry: PluginRegistry | None = None,
    require_best: bool = True,
) -> SearchResult:
    """Run ``config``'s trials (up to ``jobs`` at once on ``pool``) and return the best.

    The study ends with ``config.trials`` trials done in all (a grid: its points), counting
    those earlier runs did: a finished study runs none. The trials — their params, values and
    numbers — and so the best depend on ``config`` (its seed and ``parallel``), not on
    ``jobs``. Without a trial to rank (none traded, say) it refuses, naming why; with
    ``require_best`` false it returns a result whose ``best_params`` is None.
    """
    if config.metric not in METRICS:
        raise SpecError([FieldError("--metric", f"one of {', '.join(METRICS)}")])
    if config.parallel < 1:
        raise SpecError([FieldError("--parallel", "must be at least 1")])
    registry = registry or default_registry()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = METRICS[config.metric]
    # Known before the file is opened: a resume it refuses writes nothing.
    identity = _identity(
        config,
        data_key(config.manifest, config.base_dir, registry),
        plugin_versions(config.manifest, registry),
        _window_bars(config, registry),
    )
    config.study_path.parent.mkdir(parents=True, exist_ok=True)
    backend = BufferedJournalFile(config.study_path)
    try:
        storage = JournalStorage(backend)
        study = _open_study(config, storage, direction, identity)
        result = _search(study, storage, config, pool, jobs, progress, registry, direction)
    finally:
        backend.flush()
    if require_best and result.best_params is None:
        # Headed as the search's, not the study file's: the file is sound (a rerun resumes
        # it), and a user told it holds an error would delete it.
        raise SpecError([FieldError("--space", result.why_none)], subject=SEARCH)
    return result


def _search(
    study: optuna.Study,
    storage: JournalStorage,
    config: SearchConfig,
    pool: Executor,
    jobs: int,
    progress: Progress | None,
    registry: PluginRegistry,
    direction: Direction,
) -> SearchResult:
    notes: list[str] = []
    stale = _fail_stale(study, storage)
    if stale:
        notes.append(f"{stale} trial(s) a killed run left running were ended as interrupted")
    if config.sampler == "grid":
        done, queued = _grid_progress(study)
        if queued:
            notes.append(f"{queued} grid point(s) an earlier run did not finish run again")
        remaining = (config.space.grid_size() or 0) - done
        wanted = remaining if config.trials is None else max(config.trials - done, 0)
        total = min(wanted, remaining)
    else:
        done = _done(study)
        total = max((DEFAULT_TRIALS if config.trials is None else config.trials) - done, 0)
    if done and not total:
        notes.append(
            f"the study has its {done} trial(s) done already: none to run "
            "(--trials counts them all: raise it to run more)"
        )
    in_flight = trials_in_flight(config.sampler, config.parallel, jobs)
    if jobs > in_flight and total > in_flight:
        notes.append(
            f"{config.sampler} ran at most {in_flight} trial(s) at once (--parallel): "
            f"{jobs - in_flight} of the {jobs} processes had none to run"
        )
    started = time.perf_counter()
    trials = _Trials(study, config, registry, progress, total)
    queue: deque[_Pending] = deque()  # asked, not yet told: oldest first
    asked = 0
    try:
        # Each step depends only on what the steps before it did, never on which process
        # finishes first: ask while the queue has room, else wait for its oldest and tell it.
        while asked < total or queue:
            if asked < total and len(queue) < in_flight:
                asked += 1
                pending = trials.ask(pool)
                if pending is not None:
                    queue.append(pending)
            else:
                trials.tell(queue.popleft())
    except BaseException as error:
        # The trials asked after the one that ended the search are cut short by it, whatever
        # it was: none of them failed.
        why = f"the search ended ({type(error).__name__}) before it was told"
        for pending in queue:
            pending.future.cancel()
            _tell_interrupted(study, pending.trial, why)
        raise
    notes.extend(path_notes(trials.paths))
    return _result(study, config, direction, trials.ran, time.perf_counter() - started, notes)


@dataclass(frozen=True)
class _Pending:
    """A trial asked and submitted, not yet told."""

    trial: Trial
    future: Future[Evaluation]


@dataclass
class _Trials:
    """One call's trials: asked, run on a pool, told, counted for the progress bar."""

    study: optuna.Study
    config: SearchConfig
    registry: PluginRegistry
    progress: Progress | None
    total: int
    done: int = 0  # told by this call
    ran: int = 0  # of them, run by a worker (not those the params model refused unrun)
    paths: Counter[tuple[str, str]] = field(default_factory=Counter)  # (path, why): trials

    def ask(self, pool: Executor) -> _Pending | None:
        """The next trial, submitted to ``pool``; None when the params model refused its set
        (told at once: it is never run)."""
        trial = self.study.ask()
        params = suggest(trial, self.config.space)
        problems = check_params(self.config.manifest, params, self.registry)
        if problems:
            # Checked before running: the params model refuses the set (slow <= fast).
            why = "; ".join(str(p) for p in problems)
            _tell_invalid(self.study, trial, PARAMS_MODEL, why)
            self._told()
            return None
        task = Task(
            self.config.manifest,
            self.config.base_dir,
            params,
            self.config.window,
            self.config.timeline if self.config.window is not None else (),
        )
        try:
            return _Pending(trial, pool.submit(evaluate, task))
        except BaseException as error:
            _tell_cut_short(self.study, trial, error)  # a pool that broke: not left running
            raise

    def tell(self, pending: _Pending) -> None:
        """Wait for ``pending``'s run and tell the study its outcome."""
        trial = pending.trial
        try:
            evaluation = pending.future.result()
        except StrategyRefused as refused:
            # The strategy's own check at its start refused this set (MACD's slow not above
            # fast): a property of these params, as a params-model refusal is, so the trial
            # is refused, saying why, and the search goes on.
            _tell_invalid(self.study, trial, STRATEGY, str(refused))
            self.ran += 1
            self._told()
            return
        except StrategyError as error:
            # A bug of the strategy: it would recur, so the search ends, saying which trial
            # (its number and params) to reproduce it with.
            self.study.tell(trial, state=TrialState.FAIL)
            raise error.in_context(_trial_said(trial, self.config.space)) from error
        except BaseException as error:
            # Any other error of a worker (bad data, a plugin bug, a ValueError after the
            # start) would recur: end the search, loudly. Ctrl-C or SIGTERM while waiting
            # for it cut it short: recorded as interrupted, not failed.
            _tell_cut_short(self.study, trial, error)
            raise
        self.ran += 1
        trial.set_user_attr("figures", evaluation.figures)
        self.paths[(evaluation.path, evaluation.fallback)] += 1
        # The first and last bar the run was given: walk-forward's proof that an in-sample
        # search never saw its test window.
        trial.set_user_attr("bars_seen", list(evaluation.seen))
        value = _value(evaluation.figures, self.config.metric)
        if isinstance(value, str):
            traded = evaluation.figures.get("trades")
            _tell_invalid(self.study, trial, UNRANKED if traded else NO_TRADES, value)
        else:
            self.study.tell(trial, value)
        self._told()

    def _told(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def path_notes(paths: Counter[tuple[str, str]]) -> list[str]:
    """Which path evaluated the trials, and why the event engine ran those it ran."""
    notes = []
    for (path, why), count in sorted(paths.items()):
        if path == "vector":
            notes.append(f"{count} trial(s) evaluated by the vectorised path")
        else:
            reason = f": {why}" if why else ""
            notes.append(f"{count} trial(s) evaluated by the event engine{reason}")
    return notes


def _result(
    study: optuna.Study,
    config: SearchConfig,
    direction: str,
    ran: int,
    seconds: float,
    notes: list[str],
) -> SearchResult:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    failed = [t for t in trials if t.state is TrialState.FAIL and INTERRUPTED not in t.user_attrs]
    invalid = Counter(_invalid_kind(t) for t in failed if "invalid" in t.user_attrs)
    best = _best(complete, direction) if complete else None
    return SearchResult(
        study_name=config.study_name,
        metric=config.metric,
        direction=direction,
        best_params=config.space.on_steps(best.params) if best is not None else None,
        best_value=float(best.value) if best is not None and best.value is not None else math.nan,
        best_figures=dict(best.user_attrs.get("figures", {})) if best is not None else {},
        ran=ran,
        complete=len(complete),
        failed=len(failed) - invalid.total(),
        invalid=invalid[PARAMS_MODEL],
        seconds=seconds,
        notes=notes,
        refused=invalid[STRATEGY],
        no_trades=invalid[NO_TRADES],
        unranked=invalid[UNRANKED],
        why_none="" if complete else _why_none(failed, invalid[NO_TRADES]),
    )


def _why_none(failed: list[FrozenTrial], no_trades: int) -> str:
    """Why no trial has a value to rank, in a line: the trials' own reasons."""
    reasons = sorted({str(t.user_attrs.get("invalid", "failed")) for t in failed})[:3]
    why = "no trial completed: " + " | ".join(reasons or ["none ran"])
    if no_trades:
        why += (
            f"; {no_trades} trial(s) ran without a trade and none with one ranked, "
            "so no params are best"
        )
    return why


def _best(complete: list[FrozenTrial], direction: str) -> FrozenTrial:
    """The best trial; of equal values the one that made the most, then the one with the
    smallest params (compared as numbers), whatever order trials finished in."""
    sign = -1.0 if direction == "maximize" else 1.0
    # Net P&L second: several sets whose every trade won all have an infinite profit factor,
    # and the one that made more is the better of them.
    return min(
        complete,
        key=lambda t: (sign * float(t.value or 0.0), -_net_pnl(t), _order_key(t.params)),
    )


def _net_pnl(trial: FrozenTrial) -> float:
    value = trial.user_attrs.get("figures", {}).get("net_pnl")
    return float(value) if value is not None else 0.0


def _order_key(params: Mapping[str, Any]) -> tuple[tuple[str, int, float, str], ...]:
    # Ties between equal values are broken by the params themselves, not the trial number
    # (which a resumed or reordered search changes), and by their values as numbers: as text,
    # fast 10 came before fast 6.
    return tuple((name, *_sortable(params[name])) for name in sorted(params))


def _sortable(value: Any) -> tuple[int, float, str]:
    """A param's value in an order every kind shares: numbers by value, then booleans (False
    first), then anything else (a choice of strings) by its text."""
    if isinstance(value, bool):
        return (1, float(value), "")
    if isinstance(value, int | float):
        return (0, float(value), "")
    return (2, 0.0, repr(value))
