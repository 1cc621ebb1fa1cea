"""A venue broker over a paper account that outlives the bot: restart tests' stand-in venue.

A bot's broker object lives as long as its process; the account at an exchange does not. Each
``VenueView`` made for a bot (one per start) reads and trades one ``PaperBroker`` account the
test keeps, as a real broker reads the venue's: its reports are the account's, and what happens
to the account while the bot is down is there when it starts again. Subclasses add what their
test's venue does (refuse connects, pay funding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.model import (
    Bar,
    CashFlow,
    Fill,
    Instrument,
    Order,
    OrderReport,
    OrderUpdate,
    Position,
    PositionReport,
)


class VenueView:
    """The ``venue-execution`` broker contract, every call on the account ``venue``."""

    def __init__(self, venue: PaperBroker) -> None:
        self.venue = venue

    def connect(self, ctx: BrokerContext) -> None:
        """The account is already there; connecting changes nothing at the venue."""

    def instrument(self, symbol: str) -> Instrument:
        return self.venue.instrument(symbol)

    def submit(self, order: Order) -> OrderUpdate:
        return self.venue.submit(order)

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        return self.venue.cancel(client_order_id)

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow]:
        return self.venue.on_bar(bar)

    def open_orders(self) -> Sequence[Order]:
        return self.venue.open_orders()

    def positions(self) -> dict[str, Position]:
        return self.venue.positions()

    def balance(self) -> float:
        return self.venue.balance()

    def close(self) -> None:
        """The venue stays."""

    def drain_events(self) -> Sequence[Fill | OrderUpdate | CashFlow]:
        return self.venue.drain_events()

    def query_order(self, client_order_id: str) -> OrderReport | None:
        return self.venue.query_order(client_order_id)

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        return self.venue.order_reports(since_ts)

    def fill_reports(self, since_ts: int) -> Sequence[Fill]:
        return self.venue.fill_reports(since_ts)

    def position_reports(self) -> Sequence[PositionReport]:
        return self.venue.position_reports()

    def cancel_all(self, symbol: str | None) -> None:
        self.venue.cancel_all(symbol)

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        return self.venue.amend(client_order_id, quantity, price)

    def is_connected(self) -> bool:
        return True


def paper_bot_manifest(
    folder: Path,
    name: str,
    strategy: str,
    broker: str,
    *,
    symbol: str = "BTCUSDT",
    currency: str = "USD",
    broker_fields: dict[str, Any] | None = None,
    **spec: Any,
) -> Path:
    """``bot.yaml`` in ``folder``: a paper bot of ``strategy`` on ``broker`` (a test's venue
    view), one ``symbol`` hourly, 100,000 of ``currency``; ``spec`` adds fields (``risk``,
    ``onStop``), ``broker_fields`` the broker's (``adoptVenuePositions``)."""
    manifest = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": name},
        "spec": {
            "mode": "paper",
            "strategy": {"name": strategy},
            "market": {"symbols": [symbol], "timeframe": "1h"},
            "broker": {"name": broker, **(broker_fields or {})},
            "capital": {"currency": currency, "initial": 100000},
            **spec,
        },
    }
    path = folder / "bot.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path
