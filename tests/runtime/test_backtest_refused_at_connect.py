"""A backtest its broker refuses at connect (USDJPY pays its profit in JPY, the capital is in
USD) is refused before the journal has a run of it, on the event engine's path as on the
vectorised one: the engine's session started the run first and left it 'running', which the
next run called interrupted and ``tradefleet report`` showed — all zeros — in place of the
journal's last real run.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradefleet_runtime.cli import main

HOUR = 3600


def _csv(path: Path, count: int = 300) -> Path:
    lines = ["timestamp,open,high,low,close,volume"]
    close = 100.0
    for i in range(count):
        ts = 1_600_000_000 - 1_600_000_000 % HOUR + i * HOUR
        open_, close = close, 100.0 + 10.0 * math.sin(i / 9.0)
        lines.append(f"{ts},{open_},{max(open_, close)},{min(open_, close)},{close},1")
    path.write_text("\n".join(lines) + "\n")
    return path


def _bot(folder: Path, symbol: str) -> Path:
    manifest: dict[str, Any] = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "refused-bot"},
        "spec": {
            "mode": "backtest",
            "strategy": {"name": "ema-cross", "params": {"fast": 5, "slow": 13}},
            "market": {"symbols": [symbol], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"fee_bps": 5}},
            "data": {"name": "csv", "params": {"path": str(_csv(folder / "bars.csv"))}},
            "risk": [{"name": "fixed-size", "params": {"quantity": 1}}],
            "capital": {"currency": "USD", "initial": 100_000},
        },
    }
    path = folder / f"{symbol}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("path", [(), ("--engine",)], ids=["vectorised", "engine"])
def test_a_backtest_refused_at_connect_leaves_no_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, path: tuple[str, ...]
) -> None:
    journal = tmp_path / "bot.sqlite"
    refused = _bot(tmp_path, "USDJPY")
    code, _, err = _cli(capsys, "backtest", str(refused), "--journal", str(journal), *path)
    assert code == 2 and "pays its profit in JPY" in err, err
    assert not journal.exists()  # the journal it created is removed again


def test_a_refused_engine_backtest_leaves_the_journals_last_run_to_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    journal = tmp_path / "bot.sqlite"
    good = _bot(tmp_path, "SYN")
    code, _, err = _cli(capsys, "backtest", str(good), "--json", "--journal", str(journal))
    assert code == 0, err
    report = ("report", str(journal), "--json", "--trades")
    before = _cli(capsys, *report)
    refused = _bot(tmp_path, "USDJPY")
    assert _cli(capsys, "backtest", str(refused), "--journal", str(journal), "--engine")[0] == 2
    assert _cli(capsys, *report) == before
    with sqlite3.connect(journal) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("completed",)]
