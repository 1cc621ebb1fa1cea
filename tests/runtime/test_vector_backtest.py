"""``tradefleet backtest`` by the vectorised path leaves the event engine's journal, row for row.

Each case backtests one bot twice through the CLI, once as it chooses (the vectorised path)
and once with ``--engine`` (bar by bar), and compares the JSON report and every journal
table: the runs' summaries and manifests, orders, each order's last status, fills, the
position, trades, run symbols, the equity chunks, risk decisions, events, signals. Only what
differs between any two runs is left out: run ids, start and end times, and the autoincrement
ids of the order status log (a batch boundary of the engine's journal decides how many
intermediate steps it keeps; ``order_status``, the latest, is compared).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tradefleet_runtime.bar_columns import BarColumns, ColumnBars
from tradefleet_runtime.cli import main
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.vector_backtest import columns_of, vector_backtest, vector_refusal

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600
NOTE = "backtested by the vectorised path"

TABLES = {
    "runs": "SELECT bot, mode, status, currency, initial_capital, timeframe_s, config_hash,"
    " manifest, summary FROM runs",
    "orders": "SELECT client_order_id, symbol, side, order_type, quantity, price, stop_loss,"
    " take_profit, reduce_only, parent_id, created_ts, tag FROM orders ORDER BY rowid",
    "order_status": "SELECT client_order_id, status, reason, updated_ts, venue_order_id"
    " FROM order_status ORDER BY client_order_id",
    "fills": "SELECT fill_id, client_order_id, symbol, side, quantity, price, fee, ts, reason"
    " FROM fills ORDER BY rowid",
    "positions": "SELECT symbol, quantity, average_price, realized_pnl, updated_ts FROM positions",
    "trades": "SELECT seq, symbol, direction, quantity, entry_ts, exit_ts, entry_price,"
    " exit_price, gross_pnl, fees, entry_reason, exit_reason FROM trades ORDER BY seq",
    "run_symbols": "SELECT symbol, bars, first_ts, first_open, last_ts, last_close"
    " FROM run_symbols",
    "equity_chunks": "SELECT first_ts, count, ts, equity, exposure FROM equity_chunks"
    " ORDER BY first_ts",
    "risk_decisions": "SELECT ts, plugin, symbol, side, action, quantity_in, quantity_out,"
    " reason, client_order_id, code FROM risk_decisions ORDER BY id",
    "events": "SELECT ts, kind, message, data FROM events ORDER BY id",
    "signals": "SELECT * FROM signals",
    "meta": "SELECT * FROM meta",
}


def _tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {name: db.execute(query).fetchall() for name, query in TABLES.items()}
    finally:
        db.close()


def _backtest(
    capsys: pytest.CaptureFixture[str], manifest: Path, journal: Path, *extra: str
) -> tuple[str, str]:
    """(the JSON report, stderr) of ``tradefleet backtest`` in this process."""
    capsys.readouterr()
    code = main(["backtest", str(manifest), "--json", "--journal", str(journal), *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out, out.err


def _both(capsys: pytest.CaptureFixture[str], manifest: Path, tmp_path: Path) -> dict[str, Any]:
    """Backtest ``manifest`` both ways; check both reports and journals are the same."""
    vector_json, vector_err = _backtest(capsys, manifest, tmp_path / "vector.sqlite")
    engine_json, engine_err = _backtest(capsys, manifest, tmp_path / "engine.sqlite", "--engine")
    assert NOTE in vector_err
    assert NOTE not in engine_err
    assert vector_json == engine_json
    vector, engine = _tables(tmp_path / "vector.sqlite"), _tables(tmp_path / "engine.sqlite")
    for name in TABLES:
        assert vector[name] == engine[name], name
    return engine


def _bot(tmp_path: Path, csv: Path, **changes: Any) -> Path:
    spec: dict[str, Any] = {
        "mode": "backtest",
        "strategy": {"name": "ema-cross", "params": {"fast": 8, "slow": 21}},
        "market": {"symbols": ["SYN"], "timeframe": "1h"},
        "broker": {"name": "paper", "params": {"fee_bps": 7, "slippage_bps": 3, "leverage": 5}},
        "data": {"name": "csv", "params": {"path": str(csv), "gap_policy": "trade"}},
        "risk": [{"name": "fixed-size", "params": {"quantity": 2.5}}],
        "capital": {"currency": "USD", "initial": 100_000},
    }
    for key, value in changes.items():
        spec[key] = value
    path = tmp_path / "bot.yaml"
    document = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "vector-journal"},
        "spec": spec,
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _gapped(count: int, seed: int) -> BarColumns:
    """Hourly bars whose every open jumps away from the last close, with missing hours."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, count)))
    open_ = close * np.exp(rng.normal(0, 0.004, count))
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    steps = np.where(rng.random(count) < 0.03, 3, 1)  # about one gap in 30 bars
    ts = 1_600_000_000 - 1_600_000_000 % HOUR + np.cumsum(steps) * HOUR
    o, h, lo, c = (np.round(values, 6) for values in (open_, high, low, close))
    return BarColumns(ts.astype(np.int64), o, h, lo, c, np.ones(count))


def _write(columns: BarColumns, path: Path) -> Path:
    stamps = np.datetime_as_string(columns.ts.astype("datetime64[s]"))
    with path.open("w") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        for row in zip(
            stamps.tolist(),
            columns.open.tolist(),
            columns.high.tolist(),
            columns.low.tolist(),
            columns.close.tolist(),
            strict=True,
        ):
            out.write(f"{row[0].replace('T', ' ')},{row[1]!r},{row[2]!r},{row[3]!r},{row[4]!r},1\n")
    return path


def _targets(manifest: Path, columns: BarColumns) -> np.ndarray[Any, Any]:
    document = yaml.safe_load(manifest.read_text())
    bot = assemble(parse_manifest(document), PluginRegistry.discover(), manifest.parent)
    assert bot.planner is not None
    plan = bot.planner.target_positions(columns)
    assert plan is not None
    return np.asarray(plan.target)


def test_the_demo_bot_journals_the_same_rows_both_ways(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # EURUSD 2017: fixed-fractional sizing (the sizer's own reasons), shorts, weekend gaps.
    engine = _both(capsys, ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml", tmp_path)
    assert len(engine["fills"]) > 50
    assert {row[4] for row in engine["risk_decisions"]} == {"approve"}
    assert any(row[7].startswith("risk 1.00% of") for row in engine["risk_decisions"])
    assert any(row[1] == "data_gaps" for row in engine["events"])


def test_gapped_data_long_only_with_a_fixed_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = _write(_gapped(3_000, seed=11), tmp_path / "syn.csv")
    manifest = _bot(
        tmp_path,
        csv,
        strategy={"name": "ema-cross", "params": {"fast": 5, "slow": 17, "allow_short": False}},
    )
    engine = _both(capsys, manifest, tmp_path)
    assert len(engine["trades"]) > 20
    assert {row[3] for row in engine["fills"]} == {"buy", "sell"}
    assert all(row[4] == 2.5 for row in engine["fills"])


@pytest.mark.parametrize("sizer", ["fixed-size", "fixed-fractional"])
@pytest.mark.parametrize("held", [True, False], ids=["reversing", "from-flat"])
def test_a_turn_at_the_last_bar_journals_the_orders_that_never_fill(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sizer: str, held: bool
) -> None:
    # The data ends on a bar whose close changes the target: the engine sends the orders,
    # which stay open (no next open); the vectorised run has no fill for them.
    whole = _gapped(2_000, seed=5)
    csv = tmp_path / "syn.csv"
    params = {"fast": 6, "slow": 19, "allow_short": held}
    risk = {"fixed-size": {"quantity": 1.5}, "fixed-fractional": {"risk_per_trade": 0.01}}
    manifest = _bot(
        tmp_path,
        csv,
        strategy={"name": "ema-cross", "params": params},
        risk=[{"name": sizer, "params": risk[sizer]}],
    )
    target = _targets(manifest, whole)
    turns = np.flatnonzero(target[1:] != target[:-1]) + 1
    # A turn from flat when long only (to 1), a reversal when shorts are allowed.
    wanted = [t for t in turns if (target[t - 1] != 0) == held and target[t] != 0]
    end = int(wanted[-1])
    _write(whole.take(slice(0, end + 1)), csv)
    engine = _both(capsys, manifest, tmp_path)
    still_open = [row for row in engine["order_status"] if row[1] == "open"]
    assert len(still_open) == (2 if held else 1)


def _turns(manifest: Path, columns: BarColumns) -> np.ndarray[Any, Any]:
    """The bars whose close changes the plan's target (the first is the first entry)."""
    target = _targets(manifest, columns)
    return np.flatnonzero(target[1:] != target[:-1]) + 1


# Where the data ends, relative to the plan of the whole series (ema-cross 6/19, long only):
# the first entry is decided at bar ``first``, a second turn (the exit) at bar ``second``. The
# plan is causal (EMAs of past closes), so the data cut at ``n`` bars has the whole series'
# plan cut at ``n``.
ENDS: dict[str, Callable[[int, int], int]] = {
    "shorter than the warm-up": lambda first, second: 19 - 5,
    "the warm-up only": lambda first, second: 19,
    "no trade after the warm-up": lambda first, second: first,
    "the first entry decided at the last bar": lambda first, second: first + 1,
    "the first entry filled at the last bar": lambda first, second: first + 2,
    "one entry held to the end": lambda first, second: second,
}


@pytest.mark.parametrize("sizer", ["fixed-size", "fixed-fractional"])
@pytest.mark.parametrize("ends", sorted(ENDS))
def test_a_run_with_few_or_no_trades_journals_the_same_rows_both_ways(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sizer: str, ends: str
) -> None:
    # A run whose plan never turns after warm-up has no fill to index: it must still be the
    # engine's 0-trade run (it raised IndexError), and so must runs that trade only at the end.
    whole = _gapped(400, seed=7)
    csv = tmp_path / "syn.csv"
    risk = {"fixed-size": {"quantity": 1.5}, "fixed-fractional": {"risk_per_trade": 0.01}}
    manifest = _bot(
        tmp_path,
        csv,
        strategy={"name": "ema-cross", "params": {"fast": 6, "slow": 19, "allow_short": False}},
        risk=[{"name": sizer, "params": risk[sizer]}],
    )
    turns = _turns(manifest, whole)
    assert turns.size >= 2 and turns[0] > 19 + 5  # the cases below are distinct
    bars = ENDS[ends](int(turns[0]), int(turns[1]))
    _write(whole.take(slice(0, bars)), csv)
    engine = _both(capsys, manifest, tmp_path)
    # The one entry is one trade, closed at the end of the data.
    entries = {"the first entry filled at the last bar": 1, "one entry held to the end": 1}
    assert len(engine["fills"]) == len(engine["trades"]) == entries.get(ends, 0)


def test_a_bot_the_vectorised_path_cannot_state_runs_bar_by_bar(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv = _write(_gapped(600, seed=3), tmp_path / "syn.csv")
    cases: dict[str, dict[str, Any]] = {
        "brackets": {"strategy": {"name": "ema-cross", "params": {"stop_loss_pct": 0.02}}},
        "a second risk plugin": {
            "risk": [
                {"name": "fixed-size", "params": {"quantity": 1}},
                {"name": "pre-trade", "params": {}},
            ]
        },
        "a feed that fills its gaps": {
            "data": {"name": "csv", "params": {"path": str(csv), "gap_policy": "fill"}}
        },
        # The paper broker refuses an entry for margin: only the engine journals that.
        "a margin refusal": {"risk": [{"name": "fixed-size", "params": {"quantity": 10_000}}]},
    }
    for name, changes in cases.items():
        manifest = _bot(tmp_path, csv, **changes)
        chosen, err = _backtest(capsys, manifest, tmp_path / f"{name}.sqlite")
        assert NOTE not in err, name
        engine, _ = _backtest(capsys, manifest, tmp_path / f"{name}-e.sqlite", "--engine")
        assert chosen == engine, name


def test_plot_runs_bar_by_bar(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("mplfinance")
    csv = _write(_gapped(400, seed=2), tmp_path / "syn.csv")
    manifest = _bot(tmp_path, csv)
    capsys.readouterr()
    code = main(
        [
            "backtest",
            str(manifest),
            "--journal",
            str(tmp_path / "j.sqlite"),
            "--plot",
            str(tmp_path / "chart.png"),
            "--no-progress",
        ]
    )
    assert code == 0
    assert NOTE not in capsys.readouterr().err


def test_column_bars_are_the_columns_bars_and_say_when_reading_began() -> None:
    columns = _gapped(70_000, seed=1)  # more than one chunk
    bars = ColumnBars(columns, "SYN", HOUR)
    assert bars.untouched
    first = next(bars)
    assert not bars.untouched
    assert [first, *bars] == columns.bars("SYN", HOUR)


def test_the_path_is_refused_before_any_bar_is_read_for_what_it_cannot_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = _write(_gapped(100, seed=4), tmp_path / "syn.csv")

    def refusal(**changes: Any) -> str | None:
        document = yaml.safe_load(_bot(tmp_path, csv, **changes).read_text())
        bot = assemble(parse_manifest(document), PluginRegistry.discover(), tmp_path)
        return vector_refusal(bot)

    assert refusal() is None
    assert "paper" in str(refusal(mode="paper"))
    assert "target positions" in str(refusal(strategy={"name": "external-signal", "params": {}}))
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")  # the engine's spans are per order
    assert "tracing" in str(refusal())


def test_the_run_result_the_cli_prints_is_the_engines(tmp_path: Path) -> None:
    manifest = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"

    def bot() -> Any:
        document = yaml.safe_load(manifest.read_text())
        return assemble(parse_manifest(document), PluginRegistry.discover(), manifest.parent)

    vector_bot = bot()
    journal = Journal(tmp_path / "vector.sqlite", batched=True)
    feed = vector_bot.feed
    bars = feed.bars(BotSession(vector_bot, journal).feed_request())
    columns = columns_of(bars, vector_bot)
    assert columns is not None
    done = vector_backtest(vector_bot, journal, columns)
    journal.close()
    assert not isinstance(done, str), done
    journal = Journal(tmp_path / "engine.sqlite", batched=True)
    outcome = BotSession(bot(), journal).run_to_end()
    journal.close()
    vector, engine = done.outcome.result, outcome.result
    for name in (
        "bars",
        "history_bars",
        "orders",
        "fills",
        "risk_decisions",
        "vetoes",
        "risk_notes",
        "fees",
        "trades",
        "open_positions",
        "equity_ts",
        "equity",
        "exposure",
        "start_equity",
        "currency",
    ):
        assert getattr(vector, name) == getattr(engine, name), name
    assert vector.feed is not None and engine.feed is not None
    assert vector.feed.notes == engine.feed.notes
    assert done.outcome.open_trades == outcome.open_trades
    assert done.outcome.figures == outcome.figures
