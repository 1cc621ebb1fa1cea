"""The account snapshot (``RiskContext``) the risk chain decides an intent on.

Risk plugins must see a snapshot that never changes under them, and the portfolio changes its
positions in place, so positions are handed over as copies; so are the protective stops, which
take a pass over the working orders. Both copies are taken again only when a fill or a working
order changed them (``Portfolio.version``, ``OrderBook.version``): the intents between two such
changes — every intent of a bar without fills — share one copy, and only what moves with each
bar (equity, marks, the bar time) is read afresh. Plugins read the snapshot; none may change it.

The working entry orders (``RiskContext.entries``) are copied with the stops: an entry the chain
let through earlier in the same bar is in the book, so the next intent's rules count it.
"""

from __future__ import annotations

from collections.abc import Callable

from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.model import Instrument, Order, OrderType, Position, Side

Stops = dict[str, tuple[tuple[float, float], ...]]
_new = tuple.__new__  # a named tuple built positionally, without its generated __new__
_STOP = OrderType.STOP  # a module name: an enum member read through its class costs ~0.3 µs


def protective_stops(portfolio: Portfolio, book: OrderBook) -> Stops:
    """(quantity left, stop price) of every reduce-only stop on the closing side of an open
    position, by symbol, in the order the book holds them."""
    stops: Stops = {}
    held = portfolio.open_positions
    for working in book:
        order = working.order
        if order.reduce_only and order.order_type is _STOP and order.price:
            position = held.get(order.symbol)
            # Only a stop on the closing side protects (a long's sell stop, a short's buy
            # stop); one left from before a reversal would not reduce anything.
            if position is None or position.quantity * order.side.sign >= 0:
                continue
            left = order.quantity - working.filled
            stops[order.symbol] = (*stops.get(order.symbol, ()), (left, order.price))
    return stops


def working_entries(book: OrderBook) -> tuple[Order, ...]:
    """Every working order that is not reduce-only (an entry, or an order adding to or
    reversing a position), with the quantity it has still to fill, in the book's order."""
    entries: list[Order] = []
    for working in book:
        order = working.order
        if order.reduce_only:
            continue
        left = order.quantity - working.filled
        if left > 0.0:
            entries.append(order if not working.filled else order._replace(quantity=left))
    return tuple(entries)


def reducible(portfolio: Portfolio, book: OrderBook, symbol: str, side: Side) -> float:
    """How much of ``symbol``'s position an order on ``side`` may still close: the quantity
    held on the other side, less what the working reduce-only orders on ``side`` that are not
    a bracket's children will close (a bracket's stop and take-profit guard the position, one
    of them at most fills, and a position closed otherwise takes them with it; an exit already
    sent is what closes it). 0 when ``side`` would open or add."""
    position = portfolio.open_positions.get(symbol)
    if position is None:
        return 0.0
    held = -position.quantity * side.sign
    if held <= 0.0:
        return 0.0
    for working in book:
        order = working.order
        if (
            order.reduce_only
            and order.parent_id is None
            and order.symbol == symbol
            and order.side is side
        ):
            held -= order.quantity - working.filled
    return held if held > 0.0 else 0.0


class RiskSnapshots:
    """Builds each intent's :class:`RiskContext`, copying positions and stops only when they
    changed since the last copy."""

    __slots__ = (
        "_book",
        "_entries",
        "_initial",
        "_instrument",
        "_portfolio",
        "_positions",
        "_positions_at",
        "_stops",
        "_stops_at",
    )

    def __init__(
        self,
        portfolio: Portfolio,
        book: OrderBook,
        instrument: Callable[[str], Instrument],
        initial_equity: float,
    ) -> None:
        self._portfolio = portfolio
        self._book = book
        self._instrument = instrument
        self._initial = initial_equity
        self._positions: dict[str, Position] = {}
        self._positions_at = -1
        self._stops: Stops = {}
        self._entries: tuple[Order, ...] = ()
        self._stops_at = (-1, -1)

    def context(
        self, symbol: str, now: int, start_of_day_equity: float, peak_equity: float
    ) -> RiskContext:
        portfolio = self._portfolio
        version = portfolio.version
        if version != self._positions_at:
            self._positions = {
                s: Position(s, p.quantity, p.average_price, p.realized_pnl, p.opened_ts)
                for s, p in portfolio.open_positions.items()
            }
            self._positions_at = version
        at = (version, self._book.version)
        if at != self._stops_at:
            self._stops = protective_stops(portfolio, self._book)
            self._entries = working_entries(self._book)
            self._stops_at = at
        context: RiskContext = _new(
            RiskContext,
            (
                now,
                portfolio.equity(),
                portfolio.cash,
                start_of_day_equity,
                peak_equity,
                self._positions,
                dict(portfolio.marks),
                self._instrument(symbol),
                self._stops,
                portfolio.leverage,
                self._initial,
                self._entries,
            ),
        )
        return context


__all__ = ["RiskSnapshots", "protective_stops", "reducible", "working_entries"]
