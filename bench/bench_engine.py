"""Backtest speed on 1,000,000 bars, measured against a true floor and backtesting.py in one run.

The workload (issue 17): ema-cross 10/30 always in the market, a fixed size of 1, a 0.1% fee,
fills at the next open (about 73,000 fills) on a geometric random walk of hourly bars. In one
process and one run, on the same bars, each reaching the same final equity and trade count:

- ``floor_bars_per_s``: a plain Python loop doing the same trading (EMAs, crosses, fills at
  the next open with the fee, cash, an equity value per bar) on pre-built lists — generating
  the data is not timed;
- ``engine_bars_per_s``: the engine through ``BotSession`` on the same bars already loaded (the
  ``tradefleet backtest`` path without the CSV), journaling to a file as the CLI does;
- ``backtesting_py_bars_per_s``: backtesting.py 0.6.6 (``make bench`` installs the ``bench``
  extra) on the same data in a DataFrame, given the same EMA values;
- ``vector_bars_per_s``: the optimiser's vectorised path (ema-cross's target positions,
  :func:`run_plan`, the figures) on the same bars as columns;
- ``cli_backtest_s``: the whole ``tradefleet backtest --json`` process on the same bars as a
  CSV file, its columnar cache removed first (``cli_backtest_cached_s``: run again, cached);
  this bot is one the vectorised path can state, so the CLI takes it
  (``tradefleet_runtime.vector_backtest``: the engine's journal rows and report);
  ``cli_engine_backtest_s`` is the same process with ``--engine`` (bar by bar), whose report
  must be the same;
- ``backtesting_py_process_s``: backtesting.py's whole process on the same CSV (pandas reads
  it and computes the EMAs: ``backtesting_py_process.py``); the two whole processes run in
  back-to-back pairs (``BENCH_PROCESS_PAIRS``, default 3), and
  ``backtesting_py_process_vs_cli_median`` is the median of the pairs' ratios
  (``backtesting_py_process_vs_cli``, the ratio of the two bests, mixes runs minutes apart);
- ``per_order_us`` and ``per_bar_us``: from the engine's time on two runs of the same bars with
  different numbers of orders (10/30 and 200/800): time = bars × per_bar + orders × per_order;
- where the time goes: ``per_order_unjournaled_us`` is ``per_order_us`` measured again with a
  journal that drops every order, decision, fill and status row (what an order costs the engine,
  the broker and the strategy; the rest, ``per_order_journal_us``, is SQLite and its rows), and
  ``loop_per_bar_us`` is a bar through the engine and the paper broker with a strategy that
  declares nothing and does nothing (the rest of ``per_bar_us`` is the strategy's indicators
  and ``on_bar``);
- ``peak_rss_mb``: the peak resident memory of the ``tradefleet backtest`` process (a
  1M-bar backtest on its own, polled from ``/proc``; ``cli_engine_peak_rss_mb`` with
  ``--engine``); ``bench_peak_rss_mb`` is this process's,
  which holds every path's data at once;
- ``csv_read_s`` / ``csv_cached_read_s``: the csv feed reading the 1M-row file (numpy reader,
  checks included) without and with its cache;
- ``equal_result``: every in-process path and the CLI reach the same final equity (to 1e-6
  of it) and trade count. backtesting.py's own process computes its EMAs with pandas, whose
  last bits differ; its result is compared and reported apart (``backtesting_py_process_equal``).

In-process times are CPU seconds (``time.process_time``), because the machine is shared;
subprocesses report their user + system CPU time (``os.wait4``), with wall-clock time beside
it. The processes import the project's bytecode, written first as an install writes it
(:func:`compile_packages`). Every path's time is the best of ``BENCH_REPEAT`` runs (default
3; each process twice): on this machine one run of the same code can cost up to twice
another's CPU time.
"""

from __future__ import annotations

import compileall
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tradefleet_plugins.feeds.csv_feed import read_csv_columns
from tradefleet_plugins.feeds.csv_params import CsvFeedParams
from tradefleet_runtime.bar_columns import BarColumns, cache_path
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.optimize.vector import VectorTerms, run_plan, vector_terms
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.metrics import compute_figures
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

BARS = int(os.environ.get("BENCH_BARS", 1_000_000))
REPEAT = int(os.environ.get("BENCH_REPEAT", 3))
PROCESS_PAIRS = int(os.environ.get("BENCH_PROCESS_PAIRS", 3))
HOUR = 3600
T0 = 1_500_000_000 - 1_500_000_000 % HOUR
FAST, SLOW = 10, 30
QUANTITY = 1.0
FEE_BPS = 10.0  # 0.1%
CAPITAL = 1_000_000.0
HERE = Path(__file__).parent
RESULTS = HERE / "results" / "engine.json"
BIN = Path(sys.executable).parent


def synthetic(count: int, seed: int = 7) -> BarColumns:
    """A geometric random walk of hourly bars (opens at the previous close)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, count)))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.001, count)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.001, count)))
    # Rounded as the CSV holds them, so every path sees the very same floats.
    values = [np.round(a, 6) for a in (open_, high, low, close)]
    open_, high, low, close = values
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    ts = T0 + np.arange(count, dtype=np.int64) * HOUR
    return BarColumns(ts, open_, high, low, close, np.ones(count))


def write_csv(columns: BarColumns, path: Path) -> None:
    with path.open("w") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        stamps = np.datetime_as_string(columns.ts.astype("datetime64[s]"))
        for start in range(0, len(columns), 100_000):
            part = slice(start, start + 100_000)
            out.writelines(
                f"{t.replace('T', ' ')},{o!r},{h!r},{lo!r},{c!r},1\n"
                for t, o, h, lo, c in zip(
                    stamps[part].tolist(),
                    columns.open[part].tolist(),
                    columns.high[part].tolist(),
                    columns.low[part].tolist(),
                    columns.close[part].tolist(),
                    strict=True,
                )
            )


def manifest(csv: Path, fast: int = FAST, slow: int = SLOW) -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "bench"},
        "spec": {
            "mode": "backtest",
            "strategy": {"name": "ema-cross", "params": {"fast": fast, "slow": slow}},
            "market": {"symbols": ["SYN"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"fee_bps": FEE_BPS, "leverage": 10}},
            "data": {"name": "csv", "params": {"path": str(csv)}},
            "risk": [{"name": "fixed-size", "params": {"quantity": QUANTITY}}],
            "capital": {"currency": "USD", "initial": CAPITAL},
        },
    }


# -- the floor --------------------------------------------------------------------------------


def floor(
    opens: list[float], closes: list[float], fast: int = FAST, slow: int = SLOW
) -> tuple[float, int, int]:
    """ema-cross's trading in a plain loop: (final equity, trades, fills)."""
    fee_rate = FEE_BPS / 10_000.0
    fast_alpha, slow_alpha = 2.0 / (fast + 1), 2.0 / (slow + 1)
    fast_ema = slow_ema = closes[0]
    direction = 0
    position = 0.0
    cash = CAPITAL
    pending = 0.0  # the position wanted at the next open
    trades = fills = 0
    equity = [0.0] * len(closes)
    for i, close in enumerate(closes):
        if pending != position:
            price = opens[i]
            if position:
                cash += position * price - abs(position) * price * fee_rate
                trades += 1
                fills += 1
            if pending:
                cash -= pending * price + abs(pending) * price * fee_rate
                fills += 1
            position = pending
        if i:
            fast_ema += fast_alpha * (close - fast_ema)
            slow_ema += slow_alpha * (close - slow_ema)
        if i >= slow - 1:
            now = 1 if fast_ema > slow_ema else (-1 if fast_ema < slow_ema else 0)
            if now and now != direction:
                if direction:
                    pending = now * QUANTITY
                direction = now
        equity[i] = cash + position * close
    return equity[-1], trades, fills


def _ema(closes: list[float], period: int) -> np.ndarray:
    alpha = 2.0 / (period + 1)
    out = np.empty(len(closes))
    value = closes[0]
    for i, close in enumerate(closes):
        if i:
            value += alpha * (close - value)
        out[i] = value
    return out


# -- the paths --------------------------------------------------------------------------------


class Unjournaled(Journal):
    """A journal that keeps runs, events and equity but drops every order, risk decision,
    fill and status row: the engine's cost per order without SQLite's."""

    def record_order(self, *args: Any, **kwargs: Any) -> None:
        pass

    def update_order(self, *args: Any, **kwargs: Any) -> None:
        pass

    def record_fill(self, *args: Any, **kwargs: Any) -> None:
        pass

    def record_risk(self, *args: Any, **kwargs: Any) -> None:
        pass


def engine(
    bars: list[Bar],
    csv: Path,
    journal_path: Path,
    fast: int,
    slow: int,
    journal_type: type[Journal] = Journal,
) -> Any:
    registry = PluginRegistry.discover()
    bot = assemble(parse_manifest(manifest(csv, fast, slow)), registry, csv.parent)
    journal = journal_type(journal_path, batched=True)
    try:
        return BotSession(bot, journal, bars=bars).run_to_end()
    finally:
        journal.close()


def loop_only(bars: list[Bar], csv: Path, journal_path: Path) -> float:
    """CPU seconds of the engine and the paper broker over ``bars`` with a strategy that
    declares no indicator and does nothing on a bar."""
    registry = PluginRegistry.discover()
    bot = assemble(parse_manifest(manifest(csv)), registry, csv.parent)
    bot.strategy.on_start = lambda ctx: None  # type: ignore[method-assign]
    bot.strategy.on_bar = lambda bar: None  # type: ignore[method-assign]
    journal = Journal(journal_path, batched=True)
    try:
        session = BotSession(bot, journal, bars=bars)
        engine = session.open()
        started = time.process_time()
        engine.run(iter(bars))
        return time.process_time() - started
    finally:
        journal.close()


def vector(columns: BarColumns) -> tuple[float, int]:
    registry = PluginRegistry.discover()
    bot = assemble(parse_manifest(manifest(Path("unused.csv"))), registry, HERE)
    # The bot's own terms, as the CLI builds them: with the paper broker's default maintenance
    # margin, so the figure pays the liquidation check every leveraged run pays.
    terms = vector_terms(
        ("SYN",),
        ("paper", bot.broker.params.model_dump()),  # type: ignore[attr-defined]
        [(name, plugin.params.model_dump()) for name, plugin in bot.risk],  # type: ignore[attr-defined]
        initial_capital=CAPITAL,
        timeframe_s=HOUR,
    )
    assert isinstance(terms, VectorTerms) and terms.maintenance_margin_rate > 0.0, terms
    plan = bot.strategy.target_positions(columns)  # type: ignore[attr-defined]
    run = run_plan(columns, plan, terms, SLOW)
    assert not isinstance(run, str), run
    figures = compute_figures(
        initial=CAPITAL,
        timestamps=run.equity_ts,
        equity=run.equity,
        exposure=run.exposure,
        trades=(),
        fees=run.fees,
        net_pnls=run.trade_net_pnl,
    )
    return figures.final_equity, figures.trades


def price_frame(columns: BarColumns) -> Any:
    """The bars as backtesting.py takes them: a DataFrame of OHLCV indexed by time."""
    import pandas as pd

    return pd.DataFrame(
        {
            "Open": columns.open,
            "High": columns.high,
            "Low": columns.low,
            "Close": columns.close,
            "Volume": columns.volume,
        },
        index=pd.to_datetime(columns.ts, unit="s"),
    )


def backtesting_py(columns: BarColumns) -> tuple[float, int, float]:
    """backtesting.py on the same bars and EMA values: (final equity, trades, CPU seconds)."""
    from backtesting import Backtest
    from backtesting_py_process import ema_cross

    closes = columns.close.tolist()
    fast_ema, slow_ema = _ema(closes, FAST), _ema(closes, SLOW)
    frame = price_frame(columns)

    EmaCross = ema_cross(fast_ema, slow_ema, SLOW, QUANTITY)

    test = Backtest(frame, EmaCross, cash=CAPITAL, commission=FEE_BPS / 10_000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.process_time()
        stats = test.run()
        seconds = time.process_time() - started
    return float(stats["Equity Final [$]"]), int(stats["# Trades"]), seconds


def _peak_rss_mb(pid: int) -> float | None:
    """The process's own high-water resident memory (VmHWM of its address space, in MB)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def timed_process(argv: list[str]) -> tuple[str, float, float, float]:
    """Run ``argv``: (stdout, its CPU seconds, wall seconds, its peak RSS in MB).

    The peak is polled from ``/proc`` while it runs (VmHWM only grows, so the last reading is
    the peak to within a poll): a child's ``ru_maxrss`` would count this big process's memory
    it was forked from.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        peak = 0.0
        while True:
            reaped, status, usage = os.wait4(child.pid, os.WNOHANG)
            if reaped:
                break
            peak = max(peak, _peak_rss_mb(child.pid) or 0.0)
            time.sleep(0.02)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise RuntimeError(f"{argv[0]} failed: {err.read()[-2000:]}")
        return out.read(), usage.ru_utime + usage.ru_stime, wall, peak


def best_of(count: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(count):
        started = time.process_time()
        result = run()
        best = min(best, time.process_time() - started)
    return best, result


def compile_packages() -> None:
    """Write the project's bytecode, as ``pip install`` does for an installed package, so the
    timed processes import it as a user's do (an editable checkout under
    ``PYTHONDONTWRITEBYTECODE`` would compile every module again in every process, about 0.1 s
    that backtesting.py's installed process never pays)."""
    root = HERE.parent
    for package in ("bot-runtime/tradefleet_runtime", "plugins/tradefleet_plugins"):
        compileall.compile_dir(root / package, quiet=1)


def main() -> int:
    compile_packages()
    columns = synthetic(BARS)
    bars = columns.bars("SYN", HOUR)
    opens, closes = columns.open.tolist(), columns.close.tolist()
    figures: dict[str, Any] = {"bars": BARS}
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "bars.csv"
        write_csv(columns, csv)

        floor_s, (floor_equity, floor_trades, floor_fills) = best_of(
            REPEAT, lambda: floor(opens, closes)
        )
        vector_s, (vector_equity, vector_trades) = best_of(REPEAT, lambda: vector(columns))

        def journal(name: str) -> Path:
            path = Path(folder) / f"{name}.sqlite"
            for leftover in Path(folder).glob(f"{name}.sqlite*"):
                leftover.unlink()  # each run its own fresh journal, as the CLI's first run
            return path

        engine_s, outcome = best_of(
            REPEAT, lambda: engine(bars, csv, journal("engine"), FAST, SLOW)
        )
        result = outcome.result
        few_s, few_outcome = best_of(REPEAT, lambda: engine(bars, csv, journal("few"), 200, 800))
        few = few_outcome.result
        bare_s, _ = best_of(
            REPEAT, lambda: engine(bars, csv, journal("bare"), FAST, SLOW, Unjournaled)
        )
        bare_few_s, _ = best_of(
            REPEAT, lambda: engine(bars, csv, journal("bare-few"), 200, 800, Unjournaled)
        )
        loop_s = min(loop_only(bars, csv, journal("loop")) for _ in range(REPEAT))

        bt_runs = [backtesting_py(columns) for _ in range(REPEAT)]
        bt_equity, bt_trades, _ = bt_runs[-1]
        bt_s = min(run[2] for run in bt_runs)

        cache_path(csv).unlink(missing_ok=True)
        params = CsvFeedParams(path=str(csv))
        read_s = float("inf")
        for _ in range(3):
            cache_path(csv).unlink(missing_ok=True)
            started = time.process_time()
            read_csv_columns(csv, params)
            read_s = min(read_s, time.process_time() - started)
        cached_s, _ = best_of(3, lambda: read_csv_columns(csv, params))

        bot_file = Path(folder) / "bench.yaml"
        bot_file.write_text(yaml.safe_dump(manifest(csv)))
        cache_path(csv).unlink(missing_ok=True)
        cli = [
            str(BIN / "tradefleet"),
            "backtest",
            str(bot_file),
            "--json",
            "--no-progress",
            "--journal",
            str(Path(folder) / "cli.sqlite"),
        ]

        def cli_runs(cached: bool, *extra: str) -> tuple[str, float, float, float]:
            """The best of two processes (CPU, and its wall time), the larger peak RSS."""
            runs = []
            for _ in range(2):
                if not cached:
                    cache_path(csv).unlink(missing_ok=True)
                for leftover in Path(folder).glob("cli.sqlite*"):
                    leftover.unlink()
                runs.append(timed_process([*cli, *extra]))
            out, cpu, wall, _ = min(runs, key=lambda run: run[1])
            return out, cpu, wall, max(run[3] for run in runs)

        bt_argv = [
            sys.executable,
            str(HERE / "backtesting_py_process.py"),
            str(csv),
            str(FAST),
            str(SLOW),
            str(QUANTITY),
            str(FEE_BPS / 10_000.0),
        ]
        # The whole processes, in pairs (ours, then backtesting.py's, three times): this
        # machine's speed drifts by a third within minutes, and a pair run back to back sees
        # the same machine, so each pair's ratio is fair even when the pairs' speeds differ.
        pairs = []
        for _ in range(PROCESS_PAIRS):
            cache_path(csv).unlink(missing_ok=True)
            for leftover in Path(folder).glob("cli.sqlite*"):
                leftover.unlink()
            pairs.append((timed_process(cli), timed_process(bt_argv)))
        cli_runs_ = [ours for ours, _ in pairs]
        bt_processes = [theirs for _, theirs in pairs]
        out, cli_cpu, cli_wall, _ = min(cli_runs_, key=lambda run: run[1])
        cli_rss = max(run[3] for run in cli_runs_)
        cli_json = json.loads(out)
        pair_ratios = sorted(theirs[1] / ours[1] for ours, theirs in pairs)
        _, cli_cached_cpu, cli_cached_wall, _ = cli_runs(cached=True)
        out, cli_engine_cpu, _, cli_engine_rss = cli_runs(False, "--engine")
        cli_engine_json = json.loads(out)
        out, bt_cpu, bt_wall, _ = min(bt_processes, key=lambda run: run[1])
        bt_rss = max(run[3] for run in bt_processes)
        bt_process = json.loads(out)

    engine_equity = result.final_equity
    engine_trades = len(result.trades)
    cli_figures = cli_json.get("figures", cli_json)
    # The report counts a position still open at the end as a trade (closed at its mark).
    cli_equity = float(cli_figures["final_equity"])
    cli_trades = int(cli_figures["trades"]) - len(result.open_positions)
    cli_engine_figures = cli_engine_json.get("figures", cli_engine_json)
    # So do the vectorised path's figures (as every backtest's figures do).
    vector_trades -= len(result.open_positions)

    def same(equity: float, trades: int) -> bool:
        return abs(equity - engine_equity) <= 1e-6 * abs(engine_equity) and trades == engine_trades

    own_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    orders_main, orders_few = result.orders, few.orders
    per_order = (engine_s - few_s) / (orders_main - orders_few)
    per_bar = (few_s - orders_few * per_order) / BARS
    per_order_bare = (bare_s - bare_few_s) / (orders_main - orders_few)
    figures.update(
        {
            "floor_bars_per_s": round(BARS / floor_s),
            "engine_bars_per_s": round(BARS / engine_s),
            "backtesting_py_bars_per_s": round(BARS / bt_s),
            "vector_bars_per_s": round(BARS / vector_s),
            "engine_vs_floor": round(engine_s / floor_s, 2),
            "engine_vs_backtesting_py": round(bt_s / engine_s, 2),
            "vector_vs_floor": round(floor_s / vector_s, 2),
            "cli_backtest_s": round(cli_cpu, 3),
            "cli_backtest_wall_s": round(cli_wall, 3),
            "cli_backtest_cached_s": round(cli_cached_cpu, 3),
            "cli_backtest_cached_wall_s": round(cli_cached_wall, 3),
            "backtesting_py_process_s": round(bt_cpu, 3),
            "backtesting_py_process_wall_s": round(bt_wall, 3),
            "backtesting_py_process_vs_cli": round(bt_cpu / cli_cpu, 2),
            # Each back-to-back pair's ratio, lowest first; the median is the figure to quote.
            "backtesting_py_process_vs_cli_pairs": [round(r, 2) for r in pair_ratios],
            "backtesting_py_process_vs_cli_median": round(pair_ratios[len(pair_ratios) // 2], 2),
            "cli_engine_backtest_s": round(cli_engine_cpu, 3),
            "cli_engine_peak_rss_mb": round(cli_engine_rss, 1),
            "backtesting_py_process_vs_cli_engine": round(bt_cpu / cli_engine_cpu, 2),
            "per_order_us": round(per_order * 1e6, 2),
            "per_bar_us": round(per_bar * 1e6, 3),
            "per_order_unjournaled_us": round(per_order_bare * 1e6, 2),
            "per_order_journal_us": round((per_order - per_order_bare) * 1e6, 2),
            "loop_per_bar_us": round(loop_s / BARS * 1e6, 3),
            "peak_rss_mb": round(cli_rss, 1),
            "backtesting_py_process_peak_rss_mb": round(bt_rss, 1),
            "bench_peak_rss_mb": round(own_rss_mb, 1),
            "csv_read_s": round(read_s, 3),
            "csv_cached_read_s": round(cached_s, 3),
            "floor_s": round(floor_s, 3),
            "engine_s": round(engine_s, 3),
            "engine_few_orders_s": round(few_s, 3),
            "backtesting_py_s": round(bt_s, 3),
            "vector_s": round(vector_s, 4),
            "orders": orders_main,
            "fills": result.fills,
            "trades": engine_trades,
            "final_equity": round(engine_equity, 6),
            "results": {
                "floor": [round(floor_equity, 6), floor_trades, floor_fills],
                "engine": [round(engine_equity, 6), engine_trades, result.fills],
                "vector": [round(vector_equity, 6), vector_trades],
                "backtesting_py": [round(bt_equity, 6), bt_trades],
                "cli": [round(cli_equity, 6), cli_trades],
                "cli_engine": [
                    round(float(cli_engine_figures["final_equity"]), 6),
                    int(cli_engine_figures["trades"]) - len(result.open_positions),
                ],
                "backtesting_py_process": [
                    round(bt_process["final_equity"], 6),
                    bt_process["trades"],
                ],
            },
            "equal_result": all(
                (
                    same(floor_equity, floor_trades),
                    floor_fills == result.fills,
                    same(vector_equity, vector_trades),
                    same(bt_equity, bt_trades),
                    same(cli_equity, cli_trades),
                    cli_engine_figures == cli_figures,
                )
            ),
            "backtesting_py_process_equal": same(bt_process["final_equity"], bt_process["trades"]),
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
