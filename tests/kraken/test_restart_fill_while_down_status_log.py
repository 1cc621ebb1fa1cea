"""A Kraken spot bot restarted after its entry filled while it was down: the new run's status
log of the entry reads carried over first, then the fill under the venue's word (one row) —
never filled, then pending again — and the fill is booked once.

A limit buy of 0.01 XBT/USD with its stop-loss and take-profit rests at the venue, the bot stops
(orders left working), the market trades through the limit while it is down, and the bot starts
again. The reconciliation books the one fill (position 0.01, the stop-loss placed at the venue
for 0.01) and journals the entry in the new run as carried over *before* the fill
(``Engine.restore_from_venue``: an order's status log lives in the run that journaled it). The
order list shows the entry filled, with the venue's word as its reason.
"""

from __future__ import annotations

import sqlite3
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import BOT, VenueHarness, harness_for
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, OrderStatus, OrderType, Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

SYMBOL = "BTC/USD"
HOUR = 3600
LIMIT, STOP, TARGET = 49_000.0, 48_000.0, 52_000.0


@dataclass
class Entry(Strategy):
    at: int = 0

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == self.at:
            self.ctx.buy(
                bar.symbol,
                0.01,
                order_type=OrderType.LIMIT,
                price=LIMIT,
                stop_loss=STOP,
                take_profit=TARGET,
            )


def manifest(folder: Path, k: VenueHarness) -> Path:
    (folder / "btc.csv").write_text("timestamp,open,high,low,close,volume\n")
    path = folder / "bot.yaml"
    path.write_text(
        textwrap.dedent(f"""
        apiVersion: tradefleet.io/v1alpha1
        kind: TradingBot
        metadata: {{name: {BOT}}}
        spec:
          mode: live
          liveConfirmation: {BOT}
          strategy: {{name: ema-cross, params: {{fast: 2, slow: 3}}}}
          market: {{symbols: ["{SYMBOL}"], timeframe: 1h}}
          broker:
            name: ccxt
            credentialsSecret: {{name: {BOT}-keys}}
            params:
              exchange: kraken
              market_type: spot
              api_url: {k.fake.url}
              poll_interval_s: 0.05
              timeout_ms: 1500
              rate_limit_ms: 10
          data: {{name: csv, params: {{path: {folder / "btc.csv"}, live_rehearsal: true}}}}
          capital: {{currency: USD, initial: 50000}}
        """)
    )
    return path


def bars(n: int) -> list[Bar]:
    start = (int(time.time()) // HOUR - 6) * HOUR
    return [
        Bar(SYMBOL, HOUR, start + i * HOUR, 50_000, 50_000, 50_000, 50_000, 1) for i in range(n)
    ]


def run(
    folder: Path, k: VenueHarness, bs: list[Bar], at: int, settle: Callable[[BotSession], None]
) -> tuple[float, str]:
    bot = assemble(load_manifest(manifest(folder, k)), PluginRegistry.discover(), folder)
    bot.strategy = Entry(at=at)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bs, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            yield bar
            settle(session)

    session.pacer = pace
    try:
        engine = session.open()
        session.run()
        session.close("completed")
        return engine.position(SYMBOL).quantity, engine.degraded_reason or ""
    finally:
        bot.broker.close()
        journal.close()


def settle_acked(session: BotSession) -> None:
    engine = session.engine
    broker = session.bot.broker
    assert engine is not None and isinstance(broker, CcxtBroker)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        engine.pump()
        engine.send_queued()
        if all(
            (r := broker.query_order(o.client_order_id)) is not None
            and r.status is OrderStatus.OPEN
            for o in engine.open_orders()
        ):
            break
        time.sleep(0.02)
    time.sleep(0.5)
    engine.pump()
    engine.send_queued()


def test_an_entry_filled_while_down_is_journaled_carried_over_before_its_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with harness_for("kraken", tmp_path) as k:
        assert isinstance(k, VenueHarness)
        with k.fake.state.lock:
            k.fake.account().balances["XXBT"] = Decimal(0)
        monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(k.credentials))
        k.broker.close()
        bs = bars(2)
        first = run(tmp_path, k, bs[:1], bs[0].ts, settle_acked)
        assert first == (0.0, "")  # the entry rests at the venue
        k.trade_through(LIMIT - 100)  # it fills while the bot is down
        time.sleep(0.3)
        second = run(tmp_path, k, bs, bs[0].ts, settle_acked)
        assert second[0] == pytest.approx(0.01)
        assert second[1] == ""
        stops = [o for o in k.fake.orders() if o.ordertype == "stop-loss" and o.status == "open"]
        assert len(stops) == 1  # the stop-loss rests at the venue after the restart
        db = sqlite3.connect(tmp_path / "bot.sqlite")
        try:
            [entry] = [
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT client_order_id FROM order_updates"
                    " WHERE client_order_id NOT LIKE '%-%'"
                )
            ]
            runs = [
                r[0] for r in db.execute("SELECT DISTINCT run_id FROM order_updates ORDER BY id")
            ]
            log = [
                (str(s), str(r))
                for s, r in db.execute(
                    "SELECT status, reason FROM order_updates"
                    " WHERE client_order_id = ? AND run_id = ? ORDER BY id",
                    (entry, runs[-1]),
                )
            ]
            fills = db.execute(
                "SELECT run_id, quantity FROM fills WHERE client_order_id = ?", (entry,)
            ).fetchall()
        finally:
            db.close()
        journal = Journal(tmp_path / "bot.sqlite", read_only=True)
        try:
            [row] = journal.order_rows(runs[-1], only=[entry])
        finally:
            journal.close()
    # Carried over into this run first, then the fill under the venue's word: never filled
    # and then pending again, and one row for the fill (no bare ``filled ''`` row followed by
    # the same status again).
    assert log == [
        ("pending", "carried over"),
        ("filled", "filled at the venue while the bot was down"),
    ], log
    # Booked once, in the new run.
    assert fills == [(runs[-1], pytest.approx(0.01))]
    # The order list (``tradefleet orders``, the report) shows it filled, for the venue's reason.
    assert (row[7], row[5], row[17]) == (
        "filled",
        pytest.approx(0.01),
        "filled at the venue while the bot was down",
    )
