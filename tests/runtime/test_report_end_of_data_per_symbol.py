"""A multi-symbol backtest whose symbols' data end at different times: a position still open
at a symbol's last bar is an "end of data" trade ending at that bar's close, at its close price
— not at the run's end — in `backtest --json`, the journal, `report` (JSON and text) and the
chart, and the trades still add up to the equity."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.helpers import HOUR, T0
from tradefleet_runtime.cli import main
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import END_OF_DATA, Bar, Trade
from tradefleet_runtime.report import sources
from tradefleet_runtime.report.bars import OHLC
from tradefleet_runtime.report.metrics import (
    ReportInput,
    SymbolRange,
    build_report,
    end_of_data_at_symbol_ends,
)
from tradefleet_runtime.report.plot import chart_data

INITIAL = 10_000.0
# Hourly bars from T0: 15 falling, then rising to the end. ema-cross (2/5, long only) buys the
# turn on both symbols and holds to each one's last bar. A's file is half as long as B's.
BARS = {"A": 30, "B": 60}
FALLING = 15
LAST_CLOSE = {"A": 100.0, "B": 130.0}  # 100 - 15 + (n - 15)
END = {symbol: T0 + n * HOUR for symbol, n in BARS.items()}  # each one's last bar's close

MANIFEST = """\
apiVersion: tradefleet.io/v1alpha1
kind: TradingBot
metadata: {name: uneven}
spec:
  mode: backtest
  strategy: {name: ema-cross, params: {fast: 2, slow: 5, allow_short: false}}
  market: {symbols: [A, B], timeframe: 1h}
  broker: {name: paper, params: {fee_bps: 10}}
  data: {name: csv, params: {files: {A: a.csv, B: b.csv}}}
  risk: [{name: fixed-size, params: {quantity: 10}}]
  capital: {currency: USD, initial: 10000}
"""


def _bars(symbol: str) -> list[Bar]:
    bars, price = [], 100.0
    for i in range(BARS[symbol]):
        close = price - 1.0 if i < FALLING else price + 1.0
        bars.append(
            Bar(symbol, HOUR, T0 + i * HOUR, price, max(price, close), min(price, close), close, 1)
        )
        price = close
    return bars


def _write_bot(folder: Path) -> Path:
    for symbol in BARS:
        rows = "".join(
            f"{datetime.fromtimestamp(b.ts, UTC):%Y-%m-%d %H:%M},{b.open},{b.high},{b.low},"
            f"{b.close}\n"
            for b in _bars(symbol)
        )
        (folder / f"{symbol.lower()}.csv").write_text("timestamp,open,high,low,close\n" + rows)
    manifest = folder / "uneven.yaml"
    manifest.write_text(MANIFEST)
    return manifest


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(list(argv)) == 0
    document: dict[str, object] = json.loads(capsys.readouterr().out)
    return document


def _epoch(iso: object) -> int:
    assert isinstance(iso, str)
    return int(datetime.fromisoformat(iso).timestamp())


def _by_symbol(listed: object) -> dict[str, dict[str, object]]:
    assert isinstance(listed, list)
    rows = {row["symbol"]: row for row in listed}
    assert len(rows) == len(listed) == 2, listed  # one trade a symbol: the held position
    return rows


def test_each_symbol_ends_its_open_trade_at_its_own_last_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "220")  # the trade list is wide
    journal = tmp_path / "uneven.sqlite"
    ran = _json(capsys, "backtest", str(_write_bot(tmp_path)), "--json", "--journal", str(journal))
    read = _json(capsys, "report", str(journal), "--json", "--trades")
    trades = _by_symbol(read.pop("trade_list"))
    assert read == ran  # the backtest and its journal report the same
    assert _epoch(ran["end"]) == END["B"]  # the run ends with the longer file

    for symbol, trade in trades.items():
        assert trade["exit_reason"] == END_OF_DATA
        # At its own last bar's close time and price: A's 30 hours before the run's end.
        assert (_epoch(trade["exit_time"]), trade["exit_price"]) == (
            END[symbol],
            LAST_CLOSE[symbol],
        ), symbol
    # The held time follows: the average of each trade's own.
    held = [END[s] - _epoch(t["entry_time"]) for s, t in trades.items()]
    assert held[0] == held[1] - (END["B"] - END["A"])
    assert ran["average_trade_duration_s"] == pytest.approx(sum(held) / 2)

    # Trades add up to the change of equity (no exit fee), whole and per symbol.
    pnl = {symbol: float(trade["net_pnl"]) for symbol, trade in trades.items()}  # type: ignore[arg-type]
    assert sum(pnl.values()) == pytest.approx(float(ran["final_equity"]) - INITIAL)  # type: ignore[arg-type]
    groups = ran["symbols"]
    assert isinstance(groups, dict)
    assert {s: g["net_pnl"] for s, g in groups.items()} == pytest.approx(pnl)

    # The journal's rows say the same as its symbol ranges (first and last bar of each).
    with closing(Journal(journal, read_only=True)) as book:
        (run,) = book.runs()
        ranges = {row[0]: SymbolRange(*row) for row in book.run_symbols(run.run_id)}
        journaled = {t.symbol: t for t in book.trades(run.run_id)}
    for symbol, row in journaled.items():
        ended = ranges[symbol]
        assert (row.exit_ts, row.exit_price) == (ended.last_ts + HOUR, ended.last_close)

    # The text report lists A's exit at A's last bar.
    assert main(["report", str(journal), "--trades"]) == 0
    text = capsys.readouterr().out
    (listed,) = [line for line in text.splitlines() if "│ A " in line and END_OF_DATA in line]
    assert f"{datetime.fromtimestamp(END['A'], UTC):%Y-%m-%d %H:%M}" in listed
    assert f"{datetime.fromtimestamp(END['B'], UTC):%Y-%m-%d %H:%M}" not in listed

    # The chart marks A's end-of-data exit in A's last candle, at A's last close.
    bars = OHLC.of(_bars("A"))
    data = chart_data("A", bars, HOUR, [END["B"]], [INITIAL], list(journaled.values()), None, 10)
    exits = data.markers[f"exit: {END_OF_DATA}"]
    assert np.flatnonzero(~np.isnan(exits)).tolist() == [exits.size - 1]
    assert exits[-1] == LAST_CLOSE["A"]


def test_a_journal_stamped_at_the_run_end_reports_each_symbols_own_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A journal written before the fix: every end-of-data trade at the run's last close.
    with monkeypatch.context() as patch:
        patch.setattr(sources, "end_of_data_at_symbol_ends", lambda trades, *_: list(trades))
        journal = tmp_path / "old.sqlite"
        _json(capsys, "backtest", str(_write_bot(tmp_path)), "--json", "--journal", str(journal))
    with closing(Journal(journal, read_only=True)) as book:
        (run,) = book.runs()
        assert {t.exit_ts for t in book.trades(run.run_id)} == {END["B"]}
    trades = _by_symbol(_json(capsys, "report", str(journal), "--json", "--trades")["trade_list"])
    assert {s: _epoch(t["exit_time"]) for s, t in trades.items()} == END


def _trade(symbol: str, exit_ts: int, reason: str = END_OF_DATA) -> Trade:
    return Trade(symbol, 1, 2.0, T0, exit_ts, 10.0, 12.0, 4.0, 0.5, "buy", reason)


def test_only_end_of_data_trades_after_their_symbols_end_move() -> None:
    run_end = T0 + 10 * HOUR
    ranges = [
        SymbolRange("SHORT", 4, T0, 10.0, T0 + 3 * HOUR, 12.0),  # ends 6 hours early
        SymbolRange("LONG", 10, T0, 10.0, T0 + 9 * HOUR, 12.0),
    ]
    trades = [
        _trade("SHORT", T0 + 2 * HOUR, "cross"),  # closed by the strategy: kept
        _trade("SHORT", run_end),
        _trade("LONG", run_end),
        _trade("ELSE", run_end),  # no range journaled for it: kept
    ]
    stamped = end_of_data_at_symbol_ends(trades, ranges, HOUR)
    assert [t.exit_ts for t in stamped] == [T0 + 2 * HOUR, T0 + 4 * HOUR, run_end, run_end]
    # Only the time moves: price and P&L are the ones the equity holds.
    assert [(t.exit_price, t.net_pnl) for t in stamped] == [(t.exit_price, 3.5) for t in trades]
    assert end_of_data_at_symbol_ends(stamped, ranges, HOUR) == stamped  # read again: the same


def test_exposure_ends_with_a_symbols_end_of_data_trade() -> None:
    """W33: a position in a symbol whose data ended early is held by the engine to the run's
    end at its last mark, so the run's exposure counted it in the market after its trade had
    ended at that symbol's last bar (98% where the trades held 88%)."""
    stamps = [T0 + i * HOUR for i in range(1, 11)]
    # Only SHORT is held: bought at the 2nd close, its data end at the 6th (held 2 × 50).
    exposure = [0.0, 0.0, *[100.0] * 8]
    early = Trade("SHORT", 1, 2.0, stamps[1], stamps[5], 50.0, 50.0, 0.0, 0.0, "buy", END_OF_DATA)
    ranges = (
        SymbolRange("SHORT", 5, T0, 50.0, stamps[5] - HOUR, 50.0),  # its last close: stamps[5]
        SymbolRange("LONG", 10, T0, 50.0, stamps[-1] - HOUR, 50.0),
    )
    data = ReportInput(
        initial=INITIAL,
        currency="USD",
        timeframe_s=HOUR,
        timestamps=stamps,
        equity=[INITIAL] * 10,
        exposure=exposure,
        trades=[early],
        fees=0.0,
        symbols=ranges,
    )
    assert build_report(data).figures.exposure_pct == pytest.approx(40.0)  # closes 3 to 6
    # A short of two pyramided lots leaves whole (|-1 x 50| + |-1 x 50|).
    lots = [replace(early, direction=-1, quantity=1.0, entry_reason="sell") for _ in range(2)]
    assert build_report(replace(data, trades=lots)).figures.exposure_pct == pytest.approx(40.0)
    # Held to the run's end, closed by the strategy, or a report without symbol ranges (a
    # walk-forward's stitched windows, each ending its own position, R51): as journaled.
    for kept in (
        replace(data, trades=[replace(early, exit_ts=stamps[-1])]),
        replace(data, trades=[replace(early, exit_reason="cross")]),
        replace(data, symbols=()),
    ):
        assert build_report(kept).figures.exposure_pct == pytest.approx(80.0)
