"""An order the venue ended with only a part executed, the rest cancelled by the venue (Bybit
v5 ``PartiallyFilledCanceled``: a market order in a thin book), which ccxt reads as
``closed``, is not read as filled (``ccxt_orders.ccxt_status``): a stop-loss that closed a part
is said as a stop the bot no longer has, and its fill never counts the whole order."""

from __future__ import annotations

from typing import Any

from tradefleet_plugins.brokers.ccxt_orders import ccxt_status, report_of, status_of
from tradefleet_runtime.model import OrderStatus, ReasonCode


def _raw(status: str, venue_status: str, filled: float) -> dict[str, Any]:
    return {
        "id": "1",
        "clientOrderId": "tfentry-sl",
        "status": status,
        "side": "sell",
        "type": "market",
        "amount": 1.0,
        "filled": filled,
        "info": {"orderStatus": venue_status},
    }


def test_bybits_partially_filled_canceled_is_a_cancel_with_its_part() -> None:
    raw = _raw("closed", "PartiallyFilledCanceled", 0.3)  # as ccxt 4 parses it
    assert ccxt_status(raw) == "expired"
    assert status_of(ccxt_status(raw), 0.3) == (OrderStatus.CANCELLED, ReasonCode.EXPIRED)
    report = report_of(raw, "BTCUSDT")
    assert report.status is OrderStatus.CANCELLED
    assert report.filled_quantity == 0.3 and report.quantity == 1.0


def test_a_filled_order_is_still_filled() -> None:
    assert report_of(_raw("closed", "Filled", 1.0), "BTCUSDT").status is OrderStatus.FILLED
    assert ccxt_status({"status": "closed"}) == "closed"
    assert ccxt_status({"status": None, "info": None}) is None
