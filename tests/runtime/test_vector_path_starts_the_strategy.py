"""Params a strategy refuses when it starts (a ``ValueError`` out of ``on_start``) are refused
on the vectorised path too, which never runs the strategy bar by bar: it starts the strategy on
a bot of its own first (``session.started_warmup``). Before, ``optimize`` ranked such a set —
figures, a rank, named best — and ``tradefleet backtest`` backtested it, for a bot that refuses
to start with it (docs/optimize.md: such a set "is recorded the same way, with the strategy's
message").

The probe is ema-cross whose ``slow > fast`` check is made at start, not by its params model, as
an indicator's own check is (MACD's), and whose warm-up is known only once started: a trial by
the vectorised path warms up on as many bars as the engine's run of the same set.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import Field

from tests.plugin_hooks import registry_with
from tests.runtime.test_backtest_refused_at_connect import _bot, _cli
from tradefleet_plugins.strategies.ema_cross import EmaCross
from tradefleet_runtime import cli
from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.contracts import Strategy
from tradefleet_runtime.errors import StrategyRefused
from tradefleet_runtime.optimize import commands, search, worker
from tradefleet_runtime.optimize.worker import Task, evaluate
from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
from tradefleet_runtime.sdk import PluginParams, PluginSpec, StrategyContext, hookimpl

PROBE = "refusing-cross"


class _Params(PluginParams):
    fast: int = Field(default=10, ge=1, le=10_000)
    slow: int = Field(default=30, ge=2, le=10_000)
    allow_short: bool = True
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None


class _RefusingCross(EmaCross):
    """ema-cross whose warm-up is the SDK default (the declared indicators', known only once
    started: 0 before ``on_start``) and which refuses ``slow <= fast`` at start."""

    params: _Params  # type: ignore[assignment]
    warmup_bars = Strategy.warmup_bars

    def on_start(self, ctx: StrategyContext) -> None:
        if self.params.slow <= self.params.fast:
            raise ValueError(f"slow ({self.params.slow}) must be above fast ({self.params.fast})")
        super().on_start(ctx)


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    spec = PluginSpec(
        kind=PluginKind.STRATEGY,
        name=PROBE,
        version="1.0.0",
        factory=_RefusingCross,
        params=_Params,
        capabilities=frozenset({Capability.TARGET_POSITIONS}),
    )
    registry = registry_with(SimpleNamespace(tradefleet_strategies=hookimpl(lambda: [spec])))
    for module in (worker, commands, search):
        monkeypatch.setattr(module, "default_registry", lambda: registry)
    monkeypatch.setattr(cli, "PluginRegistry", SimpleNamespace(discover=lambda: registry))
    return registry


def _probe_bot(folder: Path, fast: int, slow: int) -> Path:
    path = _bot(folder, "SYN")
    manifest: dict[str, Any] = yaml.safe_load(path.read_text())
    manifest["spec"]["strategy"] = {"name": PROBE, "params": {"fast": fast, "slow": slow}}
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_a_vectorised_trial_of_a_set_refused_at_start_is_refused(
    tmp_path: Path, probe: PluginRegistry
) -> None:
    document = yaml.safe_load(_probe_bot(tmp_path, 40, 20).read_text())
    with pytest.raises(StrategyRefused, match="must be above fast"):
        evaluate(Task(document, str(tmp_path), {}), probe)
    ran = evaluate(Task(document, str(tmp_path), {"fast": 8, "slow": 20}), probe)
    assert ran.path == "vector"  # a set it starts with still takes the vectorised path


def test_optimize_records_the_set_as_refused_by_the_strategy(
    tmp_path: Path, probe: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = _probe_bot(tmp_path, 10, 20)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"fast": {"choice": [8, 40]}, "slow": {"choice": [20]}}))
    code, out, err = _cli(
        capsys,
        "optimize",
        str(bot),
        "--space",
        str(space),
        "--study",
        str(tmp_path / "study.jsonl"),
        "--sampler",
        "grid",
        "--jobs",
        "1",
        "--json",
        "--no-progress",
    )
    assert code == 0, err
    found = json.loads(out)
    assert (found["trials_refused_by_strategy"], found["trials_complete"]) == (1, 1), found
    assert found["best_params"] == {"fast": 8, "slow": 20}


def test_a_backtest_of_a_set_refused_at_start_is_refused_on_the_vectorised_path(
    tmp_path: Path, probe: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = _probe_bot(tmp_path, 40, 20)
    journal = tmp_path / "bot.sqlite"
    code, _, err = _cli(capsys, "backtest", str(bot), "--journal", str(journal))
    assert code == 2, err
    said = " ".join(err.split())  # the console wraps long lines
    assert "could not start" in said and "must be above fast" in said, err
    assert not journal.exists()


def test_a_vectorised_trial_warms_up_as_the_engines_run(
    tmp_path: Path, probe: PluginRegistry
) -> None:
    document = yaml.safe_load(_probe_bot(tmp_path, 5, 13).read_text())
    vector = evaluate(Task(document, str(tmp_path), {}), probe)
    engine = evaluate(Task(document, str(tmp_path), {}, vector=False), probe)
    assert vector.path == "vector" and engine.path == "engine"
    assert engine.history_bars > 0
    assert vector.history_bars == engine.history_bars
    for name in ("net_profit", "trades", "max_drawdown"):
        if name in engine.figures:
            assert vector.figures[name] == pytest.approx(engine.figures[name], rel=1e-6), name


def _runs(journal: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(journal)) as db:
        return [tuple(r) for r in db.execute("SELECT run_id, status FROM runs ORDER BY rowid")]


def test_a_refused_backtest_leaves_an_existing_journal_as_it_was(
    tmp_path: Path, probe: PluginRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "bot.sqlite"
    good = _probe_bot(tmp_path, 5, 13)
    code, _, err = _cli(capsys, "backtest", str(good), "--json", "--journal", str(journal))
    assert code == 0, err
    before = _runs(journal)
    refused = _probe_bot(tmp_path, 40, 20)
    code, _, err = _cli(capsys, "backtest", str(refused), "--journal", str(journal))
    assert code == 2 and "must be above fast" in " ".join(err.split()), err
    assert _runs(journal) == before
