"""The paper broker pays a venue's history of funding rates (``funding_history``), not only a
constant: each symbol with a history pays at the history's own times, each at its own rate,
settled as the constant rate is (the first bar opening at or after the time, on the position
held before its fills, at its open). A position held at a funding time the history has no
rate for fails the run naming it, rather than paying 0 or a guess.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.plugin_hooks import registry_with
from tests.plugins.test_paper_funding import (
    BTC,
    ETH,
    HOOKS,
    HOUR,
    START,
    T0,
    VECTOR_NOTE,
    _backtest,
    _csv,
    _ema_bot,
    _flat,
    _flows,
    _hourly,
    _manifest,
    _report,
    _set,
)
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_funding_files import load_funding_histories
from tradefleet_plugins.brokers.paper_funding_history import (
    FundingHistory,
    next_funding_time,
    parse_funding_history,
    uncovered,
)
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.cli import main
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.errors import DataError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, CashFlow, Fill, Order, OrderType, Side
from tradefleet_runtime.optimize.vector import vector_terms
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest
from tradefleet_runtime.spec.checks import validate_plugins


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return registry_with(HOOKS)


@pytest.fixture
def cli_registry(registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    """``tradefleet backtest`` in this process, finding the ``hold`` strategy."""
    monkeypatch.setattr(PluginRegistry, "discover", classmethod(lambda cls: registry))
    return registry


SAMPLE = Path(__file__).parent / "funding_data" / "BTCUSDT-fundingRate-2024-01-sample.csv"
FIELD = f"spec.broker.params.funding_history.{BTC}"
BINANCE_HEADER = "calc_time,funding_interval_hours,last_funding_rate"


def _history(path: Path, rows: list[tuple[int, float]], header: str = BINANCE_HEADER) -> Path:
    """A Binance-format file: (epoch seconds, rate) rows, written in ms with an 8h interval."""
    lines = [header, *(f"{ts * 1000},8,{rate!r}" for ts, rate in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _broker(**histories: Path) -> PaperBroker:
    broker = PaperBroker(
        PaperBrokerParams(funding_history={s: str(p) for s, p in histories.items()})
    )
    broker.connect(BrokerContext("b", "paper", tuple(histories), "USDT", 1e6))  # type: ignore[arg-type]
    return broker


def _unwrapped(text: str) -> str:
    """``text`` without whitespace: the console wraps a long error anywhere, paths included."""
    return "".join(text.split())


def _cash_flows(broker: PaperBroker, bars: list[Bar]) -> list[tuple[int, int, float]]:
    """(funding time, bar paid at, amount) of each payment ``bars`` made."""
    return [
        (event.ts, bar.ts, event.amount)
        for bar in bars
        for event in broker.on_bar(bar)
        if isinstance(event, CashFlow)
    ]


# -- what a history pays -------------------------------------------------------------------


def test_a_binance_history_of_three_rows_pays_exactly_those_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """1 BTC long at 50,000 over the sample's three funding times (+0.01 %, −0.02 %, +0.03 %):
    it pays 5, receives 10, pays 15 — in the journal, the report's funding line (their sum,
    −10) and the backtest's JSON. The bars end before the history's next time (00:00 the day
    after), so nothing is owed beyond it."""
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 24, 50_000.0))  # 22:00 to 21:00
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_history": {BTC: str(SAMPLE)}})
    journal = tmp_path / "j.sqlite"
    backtest, _ = _backtest(capsys, manifest, journal)
    flows = _flows(journal)
    assert flows == [
        (f"funding:{BTC}:{T0}", "funding", BTC, "USDT", pytest.approx(-5.0), T0, 1),
        (f"funding:{BTC}:{T0 + 8 * HOUR}", "funding", BTC, "USDT", pytest.approx(10.0),
         T0 + 8 * HOUR, 1),
        (f"funding:{BTC}:{T0 + 16 * HOUR}", "funding", BTC, "USDT", pytest.approx(-15.0),
         T0 + 16 * HOUR, 1),
    ]  # fmt: skip
    paid = sum(row[4] for row in flows)
    assert paid == pytest.approx(-10.0)
    assert backtest["funding"] == pytest.approx(paid)
    assert backtest["net_pnl"] == pytest.approx(paid)
    report = json.loads(_report(capsys, journal, "--json"))
    assert report["funding"] == pytest.approx(paid)
    assert "funding" in _report(capsys, journal) and "-10.00 USDT" in _report(capsys, journal)


def test_an_interval_change_from_8h_to_4h_is_followed(tmp_path: Path) -> None:
    """The venue moved the symbol to 4-hour funding after 16:00: the history's 20:00 and 00:00
    are paid (the 8-hour grid would skip 20:00), each at its own rate and bar's open."""
    times = [T0, T0 + 8 * HOUR, T0 + 16 * HOUR, T0 + 20 * HOUR, T0 + 24 * HOUR]
    rates = [0.0001, 0.0002, 0.0003, 0.0004, -0.0005]
    history = _history(tmp_path / "h.csv", list(zip(times, rates, strict=True)))
    broker = _broker(**{BTC: history})
    broker.submit(Order("buy", BTC, Side.BUY, 2.0, OrderType.MARKET, created_ts=T0 - HOUR))
    bars = [
        _flat(BTC, ts, 100.0 + i) for i, ts in enumerate(range(T0 - HOUR, T0 + 28 * HOUR, HOUR))
    ]
    paid = _cash_flows(broker, bars)
    assert [t for t, _, _ in paid] == times
    assert [at for _, at, _ in paid] == times  # each at its own bar
    # 2 BTC × the bar's open (100 + hours since 23:00) × the rate, a long paying it.
    assert [a for _, _, a in paid] == pytest.approx(
        [-2 * (101 + (t - T0) // HOUR) * r for t, r in zip(times, rates, strict=True)]
    )


def test_times_in_a_hole_of_the_bars_each_pay_their_own_rate_at_the_next_open(
    tmp_path: Path,
) -> None:
    """No bar from 06:00 to 17:00: 08:00 and 16:00 are paid once each at the 18:00 open, each
    at its own rate (not the latest's twice)."""
    history = _history(tmp_path / "h.csv", [(T0, 0.0001), (T0 + 8 * HOUR, 0.0002),
                                             (T0 + 16 * HOUR, -0.0004)])  # fmt: skip
    broker = _broker(**{BTC: history})
    broker.submit(Order("buy", BTC, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0 - HOUR))
    hours = [h for h in range(-1, 20) if not 6 <= h <= 17]
    bars = [_flat(BTC, T0 + h * HOUR, 1_000.0 if h < 18 else 2_000.0) for h in hours]
    assert _cash_flows(broker, bars) == [
        (T0, T0, pytest.approx(-0.1)),
        (T0 + 8 * HOUR, T0 + 18 * HOUR, pytest.approx(-0.4)),
        (T0 + 16 * HOUR, T0 + 18 * HOUR, pytest.approx(0.8)),
    ]


def test_a_symbol_without_a_history_keeps_the_constant_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """BTC pays its history, ETH the bot-wide constant on the 8-hour grid."""
    btc = _hourly(START, 20, 50_000.0)
    eth = [b._replace(symbol=ETH, open=3_000.0, high=3_000.0, low=3_000.0, close=3_000.0)
           for b in btc]  # fmt: skip
    manifest = _manifest(
        tmp_path,
        {BTC: _csv(tmp_path / "btc.csv", btc), ETH: _csv(tmp_path / "eth.csv", eth)},
        {"funding_rate": 0.0001, "funding_history": {BTC: str(SAMPLE)}},
    )
    _backtest(capsys, manifest, tmp_path / "j.sqlite")
    paid = {(s, ts): amount for _, _, s, _, amount, ts, _ in _flows(tmp_path / "j.sqlite")}
    assert paid == pytest.approx(
        {
            (BTC, T0): -5.0, (BTC, T0 + 8 * HOUR): 10.0, (BTC, T0 + 16 * HOUR): -15.0,
            (ETH, T0): -0.3, (ETH, T0 + 8 * HOUR): -0.3, (ETH, T0 + 16 * HOUR): -0.3,
        }
    )  # fmt: skip


# -- outside the history: refused, never 0 or a guess ---------------------------------------


def test_a_position_held_past_the_historys_end_fails_the_backtest_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """The sample's last time is 16:00 at an 8-hour interval; bars to 01:00 the day after hold
    the position at 00:00, which it has no rate for: the run fails (exit 2, journaled as
    failed), naming the param, the symbol and the history's last time."""
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 28, 50_000.0))  # to 01:00 the day after
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_history": {BTC: str(SAMPLE)}})
    journal = tmp_path / "j.sqlite"
    capsys.readouterr()
    code = main(["backtest", str(manifest), "--json", "--journal", str(journal)])
    err = _unwrapped(capsys.readouterr().err)
    assert code == 2
    said = f"{FIELD}: the position in {BTC} is held at the funding time 2024-01-02 00:00 UTC"
    assert _unwrapped(said) in err
    assert _unwrapped("after the history") in err
    assert _unwrapped("its last time 2024-01-01 16:00 UTC") in err
    db = sqlite3.connect(journal)
    try:
        ((status,),) = db.execute("SELECT status FROM runs").fetchall()
    finally:
        db.close()
    assert status == "failed"


def test_a_position_opened_after_the_end_fails_at_the_next_funding_time_and_flat_pays_none(
    tmp_path: Path,
) -> None:
    """Flat past the end owes nothing; a position opened at 02:00 the day after (the history
    ended at 16:00, 8-hour interval) fails at the first bar at or after 08:00, not before."""
    broker = _broker(**{BTC: SAMPLE})
    for ts in range(T0 + 16 * HOUR, T0 + 26 * HOUR, HOUR):
        assert not broker.on_bar(_flat(BTC, ts, 100.0))
    broker.submit(Order("buy", BTC, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0 + 26 * HOUR))
    for ts in range(T0 + 26 * HOUR, T0 + 32 * HOUR, HOUR):
        assert not [e for e in broker.on_bar(_flat(BTC, ts, 100.0)) if isinstance(e, CashFlow)]
    with pytest.raises(DataError, match=r"held at the funding time 2024-01-02 08:00 UTC, after"):
        broker.on_bar(_flat(BTC, T0 + 32 * HOUR, 100.0))


def test_a_position_held_before_the_historys_first_time_fails(tmp_path: Path) -> None:
    """The history starts at 08:00 (8-hour interval): a position held from 23:00 the day
    before holds over 00:00, which it has no rate for."""
    history = _history(tmp_path / "h.csv", [(T0 + 8 * HOUR, 0.0001), (T0 + 16 * HOUR, 0.0001)])
    broker = _broker(**{BTC: history})
    broker.submit(Order("buy", BTC, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0 - HOUR))
    broker.on_bar(_flat(BTC, T0 - HOUR, 100.0))
    with pytest.raises(DataError) as refused:
        broker.on_bar(_flat(BTC, T0, 100.0))
    message = str(refused.value)
    assert message.startswith(f"{FIELD}: the position in {BTC} is held at the funding time")
    assert "2024-01-01 00:00 UTC, before the history" in message and str(history) in message
    # Opened an hour before the first time, it owes exactly the history's.
    late = _broker(**{BTC: history})
    late.submit(Order("buy", BTC, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0 + 7 * HOUR))
    bars = [_flat(BTC, ts, 100.0) for ts in range(T0 + 7 * HOUR, T0 + 17 * HOUR, HOUR)]
    assert [t for t, _, _ in _cash_flows(late, bars)] == [T0 + 8 * HOUR, T0 + 16 * HOUR]


def test_the_lookups_at_the_historys_ends() -> None:
    """Outside the history the next funding time is where the venue's would fall at the
    interval of that end; uncovered names it."""
    # 8h then 4h: a row before T0 keeps the change off the first gap, where it reads as a hole.
    times = [T0 - 8 * HOUR, T0, T0 + 8 * HOUR, T0 + 12 * HOUR]
    history = FundingHistory(
        "h", np.array(times, dtype=np.int64), np.array([1e-4, 1e-4, 2e-4, 3e-4], dtype=np.float64)
    )
    assert next_funding_time(history, T0 - 1) == T0
    assert next_funding_time(history, T0 - 8 * HOUR) == T0
    assert next_funding_time(history, T0 - 8 * HOUR - 1) == T0 - 8 * HOUR
    assert next_funding_time(history, T0) == T0 + 8 * HOUR
    assert next_funding_time(history, T0 + 12 * HOUR) == T0 + 16 * HOUR  # the last interval, 4h
    assert next_funding_time(history, T0 + 17 * HOUR) == T0 + 20 * HOUR
    assert uncovered(history, T0, T0 + 15 * HOUR) is None
    assert uncovered(history, T0, T0 + 16 * HOUR) == T0 + 16 * HOUR
    assert uncovered(history, T0 - 16 * HOUR, T0) == T0 - 16 * HOUR
    assert uncovered(history, T0 + 20 * HOUR, T0 + 20 * HOUR) == T0 + 20 * HOUR


# -- reading the files ---------------------------------------------------------------------


def test_ccxt_columns_in_milliseconds_are_read(tmp_path: Path) -> None:
    """A ccxt fetchFundingRateHistory dump: ``timestamp`` (ms) and ``fundingRate``, with
    ``datetime`` and ``symbol`` beside them; newest first (sorted)."""
    path = tmp_path / "ccxt.csv"
    path.write_text(
        "symbol,datetime,timestamp,fundingRate\n"
        f"BTC/USDT:USDT,2024-01-01T16:00:00.000Z,{(T0 + 16 * HOUR) * 1000},-0.00005\n"
        f"BTC/USDT:USDT,2024-01-01T08:00:00.000Z,{(T0 + 8 * HOUR) * 1000},0.000125\n"
        f"BTC/USDT:USDT,2024-01-01T00:00:00.000Z,{T0 * 1000},0.0001\n"
    )
    (history,) = load_funding_histories({BTC: str(path)}, tmp_path).values()
    assert history.times.tolist() == [T0, T0 + 8 * HOUR, T0 + 16 * HOUR]
    assert history.rates.tolist() == [0.0001, 0.000125, -0.00005]


def test_iso_times_and_epoch_seconds_are_read() -> None:
    lines = [
        "Time,Rate",
        "2024-01-01T00:00:00Z,0.0001",
        "2024-01-01 08:00:00+00:00,0.0002",
        "2024-01-01T17:00:00+01:00,0.0003",  # 16:00 UTC
        "2024-01-02 00:00,0.0004",  # no zone: UTC
        f"{T0 + 32 * HOUR},0.0005",  # epoch seconds
    ]
    history = parse_funding_history(lines, "h.csv")
    assert history.times.tolist() == [T0 + h * HOUR for h in (0, 8, 16, 24, 32)]
    assert history.rates.tolist() == [0.0001, 0.0002, 0.0003, 0.0004, 0.0005]


def test_a_repeated_row_is_kept_once() -> None:
    """Monthly files joined with an overlap: the same time at the same rate is one time."""
    lines = ["calc_time,last_funding_rate", f"{T0},0.0001", f"{T0 + 8 * HOUR},0.00010000",
             f"{T0 + 8 * HOUR},0.0001", f"{T0 + 16 * HOUR},0.0002"]  # fmt: skip
    history = parse_funding_history(lines, "h.csv")
    assert history.times.tolist() == [T0, T0 + 8 * HOUR, T0 + 16 * HOUR]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (["calc_time,rate_x", f"{T0},0.0001"],
         "h.csv: row 1: no funding rate column: the header (calc_time, rate_x) names none of "
         "last_funding_rate, fundingRate, funding_rate, rate"),
        (["when,fundingRate", f"{T0},0.0001"],
         "h.csv: row 1: no funding time column: the header (when, fundingRate) names none of "
         "calc_time, timestamp, time, fundingTime"),
        (["timestamp,fundingRate", f"{T0},0.0001", f"{T0 + 8 * HOUR},abc"],
         "h.csv: row 3: fundingRate: 'abc' is not a number"),
        (["timestamp,fundingRate", f"{T0},0.0001", f"{T0 + 8 * HOUR},nan"],
         "h.csv: row 3: fundingRate: 'nan' is not a finite number"),
        (["timestamp,fundingRate", f"{T0},0.0001", f"{T0 + 8 * HOUR},0.06"],
         "h.csv: row 3: fundingRate: 0.06 is beyond ±0.05 an interval"),
        (["timestamp,fundingRate", f"{T0},0.0001", f"{T0 + 8 * HOUR},"],
         "h.csv: row 3: fundingRate: no value"),
        (["timestamp,fundingRate", "yesterday,0.0001"],
         "h.csv: row 2: timestamp: 'yesterday' is not a time"),
        (["timestamp,fundingRate", f"{T0},0.0001", f"{T0},0.0002"],
         "h.csv: row 3: timestamp: 2024-01-01 00:00 UTC again (row 2) at another rate "
         "(0.0002, not 0.0001)"),
        (["timestamp,fundingRate", f"{T0},0.0001", f"{T0 + 16 * HOUR},0.0001",
          f"{T0 + 8 * HOUR},0.0001"],
         "h.csv: row 4: timestamp: 2024-01-01 08:00 UTC is out of order (row 3: "
         "2024-01-01 16:00 UTC)"),
        (["timestamp,fundingRate", f"{T0},0.0001"],
         "h.csv: 1 funding time(s): a history needs two at least"),
        ([], "h.csv: row 1: the file is empty"),
    ],
)  # fmt: skip
def test_a_bad_history_is_refused_naming_the_file_row_and_field(
    rows: list[str], expected: str
) -> None:
    with pytest.raises(DataError) as refused:
        parse_funding_history(rows, "h.csv")
    assert str(refused.value).startswith(expected), str(refused.value)


def test_a_refused_file_is_named_with_the_param_when_the_broker_is_built(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"timestamp,fundingRate\n{T0},0.0001\n{T0 + 8 * HOUR},1%\n")
    with pytest.raises(DataError) as refused:
        PaperBroker(PaperBrokerParams(funding_history={BTC: str(bad)}))
    assert str(refused.value) == f"{FIELD}: {bad}: row 3: fundingRate: '1%' is not a number"


def test_a_relative_path_is_the_manifest_folders_as_the_csv_feeds(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_registry: PluginRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``tradefleet backtest`` started elsewhere reads ``funding/btc.csv`` beside the
    manifest, as it reads the bars; the working directory's file of that name is not used."""
    bot = tmp_path / "bot"
    (bot / "funding").mkdir(parents=True)
    shutil.copy(SAMPLE, bot / "funding" / "btc.csv")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "funding").mkdir(parents=True)
    _history(elsewhere / "funding" / "btc.csv", [(T0, 0.005), (T0 + 8 * HOUR, 0.005)])
    monkeypatch.chdir(elsewhere)
    csv = _csv(bot / "btc.csv", _hourly(START, 24, 50_000.0))
    manifest = _manifest(bot, {BTC: csv}, {"funding_history": {BTC: "funding/btc.csv"}})
    journal = tmp_path / "j.sqlite"
    backtest, _ = _backtest(capsys, manifest, journal)
    assert backtest["funding"] == pytest.approx(-10.0)  # the sample's, beside the manifest


def test_a_missing_file_names_the_param_and_the_path_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Params built without the bot (a test, a plugin of its own): a relative path is the
    working directory's, and the error says where it looked."""
    monkeypatch.chdir(tmp_path)
    relative = PaperBrokerParams(funding_history={BTC: "funding/btc.csv"})
    with pytest.raises(DataError) as refused:
        PaperBroker(relative)
    looked = tmp_path.resolve() / "funding" / "btc.csv"
    assert str(refused.value) == f"{FIELD}: {looked}: no such file"
    (tmp_path / "funding").mkdir()
    _history(tmp_path / "funding" / "btc.csv", [(T0, 1e-4), (T0 + 8 * HOUR, 1e-4)])
    PaperBroker(relative).connect(BrokerContext("b", "backtest", (BTC,), "USDT", 1e6))  # type: ignore[arg-type]
    (tmp_path / "funding" / "dir.csv").mkdir()
    with pytest.raises(DataError, match=r"dir\.csv is not a regular file"):
        PaperBroker(PaperBrokerParams(funding_history={BTC: "funding/dir.csv"}))


def test_a_missing_file_fails_the_backtest_before_its_run_is_journaled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """Read when the bot is assembled: the command fails (exit 2) naming the param and the
    path, and leaves no journal holding a run that never ended."""
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 24, 50_000.0))
    missing = tmp_path / "none.csv"
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_history": {BTC: str(missing)}})
    journal = tmp_path / "j.sqlite"
    capsys.readouterr()
    code = main(["backtest", str(manifest), "--journal", str(journal)])
    err = _unwrapped(capsys.readouterr().err)
    assert code == 2
    assert _unwrapped(f"{FIELD}: {missing}: no such file") in err
    assert not journal.exists()


def test_a_file_is_parsed_once_per_version(tmp_path: Path) -> None:
    """An optimiser's trials each build a broker: the file is parsed once while it is
    unchanged, and again once rewritten."""
    path = _history(tmp_path / "h.csv", [(T0, 1e-4), (T0 + 8 * HOUR, 2e-4)])
    first = load_funding_histories({BTC: str(path)}, tmp_path)[BTC]
    assert load_funding_histories({BTC: str(path)}, tmp_path)[BTC] is first
    _history(path, [(T0, 3e-4), (T0 + 8 * HOUR, 4e-4)])
    later = time.time() + 5
    os.utime(path, (later, later))
    assert load_funding_histories({BTC: str(path)}, tmp_path)[BTC].rates.tolist() == [3e-4, 4e-4]
    assert not first.times.flags.writeable  # shared between brokers: never written to


# -- params --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"funding_rate_per_symbol": {BTC: 0.0001}, "funding_history": {BTC: "h.csv"}},
         f"spec.broker.params.funding_history: {BTC}: also set in funding_rate_per_symbol "
         "(0.0001): give the symbol a history or a constant rate, not both"),
        ({"funding_rate": 0.0001, "funding_history": {BTC: "h.csv"}},
         "spec.broker.params.funding_history: every symbol pays by its history (or "
         "funding_rate_per_symbol), so funding_rate 0.0001 would apply to none"),
        ({"funding_history": {"BTCUSTD": "h.csv"}},
         "spec.broker.params.funding_history.BTCUSTD: not one of the bot's symbols"),
        ({"funding_history": {BTC: " "}},
         f"spec.broker.params.funding_history: {BTC}: ' ' is not a file's path"),
    ],
)  # fmt: skip
def test_history_params_are_refused_naming_the_fields(
    tmp_path: Path, registry: PluginRegistry, params: dict[str, Any], expected: str
) -> None:
    manifest = _manifest(tmp_path, {BTC: _csv(tmp_path / "btc.csv", _hourly(T0, 3, 1.0))}, params)
    (error,) = [str(e) for e in validate_plugins(load_manifest(manifest), registry)]
    assert error.startswith(expected), error


def test_the_generated_reference_lists_funding_history() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    paper = text.split("## `paper` (broker)")[1].split("\n## ")[0]
    assert "| `funding_history` |" in paper


# -- the vectorised path -------------------------------------------------------------------


def test_the_vectorised_path_refuses_a_history_and_the_engine_pays_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cli_registry: PluginRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = _history(
        tmp_path / "h.csv", [(START + i * 8 * HOUR, 0.0001) for i in range(0, 27)]
    )  # 200 hourly bars: 25 funding times and room past the last
    manifest = _ema_bot(tmp_path, {"fee_bps": 5, "funding_history": {BTC: str(history)}})
    with caplog.at_level(logging.INFO, logger="tradefleet.cli"):
        report, err = _backtest(capsys, manifest, tmp_path / "j.sqlite")
    assert VECTOR_NOTE not in err
    assert f"funding_history.{BTC} {history} (the vectorised path pays no funding)" in caplog.text
    assert _flows(tmp_path / "j.sqlite") and report["trades"]
    sizer: list[tuple[str, Mapping[str, Any]]] = [("fixed-size", {"quantity": 1.0})]
    terms = vector_terms(
        (BTC,), ("paper", {"funding_history": {BTC: "h.csv"}}), sizer,
        initial_capital=1e6, timeframe_s=HOUR,
    )  # fmt: skip
    assert terms == f"funding_history.{BTC} h.csv (the vectorised path pays no funding)"


# -- restarts ------------------------------------------------------------------------------


def test_a_restored_account_pays_no_history_time_twice() -> None:
    """Rebuilt from the journal with 00:00 and 08:00 paid: the 08:00 bar handed again pays
    nothing; 16:00, passed while down, is paid once at its own rate at the next bar."""
    broker = _broker(**{BTC: SAMPLE})
    broker.restore_account([Fill("o", BTC, Side.BUY, 1.0, 50_000.0, 0.0, START + HOUR, "f")])
    broker.restore_cash_flows(
        [CashFlow(f"funding:{BTC}:{T0}", BTC, -5.0, "USDT", T0),
         CashFlow(f"funding:{BTC}:{T0 + 8 * HOUR}", BTC, 10.0, "USDT", T0 + 8 * HOUR)]
    )  # fmt: skip
    assert broker.balance() == pytest.approx(1e6 - 50_000.0 + 5.0)
    assert not broker.on_bar(_flat(BTC, T0 + 8 * HOUR, 50_000.0))
    (late,) = broker.on_bar(_flat(BTC, T0 + 18 * HOUR, 40_000.0))
    assert isinstance(late, CashFlow)
    expected = CashFlow(f"funding:{BTC}:{T0 + 16 * HOUR}", BTC, -12.0, "USDT", T0 + 16 * HOUR)
    assert late.flow_id == expected.flow_id and late.ts == expected.ts
    assert late.amount == pytest.approx(expected.amount)
    assert broker.balance() == pytest.approx(1e6 - 50_000.0 + 5.0 - 12.0)


def _paper_session(
    folder: Path, registry: PluginRegistry, bars: list[Bar]
) -> tuple[BotSession, Journal]:
    manifest = _manifest(
        folder, {BTC: folder / "unread.csv"}, {"funding_history": {BTC: str(SAMPLE)}}, mode="paper"
    )
    _set(manifest, "data", None)  # the bars are handed to the session
    bot = assemble(load_manifest(manifest), registry, folder)
    journal = Journal(folder / "paper.sqlite", durable=True)
    return BotSession(bot, journal, bars=bars), journal


def test_a_restarted_paper_bot_pays_each_history_time_once(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """Run 1 holds 1 BTC over 00:00 and 08:00 (−5, +10). The restart, handed 08:00 again,
    pays 08:00 nothing twice and 16:00 once (−15); the broker's cash stays the engine's."""
    bars = _hourly(START, 24, 50_000.0)
    session, journal = _paper_session(tmp_path, registry, bars[:12])  # 22:00 to 09:00
    session.open()
    session.run()
    journal.close()
    assert [row[5] for row in _flows(tmp_path / "paper.sqlite")] == [T0, T0 + 8 * HOUR]

    session, journal = _paper_session(tmp_path, registry, bars[10:20])  # 08:00 again to 17:00
    engine = session.open()
    try:
        assert engine.portfolio.cash_flows == pytest.approx(5.0)
        session.run()
        assert session.bot.broker.balance() == pytest.approx(engine.portfolio.cash)
    finally:
        journal.close()
    flows = _flows(tmp_path / "paper.sqlite")
    assert [(row[5], row[4]) for row in flows] == [
        (T0, pytest.approx(-5.0)),
        (T0 + 8 * HOUR, pytest.approx(10.0)),
        (T0 + 16 * HOUR, pytest.approx(-15.0)),
    ]
    assert engine.portfolio.cash_flows == pytest.approx(-10.0)
