"""Request builders shared by the emulator tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.venues.mt5 import MT5Terminal, OrderSendResult
from tests.venues.mt5 import constants as C

EPOCH = datetime(1970, 1, 2, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def market(
    symbol: str,
    order_type: int,
    volume: float,
    *,
    filling: int = C.ORDER_FILLING_IOC,
    **extra: Any,
) -> dict[str, Any]:
    """A TRADE_ACTION_DEAL request (price 0 = market execution)."""
    req: dict[str, Any] = {
        "action": C.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": order_type,
        "type_filling": filling,
        "deviation": 10,
    }
    req.update(extra)
    return req


def pending(
    symbol: str,
    order_type: int,
    volume: float,
    price: float,
    *,
    filling: int = C.ORDER_FILLING_RETURN,
    **extra: Any,
) -> dict[str, Any]:
    """A TRADE_ACTION_PENDING request."""
    req: dict[str, Any] = {
        "action": C.TRADE_ACTION_PENDING,
        "symbol": symbol,
        "volume": volume,
        "type": order_type,
        "price": price,
        "type_filling": filling,
        "type_time": C.ORDER_TIME_GTC,
    }
    req.update(extra)
    return req


def send_ok(term: MT5Terminal, request: dict[str, Any]) -> OrderSendResult:
    """order_send and assert the request was executed / placed."""
    result = term.order_send(request)
    assert result is not None, term.last_error()
    assert result.retcode == C.TRADE_RETCODE_DONE, result
    return result
