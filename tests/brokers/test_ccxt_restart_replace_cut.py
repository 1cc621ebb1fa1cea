"""A replacement the bot died before cutting is cut by the restart, before the bot trades.

Binance spot amends by cancel-replace: the replacement ``<id>-a1`` is sized on what the broker
last read of the order (0.004 of a limit buy of 0.01: 0.006 left). When the old copy fills
more between that read and the venue's cancel (0.002), the broker cuts the replacement to what
is left (``<id>-a2``, or cancels it when nothing is): ``_resize_after_race``. A bot that died
after the cancel-replace but before that cut left 0.006 working for 0.004 left; the restarted
broker adopted the copies as one order of 0.012 (what they executed + the replacement), and
the account could buy 0.012 for an order of 0.01.

Now the restart, adopting the copies as one order, sees that what they executed and the
replacement's rest exceed the order's whole quantity (its first copy's 0.01), says so naming
both, and cuts the replacement (or cancels it when nothing is left) before the bot's first
bar; each fill reaches the bot once and the coin balance is what the bot booked.

Against the fake Binance spot with the real ccxt, through a real ``BotSession`` restart, on
an account holding USDT only (its coin balance is what the bot bought).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
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
from tradefleet_plugins.brokers.ccxt_orders import copies_whole_quantity
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.reconcile import ReconcilePlan
from tradefleet_runtime.sdk import Bar, Order, OrderType, Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

LIMIT, MOVED = 49_000.0, 49_500.0
QUANTITY, READ, RACED = 0.01, 0.004, 0.002  # the order; filled as last read; filled unread
REPLACE_PATH = "/api/v3/order/cancelReplace"
HOUR = 3600

Venue = dict[str, tuple[str, float, float]]  # client id -> (status, ordered, executed)


class _Killed(BaseException):
    """The process dies (SIGKILL) between the cancel-replace and the replacement's cut."""


# -- the venue ------------------------------------------------------------------------------


def _part_fill(harness: VenueHarness, venue_cid: str, quantity: float, low: float) -> None:
    """The venue fills ``quantity`` more of its open buy ``venue_cid`` (resting at or above
    ``low``), capped by the fake's ``Order.fill_cap``."""
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


def _venue_orders(harness: VenueHarness, cid: str) -> Venue:
    with harness.fake.state.lock:
        return {
            o.client_order_id: (o.status, float(o.orig_qty), float(o.executed_qty))
            for o in harness.fake.orders("spot")
            if o.client_order_id.startswith(cid)
        }


def _venue_trade_ids(harness: VenueHarness, cid: str) -> list[str]:
    with harness.fake.state.lock:
        return sorted(
            str(t.id)
            for o in harness.fake.orders("spot")
            if o.client_order_id.startswith(cid)
            for t in o.fills
        )


def _executed(harness: VenueHarness, cid: str) -> Decimal:
    """What every copy of the order executed at the venue: what the account bought."""
    with harness.fake.state.lock:
        return sum(
            (
                o.executed_qty
                for o in harness.fake.orders("spot")
                if o.client_order_id.startswith(cid)
            ),
            Decimal(0),
        )


def _btc(harness: VenueHarness) -> Decimal:
    free, locked = base_balance(harness)
    return free + locked


def _replaces(harness: VenueHarness) -> int:
    return sum(1 for r in list(harness.fake.requests) if r.path == REPLACE_PATH)


# -- the bot --------------------------------------------------------------------------------


@dataclass
class _Entry(Strategy):
    """A limit buy of ``QUANTITY`` at ``LIMIT`` at the bar of time ``at``; ``look`` is called
    at every bar (what the venue holds when the bot first trades after the restart)."""

    at: int = 0
    look: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        super().__init__(None)

    def on_bar(self, bar: Bar) -> None:
        if self.look is not None:
            self.look()
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


def _statuses_of(journal: Journal, cid: str) -> list[str]:
    rows = journal.query(
        "SELECT status FROM order_updates WHERE client_order_id = ? ORDER BY id", cid
    )
    return [str(status) for (status,) in rows]


Step = Callable[[BotSession, Engine, Journal], None]


def _life(
    folder: Path, harness: VenueHarness, bars: list[Bar], after: Step, look: Callable[[], None]
) -> Path:
    manifest = live_ccxt_manifest(
        folder, harness, exchange="binance", market_type="spot", initial=50000
    )
    bot = assemble(load_manifest(manifest), PluginRegistry.discover(), folder)
    assert isinstance(bot.broker, CcxtBroker)
    bot.strategy = _Entry(at=bars[0].ts, look=look)
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
            return folder / "bot.sqlite"
        session.close("completed")
    finally:
        bot.broker.close()
        journal.close()
    return folder / "bot.sqlite"


def _all_acked(engine: Engine, journal: Journal) -> Callable[[], bool]:
    """Whether the venue's answer to each working order of the bot is journaled."""

    def acked(order: Order) -> bool:
        return any(s != "pending" for s in _statuses_of(journal, order.client_order_id))

    return lambda: all(acked(order) for order in engine.open_orders())


def _bars() -> list[Bar]:
    start = (int(time.time()) // HOUR - 6) * HOUR
    return [
        Bar(SYMBOL, HOUR, start + i * HOUR, START_PRICE, START_PRICE, START_PRICE, START_PRICE, 1)
        for i in range(3)
    ]


def _raced_and_died(harness: VenueHarness, cid_out: list[str], would_cut: threading.Event) -> Step:
    """The first life's end: the bot's buy filled ``READ``, booked; moved to ``MOVED`` while
    the old copy fills ``RACED`` more before the venue takes the cancel-replace (the
    replacement asks for 0.006, 0.004 being left); the broker sees the race and would cut the
    replacement (``would_cut``) — and the process dies before it does."""

    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        [order] = engine.open_orders()
        cid = order.client_order_id
        cid_out.append(cid)
        _part_fill(harness, cid, READ, LIMIT)
        _until(engine, lambda: engine.position(SYMBOL).quantity > 0.0, "the first fill")
        broker = session.bot.broker
        assert isinstance(broker, CcxtBroker)
        harness.fake.faults.inject("latency", path=REPLACE_PATH, method="POST", delay_ms=800)
        sent = _replaces(harness)
        broker.amend(cid, None, MOVED)
        deadline = time.monotonic() + 5.0
        while _replaces(harness) == sent:
            assert time.monotonic() < deadline, "the cancel-replace never left"
            time.sleep(0.01)
        _part_fill(harness, cid, RACED, LIMIT)  # at the venue, before its cancel
        assert would_cut.wait(10.0), "the broker did not see the race"
        harness.fake.faults.clear()
        raise _Killed

    return step


@dataclass
class _Second:
    plan: ReconcilePlan | None = None
    at_first_bar: Venue | None = None
    position_at_end: float = 0.0
    finals: list[str] = field(default_factory=list)


def _restarted(harness: VenueHarness, cid: str, second: _Second, fill_rest: bool) -> Step:
    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        second.plan = session.reconciliation
        if fill_rest:
            harness.trade_through(MOVED - 100)
        _until(engine, lambda: not engine.open_orders(), "the order's end")
        time.sleep(0.3)  # later polls: nothing more may come
        engine.pump()
        second.position_at_end = engine.position(SYMBOL).quantity
        second.finals = _statuses_of(journal, cid)

    return step


def _journal_fills(path: Path) -> list[tuple[str, str, float]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT client_order_id, fill_id, quantity FROM fills").fetchall()
    finally:
        db.close()
    return [(str(c), str(f), float(q)) for c, f, q in rows]


def _first_life(
    tmp_path: Path, harness: VenueHarness, bars: list[Bar], monkeypatch: pytest.MonkeyPatch
) -> str:
    """Run the first life to its death; the bot's order id."""
    would_cut = threading.Event()
    cids: list[str] = []
    with monkeypatch.context() as patch:
        # The process stops where the cut would be sent: nothing of it reaches the venue.
        patch.setattr(
            CcxtBroker, "_resize_after_race", lambda _self, _tracked, _executed: would_cut.set()
        )
        _life(tmp_path, harness, bars[:1], _raced_and_died(harness, cids, would_cut), lambda: None)
    [cid] = cids
    assert _venue_orders(harness, cid) == {
        cid: ("CANCELED", QUANTITY, READ + RACED),
        f"{cid}-a1": ("NEW", QUANTITY - READ, 0.0),
    }
    return cid


def _assert_books_what_the_account_bought(
    harness: VenueHarness, cid: str, path: Path, end: float
) -> None:
    fills = _journal_fills(path)
    assert {c for c, _f, _q in fills} == {cid}
    assert sorted(f for _c, f, _q in fills) == _venue_trade_ids(harness, cid)  # once each
    assert _executed(harness, cid) == Decimal(str(QUANTITY))  # not 0.012
    assert float(_btc(harness)) == pytest.approx(sum(q for _c, _f, q in fills), abs=1e-12)
    assert end == pytest.approx(float(_btc(harness)), abs=1e-12)


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with coinless_spot(tmp_path) as harness:
        monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
        harness.broker.close()  # the harness's own broker: the bot brings its own
        yield harness


def test_a_restart_cuts_a_replacement_left_for_more_than_is_left(
    harness: VenueHarness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The copies executed 0.006 and the replacement works 0.006 of an order of 0.01: the
    restart cuts it to ``-a2`` for 0.004 before the bot's first bar, with a warning naming
    both; the bot works its order of 0.01 and, the market through its price, bought 0.01."""
    bars = _bars()
    cid = _first_life(tmp_path, harness, bars, monkeypatch)

    second = _Second()

    def look() -> None:
        if second.at_first_bar is None:
            second.at_first_bar = _venue_orders(harness, cid)

    with caplog.at_level(logging.WARNING, logger="tradefleet"):
        path = _life(tmp_path, harness, bars, _restarted(harness, cid, second, True), look)
    assert second.at_first_bar == {
        cid: ("CANCELED", QUANTITY, READ + RACED),
        f"{cid}-a1": ("CANCELED", QUANTITY - READ, 0.0),
        f"{cid}-a2": ("NEW", pytest.approx(QUANTITY - READ - RACED), 0.0),
    }
    plan = second.plan
    assert plan is not None and not plan.degraded
    [adopted] = plan.adopted
    assert adopted.client_order_id == cid
    assert (adopted.quantity, adopted.filled_quantity) == pytest.approx((QUANTITY, READ + RACED))
    [said] = [r.getMessage() for r in caplog.records if "exceed" in r.getMessage()]
    assert cid in said and "0.012" in said and "0.01" in said and "0.004" in said
    assert second.finals[-1] == "filled"
    _assert_books_what_the_account_bought(harness, cid, path, second.position_at_end)


def test_a_restart_cancels_a_replacement_when_nothing_is_left(
    harness: VenueHarness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the bot was down the replacement filled 0.004 of its 0.006: with the copies'
    0.006 the order's 0.01 is bought. The restart cancels the replacement's 0.002 before the
    bot's first bar; the bot's order ends, having bought 0.01."""
    bars = _bars()
    cid = _first_life(tmp_path, harness, bars, monkeypatch)
    _part_fill(harness, f"{cid}-a1", QUANTITY - READ - RACED, MOVED)

    second = _Second()

    def look() -> None:
        if second.at_first_bar is None:
            second.at_first_bar = _venue_orders(harness, cid)

    with caplog.at_level(logging.WARNING, logger="tradefleet"):
        path = _life(tmp_path, harness, bars, _restarted(harness, cid, second, False), look)
    assert second.at_first_bar is not None
    status, ordered, executed = second.at_first_bar[f"{cid}-a1"]
    assert status == "CANCELED"
    assert (ordered, executed) == pytest.approx((QUANTITY - READ, QUANTITY - READ - RACED))
    assert set(second.at_first_bar) == {cid, f"{cid}-a1"}
    [said] = [r.getMessage() for r in caplog.records if "exceed" in r.getMessage()]
    assert cid in said and "cancelled" in said
    assert second.finals[-1] == "cancelled"
    plan = second.plan  # cancelled at connect, before the reconciliation read it
    assert plan is not None and not plan.degraded and plan.adopted == ()
    [(closed, report)] = plan.closed
    assert closed == cid
    assert (report.quantity, report.filled_quantity) == pytest.approx((QUANTITY, QUANTITY))
    _assert_books_what_the_account_bought(harness, cid, path, second.position_at_end)


@pytest.mark.parametrize(
    ("copies", "whole"),
    [
        ([(1.0, 0.4)], 1.0),  # one copy before the newest: its own quantity
        ([(1.0, 0.6), (0.6, 0.0)], 1.0),  # a raced copy (sized on 0.4) does not raise it
        ([(1.0, 0.4), (0.4, 0.1)], 0.8),  # moved down to 0.8 once: 0.4 + 0.4
        ([(1.0, 0.0), (1.0, 0.0)], 1.0),
    ],
)
def test_copies_whole_quantity_is_the_least_the_earlier_copies_show(
    copies: list[tuple[float, float]], whole: float
) -> None:
    assert copies_whole_quantity(copies) == pytest.approx(whole)
