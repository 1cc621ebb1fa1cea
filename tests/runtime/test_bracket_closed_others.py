"""A bracket entry's fill that closed other entries' own venue positions (an MT5 hedging
reversal's first deal, ``TicketBrackets.entries_reduced``) opened none of the entry's own
position: its children are sized on the fills that did, not on all that filled."""

from __future__ import annotations

from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.model import Fill, Order, OrderStatus, OrderType, Side


def _entry() -> Order:
    return Order(
        client_order_id="flip",
        symbol="EURUSD",
        side=Side.SELL,
        quantity=20_000.0,
        order_type=OrderType.MARKET,
        stop_loss=1.105,
        take_profit=1.09,
        created_ts=0,
    )


def _fill(quantity: float, fill_id: str) -> Fill:
    return Fill("flip", "EURUSD", Side.SELL, quantity, 1.1, 0.0, 1, fill_id)


def test_a_fill_that_closed_other_tickets_makes_no_children() -> None:
    book = OrderBook()
    book.add(_entry())
    booked = book.on_fill(_fill(10_000.0, "d1"), opened=False)
    assert booked.status is OrderStatus.PARTIALLY_FILLED
    assert (booked.placed, booked.resized) == ((), ())
    booked = book.on_fill(_fill(10_000.0, "d2"))
    assert booked.status is OrderStatus.FILLED
    assert [(c.client_order_id, c.quantity) for c in booked.placed] == [
        ("flip-sl", 10_000.0),
        ("flip-tp", 10_000.0),
    ]


def test_an_entry_ended_after_closing_others_only_makes_no_children() -> None:
    book = OrderBook()
    book.add(_entry())
    book.on_fill(_fill(10_000.0, "d1"), opened=False)
    assert book.end("flip", 10_000.0, 2) == ((), ())
    assert book.orders() == []  # no child works for a position the entry never opened


def test_fills_that_opened_size_the_children_as_before() -> None:
    book = OrderBook()
    book.add(_entry())
    booked = book.on_fill(_fill(20_000.0, "d1"))
    assert [c.quantity for c in booked.placed] == [20_000.0, 20_000.0]
