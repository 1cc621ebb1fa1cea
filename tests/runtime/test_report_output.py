"""The report's outputs: one JSON for `backtest` and `report`, `report --trades`, the chart
(the data handed to mplfinance, and a PNG), the missing plot extra, and schema 3 → 4."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.helpers import HOUR, T0
from tradefleet_runtime.cli import main
from tradefleet_runtime.journal import Journal, versions
from tradefleet_runtime.model import END_OF_DATA, Trade
from tradefleet_runtime.report.bars import OHLC, BarRecorder
from tradefleet_runtime.report.plot import (
    LONG_ENTRY,
    SHORT_ENTRY,
    addplots,
    chart_data,
    write_chart,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"
FIXTURE = Path(__file__).parent / "fixtures" / "journal-v2-paper.sqlite"


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(list(argv)) == 0
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


def _approx(value: object) -> object:
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-12)
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return value


def test_backtest_json_and_report_json_are_one_schema_and_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the trade list is wide
    journal = tmp_path / "demo.sqlite"
    ran = _json(capsys, "backtest", str(DEMO), "--json", "--journal", str(journal))
    read = _json(capsys, "report", str(journal), "--json")
    assert list(read) == list(ran)
    assert read == _approx(ran)
    # The trader's figures are all there, the end-of-data trade and the benchmark included.
    for key in ("cagr_pct", "calmar", "expectancy", "longest_losing_streak", "monthly_returns"):
        assert ran[key] is not None, key
    reasons = {row["reason"]: row["trades"] for row in ran["exit_reasons"]}  # type: ignore[attr-defined]
    assert reasons[END_OF_DATA] == 1 and sum(reasons.values()) == ran["trades"]
    assert set(reasons) == {"cross", END_OF_DATA}  # ema-cross's exits carry its own tag
    benchmark = ran["benchmark"]
    assert isinstance(benchmark, dict) and set(benchmark["symbols"]) == {"EURUSD"}
    assert len(ran["monthly_returns"]) == 12  # type: ignore[arg-type]

    # report --trades: a row per trade, with times, prices and reasons.
    assert main(["report", str(journal), "--trades"]) == 0
    text = capsys.readouterr().out
    assert "exit reasons" in text and "monthly returns" in text and "entry reason" in text
    listed = _json(capsys, "report", str(journal), "--json", "--trades")["trade_list"]
    assert isinstance(listed, list) and len(listed) == ran["trades"]
    assert listed[-1]["exit_reason"] == END_OF_DATA
    assert {"entry_time", "exit_time", "entry_price", "exit_price", "quantity", "net_pnl"} <= set(
        listed[0]
    )


def test_a_missing_plot_extra_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mplfinance", None)  # `import mplfinance` now fails
    journal = tmp_path / "j.sqlite"
    code = main(
        ["backtest", str(DEMO), "--plot", str(tmp_path / "c.png"), "--journal", str(journal)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "mplfinance" in err and "tradefleet[plot]" in err
    assert not journal.exists()  # refused before anything ran


def _bars(n: int) -> OHLC:
    recorder = BarRecorder(ohlc=True)
    from tests.runtime.helpers import flat_bars

    prices = 100 + np.sin(np.arange(n) / 5.0) * 5
    list(recorder.watch(flat_bars(list(prices), symbol="X")))
    return recorder.ohlc("X")


def _trades(n: int) -> list[Trade]:
    return [
        Trade(
            "X",
            1 if i % 2 == 0 else -1,
            1.0,
            T0 + (10 * i) * HOUR,
            T0 + (10 * i + 4) * HOUR,
            100.0,
            101.0,
            1.0,
            0.0,
            "go",
            ("stop_loss", "take_profit", "cross", END_OF_DATA)[i % 4],
        )
        for i in range(n)
    ]


def test_chart_data_marks_each_entry_and_exit_with_its_kind() -> None:
    bars = _bars(100)
    trades = _trades(8)
    equity_ts = bars.ts + HOUR
    data = chart_data("X", bars, HOUR, equity_ts, np.linspace(100, 110, 100), trades)
    assert data.bars_per_candle == 1
    assert data.marker_count(LONG_ENTRY) + data.marker_count(SHORT_ENTRY) == 8
    assert data.marker_count(LONG_ENTRY) == 4
    assert data.marker_count("exit: stop-loss") == 2
    assert data.marker_count("exit: end of data") == 2
    scatter = [p for p in addplots(data) if p.get("type") == "scatter"]
    assert sum(int(np.count_nonzero(~np.isnan(p["data"]))) for p in scatter) == 16
    # Panels below the candles: equity, then drawdown.
    assert [p["panel"] for p in addplots(data) if p.get("type") != "scatter"] == [1, 2]


def test_the_legend_counts_trades_not_candles() -> None:
    # 50 bars a candle: trades 10 h apart share candles, and a candle holds one marker a kind.
    bars = _bars(100)
    data = chart_data("X", bars, HOUR, bars.ts + HOUR, np.ones(100), _trades(8), max_candles=2)
    assert data.bars_per_candle == 50
    assert data.marker_count("exit: stop-loss") == 1  # exits at 4 h and 44 h: one candle
    labels = {p["label"] for p in addplots(data) if p.get("type") == "scatter"}
    assert labels == {
        "long entry (4)",
        "short entry (4)",
        "exit: stop-loss (2)",
        "exit: take-profit (2)",
        "exit: signal (2)",
        "exit: end of data (2)",
    }


def test_long_runs_are_downsampled_and_overlays_follow(tmp_path: Path) -> None:
    bars = _bars(2_000)
    overlay = [None if i < 10 else float(i) for i in range(2_000)]
    data = chart_data(
        "X",
        bars,
        HOUR,
        bars.ts + HOUR,
        np.full(2_000, 100.0),
        _trades(3),
        {"ema": overlay},
        max_candles=500,
    )
    assert data.bars_per_candle == 4 and data.open.size == 500
    assert data.high[0] == bars.high[:4].max() and data.close[0] == bars.close[3]
    # Each candle shows the value at its last bar (bar 11 closes the third candle).
    assert data.overlays["ema"][2] == 11.0 and np.isnan(data.overlays["ema"][1])
    with pytest.raises(ValueError, match="overlay 'ema' has 3 values"):
        chart_data("X", bars, HOUR, bars.ts, np.ones(2_000), [], {"ema": [1.0, 2.0, 3.0]})
    png = write_chart(tmp_path / "chart.png", "test", data, HOUR)
    content = png.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    assert 20_000 < len(content) < 2_000_000


def test_journal_migrates_from_2_and_from_3_and_keeps_trade_reasons(tmp_path: Path) -> None:
    v2 = tmp_path / "v2.sqlite"
    shutil.copy(FIXTURE, v2)
    # A version 3 file: what 2 → 3 did (the signals table), and its version number.
    v3 = tmp_path / "v3.sqlite"
    shutil.copy(FIXTURE, v3)
    db = sqlite3.connect(v3)
    db.execute(
        "CREATE TABLE signals (signal_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, ts INTEGER"
        " NOT NULL, accepted INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '',"
        " client_order_id TEXT NOT NULL DEFAULT '')"
    )
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    for path, old in ((v2, "2"), (v3, "3")):
        journal = Journal(path)
        meta = dict(journal.query("SELECT key, value FROM meta"))
        assert meta.pop("cash_flows_from").isdigit()  # when it began to book payments
        assert meta == {"schema_version": str(versions.CURRENT), "migrated_from": old}
        run_id = journal.runs()[0].run_id
        before = journal.trades(run_id)
        assert all(t.exit_reason == "" for t in before)  # old rows: no reason recorded
        journal.run_id = run_id
        trade = Trade("EURUSD", 1, 1.0, 1, 2, 1.0, 1.1, 0.1, 0.0, "cross-up", "stop_loss")
        journal.record_trades([(99, trade)])
        journal.record_run_symbols([("EURUSD", 3, 0, 1.0, 7200, 1.2)])
        journal.close()
        again = Journal(path)
        assert again.trades(run_id)[-1] == trade
        assert again.run_symbols(run_id) == [("EURUSD", 3, 0, 1.0, 7200, 1.2)]
        again.close()


def test_the_recorder_counts_the_same_ranges_with_and_without_a_chart() -> None:
    from tests.runtime.helpers import flat_bars

    b_bars = flat_bars([5.0, 6.0, 7.0], symbol="B")
    a_bars = flat_bars([1.0, 1.0, 2.0], symbol="A")[1:]  # from the second hour on
    stream = [b_bars[0], b_bars[1], a_bars[0], b_bars[2], a_bars[1]]
    charted, counted = BarRecorder(ohlc=True), BarRecorder()
    assert list(charted.watch(stream)) == stream
    assert list(counted.watch(stream)) == stream
    assert counted.symbols() == charted.symbols() == ["B", "A"]  # first bar's order
    ranges = counted.ranges()
    assert ranges == charted.ranges()
    assert [(r.symbol, r.bars, r.first_open, r.last_close) for r in ranges] == [
        ("A", 2, 1.0, 2.0),
        ("B", 3, 5.0, 7.0),
    ]
    assert ranges[1].first_ts == b_bars[0].ts and ranges[1].last_ts == b_bars[2].ts
    assert ranges[0].first_ts == a_bars[0].ts != b_bars[0].ts
