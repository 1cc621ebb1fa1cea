"""A hole inside a funding history (rows missing from the file) is found and treated as a time
outside it: a position held at a funding time the venue paid in the hole fails the run naming
the file, the time and the rows around it, rather than paying nothing for it. A run that holds
nothing over the hole pays as with the full file; the file's holes are said once when read.

The defect this guards (reproduced on the code before): 1 BTC long at 50,000 from 23:00 to
09:00 the day after, over a file missing its 16:00 row (rate 0.0003), paid −25 (00:00, 08:00,
00:00, 08:00) instead of −40, without a word.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from tests.plugin_hooks import registry_with
from tests.plugins.test_paper_funding import (
    BTC,
    HOOKS,
    HOUR,
    START,
    T0,
    _backtest,
    _csv,
    _flat,
    _hourly,
    _manifest,
)
from tests.plugins.test_paper_funding_history import (
    FIELD,
    _broker,
    _cash_flows,
    _history,
    _unwrapped,
)
from tradefleet_plugins.brokers.paper import PaperBroker
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
from tradefleet_runtime.model import Fill, Order, OrderType, Side
from tradefleet_runtime.plugins.registry import PluginRegistry

LOGGER = "tradefleet_plugins.brokers.paper_funding_files"
# 00:00, 08:00, 16:00, 00:00 and 08:00 the day after; each test drops the rows it needs gone.
FULL = [(T0, 1e-4), (T0 + 8 * HOUR, 2e-4), (T0 + 16 * HOUR, 3e-4), (T0 + 24 * HOUR, 1e-4),
        (T0 + 32 * HOUR, 1e-4)]  # fmt: skip
NO_16 = [row for row in FULL if row[0] != T0 + 16 * HOUR]


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return registry_with(HOOKS)


@pytest.fixture
def cli_registry(registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    """``tradefleet backtest`` in this process, finding the ``hold`` strategy."""
    monkeypatch.setattr(PluginRegistry, "discover", classmethod(lambda cls: registry))
    return registry


def _of_gaps(*hours: int) -> FundingHistory:
    """A history from T0 whose rows are ``hours`` apart, one after the other."""
    times = np.cumsum([0, *hours], dtype=np.int64) * HOUR + T0
    return FundingHistory("h.csv", times, np.full(len(times), 1e-4))


def _at(*hours: int) -> list[tuple[int, int]]:
    """(row before, row after) pairs from hours since T0, two by two."""
    return [(T0 + a * HOUR, T0 + b * HOUR) for a, b in zip(hours[::2], hours[1::2], strict=True)]


# -- which gaps are holes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gaps", "holes"),
    [
        ((8, 8, 16, 8), _at(16, 32)),  # 00:00 the day after missing
        ((8, 8, 4, 4), []),  # the venue moved to 4-hour funding
        ((4, 4, 8, 8), []),  # and back to 8
        ((8, 8, 12, 4, 4), _at(16, 28)),  # a row lost where the interval changed
        ((8, 16, 8, 8, 24, 8), _at(8, 24, 40, 64)),  # two holes, one two rows long
        ((16, 8, 8), _at(0, 16)),  # at the first gap: its one neighbour
        ((8, 8, 16), _at(16, 32)),  # at the last gap
        ((16,), []),  # one gap: nothing to tell a hole from the interval by
        ((8, 16, 16, 8), []),  # the rule's blind spot (module docstring): reads as 16h funding
        ((8, 8, 11, 8), []),  # under 1.5 times its neighbours: not a lost row
        ((8, 4, 4), _at(0, 8)),  # a change at the first gap reads as a hole (one neighbour)
    ],
)
def test_a_gap_is_a_hole_when_both_its_neighbours_are_much_shorter(
    gaps: tuple[int, ...], holes: list[tuple[int, int]]
) -> None:
    assert _of_gaps(*gaps).holes == holes


def test_a_holes_interval_is_its_shorter_neighbour() -> None:
    history = _of_gaps(8, 8, 12, 4, 4, 16, 4)
    assert history.hole_steps.tolist() == [4 * HOUR, 4 * HOUR]
    assert _of_gaps(16, 8, 8).hole_steps.tolist() == [8 * HOUR]  # the one neighbour


def test_a_parsed_file_knows_its_holes() -> None:
    lines = ["calc_time,last_funding_rate", *(f"{ts * 1000},{rate!r}" for ts, rate in NO_16)]
    assert parse_funding_history(lines, "h.csv").holes == _at(8, 24)


def test_the_lookups_in_a_hole() -> None:
    """The venue's 16:00 is where the next funding time after 08:00 falls; uncovered names it
    for any position owing it, and none once past it."""
    history = _of_gaps(8, 16, 8)  # 00:00, 08:00, [16:00], 00:00, 08:00
    assert next_funding_time(history, T0) == T0 + 8 * HOUR
    assert next_funding_time(history, T0 + 8 * HOUR) == T0 + 16 * HOUR
    assert next_funding_time(history, T0 + 15 * HOUR) == T0 + 16 * HOUR
    assert next_funding_time(history, T0 + 16 * HOUR) == T0 + 24 * HOUR
    assert next_funding_time(history, T0 + 20 * HOUR) == T0 + 24 * HOUR
    assert uncovered(history, T0, T0 + 15 * HOUR) is None
    assert uncovered(history, T0, T0 + 16 * HOUR) == T0 + 16 * HOUR
    assert uncovered(history, T0 + 8 * HOUR, T0 + 30 * HOUR) == T0 + 16 * HOUR
    assert uncovered(history, T0 + 16 * HOUR, T0 + 16 * HOUR) == T0 + 16 * HOUR
    assert uncovered(history, T0 + 24 * HOUR, T0 + 32 * HOUR) is None
    # A long hole at a shorter interval: each of the venue's times in it in turn.
    long = _of_gaps(4, 4, 12, 4)  # 00, 04, 08, [12, 16], 20, 24
    assert next_funding_time(long, T0 + 8 * HOUR) == T0 + 12 * HOUR
    assert next_funding_time(long, T0 + 12 * HOUR) == T0 + 16 * HOUR
    assert next_funding_time(long, T0 + 16 * HOUR) == T0 + 20 * HOUR


# -- a run over a hole ---------------------------------------------------------------------


def test_a_backtest_holding_over_a_hole_fails_naming_the_file_time_and_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """1 BTC held from 22:00 to 09:00 the day after over a file missing 16:00: the run fails
    at the 16:00 bar (exit 2, journaled as failed) instead of paying nothing for 16:00."""
    history = _history(tmp_path / "btc-funding.csv", NO_16)
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 36, 50_000.0))  # 22:00 to 09:00
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_history": {BTC: str(history)}})
    journal = tmp_path / "j.sqlite"
    capsys.readouterr()
    code = main(["backtest", str(manifest), "--json", "--journal", str(journal)])
    err = _unwrapped(capsys.readouterr().err)
    assert code == 2
    said = (
        f"{FIELD}: the position in {BTC} is held at the funding time 2024-01-01 16:00 UTC, in a "
        f"hole of the history ({history}: no row between 2024-01-01 08:00 and 2024-01-02 00:00 "
        "UTC), which has no rate for it: add the venue's missing rows to the file (download "
        "them again)"
    )
    assert _unwrapped(said) in err
    db = sqlite3.connect(journal)
    try:
        ((status,),) = db.execute("SELECT status FROM runs").fetchall()
        paid = db.execute("SELECT ts FROM cash_flows ORDER BY ts").fetchall()
    finally:
        db.close()
    assert status == "failed"
    assert paid == [(T0,), (T0 + 8 * HOUR,)]  # what it knew, and nothing after the hole


def test_a_position_owing_a_time_in_a_hole_fails_on_the_first_bar_after_it(
    tmp_path: Path,
) -> None:
    """No bar from 10:00 to 19:00: the 20:00 bar is the first at or after 16:00, and fails."""
    broker = _broker(**{BTC: _history(tmp_path / "h.csv", NO_16)})
    broker.submit(Order("buy", BTC, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0 - HOUR))
    bars = [_flat(BTC, T0 + h * HOUR, 100.0) for h in range(-1, 24) if not 10 <= h <= 19]
    assert [t for t, _, _ in _cash_flows(broker, bars[:11])] == [T0, T0 + 8 * HOUR]
    with pytest.raises(DataError, match=r"held at the funding time 2024-01-01 16:00 UTC, in a"):
        broker.on_bar(bars[11])


def test_a_position_restored_over_a_hole_fails(tmp_path: Path) -> None:
    """Restarted with 1 BTC bought at 09:00 and the bot down over 16:00: the next bar fails."""
    broker = _broker(**{BTC: _history(tmp_path / "h.csv", NO_16)})
    broker.restore_account([Fill("o", BTC, Side.BUY, 1.0, 100.0, 0.0, T0 + 9 * HOUR, "f")])
    with pytest.raises(DataError, match=r"2024-01-01 16:00 UTC, in a hole of the history"):
        broker.on_bar(_flat(BTC, T0 + 17 * HOUR, 100.0))


def _round_trips(history: Path) -> list[tuple[int, int, float]]:
    """Long 23:00 to 10:00 (over 00:00 and 08:00), flat over 16:00, long again from 17:00 to
    09:00 the day after (over 00:00 and 08:00): the payments."""
    broker = _broker(**{BTC: history})
    orders = {
        T0 - HOUR: Order("o1", BTC, Side.BUY, 1.0, OrderType.MARKET, created_ts=T0 - HOUR),
        T0 + 10 * HOUR: Order("c1", BTC, Side.SELL, 1.0, OrderType.MARKET,
                              created_ts=T0 + 10 * HOUR),
        T0 + 17 * HOUR: Order("o2", BTC, Side.BUY, 1.0, OrderType.MARKET,
                              created_ts=T0 + 17 * HOUR),
    }  # fmt: skip
    paid: list[tuple[int, int, float]] = []
    for ts in range(T0 - HOUR, T0 + 34 * HOUR, HOUR):
        if ts in orders:
            broker.submit(orders[ts])
        paid += _cash_flows(broker, [_flat(BTC, ts, 100.0 + (ts - T0) // HOUR)])
    assert broker.balance() != 1e6  # the orders filled
    return paid


def test_a_run_flat_over_the_hole_pays_as_with_the_full_file(tmp_path: Path) -> None:
    """Holding nothing at 16:00, a run over the file missing it is not refused and pays what
    the full file makes it pay: 00:00, 08:00, 00:00 and 08:00 the day after."""
    with_hole = _round_trips(_history(tmp_path / "hole.csv", NO_16))
    full = _round_trips(_history(tmp_path / "full.csv", FULL))
    assert with_hole == full
    assert [t for t, _, _ in full] == [T0, T0 + 8 * HOUR, T0 + 24 * HOUR, T0 + 32 * HOUR]


# -- said when read ------------------------------------------------------------------------


def test_the_holes_are_said_once_when_the_file_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two holes (16:00, and 16:00 the day after): one warning naming the file, the count and
    the first, however many brokers (an optimiser's trials) read the file."""
    rows = [*NO_16, (T0 + 48 * HOUR, 1e-4), (T0 + 56 * HOUR, 1e-4)]  # 40:00 missing too
    path = _history(tmp_path / "holes.csv", rows)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            broker = PaperBroker(PaperBrokerParams(funding_history={BTC: str(path)}))
            broker.connect(BrokerContext("b", "backtest", (BTC,), "USDT", 1e6))  # type: ignore[arg-type]
    said = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert said == [
        f"{path}: 2 hole(s) in the funding history (rows missing), the first from 2024-01-01 "
        "08:00 UTC to 2024-01-02 00:00 UTC: 16 hours without a row where the rows around it "
        "are 8 hours apart. A position held over a hole fails the run; add the venue's "
        "missing rows to the file (download them again)"
    ]
    assert caplog.records[0].levelno == logging.WARNING


def test_a_file_without_holes_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hours = (0, 8, 16, 20, 24)  # 8h funding, then 4h
    changed = [(T0 + h * HOUR, 1e-4) for h in hours]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        PaperBroker(PaperBrokerParams(funding_history={BTC: str(_history(tmp_path / "h.csv",
                                                                         changed))}))  # fmt: skip
    assert not [r for r in caplog.records if r.name == LOGGER]


def test_a_backtest_flat_over_a_hole_says_it_and_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_registry: PluginRegistry
) -> None:
    """The bars end before the hole's missing time: the run succeeds, paying 00:00 and 08:00,
    and the user is told of the hole on stderr."""
    history = _history(tmp_path / "btc-hole.csv", NO_16)
    csv = _csv(tmp_path / "btc.csv", _hourly(START, 14, 50_000.0))  # 22:00 to 11:00
    manifest = _manifest(tmp_path, {BTC: csv}, {"funding_history": {BTC: str(history)}})
    report, err = _backtest(capsys, manifest, tmp_path / "j.sqlite")
    assert report["funding"] == pytest.approx(-5.0 - 10.0)
    assert _unwrapped(f"{history}: 1 hole(s) in the funding history") in _unwrapped(err)
