"""A size the event engine holds as nothing (at most 1e-12: ``FLAT_QUANTITY``) is refused by
the vectorised path, which the backtest and the optimiser then leave to the engine: the engine's
``ctx.close`` of such a position sends nothing, so each turn is one order, while the vectorised
path closed and opened at each turn — twice the engine's orders and trades, and a last position
the engine never held.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runtime.test_backtest_refused_at_connect import _bot, _cli
from tradefleet_runtime.optimize.worker import Task, evaluate


def _tiny(folder: Path, quantity: float) -> Path:
    path = _bot(folder, "SYN")
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    manifest["spec"]["risk"] = [{"name": "fixed-size", "params": {"quantity": quantity}}]
    path.write_text(yaml.safe_dump(manifest))
    return path


@pytest.mark.parametrize("quantity", [1e-12, 5e-13])
def test_a_backtest_of_a_size_the_engine_holds_as_nothing_runs_bar_by_bar(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    quantity: float,
) -> None:
    bot = _tiny(tmp_path, quantity)
    caplog.set_level("INFO", logger="tradefleet.cli")
    code, told, err = _cli(
        capsys, "backtest", str(bot), "--json", "--journal", str(tmp_path / "a.sqlite")
    )
    assert code == 0, err
    assert "is flat to the event engine" in caplog.text
    code, engine, err = _cli(
        capsys, "backtest", str(bot), "--json", "--engine", "--journal", str(tmp_path / "b.sqlite")
    )
    assert code == 0, err
    ours, theirs = json.loads(told), json.loads(engine)
    for doc in (ours, theirs):
        doc.pop("run_id", None)
    assert ours == theirs


def test_the_optimisers_trial_of_such_a_size_is_the_engines(tmp_path: Path) -> None:
    document = yaml.safe_load(_tiny(tmp_path, 1e-12).read_text())
    root = str(tmp_path)
    tried = evaluate(Task(document, root, {}, None, (), detail=True))
    engine = evaluate(Task(document, root, {}, None, (), detail=True, vector=False))
    assert tried.path == "engine"
    assert (tried.figures, tried.trades) == (engine.figures, engine.trades)
