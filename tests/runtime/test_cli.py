"""The ``tradefleet`` command end to end: backtest, report, run (SIGTERM, SIGKILL), errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRADEFLEET = str(Path(sys.executable).parent / "tradefleet")
DEMO = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"
# Spelled out, not imported: the keys are a promise to scripts, and this test keeps it.
JSON_KEYS = {
    "trades",
    "win_rate",
    "net_pnl",
    "fees",
    "final_equity",
    "return_pct",
    "sharpe",
    "sortino",
    "max_drawdown_pct",
    "profit_factor",
    "exposure_pct",
}


def _tradefleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRADEFLEET, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_backtest_json_then_report_reprints_the_same_figures(tmp_path: Path) -> None:
    journal = tmp_path / "demo.sqlite"
    plot = tmp_path / "equity.png"
    result = _tradefleet(
        "backtest", str(DEMO), "--json", "--journal", str(journal), "--plot", str(plot)
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) >= JSON_KEYS
    assert figures["trades"] > 10
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = _tradefleet("report", str(journal), "--json")
    assert report.returncode == 0, report.stderr
    reprinted = json.loads(report.stdout)
    for key in JSON_KEYS:
        assert reprinted[key] == pytest.approx(figures[key], rel=1e-12), key


def test_backtest_table_names_every_figure(tmp_path: Path) -> None:
    result = _tradefleet("backtest", str(DEMO), "--journal", str(tmp_path / "j.sqlite"))
    assert result.returncode == 0, result.stderr
    for label in (
        "trades",
        "win rate",
        "net P&L",
        "fees",
        "final equity",
        "return",
        "Sharpe",
        "Sortino",
        "max drawdown",
        "profit factor",
        "exposure",
    ):
        assert label in result.stdout
    assert "52 gap(s)" in result.stdout


def test_bad_manifest_lists_every_wrong_field_and_exits_2(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: tradefleet.io/v1alpha1\nkind: TradingBot\nmetadata: {name: bad}\n"
        "spec:\n  mode: backtest\n  strategy: {name: ema-cross, params: {fast: 0}}\n"
        "  market: {symbols: [EURUSD], timeframe: 2q}\n  data: {name: csv, params: {path: x.csv}}\n"
    )
    result = _tradefleet("backtest", str(manifest))
    assert result.returncode == 2
    assert "spec.market.timeframe" in result.stderr
    assert "Traceback" not in result.stderr


def test_report_of_a_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    result = _tradefleet("report", str(tmp_path / "nope.sqlite"))
    assert result.returncode == 2
    assert "no such journal" in result.stderr


def _start_paper(tmp_path: Path, speed: str) -> tuple[subprocess.Popen[str], Path]:
    journal = tmp_path / "paper.sqlite"
    process = subprocess.Popen(
        [
            TRADEFLEET,
            "run",
            str(ROOT / "examples" / "bots" / "eurusd-paper.yaml"),
            "--speed",
            speed,
            "--journal",
            str(journal),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    return process, journal


def _wait_for_fills(journal: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists():
            try:
                with sqlite3.connect(journal) as db:
                    if db.execute("SELECT COUNT(*) FROM fills").fetchone()[0] >= count:
                        return
            except sqlite3.OperationalError:
                pass  # the schema is not there yet
        time.sleep(0.05)
    raise AssertionError(f"no {count} fills in {journal} within {timeout}s")


def test_sigterm_stops_cleanly_and_names_the_open_position(tmp_path: Path) -> None:
    process, journal = _start_paper(tmp_path, "360000")  # 100 hours of data per second
    try:
        _wait_for_fills(journal, 1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "SIGTERM" in err
    with sqlite3.connect(journal) as db:
        (status,) = db.execute("SELECT status FROM runs").fetchone()
        open_rows = db.execute(
            "SELECT symbol, quantity FROM positions WHERE quantity != 0"
        ).fetchall()
        kinds = {row[0] for row in db.execute("SELECT kind FROM events")}
    assert status == "stopped"
    assert "stopped" in kinds
    if open_rows:
        assert "open positions left: EURUSD" in out
        assert "open_position" in kinds


def test_sigkill_loses_no_committed_fill(tmp_path: Path) -> None:
    """Kill -9 mid-run: the journal holds a prefix of the uninterrupted run's fills, each with
    its order and a position row that agrees with the fills (nothing half-applied)."""
    reference = tmp_path / "reference"
    reference.mkdir()
    complete, complete_journal = _start_paper(reference, "0")
    complete.communicate(timeout=120)
    assert complete.returncode == 0
    with sqlite3.connect(complete_journal) as db:
        all_fills = db.execute(
            "SELECT fill_id, price, quantity FROM fills ORDER BY rowid"
        ).fetchall()

    process, journal = _start_paper(tmp_path, "360000")
    _wait_for_fills(journal, 6)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    with sqlite3.connect(journal) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        fills = db.execute("SELECT fill_id, price, quantity FROM fills ORDER BY rowid").fetchall()
        orphans = db.execute(
            "SELECT COUNT(*) FROM fills f LEFT JOIN orders o USING (run_id, client_order_id)"
            " WHERE o.client_order_id IS NULL"
        ).fetchone()[0]
        signed = db.execute(
            "SELECT COALESCE(SUM(CASE side WHEN 'buy' THEN quantity ELSE -quantity END), 0)"
            " FROM fills"
        ).fetchone()[0]
        held = db.execute("SELECT COALESCE(SUM(quantity), 0) FROM positions").fetchone()[0]
        (status,) = db.execute("SELECT status FROM runs").fetchone()
    assert len(fills) >= 6
    assert fills == all_fills[: len(fills)]
    assert orphans == 0
    assert held == pytest.approx(signed, abs=1e-9)
    assert status == "running"  # killed: the run never closed, and says so


def test_building_the_cli_loads_neither_grpc_nor_the_service_api() -> None:
    # Every `tradefleet backtest` pays for what the CLI imports; the control commands load
    # their gRPC client (and the service's pydantic API) only when one of them runs.
    probe = (
        "import sys, tradefleet_runtime.cli as cli; cli.main(['--help']) if False else None;"
        "print(sorted(m for m in sys.modules if m == 'grpc' or m.startswith("
        "('tradefleet_runtime.service.api', 'tradefleet_runtime.service.grpc'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert loaded == "[]"
