"""A live bot on the fake Binance USDⓈ-M books its funding through a real ``BotSession``: a
payment made while it runs reaches its cash and its journal, and one made while it was down is
booked once, before its first bar after the restart (``reports-cash-flows``)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.brokers.harness import SYMBOL, VenueHarness, harness_for
from tests.brokers.live_manifests import live_ccxt_manifest
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, CashFlowReporter, Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

PRICE = 50_000.0  # the fake's start price
HOUR = 3600


@dataclass
class BuyOnce(Strategy):
    """Buys ``quantity`` at the bar of ``at`` and holds it."""

    at: int = 0
    quantity: float = 2.0

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == self.at:
            self.ctx.buy(bar.symbol, self.quantity)


def _manifest(folder: Path, harness: VenueHarness) -> Path:
    return live_ccxt_manifest(
        folder,
        harness,
        exchange="binanceusdm",
        market_type="linear",
        initial=100000,
        extra_params="funding_poll_s: 0.1",
    )


def _pump_until(session: BotSession, done: Callable[[], bool], what: str) -> None:
    engine = session.engine
    assert engine is not None
    deadline = time.monotonic() + 15.0
    while True:
        engine.pump()
        engine.send_queued()
        if done():
            return
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _paced(
    session: BotSession, harness: VenueHarness, pay_before: int | None
) -> Callable[[Iterable[Bar]], Iterator[Bar]]:
    """Each bar once the bot's orders filled; before the bar at ``pay_before`` the venue
    pays funding, and the bar waits until the bot booked it."""

    def pace(bars: Iterable[Bar]) -> Iterator[Bar]:
        engine = session.engine
        assert engine is not None
        for bar in bars:
            _pump_until(session, lambda: not engine.open_orders(), "an order did not fill")
            if bar.ts == pay_before:
                harness.fake.pass_funding_time()
                _pump_until(
                    session, lambda: engine.portfolio.cash_flows != 0.0, "no funding booked"
                )
            yield bar
        _pump_until(session, lambda: not engine.open_orders(), "an order did not fill")

    return pace


def _journaled(folder: Path) -> list[tuple[str, str, float, str, int, int]]:
    db = sqlite3.connect(folder / "bot.sqlite")
    try:
        return db.execute(
            "SELECT flow_id, symbol, amount, currency, ts, booked FROM cash_flows ORDER BY id"
        ).fetchall()
    finally:
        db.close()


def _session(folder: Path, harness: VenueHarness, bars: list[Bar]) -> tuple[BotSession, Journal]:
    bot = assemble(load_manifest(_manifest(folder, harness)), PluginRegistry.discover(), folder)
    assert isinstance(bot.broker, CcxtBroker) and isinstance(bot.broker, CashFlowReporter)
    assert bot.cash_flows is bot.broker  # the session asks it after a restart
    bot.strategy = BuyOnce(at=bars[0].ts)
    journal = Journal(folder / "bot.sqlite", durable=False)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)
    return session, journal


def test_funding_is_booked_while_running_and_caught_up_once_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = (int(time.time()) // HOUR - 6) * HOUR
    bars = [Bar(SYMBOL, HOUR, start + i * HOUR, PRICE, PRICE, PRICE, PRICE, 1.0) for i in range(4)]
    with harness_for("binance-usdm", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
        harness.broker.close()  # the harness's own broker: the bot brings its own
        harness.fake.set_funding_rate(SYMBOL, "0.0001")

        # Run 1: a long of 2 BTC; an instant passes before the third bar: -10 USDT.
        session, journal = _session(tmp_path, harness, bars[:3])
        try:
            session.pacer = _paced(session, harness, pay_before=bars[2].ts)
            engine = session.open()
            assert session.run() == "completed"
            session.close("completed")
            assert engine.portfolio.cash_flows == pytest.approx(-10.0)
            assert engine.position(SYMBOL).quantity == 2.0
        finally:
            session.bot.broker.close()
            journal.close()
        [income] = harness.fake.funding_income()
        first = (str(income.tran_id), SYMBOL, -10.0, "USDT", income.time // 1000, 1)
        assert _journaled(tmp_path) == [first]

        # While the bot is down the venue pays again (at 60,000: -12 USDT).
        harness.trade_through(60_000.0)
        harness.fake.pass_funding_time()
        paid_while_down = harness.fake.funding_income()[1]

        # Run 2: booked once, after reconciliation and before the first bar.
        session, journal = _session(tmp_path, harness, bars)
        try:
            session.pacer = _paced(session, harness, pay_before=None)
            engine = session.open()
            assert session.reconciliation is not None and not session.reconciliation.degraded
            second = (
                str(paid_while_down.tran_id),
                SYMBOL,
                -12.0,
                "USDT",
                paid_while_down.time // 1000,
                1,
            )
            assert _journaled(tmp_path) == [first, second]
            assert engine.portfolio.cash_flows == pytest.approx(-22.0)
            # The running broker reads funding again and again: nothing is booked twice.
            time.sleep(0.5)
            engine.pump()
            assert session.run() == "completed"
            session.close("completed")
            assert engine.portfolio.cash_flows == pytest.approx(-22.0)
        finally:
            session.bot.broker.close()
            journal.close()
        assert _journaled(tmp_path) == [first, second]
        events = sqlite3.connect(tmp_path / "bot.sqlite")
        try:
            kinds = [k for (k,) in events.execute("SELECT kind FROM events ORDER BY id")]
        finally:
            events.close()
        assert kinds.count("cash_flows_caught_up") == 1
        assert "cash_flow_refused" not in kinds
