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

        Children are built by ``bracket_children`` — the one place brackets are made — sized by
        what this fill executed, as the venue sizes them.
        """
        working = self._working.get(fill.client_order_id)
        if working is None:
            return OrderStatus.FILLED, None, ()
        order = working.order
        self.version += 1
        working.filled += fill.quantity
        status = OrderStatus.FILLED
        if working.filled + _QTY_EPSILON * max(order.quantity, 1.0) < order.quantity:
            status = OrderStatus.PARTIALLY_FILLED
        else:
            del self._working[fill.client_order_id]
        children: Sequence[Order] = ()
        if order.stop_loss is not None or order.take_profit is not None:
            children = [
                child
                for child in bracket_children(order, fill.quantity, fill.ts)
                if child.client_order_id not in self._working
            ]
            for child in children:
                self.add(child)
        return status, order, children
