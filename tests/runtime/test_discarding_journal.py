"""An optimiser's trial runs on ``DiscardingJournal``: same figures as a journaled backtest.

A trial's figures come from the engine's ``RunResult``. These tests hold that claim against
a backtest on a real SQLite journal, across strategies and risk chains that size, exit, veto
and lock — and hold that only a backtest may run without a journal.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tradefleet_runtime.errors import JournalError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.journal.discarding import DiscardingJournal
from tradefleet_runtime.optimize import worker
from tradefleet_runtime.optimize.worker import Task, evaluate
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "EURUSD_H1_2017.csv"


def _manifest(strategy: dict[str, Any], risk: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "discard-check"},
        "spec": {
            "mode": "backtest",
            "strategy": strategy,
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "broker": {
                "name": "paper",
                "params": {"fee_bps": 0.2, "slippage_bps": 0.3, "leverage": 100},
            },
            "data": {"name": "csv", "params": {"path": str(DATA)}},
            "risk": risk,
            "capital": {"currency": "USD", "initial": 100_000},
        },
    }


# A tight circuit breaker takes a lock during the year; exits move stops; the sizers size;
# the prop-firm rules veto and shrink (and lock at their total loss).
CHAINS = {
    "ema-cross, circuit breaker locks": _manifest(
        {"name": "ema-cross", "params": {"fast": 10, "slow": 30}},
        [
            # The sizer first: the breaker's tier-1 cut cuts the size it gave (a breaker
            # before it saw unsized orders, and a manifest with it there is refused).
            {"name": "fixed-size", "params": {"quantity": 300_000}},
            {
                "name": "circuit-breaker",
                "params": {
                    "warn_drawdown": 0.02,
                    "reduce_drawdown": 0.04,
                    "lock_drawdown": 0.06,
                    "max_drawdown": 0.08,
                },
            },
        ],
    ),
    "confluence, exits, fixed fractional": _manifest(
        {"name": "indicator-confluence", "params": {}},
        [
            {"name": "exits", "params": {"trailing_pct": 0.004}},
            {"name": "fixed-fractional", "params": {"risk_per_trade": 0.01, "max_leverage": 20}},
        ],
    ),
    "fib-atr, prop firm": _manifest(
        {"name": "fib-atr", "params": {}},
        [
            {"name": "fixed-fractional", "params": {"risk_per_trade": 0.02, "max_leverage": 30}},
            {"name": "prop-firm", "params": {"preset": "ftmo-2step"}},
        ],
    ),
}


# The locks each run leaves in its journal (the trial's figures above include what they vetoed).
LOCKS = {
    "ema-cross, circuit breaker locks": ["circuit-breaker"],
    "confluence, exits, fixed fractional": [],
    "fib-atr, prop firm": ["prop-firm"],
}


def _journaled(manifest: dict[str, Any], path: Path) -> tuple[Any, dict[str, tuple[str, int]]]:
    bot = assemble(parse_manifest(copy.deepcopy(manifest)), PluginRegistry.discover(), ROOT)
    journal = Journal(path, batched=True)
    try:
        outcome = BotSession(bot, journal).run_to_end()
        return outcome, journal.risk_locks(bot.name)
    finally:
        journal.close()


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_a_trial_scores_what_a_journaled_backtest_scores(name: str, tmp_path: Path) -> None:
    manifest = CHAINS[name]
    outcome, locks = _journaled(manifest, tmp_path / "journal.sqlite")
    result = outcome.result
    trial = evaluate(
        Task(manifest, str(ROOT), params={}, detail=True, vector=False),
        PluginRegistry.discover(),
    )
    assert trial.path == "engine"
    assert trial.figures == outcome.figures.as_json()
    assert trial.trades == (*result.trades, *outcome.open_trades)  # and the end of data's
    assert trial.fees == result.fees
    assert trial.equity == tuple(result.equity)
    assert trial.equity_ts == tuple(result.equity_ts)
    assert trial.exposure == tuple(result.exposure)
    assert len(result.trades) >= 3  # each chain really trades
    assert sorted(locks) == LOCKS[name]  # a lock taken mid-run binds the trial the same way


def test_a_trial_writes_no_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a trial opened a SQLite journal")

    monkeypatch.setattr(Journal, "__init__", refuse)
    assert not hasattr(worker, "Journal")
    trial = evaluate(
        Task(CHAINS["ema-cross, circuit breaker locks"], str(ROOT), {}, vector=False),
        PluginRegistry.discover(),
    )
    assert trial.figures["trades"] > 5


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_only_a_backtest_runs_without_a_journal(mode: str) -> None:
    journal = DiscardingJournal()
    with pytest.raises(JournalError, match=f"a {mode} run needs its journal"):
        journal.start_run(
            run_id="r1",
            bot="discard-check",
            mode=mode,
            currency="USD",
            initial_capital=1_000.0,
            timeframe_s=3_600,
            config_hash="0",
            manifest={},
        )
    assert journal.run_id == ""  # nothing was started
