"""One trial: a bot's manifest, strategy params and a window of bars in; figures out.

:func:`evaluate` is a function of its :class:`Task` alone (it reads the bot's data files and
writes nothing: its journal is a ``DiscardingJournal``), so the same call can run in this
process, in a process pool, or — later — in a Kubernetes Job given the task as JSON.

A window is a range of bar indices over the feed's *timeline* (its distinct bar timestamps).
The worker limits the feed through the manifest (the feed's ``start``/``end`` params, which the
``csv`` feed has) to ``warmup`` bars before the window's first bar up to its end: the session
shows those warm-up bars to the strategy as history (never traded), so trading starts exactly
at the window's first bar — the way a backtest of the window would, with the strategy's state
built only from bars before it.

Parsing a CSV file costs about four times the backtest of its bars, so by default
(``Task.reuse_bars``) a process reads the feed once and slices the same ``[start, end)`` range
out of its bars for each trial (:func:`feed_bars`); ``reuse_bars=False`` has the feed read the
file for every trial, limited by its params. Both give the same bars (tested).

A strategy with the ``target-positions`` capability, on a bot the vectorised path supports
(one symbol, the paper broker, a fixed-size sizer alone: :func:`~tradefleet_runtime.optimize.
vector.vector_terms`), is evaluated by :mod:`tradefleet_runtime.optimize.vector` instead of the
event engine (``Task.vector``); the evaluation says which path ran it and, when the engine did,
why (``Evaluation.path``, ``Evaluation.fallback``).
"""

from __future__ import annotations

import bisect
import copy
import functools
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from tradefleet_runtime.bar_columns import BarColumns, bar_columns
from tradefleet_runtime.contracts import FeedRequest
from tradefleet_runtime.errors import FieldError, SpecError
from tradefleet_runtime.journal.discarding import DiscardingJournal
from tradefleet_runtime.model import Bar, Trade
from tradefleet_runtime.optimize.plan_check import plan_looks_ahead
from tradefleet_runtime.optimize.vector import run_plan
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.report.bars import BarRecorder
from tradefleet_runtime.report.metrics import compute_figures, end_of_data_at_symbol_ends
from tradefleet_runtime.session import Bot, BotSession, assemble
from tradefleet_runtime.session import started_warmup as session_warmup
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.vector_backtest import vector_terms_of

FigureValues = dict[str, float | int | None]


@dataclass(frozen=True)
class Window:
    """Bars ``start`` (first traded) to ``end`` (one past the last), as timeline indices."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"a window needs 0 <= start < end (got {self.start}, {self.end})")

    def as_json(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True)
class Task:
    """Everything one trial needs; picklable, and JSON-able but for the tuple types."""

    manifest: Mapping[str, Any]  # the bot's manifest document (wire names, as in YAML)
    base_dir: str  # the manifest's folder: relative data paths resolve against it
    params: Mapping[str, Any]  # strategy params set over the manifest's own
    window: Window | None = None  # None: every bar the feed gives
    timeline: tuple[int, ...] = ()  # the feed's bar timestamps; needed with a window
    detail: bool = False  # also return the equity curve and the trades
    reuse_bars: bool = True  # slice this process's copy of the feed's bars (see above)
    vector: bool = True  # the vectorised path when the bot supports it (see above)


@dataclass(frozen=True)
class Evaluation:
    figures: FigureValues
    seen: tuple[int | None, int | None]  # first and last bar the feed gave (history included)
    history_bars: int
    equity_ts: tuple[int, ...] = ()
    equity: tuple[float, ...] = ()
    exposure: tuple[float, ...] = ()
    # Closed trades, then any position the run ended with, closed at its last mark (``end of
    # data``) at its own symbol's last bar: the trades the figures count, as a backtest's
    # report does.
    trades: tuple[Trade, ...] = ()
    fees: float = 0.0
    notes: tuple[str, ...] = field(default=())
    path: str = "engine"  # "vector": evaluated by the vectorised path
    fallback: str = ""  # why the event engine ran it, when the vectorised path was asked for


@functools.cache
def default_registry() -> PluginRegistry:
    """The installed plugins, discovered once per process (discovery reads entry points)."""
    return PluginRegistry.discover()


def warm_up(manifest: Mapping[str, Any] | None, base_dir: str) -> None:
    """A pool worker's start: discover the plugins and read the bot's data once."""
    default_registry()
    if manifest is not None:
        feed_bars(manifest, base_dir)


def with_params(manifest: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``manifest`` as a backtest, its strategy params overridden by ``params``."""
    document = copy.deepcopy(dict(manifest))
    spec = document.setdefault("spec", {})
    if not isinstance(spec, dict) or not isinstance(spec.get("strategy"), dict):
        raise SpecError([FieldError("spec.strategy", "required field is missing")])
    spec["mode"] = "backtest"  # a paper or live bot is searched on its data, never traded
    strategy = spec["strategy"]
    strategy["params"] = {**(strategy.get("params") or {}), **params}
    return document


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def feed_bounds(
    timeline: Sequence[int], window: Window, warmup: int
) -> tuple[int | None, int | None]:
    """The feed's first and end (exclusive) timestamps for ``window`` after ``warmup`` bars.

    None means unbounded on that side. A window starting before ``warmup`` bars of data exist
    starts the feed at the first bar: the session's warm-up then delays trading, as in a
    backtest of the whole data.
    """
    if window.end > len(timeline):
        raise ValueError(f"window ends at bar {window.end}; the data has {len(timeline)}")
    first = window.start - warmup
    start = timeline[first] if first > 0 else None
    end = timeline[window.end] if window.end < len(timeline) else None
    return start, end


def limit_feed(
    document: dict[str, Any], registry: PluginRegistry, start: int | None, end: int | None
) -> dict[str, Any]:
    """Set the feed's ``start``/``end`` params in ``document`` (a backtest manifest)."""
    if start is None and end is None:
        return document
    data = document["spec"].get("data")
    if not isinstance(data, dict) or "name" not in data:
        raise SpecError([FieldError("spec.data", "a window needs a data feed")])
    properties = (
        registry.get(PluginKind.DATA_FEED, data["name"]).spec.params_schema().get("properties", {})
    )
    if "start" not in properties or "end" not in properties:
        raise SpecError(
            [
                FieldError(
                    "spec.data.name",
                    f"feed {data['name']!r} has no start/end params, so it cannot be limited "
                    "to a window of bars",
                )
            ]
        )
    params = dict(data.get("params") or {})
    params.pop("start", None)
    params.pop("end", None)
    if start is not None:
        params["start"] = _iso(start)
    if end is not None:
        params["end"] = _iso(end)
    data["params"] = params
    return document


def feed_bars(
    manifest: Mapping[str, Any], base_dir: str, registry: PluginRegistry | None = None
) -> tuple[Bar, ...]:
    """Every bar the bot's feed gives, in order; read once per process for the same feed and
    the same files (a data file changed since is read again: ``_files_read``)."""
    spec = manifest.get("spec", {})
    data, market = spec.get("data"), spec.get("market")
    key = json.dumps(
        [data, market, base_dir, _files_read(data, base_dir)], sort_keys=True, default=str
    )
    cached = _BARS.get(key)
    if cached is not None:
        return cached
    if not isinstance(data, dict) or "name" not in data:
        raise SpecError([FieldError("spec.data", "optimisation needs a data feed")])
    manifest_model = parse_manifest(with_params(manifest, {}))
    registry = registry or default_registry()
    feed = registry.build(
        PluginKind.DATA_FEED, data["name"], data.get("params") or {}, ["spec", "data"]
    )
    market_spec = manifest_model.spec.market
    request = FeedRequest(tuple(market_spec.symbols), market_spec.timeframe_s, Path(base_dir))
    bars = tuple(feed.bars(request))
    _BARS.clear()  # one feed per process at a time: a search or walk-forward reads one
    _BARS[key] = bars
    return bars


def _files_read(data: Any, base_dir: str) -> list[tuple[str, int, int, int]]:
    """The files the feed's params name anywhere in them (a csv feed's ``path``, or each of its
    ``files``), each with its size and times of change (the inode's too, which no writer sets
    back as ``cp -p`` or ``touch -r`` set the content's): the bars cached for a file are not
    those of the file as it is now, once it changed (a search in one process after the data
    was rewritten; a study resumed then is hashed on the bars read now, and refused when they
    differ)."""
    found: list[tuple[str, int, int, int]] = []
    values = [data.get("params")] if isinstance(data, dict) else []
    while values:
        value = values.pop()
        if isinstance(value, dict):
            values.extend(value.values())
        elif isinstance(value, list | tuple):
            values.extend(value)
        elif isinstance(value, str) and value:
            path = Path(base_dir) / value
            try:
                stat = path.stat()
            except (OSError, ValueError):
                continue
            if path.is_file():
                found.append((str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    return sorted(found)


# The bars of the last feed read by this process (see feed_bars): a cache, not state.
_BARS: dict[str, tuple[Bar, ...]] = {}


def data_key(
    manifest: Mapping[str, Any],
    base_dir: str,
    registry: PluginRegistry | None = None,
    *,
    end: int | None = None,
) -> str:
    """A SHA-256 of every bar the bot's feed gives — symbol, timeframe, time, prices, volume —
    whichever feed and file gave them: what a study's trials ran on (a study resumed on other
    bars is refused). Computed once per process for the same bars (about 0.4 s a million).

    With ``end`` (a time), of the bars before it only: all that a trial of a window ending
    there is given, warm-up included (:func:`feed_bounds`), so bars appended after ``end``
    leave it as it is. The same bars give the same hash, limited or not.
    """
    bars = feed_bars(manifest, base_dir, registry)
    if end is not None:
        return _bars_key(_slice(bars, None, end))
    if _DATA_KEY and _DATA_KEY[0][0] is bars:
        return _DATA_KEY[0][1]
    key = _bars_key(bars)
    _DATA_KEY[:] = [(bars, key)]
    return key


def _bars_key(bars: Sequence[Bar]) -> str:
    """The SHA-256 of ``bars`` (see :func:`data_key`)."""
    digest = hashlib.sha256(b"tradefleet-bars-1\n")
    symbols = sorted({bar[0] for bar in bars})
    digest.update(json.dumps(symbols).encode())
    code = {symbol: float(index) for index, symbol in enumerate(symbols)}
    chunk = 65_536
    for first in range(0, len(bars), chunk):
        part = bars[first : first + chunk]
        # Eight float64s a bar (times and timeframes are exact below 2**53 seconds).
        numbers = np.fromiter(
            itertools.chain.from_iterable((code[bar[0]], *bar[1:8]) for bar in part),
            dtype=np.float64,
            count=8 * len(part),
        )
        digest.update(numbers.tobytes())
    return digest.hexdigest()


# The hash of the bars read last (see data_key): a cache, not state.
_DATA_KEY: list[tuple[tuple[Bar, ...], str]] = []


def load_timeline(
    manifest: Mapping[str, Any], base_dir: str, registry: PluginRegistry | None = None
) -> tuple[int, ...]:
    """The distinct bar timestamps the bot's feed gives, oldest first."""
    return tuple(sorted({bar[2] for bar in feed_bars(manifest, base_dir, registry)}))


def _slice(bars: Sequence[Bar], start: int | None, end: int | None) -> Sequence[Bar]:
    """The bars with ``start <= ts < end``: what the feed limited by its params gives."""
    # Searched in place (the bars are sorted by time): a trial copies no list of timestamps.
    time_of = itemgetter(2)
    first = 0 if start is None else bisect.bisect_left(bars, start, key=time_of)
    last = len(bars) if end is None else bisect.bisect_left(bars, end, key=time_of)
    return bars if (first, last) == (0, len(bars)) else bars[first:last]


def evaluate(task: Task, registry: PluginRegistry | None = None) -> Evaluation:
    """Backtest ``task.manifest`` with ``task.params`` on ``task.window``: its figures.

    The run is the one ``tradefleet backtest`` makes (assemble → ``BotSession``), on a journal
    that keeps nothing (``DiscardingJournal``): a trial never touches the bot's own journal, and
    writes none of its own that nobody would read.
    """
    registry = registry or default_registry()
    document = with_params(task.manifest, task.params)
    start = end = None
    warmup: int | None = None
    if task.window is not None or (task.vector and task.reuse_bars):
        # Asked of the started strategy: params its ``on_start`` refuses are refused here
        # (``StrategyRefused``) before the vectorised path, which never starts it, ranks them.
        warmup = started_warmup(document, registry, task.base_dir)
    if task.window is not None:
        assert warmup is not None
        start, end = feed_bounds(task.timeline, task.window, warmup)
    bars: Sequence[Bar] | None = None
    fallback = ""
    if task.reuse_bars:
        bars = _slice(feed_bars(task.manifest, task.base_dir, registry), start, end)
    else:
        document = limit_feed(document, registry, start, end)
        fallback = "the bars are read by the feed for each trial (reuse_bars off)"
    bot = assemble(parse_manifest(document), registry, Path(task.base_dir))
    if task.vector and bars is not None:
        assert warmup is not None
        vectorised = _vector_evaluation(task, bot, bars, (start, end, warmup), registry)
        if isinstance(vectorised, Evaluation):
            return vectorised
        fallback = vectorised
    elif not task.vector:
        fallback = "the vectorised path was not asked for"
    # Its figures come from the engine's result: a journal would be written and thrown away.
    session = BotSession(bot, DiscardingJournal(), bars=bars)
    # A detailed run (its trades reported) records each symbol's last traded bar, as
    # ``tradefleet backtest`` does; a trial's figures do not depend on when a trade ended.
    recorder = BarRecorder() if task.detail else None
    if recorder is not None:
        session.pacer = recorder.watch
    outcome = session.run_to_end()
    result = outcome.result
    seen: tuple[int | None, int | None]
    if bars is not None:
        seen = (bars[0][2], bars[-1][2]) if bars else (None, None)
        notes: tuple[str, ...] = ()
    else:
        feed = result.feed
        seen = (feed.first_ts, feed.last_ts) if feed is not None else (None, None)
        notes = tuple(feed.notes) if feed is not None else ()
    if not task.detail:
        return Evaluation(
            outcome.figures.as_json(),
            seen,
            result.history_bars,
            notes=notes,
            fallback=fallback,
        )
    assert recorder is not None  # a detailed run records its bars
    # The session ends every position still open at the run's last close; a symbol whose bars
    # ended earlier (a shorter file) ends its trade at its own last bar, as its report does.
    open_trades = end_of_data_at_symbol_ends(
        outcome.open_trades, recorder.ranges(), result.timeframe_s
    )
    return Evaluation(
        outcome.figures.as_json(),
        seen,
        result.history_bars,
        equity_ts=tuple(result.equity_ts),
        equity=tuple(result.equity),
        exposure=tuple(result.exposure),
        trades=(*result.trades, *open_trades),
        fees=result.fees,
        notes=notes,
        fallback=fallback,
    )


def started_warmup(document: dict[str, Any], registry: PluginRegistry, base_dir: str) -> int:
    """The warm-up ``document``'s strategy asks for once started (``session.started_warmup``):
    asked before, a window's run would spend its own first bars warming up instead of the bars
    before it (its out-of-sample figures cut short)."""
    return session_warmup(parse_manifest(document), registry, Path(base_dir))


def _vector_evaluation(
    task: Task,
    bot: Bot,
    bars: Sequence[Bar],
    window: tuple[int | None, int | None, int],
    registry: PluginRegistry,
) -> Evaluation | str:
    """The trial by the vectorised path, or why the event engine must run it. ``window``: the
    feed's bounds and the warm-up the started strategy asks for."""
    start, end, warmup = window
    spec = bot.manifest.spec
    name = spec.strategy.name
    terms = vector_terms_of(bot)
    if isinstance(terms, str):
        return terms
    strategy = bot.planner
    assert strategy is not None  # vector_terms_of refused a bot without one
    columns = _window_columns(task, bars, start, end, registry)
    if len(columns) != len(bars) or any(bar[1] != spec.market.timeframe_s for bar in bars[:1]):
        return "the feed's bars are not one series of the bot's timeframe"
    plan = strategy.target_positions(columns)
    if plan is None:
        return f"strategy {name!r} cannot state these params as target positions"
    if plan_looks_ahead(strategy.target_positions, columns, plan.target, warmup) is not None:
        # One reason for every trial (the search counts trials by it); the CLI's backtest
        # names the bar.
        return f"strategy {name!r}'s target_positions looks ahead"
    run = run_plan(columns, plan, terms, warmup)
    if isinstance(run, str):
        return run
    figures = compute_figures(
        initial=terms.initial_capital,
        timestamps=run.equity_ts,
        equity=run.equity,
        exposure=run.exposure,
        trades=(),
        fees=run.fees,
        net_pnls=run.trade_net_pnl,
    )
    seen = (bars[0][2], bars[-1][2]) if bars else (None, None)
    if not task.detail:
        return Evaluation(figures.as_json(), seen, run.history_bars, path="vector")
    return Evaluation(
        figures.as_json(),
        seen,
        run.history_bars,
        equity_ts=tuple(run.equity_ts.tolist()),
        equity=tuple(run.equity.tolist()),
        exposure=tuple(run.exposure.tolist()),
        trades=tuple(run.trade_list()),
        fees=run.fees,
        path="vector",
    )


def _window_columns(
    task: Task, bars: Sequence[Bar], start: int | None, end: int | None, registry: PluginRegistry
) -> BarColumns:
    """The columns of ``bars`` (the feed's bars limited to ``[start, end)``), built once per
    process from the whole feed and sliced."""
    whole = feed_bars(task.manifest, task.base_dir, registry)
    if not _COLUMNS or _COLUMNS[0][0] is not whole:
        _COLUMNS[:] = [(whole, bar_columns(whole))]
    columns = _COLUMNS[0][1]
    first = 0 if start is None else int(np.searchsorted(columns.ts, start, "left"))
    last = len(columns) if end is None else int(np.searchsorted(columns.ts, end, "left"))
    return columns.take(slice(first, last))


# The columns of the feed's bars read last (see _window_columns): a cache, not state.
_COLUMNS: list[tuple[tuple[Bar, ...], BarColumns]] = []
