"""Backtest cost in instructions, counted by valgrind's callgrind: figures that do not move
with the machine's load.

``bench_engine.py``'s figures are CPU seconds, and on a shared machine the same code can cost
twice the time from one process to the next (or three times, from one day to the next). An
instruction count is the same on every run, so this bench says, without that noise, what a bar
and an order cost on the engine bench's workload (ema-cross, fixed size, 0.1% fee, fills at the
next open, the same synthetic bars), for the engine, the plain loop (the floor) and
backtesting.py — and so whether a change made them cheaper.

Each path runs in a child process twice, over the first ``SMALL`` and the first ``LARGE`` bars
of the same data; both children load the same file and build the same objects, so the
difference is the cost of ``LARGE - SMALL`` bars with every import and set-up cancelled out.
The engine runs two workloads (ema-cross 10/30 and 200/800, many orders and few) so its count
splits into a quiet bar and an order, as ``bench_engine.py`` splits its times:
``instructions = bars × per_bar + orders × per_order``. It runs the first once more with a
journal that drops every order, decision, fill and status row (``bench_engine.Unjournaled``):
the difference is what journaling an order costs, SQLite's binding and inserts included.

An instruction is not a fixed time (a cache miss costs more than an addition), so these are
ratios to read beside the timed ones, not a replacement. Writes
``bench/results/instructions.json``; without valgrind it writes why it did not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tradefleet_runtime.bar_columns import BarColumns

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import bench_engine as workload  # noqa: E402  (the same bars, rules and paths)

SMALL = int(os.environ.get("BENCH_INSTR_SMALL", 1_000))
LARGE = int(os.environ.get("BENCH_INSTR_LARGE", 21_000))
OUT = HERE / "results" / "instructions.json"
# The floor costs a few thousand instructions a bar: run it this many times over, so that what
# differs between two processes anyway (a few million instructions) stays under 1% of it.
FLOOR_REPEAT = 10
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
_FIELDS = ("ts", "open", "high", "low", "close", "volume")  # BarColumns' own order


# -- the child: one path over the first `count` bars ------------------------------------------


def _child(path: str, data: Path, count: int, fast: int, slow: int) -> int:
    """Run ``path`` over the first ``count`` bars of ``data``; the engine's orders."""
    stored = np.load(data)
    columns = BarColumns(*(stored[name] for name in _FIELDS))
    bars = columns.bars("SYN", workload.HOUR)  # the same work whatever `count`
    opens, closes = columns.open.tolist(), columns.close.tolist()
    if path in ("engine", "engine_unjournaled"):
        folder = Path(tempfile.mkdtemp())
        journal = workload.Unjournaled if path == "engine_unjournaled" else workload.Journal
        outcome = workload.engine(
            bars[:count], folder / "unused.csv", folder / "journal.sqlite", fast, slow, journal
        )
        shutil.rmtree(folder)
        return int(outcome.result.orders)
    if path == "floor":
        opens, closes = opens[:count], closes[:count]
        for _ in range(FLOOR_REPEAT):
            workload.floor(opens, closes, fast, slow)
        return 0
    if path == "backtesting_py":
        _backtesting_py(columns, closes, count, fast, slow)
        return 0
    raise SystemExit(f"unknown path {path!r}")


def _backtesting_py(
    columns: BarColumns, closes: list[float], count: int, fast: int, slow: int
) -> None:
    from backtesting import Backtest
    from backtesting_py_process import ema_cross

    fast_ema, slow_ema = workload._ema(closes, fast), workload._ema(closes, slow)
    frame = workload.price_frame(columns)
    strategy = ema_cross(fast_ema[:count], slow_ema[:count], slow, workload.QUANTITY)
    test = Backtest(
        frame.iloc[:count], strategy, cash=workload.CAPITAL, commission=workload.FEE_BPS / 1e4
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test.run()


# -- the parent: pairs of counted children ----------------------------------------------------


def _counted(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts in both children
    )


def _difference(data: Path, path: str, fast: int, slow: int) -> tuple[int, int]:
    """(instructions, engine orders) of bars SMALL..LARGE: the two children run at once."""
    children = [
        _counted(
            [sys.executable, __file__, "child", path, str(data), str(count), str(fast), str(slow)]
        )
        for count in (SMALL, LARGE)
    ]
    counts = []
    for child in children:
        out, err = child.communicate()
        found = _COLLECTED.search(err)
        if child.returncode or found is None:
            raise RuntimeError(f"{path} under callgrind failed: {err[-2000:]}")
        counts.append((int(found.group(1)), int(out.strip() or 0)))
    (small, small_orders), (large, large_orders) = counts
    return large - small, large_orders - small_orders


def main() -> int:
    OUT.parent.mkdir(exist_ok=True)
    if shutil.which("valgrind") is None:
        OUT.write_text(json.dumps({"skipped": "valgrind is not installed"}, indent=2) + "\n")
        print("valgrind is not installed: no instruction counts")
        return 0
    bars = LARGE - SMALL
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "bars.npz"
        columns = workload.synthetic(LARGE)
        np.savez(data, **{name: getattr(columns, name) for name in _FIELDS})
        floor, _ = _difference(data, "floor", workload.FAST, workload.SLOW)
        engine, orders = _difference(data, "engine", workload.FAST, workload.SLOW)
        few, few_orders = _difference(data, "engine", 200, 800)
        bare, bare_orders = _difference(data, "engine_unjournaled", workload.FAST, workload.SLOW)
        backtesting_py, _ = _difference(data, "backtesting_py", workload.FAST, workload.SLOW)
    assert bare_orders == orders, (bare_orders, orders)  # the journal decides nothing
    per_order = (engine - few) / (orders - few_orders)
    per_quiet_bar = (few - few_orders * per_order) / bars
    figures: dict[str, Any] = {
        "bars": bars,
        "orders": orders,
        "floor_instructions_per_bar": round(floor / FLOOR_REPEAT / bars),
        "engine_instructions_per_bar": round(engine / bars),
        "engine_instructions_per_quiet_bar": round(per_quiet_bar),
        "engine_instructions_per_order": round(per_order),
        # Of each order: journaling it (its rows built, bound and inserted), and the rest.
        "engine_journal_instructions_per_order": round((engine - bare) / orders),
        "engine_unjournaled_instructions_per_order": round(per_order - (engine - bare) / orders),
        "backtesting_py_instructions_per_bar": round(backtesting_py / bars),
        "engine_vs_floor": round(engine * FLOOR_REPEAT / floor, 2),
        "engine_vs_backtesting_py": round(backtesting_py / engine, 2),
        "python": sys.version.split()[0],
    }
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        path, data, count, fast, slow = sys.argv[2:7]
        print(_child(path, Path(data), int(count), int(fast), int(slow)))
        raise SystemExit(0)
    raise SystemExit(main())
