"""A backtest on the bundled EURUSD hours that trips the circuit breaker: tier events, actions,
vetoes and the lock are in the journal and the printed report."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradefleet_runtime import cli
from tradefleet_runtime.journal import Journal

ROOT = Path(__file__).resolve().parents[2]


def test_backtest_trips_the_breaker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""
            apiVersion: tradefleet.io/v1alpha1
            kind: TradingBot
            metadata: {{name: breaker-bt}}
            spec:
              mode: backtest
              strategy: {{name: ema-cross, params: {{fast: 3, slow: 8, allow_short: true}}}}
              market: {{symbols: [EURUSD], timeframe: 1h}}
              broker: {{name: paper, params: {{fee_bps: 0.2, slippage_bps: 0.3, leverage: 30}}}}
              data:
                name: csv
                params: {{path: {ROOT / "data" / "EURUSD_H1_2017.csv"}, gap_policy: trade}}
              risk:
                - name: fixed-fractional
                  params: {{risk_per_trade: 0.02, default_stop_pct: 0.002, max_leverage: 10}}
                - name: circuit-breaker
                  params: {{warn_drawdown: 0.01, reduce_drawdown: 0.02, lock_drawdown: 0.03}}
              capital: {{currency: USD, initial: 100000}}
            """
        )
    )
    path = tmp_path / "j.sqlite"
    assert cli.main(["backtest", str(manifest), "--journal", str(path)]) == 0
    report = capsys.readouterr().out
    assert "risk: circuit-breaker vetoed" in report and "risk: engine.locked vetoed" in report
    # The report says what the breaker did and that its lock still holds.
    assert "circuit-breaker tier 0 -> " in report
    assert "risk lock in force: circuit-breaker" in report
    journal = Journal(path)
    tiers = [
        json.loads(d)["tier"]
        for (d,) in journal.query("SELECT data FROM events WHERE kind = 'risk_tier' ORDER BY id")
    ]
    assert 2 in tiers and tiers[-1] == 3
    kinds = {k for (k,) in journal.query("SELECT kind FROM events WHERE kind LIKE 'risk%'")}
    assert {"risk_tier", "risk_action", "risk_locked"} <= kinds
    [(locked,)] = journal.query("SELECT data FROM events WHERE kind = 'risk_locked'")
    reason, since = json.loads(locked)["reason"], json.loads(locked)["since_ts"]
    assert reason.startswith("circuit breaker tier 3") and since > 0
    # A simulation's lock: a paper or live run of the bot on this journal starts unlocked.
    assert journal.risk_locks("breaker-bt") == {}
    vetoes = journal.query(
        "SELECT plugin, COUNT(*) FROM risk_decisions WHERE action = 'veto' GROUP BY plugin"
    )
    assert dict(vetoes)["engine.locked"] > 0
    # Every order after the lock is vetoed by the engine's gate, none sent.
    sent_after = journal.query(
        "SELECT COUNT(*) FROM orders WHERE created_ts > ? AND reduce_only = 0", since
    )
    assert sent_after == [(0,)]
    journal.close()


def _backtest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    risk: list[dict[str, Any]],
    *options: str,
    strategy: dict[str, Any] | None = None,
) -> tuple[str, Path]:
    """Backtest ema-cross on the EURUSD hours (30:1 paper account) with ``risk``: what the
    CLI printed and the journal."""
    manifest = tmp_path / "bot.yaml"
    data = {"path": str(ROOT / "data" / "EURUSD_H1_2017.csv"), "gap_policy": "trade"}
    document = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "risk-bt"},
        "spec": {
            "mode": "backtest",
            "strategy": {"name": "ema-cross", "params": strategy or {"fast": 12, "slow": 48}},
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"fee_bps": 0.2, "leverage": 30}},
            "data": {"name": "csv", "params": data},
            "risk": risk,
            "capital": {"currency": "USD", "initial": 100000},
        },
    }
    manifest.write_text(yaml.safe_dump(document))
    path = tmp_path / "j.sqlite"
    assert cli.main(["backtest", str(manifest), "--journal", str(path), *options]) == 0
    return capsys.readouterr().out, path


def _count(path: Path, sql: str) -> Any:
    journal = Journal(path)
    try:
        return journal.query(sql)
    finally:
        journal.close()


def test_the_summary_says_why_a_plugin_vetoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chain that refuses every entry says why at the end of the run, not only in the
    journal: prop-firm refuses ema-cross's entries, which carry no stop-loss."""
    risk: list[dict[str, Any]] = [
        {"name": "fixed-fractional", "params": {"risk_per_trade": 0.01}},
        {"name": "prop-firm"},
    ]
    out, path = _backtest(tmp_path, capsys, risk)
    printed = " ".join(out.split())
    [(count, reason)] = _count(
        path, "SELECT COUNT(*), reason FROM risk_decisions WHERE action = 'veto' GROUP BY reason"
    )
    assert count > 10 and "stop-loss" in reason
    assert f"risk: prop-firm vetoed {count} order(s): {count}× {reason}" in printed


def test_pre_trade_measures_free_margin_with_the_paper_accounts_leverage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``margin_leverage: 0`` means the account's leverage: the paper broker's 30, not 1 (with 1,
    every 200,000 EURUSD order needed 200,000 of margin on a 100,000 account: all vetoed)."""
    risk = [
        {"name": "fixed-size", "params": {"quantity": 200000}},
        {"name": "pre-trade", "params": {"max_gross_exposure": 0}},
    ]
    out, path = _backtest(tmp_path, capsys, risk, "--json", strategy={"fast": 12, "slow": 26})
    assert json.loads(out)["trades"] > 0
    sql = "SELECT COUNT(*) FROM risk_decisions WHERE plugin = 'pre-trade' AND action = 'veto'"
    assert _count(path, sql) == [(0,)]


def test_the_summary_says_why_the_broker_rejected_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A size no margin covers: the risk chain lets every order through, the paper broker
    refuses each, and the run ends with no trade; the summary says why, not only the journal."""
    risk = [{"name": "fixed-size", "params": {"quantity": 1e12}}]
    out, path = _backtest(tmp_path, capsys, risk, "--engine")
    [(count,)] = _count(path, "SELECT COUNT(*) FROM events WHERE kind = 'order_rejected'")
    assert count > 10
    assert f"broker: rejected {count} order(s): {count}× insufficient margin" in " ".join(
        out.split()
    )
