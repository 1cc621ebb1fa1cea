"""Indicator and strategy throughput on the bundled EURUSD H1 2017 bars.

Writes ``bench/results/strategies.json``:
- ``<indicator>_ns_per_bar``: one ``update`` of each indicator (best of 5 passes over the data);
- ``<strategy>_bars_per_s``: each built-in strategy backtested through the real session,
  engine and paper broker (``sdk.testing.run_strategy``), best of 3;
- ``confluence_vs_ema_cross``: how many times slower ``indicator-confluence`` is (goal ≤ 3).
"""

from __future__ import annotations

import csv
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    figures["python"] = sys.version.split()[0]
    figures["machine"] = platform.machine()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
