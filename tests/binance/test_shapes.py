"""Response shapes pinned to ccxt's recorded Binance responses
(``ts/src/test/static/response/binance.json`` in the ccxt repository)."""

from __future__ import annotations

import ccxt

from .helpers import PERP, SPOT

# keys of the recorded spot createOrder httpResponse ("spot +selfTradePrevention +iceberg";
# icebergQty omitted: only present for iceberg orders)
SPOT_CREATE_KEYS = {
    "symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty",
    "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type",
    "side", "workingTime", "fills", "selfTradePreventionMode",
}  # fmt: skip
# keys of the recorded USDⓈ-M createOrders httpResponse ("create swap orders")
FUTURES_ORDER_KEYS = {
    "orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty",
    "executedQty", "cumQty", "cumQuote", "timeInForce", "type", "reduceOnly", "closePosition",
    "side", "positionSide", "stopPrice", "workingType", "priceProtect", "origType",
    "priceMatch", "selfTradePreventionMode", "goodTillDate", "updateTime",
}  # fmt: skip


def test_spot_new_order_shape(binance_spot: ccxt.Exchange) -> None:
    binance_spot.load_markets()
    order = binance_spot.create_order(SPOT, "limit", "buy", 0.05, 41_000)
    info = order["info"]
    assert set(info) == SPOT_CREATE_KEYS
    assert info["price"] == "41000.00000000" and info["origQty"] == "0.05000000"
    assert info["orderListId"] == -1 and info["fills"] == []
    assert order["timestamp"] == info["transactTime"]


def test_futures_new_order_shape(binance_usdm: ccxt.Exchange) -> None:
    binance_usdm.load_markets()
    order = binance_usdm.create_order(PERP, "limit", "sell", 0.2, 60_001)
    info = order["info"]
    assert set(info) == FUTURES_ORDER_KEYS
    assert (info["price"], info["origQty"], info["executedQty"]) == ("60001.00", "0.200", "0.000")
    assert (info["cumQuote"], info["avgPrice"], info["stopPrice"]) == ("0.00000", "0.00", "0.00")
    fetched = binance_usdm.fetch_order(order["id"], PERP)["info"]
    assert set(fetched) == FUTURES_ORDER_KEYS | {"time"}
