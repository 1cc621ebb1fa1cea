"""A limit entry resting at a fake venue with its bracket children not placed yet, and the
look-up faults that make the ccxt broker unable to tell whether it holds an order.

Shared by the tests of what the broker answers about a child it is not placing: an amend or a
cut (``test_ccxt_amend_unknown``, ``test_ccxt_cut_child_in_flight``), a cancel
(``test_ccxt_cancel_unknown``).
"""

from __future__ import annotations

from tests.brokers.harness import VenueHarness, updates
from tradefleet_runtime.model import Order, OrderStatus, OrderType

# Where each venue takes the broker's look-up of an order by its client id (the first request
# of it: Bybit's open orders, Binance USDⓈ-M's order query, Kraken's open orders).
LOOKUP = {
    "bybit": ("GET", "/v5/order/realtime"),
    "binance-usdm": ("GET", "/fapi/v1/order"),
    "kraken": ("POST", "/0/private/OpenOrders"),
}


def resting_bracket(harness: VenueHarness, client_order_id: str) -> tuple[Order, str, str]:
    """Submits a limit buy of 0.1 at 49,000 with an SL at 48,000 and a TP at 52,000 (below the
    fake's start price: it rests, and a child is placed only once it fills) and waits until
    the venue works it. The entry, its stop's id and its take-profit's id."""
    entry = harness.order(
        client_order_id,
        quantity=0.1,
        order_type=OrderType.LIMIT,
        price=49_000.0,
        stop_loss=48_000.0,
        take_profit=52_000.0,
    )
    harness.broker.submit(entry)
    harness.wait_for(
        lambda e: any(u.status is OrderStatus.OPEN for u in updates(e, entry.client_order_id))
    )
    return entry, f"{client_order_id}-sl", f"{client_order_id}-tp"


def fail_lookups(harness: VenueHarness) -> None:
    """Every look-up of an order at ``harness``'s venue answers 503 until the faults are
    cleared (the broker's retries spent, it cannot tell whether the venue holds the order)."""
    method, path = LOOKUP[harness.name]
    harness.fake.faults.inject("server_error", path=path, method=method, times=None)
