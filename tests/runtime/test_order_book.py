"""The engine's book of working orders: a bracket's children come with its entry's first fill.

Sized on what filled and grown with each fill, as the venues' brokers place them (the ccxt
broker amends them as the entry fills; the paper broker and MT5 fill an entry at once): what
the status and the risk plugins see is what protects the position, and no filled part of a
resting entry waits for the rest without its stop. The broker contract suite
(``tests/brokers/contract``) checks the same at the fake venues.
"""

from __future__ import annotations

from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.model import Fill, Order, OrderStatus, OrderType, Side

ENTRY = Order(
    "tfentry0", "BTC/USDT", Side.BUY, 1.0, OrderType.LIMIT, 100.0, 95.0, 110.0, created_ts=1
)


def _fill(quantity: float, n: int, order_id: str = ENTRY.client_order_id) -> Fill:
    return Fill(order_id, ENTRY.symbol, Side.BUY, quantity, 100.0, 0.0, 10 + n, f"f{n}")


def _sizes(book: OrderBook) -> dict[str, float]:
    return {o.client_order_id: o.quantity for o in book.orders() if o.parent_id is not None}


def test_children_come_with_the_first_fill_and_grow_with_each() -> None:
    book = OrderBook()
    book.add(ENTRY)
    status, order, placed, resized = book.on_fill(_fill(0.3, 1))
    assert (status, order, resized) == (OrderStatus.PARTIALLY_FILLED, ENTRY, ())
    assert [(c.client_order_id, c.quantity, c.created_ts, c.side) for c in placed] == [
        ("tfentry0-sl", 0.3, 11, Side.SELL),
        ("tfentry0-tp", 0.3, 11, Side.SELL),
    ]
    assert _sizes(book) == {"tfentry0-sl": 0.3, "tfentry0-tp": 0.3}
    before = book.version
    status, _, placed, resized = book.on_fill(_fill(0.7, 2))
    assert status is OrderStatus.FILLED and placed == ()
    assert [(c.client_order_id, c.quantity, before) for c, before in resized] == [
        ("tfentry0-sl", 1.0, 0.3),
        ("tfentry0-tp", 1.0, 0.3),
    ]
    assert book.version > before  # the risk plugins' copy of the stops is taken again
    assert _sizes(book) == {"tfentry0-sl": 1.0, "tfentry0-tp": 1.0}
    assert book.get(ENTRY.client_order_id) is None


def test_an_entry_cancelled_after_a_part_filled_keeps_that_parts_children() -> None:
    book = OrderBook()
    book.add(ENTRY)
    book.on_fill(_fill(0.25, 1))
    assert book.end(ENTRY.client_order_id, None, 20) == ((), ())
    assert _sizes(book) == {"tfentry0-sl": 0.25, "tfentry0-tp": 0.25}
    assert book.get(ENTRY.client_order_id) is None


def test_a_venue_that_says_filled_before_the_last_fill_arrives_sizes_on_its_word() -> None:
    book = OrderBook()
    book.add(ENTRY)
    book.on_fill(_fill(0.4, 1))
    placed, resized = book.end(ENTRY.client_order_id, 1.0, 20)
    assert placed == () and [(r.order.quantity, r.previous) for r in resized] == [(1.0, 0.4)] * 2
    # The last fill then finds no working entry: no second bracket.
    assert book.on_fill(_fill(0.6, 2))[2:] == ((), ())


def test_a_child_that_filled_is_not_made_again_by_the_entrys_next_fill() -> None:
    """Its id was sent once: the stop of the first part filled, the entry's later fills
    find it gone (a second stop under the same id would be a second order)."""
    book = OrderBook()
    book.add(ENTRY)
    book.on_fill(_fill(0.4, 1))
    assert book.on_fill(_fill(0.4, 2, "tfentry0-sl")).status is OrderStatus.FILLED
    book.remove("tfentry0-tp")  # its sibling's fill cancelled it
    assert book.on_fill(_fill(0.6, 3))[2:] == ((), ())
    assert _sizes(book) == {}


def test_an_entry_that_ended_unfilled_has_no_children() -> None:
    book = OrderBook()
    book.add(ENTRY)
    assert book.end(ENTRY.client_order_id, None, 20) == ((), ())
    assert book.end("unknown", 1.0, 20) == ((), ())
    assert len(book) == 0


def test_a_first_part_below_the_venues_minimum_waits_for_more_of_its_entry() -> None:
    """The venue would refuse a stop that small (and the bot would read the refusal as a
    position without its stop): the children come when enough of the entry filled — or at its
    end, whatever it executed."""
    book = OrderBook()
    book.add(ENTRY)

    def big_enough(child: Order) -> bool:
        return child.quantity >= 0.5

    assert book.on_fill(_fill(0.1, 1), big_enough)[2:] == ((), ())
    assert _sizes(book) == {}
    placed = book.on_fill(_fill(0.5, 2), big_enough).placed
    assert [c.quantity for c in placed] == [0.6, 0.6]
    # An entry cancelled with only a small part filled: its children are made all the same.
    book.add(ENTRY._replace(client_order_id="tfentry1"))
    book.on_fill(_fill(0.1, 3, "tfentry1"), big_enough)
    placed, _ = book.end("tfentry1", None, 20)
    assert [c.quantity for c in placed] == [0.1, 0.1]


def test_a_child_that_filled_ends_the_bracket_one_cancelled_does_not() -> None:
    """A stop or target that filled ends the bracket's trade: the entry's later fills grow
    nothing (the engine closes them, ``bracket-spent``). One a person cancelled is not made
    again, but its sibling still grows with the entry."""
    book = OrderBook()
    book.add(ENTRY)
    book.on_fill(_fill(0.4, 1))
    book.on_fill(_fill(0.1, 2, "tfentry0-tp"))  # part of the target filled
    assert book.bracket_spent(ENTRY)
    assert book.on_fill(_fill(0.6, 3))[2:] == ((), ())
    assert _sizes(book) == {"tfentry0-sl": 0.4, "tfentry0-tp": 0.4}

    other = ENTRY._replace(client_order_id="tfentry1")
    book.add(other)
    book.on_fill(_fill(0.4, 4, "tfentry1"))
    book.remove("tfentry1-tp")  # cancelled by a person
    assert not book.bracket_spent(other)
    resized = book.on_fill(_fill(0.6, 5, "tfentry1")).resized
    assert [(r.order.client_order_id, r.order.quantity) for r in resized] == [("tfentry1-sl", 1.0)]
