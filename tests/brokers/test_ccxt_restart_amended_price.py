"""A working limit entry moved before a restart keeps the venue's price after it.

The bot's limit buy at 49,000 is moved to 49,500 (Binance spot by cancel-replace, ``<id>-a1``;
Binance USDⓈ-M in place), and the process dies. The restarted bot used to adopt the order
with the price its journal held (49,000): ``tradefleet orders`` showed the old price, and a
strategy or risk rule reading the working order's price decided on a number the venue no
longer held. Now the restored order carries the venue's price and quantity, in the engine's
book and in the journal (the orders the status reads), and reconciliation notes the change.

Through a real ``BotSession`` restart against the fake venues with the real ccxt.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.brokers.harness import START_PRICE, SYMBOL, VenueHarness, harness_for
from tests.brokers.live_manifests import live_ccxt_manifest
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.reconcile import ReconcilePlan, adopted_order
from tradefleet_runtime.sdk import (
    Bar,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    Side,
    Strategy,
)
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

LIMIT, MOVED = 49_000.0, 49_500.0
QUANTITY = 0.01
HOUR = 3600
# setup -> (ccxt exchange, market type, the fake's market, the bot's capital)
SETUPS = {
    "binance-spot": ("binance", "spot", "spot", 50_000),  # cancel-replace: <id>-a1
    "binance-usdm": ("binanceusdm", "linear", "usdm", 100_000),  # amended in place
}


class _Killed(BaseException):
    """The process dies (SIGKILL) with the bot's order working at the venue."""


@dataclass
class _Entry(Strategy):
    """A limit buy of ``QUANTITY`` at ``LIMIT`` at the bar of time ``at``; nothing else."""

    at: int = 0

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == self.at:
            self.ctx.buy(bar.symbol, QUANTITY, order_type=OrderType.LIMIT, price=LIMIT)


def _until(engine: Engine, done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        engine.pump()
        engine.send_queued()
        if done():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _statuses_of(journal: Journal, cid: str) -> list[tuple[str, str]]:
    rows = journal.query(
        "SELECT status, reason FROM order_updates WHERE client_order_id = ? ORDER BY id", cid
    )
    return [(str(status), str(reason)) for status, reason in rows]


Step = Callable[[BotSession, Engine, Journal], None]


def _life(folder: Path, harness: VenueHarness, setup: str, bars: list[Bar], after: Step) -> None:
    """One life of the bot on ``bars``; ``after`` runs once it handled them (a ``_Killed``
    out of it is the process dying)."""
    exchange, market_type, _market, initial = SETUPS[setup]
    manifest = live_ccxt_manifest(
        folder, harness, exchange=exchange, market_type=market_type, initial=initial
    )
    bot = assemble(load_manifest(manifest), PluginRegistry.discover(), folder)
    assert isinstance(bot.broker, CcxtBroker)
    bot.strategy = _Entry(at=bars[0].ts)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            yield bar
            engine = session.engine
            assert engine is not None
            _until(engine, _all_acked(engine, journal), "acks")
        engine = session.engine
        assert engine is not None
        after(session, engine, journal)

    session.pacer = pace
    try:
        session.open()
        try:
            session.run()
        except _Killed:
            return
        session.close("completed")
    finally:
        bot.broker.close()
        journal.close()


def _all_acked(engine: Engine, journal: Journal) -> Callable[[], bool]:
    """Whether the venue's answer to each working order of the bot is journaled."""

    def acked(order: Order) -> bool:
        return any(s != "pending" for s, _ in _statuses_of(journal, order.client_order_id))

    return lambda: all(acked(order) for order in engine.open_orders())


def _bars() -> list[Bar]:
    start = (int(time.time()) // HOUR - 6) * HOUR
    return [
        Bar(SYMBOL, HOUR, start + i * HOUR, START_PRICE, START_PRICE, START_PRICE, START_PRICE, 1)
        for i in range(2)
    ]


def _venue_working(harness: VenueHarness, market: str, cid: str) -> tuple[str, float, float]:
    """The bot's order as the venue works it now: (client id of the copy, price, quantity)."""
    with harness.fake.state.lock:
        [order] = [
            o
            for o in harness.fake.orders(market)
            if o.client_order_id.startswith(cid) and o.is_open
        ]
        return order.client_order_id, float(order.price), float(order.orig_qty)


def _moved(harness: VenueHarness, market: str, first: dict[str, str]) -> Step:
    """The first life's end: the bot's limit buy is moved to ``MOVED`` and acknowledged as
    amended (journaled), then the process dies."""

    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        [order] = engine.open_orders()
        first["cid"] = cid = order.client_order_id
        assert order.price == LIMIT
        broker = session.bot.broker
        assert isinstance(broker, CcxtBroker)
        broker.amend(cid, None, MOVED)
        _until(
            engine,
            lambda: (
                _venue_working(harness, market, cid)[1] == MOVED
                and ("open", "amended") in _statuses_of(journal, cid)
            ),
            "the amend",
        )
        raise _Killed

    return step


@dataclass
class _Seen:
    plan: ReconcilePlan | None = None
    working: list[Order] | None = None


def _restarted(seen: _Seen) -> Step:
    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        seen.plan = session.reconciliation
        seen.working = list(engine.open_orders())

    return step


def _journal_order(path: Path, cid: str) -> tuple[float, float]:
    """(price, quantity) of ``cid`` in the journal's newest run: what ``tradefleet orders``
    and the status show of a working order."""
    db = sqlite3.connect(path)
    try:
        [(price, quantity)] = db.execute(
            "SELECT price, quantity FROM orders WHERE client_order_id = ? AND run_id = "
            "(SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1)",
            (cid,),
        ).fetchall()
    finally:
        db.close()
    return float(price), float(quantity)


def _journal_notes(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT message FROM events WHERE kind = 'reconcile_note'").fetchall()
    finally:
        db.close()
    return [str(message) for (message,) in rows]


@pytest.mark.parametrize("setup", list(SETUPS))
def test_a_restarted_bot_works_its_moved_entry_at_the_venues_price(
    setup: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moved from 49,000 to 49,500 before the restart: after it, the bot's working order, its
    journal row and the reconciliation's adopted report all hold 49,500, as the venue does;
    the quantity is the whole order's; the change is noted."""
    market = SETUPS[setup][2]
    with harness_for(setup, tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
        harness.broker.close()  # the bot brings its own
        bars = _bars()
        first: dict[str, str] = {}
        _life(tmp_path, harness, setup, bars[:1], _moved(harness, market, first))
        cid = first["cid"]
        copy, venue_price, _ = _venue_working(harness, market, cid)
        assert venue_price == MOVED
        assert copy == (f"{cid}-a1" if setup == "binance-spot" else cid)

        seen = _Seen()
        _life(tmp_path, harness, setup, bars, _restarted(seen))
        assert seen.plan is not None and not seen.plan.degraded
        [adopted] = seen.plan.adopted
        assert (adopted.client_order_id, adopted.price) == (cid, MOVED)
        assert seen.working is not None
        [working] = seen.working
        assert working.client_order_id == cid
        assert (working.price, working.quantity) == pytest.approx((MOVED, QUANTITY))
        assert _journal_order(tmp_path / "bot.sqlite", cid) == pytest.approx((MOVED, QUANTITY))
        assert any(
            cid in note and "49500" in note for note in _journal_notes(tmp_path / "bot.sqlite")
        )


def _report(order_type: OrderType, price: float | None, quantity: float = QUANTITY) -> OrderReport:
    return OrderReport(
        "tfx1", "9", SYMBOL, Side.BUY, order_type, quantity, 0.0, OrderStatus.OPEN, 1, price
    )


JOURNALED = Order("tfx1", SYMBOL, Side.BUY, QUANTITY, OrderType.LIMIT, LIMIT, tag="entry")


@pytest.mark.parametrize(
    ("report", "price", "quantity"),
    [
        (_report(OrderType.LIMIT, MOVED), MOVED, QUANTITY),  # moved: the venue's price
        (_report(OrderType.LIMIT, MOVED, 0.02), MOVED, 0.02),  # and its quantity
        (_report(OrderType.LIMIT, None), LIMIT, QUANTITY),  # no price said: the journal's
        (_report(OrderType.LIMIT, 0.0), LIMIT, QUANTITY),
        (_report(OrderType.LIMIT, float("nan")), LIMIT, QUANTITY),
        (_report(OrderType.STOP, MOVED), LIMIT, QUANTITY),  # another kind's price: not taken
    ],
)
def test_an_adopted_order_is_the_journals_at_the_venues_price_and_quantity(
    report: OrderReport, price: float, quantity: float
) -> None:
    adopted = adopted_order(report, JOURNALED)
    assert (adopted.price, adopted.quantity, adopted.tag) == (price, quantity, "entry")


def test_an_adopted_order_the_journal_never_held_is_the_reports() -> None:
    adopted = adopted_order(_report(OrderType.LIMIT, MOVED), None)
    assert (adopted.client_order_id, adopted.price, adopted.tag) == ("tfx1", MOVED, "adopted")
