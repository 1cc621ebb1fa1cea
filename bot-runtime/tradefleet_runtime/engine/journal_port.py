"""What the engine writes to its journal: a small protocol, so the engine knows no storage.

``tradefleet_runtime.journal.Journal`` implements it (SQLite); tests and benchmarks may pass
anything else with these methods. Every call is made on the engine's thread.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from tradefleet_runtime.model import (
    CashFlow,
    Fill,
    Order,
    OrderStatus,
    Position,
    RiskDecision,
    Trade,
)


class JournalWriter(Protocol):
    @property
    def run_id(self) -> str: ...

    @property
    def path(self) -> str: ...

    #: Rows go out in large transactions (a backtest): ``grouped`` has nothing to group.
    batched: bool

    def grouped(self) -> AbstractContextManager[None]:
        """Writes inside the block commit together, at its end (write-ahead of the broker)."""
        ...

    def record_order(
        self,
        order: Order,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        mark: float | None = None,
    ) -> None: ...

    def resize_order(self, client_order_id: str, quantity: float, ts: int, reason: str) -> None: ...

    def reprice_order(
        self,
        client_order_id: str,
        price: float,
        ts: int,
        reason: str,
        status: OrderStatus = OrderStatus.OPEN,
    ) -> None:
        """A working order's price changed (a stop moved); a restart re-arms it at ``price``."""
        ...

    def update_order(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts: int,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None: ...

    def record_fill(
        self,
        fill: Fill,
        position: Position,
        order_status: OrderStatus,
        trades: Iterable[tuple[int, Trade]] = (),
        *,
        reason: str = "",
        venue_order_id: str | None = None,
    ) -> None: ...

    def record_risk(
        self,
        *,
        ts: int,
        plugin: str,
        symbol: str,
        side: str,
        decision: RiskDecision,
        quantity_in: float | None,
        client_order_id: str | None = None,
    ) -> None: ...

    def record_cash_flow(self, flow: CashFlow, booked: bool) -> None:
        """A payment of the venue's outside fills (``booked``: in the account's cash)."""
        ...

    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None: ...

    def record_equity(
        self, timestamps: array[int], equity: array[float], exposure: array[float]
    ) -> None: ...

    def flush(self) -> None: ...
