"""One life of a live ccxt bot on a fake venue, for tests that kill the bot and restart it.

The restart tests of the ccxt broker (``test_ccxt_restart_*``) share this harness: a strategy
placing one limit entry, a real ``BotSession`` paced so that each bar's orders are acknowledged
by the venue before the next, a step run once the bars are handled (where a test moves, fills
or reads the bot's order, then raises ``Killed`` for the process dying), and readings of the
journal and of the fake Binance spot account. What differs between tests is a parameter: the
strategy, the venue's market type and the bot's capital, the step.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import (
    START_PRICE,
    SYMBOL,
    VenueHarness,
    base_balance,
    coinless_spot,
)
from tests.brokers.live_manifests import live_ccxt_manifest
from tests.venues.binance.state import Candle
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar, Order, OrderType, Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

# The entry every restart test works: a limit buy of QUANTITY at LIMIT, moved to MOVED.
LIMIT, MOVED = 49_000.0, 49_500.0
QUANTITY = 0.01
HOUR = 3600

Step = Callable[[BotSession, Engine, Journal], None]
"""What a life does once the bot handled its bars: (session, engine, journal) -> None."""

VenueOrders = dict[str, tuple[str, float, float]]
"""An order's copies at the venue: client id -> (status, ordered, executed)."""


class Killed(BaseException):
    """The process dies (SIGKILL) with the bot's order working at the venue: raised by a
    life's step, it ends the life without ``session.close`` (``life`` catches it)."""


# -- the bot --------------------------------------------------------------------------------


@dataclass
class LimitEntry(Strategy):
    """A limit buy of ``quantity`` at ``price`` at the bar of time ``at``; nothing else.
    ``look``, when given, is called at every bar (before the entry): a test reads there what
    the venue holds when the bot first trades after a restart."""

    at: int = 0
    quantity: float = QUANTITY
    price: float = LIMIT
    look: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        if self.look is not None:
            self.look()
        if bar.ts == self.at:
            self.ctx.buy(bar.symbol, self.quantity, order_type=OrderType.LIMIT, price=self.price)


def hourly_bars(count: int) -> list[Bar]:
    """``count`` flat hourly bars at ``START_PRICE``, the first six hours ago (all closed)."""
    start = (int(time.time()) // HOUR - 6) * HOUR
    return [
        Bar(SYMBOL, HOUR, start + i * HOUR, START_PRICE, START_PRICE, START_PRICE, START_PRICE, 1)
        for i in range(count)
    ]


def until(engine: Engine, done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Apply the broker's events (and send what the engine queued) until ``done()``; fail
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        engine.pump()
        engine.send_queued()
        if done():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def life(
    folder: Path,
    harness: VenueHarness,
    bars: list[Bar],
    after: Step,
    *,
    strategy: Strategy | None = None,
    exchange: str = "binance",
    market_type: str = "spot",
    initial: int = 50_000,
) -> Path:
    """One life of a live ccxt bot at ``harness``'s venue (``exchange``, ``market_type``, an
    account of ``initial``) on ``bars``, its journal in ``folder``: ``strategy`` trades
    (default: ``LimitEntry`` at the first bar), each bar's orders are acknowledged by the
    venue before the next bar, and ``after`` runs once the bot handled them all; a ``Killed``
    out of it is the process dying (the session is not closed). The journal's path."""
    manifest = live_ccxt_manifest(
        folder, harness, exchange=exchange, market_type=market_type, initial=initial
    )
    bot = assemble(load_manifest(manifest), PluginRegistry.discover(), folder)
    assert isinstance(bot.broker, CcxtBroker)
    bot.strategy = strategy if strategy is not None else LimitEntry(at=bars[0].ts)
    journal = Journal(folder / "bot.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars, should_stop=threading.Event().is_set)

    def pace(released: Iterable[Bar]) -> Iterator[Bar]:
        for bar in released:
            yield bar
            engine = session.engine
            assert engine is not None
            until(engine, all_acked(engine, journal), "the venue's acks")
        engine = session.engine
        assert engine is not None
        after(session, engine, journal)

    session.pacer = pace
    try:
        session.open()
        try:
            session.run()
        except Killed:
            return folder / "bot.sqlite"
        session.close("completed")
    finally:
        bot.broker.close()
        journal.close()
    return folder / "bot.sqlite"


def bot_broker(session: BotSession) -> CcxtBroker:
    """The bot's own ccxt broker (a step amends through it, as the engine would)."""
    broker = session.bot.broker
    assert isinstance(broker, CcxtBroker)
    return broker


@contextmanager
def coinless_spot_for_a_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[VenueHarness]:
    """The fake Binance spot account holding USDT only (its coin balance is what the bot
    bought), handed to a bot (``hand_to_a_bot``)."""
    with coinless_spot(tmp_path) as harness:
        hand_to_a_bot(harness, monkeypatch)
        yield harness


def hand_to_a_bot(harness: VenueHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a bot's own broker reach ``harness``'s venue: its credentials directory set for the
    bot, the harness's own broker closed (the bot brings its own)."""
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
    harness.broker.close()


# -- the journal ----------------------------------------------------------------------------


def status_updates(journal: Journal, cid: str) -> list[tuple[str, str]]:
    """Every (status, reason) the journal logged of ``cid`` (all runs), oldest first."""
    rows = journal.query(
        "SELECT status, reason FROM order_updates WHERE client_order_id = ? ORDER BY id", cid
    )
    return [(str(status), str(reason)) for status, reason in rows]


def statuses_of(journal: Journal, cid: str) -> list[str]:
    """Every status the journal logged of ``cid`` (all runs), oldest first."""
    return [status for status, _reason in status_updates(journal, cid)]


def all_acked(engine: Engine, journal: Journal) -> Callable[[], bool]:
    """Whether the venue's answer to each working order of the bot is journaled."""

    def acked(order: Order) -> bool:
        return any(status != "pending" for status in statuses_of(journal, order.client_order_id))

    return lambda: all(acked(order) for order in engine.open_orders())


def journal_fills(path: Path) -> list[tuple[str, str, float]]:
    """Every fill the journal at ``path`` booked (all runs), in time order: (client order id,
    fill id, quantity)."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT client_order_id, fill_id, quantity FROM fills ORDER BY ts, rowid"
        ).fetchall()
    finally:
        db.close()
    return [(str(c), str(f), float(q)) for c, f, q in rows]


# -- the venue (the fake Binance spot) ------------------------------------------------------


def part_fill(harness: VenueHarness, venue_cid: str, quantity: float, low: float) -> None:
    """The venue fills ``quantity`` more of its open buy ``venue_cid`` (resting at or above
    ``low``): the market dips to ``low``, the fill capped by the fake's ``Order.fill_cap``."""
    state = harness.fake.state
    with state.lock:
        [order] = [
            o
            for o in state.spot.orders.values()
            if o.client_order_id == venue_cid and o.account == harness.fake.api_key and o.is_open
        ]
        order.fill_cap = order.executed_qty + Decimal(str(quantity))
        top = Decimal(str(START_PRICE))
        state.spot.apply_candle(SYMBOL, Candle(state.spot.now, top, top, Decimal(str(low)), top))


def venue_orders(harness: VenueHarness, cid: str) -> VenueOrders:
    """The order's copies at the venue (``cid`` and each ``cid-a<n>``): client id -> (status,
    ordered, executed)."""
    with harness.fake.state.lock:
        return {
            o.client_order_id: (o.status, float(o.orig_qty), float(o.executed_qty))
            for o in harness.fake.orders("spot")
            if o.client_order_id.startswith(cid)
        }


def venue_trade_ids(harness: VenueHarness, cid: str) -> list[str]:
    """The ids of the venue's trades of every copy of the order, sorted."""
    with harness.fake.state.lock:
        return sorted(
            str(t.id)
            for o in harness.fake.orders("spot")
            if o.client_order_id.startswith(cid)
            for t in o.fills
        )


def btc(harness: VenueHarness) -> Decimal:
    """The account's whole coin balance (free and locked): on a coinless account, what the
    bot bought."""
    free, locked = base_balance(harness)
    return free + locked
