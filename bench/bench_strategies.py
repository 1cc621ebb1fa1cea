"""Indicator and strategy throughput (issue 17: the optimiser and walk-forward run thousands of
backtests of every built-in strategy).

Writes ``bench/results/strategies.json``:
- ``<indicator>_ns_per_bar``: one ``update`` of each indicator on the bundled EURUSD H1 2017
  bars (best of 5 passes over the data);
- ``<strategy>_bars_per_s``: each built-in strategy backtested on those bars through
  ``sdk.testing.run_strategy`` (best of 3, wall clock);
- ``confluence_vs_ema_cross``: how many times slower ``indicator-confluence`` is (goal ≤ 3);
- ``session``: each built-in strategy on ``bench_engine``'s synthetic hourly bars
  (``BENCH_STRATEGY_BARS``, 200,000 by default) through ``BotSession`` as ``bench_engine``
  runs ema-cross — batched journal, paper broker (0.1% fee), fixed-size sizer — with its
  ``cpu_s`` (CPU seconds, best of 3: the machine is shared), ``bars_per_s``, ``us_per_bar``
  and ``orders``; a strategy no bar can make trade is listed with the reason it is skipped.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_engine import HOUR, manifest, synthetic

from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import (
    ADX,
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    VWAP,
    WMA,
    Bar,
    Bollinger,
    Donchian,
    Fibonacci,
    Indicator,
    SessionVWAP,
    Stochastic,
    Swings,
    build_strategy,
)
from tradefleet_runtime.sdk.testing import run_strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "EURUSD_H1_2017.csv"
OUT = ROOT / "bench" / "results" / "strategies.json"

INDICATORS: dict[str, Callable[[], Indicator]] = {
    "sma": lambda: SMA(20),
    "ema": lambda: EMA(20),
    "wma": lambda: WMA(20),
    "rsi": lambda: RSI(14),
    "macd": lambda: MACD(12, 26, 9),
    "bollinger": lambda: Bollinger(20, 2.0),
    "atr": lambda: ATR(14),
    "adx": lambda: ADX(14),
    "stochastic": lambda: Stochastic(14, 3, 3),
    "vwap": lambda: VWAP(20),
    "session_vwap": lambda: SessionVWAP(),
    "donchian": lambda: Donchian(20),
    "swings": lambda: Swings(2, 2),
    "fibonacci": lambda: Fibonacci(3, 3),
}

STRATEGIES: dict[str, dict[str, Any]] = {
    "ema_cross": {"name": "ema-cross", "params": {"fast": 12, "slow": 48}},
    "indicator_confluence": {"name": "indicator-confluence", "params": {}},
    "bos_retest": {"name": "bos-retest", "params": {"higher_timeframe": "4h"}},
    "fib_atr": {"name": "fib-atr", "params": {}},
    "ensemble": {"name": "ensemble", "params": {}},
}


SESSION_BARS = int(os.environ.get("BENCH_STRATEGY_BARS", 200_000))

# Each built-in strategy with the params it backtests with on hourly bars (tests/runtime's
# real-data params; defaults elsewhere). The synthetic walk trades near 100, so bos-retest's
# pip is 0.01 there (its default 0.0001 suits EURUSD).
SESSION_STRATEGIES: dict[str, dict[str, Any]] = {
    "ema-cross": {"fast": 12, "slow": 48},
    "indicator-confluence": {"stop_loss_pct": 0.005, "take_profit_pct": 0.01},
    "bos-retest": {"higher_timeframe": "4h", "pip_size": 0.01},
    "fib-atr": {},
    "ensemble": {},
}
SESSION_SKIPPED = {
    "external-signal": "trades only signals pushed from outside (webhook, SubmitSignal): "
    "no bar makes it decide anything",
}


def session_manifest(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """bench_engine's bot (paper broker, fixed size, the same fee and capital) with ``name``."""
    document = manifest(Path("unused.csv"))
    document["spec"]["strategy"] = {"name": name, "params": params}
    return document


def session_run(
    name: str, params: dict[str, Any], bars: list[Bar], folder: Path
) -> tuple[float, int]:
    """CPU seconds of one backtest through ``BotSession`` (assembly included), and its orders."""
    registry = PluginRegistry.discover()
    journal_path = folder / f"{name}.sqlite"
    journal_path.unlink(missing_ok=True)
    started = time.process_time()
    bot = assemble(parse_manifest(session_manifest(name, params)), registry, folder)
    journal = Journal(journal_path, batched=True)
    try:
        outcome = BotSession(bot, journal, bars=bars).run_to_end()
    finally:
        journal.close()
    return time.process_time() - started, outcome.result.orders


def session_figures(folder: Path) -> dict[str, Any]:
    bars = synthetic(SESSION_BARS).bars("SYN", HOUR)
    figures: dict[str, Any] = {"bars": SESSION_BARS}
    for name, params in SESSION_STRATEGIES.items():
        best, orders = float("inf"), 0
        for _ in range(3):
            seconds, orders = session_run(name, params, bars, folder)
            best = min(best, seconds)
        figures[name] = {
            "params": params,
            "cpu_s": round(best, 3),
            "bars_per_s": round(SESSION_BARS / best),
            "us_per_bar": round(best / SESSION_BARS * 1e6, 3),
            "orders": orders,
        }
    for name, why in SESSION_SKIPPED.items():
        figures[name] = {"skipped": why}
    return figures


def load() -> list[Bar]:
    bars = []
    with DATA.open() as handle:
        for row in csv.DictReader(handle):
            opened = datetime.strptime(row["Time"], "%d.%m.%Y %H:%M:%S.%f").replace(tzinfo=UTC)
            bars.append(
                Bar(
                    "EURUSD",
                    3600,
                    int(opened.timestamp()),
                    float(row["Open"]),
                    float(row["High"]),
                    float(row["Low"]),
                    float(row["Close"]),
                    float(row["Volume"]),
                )
            )
    return bars


def indicator_ns(make: Callable[[], Indicator], bars: list[Bar]) -> float:
    best = float("inf")
    for _ in range(5):
        indicator = make()
        update = indicator.update
        started = time.perf_counter_ns()
        for bar in bars:
            update(bar)
        best = min(best, (time.perf_counter_ns() - started) / len(bars))
    return best


def strategy_bars_per_s(spec: dict[str, Any], bars: list[Bar]) -> float:
    best = float("inf")
    for _ in range(3):
        strategy = build_strategy(spec["name"], spec["params"])
        started = time.perf_counter()
        run_strategy(strategy, bars, quantity=10_000, capital=100_000)
        best = min(best, time.perf_counter() - started)
    return len(bars) / best


def main() -> int:
    bars = load()
    figures: dict[str, Any] = {"bars": len(bars)}
    for name, make in INDICATORS.items():
        figures[f"{name}_ns_per_bar"] = round(indicator_ns(make, bars))
    for name, spec in STRATEGIES.items():
        figures[f"{name}_bars_per_s"] = round(strategy_bars_per_s(spec, bars))
    figures["confluence_vs_ema_cross"] = round(
        figures["ema_cross_bars_per_s"] / figures["indicator_confluence_bars_per_s"], 2
    )
    with tempfile.TemporaryDirectory() as folder:
        figures["session"] = session_figures(Path(folder))
    figures["python"] = sys.version.split()[0]
    figures["machine"] = platform.machine()
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
