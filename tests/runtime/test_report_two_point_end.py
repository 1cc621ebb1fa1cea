"""A run that ends on a fill between bars reports the bars it handled.

``Engine._end_snapshot`` journals a second equity point at the run's last close when a fill
arrived after it. The run's figures (``compute_figures``: the journal's run summary, `tradefleet
report`, every optimiser trial) count snapshots of one time as one bar, the last
(``metrics.one_per_time``): ``bars`` is the bars handled, Sharpe/Sortino have no return of zero
time, ``periods_per_year`` is the bars' own. The drawdown is measured over every snapshot, and
a backtest's series (one snapshot a time) are used as they are.

A live ccxt bot on the fake Binance USDⓈ-M: three hourly bars closing at 50,000; the last buys
0.5 BTC with a stop at 47,000, which fills at 46,000 before the bot stops.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.brokers.ccxt_restart_life import hand_to_a_bot
from tests.brokers.harness import VenueHarness, harness_for
from tests.runtime import test_restart_day_start as day
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.metrics import build_report, compute_figures, one_per_time
from tradefleet_runtime.report.sources import from_journal
from tradefleet_runtime.sdk import Bar
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest


@pytest.fixture(name="usdm")
def _usdm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with harness_for("binance-usdm", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        hand_to_a_bot(harness, monkeypatch)
        yield harness


def test_the_figures_count_the_bars_handled(tmp_path: Path, usdm: VenueHarness) -> None:
    bars = [b._replace(open=5e4, high=5e4, low=5e4, close=5e4) for b in day._bars(3)]
    manifest = day._manifest(tmp_path, usdm)
    bot = assemble(load_manifest(manifest), PluginRegistry.discover(), tmp_path)
    bot.strategy = day.EntryWithStop(bars[-1].ts)
    journal = Journal(tmp_path / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        yield from released
        assert session.engine is not None
        day._stop_fills_between_bars(session.engine, usdm)  # after the last close

    session.pacer = pace
    try:
        session.open()
        session.close(session.run())
    finally:
        bot.broker.close()
    try:
        [run] = [run for run in journal.runs() if run.bot == day.BOT]
        report = build_report(from_journal(journal, run))
        stamps, equity, _ = journal.equity_curve(run.run_id)
    finally:
        journal.close()
    closes = [b.close_ts for b in bars]
    assert list(stamps) == [*closes, closes[-1]]  # the two-point end
    per_year = (len(bars) - 1) / ((closes[-1] - closes[0]) / (365.25 * 86_400))
    assert report.figures.bars == len(bars), (
        f"{len(bars)} bars handled, the figures say {report.figures.bars}; periods per year "
        f"{report.figures.periods_per_year:,.0f} for hourly bars ({per_year:,.0f})"
    )
    assert report.figures.periods_per_year == pytest.approx(per_year)
    assert report.figures.final_equity == equity[-1]  # the equity the run ended at


HOUR = 3_600


def test_snapshots_of_one_time_are_one_bar_the_last() -> None:
    stamps = [HOUR, 2 * HOUR, 3 * HOUR, 3 * HOUR]
    equity = np.array([100.0, 110.0, 120.0, 90.0])
    figures = compute_figures(
        initial=100.0,
        timestamps=stamps,
        equity=equity,
        exposure=[0.0, 0.0, 50.0, 0.0],
        trades=(),
        fees=0.0,
    )
    assert figures.bars == 3
    assert figures.final_equity == 90.0
    assert figures.periods_per_year == pytest.approx(2 / (2 * HOUR / (365.25 * 86_400)))
    assert figures.exposure_pct == 0.0  # the last snapshot of the third close: flat
    assert figures.max_drawdown_pct == pytest.approx(25.0)  # 120 then 90: every snapshot
    one = compute_figures(
        initial=100.0,
        timestamps=stamps[:3],
        equity=np.array([100.0, 110.0, 90.0]),
        exposure=[0.0, 0.0, 0.0],
        trades=(),
        fees=0.0,
    )
    assert (figures.sharpe, figures.sortino) == (one.sharpe, one.sortino)


def test_a_series_of_one_snapshot_a_time_is_used_as_it_is() -> None:
    stamps = np.array([HOUR, 2 * HOUR, 3 * HOUR], dtype="int64")
    equity = np.array([100.0, 101.0, 99.0])
    exposure = np.array([0.0, 5.0, 0.0])
    kept = one_per_time(stamps, equity, exposure)
    assert kept[0] is stamps and kept[1] is equity and kept[2] is exposure
