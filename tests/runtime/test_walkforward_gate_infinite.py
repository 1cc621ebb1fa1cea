"""Walk-forward's gate with ``--metric profit_factor`` (walkthrough W25).

A window whose best in-sample set never lost a trade has an infinite profit factor (the search
ranks it first: docs/optimize.md). The gate's in-sample figure is "the mean over windows"; the
walk-forward left such windows out of the mean and compared the out-of-sample figure with the
finite windows alone: on the data below five of six windows were left out and the gate passed
on the sixth, saying nothing — the windows most fitted to their training bars were the ones it
did not see. Now such a gate cannot be judged, says which windows, and does not pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tradefleet_runtime import cli

HOUR = 3600


def _cycles_csv(path: Path, seed: int = 4, noise: float = 0.5, count: int = 3000) -> Path:
    """A 300-bar cycle with a random walk over it: ema-cross wins most of its trades."""
    rng = np.random.default_rng(seed)
    i = np.arange(count)
    close = 100 + 10 * np.sin(2 * np.pi * i / 300) + np.cumsum(rng.normal(0, noise, count))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high, low = np.maximum(open_, close) * 1.0005, np.minimum(open_, close) * 0.9995
    ts = 1_600_000_000 - 1_600_000_000 % HOUR + i * HOUR
    rows = ["timestamp,open,high,low,close,volume"]
    rows += [
        f"{t},{o!r},{h!r},{lo!r},{c!r},1"
        for t, o, h, lo, c in zip(
            ts.tolist(), open_.tolist(), high.tolist(), low.tolist(), close.tolist(), strict=True
        )
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def _bot(csv: Path) -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "pf"},
        "spec": {
            "mode": "backtest",
            "strategy": {"name": "ema-cross", "params": {"fast": 10, "slow": 30}},
            "market": {"symbols": ["SYN"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"fee_bps": 1, "leverage": 10}},
            "data": {"name": "csv", "params": {"path": str(csv)}},
            "risk": [{"name": "fixed-size", "params": {"quantity": 100}}],
            "capital": {"currency": "USD", "initial": 100_000},
        },
    }


def test_an_infinite_in_sample_profit_factor_leaves_the_gate_unjudged(tmp_path: Path) -> None:
    csv = _cycles_csv(tmp_path / "cycles.csv")
    space = {"fast": {"int": [2, 20, 2]}, "slow": {"int": [24, 96, 8]}}
    bot, space_file = tmp_path / "bot.yaml", tmp_path / "space.yaml"
    bot.write_text(json.dumps(_bot(csv)))  # JSON is YAML
    space_file.write_text(json.dumps(space))
    out = tmp_path / "wf.json"
    argv = ["walkforward", str(bot), "--space", str(space_file), "--sampler", "grid"]
    argv += ["--metric", "profit_factor", "--train", "800", "--test", "400", "--jobs", "1"]
    argv += ["--study", str(tmp_path / "wf.jsonl"), "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    results = json.loads(out.read_text())
    windows = results["windows"]
    assert len(windows) == 6 and all(w["params"] is not None for w in windows)
    # Windows whose chosen set traded in sample and never lost: profit factor infinite.
    flawless = [
        w["index"]
        for w in windows
        if w["in_sample_figures"]["trades"] and w["in_sample_figures"]["profit_factor"] is None
    ]
    assert flawless  # the data gives some (five of six)
    assert not results["gate_passed"] and results["efficiency"] is None
    [said] = [w for w in results["warnings"] if "the gate cannot be judged" in w]
    assert all(str(index) in said for index in flawless) and "profit factor" in said
