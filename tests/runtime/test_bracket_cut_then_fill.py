"""A bracket entry still working (a limit resting part-filled) whose children a smaller position
cut to nothing: the rest of the entry is cancelled and its bracket spent, so nothing it fills
runs without a stop.

A child's id is sent once: once the engine cancels a child cut to nothing, no later fill of its
entry can be protected under it. A limit buy 2.0 (SL 90, TP 120) fills 1.0; a plain sell of
1.0 flattens; the entry's other 1.0 must not open a long with no stop-loss. The engine cancels
the rest of the entry with the children, says so (``bracket_entry_cancelled``), and closes at
market a part that fills before the cancel lands (``bracket-spent``). A child cut only in part
keeps its entry working, grown by the entry's later fills less the cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.runtime.helpers import Scripted, bar
from tradefleet_runtime.brackets import BRACKET_SPENT_TAG, STOP_LOSS_TAG
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
)

SYMBOL = "TEST"


class PartFillingVenue:
    """A venue that fills market orders whole at the bar's open and a limit entry in parts,
    ``parts[k]`` on the k-th bar it can fill on (the limit's price reached). It places a
    bracket's children itself, as the venue brokers do; they rest untouched here.
    ``late_cancel``: a cancel of an entry does not land (the venue fills it first)."""

    def __init__(self, parts: Sequence[float], late_cancel: bool = False) -> None:
        self.parts = list(parts)
        self.late_cancel = late_cancel
        self.orders: dict[str, Order] = {}
        self.filled: dict[str, float] = {}
        self.cancels: list[str] = []
        self._n = 0

    def connect(self, ctx: BrokerContext) -> None:
        pass

    def instrument(self, symbol: str) -> Instrument:
        return Instrument(symbol)

    def submit(self, order: Order) -> OrderUpdate:
        self.orders[order.client_order_id] = order
        return OrderUpdate(order.client_order_id, OrderStatus.OPEN, order.created_ts)

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self.cancels.append(client_order_id)
        order = self.orders.get(client_order_id)
        if self.late_cancel and order is not None and order.stop_loss is not None:
            return None  # on its way; the entry fills first
        self.orders.pop(client_order_id, None)
        return OrderUpdate(client_order_id, OrderStatus.CANCELLED, 0, "cancelled")

    def on_bar(self, b: Bar) -> list[Fill | OrderUpdate]:
        events: list[Fill | OrderUpdate] = []
        for order_id, order in list(self.orders.items()):
            if order.created_ts > b.ts or order.parent_id is not None:
                continue
            if order.order_type is OrderType.MARKET:
                quantity = order.quantity
            elif order.price is not None and b.low <= order.price and self.parts:
                quantity = self.parts.pop(0)
            else:
                continue
            self.filled[order_id] = self.filled.get(order_id, 0.0) + quantity
            self._n += 1
            price = b.open if order.order_type is OrderType.MARKET else (order.price or b.open)
            events.append(
                Fill(order_id, b.symbol, order.side, quantity, price, 0.0, b.ts, f"f{self._n}")
            )
            if self.filled[order_id] >= order.quantity - 1e-12:
                del self.orders[order_id]
        return events

    def open_orders(self) -> list[Order]:
        return list(self.orders.values())

    def positions(self) -> dict[str, Position]:
        return {}

    def balance(self) -> float:
        return 10_000.0

    def close(self) -> None:
        pass


def _run(venue: PartFillingVenue, sold: float) -> tuple[Engine, Journal, str]:
    """Limit buy 2.0 with SL/TP at bar 0; ``sold`` sold at market at bar 1, after the entry's
    first part filled; the entry can fill again at bar 3. Returns the engine, its journal and
    the entry's id."""
    journal = Journal(":memory:")
    journal.start_run(
        run_id="cut",
        bot="bot",
        mode="backtest",
        currency="USD",
        initial_capital=10_000.0,
        timeframe_s=3600,
        config_hash="x",
        manifest={},
    )
    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy(
                SYMBOL,
                2.0,
                order_type=OrderType.LIMIT,
                price=100.0,
                stop_loss=90.0,
                take_profit=120.0,
            ),
            1: lambda ctx, b: ctx.sell(SYMBOL, sold),
        }
    )
    config = EngineConfig("bot", "backtest", (SYMBOL,), 3600, 10_000.0)
    engine = Engine(config, strategy, venue, journal)
    engine.run(
        [
            bar(0, 101, 101, 101, 101),
            bar(1, 101, 101, 99, 100),  # the entry fills 1.0; the strategy sells
            bar(2, 101, 101, 101, 101),  # the sell fills: the children are cut
            bar(3, 101, 101, 99, 100),  # the entry could fill its other 1.0
            bar(4, 101, 101, 101, 101),
        ]
    )
    ((entry,),) = journal.query("SELECT client_order_id FROM orders WHERE stop_loss IS NOT NULL")
    return engine, journal, entry


def _stops(engine: Engine) -> list[float]:
    return [
        w.order.quantity - w.filled
        for w in engine.book
        if w.order.parent_id is not None and w.order.tag == STOP_LOSS_TAG
    ]


def test_an_entry_whose_children_were_cut_to_nothing_is_cancelled_with_them() -> None:
    venue = PartFillingVenue([1.0, 1.0])
    engine, journal, entry = _run(venue, 1.0)
    held = engine.position(SYMBOL).quantity
    assert sum(_stops(engine)) == held, f"a long of {held:g} with stop-loss children"
    assert held == 0.0  # the entry's rest never filled: it was cancelled
    assert entry in venue.cancels and entry not in venue.orders
    status = journal.query(
        "SELECT status FROM order_status WHERE client_order_id = ? ORDER BY rowid", entry
    )
    assert status[-1] == ("cancelled",)
    (said,) = journal.query("SELECT message FROM events WHERE kind = 'bracket_entry_cancelled'")
    assert entry in said[0] and f"{entry}-sl" in said[0], said


def test_a_part_that_fills_before_the_entrys_cancel_lands_is_closed_at_market() -> None:
    venue = PartFillingVenue([1.0, 1.0], late_cancel=True)
    engine, journal, _entry = _run(venue, 1.0)
    assert engine.position(SYMBOL).quantity == 0.0
    closes = journal.query("SELECT side, quantity FROM orders WHERE tag = ?", BRACKET_SPENT_TAG)
    assert closes == [("sell", 1.0)], closes
    assert _stops(engine) == []


def test_a_child_cut_in_part_keeps_its_entry_working_and_grows_less_the_cut() -> None:
    venue = PartFillingVenue([1.0, 1.0])
    engine, journal, entry = _run(venue, 0.5)
    held = engine.position(SYMBOL).quantity
    assert held == 1.5  # the entry filled its other 1.0
    assert _stops(engine) == [1.5]
    assert entry not in venue.cancels
    assert journal.query("SELECT 1 FROM events WHERE kind = 'bracket_entry_cancelled'") == []
