"""The optimiser's best-trial report and walk-forward's stitched report of a bot with two symbols
whose data end at different times: a position still open at a symbol's last bar is an "end of
data" trade ending at that bar's close, as `tradefleet backtest` reports it — not at the end of
the run (or of the window), which the longer symbol's data sets.

Both stamped every end-of-data trade at the run's end: A's last trade below was held 17 hours
in the best trial's report (A's data ends 10 hours before B's), not 7.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, T0
from tradefleet_runtime import cli
from tradefleet_runtime.model import END_OF_DATA, Trade
from tradefleet_runtime.optimize.search import executor
from tradefleet_runtime.optimize.space import parse_space
from tradefleet_runtime.optimize.walkforward import make_windows, walk_forward
from tradefleet_runtime.optimize.worker import Task, evaluate, load_timeline
from tradefleet_runtime.report.table import duration

# Hourly bars from T0 in a zigzag: 10 falling, 10 rising, ... ema-cross (2/5, long only) buys
# each rising leg at its 3rd or 4th bar and sells it at the next fall's 3rd or 4th. A's file
# ends at bar 60, in a rising leg, with a position open; B's goes on to bar 70 and sells it.
BARS = {"A": 60, "B": 70}
END = {symbol: T0 + n * HOUR for symbol, n in BARS.items()}  # each one's last bar's close
SPACE = {"fast": {"choice": [2]}, "slow": {"choice": [5]}}  # one point: the best is known


def _manifest() -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "uneven"},
        "spec": {
            "mode": "backtest",
            "strategy": {
                "name": "ema-cross",
                "params": {"fast": 2, "slow": 5, "allow_short": False},
            },
            "market": {"symbols": ["A", "B"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"fee_bps": 10}},
            "data": {"name": "csv", "params": {"files": {"A": "a.csv", "B": "b.csv"}}},
            "risk": [{"name": "fixed-size", "params": {"quantity": 10}}],
            "capital": {"currency": "USD", "initial": 10000},
        },
    }


def _write_bot(folder: Path) -> Path:
    for symbol, count in BARS.items():
        rows, price = [], 100.0
        for i in range(count):
            close = price - 1.0 if (i // 10) % 2 == 0 else price + 1.0
            when = datetime.fromtimestamp(T0 + i * HOUR, UTC)
            high, low = max(price, close), min(price, close)
            rows.append(f"{when:%Y-%m-%d %H:%M},{price},{high},{low},{close}\n")
            price = close
        header = "timestamp,open,high,low,close\n"
        (folder / f"{symbol.lower()}.csv").write_text(header + "".join(rows))
    (folder / "space.yaml").write_text(json.dumps(SPACE))
    bot = folder / "uneven.yaml"
    bot.write_text(json.dumps(_manifest()))
    return bot


def _held(trades: tuple[Trade, ...] | list[Trade]) -> dict[tuple[str, int], tuple[int, str]]:
    """(symbol, entry bar) -> (exit bar, exit reason)."""
    return {
        (t.symbol, (t.entry_ts - T0) // HOUR): ((t.exit_ts - T0) // HOUR, t.exit_reason)
        for t in trades
    }


def test_the_best_trials_report_ends_each_symbols_trade_at_its_own_last_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = _write_bot(tmp_path)
    # The run the command reports its best trial from.
    best = evaluate(Task(_manifest(), str(tmp_path), {"fast": 2, "slow": 5}, detail=True))
    assert best.equity_ts[-1] == END["B"]  # the run ends with the longer file
    held = _held(best.trades)
    assert held[("A", 53)] == (60, END_OF_DATA)  # A's own last bar, not the run's end (70)
    assert held[("B", 53)] == (63, "cross")
    # Only the time moved: A's trade is at A's last close, and the trades add up to equity.
    (a_end,) = [t for t in best.trades if t.exit_reason == END_OF_DATA]
    assert a_end.exit_price == 100.0  # 100 - 10 + 10 - 10 + 10 - 10 + 10
    assert sum(t.net_pnl for t in best.trades) == pytest.approx(best.equity[-1] - 10_000)

    # The command's table: six trades, five held 10 hours and A's last 7 (it said 17).
    assert sorted(h[0] - entry for (_, entry), h in held.items()) == [7, 10, 10, 10, 10, 10]
    monkeypatch.setenv("COLUMNS", "200")
    argv = ["optimize", str(bot), "--space", str(tmp_path / "space.yaml"), "--sampler", "grid"]
    assert cli.main([*argv, "--jobs", "1", "--study", str(tmp_path / "s.jsonl")]) == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if "average trade dur" in row]
    assert duration((5 * 10 + 7) / 6 * HOUR) in line  # "9h 30min"
    assert duration((5 * 10 + 17) / 6 * HOUR) not in line


def test_walk_forward_ends_each_symbols_trade_at_its_own_last_bar_in_its_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = _write_bot(tmp_path)
    manifest, base_dir = _manifest(), str(tmp_path)
    timeline = load_timeline(manifest, base_dir)
    windows = make_windows(len(timeline), 30, 20, anchored=False)
    # Two windows: (0-30, 30-50), (20-50, 50-70). A's data ends inside the second test window.
    assert [(w.start, w.end) for _, w in windows] == [(30, 50), (50, 70)]
    with executor(1) as pool:
        result = walk_forward(
            manifest=manifest,
            base_dir=base_dir,
            space=parse_space(SPACE),
            timeline=timeline,
            windows=windows,
            study_path=tmp_path / "wf.jsonl",
            study_prefix="uneven",
            pool=pool,
            sampler="grid",
        )
    last = result.windows[1].out_of_sample
    assert last is not None and last.equity_ts[-1] == END["B"]
    assert _held(last.trades) == {("B", 52): (63, "cross"), ("A", 52): (60, END_OF_DATA)}

    # The stitched report: three trades held 11 hours and A's last 8 (it said 18).
    first = result.windows[0].out_of_sample
    assert first is not None
    assert _held(first.trades) == {("A", 32): (43, "cross"), ("B", 32): (43, "cross")}
    monkeypatch.setenv("COLUMNS", "200")
    argv = ["walkforward", str(bot), "--space", str(tmp_path / "space.yaml"), "--sampler"]
    argv += ["grid", "--train", "30", "--test", "20", "--jobs", "1"]
    argv += ["--study", str(tmp_path / "cli.jsonl"), "--out", str(tmp_path / "wf.json")]
    assert cli.main(argv) == 0
    (line,) = [row for row in capsys.readouterr().out.splitlines() if "average trade dur" in row]
    assert duration((3 * 11 + 8) / 4 * HOUR) in line  # "10h 15min"
    assert duration((3 * 11 + 18) / 4 * HOUR) not in line
