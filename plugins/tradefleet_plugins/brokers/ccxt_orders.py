"""Orders to ccxt calls and ccxt answers to the SDK's values: pure functions, no I/O.

Each venue names the same order differently: the client order id is ``newClientOrderId`` on
Binance and ``orderLinkId`` on Bybit (ccxt's unified ``clientOrderId`` maps both); a stop is
Binance spot's ``STOP_LOSS``, a USDⓈ-M algo ``STOP_MARKET`` and a Bybit conditional order with
a trigger direction. Prices and quantities go through ccxt's own ``price_to_precision`` and
``amount_to_precision`` (passed in as callables, so this module stays pure).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tradefleet_runtime.sdk import (
    STOP_LOSS_TAG,
    TAKE_PROFIT_TAG,
    Fill,
    Instrument,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    PositionReport,
    ReasonCode,
    Side,
    limit_problem,
)


class Dialect(StrEnum):
    """How a venue wants its orders spelled (beyond what ccxt unifies)."""

    BINANCE_SPOT = "binance-spot"
    BINANCE_USDM = "binance-usdm"
    BYBIT = "bybit"

    @property
    def futures(self) -> bool:
        return self in (Dialect.BINANCE_USDM,)


def dialect_for(exchange: str, linear: bool) -> Dialect:
    """The dialect of a venue the broker is proven against (``ccxt_params.VERIFIED_VENUES``:
    the params refuse any other, so this never guesses one for an unproven venue)."""
    if exchange == "binance" and not linear:
        return Dialect.BINANCE_SPOT
    if exchange == "binanceusdm" and linear:
        return Dialect.BINANCE_USDM
    if exchange == "bybit" and linear:
        return Dialect.BYBIT
    raise ValueError(f"exchange: no proven dialect for {exchange!r} (linear={linear})")


# Binance: ``^[\.A-Z\:/a-z0-9_-]{1,36}$`` (spot and USDⓈ-M); Bybit ``orderLinkId``: up to 36
# letters, digits, dashes and underscores.
_ID_RULES: dict[Dialect, tuple[re.Pattern[str], str]] = {
    Dialect.BINANCE_SPOT: (
        re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$"),
        "1-36 of A-Z a-z 0-9 . : / _ -",
    ),
    Dialect.BINANCE_USDM: (
        re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$"),
        "1-36 of A-Z a-z 0-9 . : / _ -",
    ),
    Dialect.BYBIT: (re.compile(r"^[A-Za-z0-9_-]{1,36}$"), "1-36 of A-Z a-z 0-9 _ -"),
}


def client_id_problem(client_order_id: str, dialect: Dialect) -> str | None:
    """Why the venue would refuse this client order id (length, characters), or None."""
    pattern, rule = _ID_RULES[dialect]
    if pattern.match(client_order_id):
        return None
    return f"client order id {client_order_id!r} does not fit the venue's rule ({rule})"


@dataclass(frozen=True, slots=True)
class CreateArgs:
    """The arguments of one ``create_order`` call."""

    symbol: str
    type: str
    side: str
    amount: float
    price: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ReasonCode
    reason: str


Precision = Callable[[str, float], str]


def _rounded(fn: Precision, market_symbol: str, value: float) -> float | None:
    try:
        return float(fn(market_symbol, value))
    except Exception:  # ccxt raises when a value rounds below its precision
        return None


def create_args(
    order: Order,
    market_symbol: str,
    dialect: Dialect,
    instrument: Instrument,
    amount_to_precision: Precision,
    price_to_precision: Precision,
) -> CreateArgs | Refusal:
    """``order`` as a ``create_order`` call, or why it must not leave (naming the limit)."""
    problem = client_id_problem(order.client_order_id, dialect)
    if problem is not None:
        return Refusal(ReasonCode.VENUE_REJECTED, problem)
    if not order.quantity > 0.0 or math.isinf(order.quantity):
        return Refusal(
            ReasonCode.INVALID_QUANTITY, f"quantity must be positive, got {order.quantity}"
        )
    amount = _rounded(amount_to_precision, market_symbol, order.quantity)
    if not amount:
        return Refusal(
            ReasonCode.INVALID_QUANTITY,
            f"quantity {order.quantity:g} rounds to nothing on {order.symbol}'s lot step "
            f"{instrument.lot_step:g}",
        )
    price: float | None = None
    if order.order_type is not OrderType.MARKET:
        if order.price is None or not order.price > 0.0:
            return Refusal(
                ReasonCode.INVALID_PRICE, f"{order.order_type} order needs a positive price"
            )
        price = _rounded(price_to_precision, market_symbol, order.price)
        if not price:
            return Refusal(ReasonCode.INVALID_PRICE, f"price {order.price:g} rounds to nothing")
    limit = limit_problem(instrument, amount, price)
    if limit is not None:
        return Refusal(limit[0], limit[1])
    params: dict[str, Any] = {"clientOrderId": order.client_order_id}
    if order.reduce_only and dialect is not Dialect.BINANCE_SPOT:
        params["reduceOnly"] = True
    side = order.side.value
    if order.order_type is OrderType.MARKET:
        return CreateArgs(market_symbol, "market", side, amount, None, params)
    assert price is not None
    if order.order_type is OrderType.LIMIT:
        if dialect is Dialect.BINANCE_USDM and order.reduce_only and order.tag == TAKE_PROFIT_TAG:
            # A bracket's take-profit as the venue's native TAKE_PROFIT_MARKET (reduce-only).
            params["takeProfitPrice"] = price
            return CreateArgs(market_symbol, "market", side, amount, None, params)
        return CreateArgs(market_symbol, "limit", side, amount, price, params)
    # A stop: triggers when the market trades through ``price``, then a market order.
    if dialect is Dialect.BINANCE_SPOT:
        # STOP_LOSS: a buy above the market, a sell below it (Binance's own rule).
        params["stopLossPrice"] = price
    elif dialect is Dialect.BINANCE_USDM:
        if order.reduce_only and order.tag == STOP_LOSS_TAG:
            params["stopLossPrice"] = price  # STOP_MARKET, reduce-only
        else:
            params["triggerPrice"] = price
    elif dialect is Dialect.BYBIT:
        params["triggerPrice"] = price
        params["triggerDirection"] = "ascending" if order.side is Side.BUY else "descending"
    else:
        params["triggerPrice"] = price
    return CreateArgs(market_symbol, "market", side, amount, None, params)


def status_of(ccxt_status: str | None, filled: float) -> tuple[OrderStatus, ReasonCode]:
    """ccxt's unified order status as ours (``expired`` is a cancel with its own code)."""
    if ccxt_status == "closed":
        return OrderStatus.FILLED, ReasonCode.NONE
    if ccxt_status in ("canceled", "cancelled"):
        return OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_USER
    if ccxt_status == "expired":
        return OrderStatus.CANCELLED, ReasonCode.EXPIRED
    if ccxt_status == "rejected":
        return OrderStatus.REJECTED, ReasonCode.VENUE_REJECTED
    return (OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN), ReasonCode.NONE


def _num(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _ts(ms: Any) -> int:
    return int(_num(ms) // 1000)


def trigger_of(raw: Mapping[str, Any]) -> float | None:
    for key in ("triggerPrice", "stopPrice", "stopLossPrice", "takeProfitPrice"):
        value = raw.get(key)
        if value:
            return _num(value)
    return None


def order_type_of(raw: Mapping[str, Any]) -> OrderType:
    kind = str(raw.get("type") or "").lower()
    info = raw.get("info") or {}
    venue_type = str(info.get("type") or info.get("orderType") or "").upper()
    if "TAKE_PROFIT" in venue_type:
        return OrderType.LIMIT  # a bracket's take-profit, whatever the venue calls it
    if trigger_of(raw) is not None or "STOP" in venue_type:
        return OrderType.STOP
    return OrderType.LIMIT if kind == "limit" else OrderType.MARKET


def report_of(raw: Mapping[str, Any], bot_symbol: str) -> OrderReport:
    """A ccxt order dict as an ``OrderReport`` (quantities in the order's own units)."""
    filled = _num(raw.get("filled"))
    status, _code = status_of(raw.get("status"), filled)
    order_type = order_type_of(raw)
    price = trigger_of(raw) if order_type is OrderType.STOP else None
    if price is None:
        price = _num(raw.get("price")) or trigger_of(raw) or None
    if order_type is OrderType.MARKET:
        price = None
    info = raw.get("info") or {}
    reduce_only = bool(raw.get("reduceOnly")) or str(info.get("reduceOnly")).lower() == "true"
    average = _num(raw.get("average")) or None
    return OrderReport(
        client_order_id=str(raw.get("clientOrderId") or ""),
        venue_order_id=str(raw.get("id") or ""),
        symbol=bot_symbol,
        side=Side.BUY if raw.get("side") == "buy" else Side.SELL,
        order_type=order_type,
        quantity=_num(raw.get("amount")),
        filled_quantity=filled,
        status=status,
        ts=_ts(raw.get("lastUpdateTimestamp") or raw.get("timestamp")),
        price=price,
        average_price=average if filled else None,
        reduce_only=reduce_only,
    )


def fee_in(
    trade: Mapping[str, Any], account_currencies: frozenset[str], base: str
) -> tuple[float, bool]:
    """The fee of ``trade`` in the account currency, and whether it could be converted.

    A fee in the account currency (or the market's quote/settle currency, listed in
    ``account_currencies``) is taken as it is; one in the base asset is converted at the fill
    price; any other (BNB discounts, rebates in a third coin) is not convertible without a
    price the broker does not have: 0, and False so the caller can say so."""
    fee = trade.get("fee") or {}
    cost = abs(_num(fee.get("cost")))
    if not cost:
        return 0.0, True
    currency = str(fee.get("currency") or "")
    if currency in account_currencies:
        return cost, True
    if currency == base:
        return cost * _num(trade.get("price")), True
    return 0.0, False


def fill_of(
    trade: Mapping[str, Any],
    client_order_id: str,
    bot_symbol: str,
    fee: float,
    reason: str = "",
) -> Fill:
    """A ccxt trade as a ``Fill``; the venue's trade id is the fill id (stable across runs).

    ``reason``: the order's tag, or untagged, its type (``Fill.reason``); without the order (a
    venue report after a restart) the trade's own type, as the venue states it."""
    return Fill(
        client_order_id=client_order_id,
        symbol=bot_symbol,
        side=Side.BUY if trade.get("side") == "buy" else Side.SELL,
        quantity=_num(trade.get("amount")),
        price=_num(trade.get("price")),
        fee=fee,
        ts=_ts(trade.get("timestamp")),
        fill_id=str(trade.get("id")),
        reason=reason or str(trade.get("type") or ""),
    )


def position_of(raw: Mapping[str, Any], bot_symbol: str) -> PositionReport | None:
    """A ccxt position as a signed ``PositionReport`` in contracts (None when flat)."""
    contracts = _num(raw.get("contracts"))
    if not contracts:
        return None
    signed = -contracts if raw.get("side") == "short" else contracts
    return PositionReport(
        bot_symbol,
        signed,
        _num(raw.get("entryPrice")),
        _ts(raw.get("timestamp")),
    )


def instrument_of(
    bot_symbol: str, market: Mapping[str, Any], decimal_places: bool = False
) -> Instrument:
    """The venue's rules for one symbol from ccxt's market (``load_markets``). ``decimal_places``:
    the exchange gives precision as a number of digits (ccxt's DECIMAL_PLACES mode), not a
    tick."""
    precision = dict(market.get("precision") or {})
    if decimal_places:
        for key in ("price", "amount"):
            if precision.get(key) is not None:
                precision[key] = 10.0 ** -_num(precision[key])
    limits = market.get("limits") or {}
    amount = limits.get("amount") or {}
    cost = limits.get("cost") or {}
    max_quantity = _num(amount.get("max"), float("inf")) or float("inf")
    return Instrument(
        symbol=bot_symbol,
        tick_size=_num(precision.get("price")),
        lot_step=_num(precision.get("amount")),
        min_quantity=_num(amount.get("min")),
        max_quantity=max_quantity,
        min_notional=_num(cost.get("min")),
        contract_size=_num(market.get("contractSize"), 1.0) or 1.0,
        quote_currency=str(market.get("quote") or ""),
    )


__all__ = [
    "CreateArgs",
    "Dialect",
    "Refusal",
    "client_id_problem",
    "create_args",
    "dialect_for",
    "fee_in",
    "fill_of",
    "instrument_of",
    "order_type_of",
    "position_of",
    "report_of",
    "status_of",
    "trigger_of",
]
