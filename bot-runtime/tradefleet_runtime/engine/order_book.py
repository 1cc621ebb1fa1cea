"""The bot's working orders as the engine knows them, and the brackets of filled entries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.model import Fill, Order, OrderStatus

_QTY_EPSILON = 1e-12


@dataclass
class WorkingOrder:
    order: Order
    filled: float = 0.0


class OrderBook:
    """Orders sent and not yet final, by client order id (insertion order kept)."""

    def __init__(self) -> None:
        self._working: dict[str, WorkingOrder] = {}
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
        return self._working.pop(client_order_id, None)

    def orders(self, symbol: str | None = None) -> list[Order]:
        return [
            w.order for w in self._working.values() if symbol is None or w.order.symbol == symbol
        ]

    def on_fill(self, fill: Fill) -> tuple[OrderStatus, Order | None, Sequence[Order]]:
        """Book a fill against its order: (its status now, the order, new bracket children).

        A bracket's children are made when its entry is done — here, by its last fill — and
        sized on all it executed, as the venues' brokers place them (the ccxt broker when the
        entry is final; the paper broker and MT5 fill an entry at once). While an entry is
        only partly filled no child is working at the venue, and none is in the book: what
        the status and the risk plugins see is what protects the position.
        """
        working = self._working.get(fill.client_order_id)
        if working is None:
            return OrderStatus.FILLED, None, ()
        order = working.order
        self.version += 1
        working.filled += fill.quantity
        if working.filled + _QTY_EPSILON * max(order.quantity, 1.0) < order.quantity:
            return OrderStatus.PARTIALLY_FILLED, order, ()
        del self._working[fill.client_order_id]
        return OrderStatus.FILLED, order, self._children(order, working.filled, fill.ts)

    def end(self, client_order_id: str, filled: float | None, ts: int) -> Sequence[Order]:
        """An order ended by the venue's word (cancelled or expired after part of it filled,
        rejected, or reported filled before its last fill arrived): out of the book. Its
        bracket's children, sized on what it executed (the most the venue or its fills say),
        when it executed any."""
        working = self.remove(client_order_id)
        if working is None:
            return ()
        done = max(working.filled, filled or 0.0)
        return self._children(working.order, done, ts) if done > 0.0 else ()

    def _children(self, order: Order, filled: float, ts: int) -> Sequence[Order]:
        """The children of ``order`` (built by ``bracket_children``, the one place brackets
        are made) not in the book yet, added to it."""
        if order.stop_loss is None and order.take_profit is None:
            return ()
        children = [
            child
            for child in bracket_children(order, filled, ts)
            if child.client_order_id not in self._working
        ]
        for child in children:
            self.add(child)
        return children
