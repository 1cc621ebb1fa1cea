"""The bot's working orders as the engine knows them, and the brackets of filled entries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.model import Fill, Order, OrderStatus

_QTY_EPSILON = 1e-12


@dataclass
class WorkingOrder:
    order: Order
    filled: float = 0.0


class Resized(NamedTuple):
    """A working bracket child whose quantity grew with its entry's fills."""

    order: Order  # as it works now
    previous: float  # the quantity it had


# (children added to the book, children whose quantity grew)
BookedChildren = tuple[tuple[Order, ...], tuple[Resized, ...]]


class BookedFill(NamedTuple):
    """What a fill did to the book: its order's status, the order (None: not in the book),
    and the bracket children it placed or resized."""

    status: OrderStatus
    order: Order | None
    placed: tuple[Order, ...]
    resized: tuple[Resized, ...]


class OrderBook:
    """Orders sent and not yet final, by client order id (insertion order kept)."""

    def __init__(self) -> None:
        self._working: dict[str, WorkingOrder] = {}
        # Bracket children that left the book while their entry still worked: a later fill of
        # the entry does not make them again (their ids were sent once). Only then: a child
        # of an entry done is never made again anyway, so a backtest's brackets add nothing.
        self._ended: set[str] = set()
        # Bracket entries one of whose children filled while they still worked: their trade
        # is over.
        self._spent: set[str] = set()
        # Bumped by every change (an order added, removed or filled): what a copy of the
        # protective stops was taken at (risk_snapshot.py).
        self.version = 0

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._working

    def __len__(self) -> int:
        return len(self._working)

    def __iter__(self) -> Iterator[WorkingOrder]:
        return iter(list(self._working.values()))

    def get(self, client_order_id: str) -> WorkingOrder | None:
        return self._working.get(client_order_id)

    def add(self, order: Order, filled: float = 0.0) -> None:
        self.version += 1
        self._working[order.client_order_id] = WorkingOrder(order, filled)

    def remove(self, client_order_id: str) -> WorkingOrder | None:
        self.version += 1
        working = self._working.pop(client_order_id, None)
        if working is not None and working.order.parent_id in self._working:
            self._ended.add(client_order_id)
        return working

    def reprice(self, client_order_id: str, price: float) -> Order | None:
        """A working order's price changed at the venue (a stop-loss moved): the order as it
        works now, or None when it is not in the book."""
        working = self._working.get(client_order_id)
        if working is None:
            return None
        self.version += 1  # the protective stops risk plugins read changed
        working.order = working.order._replace(price=price)
        return working.order

    def orders(self, symbol: str | None = None) -> list[Order]:
        return [
            w.order for w in self._working.values() if symbol is None or w.order.symbol == symbol
        ]

    def on_fill(self, fill: Fill, placeable: Callable[[Order], bool] | None = None) -> BookedFill:
        """Book a fill against its order: its status now, the order, and its bracket's
        children placed or resized by this fill.

        A bracket's children come with its entry's first fill, sized on what filled, and grow
        with each fill — as the venues' brokers place them (the ccxt broker amends them as
        the entry fills; the paper broker and MT5 fill an entry at once): what the status and
        the risk plugins see is what protects the position, and no filled part waits for the
        rest of a resting entry without its stop. ``placeable`` says whether the venue would
        take a child (its minimums): one sized on a part below them waits for more of its
        entry, as the broker's does; when the entry is done it is placed (and refused there).
        """
        working = self._working.get(fill.client_order_id)
        if working is None:
            return BookedFill(OrderStatus.FILLED, None, (), ())
        order = working.order
        self.version += 1
        working.filled += fill.quantity
        if order.parent_id in self._working:
            self._spent.add(order.parent_id)
        done = working.filled + _QTY_EPSILON * max(order.quantity, 1.0) >= order.quantity
        if done:
            self.remove(fill.client_order_id)
        placed, resized = self.protect(order, working.filled, fill.ts, None if done else placeable)
        status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        return BookedFill(status, order, placed, resized)

    def end(self, client_order_id: str, filled: float | None, ts: int) -> BookedChildren:
        """An order ended by the venue's word (cancelled or expired after part of it filled,
        rejected, or reported filled before its last fill arrived): out of the book. Its
        bracket's children, placed or resized to what it executed (the most the venue or its
        fills say), when it executed any."""
        working = self.remove(client_order_id)
        if working is None:
            return (), ()
        done = max(working.filled, filled or 0.0)
        return self.protect(working.order, done, ts) if done > 0.0 else ((), ())

    def bracket_spent(self, order: Order) -> bool:
        """Whether a child of ``order``'s bracket has filled: its trade is over."""
        return order.client_order_id in self._spent

    def protect(
        self,
        order: Order,
        filled: float,
        ts: int,
        placeable: Callable[[Order], bool] | None = None,
    ) -> BookedChildren:
        """The children of ``order`` (built by ``bracket_children``, the one place brackets
        are made) covering ``filled``: (those added to the book, those whose quantity grew).
        A child that left the book (filled, cancelled) is not made again (its id was sent
        once); once a child filled the bracket is spent: nothing is made or grown for it again.
        A new child that is not ``placeable`` is not made yet."""
        if order.stop_loss is None and order.take_profit is None:
            return (), ()
        if order.client_order_id in self._spent:
            return (), ()  # the bracket's trade is over: its other child is being cancelled
        placed: list[Order] = []
        resized: list[Resized] = []
        for child in bracket_children(order, filled, ts):
            child_id = child.client_order_id
            if child_id in self._ended:
                continue
            working = self._working.get(child_id)
            if working is None:
                if placeable is not None and not placeable(child):
                    continue
                self.add(child)
                placed.append(child)
            elif working.order.quantity + _QTY_EPSILON * max(filled, 1.0) < filled:
                self.version += 1
                previous = working.order.quantity
                working.order = working.order._replace(quantity=filled)
                resized.append(Resized(working.order, previous))
        return tuple(placed), tuple(resized)
