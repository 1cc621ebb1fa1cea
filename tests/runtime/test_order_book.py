"""The engine's book of working orders makes a bracket's children when its entry is done.

Sized on all the entry executed, as the venues' brokers place them (the ccxt broker when the
entry is final): a partly filled entry has no child at the venue, so none is in the book (the
status and risk plugins would otherwise see a stop that does not exist, sized on the first
part). ``tests/e2e/test_live_ccxt_faults.py`` checks the same against the fake Binance.
"""

from __future__ import annotations

from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.model import Fill, Order, OrderStatus, OrderType, Side

ENTRY = Order(
    "tfentry0", "BTC/USDT", Side.BUY, 1.0, OrderType.LIMIT, 100.0, 95.0, 110.0, created_ts=1
)


def _fill(quantity: float, n: int) -> Fill:
    return Fill(
        ENTRY.client_order_id, ENTRY.symbol, Side.BUY, quantity, 100.0, 0.0, 10 + n, f"f{n}"
    )


def test_children_come_when_the_entry_is_filled_sized_on_all_of_it() -> None:
    book = OrderBook()
    book.add(ENTRY)
    status, order, children = book.on_fill(_fill(0.3, 1))
    assert (status, order, children) == (OrderStatus.PARTIALLY_FILLED, ENTRY, ())
    assert [o.client_order_id for o in book.orders()] == ["tfentry0"]
    status, _, children = book.on_fill(_fill(0.7, 2))
    assert status is OrderStatus.FILLED
    assert [(c.client_order_id, c.quantity, c.created_ts) for c in children] == [
        ("tfentry0-sl", 1.0, 12),
        ("tfentry0-tp", 1.0, 12),
    ]
    assert {o.client_order_id for o in book.orders()} == {"tfentry0-sl", "tfentry0-tp"}


def test_an_entry_cancelled_after_a_part_filled_protects_that_part() -> None:
    book = OrderBook()
    book.add(ENTRY)
    book.on_fill(_fill(0.25, 1))
    children = book.end(ENTRY.client_order_id, None, 20)
    assert [(c.quantity, c.reduce_only, c.side) for c in children] == [(0.25, True, Side.SELL)] * 2
    assert book.get(ENTRY.client_order_id) is None


def test_a_venue_that_says_filled_before_the_last_fill_arrives_sizes_on_its_word() -> None:
    book = OrderBook()
    book.add(ENTRY)
    book.on_fill(_fill(0.4, 1))
    children = book.end(ENTRY.client_order_id, 1.0, 20)
    assert [c.quantity for c in children] == [1.0, 1.0]
    # The last fill then finds no working entry: no second bracket.
    assert book.on_fill(_fill(0.6, 2))[2] == ()


def test_an_entry_that_ended_unfilled_has_no_children() -> None:
    book = OrderBook()
    book.add(ENTRY)
    assert book.end(ENTRY.client_order_id, None, 20) == ()
    assert book.end("unknown", 1.0, 20) == ()
    assert len(book) == 0
